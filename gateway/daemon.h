/* SPDX-License-Identifier: MIT */
/*
 * What `drgw mount` and `drgw run` share: a gateway in daemon mode, its
 * metrics endpoint, and the drain when the mount goes away.
 */
#ifndef DRGW_DAEMON_H
#define DRGW_DAEMON_H

#include <stdatomic.h>

#include "gateway.h"
#include "httpd.h"
#include "watch.h"

struct drgw_daemon {
	const struct drgw_config *cfg;
	struct drgw_gateway *gw;
	struct drgw_httpd *httpd;
	/* Set while the mount is served; read by /readyz. */
	atomic_bool ready;
};

/* Opens the gateway; errors are printed (one line) and returned. */
int drgw_daemon_open(struct drgw_daemon *d, const struct drgw_config *cfg);
/* The same without a mount: dir is the working set (watch.h). */
int drgw_daemon_open_dir(struct drgw_daemon *d, const struct drgw_config *cfg,
			 const char *dir, enum drgw_watch_kind kind);
/* In the final process, before requests are served: threads, metrics. */
int drgw_daemon_started(struct drgw_daemon *d, struct drgw_err *err);
/* After the mount is gone (or, without one, the command exited or the
 * watch was told to stop): seals what is left, drains (a second SIGTERM/SIGINT cuts it short)
 * and logs what is left.  Returns drgw_gateway_stop()'s count. */
uint64_t drgw_daemon_drain(struct drgw_daemon *d,
			   bool (*done)(struct drgw_gateway *gw, void *arg),
			   void *arg);
void drgw_daemon_close(struct drgw_daemon *d);

#endif
