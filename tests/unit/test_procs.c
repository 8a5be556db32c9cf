/* test_procs.c - the Go process listing (procs.c): gobin_peek() must tell
 * what gobin_open() tells of every fixture from a few small reads, and a
 * listing must find a live fixture, be cheap once its executables are known,
 * and give the same answer to threads listing at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "gobin.h"
#include "procs.h"

#include "fixtures.h"

static int peek_path(const char *path, struct gobin_id *id)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	assert_true(fd >= 0);
	rc = gobin_peek(fd, path, id);
	close(fd);
	return rc;
}

static void test_peek_tells_what_the_model_tells_of_every_fixture(void **state)
{
	struct gobin_id id;
	int checked = 0;

	for (int v = 0; v < NVERSIONS; v++) {
		for (int fl = 0; fl < NFLAVOURS; fl++) {
			char path[512];
			struct gobin *bin;

			snprintf(path, sizeof(path), "%s/go1.%d/%s", fixture_dir(), versions[v], flavours[fl]);
			if (access(path, R_OK))
				continue;
			assert_int_equal(gobin_open(path, &bin), 0);
			assert_int_equal(peek_path(path, &id), 0);
			assert_string_equal(id.go_version, bin->go_version);
			assert_string_equal(id.build_id, bin->build_id);
			assert_true(id.build_id[0]);
			assert_int_equal(id.pie, bin->pie);
			assert_int_equal(id.stripped, bin->stripped);
			gobin_close(bin);
			checked++;
		}
	}
	printf("gobin_peek agrees with gobin_open on %d fixtures\n", checked);
	assert_true(checked >= 3);
	assert_int_equal(peek_path("/bin/sleep", &id), -GLIMPSE_ENOTGO);
	assert_int_equal(peek_path("/etc/passwd", &id), -GLIMPSE_ENOTGO);
}

/* Starts path and waits for its ready line; returns its pid. */
static pid_t start(const char *path)
{
	int fds[2];
	char line[256];
	struct pollfd pfd;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(path, path, "-goroutines", "2", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	pfd = (struct pollfd){fds[0], POLLIN, 0};
	assert_int_equal(poll(&pfd, 1, 20000), 1);
	n = read(fds[0], line, sizeof(line) - 1);
	close(fds[0]);
	assert_true(n > 0 && !strncmp(line, "ready", 5));
	return pid;
}

static const struct go_proc *find(const struct go_proc *procs, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (procs[i].pid == pid)
			return &procs[i];
	return NULL;
}

#define THREADS	 4
#define LISTINGS 20

struct lister {
	pthread_t thread;
	pid_t want;
	int found;
};

static void *list_many(void *arg)
{
	struct lister *l = arg;

	for (int i = 0; i < LISTINGS; i++) {
		struct go_proc *procs;
		size_t n;

		if (procs_list(&procs, &n))
			continue;
		l->found += find(procs, n, l->want) != NULL;
		procs_free(procs, n);
	}
	return NULL;
}

static void test_procs_list_finds_a_fixture_cheaply_from_many_threads(void **state)
{
	const char *path = fixture("1.23", ".pie");
	struct lister threads[THREADS];
	struct go_proc *procs;
	const struct go_proc *g;
	struct buf json = {0};
	double t0, cold, warm;
	size_t n;
	pid_t pid;

	if (!path)
		skip();
	pid = start(path);
	t0 = now_ms();
	assert_int_equal(procs_list(&procs, &n), 0);
	cold = now_ms() - t0;
	g = find(procs, n, pid);
	assert_non_null(g);
	assert_true(g->pie && !g->stripped && !g->other_ns);
	assert_int_equal(g->ns_pid, pid);
	assert_memory_equal(g->go_version, "go1.23", 6);
	procs_json(procs, n, &json);
	assert_non_null(strstr(buf_str(&json), "\"pie\":true"));
	buf_free(&json);
	procs_free(procs, n);
	t0 = now_ms();
	for (int i = 0; i < 10; i++) {
		assert_int_equal(procs_list(&procs, &n), 0);
		procs_free(procs, n);
	}
	warm = (now_ms() - t0) / 10;
	for (int i = 0; i < THREADS; i++) {
		threads[i] = (struct lister){.want = pid};
		assert_int_equal(pthread_create(&threads[i].thread, NULL, list_many, &threads[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i].thread, NULL);
		assert_int_equal(threads[i].found, LISTINGS);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("procs_list: %.2f ms the first time, %.2f ms after (executables known), "
	       "%d threads x %d listings agreed\n",
	       cold, warm, THREADS, LISTINGS);
	assert_true(warm < 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peek_tells_what_the_model_tells_of_every_fixture),
		cmocka_unit_test(test_procs_list_finds_a_fixture_cheaply_from_many_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
