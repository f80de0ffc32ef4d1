/* SPDX-License-Identifier: MIT */
/*
 * Bech32 (BIP 173): the text form of recipients ("drgw1...") and
 * identities ("DRGW-SECRET-KEY-1..."), as age does it.  A 6-character
 * BCH checksum catches any typo of up to four characters, so a mistyped
 * recipient fails to parse instead of encrypting to nobody.  The 90
 * character limit of BIP 173 is not enforced (identities exceed it).
 * Pure; no allocation.
 */
#ifndef DRGW_BECH32_H
#define DRGW_BECH32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Encodes len bytes with hrp into out (lower case, or upper case when
 * upper).  0, or -ENOSPC if out is too small. */
int drgw_bech32_encode(const char *hrp, const uint8_t *data, size_t len,
		       bool upper, char *out, size_t size);

/* Decodes s, which must carry hrp (case-insensitive, but not mixed case)
 * and exactly len bytes.  0, or -EINVAL for anything else (wrong prefix,
 * bad character, bad checksum, wrong length). */
int drgw_bech32_decode(const char *s, const char *hrp, uint8_t *out,
		       size_t len);

#endif
