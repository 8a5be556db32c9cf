/* serve.c - `glimpse serve`: the long-lived service. One per host: it holds the
 * store (one writer, a pool of read-only connections), keeps the BPF reader
 * loaded, takes snapshots and runs tracepoint sessions on request, snapshots on
 * a schedule, deletes old data, and answers the HTTP API (http.c, api_*.c).
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting, stop trace sessions (probes
 * detached, events flushed), let requests in flight finish, commit, exit 0.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "api.h"
#include "cli.h"
#include "err.h"
#include "gobin.h"
#include "json.h"
#include "jsonparse.h"
#include "modelcache.h"
#include "reader.h"
#include "record.h"
#include "store.h"

#define DEFAULT_PORT 7070

static const char usage_text[] =
	"usage: glimpse serve [--db FILE] [--listen ADDR:PORT] [--token-file FILE]\n"
	"                     [--tls-cert FILE --tls-key FILE] [--insecure-http]\n"
	"                     [--sql-timeout-ms N] [--sql-max-rows N] [--threads N]\n"
	"                     [--every DURATION (--pid PID | --comm NAME)] [--no-vars]\n"
	"                     [--keep DURATION] [--max-db-mb N] [--model-cache-mb N] [--quiet]\n"
	"                     [--debug-sessions N] [--debug-idle S] [--debug-timeout S]\n"
	"                     [--record ADDR [--record-key K] [--record-dir DIR] [--record-idle S] [--record-no-rr] -- CMD ARGS...]\n"
	"\n"
	"Runs glimpse as a service: an HTTP API (JSON) to take snapshots, run tracepoints and\n"
	"query the store with read-only SQL, for people, scripts and Grafana.\n"
	"\n"
	"  --db FILE           the store (default $GLIMPSE_DB or glimpse.db)\n"
	"  --listen ADDR:PORT  where to listen (default 127.0.0.1:7070; [::1]:7070 for IPv6)\n"
	"  --token-file FILE   the API token; without it one is made at first start in a\n"
	"                      root-only file beside the database (DB.token)\n"
	"  --tls-cert FILE     serve HTTPS with this PEM certificate and --tls-key\n"
	"  --insecure-http     allow plain HTTP on a non-loopback address\n"
	"  --sql-timeout-ms N  time limit of one SQL query (default 5000)\n"
	"  --sql-max-rows N    rows one SQL answer holds at most (default 10000)\n"
	"  --threads N         HTTP worker threads (default 0: a thread per connection)\n"
	"  --every DURATION    take a snapshot of --pid PID or of every process named\n"
	"                      --comm NAME every DURATION (e.g. 30s, 5m)\n"
	"  --no-vars           scheduled snapshots without variables\n"
	"  --keep DURATION     delete snapshots and events older than this (e.g. 7d)\n"
	"  --max-db-mb N       delete the oldest snapshots and events past N MiB\n"
	"  --model-cache-mb N  memory for binary models kept between requests (default 1024;\n"
	"                      least recently used out, reloaded when an executable changes)\n"
	"  --quiet             no access log on stderr\n"
	"  --debug-sessions N  replay debugger sessions (gdb each) open at once (default 4;\n"
	"                      0: none)\n"
	"  --debug-idle S      close a debug session unused for S seconds (default 600)\n"
	"  --debug-timeout S   a debugger command's time limit; past it the replay is\n"
	"                      interrupted (default 30)\n"
	"  --record ADDR       also run glimpse record's proxy on ADDR for the app after --\n"
	"                      (rr from $GLIMPSE_RR or PATH; see glimpse help record), with\n"
	"                      --record-key, --record-dir and --record-idle as record's --key,\n"
	"                      --dir and --idle (--record-no-rr: instances not recorded);\n"
	"                      /api/recordings serves what it records\n";

struct schedule {
	int64_t id;
	pid_t pid;			/* or 0 with comm */
	char comm[16];
	int64_t every_ms;
	bool vars;
	int64_t next_ms;		/* CLOCK_MONOTONIC ms */
	int64_t runs, failures;
	char last_error[256];
};

struct serve_args {
	const char *db, *listen, *token_file, *tls_cert, *tls_key;
	bool insecure_http, quiet, no_vars;
	uint64_t sql_timeout_ms, sql_max_rows, threads, every_pid, max_db_mb, model_cache_mb;
	uint64_t debug_sessions, debug_idle_s, debug_timeout_s;
	const char *every_comm;
	int64_t every_ms, keep_ms;
	struct record_opts rec;		/* --record: glimpse record's proxy inside the server */
};

/* The one service of this process (signal handling and schedules need it). */
static struct serve *the_serve;
static pthread_mutex_t sched_lock = PTHREAD_MUTEX_INITIALIZER;
static struct schedule *scheds;
static size_t nscheds;
static int64_t next_sched_id = 1;
static int64_t keep_ms, max_db_bytes;

int64_t serve_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t serve_real_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Parses "250ms", "30s", "5m", "2h", "7d" (a bare number is seconds) into ms; -1 if malformed. */
int64_t serve_parse_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || !(v > 0))
		return -1;
	if (strcmp(end, "ms") == 0)
		return (int64_t)v;
	if (!*end || strcmp(end, "s") == 0)
		return (int64_t)(v * 1e3);
	if (strcmp(end, "m") == 0)
		return (int64_t)(v * 60e3);
	if (strcmp(end, "h") == 0)
		return (int64_t)(v * 3600e3);
	if (strcmp(end, "d") == 0)
		return (int64_t)(v * 86400e3);
	return -1;
}

/* ---- metrics ---- */

static const double hist_bounds[SERVE_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
						       0.1,   0.25,   0.5,   1,    2.5,   10};

void serve_observe(struct serve *sv, struct serve_hist *h, double seconds)
{
	int i = 0;

	pthread_mutex_lock(&sv->metrics_lock);
	while (i < SERVE_HIST_BUCKETS && seconds > hist_bounds[i])
		i++;
	h->counts[i]++;
	h->sum += seconds;
	h->n++;
	pthread_mutex_unlock(&sv->metrics_lock);
}

static void on_request_done(void *app, const char *route, int status, double seconds)
{
	struct serve *sv = app;
	size_t i;

	serve_observe(sv, &sv->request_s, seconds);
	pthread_mutex_lock(&sv->metrics_lock);
	for (i = 0; i < sv->nroutes; i++)
		if (sv->routes[i].status == status && strcmp(sv->routes[i].route, route) == 0)
			break;
	if (i == sv->nroutes) {
		sv->routes = xrealloc(sv->routes, (sv->nroutes + 1) * sizeof(*sv->routes));
		sv->routes[i] = (struct serve_route_stat){route, status, 0};
		sv->nroutes++;
	}
	sv->routes[i].n++;
	pthread_mutex_unlock(&sv->metrics_lock);
}

static void put_hist(struct buf *b, const char *name, const char *help, const struct serve_hist *h)
{
	uint64_t cum = 0;

	buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < SERVE_HIST_BUCKETS; i++) {
		cum += h->counts[i];
		buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, hist_bounds[i], cum);
	}
	cum += h->counts[SERVE_HIST_BUCKETS];
	buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %g\n%s_count %" PRIu64 "\n", name, cum, name, h->sum,
		   name, h->n);
}

static void get_metrics(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	struct buf *b = &w->body;
	struct stat sb;
	size_t running;

	w->type = "text/plain; version=0.0.4; charset=utf-8";
	pthread_mutex_lock(&sv->metrics_lock);
	buf_puts(b, "# HELP glimpse_http_requests_total HTTP requests answered, by route and status.\n"
		    "# TYPE glimpse_http_requests_total counter\n");
	for (size_t i = 0; i < sv->nroutes; i++)
		buf_printf(b, "glimpse_http_requests_total{route=\"%s\",code=\"%d\"} %" PRIu64 "\n",
			   *sv->routes[i].route ? sv->routes[i].route : "none", sv->routes[i].status, sv->routes[i].n);
	buf_printf(b, "# HELP glimpse_snapshots_total Snapshots taken and stored.\n# TYPE glimpse_snapshots_total counter\n"
		      "glimpse_snapshots_total %" PRIu64 "\n", sv->snapshots_total);
	buf_printf(b, "# HELP glimpse_snapshot_errors_total Snapshots that failed.\n"
		      "# TYPE glimpse_snapshot_errors_total counter\nglimpse_snapshot_errors_total %" PRIu64 "\n",
		   sv->snapshot_errors);
	buf_printf(b, "# HELP glimpse_events_stored_total Trace events stored.\n# TYPE glimpse_events_stored_total counter\n"
		      "glimpse_events_stored_total %" PRIu64 "\n", sv->events_stored);
	buf_printf(b, "# HELP glimpse_events_lost_total Trace events lost (ring buffer full).\n"
		      "# TYPE glimpse_events_lost_total counter\nglimpse_events_lost_total %" PRIu64 "\n",
		   sv->events_lost);
	buf_printf(b, "# HELP glimpse_sql_queries_limited_total SQL queries stopped or cut by a limit.\n"
		      "# TYPE glimpse_sql_queries_limited_total counter\nglimpse_sql_queries_limited_total %" PRIu64 "\n",
		   sqlro_limited(sv->sql));
	put_hist(b, "glimpse_capture_seconds", "Time reading a process's goroutines (the process never stops).",
		 &sv->capture_s);
	put_hist(b, "glimpse_snapshot_seconds", "Snapshot requests end to end: capture, decode, store.",
		 &sv->end_to_end_s);
	put_hist(b, "glimpse_http_request_seconds", "HTTP requests, from first byte to answer.", &sv->request_s);
	pthread_mutex_unlock(&sv->metrics_lock);
	pthread_mutex_lock(&sv->traces_lock);
	running = serve_traces_running(sv);
	pthread_mutex_unlock(&sv->traces_lock);
	buf_printf(b, "# HELP glimpse_trace_sessions_running Trace sessions running now.\n"
		      "# TYPE glimpse_trace_sessions_running gauge\nglimpse_trace_sessions_running %zu\n", running);
	{
		struct modelcache_stats ms;

		modelcache_stats(sv->models, &ms);
		buf_printf(b, "# HELP glimpse_models_total Binary model lookups, by result.\n"
			      "# TYPE glimpse_models_total counter\n"
			      "glimpse_models_total{result=\"hit\"} %" PRIu64 "\nglimpse_models_total{result=\"miss\"} %" PRIu64
			      "\nglimpse_models_total{result=\"evicted\"} %" PRIu64 "\nglimpse_models_total{result=\"reloaded\"} %" PRIu64
			      "\n# HELP glimpse_model_bytes Memory the cached binary models count.\n"
			      "# TYPE glimpse_model_bytes gauge\nglimpse_model_bytes %zu\n",
			   ms.hits, ms.misses, ms.evictions, ms.reloads, ms.bytes);
	}
	if (stat(sv->db_path, &sb) == 0)
		buf_printf(b, "# HELP glimpse_db_bytes Size of the store's main file.\n# TYPE glimpse_db_bytes gauge\n"
			      "glimpse_db_bytes %lld\n", (long long)sb.st_size);
}

static void get_health(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	struct json j;

	json_init(&j, &w->body);
	json_obj(&j);
	json_kv_str(&j, "status", sv->stopping ? "stopping" : "ok");
	json_kv_str(&j, "version", GLIMPSE_VERSION_STRING);
	json_kv_str(&j, "reader", sv->reader ? "bpf" : "process_vm_readv");
	json_key(&j, "reader_note");
	json_str(&j, sv->reader_note[0] ? sv->reader_note : NULL);
	json_end(&j);
	buf_putc(&w->body, '\n');
	if (sv->stopping)
		w->status = 503;
}

/* ---- captures ---- */

int serve_model_get(struct serve *sv, pid_t pid, const struct gobin **out)
{
	return modelcache_get(sv->models, pid, out);
}

void serve_model_put(struct serve *sv, const struct gobin *bin)
{
	modelcache_put(sv->models, bin);
}

int serve_status_for(int rc)
{
	switch (-rc) {
	case ESRCH:
	case ENOENT: return 404;
	case EPERM:
	case EACCES: return 403;
	case GLIMPSE_ENOTGO:
	case GLIMPSE_EUNSUP:
	case EINVAL: return 400;
	default: return 500;
	}
}

static bool busy_take(struct serve *sv, pid_t pid)
{
	bool ok = true;

	pthread_mutex_lock(&sv->busy_lock);
	for (int i = 0; i < sv->nbusy && ok; i++)
		ok = sv->busy[i] != pid;
	if (ok && sv->nbusy == (int)(sizeof(sv->busy) / sizeof(sv->busy[0])))
		ok = false;
	if (ok)
		sv->busy[sv->nbusy++] = pid;
	pthread_mutex_unlock(&sv->busy_lock);
	return ok;
}

static void busy_give(struct serve *sv, pid_t pid)
{
	pthread_mutex_lock(&sv->busy_lock);
	for (int i = 0; i < sv->nbusy; i++)
		if (sv->busy[i] == pid) {
			sv->busy[i] = sv->busy[--sv->nbusy];
			break;
		}
	pthread_mutex_unlock(&sv->busy_lock);
}

int serve_snapshot(struct serve *sv, pid_t pid, const struct snapshot_opts *o, struct snapshot *out,
		   int64_t *store_us, char *err, size_t errlen)
{
	struct snapshot_opts wo = *o;
	const struct gobin *bin = NULL;
	int64_t t0 = serve_real_ns(), t1;
	int rc, status = 0;

	memset(out, 0, sizeof(*out));
	if (sv->stopping) {
		snprintf(err, errlen, "the server is stopping");
		return 503;
	}
	if (!busy_take(sv, pid)) {
		snprintf(err, errlen, "a capture of pid %d is already running; try again when it ends", (int)pid);
		return 429;
	}
	rc = serve_model_get(sv, pid, &bin);
	if (rc) {
		snprintf(err, errlen, "%s", err_msg(rc));
		status = serve_status_for(rc);
		goto out;
	}
	if (wo.reader != READ_VM && sv->reader)
		wo.bpf = sv->reader;
	pthread_mutex_lock(&sv->reader_lock);
	rc = snapshot_take(bin, pid, &wo, out);
	pthread_mutex_unlock(&sv->reader_lock);
	if (rc) {
		snprintf(err, errlen, "%s", err_msg(rc));
		status = serve_status_for(rc);
		serve_model_put(sv, bin);
		goto out;
	}
	if (!sv->reader && wo.reader != READ_VM && !out->reader_note[0])
		snprintf(out->reader_note, sizeof(out->reader_note), "%s", sv->reader_note);
	pthread_mutex_lock(&sv->write_lock);
	t1 = serve_real_ns();
	rc = snapshot_store(sv->st, out);
	*store_us = (serve_real_ns() - t1) / 1000;
	pthread_mutex_unlock(&sv->write_lock);
	if (rc) {
		snprintf(err, errlen, "%s", err_msg(rc));
		status = 500;
		snapshot_free(out);
		serve_model_put(sv, bin);
		goto out;
	}
	serve_observe(sv, &sv->capture_s, (double)out->duration_us / 1e6);
	serve_observe(sv, &sv->end_to_end_s, (double)(serve_real_ns() - t0) / 1e9);
out:
	pthread_mutex_lock(&sv->metrics_lock);
	if (status)
		sv->snapshot_errors++;
	else
		sv->snapshots_total++;
	pthread_mutex_unlock(&sv->metrics_lock);
	busy_give(sv, pid);
	return status;
}

/* ---- schedules ---- */

/* Pids of the processes whose comm is name. */
static size_t pids_named(const char *name, pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		char path[64], comm[32] = "";
		long pid = strtol(e->d_name, NULL, 10);
		FILE *f;

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
		if (strcmp(comm, name) == 0)
			out[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

static bool schedule_exists(int64_t id)
{
	bool found = false;

	pthread_mutex_lock(&sched_lock);
	for (size_t i = 0; i < nscheds && !found; i++)
		found = scheds[i].id == id;
	pthread_mutex_unlock(&sched_lock);
	return found;
}

static void run_schedule(struct serve *sv, struct schedule *sc)
{
	struct snapshot_opts o;
	pid_t pids[64];
	size_t n;

	snapshot_opts_default(&o);
	o.vars = sc->vars;
	if (sc->pid) {
		pids[0] = sc->pid;
		n = 1;
	} else {
		n = pids_named(sc->comm, pids, 64);
	}
	if (!n)
		snprintf(sc->last_error, sizeof(sc->last_error), "no process %s%s", sc->pid ? "" : "named ",
			 sc->pid ? "" : sc->comm);
	for (size_t i = 0; i < n && !sv->stopping && schedule_exists(sc->id); i++) {
		struct snapshot snap;
		char err[256];
		int64_t store_us;
		int status = serve_snapshot(sv, pids[i], &o, &snap, &store_us, err, sizeof(err));

		if (status) {
			snprintf(sc->last_error, sizeof(sc->last_error), "pid %d: %.200s", (int)pids[i], err);
			sc->failures++;
		} else {
			const struct gobin *bin = snap.bin;

			sc->last_error[0] = 0;
			snapshot_free(&snap);
			serve_model_put(sv, bin);
		}
	}
	sc->runs++;
}

int64_t serve_schedule_add(pid_t pid, const char *comm, int64_t every_ms, bool vars)
{
	struct schedule sc = {.pid = pid, .every_ms = every_ms, .vars = vars};
	int64_t id;

	if (comm)
		snprintf(sc.comm, sizeof(sc.comm), "%s", comm);
	sc.next_ms = serve_mono_ms();
	pthread_mutex_lock(&sched_lock);
	sc.id = id = next_sched_id++;
	scheds = xrealloc(scheds, (nscheds + 1) * sizeof(*scheds));
	scheds[nscheds++] = sc;
	pthread_mutex_unlock(&sched_lock);
	return id;
}

static void schedule_json(struct json *j, const struct schedule *sc)
{
	json_obj(j);
	json_kv_int(j, "schedule_id", sc->id);
	json_key(j, "pid");
	if (sc->pid)
		json_int(j, sc->pid);
	else
		json_null(j);
	json_key(j, "comm");
	json_str(j, sc->pid ? NULL : sc->comm);
	json_kv_int(j, "every_ms", sc->every_ms);
	json_kv_bool(j, "vars", sc->vars);
	json_kv_int(j, "runs", sc->runs);
	json_kv_int(j, "failures", sc->failures);
	json_key(j, "last_error");
	json_str(j, sc->last_error[0] ? sc->last_error : NULL);
	json_end(j);
}

static void list_schedules(struct http_req *r, struct http_resp *w)
{
	struct json j;

	(void)r;
	json_init(&j, &w->body);
	json_obj(&j);
	json_key(&j, "schedules");
	json_arr(&j);
	pthread_mutex_lock(&sched_lock);
	for (size_t i = 0; i < nscheds; i++)
		schedule_json(&j, &scheds[i]);
	pthread_mutex_unlock(&sched_lock);
	json_end(&j);
	json_end(&j);
	buf_putc(&w->body, '\n');
}

static void add_schedule(struct http_req *r, struct http_resp *w)
{
	const struct jv *pid, *comm, *every, *vars;
	struct jv *body;
	char err[160];
	int64_t every_ms = -1, id;
	struct json j;

	if (jv_parse(r->body, r->body_len, &body, err, sizeof(err))) {
		http_error(w, 400, "the body is not JSON: %s", err);
		return;
	}
	pid = jv_get(body, "pid");
	comm = jv_get(body, "comm");
	every = jv_get(body, "every");
	vars = jv_get(body, "vars");
	if (jv_str(every))
		every_ms = serve_parse_duration(jv_str(every));
	else if (jv_type(every) == JV_NUM)
		every_ms = (int64_t)(jv_num(every) * 1e3);
	if ((!jv_is_int(pid) || jv_int(pid) < 1) == !jv_str(comm) || every_ms < 100 ||
	    (comm && strlen(jv_str(comm)) > 15) || (vars && jv_type(vars) != JV_BOOL)) {
		http_error(w, 400, "the body must be {\"pid\": N or \"comm\": \"NAME\" (15 bytes at most), \"every\": "
				   "\"30s\" (at least 100ms), \"vars\": true|false}");
		jv_free(body);
		return;
	}
	id = serve_schedule_add(jv_is_int(pid) ? (pid_t)jv_int(pid) : 0, jv_str(comm), every_ms,
				vars ? jv_bool(vars) : true);
	jv_free(body);
	w->status = 201;
	json_init(&j, &w->body);
	pthread_mutex_lock(&sched_lock);
	for (size_t i = 0; i < nscheds; i++)
		if (scheds[i].id == id)
			schedule_json(&j, &scheds[i]);
	pthread_mutex_unlock(&sched_lock);
	buf_putc(&w->body, '\n');
}

static void delete_schedule(struct http_req *r, struct http_resp *w)
{
	long long id = strtoll(r->params[0], NULL, 10);
	bool found = false;

	pthread_mutex_lock(&sched_lock);
	for (size_t i = 0; i < nscheds; i++)
		if (scheds[i].id == id) {
			scheds[i] = scheds[--nscheds];
			found = true;
			break;
		}
	pthread_mutex_unlock(&sched_lock);
	if (!found) {
		http_error(w, 404, "no schedule %s", r->params[0]);
		return;
	}
	buf_printf(&w->body, "{\"deleted\":%lld}\n", id);
}

/* ---- retention ---- */

static int64_t db_bytes(struct serve *sv)
{
	int64_t pages = 0, size = 0, free_pages = 0;

	store_run(sv->st, "PRAGMA page_count", &pages, "");
	store_run(sv->st, "PRAGMA page_size", &size, "");
	store_run(sv->st, "PRAGMA freelist_count", &free_pages, "");
	return (pages - free_pages) * size;
}

/* Deletes what --keep and --max-db-mb say is too old or too much; one
 * transaction per batch so that captures are never held up for long. */
static void retention_pass(struct serve *sv)
{
	int64_t cutoff = keep_ms ? serve_real_ns() - keep_ms * 1000000 : 0;
	bool deleted = false;

	pthread_mutex_lock(&sv->write_lock);
	if (cutoff) {
		/* The newest snapshot and event always stay, so that an id is never given twice
		 * (SQLite numbers a row one past the largest there is). */
		store_run(sv->st, "DELETE FROM snapshots WHERE taken_at < ? AND id < (SELECT max(id) FROM snapshots)", NULL,
			  "i", cutoff);
		store_run(sv->st, "DELETE FROM events WHERE ts_ns < ? AND id < (SELECT max(id) FROM events)", NULL, "i",
			  cutoff);
		deleted = sqlite3_changes(store_db(sv->st)) > 0;
	}
	for (int round = 0; max_db_bytes && round < 1000 && db_bytes(sv) > max_db_bytes; round++) {
		int64_t oldest_snap = 0, oldest_event = 0;

		store_run(sv->st, "SELECT min(taken_at) FROM snapshots", &oldest_snap, "");
		store_run(sv->st, "SELECT min(ts_ns) FROM events", &oldest_event, "");
		if (!oldest_snap && !oldest_event)
			break;
		if (oldest_snap && (!oldest_event || oldest_snap <= oldest_event))
			store_run(sv->st,
				  "DELETE FROM snapshots WHERE id IN (SELECT id FROM snapshots ORDER BY taken_at LIMIT 1)"
				  " AND id < (SELECT max(id) FROM snapshots)",
				  NULL, "");
		else
			store_run(sv->st,
				  "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY ts_ns LIMIT 1000)"
				  " AND id < (SELECT max(id) FROM events)",
				  NULL, "");
		if (!sqlite3_changes(store_db(sv->st)))
			break; /* only the newest are left */
		deleted = true;
	}
	if (deleted) {
		/* Stacks no goroutine uses any more go too; then give the pages back. */
		store_run(sv->st,
			  "DELETE FROM frames WHERE stack IN (SELECT id FROM stacks WHERE NOT EXISTS"
			  " (SELECT 1 FROM goroutines g WHERE g.stack_id = stacks.id))",
			  NULL, "");
		store_run(sv->st, "DELETE FROM stacks WHERE NOT EXISTS (SELECT 1 FROM goroutines g WHERE g.stack_id = stacks.id)",
			  NULL, "");
		sqlite3_exec(store_db(sv->st), "PRAGMA incremental_vacuum", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&sv->write_lock);
}

/* ---- WAL checkpoints, off the request path ---- */

/* The writer does not checkpoint (wal_autocheckpoint 0): a checkpoint copies the
 * WAL into the database, and one crossing SQLite's 1000-page mark inside a
 * snapshot request made that request wait for it (a 10k-goroutine snapshot with
 * its variables writes about 6 MB). The background thread checkpoints instead,
 * on a connection of its own and PASSIVE: it neither waits for the writer nor
 * holds it up. Without that connection the writer keeps checkpointing itself. */
static sqlite3 *ckpt_db;

static void checkpoint_open(struct serve *sv)
{
	if (sqlite3_open_v2(sv->db_path, &ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		sqlite3_close(ckpt_db);
		ckpt_db = NULL;
		return;
	}
	pthread_mutex_lock(&sv->write_lock);
	sqlite3_exec(store_db(sv->st), "PRAGMA wal_autocheckpoint = 0", NULL, NULL, NULL);
	pthread_mutex_unlock(&sv->write_lock);
}

static void checkpoint_pass(void)
{
	int log = 0, done = 0;

	if (ckpt_db)
		sqlite3_wal_checkpoint_v2(ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
}

static void checkpoint_close(void)
{
	sqlite3_close(ckpt_db);
	ckpt_db = NULL;
}

static void *background(void *arg)
{
	struct serve *sv = arg;
	int64_t next_retention = 0, next_checkpoint = 0;

	checkpoint_open(sv);
	while (!sv->stopping) {
		int64_t now = serve_mono_ms();

		pthread_mutex_lock(&sched_lock);
		for (size_t i = 0; i < nscheds && !sv->stopping; i++) {
			struct schedule sc;

			if (scheds[i].next_ms > now)
				continue;
			scheds[i].next_ms = now + scheds[i].every_ms;
			sc = scheds[i];
			pthread_mutex_unlock(&sched_lock);
			run_schedule(sv, &sc);
			pthread_mutex_lock(&sched_lock);
			/* the schedule may have been deleted meanwhile */
			for (size_t k = 0; k < nscheds; k++)
				if (scheds[k].id == sc.id) {
					scheds[k].runs = sc.runs;
					scheds[k].failures = sc.failures;
					memcpy(scheds[k].last_error, sc.last_error, sizeof(sc.last_error));
				}
		}
		pthread_mutex_unlock(&sched_lock);
		api_debug_reap();
		if ((keep_ms || max_db_bytes) && now >= next_retention) {
			retention_pass(sv);
			next_retention = now + 10000;
		}
		if (now >= next_checkpoint) {
			checkpoint_pass();
			next_checkpoint = now + 200;
		}
		usleep(50000);
	}
	checkpoint_close();
	return NULL;
}

/* ---- start-up ---- */

static bool loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* Splits "ADDR:PORT", "[V6]:PORT", "ADDR" or ":PORT". */
static int parse_listen(const char *s, char *addr, size_t n, uint16_t *port)
{
	const char *colon;
	uint64_t p = DEFAULT_PORT;

	if (s[0] == '[') {
		const char *e = strchr(s, ']');

		if (!e || (size_t)(e - s - 1) >= n)
			return -1;
		memcpy(addr, s + 1, (size_t)(e - s - 1));
		addr[e - s - 1] = 0;
		colon = e[1] == ':' ? e + 1 : NULL;
		if (e[1] && !colon)
			return -1;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon) /* a bare IPv6 address */
			colon = NULL;
		snprintf(addr, n, "%.*s", colon ? (int)(colon - s) : (int)strlen(s), s);
		if (!*addr)
			snprintf(addr, n, "127.0.0.1");
		if (strcmp(addr, "localhost") == 0)
			snprintf(addr, n, "127.0.0.1");
	}
	if (colon && !cli_parse_u64(colon + 1, 0, 65535, &p))
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static char *read_file(const char *path, size_t max)
{
	struct buf b = {0};
	char chunk[4096];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < max)
		buf_add(&b, chunk, n);
	fclose(f);
	return buf_detach(&b);
}

/* The token: read from file, or made (32 random bytes, hex) into it, mode 0600. */
static int load_token(const char *path, bool given, char **out)
{
	char *t = read_file(path, 4096);
	unsigned char rnd[32];
	struct buf b = {0};
	int fd;

	if (t) {
		t[strcspn(t, "\r\n")] = 0;
		if (strlen(t) < 16) {
			free(t);
			return err_set(EINVAL, "%s: the token must be at least 16 characters", path);
		}
		*out = t;
		return 0;
	}
	if (given)
		return err_set(errno, "--token-file %s: %s", path, strerror(errno));
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return err_set(EIO, "no random bytes for a token: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(rnd); i++)
		buf_printf(&b, "%02x", rnd[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, b.p, b.len) != (ssize_t)b.len || write(fd, "\n", 1) != 1) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		buf_free(&b);
		return err_set(e, "cannot write the token file %s: %s", path, strerror(e));
	}
	close(fd);
	*out = buf_detach(&b);
	return 0;
}

static int parse(int argc, char **argv, struct serve_args *a)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},		{"listen", required_argument, NULL, 'l'},
		{"token-file", required_argument, NULL, 't'},	{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'},	{"insecure-http", no_argument, NULL, 'I'},
		{"sql-timeout-ms", required_argument, NULL, 'T'}, {"sql-max-rows", required_argument, NULL, 'R'},
		{"threads", required_argument, NULL, 'n'},	{"every", required_argument, NULL, 'e'},
		{"pid", required_argument, NULL, 'p'},		{"comm", required_argument, NULL, 'C'},
		{"keep", required_argument, NULL, 'K'},		{"max-db-mb", required_argument, NULL, 'M'},
		{"no-vars", no_argument, NULL, 'V'},		{"quiet", no_argument, NULL, 'q'},
		{"model-cache-mb", required_argument, NULL, 'm'},
		{"record", required_argument, NULL, 'r'},	{"record-key", required_argument, NULL, 'y'},
		{"record-dir", required_argument, NULL, 'D'},	{"record-idle", required_argument, NULL, 'i'},
		{"record-no-rr", no_argument, NULL, 'N'},
		{"debug-sessions", required_argument, NULL, 'g'}, {"debug-idle", required_argument, NULL, 'G'},
		{"debug-timeout", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "d:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->db = optarg; break;
		case 'l': a->listen = optarg; break;
		case 't': a->token_file = optarg; break;
		case 'c': a->tls_cert = optarg; break;
		case 'k': a->tls_key = optarg; break;
		case 'I': a->insecure_http = true; break;
		case 'V': a->no_vars = true; break;
		case 'q': a->quiet = true; break;
		case 'C': a->every_comm = optarg; break;
		case 'T':
			if (!cli_parse_u64(optarg, 1, 3600000, &a->sql_timeout_ms))
				return cli_usage_error("serve", "--sql-timeout-ms takes 1 to 3600000, not '%s'", optarg);
			break;
		case 'R':
			if (!cli_parse_u64(optarg, 1, 10000000, &a->sql_max_rows))
				return cli_usage_error("serve", "--sql-max-rows takes 1 to 10000000, not '%s'", optarg);
			break;
		case 'n':
			if (!cli_parse_u64(optarg, 0, 256, &a->threads))
				return cli_usage_error("serve", "--threads takes 0 to 256, not '%s'", optarg);
			break;
		case 'p':
			if (!cli_parse_u64(optarg, 1, INT32_MAX, &a->every_pid))
				return cli_usage_error("serve", "--pid takes a process id, not '%s'", optarg);
			break;
		case 'm':
			if (!cli_parse_u64(optarg, 16, 1u << 20, &a->model_cache_mb))
				return cli_usage_error("serve", "--model-cache-mb takes 16 to 1048576, not '%s'", optarg);
			break;
		case 'M':
			if (!cli_parse_u64(optarg, 1, 1u << 30, &a->max_db_mb))
				return cli_usage_error("serve", "--max-db-mb takes a number of MiB, not '%s'", optarg);
			break;
		case 'e':
		case 'K': {
			int64_t ms = serve_parse_duration(optarg);

			if (ms < (c == 'e' ? 100 : 1000))
				return cli_usage_error("serve", "--%s takes a duration such as 30s, 5m, 7d, not '%s'",
						       c == 'e' ? "every" : "keep", optarg);
			if (c == 'e')
				a->every_ms = ms;
			else
				a->keep_ms = ms;
			break;
		}
		case 'r': a->rec.listen = optarg; break;
		case 'N': a->rec.no_rr = true; break;
		case 'D': a->rec.dir = optarg; break;
		case 'y':
			if (strcmp(optarg, "ip") == 0) {
				a->rec.key = RECORD_KEY_IP;
			} else if (strncmp(optarg, "header:", 7) == 0 && optarg[7]) {
				a->rec.key = RECORD_KEY_HEADER;
				a->rec.key_name = optarg + 7;
			} else if (strncmp(optarg, "cookie:", 7) == 0 && optarg[7]) {
				a->rec.key = RECORD_KEY_COOKIE;
				a->rec.key_name = optarg + 7;
			} else {
				return cli_usage_error("serve", "--record-key: expected ip, header:NAME or cookie:NAME");
			}
			break;
		case 'i':
			if (!cli_parse_u64(optarg, 0, 86400 * 365, &v))
				return cli_usage_error("serve", "--record-idle takes seconds, not '%s'", optarg);
			a->rec.idle_s = (unsigned int)v;
			break;
		case 'g':
			if (!cli_parse_u64(optarg, 0, 64, &a->debug_sessions))
				return cli_usage_error("serve", "--debug-sessions takes 0 to 64, not '%s'", optarg);
			break;
		case 'G':
			if (!cli_parse_u64(optarg, 1, 86400 * 7, &a->debug_idle_s))
				return cli_usage_error("serve", "--debug-idle takes seconds, not '%s'", optarg);
			break;
		case 'j':
			if (!cli_parse_u64(optarg, 1, 3600, &a->debug_timeout_s))
				return cli_usage_error("serve", "--debug-timeout takes 1 to 3600 seconds, not '%s'", optarg);
			break;
		case 'h': fputs(usage_text, stdout); return -1;
		default: return cli_usage_error("serve", "bad option");
		}
	}
	if (a->rec.listen && optind < argc) {
		a->rec.argv = argv + optind;
		optind = argc;
	}
	if (a->rec.listen && !a->rec.argv)
		return cli_usage_error("serve", "--record ADDR needs the app's command after --");
	if (optind != argc)
		return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
	if (!a->tls_cert != !a->tls_key)
		return cli_usage_error("serve", "--tls-cert and --tls-key go together");
	if (a->every_ms && !a->every_pid == !a->every_comm)
		return cli_usage_error("serve", "--every needs the process: --pid PID or --comm NAME");
	if (!a->every_ms && (a->every_pid || a->every_comm))
		return cli_usage_error("serve", "--pid and --comm name what --every snapshots; give --every too");
	if (a->every_comm && strlen(a->every_comm) > 15)
		return cli_usage_error("serve", "--comm: a process name has at most 15 bytes");
	return 0;
}

static struct http_route *all_routes(size_t *n)
{
	static const struct http_route own[] = {
		{"GET", "/api/health", get_health, true},
		{"GET", "/metrics", get_metrics, false},
		{"GET", "/api/schedules", list_schedules, false},
		{"POST", "/api/schedules", add_schedule, false},
		{"DELETE", "/api/schedules/*", delete_schedule, false},
	};
	const struct {
		const struct http_route *r;
		size_t n;
	} families[] = {
		{own, sizeof(own) / sizeof(own[0])},
		{api_sql_routes, api_sql_nroutes},
		{api_snapshot_routes, api_snapshot_nroutes},
		{api_trace_routes, api_trace_nroutes},
		{api_process_routes, api_process_nroutes},
		{api_grafana_routes, api_grafana_nroutes},
		{api_recording_routes, api_recording_nroutes},
		{api_debug_routes, api_debug_nroutes},
		{api_query_routes, api_query_nroutes},
		{api_function_routes, api_function_nroutes},
		{api_web_routes, api_web_nroutes}, /* the fallback: last */
	};
	struct http_route *all;
	size_t total = 0, k = 0;

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		total += families[i].n;
	all = xcalloc(total, sizeof(*all));
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		for (size_t j = 0; j < families[i].n; j++)
			all[k++] = families[i].r[j];
	*n = total;
	return all;
}

static int run(int argc, char **argv)
{
	struct serve_args a = {.sql_timeout_ms = 5000, .sql_max_rows = 10000, .model_cache_mb = 1024,
			       .debug_sessions = 4, .debug_idle_s = 600, .debug_timeout_s = 30,
			       .rec = {.idle_s = 300, .max_clients = 16, .dir = "glimpse-recordings"}};
	struct recorder *rec = NULL;
	int rec_failed = 0;
	struct serve sv = {0};
	struct http_opts ho = {0};
	struct http_server *hs = NULL;
	struct http_route *routes = NULL;
	char addr[64], *token = NULL, *cert = NULL, *key = NULL, *token_path = NULL;
	uint16_t port = DEFAULT_PORT;
	pthread_t bg;
	bool bg_started = false;
	sigset_t sigs;
	int rc, sig = 0;

	a.db = getenv("GLIMPSE_DB");
	if (!a.db || !*a.db)
		a.db = STORE_DEFAULT_PATH;
	a.listen = "127.0.0.1:7070";
	rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (parse_listen(a.listen, addr, sizeof(addr), &port))
		return cli_usage_error("serve", "--listen takes ADDR:PORT (e.g. 127.0.0.1:7070), not '%s'", a.listen);
	if (!loopback(addr) && !a.tls_cert && !a.insecure_http) {
		fprintf(stderr, "glimpse: refusing to serve plain HTTP on %s, which is not a loopback address: the token "
				"would cross the network in clear. Give --tls-cert and --tls-key, or --insecure-http.\n",
			addr);
		return 1;
	}
	if (a.tls_cert) {
		cert = read_file(a.tls_cert, 1 << 20);
		key = read_file(a.tls_key, 1 << 20);
		if (!cert || !key) {
			rc = cli_fail(err_set(ENOENT, "cannot read %s", cert ? a.tls_key : a.tls_cert));
			goto out;
		}
	}

	/* The store, then the token beside it. */
	sv.db_path = a.db;
	rc = store_open(a.db, &sv.st);
	if (rc) {
		rc = cli_fail(rc);
		goto out;
	}
	if (a.token_file) {
		token_path = xstrdup(a.token_file);
	} else {
		struct buf b = {0};

		buf_printf(&b, "%s.token", a.db);
		token_path = buf_detach(&b);
	}
	rc = load_token(token_path, a.token_file != NULL, &token);
	if (rc) {
		rc = cli_fail(rc);
		goto out;
	}
	rc = sqlro_open(a.db, 8, &sv.sql);
	if (rc) {
		rc = cli_fail(rc);
		goto out;
	}
	sv.sql_lim = (struct sqlro_limits){(unsigned int)a.sql_timeout_ms, a.sql_max_rows, 64u << 20};
	pthread_mutex_init(&sv.write_lock, NULL);
	pthread_mutex_init(&sv.reader_lock, NULL);
	pthread_mutex_init(&sv.busy_lock, NULL);
	pthread_mutex_init(&sv.traces_lock, NULL);
	pthread_mutex_init(&sv.metrics_lock, NULL);
	api_debug_config((unsigned int)a.debug_sessions, (unsigned int)a.debug_idle_s, (unsigned int)a.debug_timeout_s);
	keep_ms = a.keep_ms;
	max_db_bytes = (int64_t)a.max_db_mb << 20;
	if (keep_ms || max_db_bytes) {
		int64_t av = 0;

		/* Deleted pages are given back in the background: incremental vacuum. */
		store_run(sv.st, "PRAGMA auto_vacuum", &av, "");
		if (av != 2) {
			sqlite3_exec(store_db(sv.st), "PRAGMA auto_vacuum = INCREMENTAL", NULL, NULL, NULL);
			sqlite3_exec(store_db(sv.st), "VACUUM", NULL, NULL, NULL);
		}
	}

	sv.models = modelcache_new((size_t)a.model_cache_mb << 20);
	/* The BPF reader stays loaded for every snapshot. */
	rc = reader_bpf_open_warm(&sv.reader);
	if (rc) {
		snprintf(sv.reader_note, sizeof(sv.reader_note), "%s", err_msg(rc));
		sv.reader = NULL;
		fprintf(stderr, "glimpse serve: BPF reader unusable, snapshots use process_vm_readv: %s\n", sv.reader_note);
	}

	rc = api_traces_init(&sv);
	if (rc) {
		rc = cli_fail(rc);
		goto out;
	}
	if (a.every_ms)
		serve_schedule_add((pid_t)a.every_pid, a.every_comm, a.every_ms, !a.no_vars);

	/* Signals are taken by this thread alone, with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	routes = all_routes(&ho.nroutes);
	ho.routes = routes;
	ho.addr = addr;
	ho.port = port;
	ho.token = token;
	ho.tls_cert = cert;
	ho.tls_key = key;
	ho.max_body = 1 << 20;
	ho.max_header = 32 << 10;
	ho.timeout_s = 30;
	ho.threads = (unsigned int)a.threads;
	ho.max_conns = 512;
	ho.app = &sv;
	ho.access_log = !a.quiet;
	ho.observe = on_request_done;
	the_serve = &sv;
	rc = http_start(&ho, &hs);
	if (rc) {
		rc = cli_fail(rc);
		goto out;
	}
	if (pthread_create(&bg, NULL, background, &sv) == 0)
		bg_started = true;
	if (a.rec.listen) {
		a.rec.db = a.rec.no_rr ? NULL : a.db;
		a.rec.rr = getenv("GLIMPSE_RR");
		a.rec.verbose = !a.quiet;
		rc = recorder_start(&a.rec, &rec);
		if (rc) {
			rec_failed = cli_fail(rc);
		} else {
			printf("glimpse serve: recording proxy on port %u\n", recorder_port(rec));
		}
	}
	{
		bool v6 = strchr(addr, ':') != NULL;

		printf("glimpse serve: listening on %s://%s%s%s:%u/?token=%s\n", cert ? "https" : "http", v6 ? "[" : "",
		       addr, v6 ? "]" : "", (unsigned int)http_port(hs), token);
		printf("glimpse serve: store %s, token in %s, reader %s\n", a.db, token_path,
		       sv.reader ? "bpf (loaded)" : "process_vm_readv");
		fflush(stdout);
	}
	if (rec_failed)
		sig = SIGTERM; /* stop as a signal would */
	else
		sigwait(&sigs, &sig);
	fprintf(stderr, "glimpse serve: %s: stopping\n", strsignal(sig));
	sv.stopping = true;
	recorder_stop(rec); /* finishes its recordings: pack, archive, register */
	http_quiesce(hs);
	serve_traces_stop_all(&sv);
	if (bg_started)
		pthread_join(bg, NULL);
	http_stop(hs);
	api_debug_close_all(); /* gdb ended; rr's replay servers keep running (-k) */
	serve_traces_free(&sv);
	rc = rec_failed;
	fprintf(stderr, "glimpse serve: stopped\n");
out:
	if (sv.reader)
		reader_bpf_close(sv.reader);
	sqlro_close(sv.sql);
	store_close(sv.st);
	if (sv.models)
		modelcache_free(sv.models);
	free(routes);
	free(sv.routes);
	free(token);
	free(token_path);
	free(cert);
	free(key);
	free(scheds);
	scheds = NULL;
	nscheds = 0;
	return rc;
}

const struct cmd cmd_serve = {
	.name = "serve",
	.run = run,
	.summary = "run the HTTP API: snapshots, tracepoints and read-only SQL, for people, scripts and Grafana",
	.usage = usage_text,
};
