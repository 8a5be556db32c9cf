/* api_grafana.c - Grafana's JSON API data source protocol under /grafana (see
 * api_grafana.h): requests parsed with jsonparse, SQL run on the read-only pool
 * (sqlro), answers written with the one JSON writer. The metrics offered are the
 * Grafana views of schema/store.sql, each with its SQL here, and "sql" for SQL of
 * the user's own.
 */
#include "api_grafana.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "json.h"
#include "jsonparse.h"
#include "api.h"
#include "serve.h"

#define MAX_SERIES 1000		/* time series in one target's answer */
#define MAX_FILTERS 8		/* ad hoc filters applied */
#define MAX_PARAMS (6 + MAX_FILTERS)

struct metric {
	const char *name;
	const char *label;
	bool series;		/* answered as time series unless the target asks for a table */
	const char *sql;
};

static const struct metric metrics[] = {
	{ "goroutines_by_state", "Goroutines by state", true,
	  "SELECT time, status || ' (pid ' || pid || ')' AS metric, goroutines FROM goroutines_by_state"
	  " WHERE time BETWEEN :from AND :to ORDER BY time" },
	{ "goroutines_by_func", "Goroutines by function", true,
	  "SELECT time, top_func || ' (pid ' || pid || ')' AS metric, goroutines FROM goroutines_by_func"
	  " WHERE time BETWEEN :from AND :to ORDER BY time" },
	{ "blocked_stacks", "Blocked stacks", false,
	  "SELECT time, pid, snapshot, top_func, wait_reason, goroutines, max_waiting_ms, avg_waiting_ms, stack_id,"
	  " example_goid FROM blocked_stacks WHERE time BETWEEN :from AND :to"
	  " ORDER BY time DESC, goroutines DESC" },
	{ "capture_times", "Capture times", true,
	  "SELECT time, 'pid ' || pid AS metric, duration_us, decode_us FROM capture_times"
	  " WHERE time BETWEEN :from AND :to ORDER BY time" },
	{ "calls_per_second", "Calls per second", true,
	  "SELECT time / :interval_ms * :interval_ms AS time, func AS metric,"
	  " sum(calls) * 1000.0 / max(:interval_ms, 1000) AS calls_per_second FROM calls_per_second"
	  " WHERE time BETWEEN :from AND :to GROUP BY 1, func ORDER BY 1" },
	{ "errors_per_second", "Errors per second", true,
	  "SELECT time / :interval_ms * :interval_ms AS time, func AS metric,"
	  " sum(errors) * 1000.0 / max(:interval_ms, 1000) AS errors_per_second FROM calls_per_second"
	  " WHERE time BETWEEN :from AND :to GROUP BY 1, func ORDER BY 1" },
	{ "call_latency_pct", "Call latency percentiles", false,
	  "WITH r AS (SELECT func, duration_ns, error,"
	  " row_number() OVER (PARTITION BY func ORDER BY duration_ns) AS n,"
	  " count(*) OVER (PARTITION BY func) AS total FROM calls"
	  " WHERE duration_ns IS NOT NULL AND ts_ns BETWEEN :from * 1000000 AND :to * 1000000)"
	  " SELECT func, total AS calls, sum(error IS NOT NULL) AS errors,"
	  " min(CASE WHEN n >= 0.50 * total THEN duration_ns END) / 1e6 AS p50_ms,"
	  " min(CASE WHEN n >= 0.90 * total THEN duration_ns END) / 1e6 AS p90_ms,"
	  " min(CASE WHEN n >= 0.99 * total THEN duration_ns END) / 1e6 AS p99_ms,"
	  " max(duration_ns) / 1e6 AS max_ms FROM r GROUP BY func ORDER BY calls DESC" },
	{ "call_latency_pct_per_minute", "Call latency percentiles per minute", true,
	  "SELECT time, func AS metric, p50_ns / 1e6 AS p50_ms, p90_ns / 1e6 AS p90_ms, p99_ns / 1e6 AS p99_ms"
	  " FROM call_latency_pct_per_minute WHERE time BETWEEN :from - 60000 AND :to ORDER BY time" },
	{ "sql", "SQL", false, NULL },
};

/* What ad hoc filters and /grafana/tag-values offer: a result column name, and
 * the SQL listing its values. */
static const struct {
	const char *key;
	const char *type;
	const char *values_sql;
} tags[] = {
	{ "pid", "number", "SELECT DISTINCT pid FROM processes ORDER BY pid" },
	{ "func", "string", "SELECT DISTINCT func FROM probes ORDER BY func" },
	{ "top_func", "string", "SELECT DISTINCT top_func FROM stacks WHERE top_func IS NOT NULL ORDER BY top_func" },
	{ "status", "string", "SELECT DISTINCT status FROM goroutines ORDER BY status" },
	{ "wait_reason", "string",
	  "SELECT DISTINCT wait_reason FROM goroutines WHERE wait_reason IS NOT NULL ORDER BY wait_reason" },
};

/* One call's state: the parsed request, its range, the answer and why it failed. */
struct call {
	struct sqlro *pool;
	const struct sqlro_limits *lim;
	const struct jv *req;
	int64_t from, to, interval_ms;
	struct buf *out;
	struct json j;
	int status;
	char *err;
	size_t errlen;
};

static int fail(struct call *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the failure (the first one) and returns its status. */
static int fail(struct call *c, int status, const char *fmt, ...)
{
	va_list ap;

	if (c->status == 200) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
		c->status = status;
	}
	return c->status;
}

int grafana_time_ms(const char *iso, int64_t *ms)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, n = 0, oh = 0, om = 0;
	double sec;
	const char *rest;
	time_t t;

	if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%lf%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || h < 0 || mi < 0 || !(sec >= 0 && sec < 61))
		return -1;
	rest = iso + n;
	if ((rest[0] == '+' || rest[0] == '-') && sscanf(rest + 1, "%2d:%2d", &oh, &om) == 2 && strlen(rest) == 6) {
		if (rest[0] == '-') {
			oh = -oh;
			om = -om;
		}
	} else if (strcmp(rest, "Z") != 0 && *rest) {
		return -1;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	t = timegm(&tm);
	*ms = ((int64_t)t - (int64_t)oh * 3600 - (int64_t)om * 60) * 1000 + llround(sec * 1000);
	return 0;
}

/* A time of the request: ISO 8601 text or a number of epoch ms. */
static int request_time(struct call *c, const struct jv *v, const char *what, int64_t *ms)
{
	if (!v)
		return 0;
	if (jv_type(v) == JV_NUM) {
		*ms = (int64_t)jv_num(v);
		return 0;
	}
	if (grafana_time_ms(jv_str(v), ms))
		return fail(c, 400, "%s: not an ISO 8601 time: %s", what, jv_str(v) ? jv_str(v) : "(not a string)");
	return 0;
}

/* The request's range (range.from, range.to; the last hour when absent) and
 * intervalMs (1000 when absent). */
static int request_range(struct call *c)
{
	const struct jv *range = jv_get(c->req, "range");
	const struct jv *iv = jv_get(c->req, "intervalMs");
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	c->to = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	c->from = c->to - 3600 * 1000;
	c->interval_ms = 1000;
	if (request_time(c, jv_get(range, "from"), "range.from", &c->from) ||
	    request_time(c, jv_get(range, "to"), "range.to", &c->to))
		return c->status;
	if (iv && jv_type(iv) == JV_NUM && jv_num(iv) >= 1)
		c->interval_ms = (int64_t)jv_num(iv);
	return 0;
}

static bool ident_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '$' || (unsigned char)ch >= 0x80;
}

/* The parameter of sql named name with any of the prefixes ':', '$', '@' (outside
 * string literals, quoted names and comments), written with its prefix to buf;
 * NULL if sql has none. */
static const char *find_param(const char *sql, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = sql; *p; p++) {
		if (*p == '\'' || *p == '"' || *p == '`' || *p == '[') {
			p = strchr(p + 1, *p == '[' ? ']' : *p);
			if (!p)
				return NULL;
		} else if (p[0] == '-' && p[1] == '-') {
			p = strchr(p, '\n');
			if (!p)
				return NULL;
		} else if (p[0] == '/' && p[1] == '*') {
			p = strstr(p + 2, "*/");
			if (!p)
				return NULL;
			p++;
		} else if ((*p == ':' || *p == '$' || *p == '@') && strncmp(p + 1, name, n) == 0 &&
			   !ident_char(p[1 + n]) && (p == sql || !ident_char(p[-1]))) {
			snprintf(buf, len, "%c%s", *p, name);
			return buf;
		}
	}
	return NULL;
}

/* Adds the range parameters sql uses (:from, :to, :interval_ms and Grafana's own
 * names $__from, $__to, $__interval_ms) to params. names holds their text. */
static size_t range_params(const struct call *c, const char *sql, struct sqlro_param *params, char names[6][32])
{
	const struct {
		const char *name;
		int64_t v;
	} r[6] = { { "from", c->from }, { "to", c->to }, { "interval_ms", c->interval_ms },
		   { "__from", c->from }, { "__to", c->to }, { "__interval_ms", c->interval_ms } };
	size_t n = 0;

	for (int i = 0; i < 6; i++)
		if (find_param(sql, r[i].name, names[n], sizeof(names[n]))) {
			params[n] = (struct sqlro_param){ .name = names[n], .type = SQLRO_INT, .i = r[i].v };
			n++;
		}
	return n;
}

/* Writes column i of the current row as a JSON value. */
static void value(struct json *j, sqlite3_stmt *s, int i)
{
	switch (sqlite3_column_type(s, i)) {
	case SQLITE_INTEGER: json_int(j, sqlite3_column_int64(s, i)); break;
	case SQLITE_FLOAT: json_double(j, sqlite3_column_double(s, i)); break;
	case SQLITE_NULL: json_null(j); break;
	default: json_strn(j, (const char *)sqlite3_column_text(s, i), (size_t)sqlite3_column_bytes(s, i));
	}
}

/* ---- tables ---- */

static int table_cols(void *ctx, sqlite3_stmt *s)
{
	struct call *c = ctx;
	int n = sqlite3_column_count(s);

	json_obj(&c->j);
	json_kv_str(&c->j, "type", "table");
	json_key(&c->j, "columns");
	json_arr(&c->j);
	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(s, i);
		const char *t = sqlro_coltype(s, i);

		json_obj(&c->j);
		json_kv_str(&c->j, "text", name);
		if (strcasecmp(name, "time") == 0)
			json_kv_str(&c->j, "type", "time");
		else
			json_kv_str(&c->j, "type",
				    strcmp(t, "integer") == 0 || strcmp(t, "real") == 0 ? "number" : "string");
		json_end(&c->j);
	}
	json_end(&c->j);
	json_key(&c->j, "rows");
	json_arr(&c->j);
	return 0;
}

static long table_row(void *ctx, sqlite3_stmt *s)
{
	struct call *c = ctx;
	size_t before = c->out->len;

	json_arr(&c->j);
	for (int i = 0; i < sqlite3_column_count(s); i++)
		value(&c->j, s, i);
	json_end(&c->j);
	return (long)(c->out->len - before);
}

/* ---- time series ---- */

struct series {
	char *name;
	struct buf points;	/* [[value, time], ...] */
	struct json j;		/* writes points (so a series never moves) */
	struct series *next;
};

/* The series of one answer, in the order their first point came. */
struct series_set {
	struct call *c;
	int time_col, metric_col, nvalues;
	struct series *first, **tail;
	size_t n;
	char err[160];
};

static int series_cols(void *ctx, sqlite3_stmt *s)
{
	struct series_set *ss = ctx;
	int n = sqlite3_column_count(s);

	ss->time_col = ss->metric_col = -1;
	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(s, i);

		if (ss->time_col < 0 && strcasecmp(name, "time") == 0)
			ss->time_col = i;
		else if (ss->metric_col < 0 && strcasecmp(name, "metric") == 0)
			ss->metric_col = i;
	}
	if (ss->time_col < 0) {
		snprintf(ss->err, sizeof(ss->err), "a time series needs a column named time (epoch ms)");
		return -1;
	}
	ss->nvalues = n - 1 - (ss->metric_col >= 0);
	return 0;
}

static struct series *series_get(struct series_set *ss, const char *name)
{
	struct series *se;

	for (se = ss->first; se; se = se->next)
		if (strcmp(se->name, name) == 0)
			return se;
	if (ss->n == MAX_SERIES)
		return NULL;
	se = xcalloc(1, sizeof(*se));
	se->name = xstrdup(name);
	json_init(&se->j, &se->points);
	json_arr(&se->j);
	*ss->tail = se;
	ss->tail = &se->next;
	ss->n++;
	return se;
}

static long series_row(void *ctx, sqlite3_stmt *s)
{
	struct series_set *ss = ctx;
	const char *metric = NULL;
	int64_t t;
	long bytes = 0;

	if (sqlite3_column_type(s, ss->time_col) == SQLITE_NULL)
		return 0;
	t = sqlite3_column_type(s, ss->time_col) == SQLITE_FLOAT ? (int64_t)sqlite3_column_double(s, ss->time_col)
								 : sqlite3_column_int64(s, ss->time_col);
	if (ss->metric_col >= 0) {
		metric = (const char *)sqlite3_column_text(s, ss->metric_col);
		if (!metric)
			metric = "null";
	}
	for (int i = 0; i < sqlite3_column_count(s); i++) {
		int type = sqlite3_column_type(s, i);
		char name[512];
		struct series *se;
		size_t before;

		if (i == ss->time_col || i == ss->metric_col || (type != SQLITE_INTEGER && type != SQLITE_FLOAT))
			continue;
		if (metric && ss->nvalues > 1)
			snprintf(name, sizeof(name), "%s %s", metric, sqlite3_column_name(s, i));
		else
			snprintf(name, sizeof(name), "%s", metric ? metric : sqlite3_column_name(s, i));
		se = series_get(ss, name);
		if (!se) {
			snprintf(ss->err, sizeof(ss->err), "more than %d series: group the rows by fewer metrics",
				 MAX_SERIES);
			return -1;
		}
		before = se->points.len;
		json_arr(&se->j);
		value(&se->j, s, i);
		json_int(&se->j, t);
		json_end(&se->j);
		bytes += (long)(se->points.len - before);
	}
	return bytes;
}

/* Writes the series and frees them. */
static void series_flush(struct series_set *ss, bool write)
{
	struct series *se, *next;

	for (se = ss->first; se; se = next) {
		next = se->next;
		if (write) {
			json_end(&se->j);
			json_obj(&ss->c->j);
			json_kv_str(&ss->c->j, "target", se->name);
			json_key(&ss->c->j, "datapoints");
			json_raw(&ss->c->j, buf_str(&se->points));
			json_end(&ss->c->j);
		}
		buf_free(&se->points);
		free(se->name);
		free(se);
	}
	ss->first = NULL;
	ss->tail = &ss->first;
	ss->n = 0;
}

/* ---- ad hoc filters ---- */

static int names_cols(void *ctx, sqlite3_stmt *s)
{
	struct buf *names = ctx;

	for (int i = 0; i < sqlite3_column_count(s); i++) {
		buf_puts(names, sqlite3_column_name(s, i));
		buf_putc(names, '\n');
	}
	return 0;
}

/* Whether name is one of the lines of names. */
static bool has_line(const char *names, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = names; *p; p = strchr(p, '\n') + 1)
		if (strncmp(p, name, n) == 0 && p[n] == '\n')
			return true;
	return false;
}

/* A filter's value bound as an integer, a real or text, as it reads. */
static struct sqlro_param filter_value(const char *name, const char *v)
{
	struct sqlro_param p = { .name = name, .type = SQLRO_TEXT, .s = v };
	char *end;
	long long i;
	double d;

	if (!*v)
		return p;
	i = strtoll(v, &end, 10);
	if (!*end) {
		p.type = SQLRO_INT;
		p.i = i;
		return p;
	}
	d = strtod(v, &end);
	if (!*end && isfinite(d)) {
		p.type = SQLRO_REAL;
		p.d = d;
	}
	return p;
}

/* Applies the request's adhocFilters to sql (in place) when their key is one of its
 * result columns; a filter on another column does not apply to this query. */
static int apply_filters(struct call *c, struct buf *sql, struct sqlro_param *params, size_t *np)
{
	static const char *const names[MAX_FILTERS] = { ":adhoc0", ":adhoc1", ":adhoc2", ":adhoc3",
							":adhoc4", ":adhoc5", ":adhoc6", ":adhoc7" };
	static const char *const ops[][2] = { { "=", "=" }, { "!=", "<>" }, { "<", "<" },
					      { ">", ">" }, { "<=", "<=" }, { ">=", ">=" } };
	const struct jv *filters = jv_get(c->req, "adhocFilters");
	struct buf cols = { 0 }, wrapped = { 0 };
	struct sqlro_result res;
	size_t nf = 0;

	if (jv_len(filters) == 0)
		return 0;
	if (jv_len(filters) > MAX_FILTERS)
		return fail(c, 400, "more than %d ad hoc filters", MAX_FILTERS);
	buf_printf(&cols, "SELECT * FROM (%s) LIMIT 0", buf_str(sql));
	{
		struct buf names_found = { 0 };

		if (sqlro_run(c->pool, buf_str(&cols), params, *np, c->lim, names_cols, NULL, &names_found, &res)) {
			buf_free(&cols);
			buf_free(&names_found);
			return fail(c, api_sql_status(res.fail), "%s", res.error);
		}
		buf_free(&cols);
		cols = names_found;
	}
	buf_printf(&wrapped, "SELECT * FROM (%s)", buf_str(sql));
	for (size_t i = 0; i < jv_len(filters); i++) {
		const struct jv *f = jv_at(filters, i);
		const char *key = jv_str(jv_get(f, "key")), *op = jv_str(jv_get(f, "operator"));
		const char *v = jv_str(jv_get(f, "value"));
		const char *sqlop = NULL;

		if (!key || !op || !v) {
			buf_free(&cols);
			buf_free(&wrapped);
			return fail(c, 400, "an ad hoc filter needs a key, an operator and a value (strings)");
		}
		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
			if (strcmp(op, ops[k][0]) == 0)
				sqlop = ops[k][1];
		if (!sqlop) {
			buf_free(&cols);
			buf_free(&wrapped);
			return fail(c, 400, "ad hoc filter operator '%s' is not supported (=, !=, <, >, <=, >=)", op);
		}
		if (!has_line(buf_str(&cols), key) || strchr(key, '"') || strchr(key, '\n'))
			continue;
		buf_printf(&wrapped, " %s \"%s\" %s %s", nf ? "AND" : "WHERE", key, sqlop, names[nf]);
		params[(*np)++] = filter_value(names[nf], v);
		nf++;
	}
	buf_free(&cols);
	if (nf) {
		buf_free(sql);
		*sql = wrapped;
	} else {
		buf_free(&wrapped);
	}
	return 0;
}

/* ---- calls ---- */

static const struct metric *metric_named(const char *name)
{
	for (size_t i = 0; name && i < sizeof(metrics) / sizeof(metrics[0]); i++)
		if (strcmp(metrics[i].name, name) == 0)
			return &metrics[i];
	return NULL;
}

/* The SQL a target or variable asks for: payload.sql, a payload that is a string,
 * payload.target (variables), else the metric's. NULL if none. */
static const char *target_sql(const struct jv *payload, const struct metric *m)
{
	const char *sql = jv_str(jv_get(payload, "sql"));

	if (!sql)
		sql = jv_str(payload);
	if (!sql)
		sql = jv_str(jv_get(payload, "target"));
	if ((!sql || !*sql) && m)
		sql = m->sql;
	return sql && *sql ? sql : NULL;
}

/* Whether a format name asks for time series (1), a table (0), or neither (-1). */
static int format_series(const char *f)
{
	if (!f)
		return -1;
	if (strcmp(f, "time_series") == 0 || strcmp(f, "timeseries") == 0 || strcmp(f, "time series") == 0)
		return 1;
	return strcmp(f, "table") == 0 ? 0 : -1;
}

/* Runs one target of /grafana/query and writes its answer: one table or its series. */
static int query_target(struct call *c, const struct jv *t)
{
	const char *name = jv_str(jv_get(t, "target")), *ref = jv_str(jv_get(t, "refId"));
	const struct jv *payload = jv_get(t, "payload");
	const struct metric *m = metric_named(name);
	struct sqlro_param params[MAX_PARAMS];
	char names[6][32];
	struct sqlro_result res;
	struct buf sql = { 0 };
	const char *text;
	size_t np;
	int series, rc;

	if (!ref)
		ref = "?";
	if (jv_bool(jv_get(t, "hide")))
		return 0;
	text = target_sql(payload, m);
	if (!text && name && *name && !m)
		return fail(c, 400, "target %s: unknown metric '%s' (see POST /grafana/metrics)", ref, name);
	if (!text) {
		if (name && *name)
			return fail(c, 400, "target %s: no SQL: give the payload {\"sql\": \"SELECT ...\"}", ref);
		return 0; /* a query not filled in yet */
	}
	series = format_series(jv_str(jv_get(payload, "format")));
	if (series < 0)
		series = format_series(jv_str(jv_get(t, "format")));
	if (series < 0)
		series = m && text == m->sql ? m->series : 0;
	buf_puts(&sql, text);
	np = range_params(c, text, params, names);
	if (apply_filters(c, &sql, params, &np)) {
		buf_free(&sql);
		return c->status;
	}
	if (series) {
		struct series_set ss = { .c = c };

		ss.tail = &ss.first;
		rc = sqlro_run(c->pool, buf_str(&sql), params, np, c->lim, series_cols, series_row, &ss, &res);
		series_flush(&ss, rc == 0);
		if (rc && ss.err[0])
			fail(c, 400, "target %s: %s", ref, ss.err);
	} else {
		int depth = c->j.depth;

		rc = sqlro_run(c->pool, buf_str(&sql), params, np, c->lim, table_cols, table_row, c, &res);
		if (!rc) {
			json_end(&c->j); /* rows */
			json_kv_bool(&c->j, "truncated", res.truncated);
			json_end(&c->j);
		}
		while (c->j.depth > depth)
			json_end(&c->j);
	}
	buf_free(&sql);
	if (rc)
		return fail(c, api_sql_status(res.fail), "target %s: %s", ref, res.error);
	return 0;
}

static int do_query(struct call *c)
{
	const struct jv *targets = jv_get(c->req, "targets");

	if (targets && jv_type(targets) != JV_ARR)
		return fail(c, 400, "targets must be an array");
	if (request_range(c))
		return c->status;
	json_arr(&c->j);
	for (size_t i = 0; i < jv_len(targets); i++)
		if (query_target(c, jv_at(targets, i)))
			return c->status;
	json_end(&c->j);
	return 0;
}

/* The choices of payload "format": [{"label", "value"}]. */
static void format_options(struct json *j)
{
	json_arr(j);
	json_obj(j);
	json_kv_str(j, "label", "Time series");
	json_kv_str(j, "value", "time_series");
	json_end(j);
	json_obj(j);
	json_kv_str(j, "label", "Table");
	json_kv_str(j, "value", "table");
	json_end(j);
	json_end(j);
}

static void format_payload(struct json *j)
{
	json_obj(j);
	json_kv_str(j, "label", "Format");
	json_kv_str(j, "name", "format");
	json_kv_str(j, "type", "select");
	json_key(j, "options");
	format_options(j);
	json_end(j);
}

static int do_metrics(struct call *c)
{
	json_arr(&c->j);
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
		json_obj(&c->j);
		json_kv_str(&c->j, "label", metrics[i].label);
		json_kv_str(&c->j, "value", metrics[i].name);
		json_key(&c->j, "payloads");
		json_arr(&c->j);
		if (!metrics[i].sql) {
			json_obj(&c->j);
			json_kv_str(&c->j, "label", "SQL");
			json_kv_str(&c->j, "name", "sql");
			json_kv_str(&c->j, "type", "textarea");
			json_kv_str(&c->j, "placeholder",
				    "SELECT time, status AS metric, goroutines FROM goroutines_by_state"
				    " WHERE time BETWEEN $__from AND $__to");
			json_end(&c->j);
		}
		format_payload(&c->j);
		json_end(&c->j);
		json_end(&c->j);
	}
	json_end(&c->j);
	return 0;
}

static int do_payload_options(struct call *c)
{
	const char *name = jv_str(jv_get(c->req, "name"));

	if (name && strcmp(name, "format") == 0) {
		format_options(&c->j);
		return 0;
	}
	json_arr(&c->j);
	json_end(&c->j);
	return 0;
}

/* Rows of (text[, value]) as [{"__text", "__value"}] or, with key NULL,
 * [{"text"}]: the answers of /grafana/variable and /grafana/tag-values. */
struct pairs {
	struct call *c;
	const char *text_key, *value_key;
};

static long pairs_row(void *ctx, sqlite3_stmt *s)
{
	struct pairs *p = ctx;
	size_t before = p->c->out->len;
	const char *text = (const char *)sqlite3_column_text(s, 0);

	json_obj(&p->c->j);
	json_kv_str(&p->c->j, p->text_key, text ? text : "");
	if (p->value_key) {
		const char *v = sqlite3_column_count(s) > 1 ? (const char *)sqlite3_column_text(s, 1) : text;

		json_kv_str(&p->c->j, p->value_key, v ? v : "");
	}
	json_end(&p->c->j);
	return (long)(p->c->out->len - before);
}

static int run_pairs(struct call *c, const char *sql, const struct sqlro_param *params, size_t np,
		     struct pairs *p)
{
	struct sqlro_result res;
	int depth = c->j.depth;

	json_arr(&c->j);
	if (sqlro_run(c->pool, sql, params, np, c->lim, NULL, pairs_row, p, &res)) {
		while (c->j.depth > depth)
			json_end(&c->j);
		return fail(c, api_sql_status(res.fail), "%s", res.error);
	}
	json_end(&c->j);
	return 0;
}

static int do_variable(struct call *c)
{
	const char *sql = target_sql(jv_get(c->req, "payload"), NULL);
	struct sqlro_param params[6];
	char names[6][32];
	struct pairs p = { c, "__text", "__value" };

	if (!sql)
		return fail(c, 400, "a variable's query is SQL: {\"sql\": \"SELECT text[, value] FROM ...\"}");
	if (request_range(c))
		return c->status;
	return run_pairs(c, sql, params, range_params(c, sql, params, names), &p);
}

static int do_tag_keys(struct call *c)
{
	json_arr(&c->j);
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		json_obj(&c->j);
		json_kv_str(&c->j, "type", tags[i].type);
		json_kv_str(&c->j, "text", tags[i].key);
		json_end(&c->j);
	}
	json_end(&c->j);
	return 0;
}

static int do_tag_values(struct call *c)
{
	const char *key = jv_str(jv_get(c->req, "key"));
	struct pairs p = { c, "text", NULL };

	for (size_t i = 0; key && i < sizeof(tags) / sizeof(tags[0]); i++)
		if (strcmp(tags[i].key, key) == 0)
			return run_pairs(c, tags[i].values_sql, NULL, 0, &p);
	return fail(c, 400, "unknown tag key '%s' (see POST /grafana/tag-keys)", key ? key : "");
}

int grafana_call(enum grafana_call call, struct sqlro *pool, const struct sqlro_limits *lim, const char *body,
		 size_t len, struct buf *out, char *err, size_t errlen)
{
	struct call c = { .pool = pool, .lim = lim, .out = out, .status = 200, .err = err, .errlen = errlen };
	struct jv *req = NULL;
	size_t start = out->len;
	int rc = 0;

	err[0] = '\0';
	if (!body || len == 0) {
		body = "{}";
		len = 2;
	}
	if (jv_parse(body, len, &req, err, errlen))
		return 400;
	if (jv_type(req) != JV_OBJ) {
		jv_free(req);
		snprintf(err, errlen, "the request body must be a JSON object");
		return 400;
	}
	c.req = req;
	json_init(&c.j, out);
	switch (call) {
	case GRAFANA_METRICS: rc = do_metrics(&c); break;
	case GRAFANA_PAYLOAD_OPTIONS: rc = do_payload_options(&c); break;
	case GRAFANA_QUERY: rc = do_query(&c); break;
	case GRAFANA_VARIABLE: rc = do_variable(&c); break;
	case GRAFANA_TAG_KEYS: rc = do_tag_keys(&c); break;
	case GRAFANA_TAG_VALUES: rc = do_tag_values(&c); break;
	}
	jv_free(req);
	if (rc) {
		out->len = start;
		if (out->p)
			out->p[start] = '\0';
		return c.status;
	}
	return 200;
}

/* ---- routes ---- */

static void answer(struct http_req *req, struct http_resp *w, enum grafana_call call)
{
	struct serve *sv = req->app;
	struct buf out = { 0 };
	char err[600];
	int status = grafana_call(call, sv->sql, &sv->sql_lim, req->body, req->body_len, &out, err, sizeof(err));

	if (status != 200) {
		buf_free(&out);
		http_error(w, status, "%s", err);
		return;
	}
	buf_free(&w->body);
	w->body = out;
}

static void h_health(struct http_req *req, struct http_resp *w)
{
	buf_puts(&w->body, "{\"status\": \"ok\", \"service\": \"glimpse\"}");
}

static void h_metrics(struct http_req *req, struct http_resp *w)
{
	answer(req, w, GRAFANA_METRICS);
}

static void h_payload_options(struct http_req *req, struct http_resp *w)
{
	answer(req, w, GRAFANA_PAYLOAD_OPTIONS);
}

static void h_query(struct http_req *req, struct http_resp *w)
{
	answer(req, w, GRAFANA_QUERY);
}

static void h_variable(struct http_req *req, struct http_resp *w)
{
	answer(req, w, GRAFANA_VARIABLE);
}

static void h_tag_keys(struct http_req *req, struct http_resp *w)
{
	answer(req, w, GRAFANA_TAG_KEYS);
}

static void h_tag_values(struct http_req *req, struct http_resp *w)
{
	answer(req, w, GRAFANA_TAG_VALUES);
}

const struct http_route api_grafana_routes[] = {
	{ "GET", "/grafana", h_health, false },
	{ "GET", "/grafana/", h_health, false },
	{ "POST", "/grafana/metrics", h_metrics, false },
	{ "POST", "/grafana/metric-payload-options", h_payload_options, false },
	{ "POST", "/grafana/query", h_query, false },
	{ "POST", "/grafana/variable", h_variable, false },
	{ "POST", "/grafana/tag-keys", h_tag_keys, false },
	{ "POST", "/grafana/tag-values", h_tag_values, false },
};
const size_t api_grafana_nroutes = sizeof(api_grafana_routes) / sizeof(api_grafana_routes[0]);
