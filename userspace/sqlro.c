/* sqlro.c - read-only, bounded SQL over a pool of connections; see sqlro.h. */
#include "sqlro.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "err.h"

#define WAIT_FOR_CONN_MS 10000	/* a query waits this long for a free connection */
#define MAX_SQL_BYTES 100000
#define STMT_CACHE 16		/* prepared statements kept per connection */

/* A statement prepared (and so authorized) once, reused by the same SQL text. */
struct cached {
	char *sql;
	sqlite3_stmt *stmt;
	uint64_t used;		/* for least-recently-used replacement */
};

struct conn {
	sqlite3 *db;
	struct cached cache[STMT_CACHE];
	uint64_t clock;
	bool busy;
	struct timespec deadline;	/* for the progress handler */
	bool timed;
	bool timed_out;
};

struct sqlro {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	unsigned int n;
	struct conn *conns;
	uint64_t limited;
};

/* PRAGMAs that only read when given no value. Any other PRAGMA, and any PRAGMA
 * given a value, is refused. */
static const char *const read_pragmas[] = {
	"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
	"foreign_key_list", "collation_list", "function_list", "pragma_list", "database_list",
	"compile_options", "schema_version", "user_version", "page_count", "page_size", "freelist_count",
	"encoding", "journal_mode", "data_version", "application_id", "module_list", "auto_vacuum",
	"foreign_keys", "integrity_check", "quick_check", NULL,
};

/* Functions that load code or touch files, refused by name whatever else allows them. */
static const char *const denied_functions[] = {
	"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", NULL,
};

static bool in_list(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (name && strcasecmp(*list, name) == 0)
			return true;
	return false;
}

static int authorize(void *arg, int action, const char *a, const char *b, const char *dbname, const char *trigger)
{
	(void)arg;
	(void)dbname;
	(void)trigger;
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_READ:
	case SQLITE_RECURSIVE:
		return SQLITE_OK;
	case SQLITE_FUNCTION:
		return in_list(denied_functions, b) ? SQLITE_DENY : SQLITE_OK;
	case SQLITE_PRAGMA:
		return !b && in_list(read_pragmas, a) ? SQLITE_OK : SQLITE_DENY;
	default:
		/* ATTACH, DETACH, every write, transactions, CREATE, DROP, ALTER, ANALYZE... */
		return SQLITE_DENY;
	}
}

static int on_progress(void *arg)
{
	struct conn *c = arg;
	struct timespec now;

	if (!c->timed)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > c->deadline.tv_sec || (now.tv_sec == c->deadline.tv_sec && now.tv_nsec >= c->deadline.tv_nsec)) {
		c->timed_out = true;
		return 1;
	}
	return 0;
}

/* Before the authorizer: json_each's table is made on its first use by a write
 * to the schema the authorizer refuses, so it is made now, once for the
 * connection. And with an untrusted schema, SQLite's JSON functions (not
 * innocuous before 3.44) may not run inside the database's views, so the
 * variables view (goroutines.vars unfolded) is made again in TEMP, which is
 * trusted, from its own definition in the database. */
static void trust_json_views(sqlite3 *db)
{
	sqlite3_stmt *s;

	sqlite3_exec(db, "SELECT count(*) FROM json_each('[]')", NULL, NULL, NULL);
	if (sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE type = 'view' AND name = 'variables'", -1, &s,
			       NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *sql = (const char *)sqlite3_column_text(s, 0);
		const char *head = "CREATE VIEW variables AS";

		if (sql && strncmp(sql, head, strlen(head)) == 0) {
			char *temp = sqlite3_mprintf("CREATE TEMP VIEW variables%s", sql + strlen("CREATE VIEW variables"));

			sqlite3_exec(db, temp, NULL, NULL, NULL);
			sqlite3_free(temp);
		}
	}
	sqlite3_finalize(s);
}

static int open_conn(const char *path, struct conn *c)
{
	int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		rc = err_set(EIO, "%s: cannot open read-only: %s", path,
			     c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite3_close(c->db);
		c->db = NULL;
		return rc;
	}
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_limit(c->db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(c->db, SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES);
	sqlite3_limit(c->db, SQLITE_LIMIT_LENGTH, 64 << 20);
	sqlite3_busy_timeout(c->db, 5000);
	trust_json_views(c->db);
	sqlite3_exec(c->db, "PRAGMA query_only = 1", NULL, NULL, NULL);
	sqlite3_set_authorizer(c->db, authorize, c);
	sqlite3_progress_handler(c->db, 1000, on_progress, c);
	return 0;
}

int sqlro_open(const char *path, unsigned int n, struct sqlro **out)
{
	struct sqlro *p = xcalloc(1, sizeof(*p));
	int rc;

	p->n = n ? n : 1;
	p->conns = xcalloc(p->n, sizeof(*p->conns));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	for (unsigned int i = 0; i < p->n; i++) {
		rc = open_conn(path, &p->conns[i]);
		if (rc) {
			sqlro_close(p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

void sqlro_close(struct sqlro *p)
{
	if (!p)
		return;
	for (unsigned int i = 0; i < p->n; i++) {
		for (int k = 0; k < STMT_CACHE; k++) {
			sqlite3_finalize(p->conns[i].cache[k].stmt);
			free(p->conns[i].cache[k].sql);
		}
		sqlite3_close(p->conns[i].db);
	}
	free(p->conns);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->freed);
	free(p);
}

uint64_t sqlro_limited(const struct sqlro *p)
{
	return __atomic_load_n(&p->limited, __ATOMIC_RELAXED);
}

static struct conn *take(struct sqlro *p)
{
	struct timespec until;
	struct conn *c = NULL;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_FOR_CONN_MS / 1000;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		for (unsigned int i = 0; i < p->n && !c; i++)
			if (!p->conns[i].busy)
				c = &p->conns[i];
		if (c || pthread_cond_timedwait(&p->freed, &p->lock, &until) == ETIMEDOUT)
			break;
	}
	if (c)
		c->busy = true;
	pthread_mutex_unlock(&p->lock);
	return c;
}

static void give_back(struct sqlro *p, struct conn *c)
{
	pthread_mutex_lock(&p->lock);
	c->busy = false;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

static void set_fail(struct sqlro_result *res, enum sqlro_fail f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_fail(struct sqlro_result *res, enum sqlro_fail f, const char *fmt, ...)
{
	va_list ap;

	res->fail = f;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

/* Whether text holds only white space and comments. */
static bool only_comments(const char *t)
{
	while (*t) {
		if (isspace((unsigned char)*t) || *t == ';') {
			t++;
		} else if (t[0] == '-' && t[1] == '-') {
			t = strchr(t, '\n');
			if (!t)
				return true;
		} else if (t[0] == '/' && t[1] == '*') {
			t = strstr(t + 2, "*/");
			if (!t)
				return true;
			t += 2;
		} else {
			return false;
		}
	}
	return true;
}

static int bind(sqlite3_stmt *s, const struct sqlro_param *params, size_t nparams, struct sqlro_result *res)
{
	for (size_t i = 0; i < nparams; i++) {
		const struct sqlro_param *pa = &params[i];
		int idx = (int)i + 1;

		if (pa->name) {
			char nm[128];

			idx = sqlite3_bind_parameter_index(s, pa->name);
			for (const char *pre = ":$@"; !idx && *pre && !strchr(":$@?", pa->name[0]); pre++) {
				snprintf(nm, sizeof(nm), "%c%s", *pre, pa->name);
				idx = sqlite3_bind_parameter_index(s, nm);
			}
			if (!idx)
				continue; /* dashboards send the same parameters to every query */
		} else if (idx > sqlite3_bind_parameter_count(s)) {
			set_fail(res, SQLRO_BAD, "%zu parameters given, the SQL has %d", nparams,
				 sqlite3_bind_parameter_count(s));
			return -1;
		}
		switch (pa->type) {
		case SQLRO_NULL: sqlite3_bind_null(s, idx); break;
		case SQLRO_INT: sqlite3_bind_int64(s, idx, pa->i); break;
		case SQLRO_REAL: sqlite3_bind_double(s, idx, pa->d); break;
		case SQLRO_TEXT: sqlite3_bind_text(s, idx, pa->s, -1, SQLITE_TRANSIENT); break;
		}
	}
	return 0;
}

const char *sqlro_coltype(sqlite3_stmt *s, int col)
{
	const char *decl = sqlite3_column_decltype(s, col);

	if (decl && *decl) {
		/* SQLite's affinity rules, in their order. */
		if (strcasestr(decl, "INT"))
			return "integer";
		if (strcasestr(decl, "CHAR") || strcasestr(decl, "CLOB") || strcasestr(decl, "TEXT"))
			return "text";
		if (strcasestr(decl, "BLOB"))
			return "blob";
		return "real";
	}
	switch (sqlite3_column_type(s, col)) {
	case SQLITE_INTEGER: return "integer";
	case SQLITE_FLOAT: return "real";
	case SQLITE_TEXT: return "text";
	case SQLITE_BLOB: return "blob";
	default: return "null";
	}
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The cached statement for sql, reset and unbound, or NULL. */
static sqlite3_stmt *cache_get(struct conn *c, const char *sql)
{
	for (int k = 0; k < STMT_CACHE; k++)
		if (c->cache[k].sql && strcmp(c->cache[k].sql, sql) == 0) {
			c->cache[k].used = ++c->clock;
			return c->cache[k].stmt;
		}
	return NULL;
}

/* Keeps s for sql, replacing the least recently used; the cache owns s then. */
static void cache_put(struct conn *c, const char *sql, sqlite3_stmt *s)
{
	int lru = 0;

	for (int k = 1; k < STMT_CACHE; k++)
		if (c->cache[k].used < c->cache[lru].used)
			lru = k;
	sqlite3_finalize(c->cache[lru].stmt);
	free(c->cache[lru].sql);
	c->cache[lru] = (struct cached){xstrdup(sql), s, ++c->clock};
}

int sqlro_run(struct sqlro *p, const char *sql, const struct sqlro_param *params, size_t nparams,
	      const struct sqlro_limits *lim, sqlro_cols_fn cols, sqlro_row_fn row, void *ctx,
	      struct sqlro_result *res)
{
	struct timespec t0;
	sqlite3_stmt *s = NULL;
	const char *tail = NULL;
	struct conn *c;
	size_t bytes = 0;
	bool cached = false;
	int rc;

	memset(res, 0, sizeof(*res));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!sql || only_comments(sql)) {
		set_fail(res, SQLRO_BAD, "no SQL statement given");
		return -1;
	}
	c = take(p);
	if (!c) {
		set_fail(res, SQLRO_BUSY, "every SQL connection stayed busy for %d s; try again", WAIT_FOR_CONN_MS / 1000);
		return -1;
	}
	c->timed = lim && lim->timeout_ms;
	c->timed_out = false;
	if (c->timed) {
		c->deadline = t0;
		c->deadline.tv_sec += lim->timeout_ms / 1000;
		c->deadline.tv_nsec += (long)(lim->timeout_ms % 1000) * 1000000;
		if (c->deadline.tv_nsec >= 1000000000) {
			c->deadline.tv_sec++;
			c->deadline.tv_nsec -= 1000000000;
		}
	}
	s = cache_get(c, sql);
	if (s) {
		cached = true;
		goto bound;
	}
	rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, &tail);
	if (rc == SQLITE_AUTH) {
		set_fail(res, SQLRO_DENIED, "refused: the SQL endpoint is read-only (%s)", sqlite3_errmsg(c->db));
		goto out;
	}
	if (rc != SQLITE_OK) {
		if (c->timed_out)
			goto timeout;
		set_fail(res, SQLRO_BAD, "%s", sqlite3_errmsg(c->db));
		goto out;
	}
	if (!s) {
		set_fail(res, SQLRO_BAD, "no SQL statement given");
		goto out;
	}
	if (tail && !only_comments(tail)) {
		set_fail(res, SQLRO_DENIED, "one statement per request: remove what follows the first ';'");
		goto out;
	}
	if (!sqlite3_stmt_readonly(s)) {
		set_fail(res, SQLRO_DENIED, "refused: the SQL endpoint is read-only and this statement would write");
		goto out;
	}
	cache_put(c, sql, s);
	cached = true;
bound:
	if (bind(s, params, nparams, res))
		goto out;
	rc = sqlite3_step(s);
	if (cols && (rc == SQLITE_ROW || rc == SQLITE_DONE) && cols(ctx, s) < 0) {
		set_fail(res, SQLRO_ERROR, "answer could not be written");
		goto out;
	}
	while (rc == SQLITE_ROW) {
		long n;

		if ((lim && lim->max_rows && res->rows >= lim->max_rows) ||
		    (lim && lim->max_bytes && bytes >= lim->max_bytes)) {
			res->truncated = true;
			__atomic_add_fetch(&p->limited, 1, __ATOMIC_RELAXED);
			break;
		}
		n = row ? row(ctx, s) : 0;
		if (n < 0) {
			set_fail(res, SQLRO_ERROR, "answer could not be written");
			goto out;
		}
		bytes += (size_t)n;
		res->rows++;
		rc = sqlite3_step(s);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		if (c->timed_out)
			goto timeout;
		if ((rc & 0xff) == SQLITE_AUTH)
			set_fail(res, SQLRO_DENIED, "refused: %s", sqlite3_errmsg(c->db));
		else if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_IOERR)
			set_fail(res, SQLRO_ERROR, "the database failed: %s", sqlite3_errmsg(c->db));
		else
			set_fail(res, SQLRO_BAD, "%s", sqlite3_errmsg(c->db));
	}
	goto out;
timeout:
	__atomic_add_fetch(&p->limited, 1, __ATOMIC_RELAXED);
	set_fail(res, SQLRO_TIMEOUT, "query stopped at the time limit of %u ms (serve --sql-timeout-ms)",
		 lim ? lim->timeout_ms : 0);
out:
	if (cached) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	} else {
		sqlite3_finalize(s);
	}
	c->timed = false;
	give_back(p, c);
	res->elapsed_ms = ms_since(&t0);
	return res->fail ? -1 : 0;
}
