/* SPDX-License-Identifier: MIT */
/*
 * Digests the cloud protocols need, on top of OpenSSL's libcrypto: MD5
 * (Content-MD5, S3 part ETags, GCS md5Hash), SHA-256 and HMAC-SHA256
 * (SigV4, x-amz-checksum-sha256) and CRC32C (GCS crc32c, S3 checksums).
 * OpenSSL rather than libsodium because its SHA-256 uses the CPU's SHA
 * extensions: about four times faster on the upload path.
 */
#ifndef DRGW_PDIGEST_H
#define DRGW_PDIGEST_H

#include <stddef.h>
#include <stdint.h>

#define PDIGEST_MD5_LEN 16
#define PDIGEST_SHA256_LEN 32

enum pdigest_alg {
	PDIGEST_MD5,
	PDIGEST_SHA256,
};

/* An incremental digest.  Not thread-safe; one per stream. */
struct pdigest {
	void *ctx;	/* EVP_MD_CTX */
	enum pdigest_alg alg;
};

/* @return 0, -ENOMEM, or -EOPNOTSUPP (e.g. MD5 in FIPS mode). */
int pdigest_init(struct pdigest *d, enum pdigest_alg alg);
int pdigest_update(struct pdigest *d, const void *data, size_t len);
/* Writes the digest (16 or 32 bytes) and releases the context. */
int pdigest_final(struct pdigest *d, uint8_t *out);
/* Releases a context that will not be finished; NULL-safe, idempotent. */
void pdigest_release(struct pdigest *d);

/* One-shot helpers; 0 or a negative errno. */
int pdigest_md5(const void *data, size_t len, uint8_t out[PDIGEST_MD5_LEN]);
int pdigest_sha256(const void *data, size_t len,
		   uint8_t out[PDIGEST_SHA256_LEN]);
int pdigest_hmac_sha256(const void *key, size_t key_len, const void *data,
			size_t len, uint8_t out[PDIGEST_SHA256_LEN]);

/* CRC32C (Castagnoli); pass 0 as crc for the first block. */
uint32_t pdigest_crc32c(uint32_t crc, const void *data, size_t len);

#endif /* DRGW_PDIGEST_H */
