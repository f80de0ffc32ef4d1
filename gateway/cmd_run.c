/* SPDX-License-Identifier: MIT */
/*
 * `drgw run`: mount, run a command (the backup job), wait until what it
 * wrote is off the machine, unmount, exit with the command's status.  This
 * makes a Kubernetes Job's success mean "replicated", which a plain mount
 * cannot: a pod that ends while uploads are in flight loses them.
 *
 * The FUSE loop runs on the main thread; a watcher thread reaps the
 * command and unmounts, which ends the loop.  A SIGTERM ends the loop
 * first; the command then gets the SIGTERM too, and the drain follows
 * either way.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "daemon.h"
#include "fs.h"
#include "log.h"

/* Documented in `drgw run --help` and drgw(1). */
#define EXIT_NOT_REPLICATED 3
#define EXIT_PRUNE_FAILED 4
/* How long a command gets to exit after our SIGTERM before SIGKILL. */
#define CHILD_TERM_GRACE_NS (30 * NSEC_PER_SEC)

enum { OPT_MOUNT = 1000, OPT_MIN_BACKENDS, OPT_OPTIONS, OPT_PRUNE };

static const struct cli_opt run_opts[] = {
	{ "mount", required_argument, OPT_MOUNT, 0 },
	{ "min-backends", required_argument, OPT_MIN_BACKENDS, 0 },
	{ "options", required_argument, OPT_OPTIONS, 'o' },
	{ "prune", no_argument, OPT_PRUNE, 0 },
	{ 0 },
};

static const struct cli_cmd run_cmd = {
	.name = "run",
	.synopsis = "[options] --mount DIR -- COMMAND [ARGS...]",
	.help = "Mounts the gateway on DIR, runs COMMAND, then waits until every snapshot\n"
		"it produced is replicated to every backend (or to --min-backends of\n"
		"them), unmounts and exits with COMMAND's status.  A backup Job that\n"
		"runs its script through drgw run succeeds only once its backups are\n"
		"off the machine.  SIGTERM is passed on to COMMAND, then the same drain\n"
		"follows, bounded by --drain-timeout.\n\n"
		"exit status:\n"
		"  COMMAND's status  (128+N if it was killed by signal N)\n"
		"  3                 COMMAND succeeded but replication did not finish\n"
		"                    within --drain-timeout; the queue stays in the\n"
		"                    cache directory and the next run or mount finishes it\n"
		"  4                 with --prune: everything is replicated, but the\n"
		"                    prune of a backend failed (the log says why)\n"
		"  1                 drgw failed (mount, configuration)\n"
		"  2                 usage error (also: --prune without a policy)",
	.opts = run_opts,
	.opts_help = "options:\n"
		     "  --mount DIR        where to mount the gateway (required)\n"
		     "  --min-backends K   enough when each snapshot is on K backends (default: all)\n"
		     "  -o OPTS            extra FUSE mount options\n"
		     "  --prune            after a successful backup and drain (only then), apply\n"
		     "                     each backend's retention policy, as drgw prune does\n",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_DAEMON | CLI_COMMON_POLICY,
};

struct run {
	struct drgw_daemon d;
	const char *mountpoint;
	const char *fuse_options;
	unsigned min_backends;
	bool prune;
	char **argv;

	pid_t child;
	pthread_t watcher;
	bool watching;
	pthread_mutex_t lock;
	/* Protected by lock. */
	bool child_done;
	int status;
};

static int on_opt(void *arg, int id, const char *value)
{
	struct run *s = arg;
	uint64_t k;

	switch (id) {
	case OPT_MOUNT:
		s->mountpoint = value;
		return 0;
	case OPT_MIN_BACKENDS:
		if (drgw_parse_u64(value, &k) < 0 || k > DRGW_MAX_BACKENDS) {
			drgw_cli_error("invalid --min-backends '%s'", value);
			return -EINVAL;
		}
		s->min_backends = (unsigned)k;
		return 0;
	case OPT_OPTIONS:
		s->fuse_options = value;
		return 0;
	case OPT_PRUNE:
		s->prune = true;
		return 0;
	}
	return -EINVAL;
}

static bool child_done(struct run *s, int *ret_status)
{
	bool done;

	pthread_mutex_lock(&s->lock);
	done = s->child_done;
	if (ret_status)
		*ret_status = s->status;
	pthread_mutex_unlock(&s->lock);
	return done;
}

static void *watch_child(void *arg)
{
	struct run *s = arg;
	int status = 0;

	while (waitpid(s->child, &status, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&s->lock);
	s->child_done = true;
	s->status = status;
	pthread_mutex_unlock(&s->lock);
	if (WIFEXITED(status))
		log_info("command exited with status %d; unmounting %s",
			 WEXITSTATUS(status), s->mountpoint);
	else if (WIFSIGNALED(status))
		log_info("command was killed by signal %d; unmounting %s",
			 WTERMSIG(status), s->mountpoint);
	/* Ends the FUSE loop on the main thread.  If a stray process still
	 * holds a file open, detach lazily: the loop then ends when it lets
	 * go, and no new file can be opened meanwhile. */
	if (umount2(s->mountpoint, 0) < 0 && errno == EBUSY) {
		log_warning("%s is still in use; detaching it", s->mountpoint);
		umount2(s->mountpoint, MNT_DETACH);
	}
	return NULL;
}

static int started(void *arg, struct drgw_err *err)
{
	struct run *s = arg;
	int r = drgw_daemon_started(&s->d, err);

	if (r < 0)
		return r;
	s->child = fork();
	if (s->child < 0) {
		drgw_err_set(err, "cannot start the command: %s", strerror(errno));
		return -errno;
	}
	if (s->child == 0) {
		/* drgw ignores SIGPIPE; a shell pipeline must not. */
		signal(SIGPIPE, SIG_DFL);
		execvp(s->argv[0], s->argv);
		fprintf(stderr, "drgw run: cannot run %s: %s\n", s->argv[0],
			strerror(errno));
		_exit(127);
	}
	log_info("running %s (pid %ld) on %s", s->argv[0], (long)s->child,
		 s->mountpoint);
	if (pthread_create(&s->watcher, NULL, watch_child, s)) {
		drgw_err_set(err, "cannot start a thread");
		kill(s->child, SIGKILL);
		return -EAGAIN;
	}
	s->watching = true;
	return 0;
}

/* The loop ended but the command runs on (we got SIGTERM): pass it on. */
static void stop_child(struct run *s)
{
	int64_t deadline = drgw_mono_ns() + CHILD_TERM_GRACE_NS;

	if (child_done(s, NULL))
		return;
	log_info("passing SIGTERM to the command (pid %ld)", (long)s->child);
	kill(s->child, SIGTERM);
	while (!child_done(s, NULL) && drgw_mono_ns() < deadline)
		usleep(50 * 1000);
	if (!child_done(s, NULL)) {
		log_warning("the command ignored SIGTERM; killing it");
		kill(s->child, SIGKILL);
	}
}

static uint64_t pending(struct drgw_gateway *gw, const struct run *s)
{
	return drgw_gateway_run_pending(gw, s->min_backends);
}

static bool replicated(struct drgw_gateway *gw, void *arg)
{
	return pending(gw, arg) == 0;
}

static int exit_code(const struct run *s, int status, uint64_t left)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (WEXITSTATUS(status) != 0)
		return WEXITSTATUS(status);
	if (left) {
		log_error("replication incomplete: %llu snapshots are not on %s backends after %llds; the queue stays in %s for the next run",
			  (unsigned long long)left,
			  s->min_backends ? "enough" : "all",
			  (long long)(s->d.cfg->drain_timeout_ns / NSEC_PER_SEC),
			  s->d.cfg->cache_dir);
		return EXIT_NOT_REPLICATED;
	}
	log_info("every snapshot of this run is replicated");
	return 0;
}

int drgw_cmd_run(int argc, char **argv)
{
	struct run s = { 0 };
	struct drgw_config cfg;
	struct drgw_mount_opts mo = { .foreground = true, .started = started };
	struct drgw_err err = { 0 };
	struct drgw_prune_cli pc = { .quiet = true };
	int i, r, status = 0;
	uint64_t left;

	drgw_config_init(&cfg);
	pthread_mutex_init(&s.lock, NULL);
	i = drgw_cli_parse(&run_cmd, argc, argv, &cfg, on_opt, &s);
	if (i < 0) {
		r = i == -2 ? 0 : EXIT_USAGE;
		goto out;
	}
	if (!s.mountpoint || i >= argc) {
		r = drgw_cli_usage_error(&run_cmd, !s.mountpoint ?
							   "--mount DIR is required" :
							   "expected -- COMMAND [ARGS...]");
		goto out;
	}
	s.argv = argv + i;
	/* No policy is a usage error now, not after the backup. */
	if (s.prune && (r = drgw_cli_prune_check("run", &cfg, &pc)) != 0)
		goto out;
	drgw_cli_apply_log(&cfg);
	if (drgw_daemon_open(&s.d, &cfg) < 0) {
		r = 1;
		goto out;
	}
	mo.mountpoint = s.mountpoint;
	mo.allow_other = drgw_config_allow_other(&cfg, false);
	mo.fuse_options = s.fuse_options;
	mo.arg = &s;
	r = drgw_fuse_run(drgw_fs_gateway_ops(), s.d.gw, &mo, &err);
	if (r < 0 && !s.watching) {
		drgw_cli_error("%s", err.msg);
		drgw_daemon_close(&s.d);
		r = 1;
		goto out;
	}
	if (r < 0)
		log_error("%s", err.msg);
	stop_child(&s);
	pthread_join(s.watcher, NULL);
	child_done(&s, &status);
	drgw_daemon_drain(&s.d, replicated, &s);
	left = pending(s.d.gw, &s);
	r = exit_code(&s, status, left);
	/* Only after a backup that worked and is off the machine: a failing
	 * backup job must never make the backends thinner. */
	if (s.prune && r == 0 && drgw_cli_prune(s.d.gw, &pc) != 0)
		r = EXIT_PRUNE_FAILED;
	else if (s.prune && r != 0)
		log_warning("not pruning: the backup did not succeed or is not replicated everywhere");
	drgw_daemon_close(&s.d);
out:
	pthread_mutex_destroy(&s.lock);
	drgw_config_release(&cfg);
	return r;
}
