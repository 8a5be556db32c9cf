/* trace_cmd.c - `glimpse trace`: log every call and return of the Go functions a
 * regexp names, live, with decoded arguments, results, goroutine and duration;
 * print them (text or JSON lines) and store them in the database, one
 * transaction per drain of the ring buffer. Stops on SIGINT/SIGTERM, --duration,
 * --max-events or the target's exit, always detaching and flushing first.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wordexp.h>

#include "buf.h"
#include "cli.h"
#include "dwarf.h"
#include "err.h"
#include "gobin.h"
#include "json.h"
#include "pclntab.h"
#include "store.h"
#include "trace.h"
#include "trace_store.h"

static const char usage_text[] =
	"usage: glimpse trace --pid PID | --exec 'CMD ARGS' REGEX [--where EXPR] [--stack N] [--json]\n"
	"                     [--db FILE | --no-store] [--duration S] [--max-events N] [--count | --calls-only]\n"
	"                     [--rate-limit N] [--max-string N] [--max-entries N] [--max-depth N]\n"
	"\n"
	"Logs every call and return of the Go functions whose name matches REGEX (POSIX extended)\n"
	"in a running process, with arguments, results, goroutine and duration, without stopping\n"
	"or restarting it. Probes go after each function's prologue and on each RET instruction\n"
	"(never uretprobes); all of them are removed when tracing stops.\n"
	"\n"
	"  --pid PID          trace this process\n"
	"  --exec 'CMD ARGS'  start CMD with the probes already attached, stop when it exits\n"
	"  --where EXPR       only calls whose arguments match, e.g. 'id > 100 && name == \"abc\"'\n"
	"                     (== != < <= > >= && || ! ( ), fields as u.Name; evaluated in BPF\n"
	"                     where it can be); returns of rejected calls are dropped too\n"
	"  --stack N          add the caller's stack (N frames) to each call\n"
	"  --json             one JSON object per line\n"
	"  --db FILE          database to store events in (default $GLIMPSE_DB or glimpse.db)\n"
	"  --no-store         print only\n"
	"  --duration S       stop after S seconds\n"
	"  --max-events N     stop after N events\n"
	"  --count            only count calls per function (no arguments, no returns)\n"
	"  --calls-only       calls with their arguments, no return probes: no results or durations,\n"
	"                     but about ten times cheaper per call (a RET probe is single-stepped)\n"
	"  --rate-limit N     at most N calls per second per function (the rest are counted)\n"
	"  --max-string N     bytes of a string copied (default 64)\n"
	"  --max-entries N    elements of a slice copied (default 8)\n"
	"  --max-depth N      pointers followed from an argument (default 2)\n";

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

struct session {
	struct trace *t;
	const struct gobin *bin;
	struct store *st;
	int64_t *probe_ids;	/* per function */
	struct buf out;		/* whole lines not yet written to standard output */
	bool out_failed;	/* standard output refused them: print no more */
	size_t out_batch;	/* most bytes of lines per write(2) */
	uint64_t events, max_events;
	int rc;			/* first store error */
	bool json;
};

static int64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- output ----
 *
 * Standard output may be shared with the target (--exec) or with other
 * writers: every write(2) carries whole lines only, at most s->out_batch bytes
 * of them unless one line is longer, and lines are written when that much has
 * gathered and after each drain of the ring buffer. The batch is PIPE_BUF
 * (which a pipe writes at once, nothing else in between) unless standard
 * output is a regular file, where every write lands whole.
 */

#define OUT_BATCH_FILE (64 << 10)

/* The most bytes of lines one write(2) to standard output may carry. */
static size_t out_batch(void)
{
	struct stat st;

	return fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) ? OUT_BATCH_FILE : PIPE_BUF;
}

/* Writes the first n bytes of s->out (whole lines); a failure stops the trace. */
static void out_write(struct session *s, size_t n)
{
	int rc = s->out_failed ? 0 : buf_write_fd(&s->out, STDOUT_FILENO, n);

	if (rc < 0) {
		s->out_failed = true;
		if (!s->rc)
			s->rc = err_set(-rc, "writing events to standard output: %s", strerror(-rc));
	}
	if (s->out_failed)
		buf_reset(&s->out);
}

/* The line that starts at start in s->out is complete: writes the lines
 * before it when it would take their write past the batch, and itself once it
 * fills the batch alone. */
static void out_line(struct session *s, size_t start)
{
	if (start && s->out.len > s->out_batch)
		out_write(s, start);
	if (s->out.len >= s->out_batch)
		out_write(s, s->out.len);
}

static void put_duration(struct buf *b, int64_t ns)
{
	if (ns < 0)
		buf_puts(b, "?");
	else if (ns < 10000)
		buf_printf(b, "%" PRId64 "ns", ns);
	else if (ns < 10000000)
		buf_printf(b, "%.1fµs", (double)ns / 1e3);
	else if (ns < 10000000000)
		buf_printf(b, "%.1fms", (double)ns / 1e6);
	else
		buf_printf(b, "%.2fs", (double)ns / 1e9);
}

static void put_value(struct buf *b, const char *json)
{
	buf_puts(b, strcmp(json, "null") ? json : "nil");
}

static void text_event(struct session *s, const struct trace_event *ev, const struct plan_func *pf)
{
	time_t sec = (time_t)(ev->ts_ns / 1000000000);
	struct tm tm;

	localtime_r(&sec, &tm);
	buf_printf(&s->out, "%02d:%02d:%02d.%06d goroutine %" PRIu64 " %s %s", tm.tm_hour, tm.tm_min, tm.tm_sec,
		   (int)(ev->ts_ns / 1000 % 1000000), ev->goid, ev->kind == PROBE_CALL ? "call  " : "return", pf->name);
	if (ev->kind == PROBE_CALL) {
		if (pf->typed) {
			buf_putc(&s->out, '(');
			for (int i = 0; i < ev->nvalues; i++) {
				buf_printf(&s->out, "%s%s=", i ? ", " : "", pf->args[i].name);
				put_value(&s->out, ev->values[i]);
			}
			buf_putc(&s->out, ')');
		}
		if (ev->stack)
			buf_printf(&s->out, " from %s", ev->stack);
	} else {
		if (pf->typed && ev->nvalues) {
			buf_puts(&s->out, " => (");
			for (int i = 0; i < ev->nvalues; i++) {
				if (i)
					buf_puts(&s->out, ", ");
				put_value(&s->out, ev->values[i]);
			}
			buf_putc(&s->out, ')');
		}
		buf_puts(&s->out, " in ");
		put_duration(&s->out, ev->duration_ns);
	}
	buf_putc(&s->out, '\n');
}

static void json_event(struct session *s, const struct trace_event *ev, const struct plan_func *pf)
{
	struct json j;

	json_init(&j, &s->out);
	json_obj(&j);
	json_kv_int(&j, "ts_ns", ev->ts_ns);
	json_kv_uint(&j, "pid", ev->pid);
	json_kv_uint(&j, "tid", ev->tid);
	json_kv_uint(&j, "goid", ev->goid);
	json_kv_str(&j, "func", pf->name);
	json_kv_str(&j, "kind", ev->kind == PROBE_CALL ? "call" : "return");
	json_key(&j, "call_id");
	if (ev->call_id)
		json_uint(&j, ev->call_id);
	else
		json_null(&j);
	json_key(&j, "args");
	json_raw(&j, ev->args ? ev->args : "null");
	json_key(&j, "results");
	json_raw(&j, ev->results ? ev->results : "null");
	json_key(&j, "duration_ns");
	if (ev->kind == PROBE_RETURN && ev->duration_ns >= 0)
		json_int(&j, ev->duration_ns);
	else
		json_null(&j);
	if (ev->stack) {
		json_key(&j, "stack");
		json_raw(&j, ev->stack);
	}
	if (ev->truncated)
		json_kv_bool(&j, "truncated", true);
	json_end(&j);
	buf_putc(&s->out, '\n');
}

static void on_event(const struct trace_event *ev, void *arg)
{
	struct session *s = arg;
	const struct plan_func *pf = trace_func(s->t, ev->func);

	size_t start = s->out.len;

	if (s->max_events && s->events >= s->max_events)
		return;
	s->events++;
	if (s->json)
		json_event(s, ev, pf);
	else
		text_event(s, ev, pf);
	out_line(s, start);
	if (s->st && !s->rc)
		s->rc = trace_store_event(s->st, s->probe_ids, ev);
}

/* One drain of the ring buffer: one transaction. Returns events or a negative code. */
static int drain(struct session *s, int timeout_ms)
{
	int n, rc = 0;

	if (s->st && !s->rc)
		s->rc = store_begin(s->st);
	n = trace_poll(s->t, timeout_ms, on_event, s);
	if (s->st) {
		if (!s->rc)
			rc = store_commit(s->st);
		else
			store_rollback(s->st);
		if (rc && !s->rc)
			s->rc = rc;
	}
	out_write(s, s->out.len);
	return n;
}

/* ---- the target ---- */

/* Full path of a program as execvp would find it, or NULL. */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH");
	struct buf b = {0};

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		buf_reset(&b);
		buf_add(&b, p, n);
		buf_printf(&b, "/%s", name);
		if (access(buf_str(&b), X_OK) == 0) {
			char *r = realpath(buf_str(&b), NULL);

			buf_free(&b);
			return r;
		}
		p += n + (e ? 1 : 0);
	}
	buf_free(&b);
	return NULL;
}

/* Forks the child of --exec; it waits on *go_fd before it execs. */
static pid_t spawn(const char *prog, char **argv, int *go_fd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(127); /* glimpse gave up */
		execv(prog, argv);
		fprintf(stderr, "glimpse trace: cannot run %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	close(p[0]);
	*go_fd = p[1];
	return pid;
}

static bool target_gone(pid_t pid, bool child, int *status)
{
	if (child)
		return waitpid(pid, status, WNOHANG) == pid;
	return kill(pid, 0) != 0 && errno == ESRCH;
}

static void end_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, WNOHANG) == pid)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 40; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* ---- the command ---- */

struct args {
	struct trace_opts o;
	uint64_t pid;
	const char *exec;
	const char *db;
	bool store;
	double duration;
	uint64_t max_events;
};

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'}, {"exec", required_argument, NULL, 'x'},
		{"where", required_argument, NULL, 'w'}, {"stack", required_argument, NULL, 'k'},
		{"json", no_argument, NULL, 'j'}, {"db", required_argument, NULL, 'd'},
		{"no-store", no_argument, NULL, 'N'}, {"duration", required_argument, NULL, 't'},
		{"max-events", required_argument, NULL, 'm'}, {"count", no_argument, NULL, 'c'},
		{"calls-only", no_argument, NULL, 'C'},
		{"rate-limit", required_argument, NULL, 'r'}, {"max-string", required_argument, NULL, 's'},
		{"max-entries", required_argument, NULL, 'e'}, {"max-depth", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	uint64_t v;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:x:w:jd:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_parse_u64(optarg, 1, INT32_MAX, &a->pid))
				return cli_usage_error("trace", "--pid takes a process id, not '%s'", optarg);
			break;
		case 'x': a->exec = optarg; break;
		case 'w': a->o.where = optarg; break;
		case 'j': json_output = true; break;
		case 'd': a->db = optarg; break;
		case 'N': a->store = false; break;
		case 'c': a->o.count_only = true; break;
		case 'C': a->o.calls_only = true; break;
		case 't':
			a->duration = strtod(optarg, &end);
			if (*end || !(a->duration > 0))
				return cli_usage_error("trace", "--duration takes seconds, not '%s'", optarg);
			break;
		case 'k': case 'm': case 'r': case 's': case 'e': case 'D':
			if (!cli_parse_u64(optarg, c == 'k' || c == 'D' ? 0 : 1, c == 'k' ? PROBE_MAX_STACK : c == 's' ? 1000 :
					   c == 'e' ? 128 : c == 'D' ? 8 : UINT64_MAX / 2, &v))
				return cli_usage_error("trace", "-%c: '%s' is not a number in range", c, optarg);
			if (c == 'k')
				a->o.lim.nstack = (uint32_t)v;
			else if (c == 'm')
				a->max_events = v;
			else if (c == 'r')
				a->o.rate_limit = v;
			else if (c == 's')
				a->o.lim.max_string = (uint32_t)v;
			else if (c == 'e')
				a->o.lim.max_entries = (uint32_t)v;
			else
				a->o.lim.max_depth = (uint32_t)v;
			break;
		case 'h': fputs(usage_text, stdout); return -1;
		default: return cli_usage_error("trace", "bad option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("trace", "give one REGEX naming the functions to trace");
	a->o.regex = argv[optind];
	if (!a->pid == !a->exec)
		return cli_usage_error("trace", "give the process with --pid PID, or a command with --exec 'CMD ARGS'");
	return 0;
}

static void summary(struct session *s, double secs, pid_t pid)
{
	struct trace_stats sum = {0}, ts;
	size_t n = trace_nfuncs(s->t);

	for (size_t i = 0; i < n; i++) {
		trace_stats(s->t, i, &ts);
		sum.calls += ts.calls;
		sum.returns += ts.returns;
		sum.ring_drops += ts.ring_drops;
		sum.repeats += ts.repeats;
		sum.rate_limited += ts.rate_limited;
		sum.filtered += ts.filtered;
		sum.hits += ts.hits;
		if (s->t && trace_func(s->t, i)->call.flags & PSF_COUNT_ONLY) {
			size_t start = s->out.len;

			if (json_output) {
				struct json j;

				json_init(&j, &s->out);
				json_obj(&j);
				json_kv_str(&j, "func", trace_func(s->t, i)->name);
				json_kv_uint(&j, "calls", ts.hits);
				json_end(&j);
				buf_putc(&s->out, '\n');
			} else {
				buf_printf(&s->out, "%-50s %" PRIu64 "\n", trace_func(s->t, i)->name, ts.hits);
			}
			out_line(s, start);
		}
	}
	out_write(s, s->out.len);
	if (sum.hits)
		fprintf(stderr, "glimpse trace: %" PRIu64 " calls of %zu functions in %.1f s (pid %d)\n", sum.hits, n,
			secs, (int)pid);
	else
		fprintf(stderr,
			"glimpse trace: %" PRIu64 " calls, %" PRIu64 " returns of %zu function%s in %.1f s (pid %d); "
			"%" PRIu64 " events lost (ring buffer full), %" PRIu64 " repeated hits dropped, %" PRIu64
			" over the rate limit, %" PRIu64 " rejected by --where\n",
			sum.calls, sum.returns, n, n == 1 ? "" : "s", secs, (int)pid, sum.ring_drops, sum.repeats,
			sum.rate_limited, sum.filtered);
}

static void announce(struct session *s, pid_t pid)
{
	size_t n = trace_nfuncs(s->t);
	struct buf w = {0};

	fprintf(stderr, "glimpse trace: %zu function%s, %zu probes in pid %d (%s)%s\n", n, n == 1 ? "" : "s",
		trace_nsites(s->t), (int)pid, s->bin->go_version,
		s->bin->stripped ? ": no argument names or types without DWARF (stripped binary); calls and returns "
				   "with goroutine and duration only" : "");
	for (size_t i = 0; i < n; i++) {
		const struct plan_func *pf = trace_func(s->t, i);

		if (pf->note && !s->bin->stripped)
			fprintf(stderr, "  %s: %s\n", pf->name, pf->note);
		for (int k = 0; k < pf->nargs + pf->nresults; k++) {
			const struct plan_value *v = k < pf->nargs ? &pf->args[k] : &pf->results[k - pf->nargs];

			if (v->unavailable)
				fprintf(stderr, "  %s: %s %s is %s\n", pf->name, k < pf->nargs ? "argument" : "result",
					v->name, v->unavailable);
		}
		if (pf->where && i == 0) {
			where_describe(pf, &w);
			fprintf(stderr, "  --where %s\n", buf_str(&w));
		}
	}
	buf_free(&w);
}

static int run(int argc, char **argv)
{
	struct args a = {.store = true};
	struct session s = {0};
	struct gobin *bin = NULL;
	char *prog = NULL, exe[64];
	const char *path;
	wordexp_t we = {0};
	bool child = false, have_we = false;
	pid_t pid;
	int go_fd = -1, rc, status = 0;
	uint64_t bias = 0;
	int64_t t0, deadline = 0;
	struct sigaction sa = {0}, old_int, old_term;

	trace_opts_default(&a.o);
	a.db = getenv("GLIMPSE_DB");
	if (!a.db || !*a.db)
		a.db = STORE_DEFAULT_PATH;
	rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	s.json = json_output;
	s.out_batch = out_batch();
	s.max_events = a.max_events;
	if (a.exec) {
		if (wordexp(a.exec, &we, WRDE_NOCMD) != 0 || !we.we_wordc)
			return cli_usage_error("trace", "--exec: cannot split '%s' into words (quote shell characters such as ; | & < > ( ) or run a script)", a.exec);
		have_we = true;
		prog = find_program(we.we_wordv[0]);
		if (!prog) {
			rc = cli_fail(err_set(ENOENT, "--exec: %s: no such program", we.we_wordv[0]));
			goto out;
		}
		rc = gobin_open(prog, &bin);
	} else {
		rc = gobin_open_pid((pid_t)a.pid, &bin);
	}
	if (rc) {
		rc = cli_fail(rc);
		goto out;
	}
	s.bin = bin;
	rc = trace_open(bin, &a.o, &s.t);
	if (rc) {
		rc = cli_fail(rc);
		goto out;
	}
	if (a.exec) {
		pid = spawn(prog, we.we_wordv, &go_fd);
		if (pid < 0) {
			rc = cli_fail(err_set(errno, "--exec: fork: %s", strerror(errno)));
			goto out;
		}
		child = true;
		path = prog;
	} else {
		pid = (pid_t)a.pid;
		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
		path = exe;
		rc = gobin_bias(bin, pid, &bias);
		if (rc) {
			rc = cli_fail(rc);
			goto out;
		}
	}
	if (a.store) {
		rc = store_open(a.db, &s.st);
		if (!rc) {
			s.probe_ids = xcalloc(trace_nfuncs(s.t), sizeof(*s.probe_ids));
			rc = trace_store_probes(s.st, bin, s.t, &a.o, pid, 0, s.probe_ids);
		}
		if (rc) {
			rc = cli_fail(rc);
			goto out;
		}
	}
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	rc = trace_attach(s.t, path, pid, bias);
	if (rc) {
		rc = cli_fail(rc);
		goto restore;
	}
	if (child) {
		if (write(go_fd, "g", 1) != 1) {
			rc = cli_fail(err_set(errno, "--exec: cannot start the child"));
			goto restore;
		}
		close(go_fd);
		go_fd = -1;

	}
	announce(&s, pid);
	t0 = now_ns(CLOCK_MONOTONIC);
	if (a.duration > 0)
		deadline = t0 + (int64_t)(a.duration * 1e9);
	while (!stop_signal) {
		int n = drain(&s, 100);

		if (n < 0) {
			s.rc = n;
			break;
		}
		if (s.rc || (deadline && now_ns(CLOCK_MONOTONIC) >= deadline) ||
		    (s.max_events && s.events >= s.max_events) || target_gone(pid, child, &status))
			break;
	}
	/* Detach first, then take everything still in the ring. */
	trace_detach(s.t);
	while (drain(&s, 0) > 0)
		;
	if (s.st && !s.rc)
		s.rc = trace_store_stats(s.st, s.t, s.probe_ids);
	summary(&s, (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9, pid);
	if (s.rc) {
		rc = cli_fail(s.rc);
	} else {
		rc = 0;
		if (s.st && a.o.count_only)
			fprintf(stderr, "glimpse trace: counts stored in %s (table probes)\n", a.db);
		else if (s.st)
			fprintf(stderr, "glimpse trace: %" PRIu64 " events stored in %s\n", s.events, a.db);
	}
restore:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
out:
	if (go_fd >= 0)
		close(go_fd); /* the child exits without running anything */
	if (child)
		end_child(pid);
	trace_close(s.t);
	store_close(s.st);
	free(s.probe_ids);
	buf_free(&s.out);
	gobin_close(bin);
	free(prog);
	if (have_we)
		wordfree(&we);
	return rc;
}

const struct cmd cmd_trace = {
	.name = "trace",
	.run = run,
	.summary = "log calls and returns of Go functions live, with arguments, results and durations",
	.usage = usage_text,
};
