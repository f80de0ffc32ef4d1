/* SPDX-License-Identifier: MIT */
/*
 * Key files and the keyring; see key.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"

/* A key file is tiny; anything bigger is not a key file. */
#define KEY_FILE_MAX 256

static const char key_id_context[] = "drgw key id v1";

static void derive_id(struct drgw_key *k)
{
	crypto_generichash(k->id, sizeof(k->id),
			   (const unsigned char *)key_id_context,
			   sizeof(key_id_context) - 1, k->key, sizeof(k->key));
}

void drgw_key_id_hex(const uint8_t id[DRGW_KEY_ID_BYTES], char out[17])
{
	drgw_hex(id, DRGW_KEY_ID_BYTES, out);
}

int drgw_key_generate(const char *path, struct drgw_err *err)
{
	uint8_t key[DRGW_KEY_BYTES];
	char b64[sodium_base64_ENCODED_LEN(DRGW_KEY_BYTES,
					   sodium_base64_VARIANT_ORIGINAL)];
	int fd, r;

	if (sodium_init() < 0) {
		drgw_err_set(err, "cannot initialise libsodium");
		return -EIO;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			drgw_err_set(err,
				     "%s already exists; refusing to overwrite a key (remove it first if you really mean to)",
				     path);
		else
			drgw_err_set(err, "cannot create key file %s: %s", path,
				     strerror(-r));
		return r;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key),
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(key, sizeof(key));
	/* open() applied the umask; make 0600 explicit anyway. */
	r = fchmod(fd, 0600) < 0 ? -errno : 0;
	if (r == 0)
		r = drgw_write_full(fd, b64, strlen(b64));
	if (r == 0)
		r = drgw_write_full(fd, "\n", 1);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	sodium_memzero(b64, sizeof(b64));
	close(fd);
	if (r < 0) {
		unlink(path);
		drgw_err_set(err, "cannot write key file %s: %s", path,
			     strerror(-r));
		return r;
	}
	/* The key is written; a failed directory fsync only weakens its
	 * durability across power loss, which the caller cannot fix. */
	(void)drgw_fsync_parent(path);
	return 0;
}

/* Decodes a key file's content: base64 (one line) or 32 raw bytes. */
static int decode_key(const uint8_t *buf, size_t len,
		      uint8_t out[DRGW_KEY_BYTES])
{
	size_t bin_len = 0;
	const char *end = NULL;
	size_t tlen = len;

	while (tlen && (buf[tlen - 1] == '\n' || buf[tlen - 1] == '\r' ||
			buf[tlen - 1] == ' '))
		tlen--;
	if (tlen > 0 &&
	    sodium_base642bin(out, DRGW_KEY_BYTES, (const char *)buf, tlen, NULL,
			      &bin_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    end == (const char *)buf + tlen && bin_len == DRGW_KEY_BYTES)
		return 0;
	if (len == DRGW_KEY_BYTES) {
		memcpy(out, buf, DRGW_KEY_BYTES);
		return 0;
	}
	return -EINVAL;
}

int drgw_keyring_add_bytes(struct drgw_keyring *kr,
			   const uint8_t key[DRGW_KEY_BYTES])
{
	struct drgw_key *keys;

	if (kr->n >= DRGW_KEYRING_MAX)
		return -E2BIG;
	if (sodium_init() < 0)
		return -EIO;
	keys = sodium_malloc((kr->n + 1) * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	if (kr->n)
		memcpy(keys, kr->keys, kr->n * sizeof(*keys));
	memcpy(keys[kr->n].key, key, DRGW_KEY_BYTES);
	derive_id(&keys[kr->n]);
	sodium_free(kr->keys); /* wipes the old copy */
	kr->keys = keys;
	kr->n++;
	return 0;
}

int drgw_keyring_add_file(struct drgw_keyring *kr, const char *path,
			  struct drgw_err *err)
{
	uint8_t buf[KEY_FILE_MAX + 1];
	uint8_t key[DRGW_KEY_BYTES];
	struct stat st;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			drgw_err_set(err,
				     "key file %s does not exist; create one with 'drgw keygen %s' or point --key-file at your key",
				     path, path);
		else
			drgw_err_set(err, "cannot open key file %s: %s", path,
				     strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		drgw_err_set(err, "key file %s is not a regular file", path);
		return -EINVAL;
	}
	/* As ssh does for its keys: whoever owns the file can swap the key
	 * (and read what the daemon then writes with it). */
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		close(fd);
		drgw_err_set(err,
			     "key file %s is owned by uid %u, not by root or the user drgw runs as (uid %u); run 'chown %u %s'",
			     path, (unsigned)st.st_uid, (unsigned)geteuid(),
			     (unsigned)geteuid(), path);
		return -EPERM;
	}
	if (st.st_mode & 077) {
		close(fd);
		drgw_err_set(err,
			     "key file %s is accessible by group or others (mode %04o); run 'chmod 600 %s' (Kubernetes: defaultMode: 0400)",
			     path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	n = drgw_pread_full(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0) {
		drgw_err_set(err, "cannot read key file %s: %s", path,
			     strerror((int)-n));
		return (int)n;
	}
	r = n > KEY_FILE_MAX ? -EINVAL : decode_key(buf, (size_t)n, key);
	sodium_memzero(buf, sizeof(buf));
	if (r < 0) {
		drgw_err_set(err,
			     "key file %s does not hold a drgw key (32 bytes, base64 on one line); create one with 'drgw keygen'",
			     path);
		return r;
	}
	r = drgw_keyring_add_bytes(kr, key);
	sodium_memzero(key, sizeof(key));
	if (r < 0)
		drgw_err_set(err, "cannot add key %s: %s", path, strerror(-r));
	return r;
}

const struct drgw_key *drgw_keyring_find(const struct drgw_keyring *kr,
					 const uint8_t id[DRGW_KEY_ID_BYTES])
{
	for (size_t i = 0; i < kr->n; i++)
		if (sodium_memcmp(kr->keys[i].id, id, DRGW_KEY_ID_BYTES) == 0)
			return &kr->keys[i];
	return NULL;
}

void drgw_keyring_clear(struct drgw_keyring *kr)
{
	sodium_free(kr->keys);
	kr->keys = NULL;
	kr->n = 0;
}
