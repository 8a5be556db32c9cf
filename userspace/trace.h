/* trace.h - dynamic tracepoints on a live Go process: attach the generic BPF
 * program (bpf/probe.bpf.c) at the entry and every RET of the functions a regexp
 * names, drain its ring buffer, and turn each record into a decoded call or
 * return event with its goroutine and, for returns, the call's duration.
 *
 * The process is never stopped or written to: uprobes are the only change, and
 * trace_detach (or trace_close) removes them all.
 */
#ifndef GLIMPSE_TRACE_H
#define GLIMPSE_TRACE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plan.h"

struct gobin;
struct trace;

struct trace_opts {
	const char *regex;		/* functions to trace (POSIX extended) */
	const char *where;		/* --where EXPR, or NULL */
	struct plan_limits lim;
	uint64_t rate_limit;		/* calls per second per function, 0: none */
	bool count_only;		/* count calls per function; no events */
	bool calls_only;		/* no return probes: no results, no durations */
	uint32_t ring_bytes;		/* ring buffer size, a power of two (0: 32 MiB) */
	size_t max_funcs;		/* refuse regexps matching more (0: 1000) */
};

void trace_opts_default(struct trace_opts *o);

struct trace_event {
	int kind;			/* PROBE_CALL or PROBE_RETURN */
	int64_t ts_ns;			/* ns since the epoch */
	uint32_t pid, tid;
	uint64_t goid;
	uint64_t call_id;		/* the same on a call and its return; 0: call not seen */
	int64_t duration_ns;		/* returns: since the call; -1 when the call was not seen */
	size_t func;			/* index: trace_func() */
	const char *args;		/* JSON object {"name": value, ...}; on returns the call's
					 * (NULL if not seen); NULL without DWARF */
	const char *results;		/* returns: JSON array; NULL on calls and without DWARF */
	const char *const *values;	/* JSON of each argument (calls) or result (returns) */
	int nvalues;
	const char *error;		/* returns: the message of the first non-nil error result */
	const char *stack;		/* calls with --stack: JSON array of "func file:line" */
	bool truncated;			/* a value was cut by a limit */
};

/* Called for each event; the event and its strings live until it returns. */
typedef void (*trace_event_fn)(const struct trace_event *ev, void *arg);

struct trace_stats {
	uint64_t calls, returns;	/* events delivered */
	uint64_t ring_drops;		/* events lost because the ring buffer was full */
	uint64_t repeats;		/* repeated hits of one execution, dropped */
	uint64_t rate_limited;		/* calls over --rate-limit */
	uint64_t filtered;		/* calls --where rejected (BPF and userspace) */
	uint64_t hits;			/* count-only: calls */
};

/* Finds the functions, compiles their plans (and --where), and loads the BPF
 * program; nothing is attached yet. Returns 0 and *out (free with trace_close)
 * or a negative code with a message (bad regexp, no match, bad --where, BPF
 * refused). */
int trace_open(const struct gobin *bin, const struct trace_opts *o, struct trace **out);
size_t trace_nfuncs(const struct trace *t);
const struct plan_func *trace_func(const struct trace *t, size_t i);
/* Number of probe sites (entry probes + return probes). */
size_t trace_nsites(const struct trace *t);

/* Attaches every probe to the binary at path (e.g. /proc/PID/exe), firing only
 * in process pid, whose load bias is bias. Returns 0 or a negative code (and
 * nothing stays attached). */
int trace_attach(struct trace *t, const char *path, pid_t pid, uint64_t bias);
/* Sets the load bias. Events also carry it (the probe's address), and the
 * first event of a PIE started by --exec sets it. */
void trace_set_bias(struct trace *t, uint64_t bias);
/* Removes every probe. Events already in the ring can still be drained. */
void trace_detach(struct trace *t);

/* Waits up to timeout_ms for the ring to ask for a drain, then drains it,
 * calling fn for each event. Returns the number of events delivered or a
 * negative code. */
int trace_poll(struct trace *t, int timeout_ms, trace_event_fn fn, void *arg);

/* Counters of function i so far (all CPUs). */
void trace_stats(const struct trace *t, size_t i, struct trace_stats *out);

void trace_close(struct trace *t);

#endif
