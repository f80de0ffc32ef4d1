/* SPDX-License-Identifier: MIT */
/*
 * `drgw watch DIR`: the gateway daemon without FUSE, for writers that run
 * for long (a sidecar next to an application that writes its own
 * backups).  Files closed in DIR are sealed after the settle delay, as in
 * the mount, and replicated (watch.h says how changes are found).  It
 * stays in the foreground; SIGTERM or SIGINT seal what is closed, drain
 * for up to --drain-timeout and exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "daemon.h"
#include "log.h"

static const struct cli_cmd watch_cmd = {
	.name = "watch",
	.synopsis = "[options] DIR",
	.help = "Watches the ordinary directory DIR without FUSE (no root, no\n"
		"capability): every file closed after writing or renamed into DIR, and\n"
		"every file found changed at start, is sealed once no process has it\n"
		"open for writing and it did not change for --settle-delay, then\n"
		"encoded and replicated like a file of the mount.  Stays in the\n"
		"foreground.  SIGTERM or SIGINT seal what is closed, drain uploads for\n"
		"up to --drain-timeout (a second signal ends the drain) and exit; what\n"
		"is left resumes on the next start.  'drgw ls', 'status' and 'wait' work\n"
		"as with the mount.",
	.common = CLI_COMMON_CACHE | CLI_COMMON_KEY | CLI_COMMON_BACKEND |
		  CLI_COMMON_DAEMON,
};

int drgw_cmd_watch(int argc, char **argv)
{
	struct drgw_err err = { 0 };
	struct drgw_daemon d;
	struct drgw_config cfg;
	sigset_t set, old;
	int i, r = 1, sig;

	drgw_config_init(&cfg);
	i = drgw_cli_parse(&watch_cmd, argc, argv, &cfg, NULL, NULL);
	if (i < 0 || argc - i != 1) {
		drgw_config_release(&cfg);
		return i == -2 ? 0 :
		       i < 0	? EXIT_USAGE :
				  drgw_cli_usage_error(&watch_cmd, "expected one DIR");
	}
	drgw_cli_apply_log(&cfg);
	if (drgw_daemon_open_dir(&d, &cfg, argv[i], DRGW_WATCH_DAEMON) < 0)
		goto out;
	/* Blocked before the threads start, so that they inherit the mask
	 * and the signals wait for sigwait() below. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if (drgw_daemon_started(&d, &err) < 0) {
		drgw_cli_error("%s", err.msg);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		drgw_daemon_close(&d);
		goto out;
	}
	while (sigwait(&set, &sig) != 0)
		;
	log_info("got signal %d; stopping", sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	drgw_daemon_drain(&d, NULL, NULL);
	drgw_daemon_close(&d);
	r = 0;
out:
	drgw_config_release(&cfg);
	return r;
}
