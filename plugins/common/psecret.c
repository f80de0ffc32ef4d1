/* SPDX-License-Identifier: MIT */
/*
 * Reading and freeing secrets; see psecret.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "psecret.h"

int psecret_read_fd(int fd, size_t max, struct pbuf *b)
{
	char chunk[4096];
	int r = 0;

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if (b->len + (size_t)n > max) {
			r = -EFBIG;
			break;
		}
		if (pbuf_add(b, chunk, (size_t)n) < 0) {
			r = -ENOMEM;
			break;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	return r;
}

void psecret_free(char *s)
{
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	free(s);
}
