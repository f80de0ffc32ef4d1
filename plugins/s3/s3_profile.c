/* SPDX-License-Identifier: MIT */
/*
 * AWS shared config/credentials file reader; see s3_profile.h.
 *
 * The format is Python configparser's as the AWS CLI uses it: "[section]"
 * lines, "key = value" (or "key: value") lines, comments starting with '#'
 * or ';', and indented continuation lines that belong to nested settings
 * such as "s3 =\n  addressing_style = path"; those are skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pbuf.h"
#include "s3_profile.h"

#define MAX_FILE (1 << 20)

const char *s3_profile_name(const char *name)
{
	const char *env = getenv("AWS_PROFILE");

	if (name && *name)
		return name;
	return env && *env ? env : "default";
}

/* Reads a whole (small) file; -ENOENT if it does not exist. */
static int slurp(const char *path, struct pbuf *out)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || out->len + (size_t)n > MAX_FILE) {
			close(fd);
			OPENSSL_cleanse(buf, sizeof(buf));
			return n < 0 ? -EIO : -EFBIG;
		}
		pbuf_add(out, buf, (size_t)n);
	}
	close(fd);
	OPENSSL_cleanse(buf, sizeof(buf));
	return out->failed ? -ENOMEM : 0;
}

static char *trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r'))
		end--;
	*end = '\0';
	return s;
}

static int set_value(char **slot, const char *v, int overwrite)
{
	char *copy;

	if (*slot && !overwrite)
		return 0;
	copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	if (*slot) {
		OPENSSL_cleanse(*slot, strlen(*slot));
		free(*slot);
	}
	*slot = copy;
	return 0;
}

static int store(struct s3_profile *p, const char *k, const char *v,
		 int overwrite)
{
	static const char *const unsupported[] = {
		"credential_process", "source_profile", "credential_source",
		"sso_start_url", "sso_session", "login_session", NULL,
	};
	static const struct {
		const char *key;
		size_t off;
	} known[] = {
		{ "aws_access_key_id", offsetof(struct s3_profile, access_key) },
		{ "aws_secret_access_key", offsetof(struct s3_profile, secret_key) },
		{ "aws_session_token", offsetof(struct s3_profile, session_token) },
		{ "region", offsetof(struct s3_profile, region) },
		{ "role_arn", offsetof(struct s3_profile, role_arn) },
		{ "web_identity_token_file",
		  offsetof(struct s3_profile, web_identity_token_file) },
		{ "role_session_name",
		  offsetof(struct s3_profile, role_session_name) },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(k, known[i].key))
			return set_value((char **)((char *)p + known[i].off),
					 v, overwrite);
	for (size_t i = 0; unsupported[i]; i++)
		if (!strcmp(k, unsupported[i]) && !p->unsupported)
			p->unsupported = unsupported[i];
	return 0;
}

/*
 * Scans text for section and stores its keys into p; overwrite says
 * whether this file's values win over ones already stored.
 */
static int scan(char *text, const char *section, struct s3_profile *p,
		int overwrite)
{
	int in = 0, r = 0;
	char *line = text;

	while (line && *line && !r) {
		char *nl = strchr(line, '\n');
		char *end = nl ? nl : line + strlen(line);
		char *s, *eq;

		if (line[0] == ' ' || line[0] == '\t') {
			/* nested setting or continuation: not ours */
			line = nl ? nl + 1 : NULL;
			continue;
		}
		s = trim(line, end);
		line = nl ? nl + 1 : NULL;
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strrchr(s, ']');

			if (!close)
				continue;
			in = !strcmp(trim(s + 1, close), section);
			if (in)
				p->found = 1;
			continue;
		}
		if (!in)
			continue;
		eq = strpbrk(s, "=:");
		if (!eq)
			continue;
		*eq = '\0';
		r = store(p, trim(s, eq), trim(eq + 1, eq + 1 + strlen(eq + 1)),
			  overwrite);
	}
	return r;
}

static int read_file(const char *env, const char *def, const char *section,
		     struct s3_profile *p, int overwrite)
{
	struct pbuf path = PBUF_INIT, text = PBUF_INIT;
	const char *e = getenv(env), *home = getenv("HOME");
	int r;

	if (e && *e)
		pbuf_adds(&path, e);
	else if (home && *home)
		pbuf_addf(&path, "%s/%s", home, def);
	else
		return 0;
	if (!pbuf_str(&path))
		return -ENOMEM;
	r = slurp(path.buf, &text);
	if (r == -ENOENT || r == -ENOTDIR)
		r = 0;
	else if (r == 0)
		r = scan(text.buf ? text.buf : (char *)"", section, p, overwrite);
	pbuf_release(&path);
	pbuf_release_secret(&text);
	return r;
}

int s3_profile_load(const char *name, struct s3_profile *p)
{
	struct pbuf section = PBUF_INIT;
	int r;

	memset(p, 0, sizeof(*p));
	r = read_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", name,
		      p, 1);
	if (r < 0)
		goto out;
	if (strcmp(name, "default"))
		pbuf_addf(&section, "profile %s", name);
	else
		pbuf_adds(&section, "default");
	if (!pbuf_str(&section)) {
		r = -ENOMEM;
		goto out;
	}
	r = read_file("AWS_CONFIG_FILE", ".aws/config", section.buf, p, 0);
	if (r == 0 && !strcmp(name, "default"))
		r = read_file("AWS_CONFIG_FILE", ".aws/config",
			      "profile default", p, 0);
out:
	pbuf_release(&section);
	if (r < 0)
		s3_profile_release(p);
	return r;
}

static void wipe(char **s)
{
	if (*s)
		OPENSSL_cleanse(*s, strlen(*s));
	free(*s);
	*s = NULL;
}

void s3_profile_release(struct s3_profile *p)
{
	wipe(&p->access_key);
	wipe(&p->secret_key);
	wipe(&p->session_token);
	wipe(&p->region);
	wipe(&p->role_arn);
	wipe(&p->web_identity_token_file);
	wipe(&p->role_session_name);
	p->unsupported = NULL;
	p->found = 0;
}
