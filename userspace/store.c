/* store.c - open, create and migrate the SQLite store; cached statements. */
#include "store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "gobin.h"
#include "goruntime.h"

struct embedded {
	const char *name;
	const unsigned char *data;
	size_t len;
};
const struct embedded *embedded_file(const char *name);

#define STMT_CACHE 64

struct store {
	sqlite3 *db;
	char *path;
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} cache[STMT_CACHE];
};

int store_error(sqlite3 *db, int rc, const char *what)
{
	const char *m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
		return err_set(EIO, "%s: database is corrupt or not a database: %s", what, m);
	return err_set(EIO, "%s: %s", what, m);
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

const char *store_path(const struct store *st)
{
	return st->path;
}

static int exec(struct store *st, const char *sql, const char *what)
{
	char *emsg = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &emsg);

	if (rc != SQLITE_OK) {
		int r = err_set(EIO, "%s: %s: %s", st->path, what, emsg ? emsg : sqlite3_errstr(rc));

		if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
			r = err_set(EIO, "%s: database is corrupt or not a database (%s)", st->path,
				    emsg ? emsg : sqlite3_errstr(rc));
		sqlite3_free(emsg);
		return r;
	}
	return 0;
}

int store_begin(struct store *st)
{
	return exec(st, "BEGIN IMMEDIATE", "begin");
}

int store_commit(struct store *st)
{
	return exec(st, "COMMIT", "commit");
}

void store_rollback(struct store *st)
{
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *prepare(struct store *st, const char *sql, int *rc)
{
	int i;

	for (i = 0; i < STMT_CACHE && st->cache[i].sql; i++)
		if (st->cache[i].sql == sql) {
			*rc = SQLITE_OK;
			return st->cache[i].stmt;
		}
	if (i == STMT_CACHE) {
		*rc = SQLITE_FULL;
		return NULL;
	}
	*rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->cache[i].stmt, NULL);
	if (*rc != SQLITE_OK)
		return NULL;
	st->cache[i].sql = sql;
	return st->cache[i].stmt;
}

sqlite3_stmt *store_prepare(struct store *st, const char *sql)
{
	int rc;
	sqlite3_stmt *s = prepare(st, sql, &rc);

	if (!s)
		store_error(st->db, rc, "prepare");
	return s;
}

int store_step(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		rc = store_error(st->db, rc, st->path);
	else
		rc = 0;
	sqlite3_reset(s);
	return rc;
}

int store_run(struct store *st, const char *sql, int64_t *id, const char *types, ...)
{
	sqlite3_stmt *s;
	va_list ap;
	int rc, n = 1;

	s = prepare(st, sql, &rc);
	if (!s)
		return store_error(st->db, rc, "prepare");
	/* parameters the types leave out are NULL, not the last call's (pointers
	 * bound SQLITE_STATIC may be gone by now) */
	sqlite3_clear_bindings(s);
	va_start(ap, types);
	for (const char *t = types; *t; t++, n++) {
		switch (*t) {
		case 'i': sqlite3_bind_int64(s, n, va_arg(ap, int64_t)); break;
		case 'z': {
			int64_t v = va_arg(ap, int64_t);

			if (v)
				sqlite3_bind_int64(s, n, v);
			else
				sqlite3_bind_null(s, n);
			break;
		}
		case 'd': sqlite3_bind_double(s, n, va_arg(ap, double)); break;
		case 't': {
			const char *v = va_arg(ap, const char *);

			if (v)
				sqlite3_bind_text(s, n, v, -1, SQLITE_STATIC); /* lives until the step */
			else
				sqlite3_bind_null(s, n);
			break;
		}
		default:
			va_end(ap);
			return err_set(EINVAL, "store_run: bad type letter '%c'", *t);
		}
	}
	va_end(ap);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (id)
			*id = sqlite3_column_int64(s, 0);
	} else if (rc == SQLITE_DONE) {
		if (id)
			*id = sqlite3_stmt_readonly(s) ? 0 : sqlite3_last_insert_rowid(st->db);
	} else {
		rc = store_error(st->db, rc, st->path);
		sqlite3_reset(s);
		return rc;
	}
	sqlite3_reset(s);
	return 0;
}

/* Reads meta.schema_version: 0 for an empty database, -1 for a database with
 * tables but no glimpse meta table. */
static int schema_version(struct store *st, int *version)
{
	sqlite3_stmt *s;
	int rc;

	*version = 0;
	rc = sqlite3_prepare_v2(st->db, "SELECT count(*), sum(name = 'meta') FROM sqlite_schema", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_error(st->db, rc, st->path);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = store_error(st->db, rc, st->path);
		sqlite3_finalize(s);
		return rc;
	}
	if (sqlite3_column_int(s, 0) > 0 && sqlite3_column_int(s, 1) == 0)
		*version = -1;
	sqlite3_finalize(s);
	if (*version < 0)
		return 0;
	rc = sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &s, NULL);
	if (rc != SQLITE_OK) /* empty database: no meta table yet */
		return 0;
	if (sqlite3_step(s) == SQLITE_ROW)
		*version = atoi((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return 0;
}

/* go_runtime_frame(func) for SQL: 1 or 0, NULL for NULL (the upgrade to version 2
 * uses it). */
static void sql_go_runtime_frame(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *func = (const char *)sqlite3_value_text(argv[0]);

	if (func)
		sqlite3_result_int(ctx, go_runtime_frame(func));
	else
		sqlite3_result_null(ctx);
}

/* Runs the embedded SQL file name. */
static int exec_embedded(struct store *st, const char *name, const char *what)
{
	const struct embedded *f = embedded_file(name);

	if (!f)
		return err_set(ENOENT, "%s is not compiled into this glimpse", name);
	return exec(st, (const char *)f->data, what);
}

/* Brings the database to STORE_SCHEMA_VERSION in one transaction: a new one gets
 * schema/store.sql; an older one the upgrade steps from its version on
 * (schema/upgrade-N.sql takes version N-1 to N, keeping the data) and then
 * store.sql for what is new. A newer or foreign database is refused untouched. */
static int migrate(struct store *st)
{
	int version, rc;
	char sql[128];

	rc = schema_version(st, &version);
	if (rc)
		return rc;
	if (version < 0)
		return err_set(EINVAL, "%s is not a glimpse database (it has other tables); choose another --db",
			       st->path);
	if (version > STORE_SCHEMA_VERSION)
		return err_set(EINVAL, "%s was written by a newer glimpse (schema %d, this glimpse knows %d)",
			       st->path, version, STORE_SCHEMA_VERSION);
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	rc = sqlite3_create_function(st->db, "go_runtime_frame", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				     sql_go_runtime_frame, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_error(st->db, rc, st->path);
	rc = store_begin(st);
	for (int v = version ? version + 1 : STORE_SCHEMA_VERSION + 1; !rc && v <= STORE_SCHEMA_VERSION; v++) {
		char name[64], what[64];

		snprintf(name, sizeof(name), "schema/upgrade-%d.sql", v);
		snprintf(what, sizeof(what), "upgrading the schema to version %d", v);
		rc = exec_embedded(st, name, what);
	}
	if (!rc)
		rc = exec_embedded(st, "schema/store.sql", "creating the schema");
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta VALUES ('schema_version', '%d')",
		 STORE_SCHEMA_VERSION);
	if (!rc)
		rc = exec(st, sql, "recording the schema version");
	if (!rc)
		return store_commit(st);
	store_rollback(st);
	return rc;
}

static int open_db(const char *path, int flags, struct store **out)
{
	struct store *st = xcalloc(1, sizeof(*st));
	int rc;

	*out = NULL;
	st->path = xstrdup(path);
	rc = sqlite3_open_v2(path, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		/* A literal code, not err_set's result, so that every caller (and the
		 * analyzer) can see *out is set whenever 0 is returned. */
		err_set(EIO, "cannot open database %s: %s", path,
			st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		store_close(st);
		return -EIO;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, 5000);
	*out = st;
	return 0;
}

/* Before SQLite's first use: no global memory statistics (a mutex taken on every
 * allocation, and a snapshot makes hundreds of thousands). */
static void configure_sqlite(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(const char *path, struct store **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct store *st;
	int rc;

	pthread_once(&once, configure_sqlite);
	/* NOMUTEX: the connection is used by one thread at a time (the writer), so
	 * SQLite need not lock it on every call. */
	rc = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, &st);
	if (rc)
		return rc;
	/* Checks the file before changing anything: a corrupt file fails here.
	 * temp_store in memory: a multi-row INSERT keeps a statement journal, a
	 * temporary file otherwise (storing a 10k-goroutine snapshot took twice
	 * as long). A larger page cache than the default 2 MiB measured slower (a
	 * 64 MiB one: 20%, its pages being fresh memory each time). 16 KiB pages for
	 * a new file (an existing one keeps its own): a 10k-goroutine snapshot with
	 * its variables (about 5 MiB of rows) was written in 17 ms of inserts and
	 * 4-9 ms of commit against 23 and 21 ms with 4 KiB pages, a WAL frame and a
	 * write per page. */
	rc = exec(st,
		  "PRAGMA page_size = 16384; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
		  " PRAGMA temp_store = MEMORY",
		  "configuring");
	if (!rc)
		rc = migrate(st);
	if (!rc)
		rc = exec(st, "PRAGMA journal_mode = WAL", "switching to WAL");
	if (rc) {
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

int store_open_readonly(const char *path, struct store **out)
{
	struct store *st;
	struct stat sb;
	int rc, version;

	if (stat(path, &sb) != 0)
		return err_set(ENOENT, "no database at %s", path);
	rc = open_db(path, SQLITE_OPEN_READONLY, &st);
	if (rc)
		return rc;
	rc = exec(st, "PRAGMA query_only = ON", "configuring");
	if (!rc)
		rc = schema_version(st, &version);
	if (!rc && version <= 0)
		rc = err_set(EINVAL, "%s is not a glimpse database", path);
	if (rc) {
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < STMT_CACHE && st->cache[i].sql; i++)
		sqlite3_finalize(st->cache[i].stmt);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

/* CLOCK_REALTIME in seconds. */
static double time_now_real_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* When pid started, ns since the epoch (0 if unknown), from /proc. */
static int64_t process_start_ns(pid_t pid)
{
	char path[64], line[1024], *p;
	unsigned long long ticks = 0;
	double uptime = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
	fclose(f);
	for (int i = 0; p && i < 20; i++) /* field 22 (starttime) is the 20th after ") " */
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return 0;
	f = fopen("/proc/uptime", "re");
	if (f) {
		if (fscanf(f, "%lf", &uptime) != 1)
			uptime = 0;
		fclose(f);
	}
	/* rounded to the second, so that every capture of one process maps to one row */
	return (int64_t)((double)time_now_real_s() - uptime + (double)ticks / (double)sysconf(_SC_CLK_TCK) +
			 0.5) * 1000000000;
}

int store_process(struct store *st, const struct gobin *bin, pid_t pid, int64_t *id)
{
	char host[256] = "";
	int rc;

	gethostname(host, sizeof(host) - 1);
	*id = 0;
	rc = store_run(st, "INSERT OR IGNORE INTO binaries VALUES (?, ?, ?, ?, ?)", NULL, "tttii", bin->build_id,
		       bin->path, bin->go_version, (int64_t)bin->stripped, (int64_t)bin->pie);
	if (!rc)
		rc = store_run(st, "INSERT OR IGNORE INTO processes (pid, build_id, host, started) VALUES (?, ?, ?, ?)",
			       NULL, "itti", (int64_t)pid, bin->build_id, host, process_start_ns(pid));
	if (!rc)
		rc = store_run(st, "SELECT id FROM processes WHERE host = ? AND pid = ? ORDER BY started DESC LIMIT 1",
			       id, "ti", host, (int64_t)pid);
	return rc;
}
