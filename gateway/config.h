/* SPDX-License-Identifier: MIT */
/*
 * Configuration: one struct filled from an INI file (parsed with libinih)
 * and then from the command line.  Every setting has one name, used both as
 * the INI key and as the long option (`settle-delay = 2s` in the file is
 * `--settle-delay 2s` on the command line), and one setter,
 * drgw_config_set(), so the two can never disagree.  docs/drgw.conf.example
 * documents every key.
 */
#ifndef DRGW_CONFIG_H
#define DRGW_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "policy.h"
#include "sqlcheck.h"
#include "util.h"

#define DRGW_BACKEND_NAME_MAX 63
#define DRGW_MAX_BACKENDS 16
#define DRGW_MAX_EXCLUDES 64
#define DRGW_KEYRING_MAX_FILES 8

struct drgw_backend_conf {
	char name[DRGW_BACKEND_NAME_MAX + 1];
	/* scheme://rest without the query string */
	char *url;
	char scheme[32];
	struct drgw_option *options; /* keys and values malloc()ed */
	size_t n_options;
	/* keep-* in the backend's section or URL query: its own retention
	 * policy, replacing the global one (drgw_config_policy()). */
	struct drgw_policy policy;
};

struct drgw_config {
	char *cache_dir;
	char *key_files[DRGW_KEYRING_MAX_FILES];
	size_t n_key_files;
	/* Write-only keys: recipients ("drgw1...") new objects are encrypted
	 * to, given inline or in files, and identity files that decrypt. */
	char *recipients[DRGW_KEYRING_MAX_FILES];
	size_t n_recipients;
	char *recipient_files[DRGW_KEYRING_MAX_FILES];
	size_t n_recipient_files;
	char *identity_files[DRGW_KEYRING_MAX_FILES];
	size_t n_identity_files;
	/* Repository id (32 hex digits) objects are bound to, or NULL: the
	 * catalog's, else what the backends hold, else a new one. */
	char *repository;
	char *plugin_dir;
	struct drgw_backend_conf backends[DRGW_MAX_BACKENDS];
	size_t n_backends;

	/* sealing */
	int64_t settle_ns;
	/* Files opened for writing while the cache disk has less free space
	 * than this bypass the page cache, so a writer sees ENOSPC at
	 * write() instead of at close(). */
	uint64_t write_through_below;
	char *excludes[DRGW_MAX_EXCLUDES];
	size_t n_excludes;
	bool excludes_set; /* an explicit list replaced the defaults */

	/* encoding */
	/* Incremental objects (delta.h): on, and when to write a full one
	 * instead (after this many increments, when more than this percent
	 * of the file changed, for files smaller than this). */
	bool incremental;
	unsigned incremental_max_chain;
	unsigned incremental_max_changed;
	unsigned incremental_max_read;
	uint64_t incremental_min_size;
	int compression_level;
	uint32_t chunk_size;
	unsigned encode_threads;
	/* SQLite checks of sealed databases (sqlcheck.h) */
	enum drgw_sqlcheck_level check_sqlite;
	int64_t check_sqlite_timeout_ns;

	/* replication */
	bool streaming; /* uploads follow the encoder where a backend can */
	/* The gateway mount uses FUSE passthrough where libfuse and the
	 * kernel offer it (fs.c). */
	bool passthrough;
	unsigned upload_workers;
	unsigned backend_concurrency;
	int64_t retry_min_ns;
	int64_t retry_max_ns;
	int64_t drain_timeout_ns;
	/* How often a long-running daemon writes a backend's index record
	 * after uploads (and always when it stops); 0: only when stopping. */
	int64_t index_interval_ns;

	/* restore reads */
	/* Refuse a newest version sealed longer ago than this (0: any). */
	int64_t max_age_ns;
	/* Restore an older version even when the catalog knows a newer one
	 * that was replicated (objects deleted or rolled back). */
	bool allow_older;
	uint64_t read_cache_bytes;
	/* One restore read from one backend, retries included, before the
	 * next backend holding the object is tried. */
	int64_t read_deadline_ns;
	unsigned readahead_chunks;
	uint64_t read_request_bytes;
	unsigned fetch_threads;

	/* process */
	enum drgw_log_level log_level;
	enum drgw_log_format log_format;
	char *log_file;
	/* -1 (unset): on for the gateway mount, off for the restore view;
	 * use drgw_config_allow_other(). */
	int allow_other;
	/* Restore view: owner of every file (-1: the mounting user) and the
	 * permission bits it never grants (default 077: owner only). */
	int view_uid;
	int view_gid;
	unsigned view_umask;
	/* --metrics-listen: serve /metrics here (NULL: off) */
	char *metrics_listen;

	/* retention (drgw prune): keep-* of the [drgw] section, and of the
	 * command line, which replaces every configured policy */
	struct drgw_policy policy;
	struct drgw_policy cli_policy;
	/* Set while a file is loaded: settings go to the file's level. */
	bool loading_file;
};

void drgw_config_init(struct drgw_config *cfg);
void drgw_config_release(struct drgw_config *cfg);

/* Sets one setting by name.  -ENOENT unknown name, -EINVAL bad value; err
 * says which and why. */
int drgw_config_set(struct drgw_config *cfg, const char *name,
		    const char *value, struct drgw_err *err);
/* Loads an INI file ([drgw] and [backend "NAME"] sections). */
int drgw_config_load(struct drgw_config *cfg, const char *path,
		     struct drgw_err *err);
/* Adds or replaces a backend from "NAME=URL[?k=v&...]". */
int drgw_config_add_backend_arg(struct drgw_config *cfg, const char *arg,
				struct drgw_err *err);
/* Adds or replaces backend name with url; options from the URL query. */
int drgw_config_add_backend(struct drgw_config *cfg, const char *name,
			    const char *url, struct drgw_err *err);
/* Adds an option to a backend (config file keys other than url). */
int drgw_backend_conf_add_option(struct drgw_backend_conf *b, const char *key,
				 const char *value);
/* The exclude patterns in effect (defaults unless set). */
const char *const *drgw_config_excludes(const struct drgw_config *cfg,
					size_t *ret_n);
/* True when the file name (last path component) is excluded. */
bool drgw_config_excluded(const struct drgw_config *cfg, const char *path);

/* Whether a mount lets other users in: the allow-other setting, or by
 * default yes for the gateway (writers run as any user) and no for the
 * restore view (backups are readable by the mounting user only). */
bool drgw_config_allow_other(const struct drgw_config *cfg, bool restore_view);

/* The retention policy of backend i: the command line's if it has any
 * keep-* option, else the backend's own section's, else the [drgw]
 * section's.  Each level replaces the ones below as a whole. */
const struct drgw_policy *drgw_config_policy(const struct drgw_config *cfg,
					     size_t i);

/* The same by backend name; a backend that is not configured gets the
 * command line's or the [drgw] section's policy. */
const struct drgw_policy *drgw_config_policy_of(const struct drgw_config *cfg,
						const char *name);

/* Checks a backend name: 1..63 of [A-Za-z0-9_-]. */
bool drgw_backend_name_ok(const char *name);

#endif
