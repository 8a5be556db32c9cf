/* procs.c - lists the Go processes of this host from /proc.
 *
 * Most processes are not Go, and most Go processes share their executable
 * with others, so what an executable is gets decided once: by gobin_peek()
 * (a few small reads of its headers, never the whole binary model) and kept
 * in a cache keyed by the executable's device, inode, mtime and size, which
 * stat() of /proc/PID/exe gives without opening it. A listing then costs one
 * stat per process, and a readlink and three small /proc reads (comm, status,
 * cgroup) per Go process. The cache is shared by every thread, behind a mutex
 * held only to look up and insert (never while reading a file).
 */
#include "procs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "gobin.h"
#include "json.h"

/* What an executable is, by the stat of its file. */
struct exe_entry {
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
	bool used;
	bool go; /* a Go executable (supported or not): id is filled */
	struct gobin_id id;
};

#define CACHE_SLOTS 4096 /* a power of two; emptied when half full */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct exe_entry *cache; /* CACHE_SLOTS of them, open addressing */
static size_t cache_used;

static size_t slot_of(const struct stat *st)
{
	uint64_t h = 1469598103934665603ull;
	const uint64_t v[] = {st->st_dev, st->st_ino, (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec,
			      (uint64_t)st->st_size};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		h = (h ^ v[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29)) & (CACHE_SLOTS - 1);
}

static bool same_file(const struct exe_entry *e, const struct stat *st)
{
	return e->dev == st->st_dev && e->ino == st->st_ino && e->mtime.tv_sec == st->st_mtim.tv_sec &&
	       e->mtime.tv_nsec == st->st_mtim.tv_nsec && e->size == st->st_size;
}

/* Copies the cache's entry for st into *e; false when there is none. */
static bool cache_get(const struct stat *st, struct exe_entry *e)
{
	bool found = false;

	pthread_mutex_lock(&cache_lock);
	for (size_t i = slot_of(st); cache && cache[i].used; i = (i + 1) & (CACHE_SLOTS - 1)) {
		if (same_file(&cache[i], st)) {
			*e = cache[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return found;
}

/* Remembers e (keyed by its own stat fields). */
static void cache_put(const struct exe_entry *e, const struct stat *st)
{
	size_t i;

	pthread_mutex_lock(&cache_lock);
	if (!cache)
		cache = xcalloc(CACHE_SLOTS, sizeof(*cache));
	if (cache_used >= CACHE_SLOTS / 2) {
		memset(cache, 0, CACHE_SLOTS * sizeof(*cache));
		cache_used = 0;
	}
	for (i = slot_of(st); cache[i].used; i = (i + 1) & (CACHE_SLOTS - 1))
		if (same_file(&cache[i], st))
			break;
	cache_used += !cache[i].used;
	cache[i] = *e;
	pthread_mutex_unlock(&cache_lock);
}

/* What the executable of pid (whose stat is st) is: from the cache, else read
 * and remembered. False when it cannot be read (no permission, gone). */
static bool exe_of(pid_t pid, const struct stat *st, struct exe_entry *e)
{
	char path[64];
	int fd, rc;

	if (cache_get(st, e))
		return true;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	memset(e, 0, sizeof(*e));
	rc = gobin_peek(fd, path, &e->id);
	close(fd);
	err_clear();
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->mtime = st->st_mtim;
	e->size = st->st_size;
	e->used = true;
	e->go = rc == 0 || rc == -GLIMPSE_EUNSUP;
	cache_put(e, st);
	return true;
}

/* Reads /proc/PID/NAME into dst (cap bytes, NUL-terminated); its length, or
 * -1 when it cannot be read. */
static ssize_t read_proc(pid_t pid, const char *name, char *dst, size_t cap)
{
	char path[64];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, dst, cap - 1);
	close(fd);
	if (len < 0)
		return -1;
	dst[len] = '\0';
	return len;
}

/* The last field of the NSpid line of a status text: the pid in the innermost
 * namespace; 0 when there is no such line. */
static pid_t innermost_pid(const char *status)
{
	const char *p = strstr(status, "\nNSpid:");
	char *end;
	long v = 0;

	if (!p)
		return 0;
	for (p += 7;; p = end) {
		long x = strtol(p, &end, 10);

		if (end == p)
			break;
		v = x;
	}
	return (pid_t)v;
}

/* The cgroup v2 path from a /proc/PID/cgroup text (its "0::" line), or "". */
static char *cgroup_path(const char *text)
{
	const char *p = !strncmp(text, "0::", 3) ? text : strstr(text, "\n0::");

	if (!p)
		return xstrdup("");
	p += *p == '\n' ? 4 : 3;
	return xstrndup(p, strcspn(p, "\n"));
}

/* Fills g for pid, a Go process whose executable is e; false when it went away. */
static bool describe(pid_t pid, const struct exe_entry *e, const struct stat *self_ns, struct go_proc *g)
{
	char path[64], exe[4096], text[4096];
	struct stat ns;
	ssize_t n;

	memset(g, 0, sizeof(*g));
	g->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0 || read_proc(pid, "comm", g->comm, sizeof(g->comm)) < 0)
		return false;
	exe[n] = '\0';
	g->comm[strcspn(g->comm, "\n")] = '\0';
	if (read_proc(pid, "status", text, sizeof(text)) < 0)
		return false;
	g->ns_pid = innermost_pid(text);
	if (!g->ns_pid)
		g->ns_pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	g->other_ns = !stat(path, &ns) && self_ns && (ns.st_ino != self_ns->st_ino || ns.st_dev != self_ns->st_dev);
	if (read_proc(pid, "cgroup", text, sizeof(text)) < 0)
		return false;
	g->exe = xstrdup(exe);
	g->cgroup = cgroup_path(text);
	snprintf(g->go_version, sizeof(g->go_version), "%s", e->id.go_version);
	snprintf(g->build_id, sizeof(g->build_id), "%s", e->id.build_id);
	g->stripped = e->id.stripped;
	g->pie = e->id.pie;
	return true;
}

static int cmp_pid(const void *a, const void *b)
{
	const struct go_proc *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

int procs_list(struct go_proc **out, size_t *n)
{
	struct buf list = {0};
	struct stat self_ns;
	bool have_self;
	struct dirent *de;
	DIR *dir;

	*out = NULL;
	*n = 0;
	dir = opendir("/proc");
	if (!dir)
		return err_set(errno, "cannot read /proc: %s", strerror(errno));
	have_self = !stat("/proc/self/ns/pid", &self_ns);
	while ((de = readdir(dir)) != NULL) {
		struct exe_entry e;
		struct go_proc g;
		struct stat st;
		char path[64];
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (pid <= 0 || *end)
			continue;
		/* Kernel threads have no executable; others may be out of reach. */
		snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (!exe_of((pid_t)pid, &st, &e) || !e.go)
			continue;
		if (describe((pid_t)pid, &e, have_self ? &self_ns : NULL, &g))
			buf_add(&list, &g, sizeof(g));
	}
	closedir(dir);
	*n = list.len / sizeof(struct go_proc);
	*out = (struct go_proc *)buf_detach(&list);
	qsort(*out, *n, sizeof(**out), cmp_pid);
	return 0;
}

void procs_free(struct go_proc *procs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(procs[i].exe);
		free(procs[i].cgroup);
	}
	free(procs);
}

void procs_json(const struct go_proc *procs, size_t n, struct buf *out)
{
	struct json j;

	json_init(&j, out);
	json_arr(&j);
	for (size_t i = 0; i < n; i++) {
		const struct go_proc *g = &procs[i];

		json_obj(&j);
		json_kv_int(&j, "pid", g->pid);
		json_kv_int(&j, "ns_pid", g->ns_pid);
		json_kv_bool(&j, "other_ns", g->other_ns);
		json_kv_str(&j, "command", g->comm);
		json_kv_str(&j, "exe", g->exe);
		json_kv_str(&j, "go_version", g->go_version);
		json_kv_str(&j, "build_id", g->build_id);
		json_kv_bool(&j, "stripped", g->stripped);
		json_kv_bool(&j, "pie", g->pie);
		json_kv_str(&j, "cgroup", g->cgroup);
		json_end(&j);
	}
	json_end(&j);
}
