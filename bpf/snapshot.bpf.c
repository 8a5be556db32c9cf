// SPDX-License-Identifier: GPL-2.0
/* snapshot.bpf.c - copies every goroutine of a live Go process without
 * stopping it: a sleepable task iterator that, for the first thread of the
 * target it visits, walks runtime.allgs with bpf_copy_from_user_task() and
 * writes one record per live goroutine (its runtime.g and the top of its stack)
 * to a ring buffer, and for every thread of the target writes its user registers.
 *
 * It copies bytes only. The one thing it interprets is what it needs to find
 * a stack: atomicstatus, stack.lo/hi, sched/syscall sp, and for a running
 * goroutine m.procid to find its thread. When the ring buffer fills up the walk
 * stops, records where (ctl.next), and userspace drains the ring and runs the
 * iterator again from there. Records are defined in snapshot.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "snapshot.h"

char LICENSE[] SEC("license") = "GPL";

/* Userspace sets the size before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} records SEC(".maps");

/* Mutable globals, so one loaded object serves any number of snapshots. */
struct snap_params params;
struct snap_ctl ctl;

/* The goroutine record being assembled: header then stack. */
struct g_buf {
	struct snap_g h;
	__u8 stack[SNAP_STACK_MAX];
};

static struct g_buf gbuf;
static __u64 ptrs[SNAP_PTR_BATCH];
static __u8 rbuf[SNAP_G_MAX]; /* the re-read part of runtime.g */

/* runtime.g structs sit next to each other in heap spans, and allgs lists them
 * mostly in address order: one copy of a window serves the next few gs. */
#define WIN 4096
static __u8 win[WIN];
static __u64 win_base;
static __u32 win_len;

#define MAX_ALLGS (1 << 23) /* bpf_for's limit on iterations */

static __always_inline long copy_user(void *dst, __u32 n, __u64 addr, struct task_struct *task)
{
	return bpf_copy_from_user_task(dst, n, (const void *)addr, task, 0);
}

/* Fields of a copied runtime.g (buf is gbuf.h.g or rbuf); 0 for a missing field. */
static __always_inline __u64 field_u64(const __u8 *buf, __s32 off)
{
	if (off < 0 || off > SNAP_G_MAX - 8)
		return 0;
	return *(const __u64 *)(buf + off);
}

static __always_inline __u32 field_u32(const __u8 *buf, __s32 off)
{
	if (off < 0 || off > SNAP_G_MAX - 4)
		return 0;
	return *(const __u32 *)(buf + off);
}

/* Copies [h->sp, stack.hi) bounded by max_stack into gbuf.stack; returns its length. */
static __always_inline __u32 copy_stack(struct task_struct *task, struct snap_g *h)
{
	__u64 lo = field_u64(h->g, params.g_stack_lo);
	__u64 hi = field_u64(h->g, params.g_stack_hi);
	__u64 sp = h->sp, want, len;

	if (!sp || sp < lo || sp >= hi) {
		h->flags |= SNAP_F_SP_OUTSIDE;
		return 0;
	}
	want = hi - sp;
	if (want > params.max_stack) {
		want = params.max_stack;
		h->flags |= SNAP_F_TRUNCATED;
	}
	len = want;
	barrier_var(len);
	if (len > SNAP_STACK_MAX)
		len = SNAP_STACK_MAX;
	if (copy_user(gbuf.stack, len, sp, task)) {
		h->flags |= SNAP_F_READ_FAILED;
		return 0;
	}
	h->stack_addr = sp;
	h->stack_len = len;
	return len;
}

/* A running goroutine: its stack is only where its thread's registers say, and
 * only while that thread is off-CPU. Never falls back to the stale g.sched. */
static __always_inline __u32 copy_running(struct task_struct *task, struct snap_g *h)
{
	__u64 m = field_u64(h->g, params.g_m), procid = 0, csw;
	struct task_struct *t;
	struct pt_regs *regs;
	__u32 len = 0;

	if (!m || params.m_procid < 0 || copy_user(&procid, 8, m + params.m_procid, task) || !procid ||
	    procid > 0x7fffffff) {
		h->flags |= SNAP_F_NOTHREAD;
		return 0;
	}
	h->tid = procid;
	if (!bpf_ksym_exists(bpf_task_from_pid)) {
		h->flags |= SNAP_F_NOTHREAD; /* kernel < 6.2 */
		return 0;
	}
	t = bpf_task_from_pid(procid);
	if (!t) {
		h->flags |= SNAP_F_NOTHREAD;
		return 0;
	}
	if (t->tgid != params.tgid) {
		h->flags |= SNAP_F_NOTHREAD;
		goto out;
	}
	if (t->on_cpu) {
		h->flags |= SNAP_F_ONCPU;
		goto out;
	}
	csw = t->nvcsw + t->nivcsw;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs) {
		h->flags |= SNAP_F_NOTHREAD;
		goto out;
	}
	h->src = SNAP_SRC_THREAD;
	h->ip = BPF_CORE_READ(regs, ip);
	h->sp = BPF_CORE_READ(regs, sp);
	h->bp = BPF_CORE_READ(regs, bp);
	len = copy_stack(task, h);
	/* The thread ran in between: the registers no longer describe the copy. */
	if (t->on_cpu || t->nvcsw + t->nivcsw != csw)
		h->flags |= SNAP_F_TORN;
out:
	bpf_task_release(t);
	return len;
}

/* Re-reads status, sp and pc after the copy; any change marks the record torn. */
static __always_inline void recheck(struct task_struct *task, struct snap_g *h, __u32 status)
{
	__u32 off = params.recheck_off, n = params.recheck_len;
	__u32 now;

	if (off > SNAP_G_MAX / 2 || n > SNAP_G_MAX / 2)
		return;
	if (copy_user(rbuf + off, n, h->addr + off, task)) {
		h->flags |= SNAP_F_TORN;
		return;
	}
	now = field_u32(rbuf, params.g_atomicstatus) & ~SNAP_G_SCANBIT;
	if (now != status) {
		h->flags |= SNAP_F_TORN;
		return;
	}
	if (h->src == SNAP_SRC_SCHED &&
	    (field_u64(rbuf, params.g_sched_sp) != h->sp || field_u64(rbuf, params.g_sched_pc) != h->ip))
		h->flags |= SNAP_F_TORN;
	if (h->src == SNAP_SRC_SYSCALL &&
	    (field_u64(rbuf, params.g_syscallsp) != h->sp || field_u64(rbuf, params.g_syscallpc) != h->ip))
		h->flags |= SNAP_F_TORN;
}

/* Copies the g at gaddr into h->g, from the window when it is there; reads a
 * new window when the next g (next) would be in it too. */
static __always_inline long read_g(struct task_struct *task, struct snap_g *h, __u64 gaddr, __u32 gsz, __u64 next)
{
	__u64 off = gaddr - win_base;

	if (win_len && gaddr >= win_base && off + gsz <= win_len)
		return bpf_probe_read_kernel(h->g, gsz, win + (off & (WIN - 1)));
	if (next > gaddr && next + gsz <= gaddr + WIN && !copy_user(win, WIN, gaddr, task)) {
		win_base = gaddr;
		win_len = WIN;
		return bpf_probe_read_kernel(h->g, gsz, win);
	}
	return copy_user(h->g, gsz, gaddr, task);
}

/* Copies one goroutine and writes its record. Returns 0, or -1 when the ring
 * buffer is full (the caller stops and the next run starts at this index). */
static __always_inline int copy_g(struct task_struct *task, __u32 idx, __u64 gaddr, __u64 next)
{
	struct snap_g *h = &gbuf.h;
	__u32 gsz = params.g_size, status, len = 0;

	if (!gaddr)
		return 0;
	if (gsz > SNAP_G_MAX)
		gsz = SNAP_G_MAX;
	if (read_g(task, h, gaddr, gsz, next))
		return 0; /* cannot happen for a real g: allgs entries are never freed */
	status = field_u32(h->g, params.g_atomicstatus) & ~SNAP_G_SCANBIT;
	if (status == SNAP_G_IDLE || status == SNAP_G_DEAD)
		return 0;
	h->kind = SNAP_REC_G;
	h->idx = idx;
	h->addr = gaddr;
	h->g_len = gsz;
	h->flags = 0;
	h->tid = 0;
	h->stack_addr = 0;
	h->stack_len = 0;
	if (status == SNAP_G_RUNNING) {
		h->src = SNAP_SRC_NONE;
		h->ip = h->sp = h->bp = 0;
		len = copy_running(task, h);
	} else if (status == SNAP_G_SYSCALL) {
		h->src = SNAP_SRC_SYSCALL;
		h->sp = field_u64(h->g, params.g_syscallsp);
		h->ip = field_u64(h->g, params.g_syscallpc);
		h->bp = field_u64(h->g, params.g_syscallbp);
		len = copy_stack(task, h);
	} else {
		h->src = SNAP_SRC_SCHED;
		h->sp = field_u64(h->g, params.g_sched_sp);
		h->ip = field_u64(h->g, params.g_sched_pc);
		h->bp = field_u64(h->g, params.g_sched_bp);
		len = copy_stack(task, h);
	}
	recheck(task, h, status);
	if (len > SNAP_STACK_MAX)
		len = SNAP_STACK_MAX;
	if (bpf_ringbuf_output(&records, &gbuf, sizeof(struct snap_g) + len, 0))
		return -1;
	ctl.emitted++;
	return 0;
}

/* Walks allgs from params.start; records where it stopped in ctl. */
static __always_inline void walk(struct task_struct *task)
{
	__u64 slice[3], glen = 0, n, next;
	int i, start = params.start, end;
	long rc;

	rc = copy_user(slice, sizeof(slice), params.allgs, task);
	if (rc) {
		ctl.err = rc;
		ctl.err_addr = params.allgs;
		return;
	}
	rc = copy_user(&glen, sizeof(glen), params.allglen, task);
	if (rc) {
		ctl.err = rc;
		ctl.err_addr = params.allglen;
		return;
	}
	ctl.walked = 1;
	win_len = 0;
	n = slice[1] < glen ? slice[1] : glen;
	if (n > slice[2] || n > MAX_ALLGS || (n && !slice[0])) {
		ctl.err = -22; /* EINVAL: not a goroutine list */
		ctl.err_addr = params.allgs;
		return;
	}
	end = n;
	ctl.len = end;
	bpf_for(i, start, end)
	{
		__u32 k = (i - start) & (SNAP_PTR_BATCH - 1);

		if (ctl.emitted >= params.max_goroutines) {
			ctl.truncated = 1;
			ctl.done = 1;
			ctl.next = i;
			return;
		}
		if (k == 0) {
			__u64 cnt = end - i;

			barrier_var(cnt);
			if (cnt > SNAP_PTR_BATCH)
				cnt = SNAP_PTR_BATCH;
			rc = copy_user(ptrs, cnt * 8, slice[0] + (__u64)i * 8, task);
			if (rc) {
				ctl.err = rc;
				ctl.err_addr = slice[0] + (__u64)i * 8;
				return;
			}
		}
		next = k + 1 < SNAP_PTR_BATCH && i + 1 < end ? ptrs[(k + 1) & (SNAP_PTR_BATCH - 1)] : 0;
		if (copy_g(task, i, ptrs[k], next) < 0) {
			ctl.full = 1;
			ctl.next = i;
			return;
		}
	}
	ctl.next = end;
	ctl.done = 1;
}

static __always_inline void emit_thread(struct task_struct *task)
{
	struct snap_thread r = {};
	struct pt_regs *regs;

	r.kind = SNAP_REC_THREAD;
	r.tid = task->pid;
	r.on_cpu = task->on_cpu;
	r.state = task->__state;
	r.fsbase = BPF_CORE_READ(task, thread.fsbase);
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (regs) {
		r.ip = BPF_CORE_READ(regs, ip);
		r.sp = BPF_CORE_READ(regs, sp);
		r.bp = BPF_CORE_READ(regs, bp);
	}
	if (bpf_ringbuf_output(&records, &r, sizeof(r), 0))
		ctl.threads_lost = 1;
}

SEC("iter.s/task")
int snapshot_walk(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task || task->tgid != params.tgid)
		return 0;
	if (!ctl.walked)
		walk(task);
	emit_thread(task);
	return 0;
}
