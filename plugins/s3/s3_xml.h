/* SPDX-License-Identifier: MIT */
/*
 * The XML documents the S3 plugin reads (error bodies, listings, multipart
 * results, STS credentials) and writes (CompleteMultipartUpload).
 *
 * Elements are matched by local name only: s3rver and some S3-compatible
 * services use another namespace URI than AWS, and nothing here needs the
 * namespace to tell elements apart.  Parsing never fetches anything from
 * the network and does not expand entities beyond the XML built-ins.
 */
#ifndef DRGW_S3_XML_H
#define DRGW_S3_XML_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pbuf.h"

/* Call once before any parsing (idempotent, thread-safe). */
void s3_xml_init(void);

/*
 * Reads <Error><Code/><Message/></Error>.
 * @return 0 and the (truncated) strings, -ENOENT if the document is well
 * formed but not an Error, -EIO if it is not XML.
 */
int s3_xml_error(const char *xml, size_t len, char *code, size_t code_size,
		 char *msg, size_t msg_size);

struct s3_xml_object {
	const char *key;
	uint64_t size;
	int64_t mtime_ns;	/* 0 if unknown */
	const char *etag;	/* without quotes */
};

/*
 * Walks a ListObjectsV2 result, calling fn for each Contents entry.  fn
 * returns 0 to go on, non-zero to stop (s3_xml_list then returns 1).
 * next_token receives NextContinuationToken when IsTruncated is true and
 * stays empty otherwise.
 * @return 0 (all seen), 1 (fn stopped), negative fn error, -EIO for a
 * malformed document, -ENOMEM.
 */
int s3_xml_list(const char *xml, size_t len,
		int (*fn)(void *arg, const struct s3_xml_object *o), void *arg,
		struct pbuf *next_token);

/* InitiateMultipartUploadResult: the UploadId.  0, -EIO, -ENOMEM. */
int s3_xml_upload_id(const char *xml, size_t len, struct pbuf *upload_id);

/*
 * Walks a ListPartsResult, calling fn(arg, number, etag, size) per Part.
 * *ret_next_marker is NextPartNumberMarker when IsTruncated, else 0.
 */
int s3_xml_list_parts(const char *xml, size_t len,
		      int (*fn)(void *arg, unsigned number, const char *etag,
				uint64_t size),
		      void *arg, unsigned *ret_next_marker);

/*
 * Walks a ListMultipartUploadsResult, calling fn(arg, key, upload_id) per
 * Upload; fn returns 0 to go on or a negative errno.  When IsTruncated,
 * next_key and next_upload get NextKeyMarker and NextUploadIdMarker, else
 * they are emptied.
 * @return 0, fn's error, -EIO for a malformed document, -ENOMEM.
 */
int s3_xml_list_uploads(const char *xml, size_t len,
			int (*fn)(void *arg, const char *key,
				  const char *upload_id),
			void *arg, struct pbuf *next_key,
			struct pbuf *next_upload);

/*
 * AssumeRoleWithWebIdentityResponse credentials.
 * @return 0, -EIO if fields are missing, -ENOMEM.
 */
int s3_xml_sts_credentials(const char *xml, size_t len, struct pbuf *akid,
			   struct pbuf *secret, struct pbuf *token,
			   int64_t *ret_expiration_ns);

/*
 * Walks a DeleteObjects answer (DeleteResult), calling fn for each Error
 * entry (key as S3 sent it, code, message); Deleted entries are skipped.
 * @return 0, the first non-zero fn result, -EIO for another document.
 */
int s3_xml_delete_errors(const char *xml, size_t len,
			 int (*fn)(void *arg, const char *key, const char *code,
				   const char *msg),
			 void *arg);

/* What GET ?object-lock says. */
struct s3_xml_lock_config {
	int enabled;		/* ObjectLockEnabled = Enabled */
	char mode[16];		/* default retention mode, "" if none */
	uint64_t days;		/* default retention, days + 365 * years */
};

/* ObjectLockConfiguration.  0, -EIO. */
int s3_xml_object_lock(const char *xml, size_t len,
		       struct s3_xml_lock_config *ret);

/* Retention{Mode, RetainUntilDate}: *ret_until_ns 0 when absent.
 * 0, -EIO. */
int s3_xml_retention(const char *xml, size_t len, int64_t *ret_until_ns);

/* LegalHold{Status}: *ret_on 1 for ON.  0, -EIO. */
int s3_xml_legal_hold(const char *xml, size_t len, int *ret_on);

/* Appends s with &, <, >, " and ' escaped. */
void s3_xml_escape(struct pbuf *b, const char *s);

#endif /* DRGW_S3_XML_H */
