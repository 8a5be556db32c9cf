/* api_sql.c - GET/POST /api/sql: read-only SQL over the store, answered as JSON
 * (columns, types, rows), CSV, or a flat array of row objects, bounded in time,
 * rows and bytes (sqlro.c enforces both read-only and the limits).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "json.h"
#include "jsonparse.h"

enum fmt { FMT_JSON, FMT_OBJECTS, FMT_CSV };

struct answer {
	enum fmt fmt;
	struct buf *out;
	struct json j;
	int ncols;
	char **names;
};

static void put_json_value(struct json *j, sqlite3_stmt *s, int i)
{
	switch (sqlite3_column_type(s, i)) {
	case SQLITE_INTEGER: json_int(j, sqlite3_column_int64(s, i)); break;
	case SQLITE_FLOAT: json_double(j, sqlite3_column_double(s, i)); break;
	case SQLITE_TEXT:
		json_strn(j, (const char *)sqlite3_column_text(s, i), (size_t)sqlite3_column_bytes(s, i));
		break;
	case SQLITE_BLOB: {
		const unsigned char *p = sqlite3_column_blob(s, i);
		int n = sqlite3_column_bytes(s, i);
		struct buf hex = {0};

		for (int k = 0; k < n; k++)
			buf_printf(&hex, "%02x", p[k]);
		json_str(j, buf_str(&hex));
		buf_free(&hex);
		break;
	}
	default: json_null(j); break;
	}
}

static void put_csv_field(struct buf *b, const char *s, size_t n)
{
	bool quote = false;

	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
	if (!quote) {
		buf_add(b, s, n);
		return;
	}
	buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			buf_putc(b, '"');
		buf_putc(b, s[i]);
	}
	buf_putc(b, '"');
}

static int on_cols(void *ctx, sqlite3_stmt *s)
{
	struct answer *a = ctx;

	a->ncols = sqlite3_column_count(s);
	a->names = xcalloc((size_t)a->ncols + 1, sizeof(*a->names));
	for (int i = 0; i < a->ncols; i++)
		a->names[i] = xstrdup(sqlite3_column_name(s, i));
	if (a->fmt == FMT_CSV) {
		for (int i = 0; i < a->ncols; i++) {
			if (i)
				buf_putc(a->out, ',');
			put_csv_field(a->out, a->names[i], strlen(a->names[i]));
		}
		buf_puts(a->out, "\r\n");
		return 0;
	}
	json_init(&a->j, a->out);
	if (a->fmt == FMT_OBJECTS) {
		json_arr(&a->j);
		return 0;
	}
	json_obj(&a->j);
	json_key(&a->j, "columns");
	json_arr(&a->j);
	for (int i = 0; i < a->ncols; i++)
		json_str(&a->j, a->names[i]);
	json_end(&a->j);
	json_key(&a->j, "types");
	json_arr(&a->j);
	for (int i = 0; i < a->ncols; i++)
		json_str(&a->j, sqlro_coltype(s, i));
	json_end(&a->j);
	json_key(&a->j, "rows");
	json_arr(&a->j);
	return 0;
}

static long on_row(void *ctx, sqlite3_stmt *s)
{
	struct answer *a = ctx;
	size_t before = a->out->len;

	if (a->fmt == FMT_CSV) {
		for (int i = 0; i < a->ncols; i++) {
			if (i)
				buf_putc(a->out, ',');
			if (sqlite3_column_type(s, i) != SQLITE_NULL)
				put_csv_field(a->out, (const char *)sqlite3_column_text(s, i),
					      (size_t)sqlite3_column_bytes(s, i));
		}
		buf_puts(a->out, "\r\n");
	} else if (a->fmt == FMT_OBJECTS) {
		json_obj(&a->j);
		for (int i = 0; i < a->ncols; i++) {
			json_key(&a->j, a->names[i]);
			put_json_value(&a->j, s, i);
		}
		json_end(&a->j);
	} else {
		json_arr(&a->j);
		for (int i = 0; i < a->ncols; i++)
			put_json_value(&a->j, s, i);
		json_end(&a->j);
	}
	return (long)(a->out->len - before);
}

int api_sql_status(enum sqlro_fail f)
{
	switch (f) {
	case SQLRO_OK: return 200;
	case SQLRO_BAD: return 400;
	case SQLRO_DENIED: return 403;
	case SQLRO_TIMEOUT: return 400;
	case SQLRO_BUSY: return 503;
	default: return 500;
	}
}

/* A query-string parameter value: an integer, a real, or text. */
static void typed_param(const char *v, struct sqlro_param *p)
{
	char *end;

	p->type = SQLRO_TEXT;
	p->s = v;
	if (!*v)
		return;
	p->i = strtoll(v, &end, 10);
	if (!*end) {
		p->type = SQLRO_INT;
		return;
	}
	p->d = strtod(v, &end);
	if (!*end)
		p->type = SQLRO_REAL;
}

struct get_params {
	struct sqlro_param p[32];
	size_t n;
};

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct get_params *g = cls;

	(void)kind;
	if (strncmp(key, "p.", 2) != 0 || g->n == 32)
		return MHD_YES;
	g->p[g->n].name = key + 2;
	typed_param(value ? value : "", &g->p[g->n]);
	g->n++;
	return MHD_YES;
}

static int json_param(const char *name, const struct jv *v, struct sqlro_param *p, struct http_resp *w)
{
	p->name = name;
	switch (jv_type(v)) {
	case JV_NULL: p->type = SQLRO_NULL; return 0;
	case JV_BOOL: p->type = SQLRO_INT; p->i = jv_bool(v); return 0;
	case JV_NUM:
		if (jv_is_int(v)) {
			p->type = SQLRO_INT;
			p->i = jv_int(v);
		} else {
			p->type = SQLRO_REAL;
			p->d = jv_num(v);
		}
		return 0;
	case JV_STR: p->type = SQLRO_TEXT; p->s = jv_str(v); return 0;
	default:
		http_error(w, 400, "params: each value must be a number, string, bool or null");
		return -1;
	}
}

void api_sql_answer(struct serve *sv, struct http_resp *w, const char *sql, const struct sqlro_param *params,
		    size_t nparams, const char *format)
{
	struct answer a = {.out = &w->body};
	struct sqlro_result res;

	if (!format || !*format || strcmp(format, "json") == 0)
		a.fmt = FMT_JSON;
	else if (strcmp(format, "objects") == 0)
		a.fmt = FMT_OBJECTS;
	else if (strcmp(format, "csv") == 0)
		a.fmt = FMT_CSV;
	else {
		http_error(w, 400, "format is json, objects or csv, not '%s'", format);
		return;
	}
	if (sqlro_run(sv->sql, sql, params, nparams, &sv->sql_lim, on_cols, on_row, &a, &res)) {
		http_error(w, api_sql_status(res.fail), "%s", res.error);
		goto out;
	}
	if (a.fmt == FMT_CSV) {
		w->type = "text/csv; charset=utf-8";
		http_add_header(w, "Content-Disposition", "attachment; filename=\"glimpse.csv\"");
	} else if (a.fmt == FMT_OBJECTS) {
		json_end(&a.j);
		buf_putc(&w->body, '\n');
	} else {
		json_end(&a.j);
		json_kv_bool(&a.j, "truncated", res.truncated);
		json_key(&a.j, "elapsed_ms");
		json_double(&a.j, res.elapsed_ms);
		json_key(&a.j, "limits");
		json_obj(&a.j);
		json_kv_uint(&a.j, "rows", sv->sql_lim.max_rows);
		json_kv_uint(&a.j, "bytes", sv->sql_lim.max_bytes);
		json_kv_uint(&a.j, "timeout_ms", sv->sql_lim.timeout_ms);
		json_end(&a.j);
		json_end(&a.j);
		buf_putc(&w->body, '\n');
	}
	if (res.truncated)
		http_add_header(w, "X-Glimpse-Truncated", "true");
	{
		char ms[32];

		snprintf(ms, sizeof(ms), "%.3f", res.elapsed_ms);
		http_add_header(w, "X-Glimpse-Elapsed-Ms", ms);
	}
out:
	for (int i = 0; i < a.ncols; i++)
		free(a.names[i]);
	free(a.names);
}

static const char *want_format(struct http_req *r, const char *fallback)
{
	const char *f = http_query(r, "format");
	const char *accept = http_header(r, "Accept");

	if (f)
		return f;
	if (fallback)
		return fallback;
	if (accept && strncasecmp(accept, "text/csv", 8) == 0)
		return "csv";
	return "json";
}

static void get_sql(struct http_req *r, struct http_resp *w)
{
	struct get_params g = {0};
	const char *sql = http_query(r, "sql");

	if (!sql) {
		http_error(w, 400, "give the query as ?sql=SELECT...");
		return;
	}
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_param, &g);
	api_sql_answer(r->app, w, sql, g.p, g.n, want_format(r, NULL));
}

static void post_sql(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p[64];
	size_t n = 0;
	const struct jv *params, *format;
	struct jv *body;
	char err[160];

	if (jv_parse(r->body, r->body_len, &body, err, sizeof(err))) {
		http_error(w, 400, "the body is not JSON: %s", err);
		return;
	}
	if (!jv_str(jv_get(body, "sql"))) {
		http_error(w, 400, "the body must be {\"sql\": \"SELECT ...\", \"params\": {...} or [...]}");
		goto out;
	}
	params = jv_get(body, "params");
	if (params && jv_len(params) > 64) {
		http_error(w, 400, "at most 64 params");
		goto out;
	}
	if (jv_type(params) == JV_OBJ) {
		for (size_t i = 0; i < jv_len(params); i++, n++)
			if (json_param(jv_key_at(params, i), jv_val_at(params, i), &p[n], w))
				goto out;
	} else if (jv_type(params) == JV_ARR) {
		for (size_t i = 0; i < jv_len(params); i++, n++)
			if (json_param(NULL, jv_at(params, i), &p[n], w))
				goto out;
	} else if (params && jv_type(params) != JV_NULL) {
		http_error(w, 400, "params must be an object (named) or an array (positional)");
		goto out;
	}
	format = jv_get(body, "format");
	api_sql_answer(r->app, w, jv_str(jv_get(body, "sql")), p, n, want_format(r, jv_str(format)));
out:
	jv_free(body);
}


struct rows_ctx {
	struct buf *out;
	long n;
};

static long on_json_row(void *ctx, sqlite3_stmt *s)
{
	struct rows_ctx *c = ctx;
	const char *t = (const char *)sqlite3_column_text(s, 0);

	if (c->n++)
		buf_putc(c->out, ',');
	buf_puts(c->out, t ? t : "null");
	return 0;
}

long api_json_rows(struct serve *sv, struct http_resp *w, struct buf *out, const char *sql,
		   const struct sqlro_param *params, size_t nparams)
{
	struct rows_ctx c = {.out = out};
	struct sqlro_limits lim = {0};
	struct sqlro_result res;

	if (sqlro_run(sv->sql, sql, params, nparams, &lim, NULL, on_json_row, &c, &res)) {
		http_error(w, api_sql_status(res.fail), "%s", res.error);
		return -1;
	}
	return c.n;
}

const struct http_route api_sql_routes[] = {
	{"GET", "/api/sql", get_sql, false},
	{"POST", "/api/sql", post_sql, false},
};
const size_t api_sql_nroutes = sizeof(api_sql_routes) / sizeof(api_sql_routes[0]);
