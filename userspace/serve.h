/* serve.h - what the long-lived service (`glimpse serve`, serve.c) shares with
 * its HTTP route families (api_*.c): the store's one writer, the pool of
 * read-only SQL connections and their limits, warm captures, trace sessions,
 * schedules and metrics.
 */
#ifndef GLIMPSE_SERVE_H
#define GLIMPSE_SERVE_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "http.h"
#include "snapshot.h"
#include "sqlro.h"

struct store;
struct reader_bpf;
struct modelcache;
struct trace_run;
struct gobin;

/* A histogram in Prometheus' shape: cumulative counts per upper bound (seconds). */
#define SERVE_HIST_BUCKETS 12
struct serve_hist {
	uint64_t counts[SERVE_HIST_BUCKETS + 1]; /* the last: +Inf */
	double sum;
	uint64_t n;
};

struct serve_route_stat {
	const char *route;
	int status;
	uint64_t n;
};

struct serve {
	const char *db_path;
	struct store *st;		/* the one writer; hold write_lock to use it */
	pthread_mutex_t write_lock;
	struct sqlro *sql;		/* read-only connections for queries */
	struct sqlro_limits sql_lim;
	struct modelcache *models;	/* binary models by executable, kept warm */

	/* Captures: the warm BPF reader (one walk at a time, under reader_lock);
	 * one capture per process at a time (busy pids). */
	pthread_mutex_t reader_lock;
	struct reader_bpf *reader;	/* NULL: BPF unusable, process_vm_readv only */
	char reader_note[256];		/* why not */
	pthread_mutex_t busy_lock;
	pid_t busy[64];
	int nbusy;

	/* Trace sessions started over the API. */
	pthread_mutex_t traces_lock;
	struct trace_run **traces;
	size_t ntraces;

	volatile bool stopping;

	/* Metrics (under metrics_lock). */
	pthread_mutex_t metrics_lock;
	struct serve_route_stat *routes;
	size_t nroutes;
	uint64_t snapshots_total, snapshot_errors, events_stored, events_lost, queries_limited;
	struct serve_hist capture_s, end_to_end_s, request_s;
};

/* Takes a snapshot of pid with o and stores it, answering as the API does:
 * 0 and *out (the caller frees with snapshot_free and gobin_close(out->bin)),
 * or an HTTP status (400, 404, 409, 429, 500) with the message in err. */
int serve_snapshot(struct serve *sv, pid_t pid, const struct snapshot_opts *o, struct snapshot *out,
		   int64_t *store_us, char *err, size_t errlen);
/* CLOCK_MONOTONIC in ms, CLOCK_REALTIME in ns. */
int64_t serve_mono_ms(void);
int64_t serve_real_ns(void);
/* Records a value into a histogram under metrics_lock. */
void serve_observe(struct serve *sv, struct serve_hist *h, double seconds);

/* The binary model of pid's executable (kept warm across requests); give it
 * back with serve_model_put. Returns 0 or a negative code with a message. */
int serve_model_get(struct serve *sv, pid_t pid, const struct gobin **out);
void serve_model_put(struct serve *sv, const struct gobin *bin);
/* The HTTP status for a failed capture's code: 404 no such process, 403 no
 * permission, 400 not Go or unsupported, else 500. */
int serve_status_for(int rc);
/* "250ms", "30s", "5m", "2h", "7d" (a bare number: seconds) in ms; -1 if malformed. */
int64_t serve_parse_duration(const char *s);
/* Adds a schedule: a snapshot of pid (or of every process named comm) every every_ms. */
int64_t serve_schedule_add(pid_t pid, const char *comm, int64_t every_ms, bool vars);

/* Trace sessions (api_traces.c). init marks sessions a dead server left running; the rest need traces_lock held, but stop_all and
 * free, which take it themselves or run alone at the end. */
int api_traces_init(struct serve *sv);
size_t serve_traces_running(struct serve *sv);
void serve_traces_stop_all(struct serve *sv);
void serve_traces_free(struct serve *sv);

#endif
