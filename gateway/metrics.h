/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics of a cache directory, rendered from its catalog in
 * the text exposition format: what /metrics serves and what
 * `drgw status --prometheus` prints.  The names are a contract (alerts in
 * deploy/ use them); docs/METRICS.md lists them.
 */
#ifndef DRGW_METRICS_H
#define DRGW_METRICS_H

#include <stdbool.h>

#include "catalog.h"

/* Renders the metrics into a malloc()ed string (*ret_text). */
int drgw_metrics_render(struct drgw_catalog *c, bool daemon_running,
			char **ret_text);

/* The name pattern drills and metrics group snapshots by: every run of
 * digits in the last path component becomes '*' ("app-20261125.db" ->
 * "app-*.db").  Returns a malloc()ed string. */
char *drgw_name_pattern(const char *name);

#endif
