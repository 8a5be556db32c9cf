/* reader_vm.c - the process_vm_readv goroutine reader (what it shares with the
 * BPF reader is in reader_common.c; reader.c chooses between them).
 *
 * It does from userspace what bpf/snapshot.bpf.c does in the kernel, producing
 * the very same struct snap_g records: read allgs, then in chunks of CHUNK
 * goroutines read their runtime.g structs (coalesced ranges, one batched
 * process_vm_readv), their stacks (one iovec each, straight into the
 * snapshot's memory), and the g ranges again to mark the ones whose status, sp
 * or pc moved as torn. A running goroutine's registers come from
 * /proc/PID/task/TID/syscall, which has them only while the thread sleeps in the
 * kernel. The target is never stopped or written.
 *
 * Each iovec costs ~0.6 us here whatever its size up to a page, fresh memory
 * ~1.4 us a page: so ranges are coalesced, and every chunk's goroutines share
 * one block of memory.
 */
#include "reader_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/types.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../bpf/snapshot.h"
#include "buf.h"
#include "err.h"

_Static_assert((int)RAW_SRC_SCHED == (int)SNAP_SRC_SCHED && (int)RAW_SRC_SYSCALL == (int)SNAP_SRC_SYSCALL &&
		   (int)RAW_SRC_THREAD == (int)SNAP_SRC_THREAD,
	       "enum raw_src mirrors enum snap_src");

#define CHUNK	  512  /* goroutines per batch (bounds the time between copy and re-check) */
#define IOV_BATCH 1024 /* iovecs per process_vm_readv (UIO_MAXIOV) */

/* Reads cnt (local[i], remote[i]) pairs of equal length; ok[i] says whether pair
 * i was read completely. Returns 0, or a negative code when the process cannot
 * be read at all (gone, no permission). */
static int readv_pairs(pid_t pid, struct iovec *local, struct iovec *remote, size_t cnt, bool *ok)
{
	size_t i = 0;

	while (i < cnt) {
		size_t batch = cnt - i < IOV_BATCH ? cnt - i : IOV_BATCH, j = i;
		ssize_t got = process_vm_readv(pid, local + i, batch, remote + i, batch, 0);

		if (got < 0) {
			if (errno != EFAULT)
				return reader_read_error(errno, pid);
			got = 0; /* the first pair is unreadable */
		}
		while (j < i + batch && (size_t)got >= local[j].iov_len) {
			ok[j] = true;
			got -= local[j].iov_len;
			j++;
		}
		if (j < i + batch)
			ok[j++] = false; /* read partly or not at all */
		i = j;
	}
	return 0;
}

/* The user sp and pc of thread tid while it sleeps in the kernel, from
 * /proc/PID/task/TID/syscall. Returns 0, 1 when it is running (no registers to
 * be had), or a negative errno (no such thread). */
static int thread_regs(pid_t pid, uint32_t tid, uint64_t *ip, uint64_t *sp)
{
	char path[64], line[512], *tok[10], *save = NULL, *t;
	int fd, n = 0;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%d/task/%u/syscall", (int)pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (len <= 0)
		return -EIO;
	line[len] = '\0';
	if (!strncmp(line, "running", 7))
		return 1;
	for (t = strtok_r(line, " \n", &save); t && n < 10; t = strtok_r(NULL, " \n", &save))
		tok[n++] = t;
	if (n < 3)
		return -EIO;
	*sp = strtoull(tok[n - 2], NULL, 16);
	*ip = strtoull(tok[n - 1], NULL, 16);
	return 0;
}

/* The threads of pid with their state and, when asleep, their user sp/pc. */
static int read_threads(pid_t pid, struct raw_snapshot *out)
{
	char path[64], stat[512];
	struct buf threads = {0};
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return err_set(ESRCH, "no process with pid %d", (int)pid);
	while ((de = readdir(dir)) != NULL) {
		struct raw_thread t = {0};
		char *paren;
		ssize_t len;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		t.tid = strtoul(de->d_name, NULL, 10);
		snprintf(path, sizeof(path), "/proc/%d/task/%u/stat", (int)pid, t.tid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (len <= 0)
			continue;
		stat[len] = '\0';
		paren = strrchr(stat, ')');
		t.on_cpu = paren && paren[1] == ' ' && paren[2] == 'R';
		if (!t.on_cpu)
			t.regs_valid = thread_regs(pid, t.tid, &t.ip, &t.sp) == 0;
		buf_add(&threads, &t, sizeof(t));
	}
	closedir(dir);
	out->nthreads = threads.len / sizeof(struct raw_thread);
	out->threads = (struct raw_thread *)buf_detach(&threads);
	return 0;
}

/* The allgs slice: its entries (caller frees *ptrs) and their count. */
static int read_allgs(pid_t pid, const struct snap_params *p, uint64_t **ptrs, size_t *n)
{
	uint64_t slice[3], glen, len;
	int rc;

	*ptrs = NULL;
	*n = 0;
	rc = reader_read(pid, slice, sizeof(slice), p->allgs);
	if (!rc)
		rc = reader_read(pid, &glen, sizeof(glen), p->allglen);
	if (rc)
		return rc == -EFAULT ? reader_allgs_error(rc, pid, p->allgs) : rc;
	len = slice[1] < glen ? slice[1] : glen;
	if (len > slice[2] || len > MAX_ALLGS || (len && !slice[0]))
		return reader_allgs_error(-EINVAL, pid, p->allgs);
	*ptrs = xmalloc(len * 8 + 8);
	rc = reader_read(pid, *ptrs, len * 8, slice[0]);
	if (rc) {
		free(*ptrs);
		*ptrs = NULL;
		return rc == -EFAULT ? reader_allgs_error(rc, pid, p->allgs) : rc;
	}
	*n = len;
	return 0;
}

/* One goroutine of a chunk on its way through the three reads. */
struct vm_g {
	struct snap_g h;
	uint8_t *g;	/* its runtime.g: in the range copy, later in the snapshot's memory */
	uint8_t *stack; /* where its stack goes, in the snapshot's memory */
	size_t at;	/* offset of its g in the range copy, or SIZE_MAX */
	size_t range;	/* the range its g is in */
	bool live;	/* read, not dead or idle, within the budget */
};

/* A chunk of goroutines. Their runtime.g structs sit next to each other in
 * heap spans, so they are read as a few coalesced ranges rather than one iovec
 * each. */
struct chunk {
	size_t n;
	struct vm_g *gs; /* CHUNK of them */
	size_t *order;	 /* gs sorted by address */
	size_t nranges;
	struct iovec *rlocal, *rremote; /* the coalesced ranges */
	bool *rok;
	uint8_t *data; /* the ranges, back to back */
	size_t data_cap;
	struct iovec *local, *remote; /* stacks */
	bool *ok;
	const struct snap_tid *tids; /* see reader_ns_tids() */
	size_t ntids;
};

/* Where the time of a snapshot went (GLIMPSE_READER_PROFILE=1), in ns. */
struct vm_profile {
	uint64_t threads, allgs, headers, stacks, recheck;
	size_t ranges, stack_bytes;
};

#define GAP 512 /* bytes of slack worth reading to save an iovec */

static uint64_t g_field(const struct vm_g *v, int off)
{
	return off >= 0 ? reader_u64(v->g, off) : 0;
}

/* Where the stack is and how much of it to copy: the same rules as plan_stack()
 * in snapshot.bpf.c. Returns the length to copy. */
static uint32_t plan_stack(const struct snap_params *p, struct vm_g *v)
{
	uint64_t lo = g_field(v, p->g_stack_lo), hi = g_field(v, p->g_stack_hi), want;
	struct snap_g *h = &v->h;

	if (!h->sp || h->sp < lo || h->sp >= hi) {
		h->flags |= SNAP_F_SP_OUTSIDE;
		return 0;
	}
	want = hi - h->sp;
	if (want > p->max_stack) {
		want = p->max_stack;
		h->flags |= SNAP_F_TRUNCATED;
	}
	return want;
}

/* A running goroutine: registers of its thread if that thread sleeps. */
static uint32_t plan_running(pid_t pid, const struct snap_params *p, const struct chunk *c, struct vm_g *v)
{
	uint64_t m = g_field(v, p->g_m), procid = 0, ip, sp;
	struct snap_g *h = &v->h;
	int rc;

	if (!m || reader_read(pid, &procid, 8, m + p->m_procid) || !procid || procid > 0x7fffffff) {
		h->flags |= SNAP_F_NOTHREAD;
		return 0;
	}
	h->tid = reader_host_tid(c->tids, c->ntids, procid);
	rc = h->tid ? thread_regs(pid, h->tid, &ip, &sp) : -ESRCH;
	if (rc < 0) {
		h->flags |= SNAP_F_NOTHREAD;
		return 0;
	}
	if (rc > 0) {
		h->flags |= SNAP_F_ONCPU;
		return 0;
	}
	h->src = SNAP_SRC_THREAD;
	h->ip = ip;
	h->sp = sp;
	return plan_stack(p, v);
}

/* Fills the record of v from its copied g; returns the stack length to copy,
 * or -1 when the goroutine is dead or idle. */
static int64_t plan_g(pid_t pid, const struct snap_params *p, const struct chunk *c, struct vm_g *v)
{
	uint32_t status = reader_u32(v->g, p->g_atomicstatus) & ~SNAP_G_SCANBIT;
	struct snap_g *h = &v->h;

	if (status == SNAP_G_IDLE || status == SNAP_G_DEAD)
		return -1;
	h->kind = SNAP_REC_G;
	h->g_len = p->g_size;
	if (status == SNAP_G_RUNNING)
		return plan_running(pid, p, c, v);
	if (status == SNAP_G_SYSCALL) {
		h->src = SNAP_SRC_SYSCALL;
		h->sp = g_field(v, p->g_syscallsp);
		h->ip = g_field(v, p->g_syscallpc);
		h->bp = g_field(v, p->g_syscallbp);
	} else {
		h->src = SNAP_SRC_SCHED;
		h->sp = g_field(v, p->g_sched_sp);
		h->ip = g_field(v, p->g_sched_pc);
		h->bp = g_field(v, p->g_sched_bp);
	}
	return plan_stack(p, v);
}

/* The same test as g_moved() in snapshot.bpf.c, on g re-read after the copy:
 * the first SNAP_G_RECHECK bytes of a parked g (trackingSeq among them changes
 * whenever the goroutine stops running, so one that ran and parked at the same
 * sp and pc is caught), the status of a running one, and its thread's registers. */
static void recheck(pid_t pid, const struct snap_params *p, struct vm_g *v, const uint8_t *g, bool ok)
{
	uint32_t was = reader_u32(v->g, p->g_atomicstatus) & ~SNAP_G_SCANBIT;
	struct snap_g *h = &v->h;
	uint64_t ip, sp;

	if (!ok) {
		h->flags |= SNAP_F_TORN;
		return;
	}
	if (h->src == SNAP_SRC_SCHED || h->src == SNAP_SRC_SYSCALL) {
		if (memcmp(v->g, g, p->g_size < SNAP_G_RECHECK ? p->g_size : SNAP_G_RECHECK))
			h->flags |= SNAP_F_TORN;
		return;
	}
	if ((reader_u32(g, p->g_atomicstatus) & ~SNAP_G_SCANBIT) != was)
		h->flags |= SNAP_F_TORN;
	/* The thread ran in between: its registers no longer describe the copy. */
	else if (h->src == SNAP_SRC_THREAD && (thread_regs(pid, h->tid, &ip, &sp) != 0 || ip != h->ip || sp != h->sp))
		h->flags |= SNAP_F_TORN;
}

static int cmp_addr(const void *a, const void *b, void *arg)
{
	const struct vm_g *gs = arg;
	uint64_t x = gs[*(const size_t *)a].h.addr, y = gs[*(const size_t *)b].h.addr;

	return x < y ? -1 : x > y;
}

/* Groups the g structs of c into ranges no more than GAP bytes apart, and makes
 * room for them in c->data. */
static void plan_ranges(const struct snap_params *p, struct chunk *c)
{
	size_t k = 0, bytes = 0, i, j;

	for (i = 0; i < c->n; i++)
		if (c->gs[i].h.addr)
			c->order[k++] = i;
	/* allgs is mostly in address order already; sort only when it is not. */
	for (i = 1; i < k && c->gs[c->order[i - 1]].h.addr <= c->gs[c->order[i]].h.addr; i++)
		;
	if (i < k)
		qsort_r(c->order, k, sizeof(size_t), cmp_addr, c->gs);
	c->nranges = 0;
	for (j = 0; j < k;) {
		uint64_t lo = c->gs[c->order[j]].h.addr, hi = lo + p->g_size;
		size_t first = j;

		while (++j < k && c->gs[c->order[j]].h.addr <= hi + GAP)
			if (c->gs[c->order[j]].h.addr + p->g_size > hi)
				hi = c->gs[c->order[j]].h.addr + p->g_size;
		for (size_t m = first; m < j; m++) {
			c->gs[c->order[m]].at = bytes + (c->gs[c->order[m]].h.addr - lo);
			c->gs[c->order[m]].range = c->nranges;
		}
		c->rremote[c->nranges] = (struct iovec){(void *)lo, hi - lo};
		c->nranges++;
		bytes += hi - lo;
	}
	if (bytes > c->data_cap) {
		free(c->data);
		c->data_cap = bytes;
		c->data = xmalloc(bytes);
	}
	for (i = 0, bytes = 0; i < c->nranges; i++) {
		c->rlocal[i] = (struct iovec){c->data + bytes, c->rremote[i].iov_len};
		bytes += c->rremote[i].iov_len;
	}
}

/* Reads the g of every entry of ptrs[0..c->n) into c->data. */
static int read_headers(pid_t pid, const struct snap_params *p, struct chunk *c, const uint64_t *ptrs, size_t base)
{
	int rc;

	for (size_t i = 0; i < c->n; i++) {
		memset(&c->gs[i], 0, sizeof(c->gs[i]));
		c->gs[i].h.idx = base + i;
		c->gs[i].h.addr = ptrs[i];
		c->gs[i].at = SIZE_MAX;
	}
	plan_ranges(p, c);
	rc = readv_pairs(pid, c->rlocal, c->rremote, c->nranges, c->rok);
	if (rc)
		return rc;
	for (size_t i = 0; i < c->n; i++) {
		struct vm_g *v = &c->gs[i];

		v->live = v->at != SIZE_MAX && c->rok[v->range];
		v->g = v->live ? c->data + v->at : NULL;
	}
	return 0;
}

/* Plans the stacks of the live goroutines of c, moves their g into one block
 * of the snapshot's memory with room for the stacks, and reads the stacks. */
static int read_stacks(pid_t pid, const struct snap_params *p, struct chunk *c, struct raw_snapshot *out,
		       size_t *budget, size_t *stack_bytes)
{
	size_t k = 0, bytes = 0;
	uint8_t *mem;

	for (size_t i = 0; i < c->n; i++) {
		struct vm_g *v = &c->gs[i];
		int64_t len;

		if (!v->live)
			continue;
		if (*budget == 0) {
			out->truncated = true;
			v->live = false;
			continue;
		}
		len = plan_g(pid, p, c, v);
		if (len < 0) {
			v->live = false;
			continue;
		}
		(*budget)--;
		v->h.stack_len = len;
		v->h.stack_addr = len ? v->h.sp : 0;
		bytes += ((p->g_size + 7) & ~7u) + ((len + 7) & ~7u);
	}
	if (!bytes)
		return 0; /* nothing live in this chunk */
	mem = reader_alloc(out, bytes, bytes);
	for (size_t i = 0; i < c->n; i++) {
		struct vm_g *v = &c->gs[i];

		if (!v->live)
			continue;
		memcpy(mem, v->g, p->g_size);
		v->g = mem;
		mem += (p->g_size + 7) & ~7u;
		v->stack = mem;
		mem += (v->h.stack_len + 7) & ~7u;
		if (!v->h.stack_len)
			continue;
		c->local[k] = (struct iovec){v->stack, v->h.stack_len};
		c->remote[k] = (struct iovec){(void *)v->h.sp, v->h.stack_len};
		k++;
		*stack_bytes += v->h.stack_len;
	}
	return readv_pairs(pid, c->local, c->remote, k, c->ok);
}

/* Marks failed stack reads, re-reads the g ranges, marks what moved as torn,
 * and hands the records to gs. */
static int finish_chunk(pid_t pid, const struct snap_params *p, const struct go_offsets *off, struct chunk *c,
			struct buf *gs)
{
	size_t k = 0;
	int rc;

	for (size_t i = 0; i < c->n; i++) {
		struct vm_g *v = &c->gs[i];

		if (!v->live || !v->h.stack_len)
			continue;
		if (!c->ok[k++]) {
			v->h.flags |= SNAP_F_READ_FAILED;
			v->h.stack_len = 0;
			v->h.stack_addr = 0;
		}
	}
	rc = readv_pairs(pid, c->rlocal, c->rremote, c->nranges, c->rok);
	if (rc)
		return rc;
	for (size_t i = 0; i < c->n; i++) {
		struct vm_g *v = &c->gs[i];

		if (!v->live)
			continue;
		recheck(pid, p, v, c->data + v->at, c->rok[v->range]);
		reader_add_g(gs, &v->h, v->g, v->stack, off);
	}
	return 0;
}

static void chunk_init(struct chunk *c)
{
	memset(c, 0, sizeof(*c));
	c->gs = xcalloc(CHUNK, sizeof(*c->gs));
	c->order = xcalloc(CHUNK, sizeof(size_t));
	c->rlocal = xcalloc(CHUNK, sizeof(struct iovec));
	c->rremote = xcalloc(CHUNK, sizeof(struct iovec));
	c->rok = xcalloc(CHUNK, sizeof(bool));
	c->data = xmalloc(8); /* never NULL; plan_ranges() makes the room */
	c->local = xcalloc(CHUNK, sizeof(struct iovec));
	c->remote = xcalloc(CHUNK, sizeof(struct iovec));
	c->ok = xcalloc(CHUNK, sizeof(bool));
}

static void chunk_free(struct chunk *c)
{
	free(c->gs);
	free(c->order);
	free(c->rlocal);
	free(c->rremote);
	free(c->rok);
	free(c->data);
	free(c->local);
	free(c->remote);
	free(c->ok);
}

static int walk(pid_t pid, const struct snap_params *p, const struct go_offsets *off, struct raw_snapshot *out,
		struct buf *gs, struct vm_profile *prof)
{
	size_t n, budget = p->max_goroutines;
	uint64_t t0 = reader_now_ns(CLOCK_MONOTONIC), t1;
	struct snap_tid *tids;
	struct chunk c;
	uint64_t *ptrs;
	int rc;

	rc = read_allgs(pid, p, &ptrs, &n);
	if (rc)
		return rc;
	out->allglen = n;
	chunk_init(&c);
	c.ntids = reader_ns_tids(pid, &tids);
	c.tids = tids;
	t1 = reader_now_ns(CLOCK_MONOTONIC);
	prof->allgs = t1 - t0;
	for (size_t base = 0; base < n && budget; base += CHUNK) {
		c.n = n - base < CHUNK ? n - base : CHUNK;
		rc = read_headers(pid, p, &c, ptrs + base, base);
		t0 = reader_now_ns(CLOCK_MONOTONIC);
		prof->headers += t0 - t1;
		prof->ranges += c.nranges;
		if (!rc)
			rc = read_stacks(pid, p, &c, out, &budget, &prof->stack_bytes);
		t1 = reader_now_ns(CLOCK_MONOTONIC);
		prof->stacks += t1 - t0;
		if (!rc)
			rc = finish_chunk(pid, p, off, &c, gs);
		t0 = reader_now_ns(CLOCK_MONOTONIC);
		prof->recheck += t0 - t1;
		t1 = t0;
		if (rc)
			break;
		if (!budget && base + c.n < n)
			out->truncated = true;
	}
	free(ptrs);
	free(tids);
	chunk_free(&c);
	return rc;
}

static void print_profile(const struct raw_snapshot *out, const struct vm_profile *p)
{
	size_t n = out->n ? out->n : 1;

	fprintf(stderr, "glimpse process_vm_readv reader: %zu goroutines in %.3f ms (%.3f us each)\n", out->n,
		out->duration_ns / 1e6, out->duration_ns / 1e3 / n);
	fprintf(stderr,
		"  threads %.3f ms, allgs %.3f ms, g ranges %.3f ms (%zu ranges), stacks %.3f ms "
		"(%zu bytes each), re-check %.3f ms\n",
		p->threads / 1e6, p->allgs / 1e6, p->headers / 1e6, p->ranges, p->stacks / 1e6, p->stack_bytes / n,
		p->recheck / 1e6);
}

int reader_vm_snapshot(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		       struct raw_snapshot *out)
{
	struct vm_profile prof = {0};
	struct snap_params p;
	struct buf gs = {0};
	uint64_t t0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = reader_params(pid, off, bias, lim, &p);
	if (rc)
		return rc;
	out->reader = "process_vm_readv";
	reader_reserve(pid, &p, out, &gs);
	out->started_ns = reader_now_ns(CLOCK_REALTIME);
	t0 = reader_now_ns(CLOCK_MONOTONIC);
	rc = read_threads(pid, out);
	prof.threads = reader_now_ns(CLOCK_MONOTONIC) - t0;
	if (!rc)
		rc = walk(pid, &p, off, out, &gs, &prof);
	if (rc) {
		buf_free(&gs);
		reader_release(out);
		return rc;
	}
	reader_finish(out, &gs);
	out->duration_ns = reader_now_ns(CLOCK_MONOTONIC) - t0;
	out->walk.runs = 1;
	if (reader_profiling())
		print_profile(out, &prof);
	return 0;
}
