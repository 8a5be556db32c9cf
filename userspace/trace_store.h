/* trace_store.h - how a tracepoint session lands in the store: a probes row per
 * traced function (with its spec), one events row per call and return, the
 * counters at the end; and the session itself in traces (one row, its
 * probes linked in trace_probes). Used by `glimpse trace` and the server.
 */
#ifndef GLIMPSE_TRACE_STORE_H
#define GLIMPSE_TRACE_STORE_H
#include <stdint.h>
#include <sys/types.h>

#include "trace.h"

struct store;
struct gobin;

/* Records the binary, the process and a probes row per function of t in one
 * transaction; probe_ids (trace_nfuncs(t) of them) receives their ids. With
 * trace_id non-zero, links them to that traces row. Returns 0 or a negative code. */
int trace_store_probes(struct store *st, const struct gobin *bin, const struct trace *t, const struct trace_opts *o,
		       pid_t pid, int64_t trace_id, int64_t *probe_ids);
/* Adds one event (inside the caller's transaction). Returns 0 or a negative code. */
int trace_store_event(struct store *st, const int64_t *probe_ids, const struct trace_event *ev);
/* Writes every function's counters and end time in one transaction. */
int trace_store_stats(struct store *st, const struct trace *t, const int64_t *probe_ids);

#endif
