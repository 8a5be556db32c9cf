/* trace_store.c - a tracepoint session's rows in the store; see trace_store.h. */
#include "trace_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "dwarf.h"
#include "gobin.h"
#include "json.h"
#include "store.h"

static int64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char insert_event[] =
	"INSERT INTO events (probe, ts_ns, goid, tid, kind, call_id, args, results, error, duration_ns, stack, recording)"
	" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT max(r.id) FROM probes p JOIN processes pr ON pr.id = p.process"
	" JOIN recordings r ON r.pid = pr.pid AND r.status = 'recording' WHERE p.id = ?1))";



static void spec_json(const struct trace_opts *o, const struct plan_func *pf, struct buf *out)
{
	struct json j;
	struct buf w = {0};
	char pc[32];

	json_init(&j, out);
	json_obj(&j);
	json_kv_str(&j, "regex", o->regex);
	json_key(&j, "where");
	json_str(&j, o->where);
	if (pf->where) {
		where_describe(pf, &w);
		json_kv_str(&j, "where_evaluated", buf_str(&w));
	}
	json_kv_bool(&j, "count_only", o->count_only);
	snprintf(pc, sizeof(pc), "0x%" PRIx64, pf->call_pc);
	json_kv_str(&j, "call_pc", pc);
	json_key(&j, "ret_pcs");
	json_arr(&j);
	for (int i = 0; i < pf->nrets; i++) {
		snprintf(pc, sizeof(pc), "0x%" PRIx64, pf->rets[i]);
		json_str(&j, pc);
	}
	json_end(&j);
	for (int k = 0; k < 2; k++) {
		const struct plan_value *v = k ? pf->results : pf->args;
		int n = k ? pf->nresults : pf->nargs;

		json_key(&j, k ? "results" : "args");
		json_arr(&j);
		for (int i = 0; i < n; i++) {
			json_obj(&j);
			json_kv_str(&j, "name", v[i].name);
			json_kv_str(&j, "type", v[i].type && v[i].type->name ? v[i].type->name : "?");
			if (v[i].unavailable)
				json_kv_str(&j, "unavailable", v[i].unavailable);
			json_end(&j);
		}
		json_end(&j);
	}
	json_key(&j, "note");
	json_str(&j, pf->note);
	json_kv_uint(&j, "max_string", o->lim.max_string);
	json_kv_uint(&j, "max_entries", o->lim.max_entries);
	json_kv_uint(&j, "max_depth", o->lim.max_depth);
	json_kv_uint(&j, "stack", o->lim.nstack);
	json_kv_uint(&j, "rate_limit", o->rate_limit);
	json_end(&j);
	buf_free(&w);
}

int trace_store_probes(struct store *st, const struct gobin *bin, const struct trace *t, const struct trace_opts *o,
		       pid_t pid, int64_t trace_id, int64_t *probe_ids)
{
	int64_t proc = 0, started = now_ns(CLOCK_REALTIME);
	struct buf spec = {0};
	int rc;

	rc = store_begin(st);
	if (rc)
		return rc;
	rc = store_process(st, bin, pid, &proc);
	for (size_t i = 0; !rc && i < trace_nfuncs(t); i++) {
		buf_reset(&spec);
		spec_json(o, trace_func(t, i), &spec);
		rc = store_run(st, "INSERT INTO probes (process, func, spec, started) VALUES (?, ?, ?, ?)",
			       &probe_ids[i], "itti", proc, trace_func(t, i)->name, buf_str(&spec), started);
		if (!rc && trace_id)
			rc = store_run(st, "INSERT INTO trace_probes (trace, probe) VALUES (?, ?)", NULL, "ii", trace_id,
				       probe_ids[i]);
	}
	if (!rc && trace_id)
		rc = store_run(st, "UPDATE traces SET process = ? WHERE id = ?", NULL, "ii", proc, trace_id);
	buf_free(&spec);
	if (rc) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st);
}

int trace_store_event(struct store *st, const int64_t *probe_ids, const struct trace_event *ev)
{
	return store_run(st, insert_event, NULL, "iiiitztttzt", probe_ids[ev->func], ev->ts_ns, (int64_t)ev->goid,
			 (int64_t)ev->tid, ev->kind == PROBE_CALL ? "call" : "return", (int64_t)ev->call_id, ev->args,
			 ev->results, ev->error,
			 ev->kind == PROBE_RETURN && ev->duration_ns > 0 ? ev->duration_ns : (int64_t)0, ev->stack);
}

int trace_store_stats(struct store *st, const struct trace *t, const int64_t *probe_ids)
{
	int rc = store_begin(st);

	for (size_t i = 0; !rc && i < trace_nfuncs(t); i++) {
		struct trace_stats ts;

		trace_stats(t, i, &ts);
		rc = store_run(st,
			       "UPDATE probes SET ended = ?, calls = ?, returns = ?, ring_drops = ?, repeats = ?,"
			       " rate_limited = ?, filtered = ? WHERE id = ?",
			       NULL, "iiiiiiii", now_ns(CLOCK_REALTIME), (int64_t)(ts.calls + ts.hits), (int64_t)ts.returns,
			       (int64_t)ts.ring_drops, (int64_t)ts.repeats, (int64_t)ts.rate_limited, (int64_t)ts.filtered,
			       probe_ids[i]);
	}
	if (rc) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st);
}
