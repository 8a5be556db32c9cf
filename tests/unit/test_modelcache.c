/* test_modelcache.c - the server's model cache against real Go processes: a
 * second process of the same executable is a hit, the least recently used
 * model goes first when over the bound, a model in use is never freed, a
 * binary replaced or rewritten at the same path gets a new model, and threads
 * getting models at once open each file once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fixture_path.h"
#include "gobin.h"
#include "modelcache.h"
#include "pclntab.h"

#define MAXCHILDREN 8
static pid_t children[MAXCHILDREN];

/* Path of the plain target fixture of go<version>; skips the test when that
 * Go version is not installed. Returns a copy to free. */
static char *target_of(const char *version)
{
	const char *p = fixture(version, "");

	if (!p)
		skip();
	return strdup(p);
}

/* Starts the Go program at path with one parked worker and returns its pid once
 * it has printed its ready line (so /proc/PID/exe is the program). */
static pid_t start(const char *path)
{
	char out[512];
	size_t len = 0;
	int fds[2];
	pid_t pid;
	size_t slot;

	for (slot = 0; slot < MAXCHILDREN && children[slot]; slot++)
		;
	assert_true(slot < MAXCHILDREN);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(path, path, "-goroutines", "1", (char *)NULL);
		_exit(127);
	}
	children[slot] = pid;
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = {fds[0], POLLIN, 0};
		ssize_t n;

		if (poll(&pfd, 1, 20000) <= 0)
			fail_msg("%s did not print its ready line within 20 s", path);
		n = read(fds[0], out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			fail_msg("%s exited before it was ready", path);
		len += (size_t)n;
		out[len] = '\0';
		if (strstr(out, "ready pid=") && strchr(strstr(out, "ready pid="), '\n'))
			break;
	}
	close(fds[0]);
	return pid;
}

static void stop(pid_t pid)
{
	for (size_t i = 0; i < MAXCHILDREN; i++) {
		if (children[i] == pid) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			children[i] = 0;
		}
	}
}

static int stop_all(void **state)
{
	for (size_t i = 0; i < MAXCHILDREN; i++)
		if (children[i])
			stop(children[i]);
	return 0;
}

/* What a model of path counts in the cache. */
static size_t footprint_of(const char *path)
{
	struct gobin *bin;
	size_t n;

	assert_int_equal(gobin_open(path, &bin), 0);
	pcln_lookup(bin->pcln, "runtime.main"); /* the cache builds the name index too */
	n = gobin_footprint(bin);
	gobin_close(bin);
	return n;
}

static void copy_file(const char *from, const char *to, int flags)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | flags, 0755);
	ssize_t n;

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	assert_int_equal(close(out), 0);
}

static void test_second_process_of_one_executable_is_a_hit(void **state)
{
	char *path = target_of("1.23");
	struct modelcache *c = modelcache_new((size_t)1 << 30);
	const struct gobin *a, *b;
	struct modelcache_stats s;
	pid_t p1 = start(path), p2 = start(path);

	assert_int_equal(modelcache_get(c, p1, &a), 0);
	assert_int_equal(a->go_minor, 23);
	assert_int_equal(modelcache_get(c, p2, &b), 0);
	assert_ptr_equal(a, b);
	modelcache_stats(c, &s);
	assert_int_equal(s.misses, 1);
	assert_int_equal(s.hits, 1);
	assert_int_equal(s.models, 1);
	assert_int_equal(s.bytes, footprint_of(path));
	assert_true(s.bytes > (size_t)1 << 20);
	printf("# go1.23 target: model counts %.1f MiB\n", s.bytes / 1048576.0);
	modelcache_put(c, a);
	modelcache_put(c, b);
	modelcache_free(c);
	free(path);
}

static void test_least_recently_used_model_goes_first(void **state)
{
	char *pa = target_of("1.21"), *pb = target_of("1.22"), *pc = target_of("1.23");
	size_t fa = footprint_of(pa), fb = footprint_of(pb), fc = footprint_of(pc);
	struct modelcache *c = modelcache_new(fa + fb + fc - 1); /* room for two of the three */
	pid_t a = start(pa), b = start(pb), cc = start(pc);
	const struct gobin *m, *ma;
	struct modelcache_stats s;

	assert_int_equal(modelcache_get(c, a, &ma), 0);
	modelcache_put(c, ma);
	assert_int_equal(modelcache_get(c, b, &m), 0);
	modelcache_put(c, m);
	assert_int_equal(modelcache_get(c, a, &m), 0); /* a is now more recent than b */
	assert_ptr_equal(m, ma);
	modelcache_put(c, m);
	assert_int_equal(modelcache_get(c, cc, &m), 0); /* over the bound: b goes */
	modelcache_put(c, m);
	modelcache_stats(c, &s);
	assert_int_equal(s.evictions, 1);
	assert_int_equal(s.models, 2);
	assert_int_equal(s.bytes, fa + fc);
	assert_int_equal(modelcache_get(c, a, &m), 0); /* still there */
	assert_ptr_equal(m, ma);
	modelcache_put(c, m);
	modelcache_stats(c, &s);
	assert_int_equal(s.hits, 2);
	assert_int_equal(s.misses, 3);
	assert_int_equal(modelcache_get(c, b, &m), 0); /* gone: opened again, c (least recent) goes */
	assert_int_equal(m->go_minor, 22);
	modelcache_put(c, m);
	modelcache_stats(c, &s);
	assert_int_equal(s.misses, 4);
	assert_int_equal(s.evictions, 2);
	assert_int_equal(s.bytes, fa + fb);
	modelcache_free(c);
	free(pa);
	free(pb);
	free(pc);
}

static void test_model_in_use_is_not_freed_when_over_the_bound(void **state)
{
	char *pa = target_of("1.21"), *pb = target_of("1.22");
	struct modelcache *c = modelcache_new(1); /* every model is over the bound */
	pid_t a = start(pa), b = start(pb);
	const struct gobin *ma, *mb;
	struct modelcache_stats s;

	assert_int_equal(modelcache_get(c, a, &ma), 0);
	assert_int_equal(modelcache_get(c, b, &mb), 0);
	modelcache_stats(c, &s);
	assert_int_equal(s.evictions, 0);
	assert_int_equal(s.models, 2);
	assert_int_equal(strncmp(ma->go_version, "go1.21", 6), 0); /* held: still readable */
	assert_int_equal(ma->go_minor, 21);
	modelcache_put(c, ma);
	modelcache_stats(c, &s);
	assert_int_equal(s.evictions, 1);
	assert_int_equal(s.models, 1);
	assert_int_equal(mb->go_minor, 22);
	modelcache_put(c, mb);
	modelcache_stats(c, &s);
	assert_int_equal(s.evictions, 2);
	assert_int_equal(s.models, 0);
	assert_int_equal(s.bytes, 0);
	modelcache_free(c);
	free(pa);
	free(pb);
}

static void test_replaced_or_rewritten_binary_gets_a_new_model(void **state)
{
	char *p22 = target_of("1.22"), *p23 = target_of("1.23"), *p21 = target_of("1.21");
	char dir[] = "/tmp/glimpse-modelcache-XXXXXX", path[128], tmp[160];
	struct modelcache *c = modelcache_new((size_t)1 << 30);
	const struct gobin *m1, *m2, *m3, *m;
	struct modelcache_stats s;
	pid_t p1, p2, p3;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/service", dir);
	snprintf(tmp, sizeof(tmp), "%s/service.new", dir);
	copy_file(p22, path, O_TRUNC);
	p1 = start(path);
	assert_int_equal(modelcache_get(c, p1, &m1), 0);
	assert_int_equal(m1->go_minor, 22);

	/* A new build renamed over the old one (a new inode): a new model, while
	 * the process still running the old file keeps its own. */
	copy_file(p23, tmp, O_TRUNC);
	assert_int_equal(rename(tmp, path), 0);
	p2 = start(path);
	assert_int_equal(modelcache_get(c, p2, &m2), 0);
	assert_int_equal(m2->go_minor, 23);
	assert_ptr_not_equal(m1, m2);
	assert_int_equal(modelcache_get(c, p1, &m), 0);
	assert_ptr_equal(m, m1);
	modelcache_put(c, m);

	/* The same file rewritten in place (same inode, new size and mtime): the
	 * old model is dropped, but only once its holder gives it back. */
	stop(p2);
	copy_file(p21, path, O_TRUNC);
	p3 = start(path);
	assert_int_equal(modelcache_get(c, p3, &m3), 0);
	assert_int_equal(m3->go_minor, 21);
	modelcache_stats(c, &s);
	assert_int_equal(s.reloads, 1);
	assert_int_equal(s.misses, 3);
	assert_int_equal(s.models, 3); /* m2 is dropped but still held */
	assert_int_equal(m2->go_minor, 23);
	modelcache_put(c, m2);
	modelcache_stats(c, &s);
	assert_int_equal(s.models, 2);
	modelcache_put(c, m1);
	modelcache_put(c, m3);
	modelcache_free(c);
	stop(p1);
	stop(p3);
	unlink(path);
	rmdir(dir);
	free(p21);
	free(p22);
	free(p23);
}

static void test_missing_process_and_non_go_executable_are_errors(void **state)
{
	struct modelcache *c = modelcache_new((size_t)1 << 30);
	const struct gobin *m = (const struct gobin *)1;
	struct modelcache_stats s;
	pid_t dead = fork();

	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	assert_int_equal(modelcache_get(c, dead, &m), -ESRCH);
	assert_null(m);
	assert_true(modelcache_get(c, getpid(), &m) < 0); /* this test is C, not Go */
	assert_non_null(strstr(err_msg(-1), "not a Go binary"));
	modelcache_stats(c, &s);
	assert_int_equal(s.models, 0);
	assert_int_equal(s.bytes, 0);
	modelcache_free(c);
}

struct getter {
	struct modelcache *c;
	pid_t pids[2];
	const struct gobin *seen[2];
	int mismatches;
};

#define THREADS 8
#define ROUNDS 200

static void *get_many(void *arg)
{
	struct getter *g = arg;

	for (int i = 0; i < ROUNDS; i++) {
		const struct gobin *m;
		int k = i & 1;

		if (modelcache_get(g->c, g->pids[k], &m) != 0) {
			g->mismatches++;
			continue;
		}
		if (!g->seen[k])
			g->seen[k] = m;
		g->mismatches += g->seen[k] != m || m->go_minor != (k ? 23 : 22);
		modelcache_put(g->c, m);
	}
	return NULL;
}

static void test_concurrent_gets_open_each_executable_once(void **state)
{
	char *pa = target_of("1.22"), *pb = target_of("1.23");
	struct modelcache *c = modelcache_new((size_t)1 << 30);
	struct getter g[THREADS];
	pthread_t t[THREADS];
	struct modelcache_stats s;
	pid_t a = start(pa), b = start(pb);

	for (int i = 0; i < THREADS; i++) {
		g[i] = (struct getter){ .c = c, .pids = { a, b } };
		assert_int_equal(pthread_create(&t[i], NULL, get_many, &g[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(g[i].mismatches, 0);
		assert_ptr_equal(g[i].seen[0], g[0].seen[0]);
		assert_ptr_equal(g[i].seen[1], g[0].seen[1]);
	}
	modelcache_stats(c, &s);
	assert_int_equal(s.misses, 2);
	assert_int_equal(s.hits, THREADS * ROUNDS - 2);
	assert_int_equal(s.models, 2);
	modelcache_free(c);
	free(pa);
	free(pb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_second_process_of_one_executable_is_a_hit, stop_all),
		cmocka_unit_test_teardown(test_least_recently_used_model_goes_first, stop_all),
		cmocka_unit_test_teardown(test_model_in_use_is_not_freed_when_over_the_bound, stop_all),
		cmocka_unit_test_teardown(test_replaced_or_rewritten_binary_gets_a_new_model, stop_all),
		cmocka_unit_test_teardown(test_missing_process_and_non_go_executable_are_errors, stop_all),
		cmocka_unit_test_teardown(test_concurrent_gets_open_each_executable_once, stop_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
