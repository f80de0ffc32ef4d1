/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every gateway module uses: error detail, checked number and
 * size parsing, time, full reads and writes.  This module depends on nothing
 * else in the gateway (see CONTRIBUTING.md, "Dependency rule").
 */
#ifndef DRGW_UTIL_H
#define DRGW_UTIL_H

#ifndef DRGW_BACKEND_ABI
#define DRGW_BACKEND_ABI 1
#endif
#include <drgw/backend.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NSEC_PER_SEC 1000000000LL
#define NSEC_PER_MSEC 1000000LL

#define _cleanup_(f) __attribute__((cleanup(f)))

/* Writes one line into err->msg (printf style); err may be NULL. */
void drgw_err_set(struct drgw_err *err, const char *fmt, ...)
	DRGW_PRINTF(2, 3);
/* Prefixes err->msg with a context, e.g. "cannot upload x: <old msg>". */
void drgw_err_prefix(struct drgw_err *err, const char *fmt, ...)
	DRGW_PRINTF(2, 3);

/* Wall clock and monotonic clock in ns. */
int64_t drgw_now_ns(void);
int64_t drgw_mono_ns(void);
int64_t drgw_ts_ns(const struct timespec *ts);
/* Waits (up to 100 ms) until the kernel's timestamp clock has passed the
 * ctime in *st, refreshing *st from fd: a write in the same tick would
 * leave the ctime unchanged, a later one changes it. */
void drgw_wait_ctime_past(int fd, struct stat *st);

/* "2026-11-25T23:18:58Z" (UTC) into buf; "-" for 0. */
void drgw_format_time(int64_t ns, char *buf, size_t size);
/* "1.5 GiB" style into buf. */
void drgw_format_size(uint64_t bytes, char *buf, size_t size);
/* "3m12s" style into buf. */
void drgw_format_duration(int64_t ns, char *buf, size_t size);

/* The process's umask, read without changing it (umask(2) can only set
 * it, which would race with threads creating files). */
mode_t drgw_current_umask(void);

/* Checked parsers: the whole string must parse.  0 or -EINVAL/-ERANGE. */
int drgw_parse_u64(const char *s, uint64_t *ret);
/* "123", "64k", "1M", "2GiB" (binary multiples). */
int drgw_parse_size(const char *s, uint64_t *ret);
/* "250ms", "2s", "5m", "1h"; a bare number means seconds. */
int drgw_parse_duration(const char *s, int64_t *ret_ns);
/* "on/off/true/false/yes/no/1/0". */
int drgw_parse_bool(const char *s, bool *ret);

/* Loop over short reads/writes and EINTR.  pread returns the byte count
 * (less than len only at end of file) or -errno; the others 0 or -errno. */
ssize_t drgw_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* All len bytes at off: 0, -errno, or -EIO if the file ends before. */
int drgw_pread_exact(int fd, void *buf, size_t len, uint64_t off);
int drgw_write_full(int fd, const void *buf, size_t len);
int drgw_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* openat() that refuses to leave dirfd or follow any symlink on the way
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a path inside the
 * working set must never lead a root daemon to /etc.  -errno on failure. */
int drgw_openat_beneath(int dirfd, const char *path, int flags);

/* mkdir -p with mode for new components. */
int drgw_mkdir_p(const char *path, mode_t mode);
/* fsync() the directory that contains path. */
int drgw_fsync_parent(const char *path);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void drgw_hex(const uint8_t *in, size_t len, char *out);
/* Parses exactly 2*len hex digits into out.  0 or -EINVAL. */
int drgw_unhex(const char *hex, uint8_t *out, size_t len);

/* Safe string copy that always terminates; returns -ENAMETOOLONG when cut. */
int drgw_strlcpy(char *dst, const char *src, size_t size);
/* malloc()ed copy of len bytes (a valid pointer even for len 0), or NULL. */
void *drgw_memdup(const void *p, size_t len);
/* Replaces *buf (len *ret_len) with a copy of the len bytes at p: the last
 * resume token a plugin saved, kept to abort its upload with.  0 or
 * -ENOMEM (the old copy stays). */
int drgw_token_keep(void **buf, size_t *ret_len, const void *p, size_t len);

/* Valid relative snapshot name: UTF-8 without control characters, no
 * empty, "." or ".." component, no leading '/', at most 4095 bytes. */
bool drgw_name_ok(const char *name);

/* Parses a listen address: "host:port", ":port" (loopback), "*:port"
 * (every interface), "[v6]:port".  0 or -EINVAL. */
int drgw_parse_listen_addr(const char *addr, struct sockaddr_storage *ret,
			   socklen_t *ret_len);

/* Free helpers for _cleanup_. */
void drgw_freep(void *p);
void drgw_closep(int *fd);

#endif
