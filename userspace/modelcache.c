/* modelcache.c - the server's binary models: one per executable file, opened
 * on first use, shared by reference count, dropped least recently used first
 * when over a byte bound, and reloaded when the file a process runs changes.
 *
 * One mutex guards the lists and counters; models are opened outside it (a
 * placeholder entry makes concurrent gets of the same file wait for the one
 * load instead of repeating it).
 */
#include "modelcache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "err.h"
#include "gobin.h"
#include "pclntab.h"

struct entry {
	struct entry *next;
	struct gobin *bin;	/* NULL while loading */
	dev_t dev;		/* identity of the executable file */
	ino_t ino;
	struct timespec mtime;
	off_t size;
	size_t bytes;		/* gobin_footprint, counted in the cache's bytes */
	unsigned int refs;	/* holders, the loader included */
	uint64_t used;		/* tick of the last get: least recently used goes first */
	bool loading;
};

struct modelcache {
	pthread_mutex_t lock;
	pthread_cond_t loaded;	/* signalled when a load finishes, well or not */
	struct entry *live;	/* findable by identity */
	struct entry *dropped;	/* replaced while held: freed at the last put */
	size_t max_bytes, bytes;
	uint64_t tick;
	uint64_t hits, misses, evictions, reloads;
};

struct modelcache *modelcache_new(size_t max_bytes)
{
	struct modelcache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->loaded, NULL);
	c->max_bytes = max_bytes;
	return c;
}

static void free_list(struct entry *e)
{
	while (e) {
		struct entry *next = e->next;

		gobin_close(e->bin);
		free(e);
		e = next;
	}
}

void modelcache_free(struct modelcache *c)
{
	if (!c)
		return;
	free_list(c->live);
	free_list(c->dropped);
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool same_file(const struct entry *e, const struct stat *st)
{
	return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
	       e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Removes e from the list at *head. */
static void unlink_entry(struct entry **head, const struct entry *e)
{
	for (struct entry **p = head; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			return;
		}
	}
}

/* Frees e, unlinked, and takes its bytes off the count. Lock held. */
static void destroy(struct modelcache *c, struct entry *e)
{
	c->bytes -= e->bytes;
	gobin_close(e->bin);
	free(e);
}

/* Drops models that nobody holds, least recently used first, until the count is
 * within the bound or none is left to drop. Lock held. */
static void evict_over_bound(struct modelcache *c)
{
	while (c->bytes > c->max_bytes) {
		struct entry *victim = NULL;

		for (struct entry *e = c->live; e; e = e->next)
			if (!e->refs && !e->loading && (!victim || e->used < victim->used))
				victim = e;
		if (!victim)
			return;
		unlink_entry(&c->live, victim);
		destroy(c, victim);
		c->evictions++;
	}
}

/* Drops the models of an older version of the file st describes (same device
 * and inode, another mtime or size: rewritten in place). Lock held. */
static void drop_changed(struct modelcache *c, const struct stat *st)
{
	struct entry *e = c->live, *next;

	for (; e; e = next) {
		next = e->next;
		if (e->loading || e->dev != st->st_dev || e->ino != st->st_ino || same_file(e, st))
			continue;
		unlink_entry(&c->live, e);
		c->reloads++;
		if (e->refs) {
			e->next = c->dropped;
			c->dropped = e;
		} else {
			destroy(c, e);
		}
	}
}

/* Opens the model of pid's executable (lock not held) and builds its lazy
 * indexes now, so that holders only ever read it. */
static int load(pid_t pid, struct gobin **out)
{
	int rc = gobin_open_pid(pid, out);

	if (!rc)
		pcln_lookup((*out)->pcln, "runtime.main"); /* builds the name index now */
	return rc;
}

int modelcache_get(struct modelcache *c, pid_t pid, const struct gobin **out)
{
	char exe[64];
	struct stat st;
	struct entry *e;
	struct gobin *bin = NULL;
	int rc;

	*out = NULL;
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	if (stat(exe, &st) != 0) {
		if (errno == ENOENT || errno == ESRCH)
			return err_set(ESRCH, "no process with pid %d", (int)pid);
		return err_set(errno, "cannot read %s: %s", exe, strerror(errno));
	}
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (e = c->live; e && !same_file(e, &st); e = e->next)
			;
		if (!e || !e->loading)
			break;
		pthread_cond_wait(&c->loaded, &c->lock);
	}
	if (e) {
		e->refs++;
		e->used = ++c->tick;
		c->hits++;
		pthread_mutex_unlock(&c->lock);
		*out = e->bin;
		return 0;
	}
	drop_changed(c, &st);
	c->misses++;
	e = xcalloc(1, sizeof(*e));
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->mtime = st.st_mtim;
	e->size = st.st_size;
	e->refs = 1;
	e->loading = true;
	e->next = c->live;
	c->live = e;
	pthread_mutex_unlock(&c->lock);

	rc = load(pid, &bin);

	pthread_mutex_lock(&c->lock);
	if (rc) {
		unlink_entry(&c->live, e);
		free(e);
	} else {
		e->bin = bin;
		e->bytes = gobin_footprint(bin);
		e->loading = false;
		e->used = ++c->tick;
		c->bytes += e->bytes;
		evict_over_bound(c);
		*out = bin;
	}
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void modelcache_put(struct modelcache *c, const struct gobin *bin)
{
	struct entry *e;

	if (!bin)
		return;
	pthread_mutex_lock(&c->lock);
	for (e = c->live; e && e->bin != bin; e = e->next)
		;
	if (e) {
		if (e->refs)
			e->refs--;
		evict_over_bound(c);
	} else {
		for (e = c->dropped; e && e->bin != bin; e = e->next)
			;
		if (e && e->refs && !--e->refs) {
			unlink_entry(&c->dropped, e);
			destroy(c, e);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void modelcache_stats(struct modelcache *c, struct modelcache_stats *out)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (const struct entry *e = c->live; e; e = e->next)
		n += !e->loading;
	for (const struct entry *e = c->dropped; e; e = e->next)
		n++;
	*out = (struct modelcache_stats){ .hits = c->hits, .misses = c->misses, .evictions = c->evictions,
					  .reloads = c->reloads, .bytes = c->bytes, .models = n,
					  .max_bytes = c->max_bytes };
	pthread_mutex_unlock(&c->lock);
}
