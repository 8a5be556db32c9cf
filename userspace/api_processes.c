/* api_processes.c - GET /api/processes: the Go processes of this host (procs.c),
 * containerized ones included with their namespace pid and cgroup.
 */
#include "api.h"
#include "err.h"
#include "procs.h"

static void list_processes(struct http_req *r, struct http_resp *w)
{
	struct go_proc *ps = NULL;
	size_t n = 0;
	int rc = procs_list(&ps, &n);

	(void)r;
	if (rc) {
		http_error(w, 500, "%s", err_msg(rc));
		return;
	}
	buf_puts(&w->body, "{\"processes\":");
	procs_json(ps, n, &w->body);
	buf_puts(&w->body, "}\n");
	procs_free(ps, n);
}

const struct http_route api_process_routes[] = {
	{"GET", "/api/processes", list_processes, false},
};
const size_t api_process_nroutes = sizeof(api_process_routes) / sizeof(api_process_routes[0]);
