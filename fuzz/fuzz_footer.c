/* SPDX-License-Identifier: MIT */
/*
 * The decrypted-footer parser on its own: the AEAD keeps attackers out of
 * it in practice, but a bug here must not become a crash for whoever holds
 * a key.  The first 16 input bytes choose n_chunks, footer offset, chunk
 * size and format version (the low bit of byte 15); the rest is the
 * footer.  A footer that parses must describe a consistent object: chunk
 * offsets increasing, an incremental map tiling the file exactly.
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
	size_t header_len;
	unsigned version;
	uint32_t cs;

	if (size < 16)
		return 0;
	memcpy(&n_chunks, data, 4);
	n_chunks &= 0xffff;
	memcpy(&footer_off, data + 4, 8);
	memcpy(&cs, data + 12, 4);
	version = 1 + (data[15] & 1);
	header_len = version == 1 ? DRGW_OBJ_HEADER_SIZE : DRGW_OBJ_HEADER_FIXED + 84;
	cs = DRGW_OBJ_CHUNK_MIN << ((cs & 0xffffff) % 9);
	if (drgw_obj_parse_footer(version, data + 16, size - 16, n_chunks,
				  footer_off, cs, header_len, &idx, &err) == 0) {
		uint64_t at = 0;

		for (uint64_t i = 0; i < idx.n_chunks; i++)
			if (idx.offsets[i] >= idx.offsets[i + 1])
				abort();
		for (size_t i = 0; i < idx.ext.n_extents; i++) {
			const struct drgw_obj_extent *e = &idx.ext.extents[i];

			if (e->file_off != at || e->len == 0 ||
			    e->src > idx.ext.n_refs)
				abort();
			at += e->len;
		}
		if (idx.ext.extents && at != idx.meta.size)
			abort();
		drgw_obj_index_clear(&idx);
	}
	return 0;
}
