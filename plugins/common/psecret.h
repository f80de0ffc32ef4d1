/* SPDX-License-Identifier: MIT */
/*
 * Secrets the plugins hold in memory (keys, tokens, token files): read
 * without leaving copies behind, and overwritten before they are freed.
 * Opening the file, and what a failure means (a refused credential, a
 * bad configuration), is the caller's: the plugins differ there on
 * purpose.
 */
#ifndef DRGW_PSECRET_H
#define DRGW_PSECRET_H

#include <stddef.h>

#include "pbuf.h"

/*
 * Appends everything fd holds up to end of file to b, as long as b stays
 * within max bytes.  The read buffer is wiped; b is the caller's, to be
 * released with pbuf_release_secret() (also on failure: it may hold part
 * of the file).  fd stays open.
 * @return 0, -EFBIG when the file holds more than max bytes, -ENOMEM, or
 * read(2)'s negative errno.
 */
int psecret_read_fd(int fd, size_t max, struct pbuf *b);

/* Overwrites the string s, then frees it; NULL-safe. */
void psecret_free(char *s);

#endif /* DRGW_PSECRET_H */
