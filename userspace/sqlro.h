/* sqlro.h - read-only SQL for untrusted callers (the HTTP API, Grafana): a pool
 * of read-only connections to the store, each query bounded in time, rows and
 * bytes, and refused unless SQLite itself says it cannot write.
 *
 * What enforces read-only is the engine, not string inspection: connections
 * opened SQLITE_OPEN_READONLY with PRAGMA query_only, sqlite3_stmt_readonly() on
 * every statement, an authorizer denying ATTACH/DETACH, PRAGMAs that write and
 * functions that load code, and exactly one statement per query. A progress
 * handler stops a query at its time limit.
 */
#ifndef GLIMPSE_SQLRO_H
#define GLIMPSE_SQLRO_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct sqlro;

struct sqlro_limits {
	unsigned int timeout_ms;	/* per query; 0: none */
	size_t max_rows;		/* rows answered; more set truncated */
	size_t max_bytes;		/* bytes of answer; more set truncated */
};

enum sqlro_type { SQLRO_NULL, SQLRO_INT, SQLRO_REAL, SQLRO_TEXT };

/* A bound parameter: by name (":from", "$to", "@x") or, with name NULL, by position. */
struct sqlro_param {
	const char *name;
	enum sqlro_type type;
	int64_t i;
	double d;
	const char *s;
};

/* Why a query failed; each maps to one HTTP status. */
enum sqlro_fail {
	SQLRO_OK = 0,
	SQLRO_BAD,		/* syntax error, unknown table, bad parameter: 400 */
	SQLRO_DENIED,		/* it would write, attach, load code, or is not one statement: 403 */
	SQLRO_TIMEOUT,		/* stopped at the time limit: 400, naming the limit */
	SQLRO_BUSY,		/* no connection free in time: 503 */
	SQLRO_ERROR,		/* the database failed (corrupt, I/O): 500 */
};

/* Called once before the rows with the statement (column names and types). */
typedef int (*sqlro_cols_fn)(void *ctx, sqlite3_stmt *s);
/* Called for each row; returns the bytes it added to the answer (for
 * max_bytes) or a negative value to stop. */
typedef long (*sqlro_row_fn)(void *ctx, sqlite3_stmt *s);

struct sqlro_result {
	enum sqlro_fail fail;
	char error[512];		/* message when fail != SQLRO_OK */
	size_t rows;
	bool truncated;			/* a row or byte limit cut the answer */
	double elapsed_ms;
};

/* Opens a pool of n read-only connections to the database at path (which must
 * exist). Returns 0 or a negative code with a message. */
int sqlro_open(const char *path, unsigned int n, struct sqlro **out);
void sqlro_close(struct sqlro *p);
/* Runs one statement of sql with params under lim (named parameters the SQL
 * does not use are ignored, as dashboards send the same ones to every query), calling cols once and row
 * for each row. Thread-safe: each call takes a connection of the pool. Fills
 * *res; returns 0 or -1 (res->fail and res->error say why). */
int sqlro_run(struct sqlro *p, const char *sql, const struct sqlro_param *params, size_t nparams,
	      const struct sqlro_limits *lim, sqlro_cols_fn cols, sqlro_row_fn row, void *ctx,
	      struct sqlro_result *res);
/* Queries stopped by a limit so far (time, rows or bytes), for /metrics. */
uint64_t sqlro_limited(const struct sqlro *p);

/* The declared type of a result column as the API reports it: "integer",
 * "real", "text", "blob" or "null", from the value of the first row when the
 * column has no declared type. */
const char *sqlro_coltype(sqlite3_stmt *s, int col);

#endif
