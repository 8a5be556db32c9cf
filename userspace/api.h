/* api.h - the HTTP API's route families (api_*.c), each a table of routes that
 * serve.c puts together, and what they share.
 */
#ifndef GLIMPSE_API_H
#define GLIMPSE_API_H
#include <microhttpd.h>
#include <stddef.h>

#include "http.h"
#include "serve.h"
#include "sqlro.h"

extern const struct http_route api_sql_routes[];
extern const size_t api_sql_nroutes;
extern const struct http_route api_snapshot_routes[];
extern const size_t api_snapshot_nroutes;
extern const struct http_route api_trace_routes[];
extern const size_t api_trace_nroutes;
extern const struct http_route api_process_routes[];
extern const size_t api_process_nroutes;
extern const struct http_route api_grafana_routes[];
extern const size_t api_grafana_nroutes;
extern const struct http_route api_recording_routes[];
extern const size_t api_recording_nroutes;
/* The moment a replay request's body names (api_recordings.c): {"at": "snapshot:ID" |
 * "event:ID"} or {"event": N}; *event 0 (where the replay starts) without one. False
 * with the answer set (400, 404, 409) when the body or the moment is wrong. */
bool api_replay_moment(struct http_req *r, struct http_resp *w, int64_t id, int64_t *event);
/* The HTTP status for replay_moment's and replay_open's negative codes. */
int api_replay_status(int rc);
extern const struct http_route api_debug_routes[];
extern const size_t api_debug_nroutes;
extern const struct http_route api_function_routes[];
extern const size_t api_function_nroutes;
extern const struct http_route api_query_routes[];
extern const size_t api_query_nroutes;
/* The web UI: a fallback route (a pattern ending in two stars), taken when no
 * other route has the path. */
extern const struct http_route api_web_routes[];
extern const size_t api_web_nroutes;

/* The HTTP status for a failed query. */
int api_sql_status(enum sqlro_fail f);
/* Runs sql with params on the read-only pool and answers in format ("json",
 * "objects", "csv"; NULL: json), or with an error. */
void api_sql_answer(struct serve *sv, struct http_resp *w, const char *sql, const struct sqlro_param *params,
		    size_t nparams, const char *format);
/* Runs sql (whose single result column is JSON text per row) with params and
 * appends the rows to out as the elements of a JSON array (no brackets);
 * returns the number of rows, or -1 with an error answer set on w. Internal
 * queries: no row or time limit. */
long api_json_rows(struct serve *sv, struct http_resp *w, struct buf *out, const char *sql,
		   const struct sqlro_param *params, size_t nparams);

/* The replay debugger's sessions (api_debug.c): its limits (sessions at once,
 * seconds idle before one is closed, seconds a command may run), closing the
 * idle ones (called often; does its work once a second), closing all at
 * shutdown once no request runs. */
void api_debug_config(unsigned int max, unsigned int idle_s, unsigned int cmd_s);
void api_debug_reap(void);
void api_debug_close_all(void);

#endif
