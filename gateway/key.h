/* SPDX-License-Identifier: MIT */
/*
 * Keys.  Two kinds can open objects:
 *  - master keys (symmetric): a key file holds 32 random bytes,
 *    base64-encoded on one line (what `drgw keygen` writes, and what fits
 *    a Kubernetes Secret) or raw.  They encrypt and decrypt.
 *  - identities (X25519 secret keys), in files that `drgw keygen
 *    --identity` writes; only they decrypt what is encrypted to their
 *    recipient (the public key, "drgw1...").  A writer that holds only
 *    recipients can encrypt but never decrypt (docs/FORMAT.md, version 2).
 * A keyring holds any mix: the first master key and every recipient are
 * what new objects are encrypted to; every master key and identity is
 * tried to open an object, so old objects stay readable after a rotation.
 *
 * Secret bytes live in sodium_malloc()ed, mlock()ed memory and never
 * reach a log line, argv or the catalog; only 8-byte ids and tags do.
 */
#ifndef DRGW_KEY_H
#define DRGW_KEY_H

#include <stdbool.h>
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

#define DRGW_RECIPIENT_HRP "drgw"
#define DRGW_IDENTITY_HRP "drgw-secret-key-"
/* "drgw1" + 52 + 6 characters, and a NUL. */
#define DRGW_RECIPIENT_STR_MAX 72

struct drgw_identity {
	uint8_t sk[32];
	uint8_t pk[32];
	/* BLAKE2b-64 of the public key: names it in objects and messages. */
	uint8_t tag[8];
};

struct drgw_recipient {
	uint8_t pk[32];
	uint8_t tag[8];
};

struct drgw_keyring {
	/* sodium_malloc()ed array of n keys; keys[0] encrypts. */
	struct drgw_key *keys;
	size_t n;
	/* sodium_malloc()ed: secret keys that decrypt. */
	struct drgw_identity *ids;
	size_t n_ids;
	/* malloc()ed: public keys every new object is encrypted to. */
	struct drgw_recipient *recips;
	size_t n_recips;
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

/* Writes a new identity to path (mode 0600, refuses to overwrite) and its
 * recipient string and tag into recipient and tag. */
int drgw_identity_generate(const char *path,
			   char recipient[DRGW_RECIPIENT_STR_MAX],
			   uint8_t tag[8], struct drgw_err *err);
/* The recipient string of the identity in path, and its tag (what objects
 * and "wrong identity" errors name it by). */
int drgw_identity_recipient(const char *path,
			    char recipient[DRGW_RECIPIENT_STR_MAX],
			    uint8_t tag[8], struct drgw_err *err);
/* Loads an identity file into the ring (same permission rules as key
 * files). */
int drgw_keyring_add_identity_file(struct drgw_keyring *kr, const char *path,
				   struct drgw_err *err);
int drgw_keyring_add_identity_bytes(struct drgw_keyring *kr,
				    const uint8_t sk[32]);
/* Adds a recipient given as a "drgw1..." string. */
int drgw_keyring_add_recipient(struct drgw_keyring *kr, const char *s,
			       struct drgw_err *err);
/* Adds every recipient of a file: one per line, '#' comments. */
int drgw_keyring_add_recipient_file(struct drgw_keyring *kr, const char *path,
				    struct drgw_err *err);
/* "drgw1..." for a public key. */
void drgw_recipient_string(const uint8_t pk[32],
			   char out[DRGW_RECIPIENT_STR_MAX]);
/* The tag of a public key (what objects record for each recipient). */
void drgw_recipient_tag(const uint8_t pk[32], uint8_t tag[8]);
const struct drgw_identity *drgw_keyring_find_identity(
	const struct drgw_keyring *kr, const uint8_t tag[8]);

/* Can the ring encrypt new objects / decrypt objects at all? */
bool drgw_keyring_can_encrypt(const struct drgw_keyring *kr);
/* A digest of what new objects are encrypted to (the key file's id, the
 * recipients): two writers with equal digests write objects the same
 * keys and identities open. */
void drgw_keyring_writer_digest(const struct drgw_keyring *kr,
				uint8_t out[32]);
bool drgw_keyring_can_decrypt(const struct drgw_keyring *kr);

#endif
