// SPDX-License-Identifier: GPL-2.0
/* snapshot.bpf.c - copies every goroutine of a live Go process without
 * stopping it: a sleepable task iterator that, for the first thread of the
 * target it visits, walks runtime.allgs with bpf_copy_from_user_task() and
 * writes one record per live goroutine (its runtime.g and the used part of its
 * stack) to a ring buffer, and (when params.threads) for every thread of the
 * target writes its user registers.
 *
 * Cost is what matters here, so the walk copies as little and as rarely as it
 * can: runtime.g structs sit next to each other in heap spans and allgs lists
 * them mostly in address order, so one copy of a window serves many gs; each
 * stack is copied once, from sp to stack.hi; and the gs of a window (32 at
 * most) are re-checked together by one more copy of the window after their
 * stacks were copied. A g that changed by then (see g_moved()) is reported in
 * a SNAP_REC_TORN record after its SNAP_REC_G record. Copies go through the
 * kernel's direct map where they can (see "Direct reads" below, ~20x cheaper
 * than bpf_copy_from_user_task()), and on 6.16+ stacks are copied straight
 * into their ring record (bpf_probe_read_kernel_dynptr, or
 * bpf_copy_from_user_task_dynptr where the direct map cannot serve).
 *
 * One run walks the allgs entries [params.start, params.end): userspace splits
 * the walk into chunks, runs them one after another (yielding the CPU between
 * runs, so a run never holds it for long on a kernel without preemption; a
 * run also ends early when a thread wakes up on its CPU, see "Giving way") and,
 * for large processes, on two CPUs side by side, each with its own loaded
 * object and ring. On this machine kind a 10k-goroutine walk takes ~4.4 ms on
 * two CPUs, most of it waiting for memory: each goroutine's g, stack page and
 * record in the ring are cache lines nothing touched lately.
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

/* Userspace sets the size before load, and drains it after each run: records
 * are written with BPF_RB_NO_WAKEUP, as nothing waits on the ring (a wakeup is
 * an interrupt raised on the walk's CPU; in a VM, an exit to the host). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} records SEC(".maps");

/* Mutable globals, so one loaded object serves any number of snapshots. */
struct snap_params params;
struct snap_ctl ctl;
struct snap_prof prof;
struct snap_tid ns_tids[SNAP_NS_TIDS];
/* Set before load: fill prof (the verifier drops the timing code when 0), and
 * assemble records in a buffer even where the kernel could copy stacks straight
 * into the ring (so tests cover the path kernels before 6.16 take). */
const volatile __u32 profile = 0;
const volatile __u32 no_dynptr = 0;
/* Set before load: never read through the direct map (see dm_read()). */
const volatile __u32 no_direct = 0;

/* 6.16+ (u32 off/size until 6.18, u64 after: integers of either width are
 * compatible for libbpf and pass the same in registers). */
extern int bpf_probe_read_kernel_dynptr(struct bpf_dynptr *dptr, __u32 off, __u32 size,
					const void *unsafe_ptr__ign) __ksym __weak;
extern int bpf_copy_from_user_task_dynptr(struct bpf_dynptr *dptr, __u32 off, __u32 size, const void *unsafe_ptr__ign,
					  struct task_struct *tsk) __ksym __weak;

/* Every buffer the walk copies into has a page of slack after the bytes it
 * is for: a copy goes page by page, and the verifier checks each piece's end
 * as its largest offset plus a page. (It also lets a g at a window's end pass
 * bounds checks.) */
#define PAGE_SLACK 4096

/* A window of runtime.g structs, and the same window read again to re-check it. */
static __u8 win[SNAP_WIN + PAGE_SLACK];
static __u8 rwin[SNAP_WIN + PAGE_SLACK];
static __u64 win_base;
static __u32 win_len;

/* The goroutines written from the current window, waiting for its re-read. */
struct pending {
	__u32 idx, off, status, src;
};
static struct pending pend[SNAP_WIN_GS];
static __u32 npend;

static __u64 ptrs[SNAP_PTR_BATCH + PAGE_SLACK / 8];

/* The record being written: its header, and on kernels without the dynptr
 * copy the g and stack after it (assembled here, then output). */
struct rec_buf {
	struct snap_g h;
	__u8 data[2 * SNAP_G_MAX + SNAP_STACK_MAX + PAGE_SLACK];
};
static struct rec_buf rbuf;

#define MAX_ALLGS (1 << 23) /* bpf_for's limit on iterations */

static __always_inline __u64 prof_start(void)
{
	return profile ? bpf_ktime_get_ns() : 0;
}

static __always_inline void prof_end(enum snap_prof_slot slot, __u64 t0)
{
	if (!profile || slot >= SNAP_PROF_SLOTS)
		return;
	prof.ns[slot] += bpf_ktime_get_ns() - t0;
	prof.calls[slot]++;
}

/* Returns v with nothing known about it to the verifier (through memory it
 * does not track), so that paths which differ only in v merge. */
static __u64 forgotten;
static __always_inline __u64 forget(__u64 v)
{
	forgotten = v;
	asm volatile("" ::: "memory");
	return forgotten;
}

static __always_inline long copy_user(void *dst, __u32 n, __u64 addr, struct task_struct *task)
{
	return bpf_copy_from_user_task(dst, n, (const void *)addr, task, 0);
}

/*
 * Direct reads. bpf_copy_from_user_task() pins each page it reads
 * (access_process_vm: the target's mmap lock, a page-table walk, a page
 * reference), ~0.5 us a page here whatever the size, and each goroutine's
 * stack is on a page of its own. Instead, when it can, the walk finds the
 * physical page behind an address by reading the target's page tables itself
 * and copies the bytes through the kernel's direct map of physical memory with
 * bpf_probe_read_kernel(): no lock, no reference, nothing the target can
 * notice, ~20x cheaper. Whatever the kernel does meanwhile (migrating,
 * reclaiming or collapsing pages, freeing page tables), the entries a copy went
 * through are read again after it, inside an RCU read section (page tables are
 * freed only after a grace period): a copy counts only if they still map the
 * same page. Anything else - a page not present, an entry that changed, a
 * kernel where the walk's checks fail - falls back to
 * bpf_copy_from_user_task() for that copy. Only x86-64 page tables (4 or 5
 * levels) are understood; the direct map's base (page_offset_base, randomized)
 * is found from the target's own top-level table, and then proven against
 * bpf_copy_from_user_task() on runtime.allgs before it is used.
 */
#define PT_PRESENT (1ull << 0)
#define PT_HUGE	   (1ull << 7)
#define PT_ADDR	   0x000ffffffffff000ull /* bits 12-51 */
#define PT_SAME	   (PT_ADDR | PT_PRESENT | PT_HUGE)
#define SZ_4K	   (1ull << 12)
#define SZ_2M	   (1ull << 21)
#define SZ_1G	   (1ull << 30)

extern void bpf_rcu_read_lock(void) __ksym __weak;
extern void bpf_rcu_read_unlock(void) __ksym __weak;

static __u64 dm_base;	/* kernel virtual address of physical 0; 0: no direct reads */
static __u64 dm_pgd;	/* the target's top-level page table (kernel virtual) */
static __u32 dm_levels; /* 4 or 5 */
/* Lookups of user addresses start from earlier ones': the page of middle
 * directory (pmd) entries serving the last GiB looked up, and for each of
 * PTC_SLOTS 2 MiB ranges (by address bits 21-24) the page of entries (ptes)
 * serving it, with the pmd entry that pointed to it. gs, allgs and stacks sit
 * in a few dozen 2 MiB ranges that the walk goes back and forth between, so
 * nearly every lookup is one read of a pte. A copy counts only if the live
 * entries still agree after it (pt_same()), so a stale cache costs a slow
 * copy, never a wrong one. */
static __u64 pmd_key = ~0ull, pmd_page;
#define PTC_SLOTS 16
struct pte_cache {
	__u64 key, up_ptr, up_val, page;
};
static struct pte_cache ptc[PTC_SLOTS];

/* The last two table entries a translation went through, to read again. */
struct pt_path {
	__u64 up_ptr, up_val;	  /* pmd entry (pud entry for a 1 GiB page) */
	__u64 leaf_ptr, leaf_val; /* pte, 0 for a huge page */
};

/* Loads through bpf_rdonly_cast(p, 0) (6.17+) are the kernel's own
 * exception-handled loads, inline: a fault reads 0. */
enum bpf_features___glimpse { BPF_FEAT_RDONLY_CAST_TO_VOID___glimpse = 0 };
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
static __always_inline bool have_ldx(void)
{
	return bpf_core_enum_value_exists(enum bpf_features___glimpse, BPF_FEAT_RDONLY_CAST_TO_VOID___glimpse);
}

static __always_inline __u64 ldx64(__u64 kaddr)
{
	return *(const volatile __u64 *)bpf_rdonly_cast((void *)kaddr, 0);
}

static __always_inline __u64 pt_get(__u64 kaddr)
{
	__u64 v = 0;

	if (have_ldx())
		return ldx64(kaddr);
	if (bpf_probe_read_kernel(&v, sizeof(v), (const void *)kaddr))
		return 0;
	return v;
}

/* The physical address of virtual address addr in the address space whose
 * top-level table is at pgd, with the direct map at base; 0 when it is not
 * mapped. cached: may start from the pmd page of the previous lookup in the
 * same GiB (user addresses only). */
static __always_inline __u64 pt_walk(__u64 base, __u64 pgd, __u32 levels, __u64 addr, struct pt_path *w, bool cached)
{
	struct pte_cache *c = &ptc[(addr >> 21) & (PTC_SLOTS - 1)];
	__u64 e, p, table;

	if (cached && addr >> 21 == c->key) {
		p = c->page + ((addr >> 12) & 511) * 8;
		e = pt_get(p);
		if (!(e & PT_PRESENT))
			return 0;
		w->up_ptr = c->up_ptr;
		w->up_val = c->up_val;
		w->leaf_ptr = p;
		w->leaf_val = e;
		return (e & PT_ADDR) | (addr & (SZ_4K - 1));
	}
	if (cached && addr >> 30 == pmd_key) {
		table = pmd_page;
	} else {
		e = pt_get(pgd + ((addr >> (levels == 5 ? 48 : 39)) & 511) * 8);
		if (!(e & PT_PRESENT))
			return 0;
		if (levels == 5) {
			e = pt_get(base + (e & PT_ADDR) + ((addr >> 39) & 511) * 8);
			if (!(e & PT_PRESENT))
				return 0;
		}
		p = base + (e & PT_ADDR) + ((addr >> 30) & 511) * 8;
		e = pt_get(p);
		if (!(e & PT_PRESENT))
			return 0;
		if (e & PT_HUGE) {
			w->up_ptr = p;
			w->up_val = e;
			w->leaf_ptr = 0;
			return (e & PT_ADDR & ~(SZ_1G - 1)) | (addr & (SZ_1G - 1));
		}
		table = base + (e & PT_ADDR);
		if (cached) {
			pmd_key = addr >> 30;
			pmd_page = table;
		}
	}
	p = table + ((addr >> 21) & 511) * 8;
	e = pt_get(p);
	if (!(e & PT_PRESENT))
		return 0;
	w->up_ptr = p;
	w->up_val = e;
	if (e & PT_HUGE) {
		w->leaf_ptr = 0;
		return (e & PT_ADDR & ~(SZ_2M - 1)) | (addr & (SZ_2M - 1));
	}
	table = base + (e & PT_ADDR);
	if (cached) {
		c->key = addr >> 21;
		c->up_ptr = p;
		c->up_val = e;
		c->page = table;
	}
	p = table + ((addr >> 12) & 511) * 8;
	e = pt_get(p);
	if (!(e & PT_PRESENT))
		return 0;
	w->leaf_ptr = p;
	w->leaf_val = e;
	return (e & PT_ADDR) | (addr & (SZ_4K - 1));
}

/* Whether the entries of w still map what they did (accessed/dirty bits aside). */
static __always_inline bool pt_same(const struct pt_path *w)
{
	if ((pt_get(w->up_ptr) ^ w->up_val) & PT_SAME)
		return false;
	return !w->leaf_ptr || !((pt_get(w->leaf_ptr) ^ w->leaf_val) & PT_SAME);
}

enum dm_buf { DM_WIN, DM_RWIN, DM_PTRS, DM_REC };

/* Copies n bytes of the target at addr, page by page through the direct map,
 * to offset off of dst (cap bytes, and a page of slack), or when dp is set to
 * offset off of that ring record (6.16+). Returns 0, or -1 when any page could
 * not be (the caller then copies it all the slow way). */
static __always_inline int dm_copy(__u8 *dst, __u32 cap, struct bpf_dynptr *dp, __u32 off, __u32 n, __u64 addr)
{
	__u64 base = dm_base, pgd = dm_pgd, phys, max_phys = params.max_phys;
	__u32 levels = dm_levels, done = 0;
	struct pt_path w = {};
	int i, rc = 0;

	if (!base || (!dp && (off > cap || n > cap - off)))
		return -1;
	bpf_rcu_read_lock();
	bpf_for(i, 0, SNAP_STACK_MAX / SZ_4K + 2)
	{
		__u64 a, pos, len;
		long err;

		/* forget(): keeps the verifier from following done's growth. */
		done = forget(done);
		a = addr + done;
		pos = off + done;
		len = SZ_4K - (a & (SZ_4K - 1));
		if (done >= n)
			break;
		if (len > n - done)
			len = n - done;
		phys = pt_walk(base, pgd, levels, a, &w, true);
		barrier_var(len);
		barrier_var(pos);
		if (!phys || phys + len > max_phys || len > SZ_4K)
			err = -1;
		else if (dp)
			err = bpf_probe_read_kernel_dynptr(dp, pos, len, (const void *)(base + phys));
		else
			err = pos > cap || bpf_probe_read_kernel(dst + pos, len, (const void *)(base + phys));
		if (err || !pt_same(&w)) {
			pmd_key = ~0ull; /* look again next time */
			ptc[(a >> 21) & (PTC_SLOTS - 1)].key = ~0ull;
			rc = -1;
			break;
		}
		done += len;
	}
	bpf_rcu_read_unlock();
	return rc;
}

/* dm_copy() to buffer which. A global function: verified once, whatever its callers. */
__noinline int dm_read(__u32 which, __u32 off, __u32 n, __u64 addr)
{
	switch (which) {
	case DM_WIN:
		return dm_copy(win, SNAP_WIN, NULL, off, n, addr);
	case DM_RWIN:
		return dm_copy(rwin, SNAP_WIN, NULL, off, n, addr);
	case DM_PTRS:
		return dm_copy((__u8 *)ptrs, SNAP_PTR_BATCH * 8, NULL, off, n, addr);
	default:
		return dm_copy(rbuf.data, sizeof(rbuf.data) - PAGE_SLACK, NULL, off, n, addr);
	}
}

/* dm_copy() of a stack straight into its ring record, at offset off of dp.
 * Inlined where dp lives: in a global function dp would be a pointer the
 * verifier loses track of when the compiler spills it to the stack. */
static __always_inline int dm_read_dp(struct bpf_dynptr *dp, __u32 off, __u32 n, __u64 addr)
{
	return dm_copy(NULL, 0, dp, off, n, addr);
}

/* Finds the direct map's base for the target's address space (task's) and
 * proves it on the allgs slice header; sets dm_base, or leaves it 0. The base
 * is 1 GiB-aligned and at most max_phys below any direct-map address, such as
 * the top-level table's own: the right one is the one through which that
 * table's address translates to itself. */
__noinline int dm_setup(struct task_struct *task __arg_trusted)
{
	__u64 pgd, top, cand, phys, n = params.max_phys >> 30, got[3] = {}, want[3] = {};
	struct pt_path w = {};
	int k, levels;

	dm_base = 0;
	pmd_key = ~0ull;
	for (k = 0; k < PTC_SLOTS; k++)
		ptc[k].key = ~0ull;
	if (no_direct || !n)
		return SNAP_DIRECT_DISABLED;
	if (!bpf_ksym_exists(bpf_rcu_read_lock))
		return SNAP_DIRECT_NO_RCU;
	pgd = (__u64)BPF_CORE_READ(task, mm, pgd);
	if (!pgd)
		return SNAP_DIRECT_NO_MM;
	top = pgd & ~(SZ_1G - 1);
	if (n > 4096)
		n = 4096;
	for (levels = 4; levels <= 5; levels++) {
		bpf_for(k, 0, n + 1)
		{
			cand = top - (__u64)k * SZ_1G;
			phys = pt_walk(cand, pgd, levels, pgd, &w, false);
			if (phys && phys == pgd - cand) {
				dm_base = cand;
				dm_pgd = pgd;
				dm_levels = levels;
				break;
			}
		}
		if (dm_base)
			break;
	}
	if (!dm_base)
		return SNAP_DIRECT_NO_BASE;
	/* Proof: the same bytes both ways (twice, should allgs be growing). */
	for (k = 0; k < 2; k++) {
		if (dm_read(DM_PTRS, 0, sizeof(got), params.allgs))
			break;
		__builtin_memcpy(got, ptrs, sizeof(got));
		if (copy_user(want, sizeof(want), params.allgs, task))
			break;
		if (got[0] == want[0] && got[1] == want[1] && got[2] == want[2])
			return SNAP_DIRECT_ON;
	}
	dm_base = 0;
	return SNAP_DIRECT_UNPROVEN;
}

/* Copies n bytes of the target at addr to offset off of buffer which: through
 * the direct map when it can, else bpf_copy_from_user_task(). A global
 * function, verified once: inlined at each of its callers, its two ways to
 * succeed split the walk's states (load time 0.45 s instead of 0.05 s). */
__noinline int read_target(__u32 which, __u32 off, __u32 n, __u64 addr, struct task_struct *task __arg_trusted)
{
	__u64 len, at;

	if (dm_base && !dm_read(which, off, n, addr)) {
		ctl.direct_reads++;
		return 0;
	}
	ctl.slow_reads++;
	len = n;
	at = off;
	barrier_var(len);
	barrier_var(at);
	switch (which) {
	case DM_WIN:
		if (off || len > SNAP_WIN)
			return -7; /* E2BIG */
		return copy_user(win, len, addr, task);
	case DM_RWIN:
		if (off || len > SNAP_WIN)
			return -7;
		return copy_user(rwin, len, addr, task);
	case DM_PTRS:
		if (off || len > SNAP_PTR_BATCH * 8)
			return -7;
		return copy_user(ptrs, len, addr, task);
	default:
		if (at > 2 * SNAP_G_MAX || len > SNAP_STACK_MAX)
			return -7;
		return copy_user(rbuf.data + at, len, addr, task);
	}
}

/* Fields of a g at offset o of a window (win or rwin); 0 for a missing field. */
static __always_inline __u64 field_u64(const __u8 *w, __u32 o, __s32 off)
{
	if (off < 0 || off > SNAP_G_MAX - 8)
		return 0;
	return *(const __u64 *)(w + (o & (SNAP_WIN - 1)) + off);
}

static __always_inline __u32 field_u32(const __u8 *w, __u32 o, __s32 off)
{
	if (off < 0 || off > SNAP_G_MAX - 4)
		return 0;
	return *(const __u32 *)(w + (o & (SNAP_WIN - 1)) + off);
}

/* How much of the stack above h->sp to copy (bounded by max_stack); sets the
 * flags that explain a zero. */
static __always_inline __u32 plan_stack(struct snap_g *h, __u32 o)
{
	__u64 lo = field_u64(win, o, params.g_stack_lo);
	__u64 hi = field_u64(win, o, params.g_stack_hi);
	__u64 want;

	if (!h->sp || h->sp < lo || h->sp >= hi) {
		h->flags |= SNAP_F_SP_OUTSIDE;
		return 0;
	}
	want = hi - h->sp;
	if (want > params.max_stack) {
		want = params.max_stack;
		h->flags |= SNAP_F_TRUNCATED;
	}
	if (want > SNAP_STACK_MAX)
		want = SNAP_STACK_MAX;
	h->stack_addr = h->sp;
	return want;
}

/* The user registers of thread tid of the target into the record being
 * written (rbuf.h), if that thread is off-CPU. Returns its context switch
 * count plus one, to compare after the copy, or 0 with a flag saying why there
 * is no stack. A global function (verified once, its task reference never
 * reaches the walk's loop). */
__noinline __u64 thread_regs(__u32 tid)
{
	struct snap_g *h = &rbuf.h;
	struct task_struct *t;
	struct pt_regs *regs;
	__u64 csw = 0;

	if (!bpf_ksym_exists(bpf_task_from_pid)) {
		h->flags |= SNAP_F_NOTHREAD; /* kernel < 6.2 */
		return 0;
	}
	t = bpf_task_from_pid(tid);
	if (!t) {
		h->flags |= SNAP_F_NOTHREAD;
		return 0;
	}
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (t->tgid != params.tgid || !regs) {
		h->flags |= SNAP_F_NOTHREAD;
	} else if (t->on_cpu) {
		h->flags |= SNAP_F_ONCPU;
	} else {
		csw = t->nvcsw + t->nivcsw + 1;
		h->src = SNAP_SRC_THREAD;
		h->ip = BPF_CORE_READ(regs, ip);
		h->sp = BPF_CORE_READ(regs, sp);
		h->bp = BPF_CORE_READ(regs, bp);
	}
	bpf_task_release(t);
	return csw;
}

/* After the stack of a running goroutine was copied from its thread's
 * registers: whether that thread ran in between (or runs now), so that the
 * registers no longer describe the copy. */
__noinline int thread_moved(__u32 tid, __u64 csw)
{
	struct task_struct *t;
	int moved;

	if (!bpf_ksym_exists(bpf_task_from_pid))
		return 1;
	t = bpf_task_from_pid(tid);
	if (!t)
		return 1;
	moved = t->on_cpu || t->nvcsw + t->nivcsw + 1 != csw;
	bpf_task_release(t);
	return moved;
}

/* The tid the kernel knows the target's thread procid by (m.procid is a tid in
 * the target's pid namespace): procid itself when the target shares glimpse's
 * namespace, else from ns_tids[], or 0 when it is not there. */
__noinline __u32 host_tid(__u32 procid)
{
	__u32 i, n = params.ns_tids;

	if (!n)
		return procid;
	bpf_for(i, 0, n)
	{
		if (i >= SNAP_NS_TIDS)
			break;
		if (ns_tids[i].ns == procid)
			return ns_tids[i].host;
	}
	return 0;
}

/* A running goroutine: its stack is only where its thread's registers say, and
 * only while that thread is off-CPU. Never falls back to the stale g.sched.
 * Returns what thread_regs() does. */
static __always_inline __u64 plan_running(struct task_struct *task, struct snap_g *h, __u32 o)
{
	__u64 m = field_u64(win, o, params.g_m), procid = 0;

	if (!m || params.m_procid < 0 || copy_user(&procid, 8, m + params.m_procid, task) || !procid ||
	    procid > 0x7fffffff) {
		h->flags |= SNAP_F_NOTHREAD;
		return 0;
	}
	h->tid = host_tid(procid);
	if (!h->tid) {
		h->flags |= SNAP_F_NOTHREAD;
		return 0;
	}
	return thread_regs(h->tid);
}

/* Marks h torn when the thread its stack came from ran while it was copied. */
static __always_inline void check_thread(struct snap_g *h, __u64 csw)
{
	if (csw && thread_moved(h->tid, csw))
		h->flags |= SNAP_F_TORN;
}

/* Fills h from the g at offset o of the window; returns the stack bytes to copy.
 * *csw is set for a running goroutine whose thread was off-CPU. */
static __always_inline __u32 plan_g(struct task_struct *task, struct snap_g *h, __u32 o, __u32 status, __u64 *csw)
{
	if (status == SNAP_G_RUNNING) {
		*csw = plan_running(task, h, o);
		return *csw ? plan_stack(h, o) : 0;
	}
	if (status == SNAP_G_SYSCALL) {
		h->src = SNAP_SRC_SYSCALL;
		h->sp = field_u64(win, o, params.g_syscallsp);
		h->ip = field_u64(win, o, params.g_syscallpc);
		h->bp = field_u64(win, o, params.g_syscallbp);
	} else {
		h->src = SNAP_SRC_SCHED;
		h->sp = field_u64(win, o, params.g_sched_sp);
		h->ip = field_u64(win, o, params.g_sched_pc);
		h->bp = field_u64(win, o, params.g_sched_bp);
	}
	return plan_stack(h, o);
}

/* Ring space. Userspace drains the ring after every run but leaves records
 * where they are (the snapshot points into the ring) until the ring is used
 * up, and only then copies them out: so the space a record takes counts from
 * its write (ctl.ring_used) until userspace resets the count, whatever the
 * ring's consumer position says. */
static __always_inline __u64 rec_bytes(__u32 size)
{
	return (size + 8 /* BPF_RINGBUF_HDR_SZ */ + 7) & ~7ull;
}

/* Whether a record of size bytes, and the torn notices of a window after it, fit. */
static __always_inline bool ring_has_room(__u32 size)
{
	return ctl.ring_used + rec_bytes(size) + SNAP_RING_SLACK <= params.ring_size;
}

/* Writes a small record (a torn notice or a thread's registers), leaving keep
 * bytes of the ring free; -1 when the ring has no room for it. */
static __always_inline int output_small(void *rec, __u32 size, __u32 keep)
{
	if (ctl.ring_used + rec_bytes(size) + keep > params.ring_size ||
	    bpf_ringbuf_output(&records, rec, size, BPF_RB_NO_WAKEUP))
		return -1;
	ctl.ring_used += rec_bytes(size);
	return 0;
}

/* Writes the record of h, the g at offset o of the window and len bytes of
 * stack copied straight into the ring (through the direct map when it can).
 * Returns 0 or -1 when the ring is full. */
static __always_inline int emit_dynptr(struct task_struct *task, struct snap_g *h, __u32 o, __u64 len, __u64 csw)
{
	__u64 gsz = h->g_len, size, t0;
	struct bpf_dynptr dp;
	struct snap_g *hp;

	barrier_var(gsz);
	barrier_var(len);
	if (gsz > SNAP_G_MAX || len > SNAP_STACK_MAX)
		return 0; /* cannot happen: both were bounded before */
	size = sizeof(*h) + gsz + len;
	t0 = prof_start();
	if (bpf_ringbuf_reserve_dynptr(&records, size, 0, &dp)) {
		bpf_ringbuf_discard_dynptr(&dp, BPF_RB_NO_WAKEUP);
		return -1;
	}
	ctl.ring_used += rec_bytes(size);
	bpf_dynptr_write(&dp, sizeof(*h), win + (o & (SNAP_WIN - 1)), gsz, 0);
	prof_end(SNAP_PROF_EMIT, t0);
	if (len) {
		t0 = prof_start();
		if (dm_base && !dm_read_dp(&dp, sizeof(*h) + gsz, len, h->sp)) {
			ctl.direct_reads++;
		} else {
			ctl.slow_reads++;
			if (bpf_copy_from_user_task_dynptr(&dp, sizeof(*h) + gsz, len, (const void *)h->sp, task)) {
				h->flags |= SNAP_F_READ_FAILED;
				h->stack_addr = 0;
				len = 0;
			}
		}
		prof_end(SNAP_PROF_STACK, t0);
		if (profile)
			prof.stack_bytes += len;
	}
	h->stack_len = len;
	check_thread(h, csw);
	t0 = prof_start();
	hp = bpf_dynptr_data(&dp, 0, sizeof(*hp));
	if (hp)
		*hp = *h; /* plain stores: cheaper than one more helper call */
	bpf_ringbuf_submit_dynptr(&dp, BPF_RB_NO_WAKEUP);
	prof_end(SNAP_PROF_EMIT, t0);
	return 0;
}

/* The same for kernels before 6.16: assembles the record, then copies it out. */
static __always_inline int emit_copy(struct task_struct *task, struct snap_g *h, __u32 o, __u64 len, __u64 csw)
{
	__u64 gsz = h->g_len, size, t0;

	barrier_var(gsz);
	barrier_var(len);
	if (gsz > SNAP_G_MAX || len > SNAP_STACK_MAX)
		return 0; /* cannot happen: both were bounded before */
	bpf_probe_read_kernel(rbuf.data, gsz, win + (o & (SNAP_WIN - 1)));
	if (len) {
		t0 = prof_start();
		if (read_target(DM_REC, gsz, len, h->sp, task)) {
			h->flags |= SNAP_F_READ_FAILED;
			h->stack_addr = 0;
			len = 0;
		}
		prof_end(SNAP_PROF_STACK, t0);
		if (profile)
			prof.stack_bytes += len;
	}
	h->stack_len = len;
	check_thread(h, csw);
	size = sizeof(*h) + gsz + len;
	if (size > sizeof(rbuf))
		return 0;
	t0 = prof_start();
	if (bpf_ringbuf_output(&records, &rbuf, size, BPF_RB_NO_WAKEUP))
		return -1;
	ctl.ring_used += rec_bytes(size);
	prof_end(SNAP_PROF_EMIT, t0);
	return 0;
}

/* Reads [addr, addr + len) into the window (len <= SNAP_WIN). */
static __always_inline long read_window(struct task_struct *task, __u64 addr, __u64 len)
{
	__u64 t0 = prof_start();
	long rc;

	len = forget(len);
	if (len > SNAP_WIN)
		len = SNAP_WIN;
	rc = read_target(DM_WIN, 0, len, addr, task);
	prof_end(SNAP_PROF_WINDOW, t0);
	win_base = addr;
	win_len = rc ? 0 : len;
	return rc;
}

/* Makes the window hold the g at gaddr, and the g after it (next) too when
 * that one lies just above; or, failing that, the g alone. Returns 0 or -1. */
static __always_inline int open_window(struct task_struct *task, __u64 gaddr, __u32 gsz, __u64 next)
{
	if (next > gaddr && next + gsz <= gaddr + SNAP_WIN && !read_window(task, gaddr, SNAP_WIN))
		return 0;
	return read_window(task, gaddr, gsz) ? -1 : 0;
}

/* Whether the g at offset o changed between the window and its re-read: for
 * a parked g any of its first SNAP_G_RECHECK bytes (status, sched, syscall
 * registers, and trackingSeq, which the runtime bumps each time a goroutine
 * stops running, so one that ran and parked again at the same sp and pc is
 * caught too); for a running one its status (its thread's context switches are
 * checked when its stack is copied). The loop is unrolled and branch-free: an
 * open-coded iterator would cost a kfunc call per word, and a branch per word
 * would split the verifier's states. */
static __always_inline bool g_moved(const struct pending *p)
{
	__u32 o = p->off & (SNAP_WIN - 1);
	__u64 diff = 0;
	int k;

	if (p->src != SNAP_SRC_SCHED && p->src != SNAP_SRC_SYSCALL)
		return (field_u32(rwin, o, params.g_atomicstatus) & ~SNAP_G_SCANBIT) != p->status;
#pragma clang loop unroll(full)
	for (k = 0; k < SNAP_G_RECHECK / 8; k++)
		diff |= *(const __u64 *)(win + o + k * 8) ^ *(const __u64 *)(rwin + o + k * 8);
	return diff != 0;
}

/* Compares the first n pending gs with the window as read again (len bytes,
 * 0: unreadable) and writes a torn notice for each that moved. A global
 * function, so that the verifier checks its loops once. */
__noinline int compare_window(__u32 n, __u32 len)
{
	int i;

	bpf_for(i, 0, n)
	{
		struct snap_torn torn = {SNAP_REC_TORN, 0};
		struct pending *p;

		if (i >= SNAP_WIN_GS)
			break;
		p = &pend[i];
		if (len && !g_moved(p))
			continue;
		torn.idx = p->idx;
		if (output_small(&torn, sizeof(torn), 0))
			ctl.torn_lost = 1;
	}
	return 0;
}

/* Re-reads the window and reports every pending g that moved since it was copied. */
static __always_inline void recheck_window(struct task_struct *task)
{
	__u32 n = npend;
	__u64 len = win_len, t0;

	npend = 0;
	if (!n || !len)
		return;
	barrier_var(len);
	if (len > SNAP_WIN)
		len = SNAP_WIN;
	t0 = prof_start();
	if (read_target(DM_RWIN, 0, len, win_base, task))
		len = 0; /* every one of them counts as torn */
	prof_end(SNAP_PROF_RECHECK, t0);
	compare_window(n, len);
}

/* Copies the goroutine at gaddr (in the window at offset o) and writes its
 * record. Returns 0, or -1 when the ring buffer is full (the caller stops and
 * the next run starts at this index). */
static __always_inline int copy_g(struct task_struct *task, __u32 idx, __u64 gaddr, __u32 gsz)
{
	__u32 o = gaddr - win_base, status, len;
	struct snap_g *h = &rbuf.h;
	struct pending *p;
	__u64 csw = 0;
	int rc;

	status = field_u32(win, o, params.g_atomicstatus) & ~SNAP_G_SCANBIT;
	if (status == SNAP_G_IDLE || status == SNAP_G_DEAD)
		return 0;
	/* The header lives in a global, not on the stack: the verifier then
	 * tracks none of its values, which keeps the loop's states few. */
	__builtin_memset(h, 0, sizeof(*h));
	h->kind = SNAP_REC_G;
	h->idx = idx;
	h->addr = gaddr;
	h->g_len = gsz;
	len = plan_g(task, h, o, status, &csw);
	/* Forget how len and csw (and elsewhere gaddr, rc, a window's length)
	 * were reached: what follows is then checked once for all the ways to
	 * get there, not once for each (the verifier's work, so load time, went
	 * from 0.5 s to 0.06 s). */
	len = forget(len);
	csw = forget(csw);
	if (!ring_has_room(sizeof(*h) + gsz + len))
		return -1;
	if (!no_dynptr && bpf_ksym_exists(bpf_copy_from_user_task_dynptr) &&
	    (!dm_base || bpf_ksym_exists(bpf_probe_read_kernel_dynptr))) {
		ctl.dynptr = 1;
		rc = emit_dynptr(task, h, o, len, csw);
	} else {
		rc = emit_copy(task, h, o, len, csw);
	}
	if (forget(rc))
		return -1;
	ctl.emitted++;
	p = &pend[npend & (SNAP_WIN_GS - 1)];
	*p = (struct pending){idx, o, status, h->src};
	npend++;
	return 0;
}

/* Copies n (<= 24) bytes of the target at addr to dst, which has room for 24
 * (the direct-map path copies that many): through the direct map once a
 * snapshot's first run has set it up (dm_base is left from the last snapshot
 * before that), else with bpf_copy_from_user_task(). */
static __always_inline long read_small(void *dst, __u32 n, __u64 addr, struct task_struct *task)
{
	if (!params.setup && dm_base && !read_target(DM_PTRS, 0, n, addr, task)) {
		__builtin_memcpy(dst, ptrs, 24);
		return 0;
	}
	return copy_user(dst, n, addr, task);
}

/* Reads the allgs slice header and allglen; returns the entries to walk or -1. */
static __always_inline int read_allgs(struct task_struct *task, __u64 *slice)
{
	__u64 glen[3] = {}, n;
	long rc;

	rc = read_small(slice, 24, params.allgs, task);
	if (rc) {
		ctl.err = rc;
		ctl.err_addr = params.allgs;
		return -1;
	}
	rc = read_small(glen, sizeof(glen[0]), params.allglen, task);
	if (rc) {
		ctl.err = rc;
		ctl.err_addr = params.allglen;
		return -1;
	}
	n = slice[1] < glen[0] ? slice[1] : glen[0];
	if (n > slice[2] || n > MAX_ALLGS || (n && !slice[0])) {
		ctl.err = -22; /* EINVAL: not a goroutine list */
		ctl.err_addr = params.allgs;
		return -1;
	}
	return n;
}

/* Giving way. The walk runs in the kernel, where on a kernel without
 * preemption (CONFIG_PREEMPT_NONE, or preempt=none) nothing takes the CPU
 * from it: a thread of the target that wakes up on this CPU waits for the
 * run to end. So a run ends early, after at least GIVE_WAY_AFTER goroutines,
 * as soon as a task became runnable on its CPU since the run started;
 * userspace yields the CPU and runs the walk again from where it stopped.
 * Tasks that were runnable already (a busy thread of the target) are not
 * waited for: with them a run lasts params.run_busy goroutines (a short
 * chunk's time), not GIVE_WAY_AFTER; without them, up to params.run_max. */
#define GIVE_WAY_AFTER 8
static __u32 run_queued; /* tasks runnable on this CPU when the run started */

/* Tasks runnable on this CPU (the current one included), or 0 when unknown. */
static __always_inline __u32 cpu_queued(void)
{
	struct task_struct *me;
	struct cfs_rq *cfs;
	struct rq *rq;

	/* The run queue of this CPU, through the current task's CFS queue (the
	 * per-CPU `runqueues` is not a symbol BPF can reach without
	 * CONFIG_KALLSYMS_ALL). Kernels without CONFIG_FAIR_GROUP_SCHED lack
	 * the link: there a run always lasts its chunk. A sleepable program
	 * does not migrate, so this stays the run's CPU. */
	if (!params.give_way || !bpf_core_field_exists(struct sched_entity, cfs_rq) ||
	    !bpf_core_field_exists(struct cfs_rq, rq))
		return 0;
	me = bpf_get_current_task_btf();
	cfs = me->se.cfs_rq;
	if (!cfs)
		return 0;
	rq = cfs->rq;
	return rq ? rq->nr_running : 0;
}

/* The walk's bounds, for walk_one(). */
static __u64 walk_allgs;
static __u32 walk_start, walk_end, walk_gsz;

/* Copies allgs entry i. Returns 0 to go on, 1 to stop (ctl says why). A
 * global function, so the verifier checks it once, not once per way the
 * loop around it can be entered (load time 0.3 s otherwise). */
__noinline int walk_one(__u32 i, struct task_struct *task __arg_trusted)
{
	__u32 k = (i - walk_start) & (SNAP_PTR_BATCH - 1), gsz = walk_gsz;
	__u64 gaddr;
	bool in_win;
	long rc;

	if (gsz > SNAP_G_MAX)
		return 1;
	if (i - walk_start >= GIVE_WAY_AFTER && run_queued && cpu_queued() > run_queued) {
		ctl.gave_way = 1;
		ctl.next = i;
		return 1;
	}
	if (i - walk_start >= (run_queued == 1 ? params.run_max : params.run_busy)) {
		ctl.run_end = 1;
		ctl.next = i;
		return 1;
	}
	if (ctl.emitted >= params.max_goroutines) {
		ctl.truncated = 1;
		ctl.done = 1;
		ctl.next = i;
		return 1;
	}
	if (k == 0) {
		__u64 cnt = walk_end - i;

		barrier_var(cnt);
		if (cnt > SNAP_PTR_BATCH)
			cnt = SNAP_PTR_BATCH;
		rc = read_target(DM_PTRS, 0, cnt * 8, walk_allgs + (__u64)i * 8, task);
		if (rc) {
			ctl.err = rc;
			ctl.err_addr = walk_allgs + (__u64)i * 8;
			return 1;
		}
	}
	gaddr = ptrs[k];
	if (!gaddr)
		return 0;
	in_win = win_len && gaddr >= win_base && gaddr + gsz <= win_base + win_len;
	if (!in_win || npend >= SNAP_WIN_GS)
		recheck_window(task);
	if (!in_win) {
		__u64 next = k + 1 < SNAP_PTR_BATCH && i + 1 < walk_end ? ptrs[(k + 1) & (SNAP_PTR_BATCH - 1)] : 0;

		/* Unreadable: cannot happen for a real g (allgs entries are never freed). */
		if (open_window(task, gaddr, gsz, next))
			return 0;
	}
	/* forget(): see copy_g(). */
	if (copy_g(task, i, forget(gaddr), gsz) < 0) {
		ctl.full = 1;
		ctl.next = i;
		return 1;
	}
	return 0;
}

/* Walks allgs from params.start; records where it stopped in ctl. */
static __always_inline void walk(struct task_struct *task)
{
	int i, end;
	__u64 slice[3];

	end = read_allgs(task, slice);
	if (end < 0)
		return;
	if (params.setup) {
		ctl.direct_off = dm_setup(task);
		ctl.direct = dm_base != 0;
	}
	ctl.walked = 1;
	ctl.len = end;
	if (end > params.end)
		end = params.end;
	win_len = 0;
	npend = 0;
	walk_allgs = slice[0];
	walk_start = params.start;
	walk_end = end;
	walk_gsz = params.g_size > SNAP_G_MAX ? SNAP_G_MAX : params.g_size;
	run_queued = cpu_queued();
	ctl.run_queued = run_queued;
	bpf_for(i, params.start, end)
	{
		if (walk_one(i, task))
			goto out;
	}
	ctl.next = end;
	ctl.done = 1;
out:
	recheck_window(task);
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
	/* Leaves the torn notices' room (see ring_has_room()). */
	if (output_small(&r, sizeof(r), SNAP_RING_SLACK))
		ctl.threads_lost = 1;
}

SEC("iter.s/task")
int snapshot_walk(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	__u64 t0;

	if (!task || task->tgid != params.tgid)
		return 0;
	if (!ctl.walked) {
		t0 = prof_start();
		walk(task);
		prof_end(SNAP_PROF_WALK, t0);
	}
	if (params.threads)
		emit_thread(task);
	return 0;
}
