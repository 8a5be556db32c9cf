/* api_traces.c - /api/traces: tracepoint sessions run by the server in the
 * background. Starting one finds the functions, compiles their plans and
 * attaches the probes before answering (so bad input is answered at once); a
 * thread then drains the ring every 100 ms into the store, one transaction per
 * drain, until the duration, max_events, a stop request, the target's exit or
 * the server's shutdown, detaching first and flushing what is left.
 *
 * Events are read back from the store: paged (events?after=) or streamed as
 * Server-Sent Events (stream), the store being the one source of truth.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "err.h"
#include "gobin.h"
#include "json.h"
#include "jsonparse.h"
#include "store.h"
#include "trace.h"
#include "trace_store.h"

#define DRAIN_MS 100
#define DEFAULT_DURATION_S 60
#define MAX_DURATION_S 86400

struct trace_run {
	struct serve *sv;
	int64_t id;
	pid_t pid;
	char *regex, *where;
	struct trace_opts o;
	struct trace *t;
	const struct gobin *bin;
	int64_t *probe_ids;
	pthread_t thread;
	bool joined;
	volatile bool stop;
	volatile bool running;
	uint64_t events, max_events;
	int64_t deadline_ms;
	char end_reason[128];
	int store_rc;
};

int api_traces_init(struct serve *sv)
{
	int rc;

	pthread_mutex_lock(&sv->write_lock);
	/* sessions a previous server was running when it died */
	rc = sqlite3_exec(store_db(sv->st),
			  "UPDATE traces SET state = 'interrupted', end_reason = 'the server stopped without flushing'"
			  " WHERE state = 'running'",
			  NULL, NULL, NULL);
	pthread_mutex_unlock(&sv->write_lock);
	return rc == SQLITE_OK ? 0 : store_error(store_db(sv->st), rc, "marking interrupted trace sessions");
}

static void on_event(const struct trace_event *ev, void *arg)
{
	struct trace_run *tr = arg;

	if (tr->max_events && tr->events >= tr->max_events)
		return;
	tr->events++;
	if (!tr->store_rc)
		tr->store_rc = trace_store_event(tr->sv->st, tr->probe_ids, ev);
}

/* One drain into one transaction. Returns the events taken or a negative code. */
static int drain(struct trace_run *tr)
{
	struct serve *sv = tr->sv;
	uint64_t before = tr->events;
	int n, rc;

	pthread_mutex_lock(&sv->write_lock);
	rc = store_begin(sv->st);
	if (rc) {
		pthread_mutex_unlock(&sv->write_lock);
		return rc;
	}
	n = trace_poll(tr->t, 0, on_event, tr);
	if (tr->store_rc)
		store_rollback(sv->st);
	else
		tr->store_rc = store_commit(sv->st);
	pthread_mutex_unlock(&sv->write_lock);
	pthread_mutex_lock(&sv->metrics_lock);
	sv->events_stored += tr->store_rc ? 0 : tr->events - before;
	pthread_mutex_unlock(&sv->metrics_lock);
	return n < 0 ? n : tr->store_rc;
}

static void *trace_thread(void *arg)
{
	struct trace_run *tr = arg;
	struct serve *sv = tr->sv;
	struct trace_stats sum = {0};
	const char *state = "done";

	while (!tr->stop && !sv->stopping) {
		usleep(DRAIN_MS * 1000);
		if (drain(tr) < 0) {
			snprintf(tr->end_reason, sizeof(tr->end_reason), "storing events failed: %s", err_msg(tr->store_rc));
			state = "failed";
			break;
		}
		if (tr->max_events && tr->events >= tr->max_events) {
			snprintf(tr->end_reason, sizeof(tr->end_reason), "max_events reached");
			break;
		}
		if (serve_mono_ms() >= tr->deadline_ms) {
			snprintf(tr->end_reason, sizeof(tr->end_reason), "duration reached");
			break;
		}
		if (kill(tr->pid, 0) != 0 && errno == ESRCH) {
			snprintf(tr->end_reason, sizeof(tr->end_reason), "the process exited");
			break;
		}
	}
	if (!tr->end_reason[0])
		snprintf(tr->end_reason, sizeof(tr->end_reason), "%s", sv->stopping ? "the server stopped" : "stopped on request");
	/* Detach first, then take everything still in the ring. */
	trace_detach(tr->t);
	while (!tr->store_rc && drain(tr) > 0)
		;
	for (size_t i = 0; i < trace_nfuncs(tr->t); i++) {
		struct trace_stats ts;

		trace_stats(tr->t, i, &ts);
		sum.ring_drops += ts.ring_drops;
	}
	pthread_mutex_lock(&sv->write_lock);
	if (!tr->store_rc)
		trace_store_stats(sv->st, tr->t, tr->probe_ids);
	store_run(sv->st, "UPDATE traces SET ended = ?, state = ?, end_reason = ? WHERE id = ?", NULL, "itti", serve_real_ns(),
		  state, tr->end_reason, tr->id);
	pthread_mutex_unlock(&sv->write_lock);
	pthread_mutex_lock(&sv->metrics_lock);
	sv->events_lost += sum.ring_drops;
	pthread_mutex_unlock(&sv->metrics_lock);
	tr->running = false;
	return NULL;
}

static void run_free(struct trace_run *tr)
{
	if (!tr)
		return;
	trace_close(tr->t);
	if (tr->bin)
		serve_model_put(tr->sv, tr->bin);
	free(tr->probe_ids);
	free(tr->regex);
	free(tr->where);
	free(tr);
}

static struct trace_run *find_run(struct serve *sv, int64_t id)
{
	for (size_t i = 0; i < sv->ntraces; i++)
		if (sv->traces[i]->id == id)
			return sv->traces[i];
	return NULL;
}

size_t serve_traces_running(struct serve *sv)
{
	size_t n = 0;

	for (size_t i = 0; i < sv->ntraces; i++)
		n += sv->traces[i]->running;
	return n;
}

void serve_traces_stop_all(struct serve *sv)
{
	pthread_mutex_lock(&sv->traces_lock);
	for (size_t i = 0; i < sv->ntraces; i++)
		sv->traces[i]->stop = true;
	for (size_t i = 0; i < sv->ntraces; i++)
		if (!sv->traces[i]->joined) {
			pthread_join(sv->traces[i]->thread, NULL);
			sv->traces[i]->joined = true;
		}
	pthread_mutex_unlock(&sv->traces_lock);
}

void serve_traces_free(struct serve *sv)
{
	for (size_t i = 0; i < sv->ntraces; i++)
		run_free(sv->traces[i]);
	free(sv->traces);
	sv->traces = NULL;
	sv->ntraces = 0;
}

/* Options as JSON, for the traces row. */
static void options_json(const struct trace_run *tr, double duration_s, struct buf *out)
{
	struct json j;

	json_init(&j, out);
	json_obj(&j);
	json_key(&j, "where");
	json_str(&j, tr->where);
	json_kv_uint(&j, "stack", tr->o.lim.nstack);
	json_key(&j, "duration_s");
	json_double(&j, duration_s);
	json_kv_uint(&j, "max_events", tr->max_events);
	json_kv_bool(&j, "calls_only", tr->o.calls_only);
	json_kv_bool(&j, "count", tr->o.count_only);
	json_kv_uint(&j, "rate_limit", tr->o.rate_limit);
	json_kv_uint(&j, "max_string", tr->o.lim.max_string);
	json_kv_uint(&j, "max_entries", tr->o.lim.max_entries);
	json_kv_uint(&j, "max_depth", tr->o.lim.max_depth);
	json_end(&j);
}

static bool opt_uint(const struct jv *body, const char *key, uint64_t min, uint64_t max, uint64_t *out,
		     struct http_resp *w)
{
	const struct jv *v = jv_get(body, key);

	if (!v || jv_type(v) == JV_NULL)
		return true;
	if (!jv_is_int(v) || jv_int(v) < (int64_t)min || (uint64_t)jv_int(v) > max) {
		http_error(w, 400, "%s must be an integer from %" PRIu64 " to %" PRIu64, key, min, max);
		return false;
	}
	*out = (uint64_t)jv_int(v);
	return true;
}

static bool opt_bool(const struct jv *body, const char *key, bool *out, struct http_resp *w)
{
	const struct jv *v = jv_get(body, key);

	if (!v || jv_type(v) == JV_NULL)
		return true;
	if (jv_type(v) != JV_BOOL) {
		http_error(w, 400, "%s must be true or false", key);
		return false;
	}
	*out = jv_bool(v);
	return true;
}

static void start_trace(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	struct trace_run *tr = xcalloc(1, sizeof(*tr));
	const struct jv *pid, *dur;
	struct jv *body = NULL;
	struct buf opts = {0};
	struct json j;
	double duration_s = DEFAULT_DURATION_S;
	uint64_t stack = 0, v;
	char exe[64], err[160];
	uint64_t bias = 0;
	int rc;

	tr->sv = sv;
	trace_opts_default(&tr->o);
	if (jv_parse(r->body, r->body_len, &body, err, sizeof(err))) {
		http_error(w, 400, "the body is not JSON: %s", err);
		goto fail;
	}
	pid = jv_get(body, "pid");
	if (!jv_is_int(pid) || jv_int(pid) < 1 || jv_int(pid) > INT32_MAX || !jv_str(jv_get(body, "regex"))) {
		http_error(w, 400, "the body must be {\"pid\": N, \"regex\": \"^main\\\\.Handle$\", ...} (see the README)");
		goto fail;
	}
	tr->pid = (pid_t)jv_int(pid);
	tr->regex = xstrdup(jv_str(jv_get(body, "regex")));
	if (jv_str(jv_get(body, "where")))
		tr->where = xstrdup(jv_str(jv_get(body, "where")));
	tr->o.regex = tr->regex;
	tr->o.where = tr->where;
	dur = jv_get(body, "duration_s");
	if (dur && jv_type(dur) != JV_NULL) {
		duration_s = jv_num(dur);
		if (jv_type(dur) != JV_NUM || !(duration_s > 0) || duration_s > MAX_DURATION_S) {
			http_error(w, 400, "duration_s must be a number of seconds from 0 to %d", MAX_DURATION_S);
			goto fail;
		}
	}
	if (!opt_uint(body, "stack", 0, PROBE_MAX_STACK, &stack, w) ||
	    !opt_uint(body, "max_events", 1, UINT64_MAX / 2, &tr->max_events, w) ||
	    !opt_uint(body, "rate_limit", 1, UINT64_MAX / 2, &tr->o.rate_limit, w) ||
	    !opt_bool(body, "calls_only", &tr->o.calls_only, w) || !opt_bool(body, "count", &tr->o.count_only, w))
		goto fail;
	tr->o.lim.nstack = (uint32_t)stack;
	v = tr->o.lim.max_string;
	if (!opt_uint(body, "max_string", 1, 1000, &v, w))
		goto fail;
	tr->o.lim.max_string = (uint32_t)v;
	v = tr->o.lim.max_entries;
	if (!opt_uint(body, "max_entries", 1, 128, &v, w))
		goto fail;
	tr->o.lim.max_entries = (uint32_t)v;
	v = tr->o.lim.max_depth;
	if (!opt_uint(body, "max_depth", 0, 8, &v, w))
		goto fail;
	tr->o.lim.max_depth = (uint32_t)v;
	if (sv->stopping) {
		http_error(w, 503, "the server is stopping");
		goto fail;
	}

	/* Everything that can fail on bad input fails before anything is attached or stored. */
	rc = serve_model_get(sv, tr->pid, &tr->bin);
	if (!rc) {
		/* A model is shared: its DWARF is read by one thread at a time (captures hold this too). */
		pthread_mutex_lock(&sv->reader_lock);
		rc = trace_open(tr->bin, &tr->o, &tr->t);
		pthread_mutex_unlock(&sv->reader_lock);
	}
	if (!rc)
		rc = gobin_bias(tr->bin, tr->pid, &bias);
	if (rc) {
		http_error(w, serve_status_for(rc), "%s", err_msg(rc));
		goto fail;
	}
	tr->probe_ids = xcalloc(trace_nfuncs(tr->t), sizeof(*tr->probe_ids));
	options_json(tr, duration_s, &opts);
	pthread_mutex_lock(&sv->write_lock);
	rc = store_run(sv->st, "INSERT INTO traces (pid, regex, options, started, state) VALUES (?, ?, ?, ?, 'running')",
		       &tr->id, "itti", (int64_t)tr->pid, tr->regex, buf_str(&opts), serve_real_ns());
	if (!rc)
		rc = trace_store_probes(sv->st, tr->bin, tr->t, &tr->o, tr->pid, tr->id, tr->probe_ids);
	pthread_mutex_unlock(&sv->write_lock);
	if (rc) {
		http_error(w, 500, "%s", err_msg(rc));
		goto fail;
	}
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)tr->pid);
	rc = trace_attach(tr->t, exe, tr->pid, bias);
	if (rc) {
		http_error(w, serve_status_for(rc), "%s", err_msg(rc));
		pthread_mutex_lock(&sv->write_lock);
		store_run(sv->st, "UPDATE traces SET state = 'failed', ended = ?, end_reason = ? WHERE id = ?", NULL, "iti",
			  serve_real_ns(), err_msg(rc), tr->id);
		pthread_mutex_unlock(&sv->write_lock);
		goto fail;
	}
	tr->deadline_ms = serve_mono_ms() + (int64_t)(duration_s * 1e3);
	tr->running = true;
	pthread_mutex_lock(&sv->traces_lock);
	if (pthread_create(&tr->thread, NULL, trace_thread, tr) != 0) {
		pthread_mutex_unlock(&sv->traces_lock);
		trace_detach(tr->t);
		http_error(w, 500, "cannot start the trace's thread");
		goto fail;
	}
	sv->traces = xrealloc(sv->traces, (sv->ntraces + 1) * sizeof(struct trace_run *));
	sv->traces[sv->ntraces++] = tr;
	pthread_mutex_unlock(&sv->traces_lock);

	w->status = 201;
	json_init(&j, &w->body);
	json_obj(&j);
	json_kv_int(&j, "trace_id", tr->id);
	json_kv_int(&j, "pid", tr->pid);
	json_kv_str(&j, "state", "running");
	json_key(&j, "functions");
	json_arr(&j);
	for (size_t i = 0; i < trace_nfuncs(tr->t); i++)
		json_str(&j, trace_func(tr->t, i)->name);
	json_end(&j);
	json_kv_uint(&j, "probes", trace_nsites(tr->t));
	json_key(&j, "duration_s");
	json_double(&j, duration_s);
	if (tr->bin->stripped)
		json_kv_str(&j, "note", "no argument names or types without DWARF (stripped binary)");
	{
		char url[64];

		snprintf(url, sizeof(url), "/api/traces/%" PRId64, tr->id);
		json_kv_str(&j, "url", url);
		http_add_header(w, "Location", url);
	}
	json_end(&j);
	buf_putc(&w->body, '\n');
	buf_free(&opts);
	jv_free(body);
	return;
fail:
	buf_free(&opts);
	jv_free(body);
	run_free(tr);
}

#define TRACE_JSON                                                                                          \
	"SELECT json_object('trace_id', t.id, 'pid', t.pid, 'regex', t.regex, 'options', json(t.options),"   \
	" 'started', t.started, 'ended', t.ended, 'state', t.state, 'end_reason', t.end_reason,"            \
	" 'probes', (SELECT json_group_array(json_object('probe_id', p.id, 'func', p.func, 'calls', p.calls," \
	" 'returns', p.returns, 'ring_drops', p.ring_drops, 'repeats', p.repeats, 'rate_limited',"          \
	" p.rate_limited, 'filtered', p.filtered, 'spec', json(p.spec)))"                                    \
	" FROM trace_probes tp JOIN probes p ON p.id = tp.probe WHERE tp.trace = t.id),"                     \
	" 'events', (SELECT count(*) FROM trace_probes tp JOIN events e ON e.probe = tp.probe"              \
	" WHERE tp.trace = t.id)) FROM traces t"

static bool trace_id(struct http_req *r, struct http_resp *w, int64_t *id)
{
	return http_param_id(r, w, 0, "trace", id);
}

static void list_traces(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p[2] = {{":pid", SQLRO_NULL, 0, 0, NULL}, {":limit", SQLRO_INT, 100, 0, NULL}};
	int64_t pid = 0;

	if (!http_query_int(r, w, "pid", 1, INT32_MAX, &pid) || !http_query_int(r, w, "limit", 1, 10000, &p[1].i))
		return;
	if (pid) {
		p[0].type = SQLRO_INT;
		p[0].i = pid;
	}
	buf_puts(&w->body, "{\"traces\":[");
	if (api_json_rows(r->app, w, &w->body, TRACE_JSON " WHERE (:pid IS NULL OR t.pid = :pid) ORDER BY t.id DESC LIMIT :limit",
			  p, 2) < 0)
		return;
	buf_puts(&w->body, "]}\n");
}

/* The counters of a running session, from BPF, as "live". */
static void live_counts(struct serve *sv, int64_t id, struct buf *out)
{
	struct trace_run *tr;

	pthread_mutex_lock(&sv->traces_lock);
	tr = find_run(sv, id);
	if (tr && tr->running) {
		struct json j;

		json_init(&j, out);
		json_obj(&j);
		json_key(&j, "functions");
		json_arr(&j);
		for (size_t i = 0; i < trace_nfuncs(tr->t); i++) {
			struct trace_stats ts;

			trace_stats(tr->t, i, &ts);
			json_obj(&j);
			json_kv_str(&j, "func", trace_func(tr->t, i)->name);
			json_kv_uint(&j, "calls", ts.calls + ts.hits);
			json_kv_uint(&j, "returns", ts.returns);
			json_kv_uint(&j, "ring_drops", ts.ring_drops);
			json_kv_uint(&j, "rate_limited", ts.rate_limited);
			json_kv_uint(&j, "filtered", ts.filtered);
			json_end(&j);
		}
		json_end(&j);
		json_kv_uint(&j, "events_stored", tr->events);
		json_end(&j);
	}
	pthread_mutex_unlock(&sv->traces_lock);
}

static void get_trace(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p = {":id", SQLRO_INT, 0, 0, NULL};
	struct buf live = {0};
	long n;

	if (!trace_id(r, w, &p.i))
		return;
	n = api_json_rows(r->app, w, &w->body, TRACE_JSON " WHERE t.id = :id", &p, 1);
	if (n == 0)
		http_error(w, 404, "no trace %" PRId64, p.i);
	if (n <= 0)
		return;
	live_counts(r->app, p.i, &live);
	if (live.len) {
		w->body.len--; /* the object's closing brace */
		buf_printf(&w->body, ",\"live\":%s}", buf_str(&live));
	}
	buf_putc(&w->body, '\n');
	buf_free(&live);
}

static void stop_trace(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	struct trace_run *tr;
	bool was_running = false;
	int64_t id;

	if (!trace_id(r, w, &id))
		return;
	pthread_mutex_lock(&sv->traces_lock);
	tr = find_run(sv, id);
	if (tr && !tr->joined) {
		was_running = tr->running;
		tr->stop = true;
		pthread_join(tr->thread, NULL); /* probes detached, events flushed */
		tr->joined = true;
	}
	pthread_mutex_unlock(&sv->traces_lock);
	if (!was_running) {
		struct sqlro_param p = {":id", SQLRO_INT, id, 0, NULL};
		struct buf tmp = {0};
		long n = api_json_rows(sv, w, &tmp, "SELECT id FROM traces WHERE id = :id", &p, 1);

		buf_free(&tmp);
		if (n == 0)
			http_error(w, 404, "no trace %" PRId64, id);
		else if (n > 0)
			http_error(w, 409, "trace %" PRId64 " is not running", id);
		return;
	}
	get_trace(r, w);
}

#define EVENT_JSON                                                                                            \
	"SELECT json_object('event_id', e.id, 'func', p.func, 'kind', e.kind, 'ts_ns', e.ts_ns, 'goid', e.goid," \
	" 'tid', e.tid, 'call_id', e.call_id, 'args', json(e.args), 'results', json(e.results),"                \
	" 'error', e.error, 'duration_ns', e.duration_ns, 'stack', json(e.stack))"                              \
	" FROM trace_probes tp JOIN events e ON e.probe = tp.probe JOIN probes p ON p.id = e.probe"            \
	" WHERE tp.trace = :id AND e.id > :after ORDER BY e.id LIMIT :limit"

static void list_events(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p[3] = {{":id", SQLRO_INT, 0, 0, NULL}, {":after", SQLRO_INT, 0, 0, NULL},
				   {":limit", SQLRO_INT, 1000, 0, NULL}};
	struct buf tmp = {0};

	if (!trace_id(r, w, &p[0].i) || !http_query_int(r, w, "after", 0, INT64_MAX, &p[1].i) ||
	    !http_query_int(r, w, "limit", 1, 100000, &p[2].i))
		return;
	if (api_json_rows(r->app, w, &tmp, "SELECT id FROM traces WHERE id = :id", p, 1) == 0) {
		buf_free(&tmp);
		http_error(w, 404, "no trace %" PRId64, p[0].i);
		return;
	}
	buf_free(&tmp);
	buf_printf(&w->body, "{\"trace_id\":%" PRId64 ",\"events\":[", p[0].i);
	if (api_json_rows(r->app, w, &w->body, EVENT_JSON, p, 3) < 0)
		return;
	buf_puts(&w->body, "]}\n");
}

/* ---- Server-Sent Events ---- */

struct sse {
	struct serve *sv;
	int64_t id, after;
	struct buf pending;
	size_t sent;
	bool ended;
	int64_t last_write_ms;
};

struct sse_rows {
	struct sse *s;
	long n;
};

static long sse_row(void *ctx, sqlite3_stmt *st)
{
	struct sse_rows *c = ctx;
	const char *t = (const char *)sqlite3_column_text(st, 0);
	const char *idp = t ? strstr(t, "\"event_id\":") : NULL;
	const char *kind = t && strstr(t, "\"kind\":\"return\"") ? "return" : "call";

	if (!t)
		return 0;
	if (idp)
		c->s->after = strtoll(idp + 11, NULL, 10);
	buf_printf(&c->s->pending, "id: %" PRId64 "\nevent: %s\ndata: %s\n\n", c->s->after, kind, t);
	c->n++;
	return 0;
}

static bool trace_running(struct serve *sv, int64_t id)
{
	struct trace_run *tr;
	bool running;

	pthread_mutex_lock(&sv->traces_lock);
	tr = find_run(sv, id);
	running = tr && tr->running;
	pthread_mutex_unlock(&sv->traces_lock);
	return running;
}

static ssize_t sse_read(void *ctx, char *out, size_t max)
{
	struct sse *s = ctx;
	struct sqlro_param p[3] = {{":id", SQLRO_INT, s->id, 0, NULL}, {":after", SQLRO_INT, 0, 0, NULL},
				   {":limit", SQLRO_INT, 500, 0, NULL}};
	struct sqlro_limits lim = {0};
	struct sqlro_result res;
	struct sse_rows rows = {s, 0};
	size_t n;

	if (s->sent == s->pending.len) {
		bool was_running;

		buf_reset(&s->pending);
		s->sent = 0;
		if (s->ended)
			return -1;
		was_running = trace_running(s->sv, s->id); /* before the query: no event is missed */
		p[1].i = s->after;
		if (sqlro_run(s->sv->sql, EVENT_JSON, p, 3, &lim, NULL, sse_row, &rows, &res)) {
			buf_printf(&s->pending, "event: error\ndata: {\"error\":\"%s\"}\n\n", "query failed");
			s->ended = true;
		} else if (rows.n == 0 && (!was_running || s->sv->stopping)) {
			buf_printf(&s->pending, "event: end\ndata: {\"trace_id\":%" PRId64 "}\n\n", s->id);
			s->ended = true;
		} else if (rows.n == 0) {
			if (serve_mono_ms() - s->last_write_ms < 5000) {
				usleep(200000);
				return 0;
			}
			buf_puts(&s->pending, ": waiting for events\n\n");
		}
	}
	n = s->pending.len - s->sent;
	if (n > max)
		n = max;
	memcpy(out, s->pending.p + s->sent, n);
	s->sent += n;
	s->last_write_ms = serve_mono_ms();
	return (ssize_t)n;
}

static void sse_done(void *ctx)
{
	struct sse *s = ctx;

	buf_free(&s->pending);
	free(s);
}

static void stream_events(struct http_req *r, struct http_resp *w)
{
	struct sse *s;
	struct buf tmp = {0};
	int64_t id, after = 0;
	const char *last = http_header(r, "Last-Event-ID");

	if (!trace_id(r, w, &id) || !http_query_int(r, w, "after", 0, INT64_MAX, &after))
		return;
	{
		struct sqlro_param p = {":id", SQLRO_INT, id, 0, NULL};

		if (api_json_rows(r->app, w, &tmp, "SELECT id FROM traces WHERE id = :id", &p, 1) == 0) {
			buf_free(&tmp);
			http_error(w, 404, "no trace %" PRId64, id);
			return;
		}
		buf_free(&tmp);
	}
	if (last)
		after = strtoll(last, NULL, 10);
	s = xcalloc(1, sizeof(*s));
	s->sv = r->app;
	s->id = id;
	s->after = after;
	s->last_write_ms = serve_mono_ms();
	buf_puts(&s->pending, "retry: 2000\n\n");
	w->type = "text/event-stream";
	w->stream = (struct http_stream){sse_read, sse_done, s};
}

const struct http_route api_trace_routes[] = {
	{"POST", "/api/traces", start_trace, false},
	{"GET", "/api/traces", list_traces, false},
	{"GET", "/api/traces/*", get_trace, false},
	{"POST", "/api/traces/*/stop", stop_trace, false},
	{"GET", "/api/traces/*/events", list_events, false},
	{"GET", "/api/traces/*/stream", stream_events, false},
};
const size_t api_trace_nroutes = sizeof(api_trace_routes) / sizeof(api_trace_routes[0]);
