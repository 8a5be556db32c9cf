/* test_grafana.c - the JSON API data source protocol (api_grafana.c) answered from
 * a real store: a database made by store_open (schema/store.sql) holding rows
 * whose answers are known (two snapshots of one process, 100 traced returns of
 * 1..100 ms, 10 of them errors), queried through a real read-only pool
 * (sqlro_open). Answers are parsed back with jsonparse and checked value by value
 * against what the rows say; bad requests must get the status that means it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "api_grafana.h"
#include "buf.h"
#include "err.h"
#include "jsonparse.h"
#include "api.h"
#include "serve.h"
#include "sqlro.h"
#include "store.h"

#define T0 1700000000000LL		/* first snapshot, epoch ms */
#define T1 (T0 + 60000)			/* second snapshot */
#define PID 4242

static char dir[64] = "/tmp/glimpse-grafana-XXXXXX";
static char path[128];
static struct sqlro *pool;
static const struct sqlro_limits lim = { .timeout_ms = 5000, .max_rows = 10000, .max_bytes = 1 << 20 };

static void run(struct store *st, const char *sql)
{
	if (sqlite3_exec(store_db(st), sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(store_db(st)));
}

/* Snapshot 1 at T0: 3 waiting (chan receive) in main.worker, 1 running in main.main.
 * Snapshot 2 at T1: 5 waiting, 1 running. 100 calls of main.Handle at T0 + i s taking
 * i ms, every tenth failing. */
static int make_store(void **state)
{
	struct store *st;
	char sql[512];
	int rc;

	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/g.db", dir);
	rc = store_open(path, &st);

	if (rc)
		fail_msg("store_open: %s", err_msg(rc));
	run(st, "INSERT INTO binaries VALUES ('b1', '/bin/x', 'go1.24.0', 0, 0)");
	run(st, "INSERT INTO processes VALUES (1, 4242, 'b1', 'h', 1)");
	snprintf(sql, sizeof(sql),
		 "INSERT INTO snapshots (id, process, taken_at, duration_us, decode_us, reader, goroutines, torn)"
		 " VALUES (1, 1, %lld, 400, 900, 'bpf', 4, 0), (2, 1, %lld, 500, 1000, 'bpf', 6, 0)",
		 T0 * 1000000, T1 * 1000000);
	run(st, sql);
	run(st, "INSERT INTO stacks VALUES (1, 'h1', 4, 'runtime.gopark', 'main.worker'),"
		" (2, 'h2', 1, 'main.main', 'main.main')");
	for (int g = 1; g <= 5; g++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO goroutines (snapshot, goid, status, wait_reason, wait_since_ns, stack_id)"
			 " VALUES (2, %d, 'waiting', 'chan receive', %lld, 1)", g + 10, (T1 - 1000LL * g) * 1000000);
		run(st, sql);
		if (g <= 3) {
			snprintf(sql, sizeof(sql),
				 "INSERT INTO goroutines (snapshot, goid, status, wait_reason, stack_id)"
				 " VALUES (1, %d, 'waiting', 'chan receive', 1)", g + 10);
			run(st, sql);
		}
	}
	run(st, "INSERT INTO goroutines (snapshot, goid, status, stack_id) VALUES (1, 1, 'running', 2),"
		" (2, 1, 'running', 2)");
	run(st, "INSERT INTO probes (id, process, func, spec, started) VALUES (1, 1, 'main.Handle', '{}', 1)");
	for (int i = 1; i <= 100; i++) {
		long long ts = (T0 + 1000LL * i) * 1000000;

		snprintf(sql, sizeof(sql),
			 "INSERT INTO events (probe, ts_ns, goid, tid, kind, call_id) VALUES (1, %lld, 7, 7, 'call', %d);"
			 "INSERT INTO events (probe, ts_ns, goid, tid, kind, call_id, error, duration_ns)"
			 " VALUES (1, %lld, 7, 7, 'return', %d, %s, %d)",
			 ts, i, ts + i * 1000000LL, i, i % 10 == 0 ? "'boom'" : "NULL", i * 1000000);
		run(st, sql);
	}
	store_close(st);
	rc = sqlro_open(path, 2, &pool);
	if (rc)
		fail_msg("sqlro_open: %s", err_msg(rc));
	return 0;
}

static int remove_store(void **state)
{
	char cmd[160];

	sqlro_close(pool);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Calls call with body; checks the status; returns the parsed answer (or NULL
 * for a failure, whose message is in err). */
static struct jv *call_ok(enum grafana_call call, const char *body, int want, char *err, size_t errlen)
{
	struct buf out = { 0 };
	char perr[200];
	struct jv *v = NULL;
	int status = grafana_call(call, pool, &lim, body, strlen(body), &out, err, errlen);

	if (status != want)
		fail_msg("status %d, want %d: %s (%s)", status, want, err, body);
	if (status == 200 && jv_parse(buf_str(&out), out.len, &v, perr, sizeof(perr)))
		fail_msg("answer is not JSON: %s: %s", perr, buf_str(&out));
	buf_free(&out);
	return v;
}

static struct jv *answer(enum grafana_call call, const char *body)
{
	char err[600];

	return call_ok(call, body, 200, err, sizeof(err));
}

/* The body of a /query for targets (JSON text) over [from, to] epoch ms. */
static const char *query_body(char *buf, size_t len, long long from, long long to, const char *targets,
			      const char *extra)
{
	char f[40], t[40];
	time_t s;
	struct tm tm;

	s = (time_t)(from / 1000);
	gmtime_r(&s, &tm);
	strftime(f, sizeof(f), "%Y-%m-%dT%H:%M:%S", &tm);
	s = (time_t)(to / 1000);
	gmtime_r(&s, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len,
		 "{\"range\": {\"from\": \"%s.%03lldZ\", \"to\": \"%s.%03lldZ\", \"raw\": {\"from\": \"now-6h\"}},"
		 " \"intervalMs\": 10000, \"maxDataPoints\": 500, \"targets\": %s%s}",
		 f, from % 1000, t, to % 1000, targets, extra ? extra : "");
	return buf;
}

static void test_iso_times_become_epoch_ms(void **state)
{
	int64_t ms;

	assert_int_equal(grafana_time_ms("2016-10-31T06:33:44.866Z", &ms), 0);
	assert_int_equal(ms, 1477895624866LL);
	assert_int_equal(grafana_time_ms("2016-10-31T06:33:44Z", &ms), 0);
	assert_int_equal(ms, 1477895624000LL);
	assert_int_equal(grafana_time_ms("2016-10-31T08:33:44.5+02:00", &ms), 0);
	assert_int_equal(ms, 1477895624500LL);
	assert_int_equal(grafana_time_ms("2016-10-31T01:33:44-05:00", &ms), 0);
	assert_int_equal(ms, 1477895624000LL);
	assert_int_equal(grafana_time_ms("now-6h", &ms), -1);
	assert_int_equal(grafana_time_ms("2016-13-31T06:33:44Z", &ms), -1);
	assert_int_equal(grafana_time_ms("2016-10-31T06:33:44Zjunk", &ms), -1);
	assert_int_equal(grafana_time_ms(NULL, &ms), -1);
}

static void test_routes_are_the_plugins_endpoints(void **state)
{
	static const char *const want[][2] = {
		{ "GET", "/grafana" }, { "GET", "/grafana/" }, { "POST", "/grafana/metrics" },
		{ "POST", "/grafana/metric-payload-options" }, { "POST", "/grafana/query" },
		{ "POST", "/grafana/variable" }, { "POST", "/grafana/tag-keys" }, { "POST", "/grafana/tag-values" },
	};

	assert_int_equal(api_grafana_nroutes, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < api_grafana_nroutes; i++) {
		assert_string_equal(api_grafana_routes[i].method, want[i][0]);
		assert_string_equal(api_grafana_routes[i].pattern, want[i][1]);
		assert_non_null(api_grafana_routes[i].fn);
		assert_false(api_grafana_routes[i].open);
	}
}

static void test_metrics_offer_the_views_and_free_sql(void **state)
{
	struct jv *v = answer(GRAFANA_METRICS, "{}");
	bool sql = false, state_view = false;

	assert_int_equal(jv_type(v), JV_ARR);
	assert_true(jv_len(v) >= 8);
	for (size_t i = 0; i < jv_len(v); i++) {
		const struct jv *m = jv_at(v, i), *pl = jv_get(m, "payloads");
		const char *name = jv_str(jv_get(m, "value"));

		assert_non_null(name);
		assert_non_null(jv_str(jv_get(m, "label")));
		assert_int_equal(jv_type(pl), JV_ARR);
		if (strcmp(name, "sql") == 0) {
			sql = true;
			assert_string_equal(jv_str(jv_get(jv_at(pl, 0), "name")), "sql");
			assert_string_equal(jv_str(jv_get(jv_at(pl, 0), "type")), "textarea");
		}
		if (strcmp(name, "goroutines_by_state") == 0)
			state_view = true;
		assert_string_equal(jv_str(jv_get(jv_at(pl, jv_len(pl) - 1), "name")), "format");
	}
	assert_true(sql && state_view);
	jv_free(v);
	v = answer(GRAFANA_PAYLOAD_OPTIONS, "{\"metric\": \"sql\", \"payload\": {}, \"name\": \"format\"}");
	assert_int_equal(jv_len(v), 2);
	assert_string_equal(jv_str(jv_get(jv_at(v, 0), "value")), "time_series");
	assert_string_equal(jv_str(jv_get(jv_at(v, 1), "value")), "table");
	jv_free(v);
	v = answer(GRAFANA_PAYLOAD_OPTIONS, "{\"metric\": \"sql\", \"payload\": {}, \"name\": \"other\"}");
	assert_int_equal(jv_type(v), JV_ARR);
	assert_int_equal(jv_len(v), 0);
	jv_free(v);
}

static void test_free_sql_answers_a_table_with_the_range_bound(void **state)
{
	char body[1024];
	struct jv *v;
	const struct jv *t, *cols, *rows;

	/* Only the first snapshot is in [T0 - 1 s, T0 + 1 s]. */
	query_body(body, sizeof(body), T0 - 1000, T0 + 1000,
		   "[{\"refId\": \"A\", \"target\": \"sql\", \"payload\": {\"sql\":"
		   " \"SELECT id, taken_at / 1000000 AS time, reader, duration_us / 1000.0 AS ms FROM snapshots"
		   " WHERE taken_at / 1000000 BETWEEN $__from AND $__to\"}}]", NULL);
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(v), 1);
	t = jv_at(v, 0);
	assert_string_equal(jv_str(jv_get(t, "type")), "table");
	cols = jv_get(t, "columns");
	assert_int_equal(jv_len(cols), 4);
	assert_string_equal(jv_str(jv_get(jv_at(cols, 0), "text")), "id");
	assert_string_equal(jv_str(jv_get(jv_at(cols, 0), "type")), "number");
	assert_string_equal(jv_str(jv_get(jv_at(cols, 1), "type")), "time");
	assert_string_equal(jv_str(jv_get(jv_at(cols, 2), "type")), "string");
	assert_string_equal(jv_str(jv_get(jv_at(cols, 3), "type")), "number");
	rows = jv_get(t, "rows");
	assert_int_equal(jv_len(rows), 1);
	assert_int_equal(jv_int(jv_at(jv_at(rows, 0), 0)), 1);
	assert_int_equal(jv_int(jv_at(jv_at(rows, 0), 1)), T0);
	assert_string_equal(jv_str(jv_at(jv_at(rows, 0), 2)), "bpf");
	assert_true(jv_num(jv_at(jv_at(rows, 0), 3)) == 0.4);
	assert_false(jv_bool(jv_get(t, "truncated")));
	jv_free(v);

	/* The same with :from / :to, and hidden or empty targets answer nothing. */
	query_body(body, sizeof(body), T0 - 1000, T1 + 1000,
		   "[{\"refId\": \"A\", \"payload\": {\"sql\": \"SELECT count(*) AS n FROM snapshots"
		   " WHERE taken_at / 1000000 BETWEEN :from AND :to\"}}, {\"refId\": \"B\", \"target\": \"sql\","
		   " \"hide\": true, \"payload\": {\"sql\": \"SELECT nothing\"}}, {\"refId\": \"C\"}]", NULL);
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(v), 1);
	assert_int_equal(jv_int(jv_at(jv_at(jv_get(jv_at(v, 0), "rows"), 0), 0)), 2);
	jv_free(v);
}

/* The datapoints of the series named name in v, or NULL. */
static const struct jv *series(const struct jv *v, const char *name)
{
	for (size_t i = 0; i < jv_len(v); i++)
		if (jv_str(jv_get(jv_at(v, i), "target")) && strcmp(jv_str(jv_get(jv_at(v, i), "target")), name) == 0)
			return jv_get(jv_at(v, i), "datapoints");
	return NULL;
}

static void test_time_series_are_grouped_by_the_metric_column(void **state)
{
	char body[1024];
	struct jv *v;
	const struct jv *waiting, *running;

	query_body(body, sizeof(body), T0 - 1000, T1 + 1000, "[{\"refId\": \"A\", \"target\": \"goroutines_by_state\"}]",
		   NULL);
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(v), 2);
	waiting = series(v, "waiting (pid 4242)");
	running = series(v, "running (pid 4242)");
	assert_non_null(waiting);
	assert_non_null(running);
	assert_int_equal(jv_len(waiting), 2);
	assert_int_equal(jv_int(jv_at(jv_at(waiting, 0), 0)), 3);
	assert_int_equal(jv_int(jv_at(jv_at(waiting, 0), 1)), T0);
	assert_int_equal(jv_int(jv_at(jv_at(waiting, 1), 0)), 5);
	assert_int_equal(jv_int(jv_at(jv_at(waiting, 1), 1)), T1);
	assert_int_equal(jv_int(jv_at(jv_at(running, 1), 0)), 1);
	jv_free(v);

	/* Several value columns: one series per metric and column; format from the target. */
	query_body(body, sizeof(body), T0 - 1000, T1 + 1000,
		   "[{\"refId\": \"A\", \"target\": \"capture_times\", \"format\": \"time_series\"}]", NULL);
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(v), 2);
	assert_int_equal(jv_int(jv_at(jv_at(series(v, "pid 4242 duration_us"), 1), 0)), 500);
	assert_int_equal(jv_int(jv_at(jv_at(series(v, "pid 4242 decode_us"), 0), 0)), 900);
	jv_free(v);

	/* Free SQL without a metric column: one series per value column. */
	query_body(body, sizeof(body), T0 - 1000, T1 + 1000,
		   "[{\"refId\": \"A\", \"target\": \"sql\", \"payload\": {\"format\": \"time_series\", \"sql\":"
		   " \"SELECT taken_at / 1000000 AS time, goroutines FROM snapshots ORDER BY id\"}}]", NULL);
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(v), 1);
	assert_int_equal(jv_int(jv_at(jv_at(series(v, "goroutines"), 1), 0)), 6);
	jv_free(v);

	/* A canned view asked for as a table. */
	query_body(body, sizeof(body), T0 - 1000, T1 + 1000,
		   "[{\"refId\": \"A\", \"target\": \"goroutines_by_state\", \"payload\": {\"format\": \"table\"}}]",
		   NULL);
	v = answer(GRAFANA_QUERY, body);
	assert_string_equal(jv_str(jv_get(jv_at(v, 0), "type")), "table");
	assert_int_equal(jv_len(jv_get(jv_at(v, 0), "rows")), 4);
	jv_free(v);
}

static void test_latency_percentiles_calls_and_errors_are_exact(void **state)
{
	char body[1024];
	struct jv *v;
	const struct jv *row, *cps;
	double total = 0;

	query_body(body, sizeof(body), T0, T0 + 200000, "[{\"refId\": \"A\", \"target\": \"call_latency_pct\"}]",
		   NULL);
	v = answer(GRAFANA_QUERY, body);
	row = jv_at(jv_get(jv_at(v, 0), "rows"), 0);
	assert_string_equal(jv_str(jv_at(row, 0)), "main.Handle");
	assert_int_equal(jv_int(jv_at(row, 1)), 100);	/* calls */
	assert_int_equal(jv_int(jv_at(row, 2)), 10);	/* errors */
	assert_true(jv_num(jv_at(row, 3)) == 50);	/* p50_ms */
	assert_true(jv_num(jv_at(row, 4)) == 90);
	assert_true(jv_num(jv_at(row, 5)) == 99);
	assert_true(jv_num(jv_at(row, 6)) == 100);	/* max_ms */
	jv_free(v);

	/* Calls per second in 10 s buckets: 100 calls, one a second. */
	query_body(body, sizeof(body), T0, T0 + 200000, "[{\"refId\": \"A\", \"target\": \"calls_per_second\"}]",
		   NULL);
	v = answer(GRAFANA_QUERY, body);
	cps = series(v, "main.Handle");
	assert_non_null(cps);
	for (size_t i = 0; i < jv_len(cps); i++) {
		assert_true(jv_num(jv_at(jv_at(cps, i), 0)) <= 1.0);
		assert_int_equal(jv_int(jv_at(jv_at(cps, i), 1)) % 10000, 0);
		total += jv_num(jv_at(jv_at(cps, i), 0)) * 10;
	}
	assert_true(total > 99.99 && total < 100.01);
	jv_free(v);
}

static void test_ad_hoc_filters_apply_to_queries_with_that_column(void **state)
{
	char body[1024];
	struct jv *v;

	query_body(body, sizeof(body), T0 - 1000, T1 + 1000, "[{\"refId\": \"A\", \"target\": \"blocked_stacks\"}]",
		   ", \"adhocFilters\": [{\"key\": \"pid\", \"operator\": \"=\", \"value\": \"4242\"}]");
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(jv_get(jv_at(v, 0), "rows")), 2);
	jv_free(v);
	query_body(body, sizeof(body), T0 - 1000, T1 + 1000, "[{\"refId\": \"A\", \"target\": \"blocked_stacks\"}]",
		   ", \"adhocFilters\": [{\"key\": \"pid\", \"operator\": \"!=\", \"value\": \"4242\"}]");
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(jv_get(jv_at(v, 0), "rows")), 0);
	jv_free(v);
	/* blocked_stacks has no column func: the filter does not apply to it. */
	query_body(body, sizeof(body), T0 - 1000, T1 + 1000, "[{\"refId\": \"A\", \"target\": \"blocked_stacks\"}]",
		   ", \"adhocFilters\": [{\"key\": \"func\", \"operator\": \"=\", \"value\": \"x\"}]");
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(jv_get(jv_at(v, 0), "rows")), 2);
	jv_free(v);
	query_body(body, sizeof(body), T0 - 1000, T1 + 1000, "[{\"refId\": \"A\", \"target\": \"blocked_stacks\"}]",
		   ", \"adhocFilters\": [{\"key\": \"wait_reason\", \"operator\": \"=\", \"value\": \"select\"}]");
	v = answer(GRAFANA_QUERY, body);
	assert_int_equal(jv_len(jv_get(jv_at(v, 0), "rows")), 0);
	jv_free(v);
}

static void test_variables_and_tags_list_values(void **state)
{
	struct jv *v;

	v = answer(GRAFANA_VARIABLE, "{\"payload\": {\"sql\": \"SELECT 'pid ' || pid, pid FROM processes\"},"
				     " \"range\": {\"from\": \"2022-02-14T08:09:32.164Z\", \"to\": \"2022-02-21T08:09:32.164Z\"}}");
	assert_int_equal(jv_len(v), 1);
	assert_string_equal(jv_str(jv_get(jv_at(v, 0), "__text")), "pid 4242");
	assert_string_equal(jv_str(jv_get(jv_at(v, 0), "__value")), "4242");
	jv_free(v);
	v = answer(GRAFANA_VARIABLE, "{\"payload\": {\"target\": \"SELECT func FROM probes\"}}");
	assert_string_equal(jv_str(jv_get(jv_at(v, 0), "__value")), "main.Handle");
	jv_free(v);
	v = answer(GRAFANA_TAG_KEYS, "{}");
	assert_string_equal(jv_str(jv_get(jv_at(v, 0), "text")), "pid");
	assert_string_equal(jv_str(jv_get(jv_at(v, 0), "type")), "number");
	jv_free(v);
	v = answer(GRAFANA_TAG_VALUES, "{\"key\": \"top_func\"}");
	assert_int_equal(jv_len(v), 2);
	assert_string_equal(jv_str(jv_get(jv_at(v, 0), "text")), "main.main");
	assert_string_equal(jv_str(jv_get(jv_at(v, 1), "text")), "main.worker");
	jv_free(v);
}

static void test_bad_requests_get_the_status_that_says_why(void **state)
{
	char body[1024], err[600];

	call_ok(GRAFANA_QUERY, "{\"targets\": [", 400, err, sizeof(err));
	call_ok(GRAFANA_QUERY, "[]", 400, err, sizeof(err));
	query_body(body, sizeof(body), T0, T1, "[{\"refId\": \"A\", \"target\": \"no_such_view\"}]", NULL);
	call_ok(GRAFANA_QUERY, body, 400, err, sizeof(err));
	assert_non_null(strstr(err, "unknown metric 'no_such_view'"));
	query_body(body, sizeof(body), T0, T1, "[{\"refId\": \"A\", \"target\": \"sql\"}]", NULL);
	call_ok(GRAFANA_QUERY, body, 400, err, sizeof(err));
	assert_non_null(strstr(err, "no SQL"));
	query_body(body, sizeof(body), T0, T1, "[{\"refId\": \"B\", \"payload\": {\"sql\": \"DELETE FROM snapshots\"}}]",
		   NULL);
	call_ok(GRAFANA_QUERY, body, 403, err, sizeof(err));
	assert_non_null(strstr(err, "target B"));
	query_body(body, sizeof(body), T0, T1, "[{\"refId\": \"A\", \"payload\": {\"sql\": \"SELEC 1\"}}]", NULL);
	call_ok(GRAFANA_QUERY, body, 400, err, sizeof(err));
	query_body(body, sizeof(body), T0, T1,
		   "[{\"refId\": \"A\", \"payload\": {\"sql\": \"SELECT 1 AS x\", \"format\": \"time_series\"}}]", NULL);
	call_ok(GRAFANA_QUERY, body, 400, err, sizeof(err));
	assert_non_null(strstr(err, "column named time"));
	call_ok(GRAFANA_QUERY, "{\"range\": {\"from\": \"yesterday\"}, \"targets\": []}", 400, err, sizeof(err));
	assert_non_null(strstr(err, "range.from"));
	query_body(body, sizeof(body), T0, T1, "[{\"refId\": \"A\", \"target\": \"blocked_stacks\"}]",
		   ", \"adhocFilters\": [{\"key\": \"pid\", \"operator\": \"=~\", \"value\": \"4.*\"}]");
	call_ok(GRAFANA_QUERY, body, 400, err, sizeof(err));
	assert_non_null(strstr(err, "'=~' is not supported"));
	call_ok(GRAFANA_VARIABLE, "{}", 400, err, sizeof(err));
	call_ok(GRAFANA_TAG_VALUES, "{\"key\": \"nope\"}", 400, err, sizeof(err));
	/* An empty body is an empty request. */
	jv_free(call_ok(GRAFANA_TAG_KEYS, "", 200, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iso_times_become_epoch_ms),
		cmocka_unit_test(test_routes_are_the_plugins_endpoints),
		cmocka_unit_test(test_metrics_offer_the_views_and_free_sql),
		cmocka_unit_test(test_free_sql_answers_a_table_with_the_range_bound),
		cmocka_unit_test(test_time_series_are_grouped_by_the_metric_column),
		cmocka_unit_test(test_latency_percentiles_calls_and_errors_are_exact),
		cmocka_unit_test(test_ad_hoc_filters_apply_to_queries_with_that_column),
		cmocka_unit_test(test_variables_and_tags_list_values),
		cmocka_unit_test(test_bad_requests_get_the_status_that_says_why),
	};

	return cmocka_run_group_tests(tests, make_store, remove_store);
}
