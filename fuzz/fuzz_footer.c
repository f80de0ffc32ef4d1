/* SPDX-License-Identifier: MIT */
/*
 * The decrypted-footer parser on its own: the AEAD keeps attackers out of
 * it in practice, but a bug here must not become a crash for whoever holds
 * a key.  The first 16 input bytes choose n_chunks, footer offset and chunk
 * size; the rest is the footer.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drgw_obj_index idx;
	struct drgw_err err;
	uint64_t n_chunks, footer_off;
	uint32_t cs;

	if (size < 16)
		return 0;
	memcpy(&n_chunks, data, 4);
	n_chunks &= 0xffff;
	memcpy(&footer_off, data + 4, 8);
	memcpy(&cs, data + 12, 4);
	cs = DRGW_OBJ_CHUNK_MIN << (cs % 9);
	if (drgw_obj_parse_footer(data + 16, size - 16, n_chunks, footer_off, cs,
				  &idx, &err) == 0) {
		for (uint64_t i = 0; i < idx.n_chunks; i++)
			if (idx.offsets[i] >= idx.offsets[i + 1])
				abort();
		drgw_obj_index_clear(&idx);
	}
	return 0;
}
