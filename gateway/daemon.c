/* SPDX-License-Identifier: MIT */
/*
 * The daemon life cycle shared by `drgw mount` and `drgw run`; see
 * daemon.h.
 */
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "daemon.h"
#include "log.h"

static struct drgw_gateway *draining_gw;

/* A second SIGTERM/SIGINT while draining: stop waiting for uploads. */
static void on_drain_signal(int sig)
{
	if (draining_gw)
		atomic_store(&draining_gw->abort_drain, true);
}

int drgw_daemon_open(struct drgw_daemon *d, const struct drgw_config *cfg)
{
	struct drgw_err err = { 0 };
	int r;

	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	r = drgw_gateway_open(cfg, DRGW_MODE_DAEMON,
			      DRGW_OPEN_ENCRYPT | DRGW_OPEN_NEED_BACKENDS, &d->gw,
			      &err);
	if (r < 0)
		drgw_cli_error("%s", err.msg);
	return r;
}

int drgw_daemon_started(struct drgw_daemon *d, struct drgw_err *err)
{
	struct drgw_gateway *gw = d->gw;
	int r;

	for (size_t i = 0; i < gw->n_backends; i++)
		log_info("backend %s: %s (plugin %s)", gw->backend_names[i],
			 gw->backends[i]->description, gw->backends[i]->ops.name);
	r = drgw_gateway_start(gw, err);
	if (r == 0 && d->cfg->metrics_listen) {
		r = drgw_httpd_start(d->cfg->metrics_listen, gw, &d->ready,
				     &d->httpd, err);
		if (r == 0)
			log_info("metrics on http://%s/metrics",
				 d->cfg->metrics_listen);
	}
	if (r == 0)
		atomic_store(&d->ready, true);
	return r;
}

uint64_t drgw_daemon_drain(struct drgw_daemon *d,
			   bool (*done)(struct drgw_gateway *gw, void *arg),
			   void *arg)
{
	uint64_t left;

	atomic_store(&d->ready, false);
	if (!d->gw->started)
		return 0;
	log_info("mount gone; draining uploads for up to %llds",
		 (long long)(d->cfg->drain_timeout_ns / NSEC_PER_SEC));
	draining_gw = d->gw;
	signal(SIGTERM, on_drain_signal);
	signal(SIGINT, on_drain_signal);
	left = drgw_gateway_stop(d->gw, d->cfg->drain_timeout_ns, done, arg);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	draining_gw = NULL;
	if (left)
		log_warning("%llu snapshots or uploads still pending; they resume on the next mount with cache %s",
			    (unsigned long long)left, d->cfg->cache_dir);
	else
		log_info("everything is replicated; stopped");
	return left;
}

void drgw_daemon_close(struct drgw_daemon *d)
{
	d->httpd = drgw_httpd_stop(d->httpd);
	d->gw = drgw_gateway_close(d->gw);
}
