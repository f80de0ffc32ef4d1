/* SPDX-License-Identifier: MIT */
/*
 * State shared by the S3 plugin's files.  struct s3 is the per-backend
 * instance that the gateway allocates (ops.instance_size) and zeroes; open()
 * fills it from the URL and options (s3_conf.c) and it is read-only after
 * that, so the methods can share it across threads without locking.  The
 * mutable parts (credential cache, idle HTTP handles) lock themselves.
 */
#ifndef DRGW_S3_INT_H
#define DRGW_S3_INT_H

#include <stdint.h>

#include <drgw/backend.h>

#include "phttp.h"
#include "pmsg.h"
#include "popts.h"

struct s3_creds;

#define S3_MIN_PART (5ULL << 20)
#define S3_MAX_PART (5ULL << 30)
#define S3_DEFAULT_PART (16ULL << 20)
#define S3_MAX_PARTS 10000

struct s3 {
	char *url;			/* "s3://bucket/prefix", for messages */
	char *bucket;
	char *prefix;			/* "" or ending in '/' */
	char *region;
	char *endpoint;			/* "scheme://host[:port]" */
	char *scheme;			/* "http" or "https" */
	char *endpoint_host;		/* "host[:port]" as sent in Host: */
	int virtual_host;		/* bucket in the host name */
	char *storage_class;		/* NULL for the bucket default */
	char *lock_mode;		/* NULL or GOVERNANCE/COMPLIANCE */
	unsigned lock_days;
	int checksum_sha256;		/* also send x-amz-checksum-sha256 */
	uint64_t part_size;
	unsigned concurrency;
	int read_only;
	char *profile;			/* explicit profile option, or NULL */
	char *sts_endpoint;		/* option, or NULL */
	struct popts_http net;		/* the common HTTP options */
	const struct drgw_host *host;
	struct phttp_client *http;	/* storage requests */
	struct phttp_client *cred_http;	/* STS, container, IMDS: TLS
					 * always verified (popts.h) */
	struct s3_creds *creds;
	/* Object Lock on the bucket, as ctl(DRGW_CTL_RETENTION) found it
	 * (s3_del.c): 0 unknown, 1 off, 2 on.  Written and read with
	 * __atomic builtins, the one field that changes after open(). */
	int bucket_lock;
};

#endif /* DRGW_S3_INT_H */
