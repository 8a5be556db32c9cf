/* reader_common.c - what both goroutine readers (reader_bpf.c, reader_vm.c)
 * share, below them: checking a target and the walk's parameters, a
 * snapshot's memory, turning walk records into struct raw_g, reading the
 * target's memory with process_vm_readv, and mapping thread ids out of a
 * target's pid namespace. Neither reader calls the other; reader.c, above
 * both, chooses between them.
 */
#include "reader_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

int reader_params(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		  struct snap_params *p)
{
	int gs = off->g_size;

	memset(p, 0, sizeof(*p));
	if (pid <= 0)
		return err_set(EINVAL, "invalid pid %d", (int)pid);
	if (!pid_alive(pid))
		return err_set(ESRCH, "no process with pid %d", (int)pid);
	if (!off->allgs || !off->allglen)
		return err_set(GLIMPSE_ENOTGO, "pid %d: the addresses of runtime.allgs/allglen are unknown", (int)pid);
	if (gs < SNAP_G_RECHECK || gs > SNAP_G_MAX)
		return err_set(GLIMPSE_EUNSUP, "runtime.g of %d bytes: glimpse copies %d to %d", gs, SNAP_G_RECHECK,
			       SNAP_G_MAX);
	if (!field_ok(off->g_stack_lo, 8, gs) || !field_ok(off->g_stack_hi, 8, gs) || !field_ok(off->g_m, 8, gs) ||
	    !field_ok(off->g_sched + off->gobuf_sp, 8, gs) || !field_ok(off->g_sched + off->gobuf_pc, 8, gs) ||
	    !field_ok(off->g_syscallsp, 8, gs) || !field_ok(off->g_syscallpc, 8, gs) ||
	    !field_ok(off->g_atomicstatus, 4, gs) || !field_ok(off->g_goid, 8, gs) || off->m_procid < 0 ||
	    off->g_sched < 0)
		return err_set(GLIMPSE_EUNSUP, "runtime offsets are incomplete (from %s)",
			       off->source ? off->source : "nowhere");
	/* The re-check after copying a stack compares the start of the g. */
	if (!field_ok(off->g_sched + off->gobuf_pc, 8, SNAP_G_RECHECK) ||
	    !field_ok(off->g_syscallpc, 8, SNAP_G_RECHECK) || !field_ok(off->g_atomicstatus, 4, SNAP_G_RECHECK))
		return err_set(GLIMPSE_EUNSUP, "runtime.g keeps its status past byte %d: glimpse cannot re-check it",
			       SNAP_G_RECHECK);
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

/* Whether pid is in glimpse's pid namespace (or that cannot be told). */
static bool same_pid_ns(pid_t pid)
{
	struct stat self, them;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	if (stat("/proc/self/ns/pid", &self) || stat(path, &them))
		return true;
	return self.st_ino == them.st_ino && self.st_dev == them.st_dev;
}

/* From the text of a /proc/PID/task/TID/status, the thread's tid as glimpse
 * sees it and in the innermost namespace (the first and last NSpid fields). */
static bool parse_nspid(const char *status, struct snap_tid *t)
{
	const char *line = strstr(status, "\nNSpid:");
	char *end;

	if (!line)
		return false;
	line += 7;
	t->host = strtoul(line, &end, 10);
	if (end == line)
		return false;
	t->ns = t->host;
	for (line = end; *line == ' ' || *line == '\t';) {
		unsigned long v = strtoul(line, &end, 10);

		if (end == line)
			break;
		t->ns = v;
		line = end;
	}
	return t->host != 0;
}

size_t reader_ns_tids(pid_t pid, struct snap_tid **tids)
{
	char path[96], status[4096];
	struct buf out = {0};
	struct dirent *de;
	size_t n = 0;
	DIR *dir;

	*tids = NULL;
	if (same_pid_ns(pid))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((de = readdir(dir)) != NULL && n < SNAP_NS_TIDS) {
		struct snap_tid t;
		ssize_t len;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%lu/status", (int)pid, strtoul(de->d_name, NULL, 10));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, status, sizeof(status) - 1);
		close(fd);
		if (len <= 0)
			continue;
		status[len] = '\0';
		if (!parse_nspid(status, &t))
			continue;
		buf_add(&out, &t, sizeof(t));
		n++;
	}
	closedir(dir);
	if (n)
		*tids = (struct snap_tid *)buf_detach(&out);
	buf_free(&out);
	return n;
}

uint32_t reader_host_tid(const struct snap_tid *tids, size_t n, uint32_t procid)
{
	if (!n)
		return procid;
	for (size_t i = 0; i < n; i++)
		if (tids[i].ns == procid)
			return tids[i].host;
	return 0;
}

bool reader_profiling(void)
{
	const char *v = getenv("GLIMPSE_READER_PROFILE");

	return v && *v && strcmp(v, "0");
}

/* A block of a snapshot's memory; blocks form a list from out->blocks. */
struct raw_block {
	struct raw_block *next;
	size_t used, cap;
	uint8_t data[];
};

/* Fresh memory costs ~0.5-2 us a page on first touch here (a fault each); the
 * kernel fills a range in one go for less (Linux 5.14+, else no-op). Before a
 * copy starts, ranges of any size are filled (at 1k goroutines the raw_gs'
 * 28 pages faulted in during the copy took 14 us); during one, only ranges of
 * PREFAULT_FROM bytes or more, for which the call pays. */
#define PREFAULT_FROM (256u << 10)
static void prefault(void *p, size_t n, size_t from)
{
	uintptr_t page = 4096, lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);

	if (n >= from && hi > lo)
		madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
}

/* Adds a block of cap bytes to out's memory, prefaulted from prefault_from bytes. */
static struct raw_block *new_block(struct raw_snapshot *out, size_t cap, size_t prefault_from)
{
	struct raw_block *b = xmalloc(sizeof(*b) + cap);

	prefault(b, sizeof(*b) + cap, prefault_from);
	b->next = out->blocks;
	b->used = 0;
	b->cap = cap;
	out->blocks = b;
	return b;
}

uint8_t *reader_alloc(struct raw_snapshot *out, size_t n, size_t block)
{
	struct raw_block *b = out->blocks;
	uint8_t *p;

	n = (n + 7) & ~(size_t)7;
	if (!b || b->cap - b->used < n)
		b = new_block(out, block < n ? n : block, PREFAULT_FROM);
	p = b->data + b->used;
	b->used += n;
	return p;
}

void reader_add_g(struct buf *gs, const struct snap_g *h, uint8_t *g, uint8_t *stack, const struct go_offsets *off)
{
	struct raw_g *r;

	buf_grow(gs, sizeof(*r));
	r = (struct raw_g *)(gs->p + gs->len);
	gs->len += sizeof(*r);
	*r = (struct raw_g){
	    .addr = h->addr,
	    .idx = h->idx,
	    .hdr = g,
	    .hdr_len = h->g_len,
	    .goid = reader_u64(g, off->g_goid),
	    .status = reader_u32(g, off->g_atomicstatus),
	    .src = (enum raw_src)h->src,
	    .ip = h->ip,
	    .sp = h->sp,
	    .bp = h->bp,
	    .stack_addr = h->stack_addr,
	    .stack_len = h->stack_len,
	    .stack = h->stack_len ? stack : NULL,
	    .stack_truncated = h->flags & SNAP_F_TRUNCATED,
	    .regs_valid = h->src == SNAP_SRC_THREAD,
	    .tid = h->tid,
	    .on_cpu = h->flags & SNAP_F_ONCPU,
	    .no_thread = h->flags & SNAP_F_NOTHREAD,
	    .sp_outside = h->flags & SNAP_F_SP_OUTSIDE,
	    .read_failed = h->flags & SNAP_F_READ_FAILED,
	    .torn = h->flags & SNAP_F_TORN,
	};
}

static int cmp_idx(const void *a, const void *b)
{
	const struct raw_g *x = a, *y = b;

	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void reader_finish(struct raw_snapshot *out, struct buf *gs)
{
	bool sorted = true;

	out->n = gs->len / sizeof(struct raw_g);
	out->gs = (struct raw_g *)buf_detach(gs);
	out->torn = 0;
	for (size_t i = 0; i < out->n; i++) {
		out->torn += out->gs[i].torn;
		if (i && out->gs[i].idx < out->gs[i - 1].idx)
			sorted = false;
	}
	if (!sorted)
		qsort(out->gs, out->n, sizeof(struct raw_g), cmp_idx);
}

void reader_release(struct raw_snapshot *s)
{
	struct raw_block *b, *next;

	for (b = s->blocks; b; b = next) {
		next = b->next;
		free(b);
	}
	free(s->gs);
	free(s->threads);
	memset(s, 0, sizeof(*s));
}

int reader_read_error(int err, pid_t pid)
{
	if (err == ESRCH)
		return err_set(ESRCH, "no process with pid %d", (int)pid);
	if (err == EPERM)
		return err_set(EPERM, "pid %d: no permission to read its memory (needs CAP_SYS_PTRACE)", (int)pid);
	return err_set(err, "process_vm_readv of pid %d: %s", (int)pid, strerror(err));
}

int reader_read(pid_t pid, void *dst, size_t n, uint64_t addr)
{
	struct iovec l = {dst, n}, r = {(void *)addr, n};
	ssize_t got = process_vm_readv(pid, &l, 1, &r, 1, 0);

	if (got < 0 && errno != EFAULT)
		return reader_read_error(errno, pid);
	return got == (ssize_t)n ? 0 : -EFAULT;
}

#define RESERVE_STACK 1024	   /* stack bytes per goroutine reader_reserve() expects */
#define RESERVE_MAX   (256u << 20) /* bytes it reserves at most */

size_t reader_allglen(pid_t pid, const struct snap_params *p)
{
	uint64_t n = 0;

	if (reader_read(pid, &n, sizeof(n), p->allglen) || n > MAX_ALLGS)
		return 0;
	return n;
}

size_t reader_bytes_per_g(const struct snap_params *p)
{
	return ((p->g_size + 7) & ~7u) + RESERVE_STACK;
}

size_t reader_reserve(pid_t pid, const struct snap_params *p, struct raw_snapshot *out, struct buf *gs)
{
	uint64_t n = reader_allglen(pid, p), all;
	size_t bytes;

	if (!n)
		return 0;
	all = n;
	if (n > p->max_goroutines)
		n = p->max_goroutines;
	bytes = n * reader_bytes_per_g(p);
	if (bytes > RESERVE_MAX)
		bytes = RESERVE_MAX;
	if (out)
		new_block(out, bytes, 0);
	buf_grow(gs, n * sizeof(struct raw_g));
	reader_prefault(gs);
	return all;
}

void reader_prefault(struct buf *b)
{
	prefault(b->p + b->len, b->cap - b->len, 0);
}
