/* SPDX-License-Identifier: MIT */
/*
 * MD5, SHA-256 and HMAC-SHA256 through OpenSSL's EVP interface (the
 * low-level MD5()/SHA256() calls are deprecated in OpenSSL 3), and a
 * software CRC32C using slicing-by-8, which runs at a few GB/s and needs
 * no CPU feature detection.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pdigest.h"

static const EVP_MD *md_of(enum pdigest_alg alg)
{
	return alg == PDIGEST_MD5 ? EVP_md5() : EVP_sha256();
}

int pdigest_init(struct pdigest *d, enum pdigest_alg alg)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	d->ctx = NULL;
	d->alg = alg;
	if (!ctx)
		return -ENOMEM;
	if (!EVP_DigestInit_ex(ctx, md_of(alg), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -EOPNOTSUPP;
	}
	d->ctx = ctx;
	return 0;
}

int pdigest_update(struct pdigest *d, const void *data, size_t len)
{
	if (!d->ctx)
		return -EINVAL;
	return EVP_DigestUpdate(d->ctx, data, len) ? 0 : -EIO;
}

int pdigest_final(struct pdigest *d, uint8_t *out)
{
	int ok;

	if (!d->ctx)
		return -EINVAL;
	ok = EVP_DigestFinal_ex(d->ctx, out, NULL);
	pdigest_release(d);
	return ok ? 0 : -EIO;
}

void pdigest_release(struct pdigest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	d->ctx = NULL;
}

static int oneshot(enum pdigest_alg alg, const void *data, size_t len,
		   uint8_t *out)
{
	if (!EVP_Digest(data, len, out, NULL, md_of(alg), NULL))
		return -EOPNOTSUPP;
	return 0;
}

int pdigest_md5(const void *data, size_t len, uint8_t out[PDIGEST_MD5_LEN])
{
	return oneshot(PDIGEST_MD5, data, len, out);
}

int pdigest_sha256(const void *data, size_t len,
		   uint8_t out[PDIGEST_SHA256_LEN])
{
	return oneshot(PDIGEST_SHA256, data, len, out);
}

int pdigest_hmac_sha256(const void *key, size_t key_len, const void *data,
			size_t len, uint8_t out[PDIGEST_SHA256_LEN])
{
	unsigned int n = 0;

	if (key_len > INT32_MAX)
		return -EINVAL;
	if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) ||
	    n != PDIGEST_SHA256_LEN)
		return -EIO;
	return 0;
}

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 255];
}

uint32_t pdigest_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
			      (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;

		crc = crc_table[7][lo & 255] ^ crc_table[6][(lo >> 8) & 255] ^
		      crc_table[5][(lo >> 16) & 255] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 255] ^ crc_table[2][(hi >> 8) & 255] ^
		      crc_table[1][(hi >> 16) & 255] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 255];
	return ~crc;
}
