/* SPDX-License-Identifier: MIT */
/*
 * Profiles of the AWS shared configuration files: ~/.aws/credentials
 * (AWS_SHARED_CREDENTIALS_FILE) with sections "[name]", and ~/.aws/config
 * (AWS_CONFIG_FILE) with "[profile name]" (or "[default]").
 *
 * The files are read with a small parser of our own rather than libinih:
 * Debian's libinih is built with a 200-byte line limit and silently splits
 * longer lines, and aws_session_token values are routinely longer than
 * that.
 */
#ifndef DRGW_S3_PROFILE_H
#define DRGW_S3_PROFILE_H

#include <stddef.h>

struct s3_profile {
	int found;			/* the profile exists in either file */
	char *access_key;		/* each NULL when absent */
	char *secret_key;
	char *session_token;
	char *region;
	char *role_arn;
	char *web_identity_token_file;
	char *role_session_name;
	const char *unsupported;	/* a credential key we cannot serve,
					 * e.g. "credential_process" */
};

/* The profile to use: name if given, else AWS_PROFILE, else "default". */
const char *s3_profile_name(const char *name);

/*
 * Reads profile name from both files; values in the credentials file win.
 * Missing files are not an error.
 * @return 0 (see p->found), -ENOMEM, -EIO for an unreadable file.
 */
int s3_profile_load(const char *name, struct s3_profile *p);

/* Frees and wipes the values. */
void s3_profile_release(struct s3_profile *p);

#endif /* DRGW_S3_PROFILE_H */
