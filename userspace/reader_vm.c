/* reader_vm.c - the process_vm_readv goroutine reader, and what both readers
 * share (parameters, turning records into struct raw_g).
 *
 * It does from userspace what bpf/snapshot.bpf.c does in the kernel, producing
 * the very same struct snap_g records: read allgs, then in chunks of CHUNK
 * goroutines read their runtime.g (one batched process_vm_readv), their stacks
 * (another), and re-read status/sp/pc (a third) to mark the ones that moved as
 * torn. A running goroutine's registers come from /proc/PID/task/TID/syscall,
 * which has them only while the thread sleeps in the kernel. The target is never
 * stopped or written.
 */
#include "reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/types.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../bpf/snapshot.h"
#include "buf.h"
#include "err.h"

_Static_assert((int)RAW_SRC_SCHED == (int)SNAP_SRC_SCHED && (int)RAW_SRC_SYSCALL == (int)SNAP_SRC_SYSCALL &&
		   (int)RAW_SRC_THREAD == (int)SNAP_SRC_THREAD,
	       "enum raw_src mirrors enum snap_src");

#define CHUNK	  4096 /* goroutines per batch */
#define IOV_BATCH 1024 /* iovecs per process_vm_readv (UIO_MAXIOV) */
#define MAX_ALLGS (1u << 23)

uint64_t reader_now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether pid names a process that has not exited (a zombie has no memory). */
static bool pid_alive(pid_t pid)
{
	char path[64], stat[512], *paren;
	ssize_t len;
	int fd;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	len = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (len <= 0)
		return false;
	stat[len] = '\0';
	paren = strrchr(stat, ')');
	return !paren || (paren[2] != 'Z' && paren[2] != 'X');
}

static bool field_ok(int off, int size, int g_size)
{
	return off >= 0 && off + size <= g_size;
}

static void widen(uint32_t *lo, uint32_t *hi, int off, int size)
{
	if (off < 0)
		return;
	if ((uint32_t)off < *lo)
		*lo = off;
	if ((uint32_t)(off + size) > *hi)
		*hi = off + size;
}

int reader_params(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		  struct snap_params *p)
{
	uint32_t lo = UINT32_MAX, hi = 0;
	int gs = off->g_size;

	memset(p, 0, sizeof(*p));
	if (pid <= 0)
		return err_set(EINVAL, "invalid pid %d", (int)pid);
	if (!pid_alive(pid))
		return err_set(ESRCH, "no process with pid %d", (int)pid);
	if (!off->allgs || !off->allglen)
		return err_set(GLIMPSE_ENOTGO, "pid %d: the addresses of runtime.allgs/allglen are unknown", (int)pid);
	if (gs <= 0 || gs > SNAP_G_MAX)
		return err_set(GLIMPSE_EUNSUP, "runtime.g of %d bytes: glimpse copies at most %d", gs, SNAP_G_MAX);
	if (!field_ok(off->g_stack_lo, 8, gs) || !field_ok(off->g_stack_hi, 8, gs) || !field_ok(off->g_m, 8, gs) ||
	    !field_ok(off->g_sched + off->gobuf_sp, 8, gs) || !field_ok(off->g_sched + off->gobuf_pc, 8, gs) ||
	    !field_ok(off->g_syscallsp, 8, gs) || !field_ok(off->g_syscallpc, 8, gs) ||
	    !field_ok(off->g_atomicstatus, 4, gs) || !field_ok(off->g_goid, 8, gs) || off->m_procid < 0 ||
	    off->g_sched < 0)
		return err_set(GLIMPSE_EUNSUP, "runtime offsets are incomplete (from %s)",
			       off->source ? off->source : "nowhere");
	p->tgid = pid;
	p->max_stack = lim && lim->max_stack ? lim->max_stack : READER_DEFAULT_MAX_STACK;
	if (p->max_stack > READER_MAX_STACK)
		p->max_stack = READER_MAX_STACK;
	p->max_goroutines = lim && lim->max_goroutines ? lim->max_goroutines : UINT32_MAX;
	p->g_size = gs;
	p->allgs = off->allgs + bias;
	p->allglen = off->allglen + bias;
	p->g_stack_lo = off->g_stack_lo;
	p->g_stack_hi = off->g_stack_hi;
	p->g_m = off->g_m;
	p->g_sched_sp = off->g_sched + off->gobuf_sp;
	p->g_sched_pc = off->g_sched + off->gobuf_pc;
	p->g_sched_bp = off->gobuf_bp >= 0 ? off->g_sched + off->gobuf_bp : -1;
	p->g_syscallsp = off->g_syscallsp;
	p->g_syscallpc = off->g_syscallpc;
	p->g_syscallbp = field_ok(off->g_syscallbp, 8, gs) ? off->g_syscallbp : -1;
	p->g_atomicstatus = off->g_atomicstatus;
	p->m_procid = off->m_procid;
	widen(&lo, &hi, p->g_sched_sp, 8);
	widen(&lo, &hi, p->g_sched_pc, 8);
	widen(&lo, &hi, p->g_syscallsp, 8);
	widen(&lo, &hi, p->g_syscallpc, 8);
	widen(&lo, &hi, p->g_atomicstatus, 4);
	p->recheck_off = lo;
	p->recheck_len = hi - lo;
	return 0;
}

int reader_allgs_error(int rc, pid_t pid, uint64_t addr)
{
	if (rc == -ESRCH || !pid_alive(pid))
		return err_set(ESRCH, "no process with pid %d", (int)pid);
	if (rc == -EINVAL)
		return err_set(GLIMPSE_ENOTGO,
			       "pid %d: runtime.allgs at 0x%llx does not hold a goroutine list: "
			       "not a Go process, or not the binary the offsets came from",
			       (int)pid, (unsigned long long)addr);
	if (rc == -EPERM || rc == -EACCES)
		return err_set(EPERM, "pid %d: no permission to read its memory (needs CAP_SYS_PTRACE)", (int)pid);
	return err_set(GLIMPSE_ENOTGO,
		       "pid %d: cannot read runtime.allgs at 0x%llx (%s): "
		       "not a Go process, or not the binary the offsets came from",
		       (int)pid, (unsigned long long)addr, strerror(-rc));
}

static uint64_t hdr_u64(const uint8_t *g, int off)
{
	uint64_t v;

	memcpy(&v, g + off, 8);
	return v;
}

static uint32_t hdr_u32(const uint8_t *g, int off)
{
	uint32_t v;

	memcpy(&v, g + off, 4);
	return v;
}

void reader_add_g(struct buf *gs, const struct snap_g *h, uint8_t *mem, const struct go_offsets *off)
{
	struct raw_g g = {
	    .addr = h->addr,
	    .idx = h->idx,
	    .hdr = mem,
	    .hdr_len = h->g_len,
	    .src = (enum raw_src)h->src,
	    .ip = h->ip,
	    .sp = h->sp,
	    .bp = h->bp,
	    .stack_addr = h->stack_addr,
	    .stack_len = h->stack_len,
	    .stack = h->stack_len ? mem + h->g_len : NULL,
	    .stack_truncated = h->flags & SNAP_F_TRUNCATED,
	    .regs_valid = h->src == SNAP_SRC_THREAD,
	    .tid = h->tid,
	    .on_cpu = h->flags & SNAP_F_ONCPU,
	    .no_thread = h->flags & SNAP_F_NOTHREAD,
	    .sp_outside = h->flags & SNAP_F_SP_OUTSIDE,
	    .read_failed = h->flags & SNAP_F_READ_FAILED,
	    .torn = h->flags & SNAP_F_TORN,
	};

	g.goid = hdr_u64(mem, off->g_goid);
	g.status = hdr_u32(mem, off->g_atomicstatus);
	buf_add(gs, &g, sizeof(g));
}

static int cmp_idx(const void *a, const void *b)
{
	const struct raw_g *x = a, *y = b;

	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void reader_finish(struct raw_snapshot *out, struct buf *gs)
{
	out->n = gs->len / sizeof(struct raw_g);
	out->gs = (struct raw_g *)buf_detach(gs);
	qsort(out->gs, out->n, sizeof(struct raw_g), cmp_idx);
	out->torn = 0;
	for (size_t i = 0; i < out->n; i++)
		out->torn += out->gs[i].torn;
}

void raw_snapshot_free(struct raw_snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->gs[i].hdr);
	free(s->gs);
	free(s->threads);
	memset(s, 0, sizeof(*s));
}

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
			if (errno == ESRCH)
				return err_set(ESRCH, "no process with pid %d", (int)pid);
			if (errno == EPERM)
				return err_set(EPERM, "pid %d: no permission to read its memory (needs CAP_SYS_PTRACE)",
					       (int)pid);
			if (errno != EFAULT)
				return err_set(errno, "process_vm_readv of pid %d: %s", (int)pid, strerror(errno));
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

static int read_remote(pid_t pid, void *dst, size_t n, uint64_t addr)
{
	struct iovec l = {dst, n}, r = {(void *)addr, n};
	bool ok = false;
	int rc = readv_pairs(pid, &l, &r, 1, &ok);

	if (rc)
		return rc;
	return ok ? 0 : -EFAULT;
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
	rc = read_remote(pid, slice, sizeof(slice), p->allgs);
	if (!rc)
		rc = read_remote(pid, &glen, sizeof(glen), p->allglen);
	if (rc)
		return rc == -EFAULT ? reader_allgs_error(rc, pid, p->allgs) : rc;
	len = slice[1] < glen ? slice[1] : glen;
	if (len > slice[2] || len > MAX_ALLGS || (len && !slice[0]))
		return reader_allgs_error(-EINVAL, pid, p->allgs);
	*ptrs = xmalloc(len * 8 + 8);
	rc = read_remote(pid, *ptrs, len * 8, slice[0]);
	if (rc) {
		free(*ptrs);
		*ptrs = NULL;
		return rc == -EFAULT ? reader_allgs_error(rc, pid, p->allgs) : rc;
	}
	*n = len;
	return 0;
}

static uint64_t g_field(const struct snap_g *h, int off)
{
	return off >= 0 ? hdr_u64(h->g, off) : 0;
}

/* One chunk of goroutines on its way through the three reads. Their runtime.g
 * structs sit next to each other in heap spans, so they are read as a few
 * coalesced ranges rather than one iovec each (process_vm_readv costs about a
 * microsecond per iovec here, far more than the bytes it copies). */
struct chunk {
	size_t n;
	struct snap_g *h; /* CHUNK records */
	uint8_t **mem;	  /* per record: g bytes then stack, handed to reader_add_g */
	bool *live;
	size_t *at;    /* per record: offset of its g in data, or SIZE_MAX */
	size_t *order; /* records sorted by address */
	size_t nranges;
	struct iovec *rlocal, *rremote; /* the coalesced ranges */
	bool *rok;
	size_t *range_of;	      /* per record: its range */
	uint8_t *data;		      /* the ranges, back to back */
	struct iovec *local, *remote; /* stacks */
	bool *ok;
};

#define GAP 512 /* bytes of slack worth reading to save an iovec */

/* Where the stack is and how much of it to copy: the same rules as copy_stack()
 * in snapshot.bpf.c. Returns the length to copy. */
static uint32_t plan_stack(const struct snap_params *p, struct snap_g *h)
{
	uint64_t lo = g_field(h, p->g_stack_lo), hi = g_field(h, p->g_stack_hi), want;

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
static uint32_t plan_running(pid_t pid, const struct snap_params *p, struct snap_g *h)
{
	uint64_t m = g_field(h, p->g_m), procid = 0, ip, sp;
	int rc;

	if (!m || read_remote(pid, &procid, 8, m + p->m_procid) || !procid || procid > 0x7fffffff) {
		h->flags |= SNAP_F_NOTHREAD;
		return 0;
	}
	h->tid = procid;
	rc = thread_regs(pid, h->tid, &ip, &sp);
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
	return plan_stack(p, h);
}

/* Fills record i from its copied g; returns the stack length to copy, or -1
 * when the goroutine is dead or idle. */
static int64_t plan_g(pid_t pid, const struct snap_params *p, struct snap_g *h)
{
	uint32_t status = hdr_u32(h->g, p->g_atomicstatus) & ~SNAP_G_SCANBIT;

	if (status == SNAP_G_IDLE || status == SNAP_G_DEAD)
		return -1;
	h->kind = SNAP_REC_G;
	h->g_len = p->g_size;
	if (status == SNAP_G_RUNNING)
		return plan_running(pid, p, h);
	if (status == SNAP_G_SYSCALL) {
		h->src = SNAP_SRC_SYSCALL;
		h->sp = g_field(h, p->g_syscallsp);
		h->ip = g_field(h, p->g_syscallpc);
		h->bp = g_field(h, p->g_syscallbp);
	} else {
		h->src = SNAP_SRC_SCHED;
		h->sp = g_field(h, p->g_sched_sp);
		h->ip = g_field(h, p->g_sched_pc);
		h->bp = g_field(h, p->g_sched_bp);
	}
	return plan_stack(p, h);
}

/* The same test as recheck() in snapshot.bpf.c, on g re-read after the copy. */
static void recheck(pid_t pid, const struct snap_params *p, struct snap_g *h, const uint8_t *g, bool ok)
{
	uint32_t was = hdr_u32(h->g, p->g_atomicstatus) & ~SNAP_G_SCANBIT;
	uint64_t ip, sp;

	if (!ok || (hdr_u32(g, p->g_atomicstatus) & ~SNAP_G_SCANBIT) != was) {
		h->flags |= SNAP_F_TORN;
		return;
	}
	if (h->src == SNAP_SRC_SCHED && (hdr_u64(g, p->g_sched_sp) != h->sp || hdr_u64(g, p->g_sched_pc) != h->ip))
		h->flags |= SNAP_F_TORN;
	if (h->src == SNAP_SRC_SYSCALL && (hdr_u64(g, p->g_syscallsp) != h->sp || hdr_u64(g, p->g_syscallpc) != h->ip))
		h->flags |= SNAP_F_TORN;
	/* The thread ran in between: its registers no longer describe the copy. */
	if (h->src == SNAP_SRC_THREAD && (thread_regs(pid, h->tid, &ip, &sp) != 0 || ip != h->ip || sp != h->sp))
		h->flags |= SNAP_F_TORN;
}

static int cmp_addr(const void *a, const void *b, void *arg)
{
	const struct snap_g *h = arg;
	uint64_t x = h[*(const size_t *)a].addr, y = h[*(const size_t *)b].addr;

	return x < y ? -1 : x > y;
}

/* Groups the g structs of c into ranges no more than GAP bytes apart. */
static void plan_ranges(const struct snap_params *p, struct chunk *c)
{
	size_t k = 0, bytes = 0;

	for (size_t i = 0; i < c->n; i++)
		if (c->h[i].addr)
			c->order[k++] = i;
	qsort_r(c->order, k, sizeof(size_t), cmp_addr, c->h);
	c->nranges = 0;
	for (size_t j = 0; j < k;) {
		uint64_t lo = c->h[c->order[j]].addr, hi = lo + p->g_size;
		size_t first = j;

		while (++j < k && c->h[c->order[j]].addr <= hi + GAP)
			if (c->h[c->order[j]].addr + p->g_size > hi)
				hi = c->h[c->order[j]].addr + p->g_size;
		for (size_t m = first; m < j; m++) {
			c->at[c->order[m]] = bytes + (c->h[c->order[m]].addr - lo);
			c->range_of[c->order[m]] = c->nranges;
		}
		c->rlocal[c->nranges] = (struct iovec){c->data + bytes, hi - lo};
		c->rremote[c->nranges] = (struct iovec){(void *)lo, hi - lo};
		c->nranges++;
		bytes += hi - lo;
	}
}

/* Reads the g of every entry of ptrs[0..c->n) into c->h. */
static int read_headers(pid_t pid, const struct snap_params *p, struct chunk *c, const uint64_t *ptrs, size_t base)
{
	int rc;

	for (size_t i = 0; i < c->n; i++) {
		memset(&c->h[i], 0, offsetof(struct snap_g, g));
		c->h[i].idx = base + i;
		c->h[i].addr = ptrs[i];
		c->at[i] = SIZE_MAX;
	}
	plan_ranges(p, c);
	rc = readv_pairs(pid, c->rlocal, c->rremote, c->nranges, c->rok);
	if (rc)
		return rc;
	for (size_t i = 0; i < c->n; i++) {
		c->live[i] = c->at[i] != SIZE_MAX && c->rok[c->range_of[i]];
		if (c->live[i])
			memcpy(c->h[i].g, c->data + c->at[i], p->g_size);
	}
	return 0;
}

/* Plans and reads the stacks of the live goroutines of c. */
static int read_stacks(pid_t pid, const struct snap_params *p, struct chunk *c, size_t *budget, bool *truncated)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n; i++) {
		int64_t len;

		c->mem[i] = NULL;
		if (!c->live[i])
			continue;
		if (*budget == 0) {
			*truncated = true;
			c->live[i] = false;
			continue;
		}
		len = plan_g(pid, p, &c->h[i]);
		if (len < 0) {
			c->live[i] = false;
			continue;
		}
		(*budget)--;
		c->mem[i] = xmalloc(p->g_size + len);
		memcpy(c->mem[i], c->h[i].g, p->g_size);
		c->h[i].stack_len = len;
		c->h[i].stack_addr = len ? c->h[i].sp : 0;
		c->local[k] = (struct iovec){c->mem[i] + p->g_size, len};
		c->remote[k] = (struct iovec){(void *)c->h[i].sp, len};
		k++;
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
		if (!c->live[i])
			continue;
		if (!c->ok[k++] && c->h[i].stack_len) {
			c->h[i].flags |= SNAP_F_READ_FAILED;
			c->h[i].stack_len = 0;
			c->h[i].stack_addr = 0;
		}
	}
	rc = readv_pairs(pid, c->rlocal, c->rremote, c->nranges, c->rok);
	if (rc)
		return rc;
	for (size_t i = 0; i < c->n; i++) {
		if (!c->live[i])
			continue;
		recheck(pid, p, &c->h[i], c->data + c->at[i], c->rok[c->range_of[i]]);
		reader_add_g(gs, &c->h[i], c->mem[i], off);
		c->mem[i] = NULL;
	}
	return 0;
}

static void chunk_init(struct chunk *c, const struct snap_params *p)
{
	memset(c, 0, sizeof(*c));
	c->h = xcalloc(CHUNK, sizeof(struct snap_g));
	c->mem = xcalloc(CHUNK, sizeof(uint8_t *));
	c->live = xcalloc(CHUNK, sizeof(bool));
	c->at = xcalloc(CHUNK, sizeof(size_t));
	c->order = xcalloc(CHUNK, sizeof(size_t));
	c->rlocal = xcalloc(CHUNK, sizeof(struct iovec));
	c->rremote = xcalloc(CHUNK, sizeof(struct iovec));
	c->rok = xcalloc(CHUNK, sizeof(bool));
	c->range_of = xcalloc(CHUNK, sizeof(size_t));
	c->data = xmalloc((size_t)CHUNK * (p->g_size + GAP));
	c->local = xcalloc(CHUNK, sizeof(struct iovec));
	c->remote = xcalloc(CHUNK, sizeof(struct iovec));
	c->ok = xcalloc(CHUNK, sizeof(bool));
}

static void chunk_free(struct chunk *c)
{
	for (size_t i = 0; i < CHUNK && c->mem; i++)
		free(c->mem[i]);
	free(c->h);
	free(c->mem);
	free(c->live);
	free(c->at);
	free(c->order);
	free(c->rlocal);
	free(c->rremote);
	free(c->rok);
	free(c->range_of);
	free(c->data);
	free(c->local);
	free(c->remote);
	free(c->ok);
}

static int walk(pid_t pid, const struct snap_params *p, const struct go_offsets *off, struct raw_snapshot *out,
		struct buf *gs)
{
	size_t n, budget = p->max_goroutines;
	struct chunk c;
	uint64_t *ptrs;
	int rc;

	rc = read_allgs(pid, p, &ptrs, &n);
	if (rc)
		return rc;
	out->allglen = n;
	chunk_init(&c, p);
	for (size_t base = 0; base < n && budget; base += CHUNK) {
		c.n = n - base < CHUNK ? n - base : CHUNK;
		rc = read_headers(pid, p, &c, ptrs + base, base);
		if (!rc)
			rc = read_stacks(pid, p, &c, &budget, &out->truncated);
		if (!rc)
			rc = finish_chunk(pid, p, off, &c, gs);
		if (rc)
			break;
		if (!budget && base + c.n < n)
			out->truncated = true;
	}
	free(ptrs);
	chunk_free(&c);
	return rc;
}

int reader_vm_snapshot(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		       struct raw_snapshot *out)
{
	struct snap_params p;
	struct buf gs = {0};
	uint64_t t0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = reader_params(pid, off, bias, lim, &p);
	if (rc)
		return rc;
	out->reader = "process_vm_readv";
	out->started_ns = reader_now_ns(CLOCK_REALTIME);
	t0 = reader_now_ns(CLOCK_MONOTONIC);
	rc = read_threads(pid, out);
	if (!rc)
		rc = walk(pid, &p, off, out, &gs);
	if (rc) {
		struct raw_snapshot partial = {.n = gs.len / sizeof(struct raw_g), .gs = (struct raw_g *)gs.p};

		partial.threads = out->threads;
		raw_snapshot_free(&partial);
		memset(out, 0, sizeof(*out));
		return rc;
	}
	reader_finish(out, &gs);
	out->duration_ns = reader_now_ns(CLOCK_MONOTONIC) - t0;
	out->runs = 1;
	return 0;
}
