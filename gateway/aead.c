/* SPDX-License-Identifier: MIT */
/*
 * XChaCha20-Poly1305 with OpenSSL doing the bulk (aead.h says why).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>

#include "aead.h"

/* Fetched once: EVP_chacha20_poly1305() fetches the implementation at
 * every use, which gives every thread that seals or opens a chunk an
 * OpenSSL error state, and one of a thread still exiting when the
 * process does was reported as a leak. */
static EVP_CIPHER *cipher;
static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;

static void fetch_cipher(void)
{
	cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

int drgw_aead_init(void)
{
	pthread_once(&cipher_once, fetch_cipher);
	return cipher ? 0 : -ENOSYS;
}

/* A context set up for ChaCha20-Poly1305 with the subkey and 96-bit nonce
 * that XChaCha20 derives from key and nonce, and ad fed in. */
static EVP_CIPHER_CTX *begin(bool seal, const uint8_t *ad, size_t adlen,
			     const uint8_t nonce[24], const uint8_t key[32])
{
	EVP_CIPHER_CTX *ctx;
	uint8_t subkey[32], iv[12] = { 0 };
	int ok, n;

	if (drgw_aead_init() < 0 || !(ctx = EVP_CIPHER_CTX_new()))
		return NULL;
	crypto_core_hchacha20(subkey, nonce, key, NULL);
	memcpy(iv + 4, nonce + 16, 8);
	ok = EVP_CipherInit_ex(ctx, cipher, NULL, subkey, iv, seal) &&
	     EVP_CipherUpdate(ctx, NULL, &n, ad, (int)adlen);
	sodium_memzero(subkey, sizeof(subkey));
	if (!ok) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int drgw_aead_seal(uint8_t *c, const uint8_t *m, size_t mlen,
		   const uint8_t *ad, size_t adlen, const uint8_t nonce[24],
		   const uint8_t key[32])
{
	EVP_CIPHER_CTX *ctx;
	int n, ok;

	if (mlen > INT_MAX || adlen > INT_MAX)
		return -EINVAL;
	ctx = begin(true, ad, adlen, nonce, key);
	if (!ctx)
		return -ENOMEM;
	ok = EVP_CipherUpdate(ctx, c, &n, m, (int)mlen) &&
	     EVP_CipherFinal_ex(ctx, c + mlen, &n) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, DRGW_AEAD_TAG,
				 c + mlen);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -ENOMEM;
}

int drgw_aead_open(uint8_t *m, const uint8_t *c, size_t clen,
		   const uint8_t *ad, size_t adlen, const uint8_t nonce[24],
		   const uint8_t key[32])
{
	EVP_CIPHER_CTX *ctx;
	size_t mlen;
	int n, ok;

	if (clen < DRGW_AEAD_TAG)
		return -EBADMSG;
	mlen = clen - DRGW_AEAD_TAG;
	if (mlen > INT_MAX || adlen > INT_MAX)
		return -EINVAL;
	ctx = begin(false, ad, adlen, nonce, key);
	if (!ctx)
		return -ENOMEM;
	ok = EVP_CipherUpdate(ctx, m, &n, c, (int)mlen) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, DRGW_AEAD_TAG,
				 (void *)(c + mlen)) &&
	     EVP_CipherFinal_ex(ctx, m + mlen, &n);
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		/* What was decrypted is unauthenticated: no caller may see
		 * it. */
		sodium_memzero(m, mlen);
		return -EBADMSG;
	}
	return 0;
}
