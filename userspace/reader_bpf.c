/* reader_bpf.c - the BPF goroutine reader: loads bpf/snapshot.bpf.c (a sleepable
 * task iterator), runs it over the target's threads, and takes its ring
 * buffer's records as struct raw_g (what it shares with the process_vm_readv
 * reader is in reader_common.c; reader.c chooses between them).
 *
 * allgs is walked in chunks, by one lane per CPU (two at most), each lane a
 * loaded copy of the program with its own ring, taking the next chunk as it
 * finishes one; chunks shrink as the walk goes (take_chunk()), so the lanes
 * end together. A chunk takes one iterator run or more: a run walks at most
 * CHUNK entries when another task waits for its CPU, RUN_MAX otherwise. Two
 * reasons for lanes and short runs: a run is kernel code nothing preempts (on
 * kernels built without preemption), so short runs let the target's threads
 * have a CPU between them whatever the lanes do; and a walk mostly waits on
 * cache misses, so two lanes take half the time. Small targets get one lane,
 * and so do large ones when the lanes would take every CPU for long (see
 * ALL_CPUS_UP_TO). A run also stops early, giving way, as soon as a task wakes
 * up on its CPU (see "Giving way" in snapshot.bpf.c); the lane then yields and
 * goes on where it stopped.
 *
 * Records stay where the walk wrote them: a lane drains its ring after every
 * run, while the records are in its CPU's cache, into raw_gs that point into
 * the ring (see reader.h), and copies them into the snapshot's memory only
 * when the ring is used up (ctl.ring_used counts what the walk wrote since).
 */
#include "reader_common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/types.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bpf/snapshot.h"
#include "bpf_log.h"
#include "buf.h"
#include "err.h"
#include "snapshot.skel.h"

/* Per lane. Creating, mapping and freeing a ring costs kernel time, ~0.4 ms
 * per 4 MiB here; 8 MiB hold 6k goroutines per lane without a drain mid-walk.
 * reader_bpf_open_for() sizes rings for the target, up to MAX_RING_BYTES: a
 * walk that fills its ring stops while userspace copies the records out (at
 * 100k goroutines on one lane, 120 ms with 8 MiB, 78 ms with 128 MiB). */
#define RING_BYTES     (8u << 20)
#define MAX_RING_BYTES (128u << 20)
#define MIN_RING_BYTES (2u << 20) /* holds the largest record (SNAP_STACK_MAX) */
#define MAX_RUNS       100000
#define MAX_LANES      2
/* allgs entries an iterator run walks at most when its CPU had other tasks
 * waiting at its start (they wait for the run): ~0.07 ms of kernel time on
 * this machine kind; the smallest chunk a lane takes, too. */
#define CHUNK 128
/* And when its CPU had none: a task that wakes up meanwhile makes the run give
 * way. Each run costs ~14 us (an iterator to create, read and close, allgs to
 * read again, a yield) and the drain after it reads its records from this
 * CPU's cache while they fit there (~0.7 MB at 512). */
#define RUN_MAX 512
/* Fewer goroutines than this get one lane (a second one costs a load). */
#define LANES_FROM 512
/* More than this get one lane when the lanes would take every CPU: for the
 * ~10 ms two lanes take over that many, the target's threads that wake up
 * find a CPU when a lane gives way; over 100k goroutines, with both CPUs of a
 * 2-CPU machine walking for 70 ms, its 1 ms ticker was late by 1-2 ms
 * (median) instead of 0.15 ms, as with one lane (125 ms). */
#define ALL_CPUS_UP_TO 16384

struct reader_bpf;

/* Where a snapshot's time went (GLIMPSE_READER_PROFILE=1), in ns. */
struct bpf_profile {
	uint64_t iter, drain;
};

/* One loaded copy of the walk, with its ring. */
struct lane {
	struct reader_bpf *r;
	struct snapshot_bpf *skel;
	struct ring_buffer *ring;
	const uint8_t *ring_lo, *ring_hi; /* where records were seen in the ring's mapping */
	/* The snapshot being taken. */
	struct bpf_link *link;
	struct buf gs; /* this lane's struct raw_g, in allgs order */
	struct reader_runs walk;
	struct bpf_profile prof;
	int rc;
	char msg[512]; /* rc's message (errors are per thread) */
};

struct reader_bpf {
	struct lane lane[MAX_LANES];
	int nlanes;	  /* loaded and usable */
	int max_lanes;	  /* to load at open */
	int lanes_cap;	  /* the CPUs, or GLIMPSE_BPF_LANES: lanes a walk may take */
	bool fit;	  /* sizes its rings and lanes for each target (see fit()) */
	bool ring_fixed;  /* fit() could not grow the rings: it no longer tries */
	int cpus;	  /* online */
	bool lanes_set;	  /* GLIMPSE_BPF_LANES */
	pthread_t loader; /* load_lanes(), while loading */
	bool loading;
	int loaded; /* lanes load_lanes() loaded */
	uint32_t ring_bytes;
	uint64_t max_phys; /* see phys_ram_end() */
	bool no_dynptr, no_direct, no_give_way;
	struct reader_pin *pin; /* the snapshot whose records are in the rings */
	bool closing;		/* reader_bpf_close() waits for pin's release */
	/* The snapshot being taken. */
	pid_t pid;
	const struct go_offsets *off;
	struct raw_snapshot *out;
	struct snap_params params;
	struct snap_tid *tids;	     /* see reader_ns_tids() */
	size_t ntids;
	struct buf threads;	     /* struct raw_thread */
	_Atomic uint64_t next_start; /* allgs index of the next chunk */
	atomic_bool threads_asked;   /* a lane asks for thread records, once */
	uint64_t walk_len;	     /* allgs entries expected; the last chunk goes on to allglen */
	int walk_lanes;
	uint32_t chunk_size, run_max;
	pthread_mutex_t lock; /* out's memory, for lanes copying out of full rings */
};

/* A snapshot whose goroutines' bytes are (partly) in a reader's rings. */
struct reader_pin {
	struct reader_bpf *r; /* NULL once the bytes were copied out */
	struct raw_g *gs;     /* the snapshot's goroutines */
	size_t n;
	uint8_t *mem; /* where they were copied */
};

static bool in_ring(const struct reader_bpf *r, const uint8_t *p)
{
	for (int i = 0; i < r->nlanes; i++)
		if (p >= r->lane[i].ring_lo && p < r->lane[i].ring_hi)
			return true;
	return false;
}

/* Copies the bytes of those of gs[0..n) that are in a ring into memory of
 * their own (one block from alloc(ctx, bytes)), and points them there. */
static void evacuate(struct reader_bpf *r, struct raw_g *gs, size_t n, uint8_t *(*alloc)(void *, size_t), void *ctx)
{
	size_t bytes = 0;
	uint8_t *mem;

	for (size_t i = 0; i < n; i++)
		if (in_ring(r, gs[i].hdr))
			bytes += gs[i].hdr_len + gs[i].stack_len;
	if (!bytes)
		return;
	mem = alloc(ctx, bytes);
	for (size_t i = 0; i < n; i++) {
		struct raw_g *g = &gs[i];

		if (!in_ring(r, g->hdr))
			continue;
		memcpy(mem, g->hdr, g->hdr_len);
		g->hdr = mem;
		mem += g->hdr_len;
		if (g->stack) {
			memcpy(mem, g->stack, g->stack_len);
			g->stack = mem;
			mem += g->stack_len;
		}
	}
}

/* Whether any goroutine of out has its bytes in a ring. */
static bool records_in_ring(const struct reader_bpf *r, const struct raw_snapshot *out)
{
	for (size_t i = 0; i < out->n; i++)
		if (in_ring(r, out->gs[i].hdr))
			return true;
	return false;
}

static uint8_t *alloc_snapshot(void *ctx, size_t n)
{
	struct reader_bpf *r = ctx;
	uint8_t *p;

	pthread_mutex_lock(&r->lock);
	p = reader_alloc(r->out, n, n);
	pthread_mutex_unlock(&r->lock);
	return p;
}

static uint8_t *alloc_pin(void *pin, size_t n)
{
	return ((struct reader_pin *)pin)->mem = xmalloc(n);
}

static void destroy(struct reader_bpf *r);

/* Copies the pinned snapshot's bytes out of the rings, which then are free for
 * the next snapshot. */
static void unpin(struct reader_bpf *r)
{
	struct reader_pin *pin = r->pin;

	if (!pin)
		return;
	evacuate(r, pin->gs, pin->n, alloc_pin, pin);
	pin->r = NULL;
	r->pin = NULL;
}

void reader_pin_release(struct reader_pin *pin)
{
	struct reader_bpf *r;

	if (!pin)
		return;
	r = pin->r;
	if (r) {
		r->pin = NULL;
		if (r->closing)
			destroy(r);
	}
	free(pin->mem);
	free(pin);
}

static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0");
}

static void add_thread(struct reader_bpf *r, const struct snap_thread *rec)
{
	struct raw_thread t = {
	    .tid = rec->tid,
	    .on_cpu = rec->on_cpu,
	    .regs_valid = !rec->on_cpu,
	    .ip = rec->ip,
	    .sp = rec->sp,
	    .bp = rec->bp,
	    .fsbase = rec->fsbase,
	};
	struct raw_thread *have = (struct raw_thread *)r->threads.p;
	size_t n = r->threads.len / sizeof(t);

	/* A run that reports threads again: keep the latest. */
	for (size_t i = 0; i < n; i++) {
		if (have[i].tid == t.tid) {
			have[i] = t;
			return;
		}
	}
	buf_add(&r->threads, &t, sizeof(t));
}

/* A goroutine written before (a lane's records come in allgs order) changed
 * while it was copied. */
static void mark_torn(struct lane *l, uint32_t idx)
{
	struct raw_g *gs = (struct raw_g *)l->gs.p;
	size_t lo = 0, hi = l->gs.len / sizeof(*gs);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (gs[mid].idx == idx) {
			gs[mid].torn = true;
			return;
		}
		if (gs[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct lane *l = ctx;
	const struct snap_g *h = data;
	uint8_t *mem;

	if (size < sizeof(__u32))
		return 0;
	if (h->kind == SNAP_REC_THREAD && size >= sizeof(struct snap_thread)) {
		add_thread(l->r, data); /* only one lane asks for threads */
		return 0;
	}
	if (h->kind == SNAP_REC_TORN && size >= sizeof(struct snap_torn)) {
		mark_torn(l, ((const struct snap_torn *)data)->idx);
		return 0;
	}
	if (h->kind != SNAP_REC_G || size < sizeof(*h) || h->g_len > SNAP_G_MAX ||
	    size < sizeof(*h) + h->g_len + h->stack_len)
		return 0;
	/* Left in place: see reader_bpf_snapshot(). */
	mem = (uint8_t *)(h + 1);
	if (!l->ring_lo || mem < l->ring_lo)
		l->ring_lo = mem;
	if (mem + size > l->ring_hi)
		l->ring_hi = mem + size;
	reader_add_g(&l->gs, h, mem, mem + h->g_len, l->r->off);
	return 0;
}

/* The end of the highest range of physical RAM, or 0 when unknown: the walk
 * then reads every page with bpf_copy_from_user_task(). /proc/iomem shows real
 * addresses only with CAP_SYS_ADMIN (a BPF-capable process may lack it, and
 * see zeros); /proc/zoneinfo's zone spans (start_pfn + spanned), readable by
 * anyone, bound the same range from above. */
static uint64_t phys_ram_end(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	uint64_t top = 0, spanned = 0;
	long page = sysconf(_SC_PAGESIZE);

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			unsigned long long lo, hi;

			if (strstr(line, ": System RAM") && sscanf(line, " %llx-%llx", &lo, &hi) == 2 &&
			    hi > lo && hi + 1 > top)
				top = hi + 1;
		}
		fclose(f);
	}
	if (top || page <= 0 || !(f = fopen("/proc/zoneinfo", "r")))
		return top;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		/* Each zone: "Node N, zone Z", then "spanned S" before "start_pfn: P". */
		if (!strncmp(line, "Node ", 5))
			spanned = 0;
		else if (sscanf(line, " spanned %llu", &v) == 1)
			spanned = v;
		else if (sscanf(line, " start_pfn: %llu", &v) == 1 && spanned && (v + spanned) * (uint64_t)page > top)
			top = (v + spanned) * (uint64_t)page;
	}
	fclose(f);
	return top;
}

/* Loads lane i (within bpf_log_begin/end). */
static int lane_open(struct reader_bpf *r, int i)
{
	struct lane *l = &r->lane[i];
	int rc;

	l->r = r;
	l->skel = snapshot_bpf__open();
	if (!l->skel) {
		rc = bpf_log_error(-errno, "opening the BPF snapshot program");
		goto fail;
	}
	l->skel->rodata->profile = reader_profiling();
	l->skel->rodata->no_dynptr = r->no_dynptr;
	l->skel->rodata->no_direct = r->no_direct;
	rc = bpf_map__set_max_entries(l->skel->maps.records, r->ring_bytes);
	if (rc) {
		rc = bpf_log_error(rc, "sizing the BPF ring buffer");
		goto fail;
	}
	rc = snapshot_bpf__load(l->skel);
	if (rc) {
		rc = bpf_log_error(rc, "loading the BPF snapshot program");
		goto fail;
	}
	l->ring = ring_buffer__new(bpf_map__fd(l->skel->maps.records), on_record, l, NULL);
	if (!l->ring) {
		rc = bpf_log_error(-errno, "mapping the BPF ring buffer");
		goto fail;
	}
	return 0;
fail:
	ring_buffer__free(l->ring);
	snapshot_bpf__destroy(l->skel);
	memset(l, 0, sizeof(*l));
	return rc;
}

/* Loads the other lanes in the background (loading is mostly the verifier's
 * CPU time, ~0.05 s here: on another CPU, while glimpse opens the binary, it
 * costs no wall time). */
static void *load_lanes(void *arg)
{
	struct reader_bpf *r = arg;

	for (int i = 1; i < r->max_lanes; i++) {
		if (lane_open(r, i))
			break;
		r->loaded = i + 1;
	}
	return NULL;
}

/* Waits for load_lanes(), if it runs; its lanes are usable from then on. */
static void join_loader(struct reader_bpf *r)
{
	if (!r->loading)
		return;
	pthread_join(r->loader, NULL);
	r->loading = false;
	bpf_log_end();
	r->nlanes = r->loaded;
}

int reader_bpf_open(struct reader_bpf **out)
{
	return reader_bpf_open_ring(0, out);
}

/* A reader with its settings, nothing loaded yet. */
static struct reader_bpf *reader_new(uint32_t ring_bytes)
{
	struct reader_bpf *r = xcalloc(1, sizeof(*r));
	const char *lanes = getenv("GLIMPSE_BPF_LANES"), *chunk = getenv("GLIMPSE_BPF_CHUNK");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	r->ring_bytes = ring_bytes;
	r->no_dynptr = env_set("GLIMPSE_BPF_NO_DYNPTR");
	r->no_direct = env_set("GLIMPSE_BPF_NO_DIRECT");
	r->no_give_way = env_set("GLIMPSE_BPF_NO_GIVE_WAY");
	r->max_phys = phys_ram_end();
	r->cpus = cpus > 0 ? (int)cpus : 1;
	r->lanes_set = lanes && *lanes;
	r->max_lanes = r->lanes_set ? atoi(lanes) : r->cpus;
	r->chunk_size = chunk && atoi(chunk) > 0 ? (uint32_t)atoi(chunk) : CHUNK;
	r->run_max = r->chunk_size > RUN_MAX ? r->chunk_size : RUN_MAX;
	if (r->max_lanes < 1)
		r->max_lanes = 1;
	if (r->max_lanes > MAX_LANES)
		r->max_lanes = MAX_LANES;
	r->lanes_cap = r->max_lanes;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

/* Loads r's first lane, and its others in the background. */
static int reader_load(struct reader_bpf *r, struct reader_bpf **out)
{
	int rc;

	bpf_log_begin();
	r->loaded = 1;
	r->loading = r->max_lanes > 1 && !pthread_create(&r->loader, NULL, load_lanes, r);
	rc = lane_open(r, 0);
	if (!r->loading)
		bpf_log_end();
	if (rc) {
		destroy(r);
		return rc;
	}
	r->nlanes = 1;
	*out = r;
	return 0;
}

int reader_bpf_open_ring(uint32_t ring_bytes, struct reader_bpf **out)
{
	*out = NULL;
	if (!ring_bytes)
		ring_bytes = RING_BYTES;
	if (ring_bytes < MIN_RING_BYTES || (ring_bytes & (ring_bytes - 1)))
		return err_set(EINVAL, "BPF ring buffer of %u bytes: want a power of two of at least %u", ring_bytes,
			       MIN_RING_BYTES);
	return reader_load(reader_new(ring_bytes), out);
}

/* The lanes to walk hint goroutines with. */
static int lanes_for(const struct reader_bpf *r, size_t hint, uint32_t max_goroutines)
{
	int lanes = 1;

	/* max_goroutines counts per lane: a limited walk is one lane, one chunk. */
	if (max_goroutines == UINT32_MAX && hint >= LANES_FROM)
		lanes = r->lanes_cap;
	if (lanes >= r->cpus && hint > ALL_CPUS_UP_TO && !r->lanes_set)
		lanes = r->cpus > 1 ? r->cpus - 1 : 1;
	return lanes;
}

/* The ring, per lane, for a walk of n goroutines of p's kind by lanes lanes:
 * room for all of them (each lane's share and a chunk), from RING_BYTES up to
 * MAX_RING_BYTES. */
static uint32_t ring_for(size_t n, int lanes, const struct snap_params *p)
{
	uint64_t want = (uint64_t)(n / (size_t)lanes + CHUNK) * (sizeof(struct snap_g) + reader_bytes_per_g(p));
	uint32_t ring = RING_BYTES;

	while (ring < want && ring < MAX_RING_BYTES)
		ring <<= 1;
	return ring;
}

int reader_bpf_open_for(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
			struct reader_bpf **out)
{
	struct snap_params p;
	struct reader_bpf *r;
	size_t n;
	int rc, lanes;
	bool sized;

	*out = NULL;
	rc = reader_params(pid, off, bias, lim, &p);
	if (rc)
		return rc;
	r = reader_new(RING_BYTES);
	n = reader_allglen(pid, &p);
	if (n > p.max_goroutines)
		n = p.max_goroutines;
	lanes = lanes_for(r, n, p.max_goroutines);
	if (!r->lanes_set && lanes < r->max_lanes)
		r->max_lanes = lanes;
	r->ring_bytes = ring_for(n, lanes, &p);
	r->fit = true;
	sized = r->ring_bytes > RING_BYTES;
	rc = reader_load(r, out); /* frees r when it fails */
	if (rc && sized) {
		/* Perhaps no memory for it (a cgroup's limit): the default then. */
		err_clear();
		rc = reader_bpf_open(out);
		if (!rc)
			(*out)->fit = (*out)->ring_fixed = true;
	}
	return rc;
}

int reader_bpf_open_warm(struct reader_bpf **out)
{
	struct reader_bpf *r = reader_new(RING_BYTES);

	*out = NULL;
	r->fit = true;
	return reader_load(r, out);
}

static void lane_free(struct lane *l)
{
	ring_buffer__free(l->ring);
	snapshot_bpf__destroy(l->skel);
	buf_free(&l->gs);
	memset(l, 0, sizeof(*l));
}

/* Gives r `lanes` loaded lanes with rings of ring_bytes: loads the lanes it
 * lacks, and all of them anew when ring_bytes is not the size of its rings.
 * Returns 0, or a negative code with r as it was. */
static int reload(struct reader_bpf *r, int lanes, uint32_t ring_bytes)
{
	struct lane old[MAX_LANES];
	uint32_t old_ring = r->ring_bytes;
	int from = ring_bytes != r->ring_bytes ? 0 : r->nlanes, nold = r->nlanes, rc = 0, i;

	memcpy(old, r->lane, sizeof(old));
	r->ring_bytes = ring_bytes;
	bpf_log_begin();
	for (i = from; i < lanes; i++) {
		memset(&r->lane[i], 0, sizeof(r->lane[i]));
		rc = lane_open(r, i);
		if (rc)
			break;
	}
	bpf_log_end();
	if (rc) {
		while (--i >= from)
			lane_free(&r->lane[i]);
		memcpy(r->lane, old, sizeof(old));
		r->ring_bytes = old_ring;
		return rc;
	}
	for (i = from; i < nold; i++) {
		lane_free(&old[i]);
		if (i >= lanes)
			memset(&r->lane[i], 0, sizeof(r->lane[i]));
	}
	r->nlanes = lanes;
	return 0;
}

/* Before a snapshot of about hint goroutines by a reader that sizes itself:
 * loads the lanes the walk will take that r lacks, and the rings anew when
 * they are smaller than hint needs (so they grow to the largest target seen).
 * A load that fails leaves r as it was (and its rings as they are from then
 * on). Never during a walk: loading is kernel work competing for the CPUs. */
static void fit(struct reader_bpf *r, size_t hint)
{
	int lanes = lanes_for(r, hint, r->params.max_goroutines);
	uint32_t ring = r->ring_fixed ? r->ring_bytes : ring_for(hint, lanes, &r->params);

	if (ring < r->ring_bytes)
		ring = r->ring_bytes;
	if (lanes < r->nlanes && ring != r->ring_bytes)
		lanes = r->nlanes;
	if (lanes <= r->nlanes && ring == r->ring_bytes)
		return;
	if (reload(r, lanes, ring)) {
		err_clear();
		r->ring_fixed = true;
	}
}

void reader_bpf_close(struct reader_bpf *r)
{
	if (!r)
		return;
	if (r->pin) {
		r->closing = true;
		return;
	}
	destroy(r);
}

static void destroy(struct reader_bpf *r)
{
	join_loader(r);
	for (int i = 0; i < r->nlanes; i++)
		lane_free(&r->lane[i]);
	buf_free(&r->threads);
	free(r->tids);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* The iterator over pid's threads only; over every task on kernels without
 * that filter (the program itself skips other processes). */
static struct bpf_link *attach(struct lane *l, pid_t pid)
{
	union bpf_iter_link_info info = {0};
	// cppcheck-suppress unknownMacro
	LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info, .link_info_len = sizeof(info));
	struct bpf_link *link;

	info.task.pid = pid;
	link = bpf_program__attach_iter(l->skel->progs.snapshot_walk, &opts);
	if (link)
		return link;
	return bpf_program__attach_iter(l->skel->progs.snapshot_walk, NULL);
}

static const char *direct_off_why(uint32_t why)
{
	switch (why) {
	case SNAP_DIRECT_ON:
		return "on";
	case SNAP_DIRECT_DISABLED:
		return "off (GLIMPSE_BPF_NO_DIRECT, or the end of physical RAM unknown)";
	case SNAP_DIRECT_NO_RCU:
		return "off (kernel lacks bpf_rcu_read_lock)";
	case SNAP_DIRECT_NO_MM:
		return "off (target has no address space)";
	case SNAP_DIRECT_NO_BASE:
		return "off (page tables not understood)";
	case SNAP_DIRECT_UNPROVEN:
		return "off (a test read disagreed with bpf_copy_from_user_task)";
	}
	return "off";
}

/* Drains the lane's ring into raw_gs that point into it. */
static int drain(struct lane *l)
{
	uint64_t t0 = reader_now_ns(CLOCK_MONOTONIC);
	int rc = ring_buffer__consume(l->ring);

	l->prof.drain += reader_now_ns(CLOCK_MONOTONIC) - t0;
	if (rc < 0)
		return err_set(-rc, "draining the BPF ring buffer: %s", strerror(-rc));
	return 0;
}

/* What went wrong in the run that just ended, as an error code, or 0. */
static int run_error(const struct lane *l)
{
	const struct snap_ctl *ctl = &l->skel->bss->ctl;
	pid_t pid = l->r->pid;

	if (ctl->err)
		return reader_allgs_error(ctl->err, pid, ctl->err_addr);
	if (!ctl->walked)
		return err_set(ESRCH, "no process with pid %d", (int)pid);
	return 0;
}

/* One pass of the iterator. */
static int run_once(struct lane *l)
{
	uint64_t t0 = reader_now_ns(CLOCK_MONOTONIC);
	pid_t pid = l->r->pid;
	char sink[64];
	ssize_t n;
	int fd, rc;

	fd = bpf_iter_create(bpf_link__fd(l->link));
	if (fd < 0)
		return err_set(errno, "creating the BPF task iterator for pid %d: %s", (int)pid, strerror(errno));
	while ((n = read(fd, sink, sizeof(sink))) > 0)
		;
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return err_set(-rc, "running the BPF task iterator for pid %d: %s", (int)pid, strerror(-rc));
	l->prof.iter += reader_now_ns(CLOCK_MONOTONIC) - t0;
	l->walk.runs++;
	/* Kernel code nothing preempts ran for the whole run: a thread of the
	 * target that woke up meanwhile may be waiting for this CPU, which the
	 * scheduler would give it only at its next tick (4 ms at 250 Hz). When
	 * nothing waits, this costs ~1 us; when a busy thread does, the walk
	 * waits for it a time slice: glimpse gives way, the target does not. */
	sched_yield();
	return 0;
}

/* Counts the run that just walked from start, by what it found on its CPU. */
static void count_run(struct lane *l, const struct snap_ctl *ctl, uint32_t start)
{
	uint32_t n = ctl->next > start ? ctl->next - start : 0;
	struct reader_runs *w = &l->walk;

	if (ctl->run_queued == 1) {
		w->idle_runs++;
		w->idle_cut += ctl->run_end && n < l->r->run_max;
		if (n > w->longest_idle)
			w->longest_idle = n;
	} else if (n > w->longest_busy) {
		w->longest_busy = n;
	}
}

/* Adds a lane's runs to a snapshot's. */
static void runs_add(struct reader_runs *to, const struct reader_runs *w)
{
	to->runs += w->runs;
	to->gave_way += w->gave_way;
	to->ring_full += w->ring_full;
	to->idle_runs += w->idle_runs;
	to->idle_cut += w->idle_cut;
	if (w->longest_idle > to->longest_idle)
		to->longest_idle = w->longest_idle;
	if (w->longest_busy > to->longest_busy)
		to->longest_busy = w->longest_busy;
}

/* Walks allgs entries [start, end) (end: or allglen), draining the ring and
 * going on from where the walk stopped whenever it fills up. */
static int walk_range(struct lane *l, uint32_t start, uint32_t end, bool threads)
{
	struct snap_ctl *ctl = &l->skel->bss->ctl;
	struct snap_params *p = &l->skel->bss->params;
	pid_t pid = l->r->pid;
	int rc;

	p->start = start;
	p->end = end;
	p->threads = threads;
	/* Runs that stopped early for another task always get somewhere (see
	 * GIVE_WAY_AFTER); only runs that filled the ring count to MAX_RUNS. */
	for (unsigned int run = 0; run < MAX_RUNS;) {
		bool was_empty = !ctl->ring_used;

		ctl->walked = ctl->done = ctl->full = ctl->threads_lost = ctl->gave_way = ctl->run_end = 0;
		rc = run_once(l);
		if (rc)
			return rc;
		/* Takes in the run's records while they are in this CPU's cache
		 * (draining at the end took ~0.4 ms per 5k goroutines); they
		 * stay where they are in the ring (see ctl.ring_used). */
		rc = drain(l);
		if (!rc)
			rc = run_error(l);
		if (rc)
			return rc;
		count_run(l, ctl, p->start);
		if (ctl->done && !ctl->threads_lost)
			return 0;
		p->threads = 0;
		if ((ctl->gave_way || ctl->run_end) && !ctl->threads_lost && ctl->next > p->start) {
			l->walk.gave_way += ctl->gave_way;
			p->start = ctl->next;
			continue;
		}
		if (ctl->full && ctl->next == p->start && was_empty)
			return err_set(ENOSPC, "a goroutine record does not fit in the BPF ring buffer");
		/* The ring is used up: copy the lane's records out of it, and
		 * let the next run write over them. */
		l->walk.ring_full += ctl->full;
		evacuate(l->r, (struct raw_g *)l->gs.p, l->gs.len / sizeof(struct raw_g), alloc_snapshot, l->r);
		ctl->ring_used = 0;
		p->start = ctl->next;
		if (ctl->threads_lost)
			p->threads = threads;
		run++;
	}
	return err_set(EAGAIN, "pid %d: the BPF walk did not finish in %d runs", (int)pid, MAX_RUNS);
}

/* Takes the next chunk of allgs, [*start, *end): a share of what is left
 * for each lane, so that chunks shrink as the walk goes and the lanes end
 * together, but never less than the reader's chunk size. The last chunk goes
 * on to the end of allgs, however long it has grown. */
static bool take_chunk(struct reader_bpf *r, uint32_t *start, uint32_t *end)
{
	uint64_t s = atomic_load(&r->next_start), n;

	do {
		if (s >= r->walk_len)
			return false;
		n = (r->walk_len - s) / (2 * (uint64_t)r->walk_lanes);
		if (n < r->chunk_size)
			n = r->chunk_size;
	} while (!atomic_compare_exchange_weak(&r->next_start, &s, s + n));
	*start = (uint32_t)s;
	*end = s + n >= r->walk_len ? UINT32_MAX : (uint32_t)(s + n);
	return true;
}

/* A lane's part of a snapshot: chunks of allgs until there are none left. */
static void *lane_walk(void *arg)
{
	struct lane *l = arg;
	struct reader_bpf *r = l->r;
	uint32_t start, end;

	l->rc = 0;
	while (!l->rc && take_chunk(r, &start, &end)) {
		/* Thread records with the first chunk taken (a lane may get none). */
		bool threads = !atomic_exchange(&r->threads_asked, true);

		l->rc = walk_range(l, start, end, threads);
	}
	if (!l->rc)
		l->rc = drain(l);
	if (l->rc)
		snprintf(l->msg, sizeof(l->msg), "%s", err_msg(l->rc));
	return NULL;
}

/* A run that walks no goroutine, before the snapshot starts: it finds the
 * direct map for the target (dm_setup(), 6-9 us) and checks that allgs can be
 * read, so that the snapshot's runs only copy. */
static int lane_setup(struct lane *l)
{
	struct snap_params *p = &l->skel->bss->params;
	int rc;

	p->start = p->end = 0;
	p->threads = 0;
	rc = run_once(l);
	p->setup = 0;
	return rc ? rc : run_error(l);
}

/* Readies lane l for a snapshot with the reader's parameters, and room for
 * about hint goroutines. */
static int lane_start(struct lane *l, size_t hint)
{
	struct snap_params *p = &l->skel->bss->params;
	int rc;

	*p = l->r->params;
	p->ns_tids = l->r->ntids;
	if (l->r->ntids)
		memcpy(l->skel->bss->ns_tids, l->r->tids, l->r->ntids * sizeof(struct snap_tid));
	p->ring_size = l->r->ring_bytes;
	p->max_phys = l->r->max_phys;
	p->setup = 1;
	p->give_way = !l->r->no_give_way;
	p->run_busy = l->r->chunk_size;
	p->run_max = l->r->run_max;
	memset(&l->skel->bss->ctl, 0, sizeof(l->skel->bss->ctl));
	l->rc = 0;
	l->gs.len = 0;
	buf_grow(&l->gs, hint * sizeof(struct raw_g));
	reader_prefault(&l->gs); /* the drains write there */
	l->link = attach(l, l->r->pid);
	if (!l->link)
		return err_set(errno, "attaching the BPF task iterator: %s", strerror(errno));
	rc = lane_setup(l);
	/* The snapshot's runs count from here. */
	memset(&l->skel->bss->prof, 0, sizeof(l->skel->bss->prof));
	memset(&l->prof, 0, sizeof(l->prof));
	memset(&l->walk, 0, sizeof(l->walk));
	return rc;
}

/* The second lane's thread. It is started before the walk (creating a
 * thread and moving it to another CPU took 70-110 us here, all of it before
 * the first lane could start) and waits, spinning, for the go. */
struct helper {
	pthread_t thread;
	struct lane *lane;
	atomic_int go;	  /* 0: wait, 1: walk, -1: no walk after all */
	atomic_int done;  /* 1: it walked, or will not */
	atomic_int claim; /* 0: open, 1: the helper walks, 2: the first lane went without it */
	bool started;
	bool pinned;	 /* this thread and the helper are on CPUs of their own */
	cpu_set_t saved; /* this thread's CPUs before */
};

/* How long a helper spins for its go: far more than setting up ever takes. */
#define HELPER_WAIT_NS 50000000ull
/* How long the first lane spins for the helper to finish before sleeping. */
#define HELPER_SPIN_NS 5000000ull

/* Waits for *flag to be non-zero, for ns at most, and returns it (0: gave up).
 * It spins, but each turn yields the CPU to any task waiting for it (a thread
 * of the target that woke up there must not wait for a spinning glimpse); a
 * yield returns at once, in about a microsecond, when none does. */
static int spin_for(atomic_int *flag, uint64_t ns)
{
	uint64_t until = reader_now_ns(CLOCK_MONOTONIC) + ns;
	int v;

	for (unsigned int n = 1; !(v = atomic_load_explicit(flag, memory_order_acquire)); n++) {
		sched_yield();
		if (!(n & 63) && reader_now_ns(CLOCK_MONOTONIC) > until)
			break;
	}
	return v;
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	int open = 0;

	/* Having given up waiting, or told there is no walk, or found that the
	 * first lane walked without it, it leaves the chunks to the first lane. */
	if (spin_for(&h->go, HELPER_WAIT_NS) > 0 && atomic_compare_exchange_strong(&h->claim, &open, 1))
		lane_walk(h->lane);
	atomic_store_explicit(&h->done, 1, memory_order_release);
	return NULL;
}

/* Starts the helper for lane l on a CPU other than this thread's, and keeps
 * this thread on its own: left to the scheduler, the two lanes, yielding after
 * every run, often end up sharing a CPU. */
static void helper_start(struct helper *h, struct lane *l)
{
	int cpu = sched_getcpu(), other = -1;
	pthread_attr_t attr;
	cpu_set_t one;

	memset(h, 0, sizeof(*h));
	h->lane = l;
	if (cpu >= 0 && !sched_getaffinity(0, sizeof(h->saved), &h->saved))
		for (int c = 0; c < CPU_SETSIZE && other < 0; c++)
			if (c != cpu && CPU_ISSET(c, &h->saved))
				other = c;
	if (pthread_attr_init(&attr))
		return;
	if (other >= 0) {
		CPU_ZERO(&one);
		CPU_SET(other, &one);
		if (!pthread_attr_setaffinity_np(&attr, sizeof(one), &one)) {
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			h->pinned = !sched_setaffinity(0, sizeof(one), &one);
		}
	}
	h->started = !pthread_create(&h->thread, h->pinned ? &attr : NULL, helper_main, h);
	pthread_attr_destroy(&attr);
}

/* Lets the helper walk, or tells it there is no walk after all. */
static void helper_go(struct helper *h, bool go)
{
	atomic_store_explicit(&h->go, go ? 1 : -1, memory_order_release);
}

/* After the first lane's walk, when no chunk is left: waits for the helper to
 * be done, spinning a while (a thread that sleeps in pthread_join() is woken
 * ~0.1 ms late here, an idle virtual CPU), unless it has not started walking,
 * which it then never will (its thread, woken on an idle virtual CPU, once
 * took 4 ms to run while the first lane walked everything alone). The helper
 * may not have exited yet: helper_end() joins it. */
static void helper_wait(struct helper *h)
{
	int open = 0;

	if (atomic_compare_exchange_strong(&h->claim, &open, 2))
		return;
	if (h->started && !spin_for(&h->done, HELPER_SPIN_NS)) {
		pthread_join(h->thread, NULL);
		h->started = false;
	}
}

/* Ends the helper, and this thread's pinning. */
static void helper_end(struct helper *h)
{
	if (h->started)
		pthread_join(h->thread, NULL);
	if (h->pinned)
		sched_setaffinity(0, sizeof(h->saved), &h->saved);
	h->started = h->pinned = false;
}

/* Appends the lanes' raw_gs to gs in allgs order. Each lane's are in order and
 * its chunks are ranges of allgs, so they go over in runs, one memcpy each: a
 * run is what the lane with the next goroutine holds before the other lanes'
 * next one (1k goroutines: 11-13 us here, 16 us one by one). */
static void merge(struct reader_bpf *r, int lanes, struct buf *gs)
{
	const struct raw_g *g[MAX_LANES];
	size_t pos[MAX_LANES] = {0}, len[MAX_LANES];

	for (int i = 0; i < lanes; i++) {
		g[i] = (const struct raw_g *)r->lane[i].gs.p;
		len[i] = r->lane[i].gs.len / sizeof(struct raw_g);
	}
	for (;;) {
		uint32_t bound = UINT32_MAX;
		size_t lo, hi;
		int from = -1;

		for (int i = 0; i < lanes; i++)
			if (pos[i] < len[i] && (from < 0 || g[i][pos[i]].idx < g[from][pos[from]].idx))
				from = i;
		if (from < 0)
			return;
		for (int i = 0; i < lanes; i++)
			if (i != from && pos[i] < len[i] && g[i][pos[i]].idx < bound)
				bound = g[i][pos[i]].idx;
		/* The run ends at the first of from's goroutines past bound. */
		lo = pos[from] + 1;
		hi = len[from];
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (g[from][mid].idx < bound)
				lo = mid + 1;
			else
				hi = mid;
		}
		buf_add(gs, &g[from][pos[from]], (lo - pos[from]) * sizeof(struct raw_g));
		pos[from] = lo;
	}
}

static void print_profile(const struct reader_bpf *r, int lanes, const struct raw_snapshot *out, uint64_t finish)
{
	static const char *const names[SNAP_PROF_SLOTS] = {"walk", "windows", "stacks", "rechecks", "emit"};
	size_t n = out->n ? out->n : 1;

	fprintf(stderr,
		"glimpse bpf reader: %zu goroutines in %.3f ms (%.3f us each), %d lane(s), %u run(s), %s copy\n",
		out->n, out->duration_ns / 1e6, out->duration_ns / 1e3 / n, lanes, out->walk.runs, out->copy);
	for (int k = 0; k < lanes; k++) {
		const struct lane *l = &r->lane[k];
		const struct snap_prof *p = &l->skel->bss->prof;
		const struct snap_ctl *ctl = &l->skel->bss->ctl;

		fprintf(stderr,
			" lane %d: %zu goroutines, %u runs (%u gave way, %u filled the ring of %u MiB), iterator %.3f ms, "
			"drain %.3f ms\n",
			k, l->gs.len / sizeof(struct raw_g), l->walk.runs, l->walk.gave_way, l->walk.ring_full,
			r->ring_bytes >> 20, l->prof.iter / 1e6, l->prof.drain / 1e6);
		fprintf(stderr, "  direct map reads %s: %llu direct, %llu through bpf_copy_from_user_task\n",
			direct_off_why(ctl->direct_off), (unsigned long long)ctl->direct_reads,
			(unsigned long long)ctl->slow_reads);
		for (int i = 0; i < SNAP_PROF_SLOTS; i++)
			fprintf(stderr, "  bpf %-8s %8.3f ms %7llu calls %6.3f us/call\n", names[i], p->ns[i] / 1e6,
				(unsigned long long)p->calls[i], p->calls[i] ? p->ns[i] / 1e3 / p->calls[i] : 0.0);
		fprintf(stderr, "  stack bytes %llu\n", (unsigned long long)p->stack_bytes);
	}
	fprintf(stderr, " merge and finish %.3f ms\n", finish / 1e6);
}

int reader_bpf_snapshot(struct reader_bpf *r, pid_t pid, const struct go_offsets *off, uint64_t bias,
			const struct read_limits *lim, struct raw_snapshot *out)
{
	struct buf gs = {0};
	struct helper helper = {0};
	uint64_t t0, t1;
	size_t hint;
	int rc, lanes = 1;

	memset(out, 0, sizeof(*out));
	rc = reader_params(pid, off, bias, lim, &r->params);
	if (rc)
		return rc;
	unpin(r);
	r->pid = pid;
	r->off = off;
	r->out = out;
	r->threads.len = 0;
	free(r->tids);
	r->ntids = reader_ns_tids(pid, &r->tids);
	hint = reader_reserve(pid, &r->params, NULL, &gs);
	t0 = reader_now_ns(CLOCK_MONOTONIC);
	lanes = lanes_for(r, hint, r->params.max_goroutines);
	/* Loading a lane is kernel work (verifier, ring) that would compete with
	 * the walk and the target for the CPUs: never during a walk. */
	join_loader(r);
	if (r->fit)
		fit(r, hint < r->params.max_goroutines ? hint : r->params.max_goroutines);
	if (lanes > r->nlanes)
		lanes = r->nlanes;
	if (lanes > 1)
		helper_start(&helper, &r->lane[1]);
	/* A walk limited to max_goroutines is one chunk: it counts per lane. */
	r->walk_len = hint && r->params.max_goroutines == UINT32_MAX ? hint : 1;
	r->walk_lanes = lanes;
	atomic_store(&r->next_start, 0);
	atomic_store(&r->threads_asked, false);
	for (int i = 0; i < lanes && !rc; i++)
		rc = lane_start(&r->lane[i], hint + CHUNK); /* as much as one lane might take */
	out->setup_ns = reader_now_ns(CLOCK_MONOTONIC) - t0;
	out->reader = "bpf";
	out->started_ns = reader_now_ns(CLOCK_REALTIME);
	t0 = reader_now_ns(CLOCK_MONOTONIC);
	helper_go(&helper, !rc);
	/* Without a helper (or when it gave up waiting) this lane takes every chunk. */
	if (!rc)
		lane_walk(&r->lane[0]);
	helper_wait(&helper);
	for (int i = 0; i < lanes; i++) {
		struct lane *l = &r->lane[i];

		if (!rc && l->rc)
			rc = err_set(-l->rc, "%s", l->msg);
		bpf_link__destroy(l->link);
		l->link = NULL;
	}
	if (rc) {
		helper_end(&helper);
		buf_free(&gs);
		reader_release(out);
		return rc;
	}
	t1 = reader_now_ns(CLOCK_MONOTONIC);
	for (int i = 0; i < lanes; i++) {
		struct lane *l = &r->lane[i];
		const struct snap_ctl *ctl = &l->skel->bss->ctl;

		if (ctl->len > out->allglen)
			out->allglen = ctl->len;
		out->direct_reads += ctl->direct_reads;
		out->slow_reads += ctl->slow_reads;
		out->truncated |= ctl->truncated;
		runs_add(&out->walk, &l->walk);
		if (ctl->torn_lost)
			for (size_t k = 0; k < l->gs.len / sizeof(struct raw_g); k++)
				((struct raw_g *)l->gs.p)[k].torn = true;
	}
	{
		const struct snap_ctl *ctl = &r->lane[0].skel->bss->ctl;

		out->copy = ctl->direct ? "direct map" : ctl->dynptr ? "dynptr" : "buffered";
		out->direct_off = direct_off_why(ctl->direct_off);
	}
	merge(r, lanes, &gs);
	out->lanes = lanes;
	out->nthreads = r->threads.len / sizeof(struct raw_thread);
	out->threads = xmalloc(r->threads.len ? r->threads.len : 1);
	memcpy(out->threads, r->threads.p, r->threads.len);
	reader_finish(out, &gs);
	out->duration_ns = reader_now_ns(CLOCK_MONOTONIC) - t0;
	helper_end(&helper);
	if (out->n && records_in_ring(r, out)) {
		r->pin = xcalloc(1, sizeof(*r->pin));
		*r->pin = (struct reader_pin){.r = r, .gs = out->gs, .n = out->n};
		out->pin = r->pin;
	}
	if (reader_profiling())
		print_profile(r, lanes, out, reader_now_ns(CLOCK_MONOTONIC) - t1);
	return 0;
}
