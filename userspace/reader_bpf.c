/* reader_bpf.c - the BPF goroutine reader: loads bpf/snapshot.bpf.c (a sleepable
 * task iterator), runs it over the target's threads, and drains its ring buffer
 * into struct raw_g records. Also reader_snapshot(), which tries this reader
 * and falls back to process_vm_readv (reader_vm.c).
 *
 * The walk stops when the ring buffer is full and records where; each run is
 * followed by draining the ring and, if needed, another run from that index,
 * so any number of goroutines fits through a fixed-size ring. Draining copies
 * each run's records into one block of memory (no allocation per goroutine):
 * on this machine kind fresh memory and per-record work cost as much as the
 * copying itself.
 */
#include "reader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bpf/snapshot.h"
#include "bpf_log.h"
#include "buf.h"
#include "err.h"
#include "snapshot.skel.h"

#define RING_BYTES     (32u << 20)
#define MIN_RING_BYTES (2u << 20) /* holds the largest record (SNAP_STACK_MAX) */
#define MAX_RUNS       100000

struct reader_bpf {
	struct snapshot_bpf *skel;
	struct ring_buffer *ring;
	uint32_t ring_bytes;
	uint64_t max_phys;		   /* see phys_ram_end() */
	const uint8_t *ring_lo, *ring_hi; /* where records were seen in the ring's mapping */
	struct reader_pin *pin; /* the snapshot whose records are in the ring */
	bool closing;		/* reader_bpf_close() waits for pin's release */
	/* The snapshot being taken. */
	const struct go_offsets *off;
	struct raw_snapshot *out;
	size_t run_first;   /* first raw_g (in gs) of the current run */
	struct buf gs;	    /* struct raw_g, in allgs order */
	struct buf threads; /* struct raw_thread */
};

/* A snapshot whose goroutines' bytes are (partly) in a reader's ring. */
struct reader_pin {
	struct reader_bpf *r; /* NULL once the bytes were copied out */
	struct raw_g *gs;     /* the snapshot's goroutines */
	size_t n;
	uint8_t *mem; /* where they were copied */
};

static bool in_ring(const struct reader_bpf *r, const uint8_t *p)
{
	return p >= r->ring_lo && p < r->ring_hi;
}

/* Copies the bytes of those of gs[0..n) that are in the ring into memory of
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

/* Whether any goroutine of out has its bytes in the ring. */
static bool records_in_ring(const struct reader_bpf *r, const struct raw_snapshot *out)
{
	for (size_t i = 0; i < out->n; i++)
		if (in_ring(r, out->gs[i].hdr))
			return true;
	return false;
}

static uint8_t *alloc_snapshot(void *out, size_t n)
{
	return reader_alloc(out, n, n);
}

static uint8_t *alloc_pin(void *pin, size_t n)
{
	return ((struct reader_pin *)pin)->mem = xmalloc(n);
}

static void destroy(struct reader_bpf *r);

/* Copies the pinned snapshot's bytes out of the ring, which then is free for
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

	/* Every run reports every thread again: keep the latest. */
	for (size_t i = 0; i < n; i++) {
		if (have[i].tid == t.tid) {
			have[i] = t;
			return;
		}
	}
	buf_add(&r->threads, &t, sizeof(t));
}

/* A goroutine written before (records come in allgs order) changed while it
 * was copied. */
static void mark_torn(struct reader_bpf *r, uint32_t idx)
{
	struct raw_g *gs = (struct raw_g *)r->gs.p;
	size_t lo = 0, hi = r->gs.len / sizeof(*gs);

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
	struct reader_bpf *r = ctx;
	const struct snap_g *h = data;
	uint8_t *mem;

	if (size < sizeof(__u32))
		return 0;
	if (h->kind == SNAP_REC_THREAD && size >= sizeof(struct snap_thread)) {
		add_thread(r, data);
		return 0;
	}
	if (h->kind == SNAP_REC_TORN && size >= sizeof(struct snap_torn)) {
		mark_torn(r, ((const struct snap_torn *)data)->idx);
		return 0;
	}
	if (h->kind != SNAP_REC_G || size < sizeof(*h) || h->g_len > SNAP_G_MAX ||
	    size < sizeof(*h) + h->g_len + h->stack_len)
		return 0;
	/* Left in place: see reader_bpf_snapshot(). */
	mem = (uint8_t *)(h + 1);
	if (!r->ring_lo || mem < r->ring_lo)
		r->ring_lo = mem;
	if (mem + size > r->ring_hi)
		r->ring_hi = mem + size;
	reader_add_g(&r->gs, h, mem, mem + h->g_len, r->off);
	return 0;
}

/* The end of the highest range of physical RAM (/proc/iomem, which shows real
 * addresses to root only), or 0 when unknown: the walk then reads every page
 * with bpf_copy_from_user_task(). */
static uint64_t phys_ram_end(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	uint64_t top = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;

		if (strstr(line, ": System RAM") && sscanf(line, " %llx-%llx", &lo, &hi) == 2 && hi > lo && hi + 1 > top)
			top = hi + 1;
	}
	fclose(f);
	return top;
}

int reader_bpf_open(struct reader_bpf **out)
{
	return reader_bpf_open_ring(0, out);
}

int reader_bpf_open_ring(uint32_t ring_bytes, struct reader_bpf **out)
{
	struct reader_bpf *r;
	int rc = 0;

	*out = NULL;
	if (!ring_bytes)
		ring_bytes = RING_BYTES;
	if (ring_bytes < MIN_RING_BYTES || (ring_bytes & (ring_bytes - 1)))
		return err_set(EINVAL, "BPF ring buffer of %u bytes: want a power of two of at least %u", ring_bytes,
			       MIN_RING_BYTES);
	r = xcalloc(1, sizeof(*r));
	r->ring_bytes = ring_bytes;
	bpf_log_begin();
	r->skel = snapshot_bpf__open();
	if (!r->skel) {
		rc = bpf_log_error(-errno, "opening the BPF snapshot program");
		goto fail;
	}
	r->skel->rodata->profile = reader_profiling();
	r->skel->rodata->no_dynptr = env_set("GLIMPSE_BPF_NO_DYNPTR");
	r->skel->rodata->no_direct = env_set("GLIMPSE_BPF_NO_DIRECT");
	r->max_phys = phys_ram_end();
	rc = bpf_map__set_max_entries(r->skel->maps.records, ring_bytes);
	if (rc) {
		rc = bpf_log_error(rc, "sizing the BPF ring buffer");
		goto fail;
	}
	rc = snapshot_bpf__load(r->skel);
	if (rc) {
		rc = bpf_log_error(rc, "loading the BPF snapshot program");
		goto fail;
	}
	r->ring = ring_buffer__new(bpf_map__fd(r->skel->maps.records), on_record, r, NULL);
	if (!r->ring) {
		rc = bpf_log_error(-errno, "mapping the BPF ring buffer");
		goto fail;
	}
	bpf_log_end();
	*out = r;
	return 0;
fail:
	bpf_log_end();
	reader_bpf_close(r);
	return rc;
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
	ring_buffer__free(r->ring);
	snapshot_bpf__destroy(r->skel);
	free(r);
}

/* The iterator over pid's threads only; over every task on kernels without
 * that filter (the program itself skips other processes). */
static struct bpf_link *attach(struct reader_bpf *r, pid_t pid)
{
	union bpf_iter_link_info info = {0};
	// cppcheck-suppress unknownMacro
	LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info, .link_info_len = sizeof(info));
	struct bpf_link *link;

	info.task.pid = pid;
	link = bpf_program__attach_iter(r->skel->progs.snapshot_walk, &opts);
	if (link)
		return link;
	return bpf_program__attach_iter(r->skel->progs.snapshot_walk, NULL);
}

static const char *direct_off_why(uint32_t why)
{
	switch (why) {
	case SNAP_DIRECT_ON:
		return "on";
	case SNAP_DIRECT_DISABLED:
		return "off (GLIMPSE_BPF_NO_DIRECT, or physical RAM size unknown)";
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

/* Where a snapshot's time went (GLIMPSE_READER_PROFILE=1), in ns. */
struct bpf_profile {
	uint64_t iter, drain;
};

/* One pass of the iterator, then drains what it wrote into memory of out. */
static int run_once(struct reader_bpf *r, struct bpf_link *link, pid_t pid, struct bpf_profile *prof)
{
	uint64_t t0 = reader_now_ns(CLOCK_MONOTONIC), t1;
	size_t gs;
	char sink[64];
	ssize_t n;
	int fd, rc;

	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0)
		return err_set(errno, "creating the BPF task iterator for pid %d: %s", (int)pid, strerror(errno));
	while ((n = read(fd, sink, sizeof(sink))) > 0)
		;
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return err_set(-rc, "running the BPF task iterator for pid %d: %s", (int)pid, strerror(-rc));
	t1 = reader_now_ns(CLOCK_MONOTONIC);
	r->run_first = r->gs.len / sizeof(struct raw_g);
	gs = r->skel->bss->ctl.len;
	if (gs > r->gs.len / sizeof(struct raw_g))
		buf_grow(&r->gs, gs * sizeof(struct raw_g) - r->gs.len);
	rc = ring_buffer__consume(r->ring);
	if (rc < 0)
		return err_set(-rc, "draining the BPF ring buffer: %s", strerror(-rc));
	prof->iter += t1 - t0;
	prof->drain += reader_now_ns(CLOCK_MONOTONIC) - t1;
	return 0;
}

/* Runs the walk until it has covered allgs, resuming where the ring filled up. */
static int run_walk(struct reader_bpf *r, struct bpf_link *link, pid_t pid, struct bpf_profile *prof)
{
	struct snap_ctl *ctl = &r->skel->bss->ctl;
	struct snap_params *p = &r->skel->bss->params;
	int rc;

	memset(ctl, 0, sizeof(*ctl));
	for (unsigned int run = 0; run < MAX_RUNS; run++) {
		__u32 start = ctl->next;

		p->start = start;
		ctl->walked = ctl->done = ctl->full = ctl->threads_lost = 0;
		rc = run_once(r, link, pid, prof);
		if (rc)
			return rc;
		r->out->runs++;
		if (ctl->err)
			return reader_allgs_error(ctl->err, pid, ctl->err_addr);
		if (!ctl->walked)
			return err_set(ESRCH, "no process with pid %d", (int)pid);
		if (ctl->done && !ctl->threads_lost)
			return 0;
		if (ctl->full && ctl->next == start)
			return err_set(ENOSPC, "a goroutine record does not fit in the BPF ring buffer");
		/* The next run writes over this one's records. */
		evacuate(r, (struct raw_g *)r->gs.p + r->run_first, r->gs.len / sizeof(struct raw_g) - r->run_first,
			 alloc_snapshot, r->out);
	}
	return err_set(EAGAIN, "pid %d: the BPF walk did not finish in %d runs", (int)pid, MAX_RUNS);
}

static void print_profile(const struct reader_bpf *r, const struct raw_snapshot *out, const struct bpf_profile *prof,
			  uint64_t finish)
{
	const struct snap_prof *p = &r->skel->bss->prof;
	static const char *const names[SNAP_PROF_SLOTS] = {"walk", "windows", "stacks", "rechecks", "emit"};
	size_t n = out->n ? out->n : 1;

	const struct snap_ctl *ctl = &r->skel->bss->ctl;

	fprintf(stderr, "glimpse bpf reader: %zu goroutines in %.3f ms (%.3f us each), %u run(s), %s copy\n", out->n,
		out->duration_ns / 1e6, out->duration_ns / 1e3 / n, out->runs, ctl->dynptr ? "dynptr" : "buffered");
	fprintf(stderr, "  direct map reads %s: %llu direct, %llu through bpf_copy_from_user_task\n",
		direct_off_why(ctl->direct_off), (unsigned long long)ctl->direct_reads,
		(unsigned long long)ctl->slow_reads);
	fprintf(stderr, "  iterator %.3f ms, drain %.3f ms (%.3f us each), finish %.3f ms\n", prof->iter / 1e6,
		prof->drain / 1e6, prof->drain / 1e3 / n, finish / 1e6);
	for (int i = 0; i < SNAP_PROF_SLOTS; i++)
		fprintf(stderr, "  bpf %-8s %8.3f ms %7llu calls %6.3f us/call\n", names[i], p->ns[i] / 1e6,
			(unsigned long long)p->calls[i], p->calls[i] ? p->ns[i] / 1e3 / p->calls[i] : 0.0);
	fprintf(stderr, "  stack bytes %llu (%llu per goroutine)\n", (unsigned long long)p->stack_bytes,
		(unsigned long long)(p->stack_bytes / n));
}

int reader_bpf_snapshot(struct reader_bpf *r, pid_t pid, const struct go_offsets *off, uint64_t bias,
			const struct read_limits *lim, struct raw_snapshot *out)
{
	struct snap_params *p = &r->skel->bss->params;
	struct bpf_profile prof = {0};
	struct bpf_link *link;
	uint64_t t0, t1;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = reader_params(pid, off, bias, lim, p);
	if (rc)
		return rc;
	p->ring_size = r->ring_bytes;
	p->max_phys = r->max_phys;
	memset(&r->skel->bss->prof, 0, sizeof(r->skel->bss->prof));
	unpin(r);
	r->off = off;
	r->out = out;
	reader_reserve(pid, p, NULL, &r->gs);
	t0 = reader_now_ns(CLOCK_MONOTONIC);
	link = attach(r, pid);
	if (!link) {
		rc = err_set(errno, "attaching the BPF task iterator: %s", strerror(errno));
		buf_free(&r->gs);
		raw_snapshot_free(out);
		return rc;
	}
	out->setup_ns = reader_now_ns(CLOCK_MONOTONIC) - t0;
	out->reader = "bpf";
	out->started_ns = reader_now_ns(CLOCK_REALTIME);
	t0 = reader_now_ns(CLOCK_MONOTONIC);
	rc = run_walk(r, link, pid, &prof);
	bpf_link__destroy(link);
	if (rc) {
		buf_free(&r->gs);
		buf_free(&r->threads);
		raw_snapshot_free(out);
		return rc;
	}
	t1 = reader_now_ns(CLOCK_MONOTONIC);
	out->allglen = r->skel->bss->ctl.len;
	out->direct_reads = r->skel->bss->ctl.direct_reads;
	out->slow_reads = r->skel->bss->ctl.slow_reads;
	out->copy = r->skel->bss->ctl.direct ? "direct map" : r->skel->bss->ctl.dynptr ? "dynptr" : "buffered";
	out->truncated = r->skel->bss->ctl.truncated;
	out->nthreads = r->threads.len / sizeof(struct raw_thread);
	out->threads = (struct raw_thread *)buf_detach(&r->threads);
	if (r->skel->bss->ctl.torn_lost)
		for (size_t i = 0; i < r->gs.len / sizeof(struct raw_g); i++)
			((struct raw_g *)r->gs.p)[i].torn = true;
	reader_finish(out, &r->gs);
	out->duration_ns = reader_now_ns(CLOCK_MONOTONIC) - t0;
	if (out->n && records_in_ring(r, out)) {
		r->pin = xcalloc(1, sizeof(*r->pin));
		*r->pin = (struct reader_pin){.r = r, .gs = out->gs, .n = out->n};
		out->pin = r->pin;
	}
	if (r->skel->rodata->profile)
		print_profile(r, out, &prof, reader_now_ns(CLOCK_MONOTONIC) - t1);
	return 0;
}

int reader_snapshot(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		    bool allow_bpf, struct raw_snapshot *out)
{
	struct reader_bpf *r = NULL;
	struct snap_params p;
	char why[sizeof(out->fallback)] = "";
	uint64_t t0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = reader_params(pid, off, bias, lim, &p);
	if (rc)
		return rc;
	if (allow_bpf) {
		t0 = reader_now_ns(CLOCK_MONOTONIC);
		rc = reader_bpf_open(&r);
		if (!rc && r) {
			uint64_t load_ns = reader_now_ns(CLOCK_MONOTONIC) - t0;

			rc = reader_bpf_snapshot(r, pid, off, bias, lim, out);
			reader_bpf_close(r);
			out->setup_ns += load_ns;
			if (!rc)
				return 0;
			/* The other reader would fail the same way. */
			if (rc == -ESRCH || rc == -GLIMPSE_ENOTGO)
				return rc;
		}
		snprintf(why, sizeof(why), "BPF reader unavailable: %s", err_msg(rc));
		err_clear();
	}
	rc = reader_vm_snapshot(pid, off, bias, lim, out);
	if (rc)
		return why[0] ? err_wrap(rc, "%s; process_vm_readv", why) : rc;
	snprintf(out->fallback, sizeof(out->fallback), "%s", why);
	return 0;
}
