/* api_snapshots.c - /api/snapshots: take a snapshot of a process now, list the
 * stored ones, and read one back whole, its goroutines filtered and paged, or
 * its goroutines grouped by identical stack (pprof's debug=1 view).
 *
 * Reads go through the read-only pool; the goroutine objects are assembled by
 * SQLite's JSON functions in the shape `glimpse snapshot --json` prints.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gobin.h"
#include "json.h"
#include "jsonparse.h"

/* One goroutine object per row, g being the goroutines row. */
#define GOROUTINE_JSON                                                                                          \
	"json_object('goid', g.goid, 'status', g.status, 'wait_reason', g.wait_reason,"                         \
	" 'wait_since_ns', g.wait_since_ns, 'created_by', g.created_by, 'created_at', g.created_at,"            \
	" 'labels', json(coalesce(g.labels, '{}')), 'thread', g.thread,"                                        \
	" 'torn', json(CASE WHEN g.torn THEN 'true' ELSE 'false' END), 'stack_note', g.stack_note,"           \
	" 'frames', (SELECT json_group_array(json(fo)) FROM (SELECT json_object('func', f.func, 'file', f.file," \
	" 'line', f.line, 'pc', f.pc, 'inlined', json(CASE WHEN f.inlined THEN 'true' ELSE 'false' END),"      \
	" 'vars', (SELECT json_group_array(json(vo)) FROM (SELECT json_object('name', v.value ->> 1, 'kind',"  \
	" v.value ->> 2, 'type', v.value ->> 3, 'value', json(v.value -> 5), 'truncated', json(CASE WHEN"       \
	" v.value ->> 4 THEN 'true' ELSE 'false' END)) AS vo FROM json_each(g.vars) v"                         \
	" WHERE v.value ->> 0 = f.depth ORDER BY v.key))) AS fo FROM frames f WHERE f.stack = g.stack_id"      \
	" ORDER BY f.depth)))"

/* A group's function: the innermost frame outside the runtime, as pprof shows it. */
#define GROUP_TOP_FUNC "coalesce(s.top_func, s.top)"

#define SNAPSHOT_HEAD_JSON                                                                                      \
	"SELECT json_object('snapshot_id', sn.id, 'pid', p.pid, 'path', b.path, 'go_version', b.go_version,"  \
	" 'build_id', b.build_id, 'host', p.host, 'taken_at', sn.taken_at, 'duration_us', sn.duration_us,"      \
	" 'decode_us', sn.decode_us, 'reader', sn.reader, 'goroutines', sn.goroutines, 'torn', sn.torn,"       \
	" 'recording', sn.recording, 'rr_event', sn.rr_event)"                                                  \
	" FROM snapshots sn JOIN processes p ON p.id = sn.process JOIN binaries b ON b.build_id = p.build_id"

static bool snapshot_id(struct http_req *r, struct http_resp *w, int64_t *id)
{
	return http_param_id(r, w, 0, "snapshot", id);
}

/* Appends the snapshot's head object (without its closing brace) to out;
 * false with a 404 answer when there is no such snapshot. */
static bool head(struct serve *sv, struct http_resp *w, int64_t id, struct buf *out)
{
	struct sqlro_param p = {":id", SQLRO_INT, id, 0, NULL};
	long n = api_json_rows(sv, w, out, SNAPSHOT_HEAD_JSON " WHERE sn.id = :id", &p, 1);

	if (n < 0)
		return false;
	if (n == 0) {
		http_error(w, 404, "no snapshot %" PRId64, id);
		return false;
	}
	out->len--; /* the object stays open for more keys */
	out->p[out->len] = 0;
	return true;
}

static void get_snapshot(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p = {":id", SQLRO_INT, 0, 0, NULL};
	int64_t id;

	if (!snapshot_id(r, w, &id) || !head(r->app, w, id, &w->body))
		return;
	p.i = id;
	buf_puts(&w->body, ",\"goroutines\":[");
	if (api_json_rows(r->app, w, &w->body,
			  "SELECT " GOROUTINE_JSON " FROM goroutines g WHERE g.snapshot = :id ORDER BY g.goid", &p, 1) < 0)
		return;
	buf_puts(&w->body, "]}\n");
}

static void list_snapshots(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p[3] = {
		{":pid", SQLRO_NULL, 0, 0, NULL}, {":since", SQLRO_NULL, 0, 0, NULL}, {":limit", SQLRO_INT, 100, 0, NULL}};
	int64_t pid = 0, since = 0;

	if (!http_query_int(r, w, "pid", 1, INT32_MAX, &pid) || !http_query_int(r, w, "since", 0, INT64_MAX, &since) ||
	    !http_query_int(r, w, "limit", 1, 10000, &p[2].i))
		return;
	if (pid) {
		p[0].type = SQLRO_INT;
		p[0].i = pid;
	}
	if (since) {
		p[1].type = SQLRO_INT;
		p[1].i = since;
	}
	buf_puts(&w->body, "{\"snapshots\":[");
	if (api_json_rows(r->app, w, &w->body,
			  SNAPSHOT_HEAD_JSON " WHERE (:pid IS NULL OR p.pid = :pid) AND (:since IS NULL OR sn.taken_at >= :since)"
					     " ORDER BY sn.id DESC LIMIT :limit",
			  p, 3) < 0)
		return;
	buf_puts(&w->body, "]}\n");
}

#define GOROUTINE_FILTER                                                                                        \
	" FROM goroutines g WHERE g.snapshot = :id AND (:status IS NULL OR g.status = :status)"                  \
	" AND (:func IS NULL OR EXISTS (SELECT 1 FROM frames f WHERE f.stack = g.stack_id"                        \
	" AND instr(f.func, :func) > 0))"                                                                        \
	" AND (:goid IS NULL OR g.goid = :goid) AND (:stack IS NULL OR g.stack_id = :stack)"                      \
	" AND (:vname IS NULL OR (instr(g.vars, json_quote(:vname)) > 0 AND (:vval IS NULL"                      \
	" OR instr(g.vars, :vval) > 0 OR instr(g.vars, json_quote(:vval)) > 0)"                                   \
	" AND EXISTS (SELECT 1 FROM json_each(g.vars) v WHERE v.value ->> 1 = :vname"                               \
	" AND (:vval IS NULL OR v.value -> 5 = :vval OR v.value -> 5 = json_quote(:vval)))))"

static void list_goroutines(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p[9] = {
		{":id", SQLRO_INT, 0, 0, NULL},		{":status", SQLRO_NULL, 0, 0, NULL},
		{":func", SQLRO_NULL, 0, 0, NULL},	{":vname", SQLRO_NULL, 0, 0, NULL},
		{":vval", SQLRO_NULL, 0, 0, NULL},	{":goid", SQLRO_NULL, 0, 0, NULL},
		{":stack", SQLRO_NULL, 0, 0, NULL},	{":limit", SQLRO_INT, 100, 0, NULL},
		{":offset", SQLRO_INT, 0, 0, NULL},
	};
	int64_t goid = -1, stack = -1;
	const char *status = http_query(r, "status"), *func = http_query(r, "func"), *var = http_query(r, "var");
	char *vname = NULL;
	struct buf total = {0};
	int64_t id;

	if (!snapshot_id(r, w, &id) || !http_query_int(r, w, "limit", 1, 100000, &p[7].i) ||
	    !http_query_int(r, w, "offset", 0, INT32_MAX, &p[8].i) || !http_query_int(r, w, "goid", 0, INT64_MAX, &goid) ||
	    !http_query_int(r, w, "stack", 0, INT64_MAX, &stack) || !head(r->app, w, id, &w->body))
		return;
	p[0].i = id;
	if (goid >= 0)
		p[5] = (struct sqlro_param){":goid", SQLRO_INT, goid, 0, NULL};
	if (stack >= 0)
		p[6] = (struct sqlro_param){":stack", SQLRO_INT, stack, 0, NULL};
	if (status && *status)
		p[1] = (struct sqlro_param){":status", SQLRO_TEXT, 0, 0, status};
	if (func && *func)
		p[2] = (struct sqlro_param){":func", SQLRO_TEXT, 0, 0, func};
	if (var && *var) {
		/* var=NAME or var=NAME=VALUE (VALUE as its JSON text, or a string's text) */
		const char *eq = strchr(var, '=');

		vname = eq ? xstrndup(var, (size_t)(eq - var)) : xstrdup(var);
		p[3] = (struct sqlro_param){":vname", SQLRO_TEXT, 0, 0, vname};
		if (eq)
			p[4] = (struct sqlro_param){":vval", SQLRO_TEXT, 0, 0, eq + 1};
	}
	if (api_json_rows(r->app, w, &total, "SELECT count(*)" GOROUTINE_FILTER, p, 7) < 0)
		goto out;
	buf_printf(&w->body, ",\"total\":%s,\"offset\":%" PRId64 ",\"limit\":%" PRId64 ",\"goroutines\":[",
		   buf_str(&total), p[8].i, p[7].i);
	if (api_json_rows(r->app, w, &w->body,
			  "SELECT " GOROUTINE_JSON GOROUTINE_FILTER " ORDER BY g.goid LIMIT :limit OFFSET :offset", p, 9) < 0)
		goto out;
	buf_puts(&w->body, "]}\n");
out:
	buf_free(&total);
	free(vname);
}

static void list_groups(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p[2] = {{":id", SQLRO_INT, 0, 0, NULL}, {":limit", SQLRO_INT, 1000, 0, NULL}};
	int64_t id;

	if (!snapshot_id(r, w, &id) || !http_query_int(r, w, "limit", 1, 100000, &p[1].i) ||
	    !head(r->app, w, id, &w->body))
		return;
	p[0].i = id;
	buf_puts(&w->body, ",\"groups\":[");
	if (api_json_rows(r->app, w, &w->body,
			  "SELECT json_object('stack_id', g.stack_id, 'goroutines', count(*), 'status', g.status,"
			  " 'wait_reason', g.wait_reason, 'top', s.top, 'top_func', " GROUP_TOP_FUNC ","
			  " 'goids', json_group_array(g.goid),"
			  " 'max_wait_ms', max((sn.taken_at - g.wait_since_ns) / 1000000),"
			  " 'created_by', min(g.created_by), 'stack_note', min(g.stack_note),"
			  " 'frames', (SELECT json_group_array(json(fo)) FROM (SELECT json_object('func', f.func,"
			  " 'file', f.file, 'line', f.line, 'pc', f.pc,"
			  " 'inlined', json(CASE WHEN f.inlined THEN 'true' ELSE 'false' END)) AS fo"
			  " FROM frames f WHERE f.stack = g.stack_id ORDER BY f.depth)))"
			  " FROM goroutines g JOIN snapshots sn ON sn.id = g.snapshot LEFT JOIN stacks s ON s.id = g.stack_id"
			  " WHERE g.snapshot = :id GROUP BY g.stack_id, g.status, g.wait_reason"
			  " ORDER BY count(*) DESC, min(g.goid) LIMIT :limit",
			  p, 2) < 0)
		return;
	buf_puts(&w->body, "]}\n");
}

/* Reads an optional non-negative integer member of body into *out. */
static bool body_uint(const struct jv *body, const char *key, uint64_t max, uint32_t *out, struct http_resp *w)
{
	const struct jv *v = jv_get(body, key);

	if (!v || jv_type(v) == JV_NULL)
		return true;
	if (!jv_is_int(v) || jv_int(v) < 1 || (uint64_t)jv_int(v) > max) {
		http_error(w, 400, "%s must be an integer from 1 to %" PRIu64, key, max);
		return false;
	}
	*out = (uint32_t)jv_int(v);
	return true;
}

static void take_snapshot(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	struct snapshot_opts o;
	struct snapshot snap;
	const struct jv *pid, *vars, *reader;
	struct jv *body = NULL;
	struct json j;
	char err[512];
	int64_t store_us = 0;
	int status;

	snapshot_opts_default(&o);
	if (jv_parse(r->body, r->body_len, &body, err, sizeof(err))) {
		http_error(w, 400, "the body is not JSON: %s", err);
		return;
	}
	pid = jv_get(body, "pid");
	if (!jv_is_int(pid) || jv_int(pid) < 1 || jv_int(pid) > INT32_MAX) {
		http_error(w, 400, "the body must name the process: {\"pid\": N, \"vars\": true}");
		goto out;
	}
	vars = jv_get(body, "vars");
	if (vars && jv_type(vars) != JV_BOOL) {
		http_error(w, 400, "vars must be true or false");
		goto out;
	}
	if (vars)
		o.vars = jv_bool(vars);
	o.runtime_vars = jv_bool(jv_get(body, "all_vars"));
	reader = jv_get(body, "reader");
	if (jv_str(reader) && strcmp(jv_str(reader), "bpf") == 0)
		o.reader = READ_BPF;
	else if (jv_str(reader) && strcmp(jv_str(reader), "process_vm_readv") == 0)
		o.reader = READ_VM;
	else if (reader && !(jv_str(reader) && strcmp(jv_str(reader), "auto") == 0)) {
		http_error(w, 400, "reader is auto, bpf or process_vm_readv");
		goto out;
	}
	if (!body_uint(body, "max_string", 1u << 20, &o.decode.max_string, w) ||
	    !body_uint(body, "max_depth", 1u << 20, &o.decode.max_depth, w) ||
	    !body_uint(body, "max_entries", 1u << 20, &o.decode.max_entries, w) ||
	    !body_uint(body, "max_stack", 1u << 24, &o.read.max_stack, w))
		goto out;
	status = serve_snapshot(sv, (pid_t)jv_int(pid), &o, &snap, &store_us, err, sizeof(err));
	if (status) {
		http_error(w, status, "%s", err);
		goto out;
	}
	w->status = 201;
	json_init(&j, &w->body);
	json_obj(&j);
	json_kv_int(&j, "snapshot_id", snap.id);
	json_kv_int(&j, "pid", snap.pid);
	json_kv_str(&j, "path", snap.bin->path);
	json_kv_str(&j, "go_version", snap.bin->go_version);
	json_kv_int(&j, "taken_at", snap.taken_at);
	json_kv_uint(&j, "goroutines", snap.n);
	json_kv_uint(&j, "torn", snap.torn);
	json_kv_str(&j, "reader", snap.reader);
	json_key(&j, "reader_note");
	json_str(&j, snap.reader_note[0] ? snap.reader_note : NULL);
	json_key(&j, "vars_note");
	json_str(&j, snap.vars_note);
	json_kv_int(&j, "duration_us", snap.duration_us);
	json_kv_int(&j, "decode_us", snap.decode_us);
	json_kv_int(&j, "store_us", store_us);
	{
		char url[64];

		snprintf(url, sizeof(url), "/api/snapshots/%" PRId64, snap.id);
		json_kv_str(&j, "url", url);
		http_add_header(w, "Location", url);
	}
	json_end(&j);
	buf_putc(&w->body, '\n');
	{
		const struct gobin *bin = snap.bin;

		snapshot_free(&snap);
		serve_model_put(sv, bin);
	}
out:
	jv_free(body);
}

const struct http_route api_snapshot_routes[] = {
	{"POST", "/api/snapshots", take_snapshot, false},
	{"GET", "/api/snapshots", list_snapshots, false},
	{"GET", "/api/snapshots/*", get_snapshot, false},
	{"GET", "/api/snapshots/*/goroutines", list_goroutines, false},
	{"GET", "/api/snapshots/*/groups", list_groups, false},
};
const size_t api_snapshot_nroutes = sizeof(api_snapshot_routes) / sizeof(api_snapshot_routes[0]);
