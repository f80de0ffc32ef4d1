/* SPDX-License-Identifier: MIT */
/*
 * Bech32; see bech32.h.  Written from BIP 173: the character set, the
 * generator of the BCH code, and the expansion of the human-readable
 * part into the checksummed values.
 */
#include <ctype.h>
#include <strings.h>
#include <errno.h>
#include <string.h>

#include "bech32.h"

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t polymod_step(uint32_t chk, uint8_t v)
{
	static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa,
					 0x3d4233dd, 0x2a1462b3 };
	uint32_t top = chk >> 25;

	chk = ((chk & 0x1ffffff) << 5) ^ v;
	for (int i = 0; i < 5; i++)
		if ((top >> i) & 1)
			chk ^= gen[i];
	return chk;
}

/* The checksum state after the expanded hrp (lower case). */
static uint32_t hrp_polymod(const char *hrp, size_t n)
{
	uint32_t chk = 1;

	for (size_t i = 0; i < n; i++)
		chk = polymod_step(chk, (uint8_t)tolower((unsigned char)hrp[i]) >> 5);
	chk = polymod_step(chk, 0);
	for (size_t i = 0; i < n; i++)
		chk = polymod_step(chk, (uint8_t)tolower((unsigned char)hrp[i]) & 31);
	return chk;
}

int drgw_bech32_encode(const char *hrp, const uint8_t *data, size_t len,
		       bool upper, char *out, size_t size)
{
	size_t hl = strlen(hrp), n5 = (len * 8 + 4) / 5, o = 0;
	uint32_t chk = hrp_polymod(hrp, hl), acc = 0;
	int bits = 0;

	if (size < hl + 1 + n5 + 6 + 1)
		return -ENOSPC;
	for (size_t i = 0; i < hl; i++)
		out[o++] = (char)tolower((unsigned char)hrp[i]);
	out[o++] = '1';
	for (size_t i = 0, k = 0; k < n5; k++) {
		uint8_t v;

		/* 8-bit groups to 5-bit groups, zero padded at the end. */
		while (bits < 5 && i < len) {
			acc = (acc << 8) | data[i++];
			bits += 8;
		}
		if (bits >= 5) {
			v = (acc >> (bits - 5)) & 31;
			bits -= 5;
		} else {
			v = (acc << (5 - bits)) & 31;
			bits = 0;
		}
		chk = polymod_step(chk, v);
		out[o++] = charset[v];
	}
	for (int i = 0; i < 6; i++)
		chk = polymod_step(chk, 0);
	chk ^= 1;
	for (int i = 0; i < 6; i++)
		out[o++] = charset[(chk >> (5 * (5 - i))) & 31];
	out[o] = '\0';
	if (upper)
		for (size_t i = 0; i < o; i++)
			out[i] = (char)toupper((unsigned char)out[i]);
	return 0;
}

int drgw_bech32_decode(const char *s, const char *hrp, uint8_t *out,
		       size_t len)
{
	size_t hl = strlen(hrp), sl = strlen(s), n5, k = 0;
	bool lower = false, upperc = false;
	uint32_t chk, acc = 0;
	int bits = 0;

	for (size_t i = 0; i < sl; i++) {
		lower |= islower((unsigned char)s[i]) != 0;
		upperc |= isupper((unsigned char)s[i]) != 0;
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
			return -EINVAL;
	}
	if ((lower && upperc) || sl < hl + 1 + 6 || s[hl] != '1' ||
	    strncasecmp(s, hrp, hl))
		return -EINVAL;
	n5 = sl - hl - 1 - 6;
	/* Exactly the 5-bit groups len bytes need, with zero padding. */
	if (n5 != (len * 8 + 4) / 5)
		return -EINVAL;
	chk = hrp_polymod(hrp, hl);
	for (size_t i = hl + 1; i < sl; i++) {
		const char *p = strchr(charset, tolower((unsigned char)s[i]));
		uint8_t v;

		if (!p || !*p)
			return -EINVAL;
		v = (uint8_t)(p - charset);
		chk = polymod_step(chk, v);
		if (i >= sl - 6)
			continue;
		acc = (acc << 5) | v;
		bits += 5;
		if (bits >= 8) {
			if (k == len)
				return -EINVAL;
			out[k++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	if (chk != 1 || k != len || (acc & ((1u << bits) - 1)))
		return -EINVAL;
	return 0;
}
