/* test_snapshot_speed.c - the server's warm path, measured: a snapshot of a
 * 10k-goroutine Go 1.23 process with the model and the BPF reader loaded once,
 * taken again and again, each one stored in SQLite. Prints the medians of
 * capture, decode and store over the runs, and checks that every goroutine,
 * stack and variable reached the store. pprof's goroutine?debug=2 of the same
 * process is timed in the same runs, for the ratio.
 *
 * GLIMPSE_SPEED_GOROUTINES=N and GLIMPSE_SPEED_RUNS=N change the size and count;
 * GLIMPSE_SPEED_SQL runs SQL on the new store first (e.g. DROP INDEX x, to price it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fixture_path.h"
#include "gobin.h"
#include "reader.h"
#include "snapshot.h"
#include "store.h"

static pid_t child;
static char http[64]; /* the child's pprof server, host:port */

static int64_t clock_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && atoi(v) > 0 ? atoi(v) : def;
}

/* Starts path with n parked workers; returns once it printed its ready line. */
static pid_t start(const char *path, int n)
{
	char out[512], count[16];
	size_t len = 0;
	int fds[2];
	pid_t pid;

	snprintf(count, sizeof(count), "%d", n);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(path, path, "-goroutines", count, (char *)NULL);
		_exit(127);
	}
	child = pid;
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = {fds[0], POLLIN, 0};
		ssize_t r;

		if (poll(&pfd, 1, 60000) <= 0)
			fail_msg("%s did not print its ready line within 60 s", path);
		r = read(fds[0], out + len, sizeof(out) - 1 - len);
		if (r <= 0)
			fail_msg("%s exited before it was ready", path);
		len += (size_t)r;
		out[len] = '\0';
		if (strstr(out, "ready pid=") && strchr(strstr(out, "ready pid="), '\n'))
			break;
	}
	if (sscanf(strstr(out, "ready pid="), "ready pid=%*d http=%63s", http) != 1)
		fail_msg("%s: unexpected ready line: %s", path, out);
	close(fds[0]);
	return pid;
}

/* Wall time of GET path from the child's pprof server (HTTP/1.0 to 127.0.0.1),
 * body included; fails the test on an error status. */
static int64_t pprof_us(const char *path)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[256], chunk[1 << 16];
	struct buf resp = {0};
	int64_t t0 = now_us(), t;
	int fd, status = -1;
	ssize_t n;

	sa.sin_port = htons((uint16_t)atoi(strrchr(http, ':') + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, http);
	assert_int_equal(write(fd, req, (size_t)n), n);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&resp, chunk, (size_t)n);
	close(fd);
	t = now_us() - t0;
	if (sscanf(buf_str(&resp), "HTTP/%*s %d", &status) != 1 || status != 200)
		fail_msg("GET %s: status %d", path, status);
	buf_free(&resp);
	return t;
}

static int stop_child(void **state)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = 0;
	}
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double median_ms(int64_t *us, int n)
{
	qsort(us, (size_t)n, sizeof(*us), cmp_i64);
	return (n % 2 ? (double)us[n / 2] : (us[n / 2 - 1] + us[n / 2]) / 2.0) / 1000.0;
}

static int64_t count_rows(struct store *st, const char *sql, int64_t snap)
{
	int64_t n = -1;

	assert_int_equal(store_run(st, sql, &n, "i", snap), 0);
	return n;
}

/* Runs the warm path `runs` times with or without variables and prints medians. */
static void measure(bool vars)
{
	const char *path = fixture("1.23", "");
	int n = env_int("GLIMPSE_SPEED_GOROUTINES", 10000), runs = env_int("GLIMPSE_SPEED_RUNS", 10);
	char db[] = "/tmp/glimpse-speed-XXXXXX";
	int64_t capture[64], decode[64], store[64], total[64], store_cpu[64], pprof[64];
	struct gobin *bin;
	struct reader_bpf *r;
	struct store *st;
	struct snapshot_opts o;
	uint64_t bias;
	size_t nvars = 0;
	pid_t pid;
	int fd, rc;

	if (!path)
		skip();
	runs = runs > 64 ? 64 : runs;
	assert_int_equal(gobin_open(path, &bin), 0);
	pid = start(path, n);
	assert_int_equal(gobin_bias(bin, pid, &bias), 0);
	rc = reader_bpf_open_for(pid, &bin->offsets, bias, NULL, &r);
	if (rc)
		fail_msg("reader_bpf_open_for: %s", err_msg(rc));
	fd = mkstemp(db);
	assert_true(fd >= 0);
	close(fd);
	unlink(db);
	assert_int_equal(store_open(db, &st), 0);
	if (getenv("GLIMPSE_SPEED_SQL")) /* an experiment on the store, e.g. DROP INDEX ... */
		assert_int_equal(sqlite3_exec(store_db(st), getenv("GLIMPSE_SPEED_SQL"), NULL, NULL, NULL), SQLITE_OK);
	snapshot_opts_default(&o);
	o.vars = vars;
	o.bpf = r;
	o.reader = READ_BPF;
	for (int i = 0; i < runs; i++) {
		struct snapshot s;
		int64_t t0 = now_us(), t1;

		rc = snapshot_take(bin, pid, &o, &s);
		if (rc)
			fail_msg("snapshot_take: %s", err_msg(rc));
		t1 = now_us();
		store_cpu[i] = clock_us(CLOCK_THREAD_CPUTIME_ID);
		assert_true(s.n >= (size_t)n);
		assert_string_equal(s.reader, "bpf");
		rc = snapshot_store(st, &s);
		if (rc)
			fail_msg("snapshot_store: %s", err_msg(rc));
		store[i] = now_us() - t1;
		store_cpu[i] = clock_us(CLOCK_THREAD_CPUTIME_ID) - store_cpu[i];
		total[i] = now_us() - t0;
		capture[i] = s.duration_us;
		decode[i] = s.decode_us;
		/* Every goroutine, its stack and its variables are in the store. */
		nvars = 0;
		for (size_t g = 0; g < s.n; g++)
			for (int f = 0; f < s.gs[g].nframes; f++)
				nvars += (size_t)s.gs[g].frames[f].nvars;
		assert_int_equal(count_rows(st, "SELECT count(*) FROM goroutines WHERE snapshot = ?", s.id), s.n);
		assert_int_equal(count_rows(st, "SELECT count(*) FROM goroutines WHERE snapshot = ? AND stack_id IS NULL"
						" AND stack_note IS NULL", s.id), 0);
		assert_int_equal(count_rows(st, "SELECT count(*) FROM variables WHERE snapshot = ?", s.id), nvars);
		if (vars)
			assert_true(nvars >= (size_t)n);
		else
			assert_int_equal(nvars, 0);
		snapshot_free(&s);
		pprof[i] = pprof_us("/debug/pprof/goroutine?debug=2");
	}
	printf("# go1.23 %d goroutines, %s, %d runs (medians): capture %.1f ms, decode %.1f ms, store %.1f ms"
	       " (%.1f ms CPU), total %.1f ms = %.2fx pprof's goroutine?debug=2 (%.1f ms); %zu variables\n",
	       n, vars ? "with variables" : "without variables", runs, median_ms(capture, runs),
	       median_ms(decode, runs), median_ms(store, runs), median_ms(store_cpu, runs), median_ms(total, runs),
	       median_ms(total, runs) / median_ms(pprof, runs), median_ms(pprof, runs), nvars);
	store_close(st);
	unlink(db);
	reader_bpf_close(r);
	gobin_close(bin);
}

static void test_warm_snapshot_of_10k_goroutines_with_variables(void **state)
{
	measure(true);
}

static void test_warm_snapshot_of_10k_goroutines_without_variables(void **state)
{
	measure(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_warm_snapshot_of_10k_goroutines_with_variables, stop_child),
		cmocka_unit_test_teardown(test_warm_snapshot_of_10k_goroutines_without_variables, stop_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
