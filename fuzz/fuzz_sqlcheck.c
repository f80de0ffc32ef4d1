/* SPDX-License-Identifier: MIT */
/*
 * The SQLite checks on arbitrary files: the header layer with the file's
 * own size and with a size taken from the input's last 8 bytes (a header
 * that disagrees with its file), the journal and WAL parsers, and, when
 * the header passes, quick_check and integrity_check through the drgw-fd
 * VFS on a memfd holding the input.  Every verdict must be a known one
 * with a terminated message, whatever the bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "sqlcheck.h"

static void check_result(const struct drgw_sqlcheck_result *r)
{
	char text[400];

	if (r->verdict >= DRGW_SQLCHECK_VERDICTS || r->level > DRGW_SQLCHECK_FULL ||
	    !memchr(r->message, '\0', sizeof(r->message)))
		abort();
	drgw_sqlcheck_describe(r, text, sizeof(text));
	if (!memchr(text, '\0', sizeof(text)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drgw_sqlite_header h = { 0 };
	struct drgw_sqlcheck_result r;
	struct drgw_sqlite_wal wal;
	size_t head = size < 100 ? size : 100;
	uint64_t claimed;
	int fd;

	drgw_sqlcheck_header(data, head, size, &h, &r);
	check_result(&r);
	if (r.verdict == DRGW_SQLCHECK_OK &&
	    (h.page_size < 512 || h.page_size > 65536 ||
	     (uint64_t)h.page_count * h.page_size != size))
		abort();
	if (size >= 8) {
		memcpy(&claimed, data + size - 8, sizeof(claimed));
		drgw_sqlcheck_header(data, head, claimed, &h, &r);
		check_result(&r);
	}
	drgw_sqlcheck_journal_hot(data, size);
	if (drgw_sqlcheck_wal_header(data, size, &wal) == 0)
		for (size_t off = 32; off + 24 <= size; off += 24)
			drgw_sqlcheck_wal_frame(&wal, data + off, size - off);

	/* SQLite itself, on inputs whose header passes. */
	drgw_sqlcheck_header(data, head, size, &h, &r);
	if (r.verdict != DRGW_SQLCHECK_OK || size > (1u << 20))
		return 0;
	fd = memfd_create("fuzz-sqlcheck", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		drgw_sqlcheck_file(fd, -1, "fuzz.db", DRGW_SQLCHECK_QUICK,
				   10 * NSEC_PER_SEC, &r);
		check_result(&r);
		drgw_sqlcheck_file(fd, -1, "fuzz.db", DRGW_SQLCHECK_FULL,
				   10 * NSEC_PER_SEC, &r);
		check_result(&r);
	}
	close(fd);
	return 0;
}
