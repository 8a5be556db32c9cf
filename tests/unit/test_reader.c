/* test_reader.c - both goroutine readers (BPF task iterator, process_vm_readv)
 * against live Go fixtures of every installed Go version, with and without PIE.
 *
 * Each fixture runs with 1000 parked workers and one spinning goroutine. The
 * readers must find as many goroutines as the runtime itself reports
 * (/debug/pprof/goroutine?debug=1), copy the stack of every parked worker, agree
 * with each other (and the BPF reader with itself on the path older kernels
 * take), never give the running spinner a stale stack, mark goroutines that
 * move while copied as torn, and leave the target running. Needs root (BPF);
 * without it only the process_vm_readv checks run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include "../bpf/snapshot.h"
#include "buf.h"
#include "dwarf.h"
#include "err.h"
#include "fixture_path.h"
#include "gobin.h"
#include "pclntab.h"
#include "reader.h"
#include "reader_common.h"
#include "unwind.h"

static const char *const versions[] = {"1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26"};
static const char *const flavours[] = {"", ".pie"};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))
#define NFLAVOURS (sizeof(flavours) / sizeof(flavours[0]))
#define WORKERS	  1000

/* One BPF reader for the whole run (loading it costs far more than a snapshot). */
static struct reader_bpf *bpf;
/* Processes a test started: killed after each test, even a failed one. */
static pid_t children[8];

static void child_started(pid_t pid)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		if (!children[i]) {
			children[i] = pid;
			return;
		}
	}
	fail_msg("too many child processes");
}

static void child_reaped(pid_t pid)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] == pid)
			children[i] = 0;
}

/* The CPUs the tests may run on: tests that pin themselves to one CPU
 * would leave the rest pinned when they fail; teardown puts them back. */
static cpu_set_t start_cpus;

/* Teardown: kills the test's child processes and restores its CPUs. */
static int kill_children(void **state)
{
	sched_setaffinity(0, sizeof(start_cpus), &start_cpus);
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		if (children[i]) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	}
	return 0;
}

struct target {
	pid_t pid;
	char http[64]; /* host:port of its pprof server */
	struct gobin *bin;
	uint64_t bias;
};

/* Reads the child's stdout until its "ready pid=N http=ADDR" line (20 s at most). */
static void wait_ready(struct target *t, int fd, const char *path)
{
	char out[1024], *line;
	size_t len = 0;

	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&pfd, 1, 20000) <= 0)
			fail_msg("%s did not print its ready line within 20 s", path);
		n = read(fd, out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			fail_msg("%s exited before it was ready", path);
		len += n;
		out[len] = '\0';
		line = strstr(out, "ready pid=");
		if (line && strchr(line, '\n'))
			break;
	}
	if (sscanf(line, "ready pid=%*d http=%63s", t->http) != 1)
		fail_msg("%s: unexpected ready line: %s", path, line);
}

/* Starts fixture path with n parked workers, a spinner and the flag pair
 * flag/value when flag is not NULL; dies with the test. */
static void target_start_with(struct target *t, const char *path, int n, const char *flag, const char *value)
{
	char count[16];
	int fds[2], rc;

	memset(t, 0, sizeof(*t));
	rc = gobin_open(path, &t->bin);
	if (rc)
		fail_msg("gobin_open %s: %s", path, err_msg(rc));
	snprintf(count, sizeof(count), "%d", n);
	assert_int_equal(pipe(fds), 0);
	t->pid = fork();
	assert_true(t->pid >= 0);
	if (t->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(path, path, "-goroutines", count, "-spin", flag, value, (char *)NULL);
		_exit(127);
	}
	child_started(t->pid);
	close(fds[1]);
	wait_ready(t, fds[0], path);
	close(fds[0]);
	rc = gobin_bias(t->bin, t->pid, &t->bias);
	if (rc)
		fail_msg("gobin_bias %s: %s", path, err_msg(rc));
}

static void target_start(struct target *t, const char *path, int n)
{
	target_start_with(t, path, n, NULL, NULL);
}

static void target_stop(struct target *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		child_reaped(t->pid);
	}
	gobin_close(t->bin);
	memset(t, 0, sizeof(*t));
}

/* A minimal HTTP/1.0 GET to 127.0.0.1. Returns the status code (-1 on failure)
 * and the body in *body. */
static int http_get(const char *hostport, const char *path, struct buf *body)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char req[256], chunk[4096], *p;
	struct buf resp = {0};
	struct timeval tv = {10, 0};
	int fd, status = -1;
	ssize_t n;

	p = strrchr(hostport, ':');
	if (!p)
		return -1;
	sa.sin_port = htons(atoi(p + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto out;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, hostport);
	if (write(fd, req, n) != n)
		goto out;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&resp, chunk, n);
	if (sscanf(buf_str(&resp), "HTTP/%*s %d", &status) != 1)
		status = -1;
	p = strstr(buf_str(&resp), "\r\n\r\n");
	buf_reset(body);
	if (p)
		buf_puts(body, p + 4);
out:
	close(fd);
	buf_free(&resp);
	return status;
}

/* The runtime's own goroutine count, and how many of those goroutines serve
 * the HTTP request that asked: the connection's goroutines, one of which may
 * not have started yet (its stack is then goexit alone, with no frame lines). */
static void pprof_count(const struct target *t, long *total, long *http)
{
	struct buf body = {0};
	char *s, *group, *save = NULL;
	long count;

	assert_int_equal(http_get(t->http, "/debug/pprof/goroutine?debug=1", &body), 200);
	s = body.p;
	if (!s || sscanf(s, "goroutine profile: total %ld", total) != 1)
		fail_msg("unexpected pprof output: %.80s", s ? s : "");
	*http = 0;
	/* Groups are "N @ 0x.. 0x..\n#\t0x..\tfunc+0x..\tfile:line\n..." separated by blank lines. */
	for (char *p = strstr(s, "\n\n"); p; p = strstr(p + 2, "\n\n"))
		p[1] = '\f';
	for (group = strtok_r(s, "\f", &save); group; group = strtok_r(NULL, "\f", &save)) {
		if (sscanf(group, "%ld @", &count) != 1)
			continue;
		if (strstr(group, "net/http.(*conn") || !strstr(group, "\n#"))
			*http += count;
	}
	buf_free(&body);
}

static uint64_t hdr_u64(const struct raw_g *g, int off)
{
	uint64_t v;

	memcpy(&v, g->hdr + off, 8);
	return v;
}

/* Name of the function a goroutine started in (g.startpc). */
static const char *start_func(const struct target *t, const struct raw_g *g)
{
	const struct gofunc *f = pcln_find(t->bin->pcln, hdr_u64(g, t->bin->offsets.g_startpc) - t->bias);

	return f ? f->name : "?";
}

/* Line number of the first line of main.go containing text. */
static int source_line(const char *text)
{
	char line[512];
	int n = 0, found = 0;
	FILE *f = fopen("tests/fixtures/target/main.go", "r");

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		if (++n && strstr(line, text))
			found = n;
	fclose(f);
	if (!found)
		fail_msg("main.go has no line containing '%s'", text);
	return found;
}

/* The main.go line of the go statement that created g (g.gopc), or 0. */
static int created_at(const struct target *t, const struct raw_g *g)
{
	uint64_t pc = hdr_u64(g, t->bin->offsets.g_gopc) - t->bias;
	const struct gofunc *f = pcln_find(t->bin->pcln, pc - 1);
	const char *file;
	int line;

	if (!f || pcln_fileline(t->bin->pcln, f, pc - 1, &file, &line) || !strstr(file, "fixtures/target/main.go"))
		return 0;
	return line;
}

/* The fixture prints its ready line once every worker has called wg.Done(),
 * a moment before each parks: waits (5 s at most) until n of them are parked. */
static void wait_parked(const struct target *t, int n)
{
	int worker_line = source_line("go parkedWorker(");

	for (int try = 0; try < 500; try++) {
		struct raw_snapshot s;
		int parked = 0, rc;

		rc = reader_vm_snapshot(t->pid, &t->bin->offsets, t->bias, NULL, &s);
		if (rc)
			fail_msg("snapshot of %s: %s", t->bin->path, err_msg(rc));
		for (size_t i = 0; i < s.n; i++)
			parked +=
			    (s.gs[i].status & ~(uint32_t)G_SCAN) == G_WAITING && created_at(t, &s.gs[i]) == worker_line;
		raw_snapshot_free(&s);
		if (parked == n)
			return;
		usleep(10000);
	}
	fail_msg("%s: the workers did not all park within 5 s", t->bin->path);
}

/* The runtime's isSystemGoroutine, as far as the profile count goes. */
static bool is_system(const char *fn)
{
	return !strncmp(fn, "runtime.", 8) && strcmp(fn, "runtime.main") && strcmp(fn, "runtime.handleAsyncEvent");
}

/* Goroutines the runtime's profile counts, leaving out the HTTP server's
 * connection goroutines (they come and go with each request). */
static long user_goroutines(const struct target *t, const struct raw_snapshot *s, long *http)
{
	long n = 0;

	*http = 0;
	for (size_t i = 0; i < s->n; i++) {
		const char *fn = start_func(t, &s->gs[i]);

		if (!strncmp(fn, "net/http.", 9))
			(*http)++;
		else if (!is_system(fn))
			n++;
	}
	return n;
}

static int take(const struct target *t, bool use_bpf, const struct read_limits *lim, struct raw_snapshot *s)
{
	if (use_bpf)
		return reader_bpf_snapshot(bpf, t->pid, &t->bin->offsets, t->bias, lim, s);
	return reader_vm_snapshot(t->pid, &t->bin->offsets, t->bias, lim, s);
}

static void must_take(const struct target *t, bool use_bpf, const struct read_limits *lim, struct raw_snapshot *s)
{
	int rc = take(t, use_bpf, lim, s);

	if (rc)
		fail_msg("%s snapshot of %s: %s", use_bpf ? "bpf" : "vm", t->bin->path, err_msg(rc));
	assert_string_equal(s->reader, use_bpf ? "bpf" : "process_vm_readv");
}

/* A snapshot of t with reader r (what: which reader, for the failure). */
static void must_take_with(struct reader_bpf *r, const struct target *t, struct raw_snapshot *s, const char *what)
{
	int rc = reader_bpf_snapshot(r, t->pid, &t->bin->offsets, t->bias, NULL, s);

	if (rc)
		fail_msg("%s: %s", what, err_msg(rc));
}

/* The spinner is running (or momentarily runnable): a running goroutine has
 * either its thread's registers and a stack copied from them, or no stack. */
static void check_spinner(const struct raw_g *g, const char *what)
{
	uint32_t st = g->status & ~(uint32_t)G_SCAN;

	if (st == G_RUNNABLE) {
		assert_int_equal(g->src, RAW_SRC_SCHED);
		return;
	}
	if (st != G_RUNNING)
		fail_msg("%s: spinner has status %u", what, g->status);
	assert_int_not_equal(g->src, RAW_SRC_SCHED);
	if (g->regs_valid) {
		assert_int_equal(g->src, RAW_SRC_THREAD);
		assert_int_not_equal(g->tid, 0);
		return;
	}
	assert_int_equal(g->stack_len, 0);
	assert_null(g->stack);
	assert_true(g->on_cpu || g->no_thread || g->sp_outside);
}

/* What every snapshot of a fixture with WORKERS parked workers must show. */
static void check_snapshot(const struct target *t, const struct raw_snapshot *s)
{
	const char *what = s->reader;
	int workers = 0, spinners = 0;
	int worker_line = source_line("go parkedWorker("), spinner_line = source_line("go spinner()");

	assert_true(s->n > WORKERS);
	assert_true(s->allglen >= s->n);
	assert_true(s->nthreads >= 2);
	assert_true(s->duration_ns > 0 && s->started_ns > 0);
	assert_false(s->truncated);
	for (size_t i = 0; i < s->n; i++) {
		const struct raw_g *g = &s->gs[i];
		int line = created_at(t, g);
		uint32_t st = g->status & ~(uint32_t)G_SCAN;

		assert_int_equal(g->hdr_len, t->bin->offsets.g_size);
		assert_true(st != G_DEAD && st != G_IDLE);
		assert_int_equal(g->goid, hdr_u64(g, t->bin->offsets.g_goid));
		if (g->stack_len) {
			assert_non_null(g->stack);
			assert_int_equal(g->stack_addr, g->sp);
			assert_true(g->stack_addr + g->stack_len <= hdr_u64(g, t->bin->offsets.g_stack_hi));
		}
		if (line == worker_line) {
			workers++;
			if (st != G_WAITING || g->src != RAW_SRC_SCHED || !g->stack_len || g->torn)
				fail_msg("%s: worker goid %llu: status %u src %d stack %u torn %d", what,
					 (unsigned long long)g->goid, g->status, g->src, g->stack_len, g->torn);
		} else if (line == spinner_line) {
			spinners++;
			check_spinner(g, what);
		}
	}
	if (workers != WORKERS || spinners != 1)
		fail_msg("%s: %d workers (want %d), %d spinners (want 1) among %zu goroutines", what, workers, WORKERS,
			 spinners, s->n);
}

/* The readers count what the runtime counts. Connection goroutines of the
 * request may still be exiting when the snapshot is taken: retry a little. */
static void check_count(const struct target *t, bool use_bpf)
{
	long total = 0, http = 0, ours = 0, ours_http = 1;

	for (int try = 0; try < 20; try++) {
		struct raw_snapshot s;

		pprof_count(t, &total, &http);
		must_take(t, use_bpf, NULL, &s);
		ours = user_goroutines(t, &s, &ours_http);
		raw_snapshot_free(&s);
		if (ours == total - http && ours_http == 0)
			return;
		usleep(50000);
	}
	fail_msg("%s: %s counted %ld goroutines (+%ld http), the runtime %ld (%ld of them http)", t->bin->path,
		 use_bpf ? "bpf" : "vm", ours, ours_http, total, http);
}

static const struct raw_g *by_goid(const struct raw_snapshot *s, uint64_t goid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->gs[i].goid == goid)
			return &s->gs[i];
	return NULL;
}

/* Two snapshots taken back to back by different readers see the same
 * goroutines of the program, in the same states, with the same parked stacks. */
static void check_agree(const struct target *t, const struct raw_snapshot *a, const struct raw_snapshot *b)
{
	int spinner_line = source_line("go spinner()");

	for (size_t i = 0; i < a->n; i++) {
		const struct raw_g *x = &a->gs[i], *y = by_goid(b, x->goid);
		int line = created_at(t, x);
		uint32_t sx = x->status & ~(uint32_t)G_SCAN;

		if (!line)
			continue; /* runtime and net/http goroutines come and go */
		if (!y)
			fail_msg("goroutine %llu (main.go:%d) seen by %s only", (unsigned long long)x->goid, line,
				 a->reader);
		assert_int_equal(x->addr, y->addr);
		if (line == spinner_line)
			continue; /* running or runnable, as the scheduler likes */
		assert_int_equal(sx, y->status & ~(uint32_t)G_SCAN);
		assert_int_equal(x->src, y->src);
		if (x->torn || y->torn)
			continue;
		assert_int_equal(x->stack_addr, y->stack_addr);
		assert_int_equal(x->stack_len, y->stack_len);
		assert_memory_equal(x->stack, y->stack, x->stack_len);
	}
	for (size_t i = 0; i < b->n; i++)
		if (created_at(t, &b->gs[i]) && !by_goid(a, b->gs[i].goid))
			fail_msg("goroutine %llu seen by %s only", (unsigned long long)b->gs[i].goid, b->reader);
}

static void check_alive(const struct target *t)
{
	struct buf body = {0};

	assert_int_equal(kill(t->pid, 0), 0);
	assert_int_equal(waitpid(t->pid, NULL, WNOHANG), 0);
	assert_int_equal(http_get(t->http, "/debug/pprof/", &body), 200);
	buf_free(&body);
}

static void check_fixture(const char *path)
{
	struct raw_snapshot b = {0}, v = {0};
	struct target t;

	target_start(&t, path, WORKERS);
	wait_parked(&t, WORKERS);
	if (bpf) {
		must_take(&t, true, NULL, &b);
		check_snapshot(&t, &b);
	}
	must_take(&t, false, NULL, &v);
	check_snapshot(&t, &v);
	if (bpf) {
		check_agree(&t, &b, &v);
		check_agree(&t, &v, &b);
		check_count(&t, true);
	}
	check_count(&t, false);
	check_alive(&t);
	printf("%-36s %zu goroutines, %zu threads: bpf %.2f ms (%u run), vm %.2f ms\n", path, v.n, v.nthreads,
	       b.duration_ns / 1e6, b.walk.runs, v.duration_ns / 1e6);
	raw_snapshot_free(&b);
	raw_snapshot_free(&v);
	target_stop(&t);
}

static void test_reader_copies_every_goroutine_of_each_go_version(void **state)
{
	for (size_t i = 0; i < NVERSIONS; i++) {
		for (size_t j = 0; j < NFLAVOURS; j++) {
			const char *path = fixture(versions[i], flavours[j]);

			if (path)
				check_fixture(path);
		}
	}
}

/* A dead pid is an error that says so, from either reader. */
static void test_reader_reports_a_dead_pid(void **state)
{
	struct go_offsets off = {0};
	struct raw_snapshot s;
	struct target t;
	const char *path = fixture("1.23", "");
	pid_t pid;
	char want[64];
	int rc;

	if (!path)
		skip();
	target_start(&t, path, 10);
	off = t.bin->offsets;
	pid = t.pid;
	snprintf(want, sizeof(want), "no process with pid %d", (int)pid);
	/* First a zombie (exited, not yet reaped), then a pid nobody has. */
	kill(pid, SIGKILL);
	assert_int_equal(waitid(P_PID, pid, &(siginfo_t){0}, WEXITED | WNOWAIT), 0);
	for (int reaped = 0; reaped < 2; reaped++) {
		if (reaped) {
			waitpid(pid, NULL, 0);
			child_reaped(pid);
			t.pid = 0;
		}
		for (int allow_bpf = 0; allow_bpf < 2; allow_bpf++) {
			err_clear();
			rc = reader_snapshot(pid, &off, 0, NULL, allow_bpf, &s);
			assert_int_equal(rc, -ESRCH);
			assert_string_equal(err_msg(rc), want);
		}
	}
	target_stop(&t);
}

/* Go offsets applied to a process that is not Go: refused, not misread. */
static void test_reader_refuses_a_process_that_is_not_go(void **state)
{
	struct raw_snapshot s;
	struct target t;
	const char *path = fixture("1.23", "");
	pid_t pid;
	int rc;

	if (!path)
		skip();
	target_start(&t, path, 10);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	child_started(pid);
	usleep(100000);
	rc = reader_vm_snapshot(pid, &t.bin->offsets, 0, NULL, &s);
	assert_int_equal(rc, -GLIMPSE_ENOTGO);
	assert_non_null(strstr(err_msg(rc), "not a Go process"));
	if (bpf) {
		rc = reader_bpf_snapshot(bpf, pid, &t.bin->offsets, 0, NULL, &s);
		assert_int_equal(rc, -GLIMPSE_ENOTGO);
		assert_non_null(strstr(err_msg(rc), "not a Go process"));
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	child_reaped(pid);
	target_stop(&t);
}

/* max_goroutines and max_stack bound what is copied, the same way in both readers. */
static void test_reader_honours_limits(void **state)
{
	struct read_limits lim = {.max_stack = 256, .max_goroutines = 100};
	const char *path = fixture("1.22", "");
	struct raw_snapshot s[2] = {0};
	struct target t;

	if (!path)
		skip();
	target_start(&t, path, WORKERS);
	for (int use_bpf = 0; use_bpf < 2; use_bpf++) {
		if (use_bpf && !bpf)
			continue;
		must_take(&t, use_bpf, &lim, &s[use_bpf]);
		assert_int_equal(s[use_bpf].n, 100);
		assert_true(s[use_bpf].truncated);
		for (size_t i = 0; i < s[use_bpf].n; i++) {
			const struct raw_g *g = &s[use_bpf].gs[i];

			assert_true(g->stack_len <= 256);
			if (g->src != RAW_SRC_NONE && g->stack_len == 256)
				assert_true(g->stack_truncated);
		}
	}
	if (bpf)
		for (size_t i = 0; i < 100; i++)
			assert_int_equal(s[0].gs[i].goid, s[1].gs[i].goid);
	raw_snapshot_free(&s[0]);
	raw_snapshot_free(&s[1]);
	target_stop(&t);
}

/* Goroutines created by main.go (of every snapshot they are the stable part). */
static size_t main_goroutines(const struct target *t, const struct raw_snapshot *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += created_at(t, &s->gs[i]) != 0;
	return n;
}

/* A BPF reader opened with environment variable env set to 1 (if env). */
static struct reader_bpf *open_with(const char *env, const char *env2)
{
	struct reader_bpf *r = NULL;
	int rc;

	if (env)
		setenv(env, "1", 1);
	if (env2)
		setenv(env2, "1", 1);
	rc = reader_bpf_open(&r);
	if (env)
		unsetenv(env);
	if (env2)
		unsetenv(env2);
	if (rc)
		fail_msg("BPF reader with %s %s: %s", env ? env : "", env2 ? env2 : "", err_msg(rc));
	return r;
}

/* A BPF reader opened with GLIMPSE_BPF_LANES and GLIMPSE_BPF_CHUNK set so. */
static struct reader_bpf *open_lanes(const char *lanes, const char *chunk, uint32_t ring_bytes, bool give_way)
{
	struct reader_bpf *r = NULL;
	int rc;

	/* Without giving way runs end where the chunks do, not where a task woke up. */
	setenv("GLIMPSE_BPF_LANES", lanes, 1);
	setenv("GLIMPSE_BPF_CHUNK", chunk, 1);
	setenv("GLIMPSE_BPF_NO_GIVE_WAY", give_way ? "0" : "1", 1);
	rc = reader_bpf_open_ring(ring_bytes, &r);
	unsetenv("GLIMPSE_BPF_LANES");
	unsetenv("GLIMPSE_BPF_CHUNK");
	unsetenv("GLIMPSE_BPF_NO_GIVE_WAY");
	if (rc)
		fail_msg("BPF reader with %s lanes, chunks of %s: %s", lanes, chunk, err_msg(rc));
	return r;
}

/* Two lanes taking chunks of allgs side by side see what one lane walking it
 * in one run sees: every goroutine once, in allgs order, the same bytes. Also
 * with chunks of 7 entries (windows and pointer batches cut anywhere), and
 * with rings that fill up (both lanes copying records out at once). */
static void test_reader_bpf_lanes_split_the_walk(void **state)
{
	const char *path = fixture("1.23", "");
	const char *cfg[][2] = {{"1", "100000"}, {"2", "128"}, {"2", "7"}, {"2", "128"}};
	const uint32_t ring[] = {0, 0, 0, 2u << 20};
	struct raw_snapshot s[4] = {{0}};
	struct reader_bpf *r[4];
	struct target t;

	if (!path || !bpf)
		skip();
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		skip(); /* one CPU: one lane */
	target_start(&t, path, 4000);
	wait_parked(&t, 4000);
	for (int k = 0; k < 4; k++) {
		r[k] = open_lanes(cfg[k][0], cfg[k][1], ring[k], false);
		if (reader_bpf_snapshot(r[k], t.pid, &t.bin->offsets, t.bias, NULL, &s[k]))
			fail_msg("%s lanes, chunks of %s: %s", cfg[k][0], cfg[k][1], err_msg(-1));
		assert_int_equal(s[k].lanes, atoi(cfg[k][0]));
		assert_true(main_goroutines(&t, &s[k]) >= 4000);
		for (size_t i = 1; i < s[k].n; i++)
			if (s[k].gs[i].idx <= s[k].gs[i - 1].idx)
				fail_msg("%s lanes, chunks of %s: allgs entry %u after %u", cfg[k][0], cfg[k][1],
					 s[k].gs[i].idx, s[k].gs[i - 1].idx);
		printf("%s lane(s), chunks of %-6s ring %2u MiB: %zu goroutines, %u runs, %.2f ms\n", cfg[k][0],
		       cfg[k][1], ring[k] ? ring[k] >> 20 : 32, s[k].n, s[k].walk.runs, s[k].duration_ns / 1e6);
	}
	assert_int_equal(s[0].walk.runs, 1);
	assert_true(s[2].walk.runs >= s[2].allglen / 7);
	assert_true(s[3].walk.runs > s[1].walk.runs); /* the rings filled up */
	for (int k = 1; k < 4; k++) {
		assert_int_equal(main_goroutines(&t, &s[0]), main_goroutines(&t, &s[k]));
		check_agree(&t, &s[0], &s[k]);
		check_agree(&t, &s[k], &s[0]);
	}
	for (int k = 0; k < 4; k++) {
		raw_snapshot_free(&s[k]);
		reader_bpf_close(r[k]);
	}
	target_stop(&t);
}

static atomic_bool spin_on, nap_quit;
static atomic_uint nap_naps;
static sem_t nap_go;

/* A SCHED_BATCH thread that, each time nap_go is posted, counts a nap in
 * nap_naps, sleeps 1 ms and wakes up; until nap_quit. */
static void *nap(void *arg)
{
	struct sched_param none = {0};

	(void)arg;
	if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &none))
		return (void *)1;
	for (;;) {
		struct timespec ts = {0, 1000000};

		while (sem_wait(&nap_go) && errno == EINTR)
			;
		if (atomic_load(&nap_quit))
			return NULL;
		atomic_fetch_add(&nap_naps, 1);
		nanosleep(&ts, NULL);
	}
}

/* A run stops early when a thread wakes up on its CPU, and the walk goes on
 * where it stopped: every goroutine once, in allgs order, as many as a walk
 * that never stops. The thread that wakes (1 ms into the walk, pinned to the
 * walk's CPU) is a SCHED_BATCH one: on these machines a normal thread that
 * wakes mostly gets the CPU at once, before the run can see it waiting (the
 * kernel preempts the walk, or switches at a cond_resched() in a copy); one
 * that does not preempt on waking stays runnable, as a woken thread does on a
 * kernel without preemption. On a busy machine the walk may start only after
 * that thread woke: up to 20 walks are tried for one that gives way. */
static void test_reader_bpf_gives_way_to_a_waking_thread(void **state)
{
	const char *path = fixture("1.23", "");
	struct reader_bpf *yielding, *steady;
	unsigned int gave_way = 0, tries;
	cpu_set_t all, one;
	pthread_t napper;
	struct target t;
	void *napped;

	if (!path || !bpf)
		skip();
	target_start(&t, path, 4000);
	wait_parked(&t, 4000);
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	assert_int_equal(sem_init(&nap_go, 0, 0), 0);
	atomic_store(&nap_quit, false);
	assert_int_equal(pthread_create(&napper, NULL, nap, NULL), 0); /* inherits the one CPU */
	yielding = open_lanes("1", "100000", 0, true);
	steady = open_lanes("1", "100000", 0, false);
	for (tries = 0; tries < 20 && gave_way < 5; tries++) {
		struct raw_snapshot a = {0}, b = {0};
		unsigned int naps = atomic_load(&nap_naps);

		sem_post(&nap_go);
		for (int w = 0; w < 10000 && atomic_load(&nap_naps) == naps; w++)
			sched_yield();
		assert_int_not_equal(atomic_load(&nap_naps), naps);
		if (reader_bpf_snapshot(yielding, t.pid, &t.bin->offsets, t.bias, NULL, &a))
			fail_msg("snapshot: %s", err_msg(-1));
		usleep(2000);
		if (reader_bpf_snapshot(steady, t.pid, &t.bin->offsets, t.bias, NULL, &b))
			fail_msg("snapshot: %s", err_msg(-1));
		assert_int_equal(b.walk.runs, 1);
		assert_int_equal(b.walk.gave_way, 0);
		assert_int_equal(a.walk.runs, 1 + a.walk.gave_way);
		assert_int_equal(main_goroutines(&t, &a), main_goroutines(&t, &b));
		for (size_t i = 1; i < a.n; i++)
			if (a.gs[i].idx <= a.gs[i - 1].idx)
				fail_msg("after giving way %u times: allgs entry %u after %u", a.walk.gave_way,
					 a.gs[i].idx, a.gs[i - 1].idx);
		gave_way += a.walk.gave_way != 0;
		printf("giving way: %u runs, %zu goroutines in %.2f ms; never: %zu goroutines in %.2f ms\n",
		       a.walk.runs, a.n, a.duration_ns / 1e6, b.n, b.duration_ns / 1e6);
		raw_snapshot_free(&a);
		raw_snapshot_free(&b);
	}
	atomic_store(&nap_quit, true);
	sem_post(&nap_go);
	pthread_join(napper, &napped);
	sem_destroy(&nap_go);
	assert_null(napped);
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
	printf("%u of %u walks gave way\n", gave_way, tries);
	assert_true(gave_way > 0);
	reader_bpf_close(yielding);
	reader_bpf_close(steady);
	target_stop(&t);
}

static void *spin(void *arg)
{
	(void)arg;
	while (atomic_load(&spin_on))
		;
	return NULL;
}

/* A run walks up to RUN_MAX (512) goroutines when nothing else waits for its
 * CPU, but only CHUNK (128) when a task does: beside a busy thread on the
 * walk's one CPU every run starts with a task waiting, none is longer than
 * 128, and 4000 goroutines take at least 4000 / 128 runs. A run that starts
 * with none waiting stops at 512, or earlier only for a waking task or at its
 * chunk's end. These machines pack tasks onto few CPUs (sched_vcpu_pack),
 * so a CPU with nothing waiting is sought: up to 3 walks on each CPU in
 * turn, until one has such a run that went past 128. Both walks see every
 * goroutine once. */
static void test_reader_bpf_runs_are_short_while_a_task_waits(void **state)
{
	const char *path = fixture("1.23", "");
	struct raw_snapshot idle = {0}, busy = {0};
	unsigned int idle_runs = 0, idle_cut = 0;
	struct reader_bpf *r;
	cpu_set_t all, one;
	pthread_t spinner;
	struct target t;
	int tries = 0;

	if (!path || !bpf)
		skip();
	target_start(&t, path, 4000);
	wait_parked(&t, 4000);
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	setenv("GLIMPSE_BPF_LANES", "1", 1);
	if (reader_bpf_open(&r))
		fail_msg("reader_bpf_open: %s", err_msg(-1));
	unsetenv("GLIMPSE_BPF_LANES");
	for (int cpu = 0; cpu < CPU_SETSIZE && idle.walk.longest_idle <= 128; cpu++) {
		if (!CPU_ISSET(cpu, &all))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
		for (int k = 0; k < 3 && idle.walk.longest_idle <= 128; k++, tries++) {
			raw_snapshot_free(&idle);
			memset(&idle, 0, sizeof(idle));
			usleep(2000);
			must_take_with(r, &t, &idle, "idle CPU");
			assert_true(idle.walk.longest_busy <= 128);
			assert_true(idle.walk.longest_idle <= 512);
			idle_runs += idle.walk.idle_runs;
			idle_cut += idle.walk.idle_cut;
		}
	}
	atomic_store(&spin_on, true);
	assert_int_equal(pthread_create(&spinner, NULL, spin, NULL), 0); /* inherits the one CPU */
	usleep(20000);
	must_take_with(r, &t, &busy, "busy CPU");
	atomic_store(&spin_on, false);
	pthread_join(spinner, NULL);
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
	printf("4000 workers, one lane, %d walk(s) without a busy thread: %u of their runs started idle; the last "
	       "walk: %u runs, %u started idle (longest %u), the others' longest %u, %u gave way\n",
	       tries, idle_runs, idle.walk.runs, idle.walk.idle_runs, idle.walk.longest_idle, idle.walk.longest_busy,
	       idle.walk.gave_way);
	printf("beside a busy thread: %u runs, %u started idle, longest %u, %u gave way\n", busy.walk.runs,
	       busy.walk.idle_runs, busy.walk.longest_busy, busy.walk.gave_way);
	assert_int_equal(idle_cut, 0);
	assert_int_equal(busy.walk.idle_runs, 0);
	assert_true(busy.walk.longest_busy <= 128);
	assert_true(busy.walk.runs >= busy.allglen / 128);
	if (idle.walk.longest_idle <= 128)
		printf("note: no CPU was idle long enough for a run of more than 128 goroutines in %d walks "
		       "(%u runs started idle, each stopped for a waking task or at its chunk's end)\n",
		       tries, idle_runs);
	assert_int_equal(main_goroutines(&t, &idle), main_goroutines(&t, &busy));
	assert_true(main_goroutines(&t, &busy) >= 4000);
	for (size_t i = 1; i < busy.n; i++)
		if (busy.gs[i].idx <= busy.gs[i - 1].idx)
			fail_msg("allgs entry %u after %u", busy.gs[i].idx, busy.gs[i - 1].idx);
	raw_snapshot_free(&idle);
	raw_snapshot_free(&busy);
	reader_bpf_close(r);
	target_stop(&t);
}

/* Two lanes from LANES_FROM goroutines on; but over ALL_CPUS_UP_TO (16384), not
 * every CPU: the target's threads keep one for themselves. */
static void test_reader_bpf_leaves_a_cpu_to_a_large_target(void **state)
{
	const char *path = fixture("1.23", "");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	const int sizes[] = {4000, 20000};
	unsigned int lanes[2];

	if (!path || !bpf)
		skip();
	for (int i = 0; i < 2; i++) {
		struct raw_snapshot s = {0};
		struct target t;

		target_start(&t, path, sizes[i]);
		wait_parked(&t, sizes[i]);
		if (reader_bpf_snapshot(bpf, t.pid, &t.bin->offsets, t.bias, NULL, &s))
			fail_msg("snapshot: %s", err_msg(-1));
		assert_true(s.n > (size_t)sizes[i]);
		lanes[i] = s.lanes;
		printf("%d workers on %ld CPUs: %u lane(s), %.2f ms\n", sizes[i], cpus, s.lanes, s.duration_ns / 1e6);
		raw_snapshot_free(&s);
		target_stop(&t);
	}
	assert_int_equal(lanes[0], cpus > 1 ? 2 : 1);
	if (cpus <= 2)
		assert_int_equal(lanes[1], 1);
	else
		assert_int_equal(lanes[1], 2);
}

/* reader_bpf_open_for() sizes the rings for the target: 20k goroutines fill
 * the default 8 MiB ring (the walk stops while userspace copies records out),
 * but not the rings it picks. */
static void test_reader_bpf_open_for_sizes_its_rings(void **state)
{
	const char *path = fixture("1.23", "");
	struct raw_snapshot fixed = {0}, sized = {0};
	struct reader_bpf *r = NULL;
	struct target t;
	int rc;

	if (!path || !bpf)
		skip();
	target_start(&t, path, 20000);
	wait_parked(&t, 20000);
	rc = reader_bpf_open_for(t.pid, &t.bin->offsets, t.bias, NULL, &r);
	if (rc)
		fail_msg("reader_bpf_open_for: %s", err_msg(rc));
	must_take_with(r, &t, &sized, "sized rings");
	must_take_with(bpf, &t, &fixed, "8 MiB rings");
	printf("20000 workers: %u lane(s) with 8 MiB rings: %u full, %.2f ms; sized: %u lane(s), %u full, %.2f ms\n",
	       fixed.lanes, fixed.walk.ring_full, fixed.duration_ns / 1e6, sized.lanes, sized.walk.ring_full,
	       sized.duration_ns / 1e6);
	assert_true(fixed.walk.ring_full > 0);
	assert_int_equal(sized.walk.ring_full, 0);
	assert_int_equal(sized.lanes, fixed.lanes);
	assert_true(sized.n >= 20000);
	raw_snapshot_free(&sized);
	raw_snapshot_free(&fixed);
	reader_bpf_close(r);
	check_alive(&t);
	target_stop(&t);
}

/* The parked workers of a snapshot of t: how many, and whether each has its
 * stack and is whole. */
static int parked_workers(const struct target *t, const struct raw_snapshot *s)
{
	int worker_line = source_line("go parkedWorker("), n = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct raw_g *g = &s->gs[i];

		if (created_at(t, g) != worker_line)
			continue;
		if ((g->status & ~(uint32_t)G_SCAN) != G_WAITING || g->src != RAW_SRC_SCHED || !g->stack_len || g->torn)
			fail_msg("%s: worker goid %llu: status %u src %d stack %u torn %d", t->bin->path,
				 (unsigned long long)g->goid, g->status, g->src, g->stack_len, g->torn);
		n++;
	}
	return n;
}

/* A server keeps one reader warm and takes snapshots of any process with it:
 * one reader, opened for a small target, takes turns between that one and a
 * large one of another Go version (PIE), each snapshot right, the large one
 * given both lanes and rings it fits in (no run stops for a full ring), and
 * through reader_snapshot_with too. */
static void test_reader_bpf_one_reader_serves_two_processes_in_turn(void **state)
{
	const char *small_path = fixture("1.19", ""), *large_path;
	struct target small, large;
	struct reader_bpf *r = NULL;
	int rc, lanes_seen = 0;

	if (!small_path || !bpf)
		skip();
	target_start(&small, small_path, 100);
	large_path = fixture("1.26", ".pie");
	if (!large_path)
		skip();
	target_start(&large, large_path, 12000);
	wait_parked(&small, 100);
	wait_parked(&large, 12000);
	rc = reader_bpf_open_for(small.pid, &small.bin->offsets, small.bias, NULL, &r);
	if (rc)
		fail_msg("reader_bpf_open_for: %s", err_msg(rc));
	for (int round = 0; round < 3; round++) {
		const struct target *each[2] = {&small, &large};

		for (int k = 0; k < 2; k++) {
			const struct target *t = each[k];
			struct raw_snapshot s;

			if (round == 2)
				rc = reader_snapshot_with(r, t->pid, &t->bin->offsets, t->bias, NULL, &s);
			else
				rc = reader_bpf_snapshot(r, t->pid, &t->bin->offsets, t->bias, NULL, &s);
			if (rc)
				fail_msg("snapshot %d of %s: %s", round, t->bin->path, err_msg(rc));
			assert_string_equal(s.reader, "bpf");
			assert_int_equal(parked_workers(t, &s), t == &small ? 100 : 12000);
			if (t == &large) {
				assert_int_equal(s.walk.ring_full, 0);
				lanes_seen = s.lanes;
				printf("round %d: %zu goroutines of %s on %u lane(s) in %.2f ms (set-up %.1f ms)\n", round,
				       s.n, t->bin->path, s.lanes, s.duration_ns / 1e6, s.setup_ns / 1e6);
			} else {
				assert_true(s.n > 100 && s.n < 200);
			}
			raw_snapshot_free(&s);
		}
	}
	assert_int_equal(lanes_seen, sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1);
	reader_bpf_close(r);
	check_alive(&small);
	check_alive(&large);
	target_stop(&large);
	target_stop(&small);
}

/* With a ring buffer too small for one pass the walk resumes where it stopped
 * and still returns every goroutine, once. */
static void test_reader_bpf_resumes_when_the_ring_fills(void **state)
{
	const char *path = fixture("1.24", ".pie");
	struct raw_snapshot big = {0}, small = {0};
	struct reader_bpf *r = NULL, *one = NULL;
	struct target t;
	int rc;

	if (!path || !bpf)
		skip();
	target_start(&t, path, 4000);
	wait_parked(&t, 4000);
	/* One lane walking allgs in one run, but for the ring filling up. */
	setenv("GLIMPSE_BPF_LANES", "1", 1);
	setenv("GLIMPSE_BPF_CHUNK", "100000", 1);
	setenv("GLIMPSE_BPF_NO_GIVE_WAY", "1", 1);
	rc = reader_bpf_open_ring(2u << 20, &r);
	if (rc)
		fail_msg("reader_bpf_open_ring: %s", err_msg(rc));
	rc = reader_bpf_open(&one);
	unsetenv("GLIMPSE_BPF_LANES");
	unsetenv("GLIMPSE_BPF_CHUNK");
	unsetenv("GLIMPSE_BPF_NO_GIVE_WAY");
	if (rc)
		fail_msg("reader_bpf_open: %s", err_msg(rc));
	must_take_with(r, &t, &small, "small ring");
	must_take_with(one, &t, &big, "big ring");
	assert_true(small.walk.runs > 1);
	assert_true(small.walk.ring_full > 0);
	assert_int_equal(big.walk.runs, 1);
	assert_int_equal(big.walk.ring_full, 0);
	/* Runtime goroutines may come and go between the two; the program's may not. */
	assert_int_equal(main_goroutines(&t, &small), main_goroutines(&t, &big));
	assert_true(main_goroutines(&t, &small) >= 4000);
	for (size_t i = 1; i < small.n; i++)
		if (small.gs[i].idx == small.gs[i - 1].idx)
			fail_msg("allgs entry %u reported twice", small.gs[i].idx);
	/* Records copied out of the small ring were not written over before: a
	 * parked goroutine's stack is the same bytes in both snapshots. */
	size_t same = 0;

	for (size_t i = 0, j = 0; i < small.n; i++) {
		const struct raw_g *a = &small.gs[i], *b;

		while (j < big.n && big.gs[j].idx < a->idx)
			j++;
		if (j == big.n || big.gs[j].idx != a->idx)
			continue;
		b = &big.gs[j];
		if (a->goid != b->goid || a->torn || b->torn || a->stack_addr != b->stack_addr ||
		    a->stack_len != b->stack_len || !a->stack_len)
			continue;
		if (memcmp(a->stack, b->stack, a->stack_len) != 0)
			fail_msg("goroutine %llu: its stack differs between the rings", (unsigned long long)a->goid);
		same++;
	}
	printf("%zu parked goroutines' stacks agree between the two rings\n", same);
	assert_true(same >= 3900);
	printf("4000 workers through a 2 MiB ring: %u runs, %.2f ms (one run with 32 MiB: %.2f ms)\n", small.walk.runs,
	       small.duration_ns / 1e6, big.duration_ns / 1e6);
	raw_snapshot_free(&small);
	raw_snapshot_free(&big);
	reader_bpf_close(r);
	reader_bpf_close(one);
	target_stop(&t);
}

/* Runs check(t, &s) in a child keeping only the capabilities keep[0..n), s a
 * reader_snapshot() of t (BPF allowed) taken there; check returns the child's
 * exit status, which must be 0. */
static void snapshot_in_child_with_caps(const struct target *t, const int *keep, size_t n,
					int (*check)(const struct target *t, const struct raw_snapshot *s))
{
	int status;
	pid_t child = fork();

	assert_true(child >= 0);
	if (child == 0) {
		struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct data[2] = {{0}};
		struct raw_snapshot s;
		int rc;

		for (size_t i = 0; i < n; i++) {
			data[keep[i] / 32].effective |= 1u << (keep[i] % 32);
			data[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
		}
		if (syscall(SYS_capset, &hdr, data) != 0)
			_exit(2);
		rc = reader_snapshot(t->pid, &t->bin->offsets, t->bias, NULL, true, &s);
		if (rc) {
			fprintf(stderr, "snapshot with fewer capabilities: %s\n", err_msg(rc));
			_exit(3);
		}
		rc = check(t, &s);
		fflush(stdout);
		_exit(rc);
	}
	child_started(child);
	assert_int_equal(waitpid(child, &status, 0), child);
	child_reaped(child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static int fell_back(const struct target *t, const struct raw_snapshot *s)
{
	printf("without CAP_BPF: reader %s, %zu goroutines; %s\n", s->reader, s->n, s->fallback);
	return !strcmp(s->reader, "process_vm_readv") && strstr(s->fallback, "BPF") && s->n > 100 ? 0 : 4;
}

/* Drops the capabilities BPF needs (keeping CAP_SYS_PTRACE) in a child, which
 * then must fall back to process_vm_readv and say why. */
static void test_reader_falls_back_without_bpf_permission(void **state)
{
	const char *path = fixture("1.21", "");
	const int keep[] = {CAP_SYS_PTRACE};
	struct target t;

	if (!path || geteuid() != 0)
		skip(); /* dropping capabilities means having them */
	target_start(&t, path, 100);
	snapshot_in_child_with_caps(&t, keep, 1, fell_back);
	target_stop(&t);
}

static int read_direct_map(const struct target *t, const struct raw_snapshot *s)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	int zeros = 0;

	while (f && fgets(line, sizeof(line), f))
		zeros += strstr(line, "System RAM") && !strncmp(line, "00000000-00000000", 17);
	if (f)
		fclose(f);
	printf("without CAP_SYS_ADMIN (/proc/iomem %s): reader %s, copy %s, direct map %s, %zu goroutines\n",
	       zeros ? "hidden" : "shown", s->reader, s->copy ? s->copy : "-", s->direct_off ? s->direct_off : "-",
	       s->n);
	return zeros && !strcmp(s->reader, "bpf") && !strcmp(s->copy, "direct map") && s->n > 100 ? 0 : 4;
}

/* With CAP_BPF and CAP_PERFMON but not CAP_SYS_ADMIN, /proc/iomem shows zeros
 * (CI may run so); the BPF reader must still find the end of RAM and read
 * through the direct map. */
static void test_reader_bpf_direct_map_without_cap_sys_admin(void **state)
{
	const char *path = fixture("1.23", "");
	const int keep[] = {CAP_SYS_PTRACE, CAP_BPF, CAP_PERFMON};
	struct target t;

	if (!path || !bpf || geteuid() != 0)
		skip(); /* dropping capabilities means having them */
	target_start(&t, path, 100);
	snapshot_in_child_with_caps(&t, keep, sizeof(keep) / sizeof(keep[0]), read_direct_map);
	target_stop(&t);
}

/* Pins every thread of pid (or this process, pid 0) to CPU 0. */
static void pin_to_cpu0(pid_t pid)
{
	char path[64];
	cpu_set_t one;
	struct dirent *de;
	DIR *dir;

	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (!pid) {
		assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			sched_setaffinity(atoi(de->d_name), sizeof(one), &one);
	closedir(dir);
}

/* With the target and the reader sharing one CPU, the spinner is running but
 * preempted whenever the reader runs: the BPF reader must take its stack from
 * its thread's registers (inside main.spinner), process_vm_readv cannot see
 * those and must report it running without a stack. */
static void test_reader_takes_a_preempted_goroutine_from_its_thread(void **state)
{
	const char *path = fixture("1.23", ".pie");
	cpu_set_t all;
	struct target t;
	int from_thread = 0, vm_ok = 0;

	if (!path || !bpf)
		skip();
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	target_start(&t, path, 100);
	pin_to_cpu0(t.pid);
	pin_to_cpu0(0);
	usleep(100000);
	for (int i = 0; i < 20; i++) {
		struct raw_snapshot s;

		must_take(&t, i % 2 == 0, NULL, &s);
		for (size_t k = 0; k < s.n; k++) {
			const struct raw_g *g = &s.gs[k];
			const struct gofunc *f;

			if (strcmp(start_func(&t, g), "main.spinner") || (g->status & ~(uint32_t)G_SCAN) != G_RUNNING)
				continue;
			check_spinner(g, s.reader);
			if (!strcmp(s.reader, "process_vm_readv")) {
				vm_ok += !g->regs_valid && g->stack_len == 0;
				continue;
			}
			if (!g->regs_valid || !g->stack_len || g->torn)
				continue;
			f = pcln_find(t.bin->pcln, g->ip - t.bias);
			assert_non_null(f);
			assert_string_equal(f->name, "main.spinner");
			assert_true(g->sp >= hdr_u64(g, t.bin->offsets.g_stack_lo));
			assert_int_equal(g->stack_addr, g->sp);
			from_thread++;
		}
		raw_snapshot_free(&s);
	}
	sched_setaffinity(0, sizeof(all), &all);
	printf("spinner preempted: stack from its thread's registers in %d of 10 bpf snapshots, "
	       "running without a stack in %d of 10 process_vm_readv ones\n",
	       from_thread, vm_ok);
	assert_true(from_thread > 0);
	check_alive(&t);
	target_stop(&t);
}

/* The BPF reader copies through the kernel's direct map where it can (x86-64,
 * root), else with bpf_copy_from_user_task() straight into the ring (6.16+),
 * else into a buffer first. Forced here, each path must see exactly what the
 * default one sees, and the default one must be the direct map on this
 * machine kind, without a single slow copy for parked goroutines. */
static void test_reader_bpf_copy_paths_agree(void **state)
{
	const char *const cases[][2] = {{"1.19", ""}, {"1.26", ".pie"}};
	struct reader_bpf *other[2];
	const char *want[2] = {"dynptr", "buffered"};

	if (!bpf)
		skip();
	other[0] = open_with("GLIMPSE_BPF_NO_DIRECT", NULL);
	other[1] = open_with("GLIMPSE_BPF_NO_DIRECT", "GLIMPSE_BPF_NO_DYNPTR");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = fixture(cases[i][0], cases[i][1]);
		struct raw_snapshot a = {0}, b[2] = {{0}};
		struct target t;

		if (!path)
			continue;
		target_start(&t, path, WORKERS);
		wait_parked(&t, WORKERS);
		must_take(&t, true, NULL, &a);
		check_snapshot(&t, &a);
		if (strcmp(a.copy, "direct map"))
			fail_msg("%s: copied by %s, direct map %s", t.bin->path, a.copy, a.direct_off);
		assert_true(a.direct_reads >= a.n);
		for (int k = 0; k < 2; k++) {
			int rc = reader_bpf_snapshot(other[k], t.pid, &t.bin->offsets, t.bias, NULL, &b[k]);

			if (rc)
				fail_msg("%s snapshot of %s: %s", want[k], t.bin->path, err_msg(rc));
			assert_string_equal(b[k].copy, want[k]);
			assert_int_equal(b[k].direct_reads, 0);
			check_snapshot(&t, &b[k]);
			check_agree(&t, &a, &b[k]);
			check_agree(&t, &b[k], &a);
		}
		printf("%-36s direct map %.2f ms (%llu copies, %llu slow), dynptr %.2f ms, buffered %.2f ms\n",
		       t.bin->path, a.duration_ns / 1e6, (unsigned long long)a.direct_reads,
		       (unsigned long long)a.slow_reads, b[0].duration_ns / 1e6, b[1].duration_ns / 1e6);
		raw_snapshot_free(&a);
		raw_snapshot_free(&b[0]);
		raw_snapshot_free(&b[1]);
		target_stop(&t);
	}
	reader_bpf_close(other[0]);
	reader_bpf_close(other[1]);
}

/* Every hdr and stack byte of s, one after the other. */
static uint8_t *snapshot_bytes(const struct raw_snapshot *s, size_t *len)
{
	size_t n = 0;
	uint8_t *p, *q;

	for (size_t i = 0; i < s->n; i++)
		n += s->gs[i].hdr_len + s->gs[i].stack_len;
	p = q = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < s->n; i++) {
		memcpy(q, s->gs[i].hdr, s->gs[i].hdr_len);
		q += s->gs[i].hdr_len;
		if (s->gs[i].stack_len)
			memcpy(q, s->gs[i].stack, s->gs[i].stack_len);
		q += s->gs[i].stack_len;
	}
	*len = n;
	return p;
}

/* A snapshot's bytes stay in the reader's ring until the reader is needed
 * again: they must survive the next snapshot of the same reader (which copies
 * them out first), and the reader's closing (which waits for the snapshot). */
static void test_reader_bpf_snapshot_outlives_its_ring(void **state)
{
	const char *path = fixture("1.23", "");
	struct raw_snapshot s1 = {0}, s2 = {0};
	struct reader_bpf *r;
	uint8_t *before, *after;
	size_t n1, n2;
	struct target t;

	if (!path || !bpf)
		skip();
	target_start(&t, path, WORKERS);
	wait_parked(&t, WORKERS);
	if (reader_bpf_open_ring(2u << 20, &r))
		fail_msg("reader_bpf_open_ring: %s", err_msg(-1));
	if (reader_bpf_snapshot(r, t.pid, &t.bin->offsets, t.bias, NULL, &s1))
		fail_msg("snapshot: %s", err_msg(-1));
	assert_non_null(s1.pin);
	before = snapshot_bytes(&s1, &n1);
	/* Enough snapshots for the ring to wrap around over s1's bytes. */
	for (size_t written = 0; written < 3 * (2u << 20); written += n2) {
		if (reader_bpf_snapshot(r, t.pid, &t.bin->offsets, t.bias, NULL, &s2))
			fail_msg("snapshot: %s", err_msg(-1));
		check_snapshot(&t, &s2);
		check_agree(&t, &s1, &s2);
		free(snapshot_bytes(&s2, &n2));
		raw_snapshot_free(&s2);
	}
	after = snapshot_bytes(&s1, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	check_snapshot(&t, &s1);
	free(after);
	free(before);
	raw_snapshot_free(&s1);

	if (reader_bpf_snapshot(r, t.pid, &t.bin->offsets, t.bias, NULL, &s1))
		fail_msg("snapshot: %s", err_msg(-1));
	before = snapshot_bytes(&s1, &n1);
	reader_bpf_close(r); /* waits for s1 */
	after = snapshot_bytes(&s1, &n2);
	assert_memory_equal(before, after, n1);
	check_snapshot(&t, &s1);
	raw_snapshot_free(&s1); /* closes r */
	free(after);
	free(before);
	target_stop(&t);
}

/* Name of the function the first frame of g's copied stack returns into. */
static const char *caller_of(const struct target *t, const struct raw_g *g, char *buf, size_t size)
{
	struct uframe fr[UNWIND_MAX_FRAMES];
	enum unwind_end end;
	int n =
	    unwind(t->bin, t->bias, g->ip, g->sp, g->stack, g->stack_addr, g->stack_len, fr, UNWIND_MAX_FRAMES, &end);

	snprintf(buf, size, "?");
	for (int i = 0; i < n; i++) {
		if (fr[i].fn && !strncmp(fr[i].fn->name, "main.", 5)) {
			snprintf(buf, size, "%s", fr[i].fn->name);
			break;
		}
	}
	return buf;
}

/* Goroutines that hand a value back and forth change state and stack pointer
 * every microsecond: while they are copied, some must be caught moving and
 * marked torn; those that are not must be parked with a stack that unwinds to
 * main.pingPong (a consistent copy), and no parked worker may be torn. */
static void test_reader_marks_goroutines_that_move_as_torn(void **state)
{
	const char *path = fixture("1.23", "");
	int ping = source_line("go pingPong(ping, pong)"), pong = source_line("go pingPong(pong, ping)");
	int torn[2] = {0, 0}, whole[2] = {0, 0};
	struct target t;

	if (!path)
		skip();
	target_start_with(&t, path, WORKERS, "-churn", "4");
	wait_parked(&t, WORKERS);
	for (int i = 0; i < 60; i++) {
		int use_bpf = i % 2;
		struct raw_snapshot s;
		char fn[128];

		if (use_bpf && !bpf)
			continue;
		must_take(&t, use_bpf, NULL, &s);
		check_snapshot(&t, &s);
		for (size_t k = 0; k < s.n; k++) {
			const struct raw_g *g = &s.gs[k];
			int line = created_at(&t, g);

			if (line != ping && line != pong)
				continue;
			if (g->torn) {
				torn[use_bpf]++;
				continue;
			}
			if ((g->status & ~(uint32_t)G_SCAN) != G_WAITING)
				continue;
			whole[use_bpf]++;
			assert_int_equal(g->src, RAW_SRC_SCHED);
			assert_true(g->stack_len > 0);
			if (strcmp(caller_of(&t, g, fn, sizeof(fn)), "main.pingPong"))
				fail_msg("%s: parked ping-pong goroutine %llu unwinds to %s", s.reader,
					 (unsigned long long)g->goid, fn);
		}
		raw_snapshot_free(&s);
	}
	printf("ping-pong goroutines: torn %d, parked and whole %d (process_vm_readv); torn %d, whole %d (bpf)\n",
	       torn[0], whole[0], torn[1], whole[1]);
	assert_true(torn[0] > 0);
	if (bpf)
		assert_true(torn[1] > 0);
	check_alive(&t);
	target_stop(&t);
}

/* Both readers call a parked goroutine torn when the first SNAP_G_RECHECK
 * bytes of its g differ after its stack was copied: those must hold what
 * changes when it runs (status, sched, syscall registers, and trackingSeq,
 * which the runtime bumps whenever a goroutine stops running) in every version. */
static void test_reader_recheck_covers_what_changes_when_a_goroutine_runs(void **state)
{
	static const char *const fields[] = {"atomicstatus", "sched", "syscallsp", "syscallpc", "trackingSeq"};

	for (size_t i = 0; i < NVERSIONS; i++) {
		const char *path = fixture(versions[i], "");
		const struct gotype *g;
		struct gobin *bin;
		int rc;

		if (!path)
			continue;
		rc = gobin_open(path, &bin);
		if (rc)
			fail_msg("gobin_open %s: %s", path, err_msg(rc));
		g = bin->dwarf ? dwarf_type_by_name(bin->dwarf, "runtime.g") : NULL;
		if (!g)
			fail_msg("%s: no runtime.g in DWARF", path);
		assert_true(g->size >= SNAP_G_RECHECK);
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			int k;

			for (k = 0; k < g->nfields && strcmp(g->fields[k].name, fields[f]); k++)
				;
			if (k == g->nfields)
				fail_msg("%s: runtime.g has no field %s", path, fields[f]);
			if (g->fields[k].offset + g->fields[k].type->size > SNAP_G_RECHECK)
				fail_msg("%s: runtime.g.%s ends at %llu, past the %d bytes re-checked", path, fields[f],
					 (unsigned long long)(g->fields[k].offset + g->fields[k].type->size),
					 SNAP_G_RECHECK);
		}
		gobin_close(bin);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define RUNS 15

/* Median time of RUNS snapshots of n goroutines per reader (printed, loosely bounded). */
static void time_readers(const char *path, int n)
{
	uint64_t ns[2][RUNS];
	struct target t;

	target_start(&t, path, n);
	for (int use_bpf = 0; use_bpf < 2; use_bpf++) {
		if (use_bpf && !bpf)
			continue;
		for (int i = 0; i < RUNS; i++) {
			struct raw_snapshot s;

			must_take(&t, use_bpf, NULL, &s);
			assert_true(s.n >= (size_t)n);
			ns[use_bpf][i] = s.duration_ns;
			raw_snapshot_free(&s);
		}
		qsort(ns[use_bpf], RUNS, sizeof(uint64_t), cmp_u64);
		printf("%6d goroutines  %-16s median %7.2f ms  min %7.2f ms  (%.2f us/goroutine)\n", n,
		       use_bpf ? "bpf" : "process_vm_readv", ns[use_bpf][RUNS / 2] / 1e6, ns[use_bpf][0] / 1e6,
		       ns[use_bpf][RUNS / 2] / 1e3 / n);
		assert_true(ns[use_bpf][RUNS / 2] < 2000000000ull);
	}
	check_alive(&t);
	target_stop(&t);
}

static void test_reader_timing(void **state)
{
	const char *path = fixture("1.23", "");

	if (!path)
		skip();
	time_readers(path, 1000);
	time_readers(path, 10000);
}

static int load_bpf(void **state)
{
	uint64_t t0 = reader_now_ns(CLOCK_MONOTONIC);
	int rc = reader_bpf_open(&bpf);

	if (rc) {
		printf("note: BPF reader unavailable, checking process_vm_readv only: %s\n", err_msg(rc));
		bpf = NULL;
	} else {
		printf("BPF reader loaded in %.1f ms\n", (reader_now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	}
	return 0;
}

static int unload_bpf(void **state)
{
	reader_bpf_close(bpf);
	bpf = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_reader_copies_every_goroutine_of_each_go_version, kill_children),
	    cmocka_unit_test_teardown(test_reader_reports_a_dead_pid, kill_children),
	    cmocka_unit_test_teardown(test_reader_refuses_a_process_that_is_not_go, kill_children),
	    cmocka_unit_test_teardown(test_reader_honours_limits, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_resumes_when_the_ring_fills, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_open_for_sizes_its_rings, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_one_reader_serves_two_processes_in_turn, kill_children),
	    cmocka_unit_test_teardown(test_reader_falls_back_without_bpf_permission, kill_children),
	    cmocka_unit_test_teardown(test_reader_takes_a_preempted_goroutine_from_its_thread, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_copy_paths_agree, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_direct_map_without_cap_sys_admin, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_lanes_split_the_walk, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_gives_way_to_a_waking_thread, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_runs_are_short_while_a_task_waits, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_leaves_a_cpu_to_a_large_target, kill_children),
	    cmocka_unit_test_teardown(test_reader_bpf_snapshot_outlives_its_ring, kill_children),
	    cmocka_unit_test_teardown(test_reader_marks_goroutines_that_move_as_torn, kill_children),
	    cmocka_unit_test(test_reader_recheck_covers_what_changes_when_a_goroutine_runs),
	    cmocka_unit_test_teardown(test_reader_timing, kill_children),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sched_getaffinity(0, sizeof(start_cpus), &start_cpus)) {
		perror("sched_getaffinity");
		return 1;
	}
	return cmocka_run_group_tests(tests, load_bpf, unload_bpf);
}
