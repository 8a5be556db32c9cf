/* store.h - glimpse's SQLite store: opening (creating or migrating) the database,
 * transactions, and compact parameter binding for the modules that write to it.
 *
 * The schema lives in schema/store.sql (compiled into the binary); an older
 * database is upgraded in place by schema/upgrade-N.sql, keeping its data. The store is in
 * WAL mode so readers (the HTTP server, sqlite3) never block writers. Everything a
 * capture writes goes in one transaction: nothing half-written is ever visible.
 */
#ifndef GLIMPSE_STORE_H
#define GLIMPSE_STORE_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_SCHEMA_VERSION 5
#define STORE_DEFAULT_PATH "glimpse.db"

struct store;

/* Opens (creating if missing) a glimpse database at path for writing. A corrupt
 * file, a database that is not glimpse's, or one from a newer glimpse gives a
 * negative code and a message, and the file is left untouched. The connection
 * is opened without SQLite's own locking (SQLITE_OPEN_NOMUTEX): one thread at a
 * time may use it. */
int store_open(const char *path, struct store **out);
/* Opens an existing database read-only (SQLITE_OPEN_READONLY + query_only). */
int store_open_readonly(const char *path, struct store **out);
void store_close(struct store *st);
sqlite3 *store_db(struct store *st);
const char *store_path(const struct store *st);

int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);

/* Runs one statement with parameters described by types, one letter each:
 *   i  int64_t          z  int64_t, 0 binds NULL
 *   t  const char *, NULL binds NULL            d  double
 * The statement is prepared once per distinct sql pointer and cached.
 * If id is not NULL it receives sqlite3_last_insert_rowid (for INSERT) or the first
 * column of the first row (for SELECT; 0 if no row). Returns 0 or a negative code. */
int store_run(struct store *st, const char *sql, int64_t *id, const char *types, ...);

/* For bulk inserts that bind values themselves (sqlite3_bind_*, no copies): the
 * cached statement for sql (same caching as store_run), or NULL with a message.
 * Bind every parameter, then store_step. */
sqlite3_stmt *store_prepare(struct store *st, const char *sql);
/* Runs s to its first row or its end and resets it. Returns 0 or a negative code. */
int store_step(struct store *st, sqlite3_stmt *s);

struct gobin;
/* The processes row of pid (its binary and it added if new), inside the
 * caller's transaction, so that snapshots and trace sessions of one process
 * share one row. Returns 0 or a negative code. */
int store_process(struct store *st, const struct gobin *bin, pid_t pid, int64_t *id);

/* Message for a failed SQLite call on db, recorded with err_set; returns the code. */
int store_error(sqlite3 *db, int rc, const char *what);

#endif
