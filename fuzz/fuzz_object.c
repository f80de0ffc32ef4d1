/* SPDX-License-Identifier: MIT */
/*
 * Whole-object decoding, the path every byte from a backend takes.  The
 * keyring holds the test vectors' key (00..1f) and identity (40..5f), so
 * inputs derived from the vectors in docs/FORMAT.md get past the key
 * check (both the stanza parser and the version-1 key id) and into the
 * AEAD and footer parsing.  Decoding must fail cleanly or return the plaintext the
 * footer's hash vouches for.
 */
#include <stdlib.h>

#include "format.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct drgw_keyring kr;
	struct drgw_obj_meta meta;
	struct drgw_err err;
	uint8_t *plain = NULL;

	if (!kr.n) {
		uint8_t key[DRGW_KEY_BYTES], sk[32];

		for (int i = 0; i < DRGW_KEY_BYTES; i++) {
			key[i] = (uint8_t)i;
			sk[i] = (uint8_t)(0x40 + i);
		}
		if (drgw_keyring_add_bytes(&kr, key) ||
		    drgw_keyring_add_identity_bytes(&kr, sk))
			abort();
	}
	if (drgw_obj_decode_mem(data, size, &kr, &plain, &meta, &err) == 0) {
		if (!drgw_name_ok(meta.name) || !drgw_vid_ok(meta.vid))
			abort();
		free(plain);
	} else if (!err.msg[0]) {
		abort(); /* every failure must say why */
	}
	return 0;
}
