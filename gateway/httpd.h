/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint (--metrics-listen ADDR), served by libmicrohttpd on
 * its own thread: /metrics (Prometheus text), /healthz (the process and
 * its catalog answer) and /readyz (the mount is being served).
 */
#ifndef DRGW_HTTPD_H
#define DRGW_HTTPD_H

#include <stdatomic.h>
#include <stdbool.h>

#include "gateway.h"

struct drgw_httpd;

/* Listens on addr ("host:port", ":port", "[v6]:port").  ready is read on
 * every /readyz request; it may be NULL (never ready). */
int drgw_httpd_start(const char *addr, struct drgw_gateway *gw,
		     const atomic_bool *ready, struct drgw_httpd **ret,
		     struct drgw_err *err);
struct drgw_httpd *drgw_httpd_stop(struct drgw_httpd *h);


#endif
