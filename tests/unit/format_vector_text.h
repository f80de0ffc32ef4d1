/* SPDX-License-Identifier: MIT */
/*
 * The plaintexts of the incremental test vector (docs/FORMAT.md): 12288
 * bytes of lines "row NNNNN of the vector\n" (24 bytes each, NNNNN from
 * 00000, the last line cut short), and the same with the second 4 KiB
 * block (bytes 4096-8191) upper-cased.
 */
#ifndef DRGW_FORMAT_VECTOR_TEXT_H
#define DRGW_FORMAT_VECTOR_TEXT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define VECTOR_TEXT_LEN 12288

static inline void drgw_vector_base(uint8_t *text)
{
	char line[32];

	for (unsigned i = 0; i * 24 < VECTOR_TEXT_LEN; i++) {
		size_t n = VECTOR_TEXT_LEN - i * 24 < 24 ? VECTOR_TEXT_LEN - i * 24 : 24;

		snprintf(line, sizeof(line), "row %05u of the vector\n", i);
		memcpy(text + i * 24, line, n);
	}
}

static inline void drgw_vector_next(uint8_t *text)
{
	drgw_vector_base(text);
	for (size_t i = 4096; i < 8192; i++)
		if (text[i] >= 'a' && text[i] <= 'z')
			text[i] = (uint8_t)(text[i] - 'a' + 'A');
}

#endif
