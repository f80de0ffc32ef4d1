/* SPDX-License-Identifier: MIT */
/**
 * @file backend.h
 * The whole drgw backend plugin ABI.
 *
 * A backend is a shared module that drgw dlopen()s from its plugin
 * directory.  The module for URL scheme "foo" is named "drgw-foo.so" and
 * exports exactly one symbol, drgw_backend_entry_v1(), which returns a
 * pointer to a static, immutable struct drgw_backend_ops.  The gateway
 * allocates ops->instance_size zeroed bytes per configured backend and
 * passes that memory as "inst" to every method.
 *
 * Everything a backend may see of the gateway is in this file.  Build a
 * backend outside the tree with:
 *
 *     cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags drgw) \
 *        -o drgw-foo.so foo.c
 *
 * Conventions shared by all methods:
 *  - Return 0 on success or a negative errno.  The errno says what the
 *    gateway should do next:
 *      -EAGAIN, -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH:
 *              transient; the gateway retries later with backoff;
 *      -ENOENT: the object (or upload session) does not exist;
 *      -EACCES, -EPERM: credentials or permissions are wrong;
 *      -EINVAL: bad configuration or argument;
 *      -EIO:    the backend answered something unusable (protocol error,
 *               integrity check failed);
 *      -ENOSPC, -EDQUOT: the backend is full;
 *      -ECANCELED: the gateway asked the operation to stop;
 *      -ENOSYS, -EOPNOTSUPP: not supported (same as a NULL method).
 *  - On failure, fill err->msg with one human line that says what failed,
 *    with the server's own error code and message where there is one.
 *    Never put credentials, tokens or signed URLs in it.
 *  - Object keys are relative to the backend's URL prefix, UTF-8, without a
 *    leading '/'.  The gateway only uses keys made of [A-Za-z0-9._/-].
 *  - All methods but open() and close() may run concurrently on the same
 *    instance from several threads, and may block (network I/O).
 *
 * Stability: this header follows the SQLite VFS model.  struct
 * drgw_backend_ops only grows at the end; the gateway copies
 * min(struct_size, sizeof) bytes into a zeroed struct and treats a NULL
 * method as "not supported".  Members are marked with the ABI version that
 * introduced them.
 */
#ifndef DRGW_BACKEND_H
#define DRGW_BACKEND_H

#ifndef DRGW_BACKEND_ABI
#error "#define DRGW_BACKEND_ABI 1 (the ABI version you build against) before including <drgw/backend.h>"
#endif
#if DRGW_BACKEND_ABI > 1
#error "this <drgw/backend.h> provides ABI version 1 only"
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. */
#define DRGW_BACKEND_ABI_VERSION 1

/** Name of the one symbol a plugin exports. */
#define DRGW_BACKEND_ENTRY_SYMBOL "drgw_backend_entry_v1"

#if defined(__GNUC__)
#define DRGW_BACKEND_EXPORT __attribute__((visibility("default")))
#define DRGW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DRGW_BACKEND_EXPORT
#define DRGW_PRINTF(f, a)
#endif

/* Capability bits in drgw_backend_ops.caps.  Bits 32..63 are reserved. */
/** get() serves arbitrary byte ranges cheaply (else the gateway reads whole objects). */
#define DRGW_CAP_RANGE_READ (1ULL << 0)
/** put() can resume an interrupted upload from a resume token. */
#define DRGW_CAP_RESUMABLE_PUT (1ULL << 1)
/** put() reads the source concurrently from several threads. */
#define DRGW_CAP_PARALLEL_PUT (1ULL << 2)
/** Objects become immutable once written (Object Lock, retention). */
#define DRGW_CAP_IMMUTABLE (1ULL << 3)
/** put() never replaces an existing key (conditional create). */
#define DRGW_CAP_CONDITIONAL_PUT (1ULL << 4)
/** put() takes a growing source (drgw_put_source.grow): the upload runs
 *  while the object is still being encoded. */
#define DRGW_CAP_STREAMING_PUT (1ULL << 5)

/** Log levels for drgw_host.log(). */
enum drgw_log_level {
	DRGW_LOG_ERROR = 0,
	DRGW_LOG_WARNING = 1,
	DRGW_LOG_INFO = 2,
	DRGW_LOG_DEBUG = 3,
};

/**
 * Error detail, owned by the caller, zeroed before each call.  Plugins
 * write one line into msg (truncated if longer).
 */
struct drgw_err {
	char msg[512];
	/** HTTP status of the failing response, 0 if none.  Informational. */
	int http_status;
	/** Suggested wait before a retry in milliseconds, 0 for "use backoff". */
	uint32_t retry_after_ms;
	uint64_t reserved[4];
};

/** Services the gateway offers to plugins.  Valid until close(). */
struct drgw_host {
	uint32_t abi_version;
	uint32_t struct_size;
	/** Thread-safe logger.  Plugins log at DRGW_LOG_DEBUG only; the
	 *  gateway logs failures once, from the err it gets back. */
	void (*log)(enum drgw_log_level level, const char *fmt, ...)
		DRGW_PRINTF(2, 3);
	/**
	 * When the call running on this thread should give up: a
	 * CLOCK_MONOTONIC time in ns, or 0 for no deadline.  Restore reads
	 * have one, so that a stalled backend is left for the next one that
	 * holds the same object.  A plugin that honours it bounds each
	 * request by the time left, does not start a retry past it, and
	 * returns -ETIMEDOUT.  Thread-safe.  Since ABI 1 (takes a reserved
	 * slot: NULL from gateways that have no deadlines).
	 */
	int64_t (*deadline_ns)(void);
	void *reserved[7];
};

/** One key=value backend option from the URL query or the config file. */
struct drgw_option {
	const char *key;
	const char *value;
};

/** What open() gets.  All strings stay valid until close(). */
struct drgw_backend_config {
	uint32_t struct_size;
	/** Operator-chosen backend name, e.g. "offsite". */
	const char *name;
	/** Full URL, e.g. "s3://bucket/prefix" (options stripped). */
	const char *url;
	/** Options; unknown keys must be rejected with -EINVAL. */
	const struct drgw_option *options;
	size_t n_options;
	/** Non-zero when the gateway will only read (restore mounts). */
	int read_only;
	const struct drgw_host *host;
	void *reserved[8];
};

/* Bits of drgw_object_info.lock_flags. */
/** The lock fields were filled in: the backend says whether the object is
 *  locked.  Without it the gateway knows nothing either way. */
#define DRGW_LOCK_KNOWN (1u << 0)
/** A hold protects the object until someone releases it (S3 legal hold,
 *  GCS temporary or event-based hold), whatever retain_until_ns says. */
#define DRGW_LOCK_HOLD (1u << 1)

/** Metadata of one stored object. */
struct drgw_object_info {
	uint64_t size;
	/** Last-modified time in ns since the epoch, 0 if unknown. */
	int64_t mtime_ns;
	/** Opaque entity tag (ETag, generation...), "" if none. */
	char etag[128];
	/**
	 * The object may not be deleted before this time (S3 Object Lock
	 * retain-until date, GCS object retention or bucket retention
	 * expiry), in ns since the epoch; 0 when nothing says so.  Only
	 * meaningful with DRGW_LOCK_KNOWN in lock_flags.
	 * Since ABI 1 (took reserved[0]; the gateway zeroes this struct, so
	 * a plugin that does not fill it reports "lock unknown").
	 */
	int64_t retain_until_ns;
	/** DRGW_LOCK_* bits.  Since ABI 1 (took half of reserved[1]). */
	uint32_t lock_flags;
	uint32_t reserved32;
	uint64_t reserved[2];
};

/**
 * The object put() uploads, provided by the gateway.  It describes an
 * immutable file in the gateway's spool.
 */
struct drgw_put_source {
	/** Size of the object in bytes. */
	uint64_t size;
	/** A read-only fd on the object for pread()/copy_file_range()/sendfile();
	 *  do not close it or change its offset.  Same bytes as read_at(). */
	int fd;
	/** Reads exactly len bytes at off into buf.  Thread-safe.
	 *  @return 0, or -EIO on a local read error. */
	int (*read_at)(struct drgw_put_source *src, void *buf, size_t len,
		       uint64_t off);
	/** Token saved by a previous, interrupted put() of this same key and
	 *  object, or NULL/0.  The plugin must validate it and may ignore it. */
	const void *resume_token;
	size_t resume_token_len;
	/** Durably records a resume token (e.g. an upload id and the parts
	 *  done so far) before returning, so that a put() after a crash gets
	 *  it back.  At most 64 KiB.  Call it whenever progress worth keeping
	 *  was made.  Thread-safe.  @return 0 or a negative errno. */
	int (*save_resume_token)(struct drgw_put_source *src, const void *token,
				 size_t len);
	/** Reports bytes uploaded so far (for status output).  Thread-safe. */
	void (*progress)(struct drgw_put_source *src, uint64_t bytes_done);
	/** Non-zero when the gateway wants put() to stop soon; return
	 *  -ECANCELED after saving the resume token. */
	int (*cancelled)(struct drgw_put_source *src);
	/** SHA-256 of the whole object, for backends that verify uploads.
	 *  All zeroes for a growing source. */
	uint8_t sha256[32];

	/**
	 * A growing source (only for plugins with DRGW_CAP_STREAMING_PUT):
	 * when grow is not NULL the object is still being written, size is 0
	 * and size_hint is an upper bound of its final size.  grow() waits
	 * until at least want bytes exist or the object is complete, then
	 * sets *ret_size to the bytes that exist and *ret_complete to 1 once
	 * that is the final size.  read_at() may only read bytes grow()
	 * reported.  -ESTALE from grow() means the object was abandoned (the
	 * file changed while it was encoded): stop, and return -ESTALE after
	 * discarding the upload.  The upload must not become visible under
	 * key before grow() reported it complete.  A resume token saved while
	 * the source grows can only ever be used to abort the upload.
	 * Thread-safe.  Since ABI 1 (takes two of the reserved slots).
	 */
	int (*grow)(struct drgw_put_source *src, uint64_t want,
		    uint64_t *ret_size, int *ret_complete);
	uint64_t size_hint;
	void *reserved[6];
};

/**
 * Called by list() for each object, in the order of the backend.
 * @return 0 to go on, non-zero to stop listing (list() then returns 0).
 */
typedef int (*drgw_list_fn)(void *arg, const char *key,
			    const struct drgw_object_info *info);

/** The method table.  Static and immutable in the plugin. */
struct drgw_backend_ops {
	/** DRGW_BACKEND_ABI_VERSION the plugin was built against. */
	uint32_t abi_version;
	/** sizeof(struct drgw_backend_ops) as the plugin saw it. */
	uint32_t struct_size;
	/** Plugin name for logs, e.g. "local". */
	const char *name;
	/** DRGW_CAP_* bits. */
	uint64_t caps;
	/** URL scheme handled, e.g. "local" for local:///path. */
	const char *scheme;
	/** Bytes of per-instance state the gateway allocates and zeroes. */
	size_t instance_size;

	/* Methods of ABI version 1. */

	/**
	 * Validates cfg and prepares the instance; may check that the backend
	 * is reachable but must not fail only because it is not (report that
	 * from later calls, so the gateway can start while a backend is down).
	 * On failure close() is not called; free what open() allocated.
	 * @return 0, -EINVAL for a bad URL or option, -ENOMEM.
	 */
	int (*open)(void *inst, const struct drgw_backend_config *cfg,
		    struct drgw_err *err);

	/** Releases everything open() set up.  No method runs concurrently. */
	void (*close)(void *inst);

	/**
	 * Stores src under key so that it becomes visible atomically: readers
	 * see either no object or the complete one, never a prefix.  Replacing
	 * an existing key with the same bytes must succeed.  With
	 * DRGW_CAP_RESUMABLE_PUT, it saves progress through
	 * src->save_resume_token() and resumes from src->resume_token.
	 * @return 0 once the object is durably stored; -ECANCELED when
	 * src->cancelled() asked it to stop; any errno above otherwise.
	 */
	int (*put)(void *inst, const char *key, struct drgw_put_source *src,
		   struct drgw_err *err);

	/**
	 * Reads up to len bytes at off of key into buf.  *ret_len is the byte
	 * count read; it is less than len only when the range goes past the end
	 * of the object.  off at or past the end gives *ret_len = 0.
	 * @return 0, -ENOENT if there is no such object.
	 */
	int (*get)(void *inst, const char *key, uint64_t off, void *buf,
		   size_t len, size_t *ret_len, struct drgw_err *err);

	/** @return 0 and *ret_info, or -ENOENT. */
	int (*stat)(void *inst, const char *key,
		    struct drgw_object_info *ret_info, struct drgw_err *err);

	/**
	 * Lists one page of keys starting with prefix, calling fn for each.
	 * page_token is NULL for the first page, else a token this method
	 * wrote into next_token earlier.  On return next_token holds the token
	 * of the next page, or "" when this was the last page.  next_token_size
	 * is at least 4096.
	 */
	int (*list)(void *inst, const char *prefix, const char *page_token,
		    drgw_list_fn fn, void *arg, char *next_token,
		    size_t next_token_size, struct drgw_err *err);

	/** Deletes key.  @return 0 also when it did not exist. */
	int (*remove)(void *inst, const char *key, struct drgw_err *err);

	/**
	 * Discards a resumable upload that will never be finished (its
	 * object was dropped), given the last token put() saved.  Frees any
	 * server-side state (S3 multipart uploads, GCS sessions).
	 * @return 0, also when there was nothing to discard.
	 */
	int (*abort_put)(void *inst, const char *key, const void *token,
			 size_t token_len, struct drgw_err *err);

	/**
	 * Everything else.  Opcodes below 1000 are the gateway's; others are
	 * free for private use.  @return -ENOTSUP for unknown opcodes.
	 */
	int (*ctl)(void *inst, int op, void *arg);

	/*
	 * Methods added later in ABI 1.  A plugin built against an older
	 * header has a smaller struct_size: the gateway then sees NULL here
	 * and falls back as each method says.
	 */

	/**
	 * Deletes the n keys (n <= 1000) as remove() would each, in as few
	 * requests as the backend allows (S3 DeleteObjects, parallel GCS
	 * deletes), retrying like every other call.  A key that does not
	 * exist counts as deleted.  results[i] receives 0 or the negative
	 * errno for keys[i].  The gateway checks locks (stat) before it asks
	 * to delete an object, but a backend that refuses to delete a
	 * protected object must report it (-EACCES or -EPERM), never hide it.
	 * @return 0 when every key was deleted, else the errno of the first
	 * key that failed, with err->msg naming it and why (for a permission
	 * problem: which permission is missing).
	 * Since ABI 1 (NULL: the gateway calls remove() once per key).
	 */
	int (*remove_many)(void *inst, const char *const *keys, size_t n,
			   int *results, struct drgw_err *err);

	/**
	 * Like list(), for the keys starting with prefix that sort (bytewise)
	 * after `after` and before `before` (NULL: unbounded), in bytewise
	 * order, so that the gateway can list disjoint ranges of a large
	 * bucket in parallel (S3 start-after, GCS startOffset/endOffset).
	 * `after` and `before` are keys relative to the backend's prefix like
	 * any other; neither is itself listed.  page_token, when not NULL,
	 * continues a listing of the same range.  A plugin that cannot stop
	 * at `before` may go on past it: the gateway ignores those keys.
	 * Since ABI 1 (NULL: the gateway lists everything with list()).
	 */
	int (*list_range)(void *inst, const char *prefix, const char *after,
			  const char *before, const char *page_token,
			  drgw_list_fn fn, void *arg, char *next_token,
			  size_t next_token_size, struct drgw_err *err);
};

/** ctl() opcodes. */
enum drgw_ctl_op {
	/** arg: struct drgw_err * that receives a one-line description of
	 *  where the backend stores objects (no secrets).  Optional. */
	DRGW_CTL_DESCRIBE = 1,
	/** arg: struct drgw_err *; checks reachability and permissions now. */
	DRGW_CTL_PING = 2,
	/** arg: struct drgw_retention *; what may protect objects from
	 *  deletion on this backend.  Optional (-ENOTSUP: the gateway
	 *  assumes nothing is locked).  Since ABI 1. */
	DRGW_CTL_RETENTION = 3,
};

/* Bits of drgw_retention.flags. */
/** Objects here can be locked or held: the gateway stat()s an object
 *  before it deletes it, unless list() already filled its lock fields. */
#define DRGW_RETENTION_LOCKS (1u << 0)
/** list() fills the lock fields of every object (DRGW_LOCK_KNOWN). */
#define DRGW_RETENTION_LIST_KNOWS (1u << 1)

/**
 * What ctl(DRGW_CTL_RETENTION) fills in: the retention the backend
 * applies to new objects (S3 bucket default retention or the plugin's own
 * retention on upload; a GCS bucket retention policy or object retention).
 * The gateway zeroes it and sets struct_size.  Since ABI 1.
 */
struct drgw_retention {
	uint32_t struct_size;
	/** DRGW_RETENTION_* bits. */
	uint32_t flags;
	/** Every new object stays locked at least this long (ns); 0 if no
	 *  retention applies to new objects. */
	int64_t period_ns;
	/** One human phrase saying where period_ns comes from, e.g.
	 *  "bucket default retention GOVERNANCE 30 days"; "" if none.  When
	 *  ctl() fails, one line saying why (no secrets). */
	char source[128];
	uint64_t reserved[4];
};

/** The entry point every plugin exports. */
DRGW_BACKEND_EXPORT const struct drgw_backend_ops *drgw_backend_entry_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* DRGW_BACKEND_H */
