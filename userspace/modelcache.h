/* modelcache.h - binary models of running processes' executables, opened once
 * and shared, for the long-running server.
 *
 * A model is keyed by the identity of the file the process runs (device, inode,
 * mtime and size of /proc/PID/exe): a binary rebuilt at the same path is a new
 * file and gets a new model, while every process of one executable shares one.
 * The cache is bounded in bytes (each model counts its mapped file plus an
 * estimate of its own allocations, gobin_footprint) and drops the least
 * recently used models that nobody holds when over the bound. It is
 * thread-safe; a model handed out stays valid until it is given back with
 * modelcache_put, even if it is evicted or replaced meanwhile.
 */
#ifndef GLIMPSE_MODELCACHE_H
#define GLIMPSE_MODELCACHE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gobin;
struct modelcache;

struct modelcache_stats {
	uint64_t hits;		/* gets served by a model already open */
	uint64_t misses;	/* gets that opened a model (successfully or not) */
	uint64_t evictions;	/* models dropped to stay within the bound */
	uint64_t reloads;	/* models dropped because their file changed */
	size_t bytes;		/* what the models held now count (see gobin_footprint) */
	size_t models;		/* models held now, in use or not */
	size_t max_bytes;	/* the bound given at creation */
};

/* A cache that keeps at most max_bytes of models it can drop (models in use are
 * never dropped, so it can go over while they are held). Never NULL. */
struct modelcache *modelcache_new(size_t max_bytes);
/* Frees the cache and every model in it. No model may still be held. */
void modelcache_free(struct modelcache *c);

/* Sets *out to the model of pid's executable, opening it if no model of that
 * file is cached (gobin_open_pid; concurrent gets of one file open it once).
 * The caller holds it until modelcache_put. Returns 0 or a negative code with
 * err_msg() saying why (ESRCH: no such process; not a Go binary, ...). */
int modelcache_get(struct modelcache *c, pid_t pid, const struct gobin **out);
/* Gives back a model from modelcache_get. */
void modelcache_put(struct modelcache *c, const struct gobin *bin);
/* Counters and sizes, for /metrics. */
void modelcache_stats(struct modelcache *c, struct modelcache_stats *out);

#endif
