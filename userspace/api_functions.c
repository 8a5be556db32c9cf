/* api_functions.c - GET /api/processes/PID/functions?match=&limit=: the
 * functions of a process's binary (from its pclntab, so stripped binaries too)
 * whose names contain match, for the web UI's trace picker to complete.
 *
 * Package main's functions come first, then other packages', then the
 * runtime's and compiler-made ones (runtime., internal/, type..), so that a
 * short match offers what people trace first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "err.h"
#include "gobin.h"
#include "json.h"
#include "pclntab.h"

/* The order a function is listed in: 0 package main, 1 other packages, 2 the
 * runtime's and compiler-made functions. */
static int func_tier(const char *name)
{
	if (strncmp(name, "runtime.", 8) == 0 || strncmp(name, "internal/", 9) == 0 || strncmp(name, "type:", 5) == 0 ||
	    strncmp(name, "type..", 6) == 0 || strncmp(name, "go:", 3) == 0 || strstr(name, "-fm") != NULL)
		return 2;
	return strncmp(name, "main.", 5) == 0 ? 0 : 1;
}

static void list_functions(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	const char *match = http_query(r, "match");
	const struct gobin *bin = NULL;
	int64_t pid, limit = 50, n = 0, total = 0;
	struct json j;
	size_t nf;
	int rc;

	if (!http_param_id(r, w, 0, "process", &pid) || !http_query_int(r, w, "limit", 1, 10000, &limit))
		return;
	rc = serve_model_get(sv, (pid_t)pid, &bin);
	if (rc) {
		http_error(w, serve_status_for(rc), "%s", err_msg(rc));
		return;
	}
	nf = pcln_nfuncs(bin->pcln);
	json_init(&j, &w->body);
	json_obj(&j);
	json_kv_int(&j, "pid", pid);
	json_key(&j, "functions");
	json_arr(&j);
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < nf; i++) {
			const char *name = pcln_func(bin->pcln, i)->name;

			if (!name || func_tier(name) != pass)
				continue;
			if (match && *match && !strcasestr(name, match))
				continue;
			total++;
			if (n < limit) {
				json_str(&j, name);
				n++;
			}
		}
	json_end(&j);
	json_kv_int(&j, "total", total);
	json_end(&j);
	buf_putc(&w->body, '\n');
	serve_model_put(sv, bin);
}

const struct http_route api_function_routes[] = {
	{"GET", "/api/processes/*/functions", list_functions, false},
};
const size_t api_function_nroutes = sizeof(api_function_routes) / sizeof(api_function_routes[0]);
