/* SPDX-License-Identifier: MIT */
/*
 * Master keys.  A key file holds 32 random bytes, base64-encoded on one line
 * (what `drgw keygen` writes, and what fits a Kubernetes Secret) or raw.
 * Every object names the id of the key it was written with, so a keyring of
 * several keys reads objects from before a key rotation; the first key of
 * the ring is the one new objects are written with.
 *
 * Key bytes live in sodium_malloc()ed, mlock()ed memory and never reach a
 * log line, argv or the catalog; only the 8-byte id does.
 */
#ifndef DRGW_KEY_H
#define DRGW_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define DRGW_KEY_BYTES 32
#define DRGW_KEY_ID_BYTES 8
#define DRGW_KEYRING_MAX 16

struct drgw_key {
	uint8_t key[DRGW_KEY_BYTES];
	uint8_t id[DRGW_KEY_ID_BYTES];
};

struct drgw_keyring {
	/* sodium_malloc()ed array of n keys; keys[0] encrypts. */
	struct drgw_key *keys;
	size_t n;
};

/* Writes a new random key to path (mode 0600); refuses to overwrite. */
int drgw_key_generate(const char *path, struct drgw_err *err);

/* Loads path into the ring (appends).  Refuses files readable or writable
 * by group or others, and anything that is not exactly one key. */
int drgw_keyring_add_file(struct drgw_keyring *kr, const char *path,
			  struct drgw_err *err);
/* Adds raw key bytes (tests, fuzzers). */
int drgw_keyring_add_bytes(struct drgw_keyring *kr,
			   const uint8_t key[DRGW_KEY_BYTES]);
const struct drgw_key *drgw_keyring_find(const struct drgw_keyring *kr,
					 const uint8_t id[DRGW_KEY_ID_BYTES]);
/* Wipes and frees the ring's keys; kr may be reused afterwards. */
void drgw_keyring_clear(struct drgw_keyring *kr);

/* Hex form of a key id, for messages. */
void drgw_key_id_hex(const uint8_t id[DRGW_KEY_ID_BYTES], char out[17]);

#endif
