/* SPDX-License-Identifier: MIT */
#ifndef DRGW_AEAD_H
#define DRGW_AEAD_H

#include <stddef.h>
#include <stdint.h>

/*
 * XChaCha20-Poly1305 (IETF), the AEAD of every object chunk and footer:
 * byte for byte libsodium's crypto_aead_xchacha20poly1305_ietf_encrypt()
 * and _decrypt() (combined mode, the 16-byte tag after the ciphertext).
 * HChaCha20 (libsodium) derives a subkey from the key and the first 16
 * bytes of the nonce; ChaCha20-Poly1305 of RFC 8439 (OpenSSL) then runs
 * with that subkey and the nonce's last 8 bytes.  OpenSSL's vectorised
 * code does the bulk 3.3 times as fast as libsodium 1.0.18 on this
 * project's machines (4.0 against 1.2 GB/s a core): decryption was a
 * quarter of a restore read's CPU time.
 *
 * c and m may be the same buffer (in place).  drgw_aead_seal() writes
 * mlen + DRGW_AEAD_TAG bytes; drgw_aead_open() writes clen - DRGW_AEAD_TAG
 * bytes, and nothing usable unless it returns 0.  Both return 0, -EBADMSG
 * (open: forged, corrupt or truncated), -EINVAL (2 GiB or more: EVP
 * counts in int; chunks and footers are far smaller) or -ENOMEM.
 */

#define DRGW_AEAD_TAG 16

/* Fetches OpenSSL's implementation, once (the first seal or open does it
 * otherwise); main() calls it on the main thread.  -ENOSYS if OpenSSL
 * has none. */
int drgw_aead_init(void);

int drgw_aead_seal(uint8_t *c, const uint8_t *m, size_t mlen,
		   const uint8_t *ad, size_t adlen, const uint8_t nonce[24],
		   const uint8_t key[32]);
int drgw_aead_open(uint8_t *m, const uint8_t *c, size_t clen,
		   const uint8_t *ad, size_t adlen, const uint8_t nonce[24],
		   const uint8_t key[32]);

#endif
