/* SPDX-License-Identifier: MIT */
/*
 * Key files and the keyring; see key.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bech32.h"
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

/* Creates path (mode 0600, never over an existing file) holding text,
 * fsynced; what names the secret in messages ("key", "identity").  On
 * failure nothing is left behind. */
static int write_secret_file(const char *path, const char *what,
			     const char *text, struct drgw_err *err)
{
	int fd, r;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			drgw_err_set(err,
				     "%s already exists; refusing to overwrite %s %s (remove it first if you really mean to)",
				     path, what[0] == 'i' ? "an" : "a", what);
		else
			drgw_err_set(err, "cannot create %s file %s: %s", what,
				     path, strerror(-r));
		return r;
	}
	/* open() applied the umask; make 0600 explicit anyway. */
	r = fchmod(fd, 0600) < 0 ? -errno : 0;
	if (r == 0)
		r = drgw_write_full(fd, text, strlen(text));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0) {
		unlink(path);
		drgw_err_set(err, "cannot write %s file %s: %s", what, path,
			     strerror(-r));
		return r;
	}
	/* The secret is written; a failed directory fsync only weakens its
	 * durability across power loss, which the caller cannot fix. */
	(void)drgw_fsync_parent(path);
	return 0;
}

int drgw_key_generate(const char *path, struct drgw_err *err)
{
	uint8_t key[DRGW_KEY_BYTES];
	char b64[sodium_base64_ENCODED_LEN(DRGW_KEY_BYTES,
					   sodium_base64_VARIANT_ORIGINAL) + 1];
	size_t n;
	int r;

	if (sodium_init() < 0) {
		drgw_err_set(err, "cannot initialise libsodium");
		return -EIO;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64) - 1, key, sizeof(key),
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(key, sizeof(key));
	n = strlen(b64); /* one line: room for the newline was kept */
	b64[n] = '\n';
	b64[n + 1] = '\0';
	r = write_secret_file(path, "key", b64, err);
	sodium_memzero(b64, sizeof(b64));
	return r;
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

/*
 * The rules a key, identity or recipient file must follow: a regular file
 * owned by root or by us (whoever owns it can swap it, as ssh reasons),
 * with none of the forbidden permission bits: 077 for secrets, 022 for
 * recipients (public, but whoever may change the file can add their own
 * and read every later backup).  what names the kind in messages.
 */
static int check_file(int fd, const char *what, const char *path,
		      mode_t forbidden, struct drgw_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		drgw_err_set(err, "%s %s is not a regular file", what, path);
		return -EINVAL;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		drgw_err_set(err,
			     "%s %s is owned by uid %u, not by root or the user drgw runs as (uid %u); run 'chown %u %s'",
			     what, path, (unsigned)st.st_uid, (unsigned)geteuid(),
			     (unsigned)geteuid(), path);
		return -EPERM;
	}
	if (st.st_mode & forbidden) {
		drgw_err_set(err,
			     forbidden == 077 ?
				     "%s %s is accessible by group or others (mode %04o); run 'chmod 600 %s' (Kubernetes: defaultMode: 0400)" :
				     "%s %s is writable by group or others (mode %04o); run 'chmod 644 %s'",
			     what, path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

/*
 * Reads a small secret file into buf (at most size - 1 bytes, then a NUL),
 * refusing what a stranger could have written or read: not a regular
 * file, owned by someone other than root or us (as ssh does), or
 * accessible by group or others.  what names the kind in messages.
 */
static int read_secret_file(const char *path, const char *what,
			    const char *create_hint, uint8_t *buf, size_t size,
			    size_t *ret_len, struct drgw_err *err)
{
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			drgw_err_set(err, "%s %s does not exist; %s", what, path,
				     create_hint);
		else
			drgw_err_set(err, "cannot open %s %s: %s", what, path,
				     strerror(-r));
		return r;
	}
	r = check_file(fd, what, path, 077, err);
	if (r < 0) {
		close(fd);
		return r;
	}
	n = drgw_pread_full(fd, buf, size, 0);
	close(fd);
	if (n < 0) {
		drgw_err_set(err, "cannot read %s %s: %s", what, path,
			     strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n >= size) {
		sodium_memzero(buf, size);
		drgw_err_set(err, "%s %s is too big to be one", what, path);
		return -EINVAL;
	}
	buf[n] = '\0';
	*ret_len = (size_t)n;
	return 0;
}

int drgw_keyring_add_file(struct drgw_keyring *kr, const char *path,
			  struct drgw_err *err)
{
	uint8_t buf[KEY_FILE_MAX + 1];
	uint8_t key[DRGW_KEY_BYTES];
	char hint[4200];
	size_t n;
	int r;

	snprintf(hint, sizeof(hint),
		 "create one with 'drgw keygen %s' or point --key-file at your key",
		 path);
	r = read_secret_file(path, "key file", hint, buf, sizeof(buf), &n, err);
	if (r < 0)
		return r;
	r = decode_key(buf, n, key);
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
	sodium_free(kr->ids);
	free(kr->recips);
	memset(kr, 0, sizeof(*kr));
}

/* --- identities and recipients --- */

static const char recipient_tag_context[] = "drgw recipient tag v2";

void drgw_recipient_tag(const uint8_t pk[32], uint8_t tag[8])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 8);
	crypto_generichash_update(&st, (const uint8_t *)recipient_tag_context,
				  sizeof(recipient_tag_context) - 1);
	crypto_generichash_update(&st, pk, 32);
	crypto_generichash_final(&st, tag, 8);
}

void drgw_recipient_string(const uint8_t pk[32],
			   char out[DRGW_RECIPIENT_STR_MAX])
{
	drgw_bech32_encode(DRGW_RECIPIENT_HRP, pk, 32, false, out,
			   DRGW_RECIPIENT_STR_MAX);
}

int drgw_keyring_add_identity_bytes(struct drgw_keyring *kr,
				    const uint8_t sk[32])
{
	struct drgw_identity *ids;

	if (kr->n_ids >= DRGW_KEYRING_MAX)
		return -E2BIG;
	if (sodium_init() < 0)
		return -EIO;
	ids = sodium_malloc((kr->n_ids + 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	if (kr->n_ids)
		memcpy(ids, kr->ids, kr->n_ids * sizeof(*ids));
	memcpy(ids[kr->n_ids].sk, sk, 32);
	crypto_scalarmult_base(ids[kr->n_ids].pk, sk);
	drgw_recipient_tag(ids[kr->n_ids].pk, ids[kr->n_ids].tag);
	sodium_free(kr->ids); /* wipes the old copy */
	kr->ids = ids;
	kr->n_ids++;
	return 0;
}

/* The one identity line of an identity file ('#' lines are comments). */
static int parse_identity(char *text, uint8_t sk[32])
{
	int found = 0, r = -EINVAL;

	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (found++)
			return -EINVAL;
		r = drgw_bech32_decode(line, DRGW_IDENTITY_HRP, sk, 32);
	}
	return r;
}

static int load_identity(const char *path, uint8_t sk[32],
			 struct drgw_err *err)
{
	char hint[4200];
	uint8_t buf[1024];
	size_t n;
	int r;

	snprintf(hint, sizeof(hint),
		 "create one with 'drgw keygen --identity %s'", path);
	r = read_secret_file(path, "identity file", hint, buf, sizeof(buf), &n,
			     err);
	if (r < 0)
		return r;
	r = parse_identity((char *)buf, sk);
	sodium_memzero(buf, sizeof(buf));
	if (r < 0)
		drgw_err_set(err,
			     "identity file %s does not hold one drgw identity (a DRGW-SECRET-KEY-1... line); create one with 'drgw keygen --identity'",
			     path);
	return r;
}

int drgw_keyring_add_identity_file(struct drgw_keyring *kr, const char *path,
				   struct drgw_err *err)
{
	uint8_t *sk;
	int r;

	if (sodium_init() < 0)
		return -EIO;
	sk = sodium_malloc(32);
	if (!sk)
		return -ENOMEM;
	r = load_identity(path, sk, err);
	if (r == 0) {
		r = drgw_keyring_add_identity_bytes(kr, sk);
		if (r < 0)
			drgw_err_set(err, "cannot add identity %s: %s", path,
				     strerror(-r));
	}
	sodium_free(sk);
	return r;
}

int drgw_identity_recipient(const char *path,
			    char recipient[DRGW_RECIPIENT_STR_MAX],
			    uint8_t tag[8], struct drgw_err *err)
{
	uint8_t *sk, pk[32];
	int r;

	if (sodium_init() < 0)
		return -EIO;
	sk = sodium_malloc(32);
	if (!sk)
		return -ENOMEM;
	r = load_identity(path, sk, err);
	if (r == 0) {
		crypto_scalarmult_base(pk, sk);
		drgw_recipient_string(pk, recipient);
		drgw_recipient_tag(pk, tag);
	}
	sodium_free(sk);
	return r;
}

int drgw_identity_generate(const char *path,
			   char recipient[DRGW_RECIPIENT_STR_MAX],
			   uint8_t tag[8], struct drgw_err *err)
{
	char line[128], text[512];
	uint8_t *sk;
	uint8_t pk[32];
	int r;

	if (sodium_init() < 0) {
		drgw_err_set(err, "cannot initialise libsodium");
		return -EIO;
	}
	sk = sodium_malloc(32);
	if (!sk)
		return -ENOMEM;
	randombytes_buf(sk, 32);
	crypto_scalarmult_base(pk, sk);
	drgw_recipient_string(pk, recipient);
	drgw_recipient_tag(pk, tag);
	drgw_bech32_encode(DRGW_IDENTITY_HRP, sk, 32, true, line, sizeof(line));
	sodium_free(sk);
	snprintf(text, sizeof(text),
		 "# drgw identity: decrypts what is encrypted to its recipient.\n"
		 "# Keep it secret (restore and drill environments only).\n"
		 "# recipient: %s\n%s\n",
		 recipient, line);
	sodium_memzero(line, sizeof(line));
	r = write_secret_file(path, "identity", text, err);
	sodium_memzero(text, sizeof(text));
	return r;
}

int drgw_keyring_add_recipient(struct drgw_keyring *kr, const char *s,
			       struct drgw_err *err)
{
	struct drgw_recipient *p;
	uint8_t pk[32];

	/* Never echo a secret pasted where a public key belongs. */
	if (!strncasecmp(s, DRGW_IDENTITY_HRP, strlen(DRGW_IDENTITY_HRP))) {
		drgw_err_set(err,
			     "a secret identity was given where a recipient belongs (not shown here); give its recipient instead: 'drgw keygen --recipient-of IDENTITY-FILE' prints it");
		return -EINVAL;
	}
	if (drgw_bech32_decode(s, DRGW_RECIPIENT_HRP, pk, sizeof(pk)) < 0) {
		drgw_err_set(err,
			     "'%.80s' is not a drgw recipient (drgw1 followed by 58 characters, checksummed: check for a typo)",
			     s);
		return -EINVAL;
	}
	{
		/* A low-order point would give every sender the same
		 * (all-zero) shared secret: not a key anyone holds. */
		uint8_t probe[32], scalar[32];
		int bad;

		randombytes_buf(scalar, sizeof(scalar));
		bad = crypto_scalarmult(probe, scalar, pk) != 0;
		sodium_memzero(scalar, sizeof(scalar));
		if (bad) {
			drgw_err_set(err, "'%.80s' is not a usable recipient (not a valid public key)",
				     s);
			return -EINVAL;
		}
	}
	/* Given twice (the command line and a file): one stanza. */
	for (size_t i = 0; i < kr->n_recips; i++)
		if (!memcmp(kr->recips[i].pk, pk, 32))
			return 0;
	if (kr->n_recips >= DRGW_KEYRING_MAX) {
		drgw_err_set(err, "too many recipients (max %d)", DRGW_KEYRING_MAX);
		return -E2BIG;
	}
	p = realloc(kr->recips, (kr->n_recips + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	kr->recips = p;
	memcpy(p[kr->n_recips].pk, pk, 32);
	drgw_recipient_tag(pk, p[kr->n_recips].tag);
	kr->n_recips++;
	return 0;
}

int drgw_keyring_add_recipient_file(struct drgw_keyring *kr, const char *path,
				    struct drgw_err *err)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC), found = 0, r = 0;
	ssize_t n;

	if (fd < 0) {
		drgw_err_set(err, "cannot open recipient file %s: %s", path,
			     strerror(errno));
		return -errno;
	}
	r = check_file(fd, "recipient file", path, 022, err);
	if (r < 0) {
		close(fd);
		return r;
	}
	n = drgw_pread_full(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n < 0 || (size_t)n >= sizeof(buf) - 1) {
		drgw_err_set(err, "cannot read recipient file %s: %s", path,
			     n < 0 ? strerror((int)-n) : "too big");
		return n < 0 ? (int)n : -EINVAL;
	}
	buf[n] = '\0';
	for (char *line = buf, *next; line && r == 0; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line += strspn(line, " \t");
		line[strcspn(line, " \t\r#")] = '\0';
		if (!line[0])
			continue;
		r = drgw_keyring_add_recipient(kr, line, err);
		found++;
	}
	if (r == 0 && !found) {
		drgw_err_set(err, "recipient file %s holds no recipient", path);
		r = -EINVAL;
	}
	if (r < 0)
		drgw_err_prefix(err, "%s", path);
	return r;
}

const struct drgw_identity *drgw_keyring_find_identity(
	const struct drgw_keyring *kr, const uint8_t tag[8])
{
	for (size_t i = 0; i < kr->n_ids; i++)
		if (sodium_memcmp(kr->ids[i].tag, tag, 8) == 0)
			return &kr->ids[i];
	return NULL;
}

void drgw_keyring_writer_digest(const struct drgw_keyring *kr,
				uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	if (kr->n)
		crypto_generichash_update(&st, kr->keys[0].id,
					  DRGW_KEY_ID_BYTES);
	for (size_t i = 0; i < kr->n_recips; i++)
		crypto_generichash_update(&st, kr->recips[i].pk, 32);
	crypto_generichash_final(&st, out, 32);
}

bool drgw_keyring_can_encrypt(const struct drgw_keyring *kr)
{
	return kr->n > 0 || kr->n_recips > 0;
}

bool drgw_keyring_can_decrypt(const struct drgw_keyring *kr)
{
	return kr->n > 0 || kr->n_ids > 0;
}
