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
 *
 * With --no-mount the command writes into an ordinary directory and
 * watch.c seals what it wrote once it exited; the main thread waits for
 * the command with every signal blocked (sigtimedwait), so nothing needs
 * FUSE, root or a capability.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "daemon.h"
#include "fs.h"
#include "log.h"
#include "watch.h"

/* Documented in `drgw run --help` and drgw(1). */
#define EXIT_NOT_REPLICATED 3
#define EXIT_PRUNE_FAILED 4
#define EXIT_CHECK_FAILED 5
/* How long a command gets to exit after our SIGTERM before SIGKILL. */
#define CHILD_TERM_GRACE_NS (30 * NSEC_PER_SEC)

enum { OPT_MOUNT = 1000, OPT_MIN_BACKENDS, OPT_OPTIONS, OPT_PRUNE,
       OPT_NO_MOUNT, OPT_DIR };

static const struct cli_opt run_opts[] = {
	{ "mount", required_argument, OPT_MOUNT, 0 },
	{ "no-mount", no_argument, OPT_NO_MOUNT, 0 },
	{ "dir", required_argument, OPT_DIR, 0 },
	{ "min-backends", required_argument, OPT_MIN_BACKENDS, 0 },
	{ "options", required_argument, OPT_OPTIONS, 'o' },
	{ "prune", no_argument, OPT_PRUNE, 0 },
	{ 0 },
};

static const struct cli_cmd run_cmd = {
	.name = "run",
	.synopsis = "[options] (--mount DIR | --no-mount --dir DIR) -- COMMAND [ARGS...]",
	.help = "Mounts the gateway on DIR, runs COMMAND, then waits until every snapshot\n"
		"it produced is replicated to every backend (or to --min-backends of\n"
		"them), unmounts and exits with COMMAND's status.  A backup Job that\n"
		"runs its script through drgw run succeeds only once its backups are\n"
		"off the machine.  SIGTERM is passed on to COMMAND, then the same drain\n"
		"follows, bounded by --drain-timeout.\n\n"
		"With --no-mount --dir DIR nothing is mounted (no FUSE, no root, no\n"
		"capability): COMMAND writes into the ordinary directory DIR; drgw\n"
		"records what DIR holds first, and once COMMAND exited seals every file\n"
		"that is new or changed (the same exclusions as the mount), waiting\n"
		"for files still open for writing up to --drain-timeout; then the same\n"
		"drain follows.\n\n"
		"exit status:\n"
		"  COMMAND's status  (128+N if it was killed by signal N)\n"
		"  5                 COMMAND succeeded but a snapshot it wrote failed its\n"
		"                    SQLite check (check-sqlite; drgw ls shows which and\n"
		"                    why); it is replicated anyway, and --prune does not\n"
		"                    run\n"
		"  3                 COMMAND succeeded but replication did not finish\n"
		"                    within --drain-timeout (with --no-mount also: a\n"
		"                    file was still open for writing); the queue stays\n"
		"                    in the cache directory and the next run finishes it\n"
		"  4                 with --prune: everything is replicated, but the\n"
		"                    prune of a backend failed (the log says why)\n"
		"  1                 drgw failed (mount, configuration)\n"
		"  2                 usage error (also: --prune without a policy)",
	.opts = run_opts,
	.opts_help = "options:\n"
		     "  --mount DIR        where to mount the gateway\n"
		     "  --no-mount         no FUSE: COMMAND writes into --dir DIR\n"
		     "  --dir DIR          the directory COMMAND writes into (--no-mount)\n"
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
	bool no_mount;
	const char *dir;
	const char *fuse_options;
	unsigned min_backends;
	bool prune;
	char **argv;
	int64_t start_ns; /* versions sealed since are this run's */

	pid_t child;
	bool terminated; /* --no-mount: a SIGTERM or SIGINT came */
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
	case OPT_NO_MOUNT:
		s->no_mount = true;
		return 0;
	case OPT_DIR:
		s->dir = value;
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
	int64_t failed = drgw_catalog_count_failed_checks(s->d.gw->cat,
							  s->start_ns);

	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (WEXITSTATUS(status) != 0)
		return WEXITSTATUS(status);
	/* A snapshot that will not restore needs a person more than one
	 * that is late: that status wins; both are logged. */
	if (failed > 0) {
		log_error("snapshots of this run that failed their SQLite check: %lld; 'drgw ls' shows which and why",
			  (long long)failed);
		if (left)
			log_error("replication incomplete too: %llu snapshots are not on %s backends yet",
				  (unsigned long long)left,
				  s->min_backends ? "enough" : "all");
		return EXIT_CHECK_FAILED;
	}
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

/* --- --no-mount --- */

static const int run_signals[] = { SIGCHLD, SIGTERM, SIGINT };

static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < ARRAY_SIZE(run_signals); i++)
		sigaddset(set, run_signals[i]);
}

/* Runs the command and waits for it; a SIGTERM or SIGINT is passed on,
 * then SIGKILL after CHILD_TERM_GRACE_NS.  The signals are blocked in
 * every thread (they inherited the mask), so they wait for sigtimedwait()
 * here.  Returns the command's wait status, or -errno if it did not start. */
static int run_command(struct run *s, const sigset_t *set)
{
	int64_t kill_at = 0;
	int status = 0;

	s->child = fork();
	if (s->child < 0)
		return -errno;
	if (s->child == 0) {
		sigset_t none;

		/* The command gets the signals and dispositions of a shell. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execvp(s->argv[0], s->argv);
		fprintf(stderr, "drgw run: cannot run %s: %s\n", s->argv[0],
			strerror(errno));
		_exit(127);
	}
	log_info("running %s (pid %ld); it writes into %s", s->argv[0],
		 (long)s->child, s->d.gw->files_dir);
	for (;;) {
		struct timespec ts = { .tv_sec = 1 };
		pid_t p = waitpid(s->child, &status, WNOHANG);
		int sig;

		if (p == s->child || (p < 0 && errno != EINTR))
			break;
		if (kill_at && drgw_mono_ns() >= kill_at) {
			log_warning("the command ignored SIGTERM; killing it");
			kill(s->child, SIGKILL);
			kill_at = 0;
		}
		sig = sigtimedwait(set, NULL, &ts);
		if ((sig == SIGTERM || sig == SIGINT) && !kill_at) {
			log_info("passing SIGTERM to the command (pid %ld)",
				 (long)s->child);
			kill(s->child, SIGTERM);
			kill_at = drgw_mono_ns() + CHILD_TERM_GRACE_NS;
			s->terminated = true;
		}
	}
	if (WIFEXITED(status))
		log_info("command exited with status %d; sealing what it wrote in %s",
			 WEXITSTATUS(status), s->d.gw->files_dir);
	else if (WIFSIGNALED(status))
		log_info("command was killed by signal %d; sealing what it wrote in %s",
			 WTERMSIG(status), s->d.gw->files_dir);
	return status;
}

/* The command's processes that outlived it.  drgw is their subreaper
 * (PR_SET_CHILD_SUBREAPER), so they are its children now, also after a
 * double fork.  Counts them and names a few in buf. */
static unsigned leftovers(char *buf, size_t size)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	unsigned n = 0;
	size_t used = 0;

	buf[0] = '\0';
	while (d && (de = readdir(d))) {
		char path[64], line[512], state, *p;
		uint64_t pid;
		int ppid, fd;
		ssize_t len;

		if (drgw_parse_u64(de->d_name, &pid) < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = drgw_pread_full(fd, line, sizeof(line) - 1, 0);
		close(fd);
		if (len <= 0)
			continue;
		line[len] = '\0';
		/* "pid (comm) state ppid ...": comm may hold anything. */
		p = strrchr(line, ')');
		if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2 ||
		    ppid != getpid() || state == 'Z')
			continue;
		n++;
		*p = '\0';
		if (used < size && strchr(line, '('))
			used += (size_t)snprintf(buf + used, size - used, "%s%lu (%s)",
						 used ? ", " : "", (unsigned long)pid,
						 strchr(line, '(') + 1);
	}
	if (d)
		closedir(d);
	return n;
}

/* Waits until the command's leftover processes exited, the deadline
 * passed or a SIGTERM/SIGINT came; returns how many still run. */
static unsigned wait_leftovers(struct run *s, const sigset_t *set,
			       int64_t deadline)
{
	char who[256];
	bool told = false;
	unsigned n;

	for (;;) {
		struct timespec ts = { .tv_sec = 1 };
		int64_t left = deadline - drgw_mono_ns();
		int sig;

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		n = leftovers(who, sizeof(who));
		if (!n)
			return 0;
		if (!told)
			log_info("the command left %u processes running: %s; waiting for them to exit before sealing",
				 n, who);
		told = true;
		if (left <= 0 || s->terminated)
			break;
		if (left < NSEC_PER_SEC)
			ts = (struct timespec){ .tv_nsec = left };
		sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			s->terminated = true;
	}
	log_warning("the command left %u processes running: %s; what they write from now on is backed up by the next run",
		    n, who);
	return n;
}

static int run_no_mount(struct run *s, const struct drgw_config *cfg,
			struct drgw_prune_cli *pc)
{
	struct drgw_err err = { 0 };
	sigset_t set, old;
	uint64_t left;
	int r, status;

	if (drgw_daemon_open_dir(&s->d, cfg, s->dir, DRGW_WATCH_RUN) < 0)
		return 1;
	signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	r = drgw_daemon_started(&s->d, &err);
	if (r == 0)
		r = drgw_watch_seal_leftovers(s->d.gw, &err);
	if (r < 0) {
		drgw_cli_error("%s", err.msg);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		drgw_daemon_close(&s->d);
		return 1;
	}
	/* The command's background processes are waited for too. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	status = run_command(s, &set);
	if (status >= 0) {
		int64_t deadline = drgw_mono_ns() + cfg->drain_timeout_ns;

		drgw_watch_run_ended(s->d.gw->watch, deadline,
				     wait_leftovers(s, &set, deadline));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (status < 0) {
		drgw_cli_error("cannot start the command: %s", strerror(-status));
		drgw_daemon_drain(&s->d, replicated, s);
		drgw_daemon_close(&s->d);
		return 1;
	}
	drgw_daemon_drain(&s->d, replicated, s);
	left = pending(s->d.gw, s);
	if (drgw_watch_unsealed(s->d.gw->watch)) {
		log_error("not sealed: %u files or processes of this run (see above); the next run backs up what they wrote",
			  drgw_watch_unsealed(s->d.gw->watch));
		left += drgw_watch_unsealed(s->d.gw->watch);
	}
	r = exit_code(s, status, left);
	/* As with the mount: only after a backup that is off the machine. */
	if (s->prune && r == 0 && drgw_cli_prune(s->d.gw, pc) != 0)
		r = EXIT_PRUNE_FAILED;
	else if (s->prune && r != 0)
		log_warning("not pruning: the backup did not succeed or is not replicated everywhere");
	drgw_daemon_close(&s->d);
	return r;
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
	if (s.no_mount && (s.mountpoint || s.fuse_options || !s.dir)) {
		r = drgw_cli_usage_error(&run_cmd, !s.dir ?
							   "--no-mount needs --dir DIR" :
							   "--no-mount takes --dir DIR, not --mount or -o");
		goto out;
	}
	if (!s.no_mount && s.dir) {
		r = drgw_cli_usage_error(&run_cmd,
					 "--dir is for --no-mount; to mount, use --mount DIR");
		goto out;
	}
	if ((!s.mountpoint && !s.no_mount) || i >= argc) {
		r = drgw_cli_usage_error(&run_cmd, i < argc ?
							   "--mount DIR or --no-mount --dir DIR is required" :
							   "expected -- COMMAND [ARGS...]");
		goto out;
	}
	s.argv = argv + i;
	s.start_ns = drgw_now_ns();
	/* No policy is a usage error now, not after the backup. */
	if (s.prune && (r = drgw_cli_prune_check("run", &cfg, &pc)) != 0)
		goto out;
	/* Pruning reads every object's footer: a writer that holds only
	 * recipients would back up, then find nothing it may prune. */
	if (s.prune && !cfg.n_key_files && !cfg.n_identity_files) {
		fprintf(stderr, "drgw run: --prune needs the identity (--identity FILE) or the master key: recipients only encrypt, and pruning reads the backups; run 'drgw prune' where the identity is\n");
		r = EXIT_USAGE;
		goto out;
	}
	drgw_cli_apply_log(&cfg);
	if (s.no_mount) {
		r = run_no_mount(&s, &cfg, &pc);
		goto out;
	}
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
