/* SPDX-License-Identifier: MIT */
/*
 * drgw: one binary, git-style subcommands.  This file dispatches and holds
 * the smallest commands; the others live in cmd_*.c.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "aead.h"
#include "cli.h"
#include "drgw-build.h"
#include "key.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "mount", drgw_cmd_mount, "mount the gateway (or, with --restore, the restore view)" },
	{ "ls", drgw_cmd_ls, "list snapshots and where they are replicated" },
	{ "status", drgw_cmd_status, "show the replication queue and backend health" },
	{ "wait", drgw_cmd_wait, "wait until every snapshot is replicated" },
	{ "restore", drgw_cmd_restore, "copy a snapshot out of the backends" },
	{ "verify", drgw_cmd_verify, "re-read replicas and check them end to end" },
	{ "run", drgw_cmd_run, "mount, run a backup command, wait until it is replicated" },
	{ "watch", drgw_cmd_watch, "back up a directory as it is written, without FUSE" },
	{ "drill", drgw_cmd_drill, "restore the latest snapshots and check them" },
	{ "backfill", drgw_cmd_backfill, "copy the snapshots a backend lacks to it from the others" },
	{ "prune", drgw_cmd_prune, "remove the snapshots each backend's retention policy does not keep" },
	{ "keygen", drgw_cmd_keygen, "write a new key, or an identity and print its recipient" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: drgw COMMAND [options] [args]\n\n"
		     "drgw is a backup gateway: files written to its FUSE mount (or, without\n"
		     "FUSE, to a directory it watches) are compressed, encrypted and\n"
		     "replicated to off-cluster backends.\n\n"
		     "commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'drgw COMMAND --help' describes a command; 'drgw --version' the version.\n");
}

enum { OPT_IDENTITY = 1000, OPT_RECIPIENT_OF };

static const struct cli_opt keygen_opts[] = {
	{ "identity", no_argument, OPT_IDENTITY, 0 },
	{ "recipient-of", no_argument, OPT_RECIPIENT_OF, 0 },
	{ 0 },
};

static const struct cli_cmd keygen_cmd = {
	.name = "keygen",
	.synopsis = "[--identity | --recipient-of] FILE",
	.help = "Writes a new random 32-byte master key to FILE (base64, mode 0600).\n"
		"Refuses to overwrite an existing file.  Keep a copy of the key\n"
		"outside the cluster: without it no backup can be restored.\n\n"
		"With --identity, writes a new identity (an X25519 secret key, mode\n"
		"0600) instead and prints its recipient, the public key (drgw1...),\n"
		"on stdout.  A backup writer given only recipients (--recipient)\n"
		"encrypts to them but can never decrypt; restores need the identity.\n"
		"--recipient-of prints the recipient of an existing identity FILE.\n"
		"Both also say, on stderr, the recipient's tag: what objects and\n"
		"\"wrong key file or identity\" errors name it by.",
	.opts = keygen_opts,
	.opts_help = "options:\n"
		     "  --identity        write an identity, print its recipient\n"
		     "  --recipient-of    print the recipient of identity FILE\n",
};

static int keygen_opt(void *arg, int id, const char *value)
{
	if (*(int *)arg && *(int *)arg != id) {
		drgw_cli_usage_error(&keygen_cmd,
				     "--identity and --recipient-of exclude each other");
		return -EINVAL;
	}
	*(int *)arg = id;
	return 0;
}

int drgw_cmd_keygen(int argc, char **argv)
{
	char recipient[DRGW_RECIPIENT_STR_MAX];
	uint8_t tag[8];
	struct drgw_config cfg;
	struct drgw_err err = { 0 };
	int i, r, mode = 0;

	drgw_config_init(&cfg);
	i = drgw_cli_parse(&keygen_cmd, argc, argv, &cfg, keygen_opt, &mode);
	drgw_config_release(&cfg);
	if (i < 0)
		return i == -2 ? 0 : EXIT_USAGE;
	if (argc - i != 1)
		return drgw_cli_usage_error(&keygen_cmd, "expected one FILE");
	if (mode == OPT_IDENTITY)
		r = drgw_identity_generate(argv[i], recipient, tag, &err);
	else if (mode == OPT_RECIPIENT_OF)
		r = drgw_identity_recipient(argv[i], recipient, tag, &err);
	else
		r = drgw_key_generate(argv[i], &err);
	if (r < 0) {
		drgw_cli_error("%s", err.msg);
		return 1;
	}
	if (mode) {
		char hex[17];

		printf("%s\n", recipient);
		drgw_hex(tag, sizeof(tag), hex);
		fprintf(stderr, "objects and error messages name this recipient by its tag %s\n",
			hex);
	} else
		printf("wrote a new key to %s\n", argv[i]);
	return 0;
}

int main(int argc, char **argv)
{
	/* A peer that closes a connection must be an error from write(), not
	 * a signal that kills the daemon (libcurl runs with NOSIGNAL). */
	signal(SIGPIPE, SIG_IGN);
	/* Keys, per-object keys, plaintext chunks and cloud credentials
	 * live in this process: no core dumps, no ptrace by other users. */
	prctl(PR_SET_DUMPABLE, 0);
	/* Chunk buffers, block maps and fetches are large and come and go
	 * from many threads.  With glibc's adaptive threshold they soon come
	 * from per-thread heaps that keep what was freed, and a daemon grows
	 * by megabytes with every snapshot; mapped each time, freeing one
	 * gives its memory back.  (The reader maps its own spares.)  Up to
	 * the restore view's FUSE reads, though (libfuse allocates a buffer
	 * for each request): mapped, each faults in page by page.  And the
	 * heap keeps a little of what was freed: with glibc's 128 KiB it
	 * gave back, and faulted in again, most such buffers, a sixth of a
	 * restore read's CPU time. */
	mallopt(M_MMAP_THRESHOLD, (512 << 10) + (4 << 10));
	mallopt(M_TRIM_THRESHOLD, 4 << 20);
	/* The many small allocations of a scan (listing pages, the index)
	 * come from up to 16 threads; glibc gives each its own heap (8 per
	 * core) and a 30000-version scan peaked at twice the memory of one
	 * with 2 heaps, at the same speed. */
	mallopt(M_ARENA_MAX, 2);
	drgw_aead_init();
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("drgw %s%s\n", DRGW_VERSION,
		       DRGW_TEST_HOOKS ? " (test hooks)" : "");
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "drgw: unknown command '%s' (see 'drgw --help')\n",
		argv[1]);
	return EXIT_USAGE;
}
