/* api_queries.c - /api/queries: the SQL console's saved queries, shared by
 * everyone using the server (table saved_queries: name, sql, author, when).
 *
 * /api/sql is read-only, so saving goes through these routes and the server's
 * one writer (struct serve's st under write_lock). Saving a name that exists
 * replaces its SQL and author and keeps its id and creation time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "err.h"
#include "jsonparse.h"
#include "store.h"

#define QUERY_JSON                                                                                              \
	"SELECT json_object('query_id', id, 'name', name, 'sql', sql, 'author', author, 'created', created,"    \
	" 'updated', updated) FROM saved_queries"

static void list_queries(struct http_req *r, struct http_resp *w)
{
	buf_puts(&w->body, "{\"queries\":[");
	if (api_json_rows(r->app, w, &w->body, QUERY_JSON " ORDER BY name", NULL, 0) < 0)
		return;
	buf_puts(&w->body, "]}\n");
}

static void save_query(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	const char *name, *sql, *author;
	struct jv *body;
	struct sqlro_param p = {":id", SQLRO_INT, 0, 0, NULL};
	int64_t now = serve_real_ns();
	char err[160];
	int rc;

	if (jv_parse(r->body, r->body_len, &body, err, sizeof(err))) {
		http_error(w, 400, "the body is not JSON: %s", err);
		return;
	}
	name = jv_str(jv_get(body, "name"));
	sql = jv_str(jv_get(body, "sql"));
	author = jv_str(jv_get(body, "author"));
	if (!name || !*name || strlen(name) > 200 || !sql || !*sql || (author && strlen(author) > 200)) {
		http_error(w, 400, "the body must be {\"name\": \"...\" (1 to 200 bytes), \"sql\": \"...\", "
				   "\"author\": \"...\" (optional)}");
		jv_free(body);
		return;
	}
	pthread_mutex_lock(&sv->write_lock);
	rc = store_run(sv->st,
		       "INSERT INTO saved_queries (name, sql, author, created, updated) VALUES (?, ?, ?, ?, ?)"
		       " ON CONFLICT (name) DO UPDATE SET sql = excluded.sql, author = excluded.author,"
		       " updated = excluded.updated",
		       NULL, "tttii", name, sql, author, now, now);
	if (!rc)
		rc = store_run(sv->st, "SELECT id FROM saved_queries WHERE name = ?", &p.i, "t", name);
	pthread_mutex_unlock(&sv->write_lock);
	jv_free(body);
	if (rc) {
		http_error(w, 500, "cannot save the query: %s", err_msg(rc));
		return;
	}
	w->status = 201;
	if (api_json_rows(sv, w, &w->body, QUERY_JSON " WHERE id = :id", &p, 1) < 0)
		return;
	buf_putc(&w->body, '\n');
}

static void delete_query(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	int64_t id;
	int rc, changed = 0;

	if (!http_param_id(r, w, 0, "query", &id))
		return;
	pthread_mutex_lock(&sv->write_lock);
	rc = store_run(sv->st, "DELETE FROM saved_queries WHERE id = ?", NULL, "i", id);
	if (!rc)
		changed = sqlite3_changes(store_db(sv->st));
	pthread_mutex_unlock(&sv->write_lock);
	if (rc)
		http_error(w, 500, "cannot delete the query: %s", err_msg(rc));
	else if (!changed)
		http_error(w, 404, "no saved query %" PRId64, id);
	else
		buf_printf(&w->body, "{\"deleted\":%" PRId64 "}\n", id);
}

const struct http_route api_query_routes[] = {
	{"GET", "/api/queries", list_queries, false},
	{"POST", "/api/queries", save_query, false},
	{"DELETE", "/api/queries/*", delete_query, false},
};
const size_t api_query_nroutes = sizeof(api_query_routes) / sizeof(api_query_routes[0]);
