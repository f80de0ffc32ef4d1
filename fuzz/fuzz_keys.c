/* SPDX-License-Identifier: MIT */
/*
 * Recipient and identity strings (Bech32), what operators paste into a
 * configuration: whatever they hold, parsing must fail cleanly or give
 * back 32 bytes that encode to the same string (up to case).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bech32.h"
#include "fuzz.h"
#include "key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hrps[] = { DRGW_RECIPIENT_HRP,
					    DRGW_IDENTITY_HRP };
	char s[256], back[256];
	uint8_t out[32];

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (int h = 0; h < 2; h++) {
		if (drgw_bech32_decode(s, hrps[h], out, sizeof(out)) != 0)
			continue;
		if (strlen(s) != size ||
		    drgw_bech32_encode(hrps[h], out, sizeof(out), false, back,
				       sizeof(back)) != 0 ||
		    strcasecmp(back, s))
			abort();
	}
	return 0;
}
