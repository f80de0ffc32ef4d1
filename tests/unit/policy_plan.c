/* SPDX-License-Identifier: MIT */
/*
 * policy-plan: runs the planner of policy.c on a group read from stdin, for
 * tests/integration/test_prune_plan.py, which compares it with an
 * independent Python implementation of restic's rules on random groups.
 *
 *   policy-plan NOW_NS keep-daily=7 keep-within=30d ...  < "TIME_NS ID" lines
 *
 * prints "ID REASONS" per snapshot (REASONS comma-separated, "-" for a
 * removal), in input order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int main(int argc, char **argv)
{
	struct drgw_policy p = { 0 };
	struct drgw_plan_item *items = NULL;
	char (*ids)[64] = NULL;
	size_t n = 0, cap = 0;
	char line[256];
	uint64_t now;

	if (argc < 2 || drgw_parse_u64(argv[1], &now) < 0) {
		fprintf(stderr, "usage: policy-plan NOW_NS keep-X=V...\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		struct drgw_err err = { 0 };
		char *eq = strchr(argv[i], '=');

		if (!eq)
			return 2;
		*eq = '\0';
		if (drgw_policy_set(&p, argv[i], eq + 1, &err) < 0) {
			fprintf(stderr, "policy-plan: %s\n", err.msg);
			return 2;
		}
	}
	while (fgets(line, sizeof(line), stdin)) {
		char id[64];
		long long t;

		if (sscanf(line, "%lld %63s", &t, id) != 2)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			items = realloc(items, cap * sizeof(*items));
			ids = realloc(ids, cap * sizeof(*ids));
			if (!items || !ids)
				return 1;
		}
		memcpy(ids[n], id, sizeof(id));
		items[n].time_ns = t;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		items[i].id = ids[i];
	if (drgw_policy_plan(&p, items, n, (int64_t)now) < 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		char why[512];

		drgw_reasons_format(items[i].reasons, why, sizeof(why));
		printf("%s %s\n", ids[i], why[0] ? why : "-");
	}
	free(items);
	free(ids);
	return 0;
}
