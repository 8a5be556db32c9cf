/* snapshot.h - records shared by snapshot.bpf.c (the goroutine walker) and
 * userspace/reader_bpf.c: the walk's parameters, its progress, and what it
 * writes to the ring buffer. Nothing else belongs here.
 *
 * Integer types come from the includer: vmlinux.h on the BPF side,
 * <linux/types.h> in userspace.
 */
#ifndef GLIMPSE_SNAPSHOT_H
#define GLIMPSE_SNAPSHOT_H

#define SNAP_G_MAX     512	  /* bytes of runtime.g copied at most */
#define SNAP_STACK_MAX (1u << 20) /* hard cap of stack bytes copied per goroutine */
#define SNAP_PTR_BATCH 64	  /* allgs entries read per copy */
#define SNAP_WIN       8192	  /* bytes of neighbouring runtime.g structs read per copy */
#define SNAP_WIN_GS    32	  /* goroutines re-checked per re-read of a window */
/* Bytes at the start of a runtime.g compared before and after its stack is
 * copied: they hold stack, sched, syscallsp/pc, atomicstatus and trackingSeq
 * (at 188-199) in every Go version from 1.19 to 1.26, and every g is larger. */
#define SNAP_G_RECHECK 256
/* Ring space the walk keeps free for the torn notices of the current window. */
#define SNAP_RING_SLACK (SNAP_WIN_GS * 16 + 64)

/* atomicstatus values the walk needs (runtime2.go). */
#define SNAP_G_IDLE    0
#define SNAP_G_RUNNING 2
#define SNAP_G_SYSCALL 3
#define SNAP_G_DEAD    6
#define SNAP_G_SCANBIT 0x1000

enum snap_kind {
	SNAP_REC_G = 1,
	SNAP_REC_THREAD = 2,
	SNAP_REC_TORN = 3,
};

/* Where a goroutine's copied stack starts (snap_g.src). */
enum snap_src {
	SNAP_SRC_NONE = 0,    /* no stack copied (see flags) */
	SNAP_SRC_SCHED = 1,   /* g.sched.{sp,pc,bp}: parked or runnable */
	SNAP_SRC_SYSCALL = 2, /* g.syscall{sp,pc,bp}: in a system call */
	SNAP_SRC_THREAD = 3,  /* user registers of its thread, which was off-CPU */
};

enum snap_gflags {
	SNAP_F_TORN = 1 << 0,	     /* status, sp or pc changed while copying */
	SNAP_F_ONCPU = 1 << 1,	     /* running and its thread was on a CPU: no stack */
	SNAP_F_NOTHREAD = 1 << 2,    /* running but its thread (m.procid) was not found */
	SNAP_F_SP_OUTSIDE = 1 << 3,  /* sp not inside [stack.lo, stack.hi): no stack */
	SNAP_F_READ_FAILED = 1 << 4, /* copying the stack failed */
	SNAP_F_TRUNCATED = 1 << 5,   /* stack longer than max_stack: only its top copied */
};

/* Set by userspace before each run of the iterator. Offsets are within runtime.g
 * (or runtime.m for m_procid); -1 marks a field this Go version lacks. */
struct snap_params {
	__u32 tgid;	      /* target process (thread-group id) */
	__u32 max_stack;      /* bytes of stack copied per goroutine, <= SNAP_STACK_MAX */
	__u32 max_goroutines; /* stop after this many g records (all runs together) */
	__u32 g_size;	      /* bytes of runtime.g copied, <= SNAP_G_MAX */
	__u64 allgs;	      /* run-time address of runtime.allgs (slice header) */
	__u64 allglen;	      /* run-time address of runtime.allglen */
	__s32 g_stack_lo, g_stack_hi;
	__s32 g_m;
	__s32 g_sched_sp, g_sched_pc, g_sched_bp; /* g.sched + gobuf.* */
	__s32 g_syscallsp, g_syscallpc, g_syscallbp;
	__s32 g_atomicstatus;
	__s32 m_procid;
	__u32 start;	 /* allgs index this run starts at */
	__u32 end;	 /* and stops before (or at allglen) */
	__u32 ring_size; /* bytes of the ring buffer (set by reader_bpf.c) */
	__u32 threads;	 /* write a record for each thread of the target */
	__u32 setup;	 /* find the direct map again (a new snapshot); else as the last run */
	__u32 give_way;	 /* end a run early when a task wakes up on its CPU */
	__u32 run_max;	 /* goroutines a run walks at most */
	__u32 run_busy;	 /* and at most when its CPU had other tasks to run at its start */
	__u32 ns_tids;	 /* entries of ns_tids (0: the target shares glimpse's pid namespace) */
	__u64 max_phys; /* end of the highest physical RAM range, 0: direct reads off */
};

/* A thread of a target in a pid namespace of its own: its tid there (what
 * m.procid holds) and in the initial namespace (what the kernel looks tasks up
 * by). Userspace fills the program's ns_tids[] with params.ns_tids of them. */
#define SNAP_NS_TIDS 1024
struct snap_tid {
	__u32 ns, host;
};

/* Written by the walk; userspace zeroes it before a snapshot and clears `walked`
 * before each run. */
struct snap_ctl {
	__s32 err;	    /* negative errno: reading allgs/allglen failed */
	__u32 walked;	    /* this run's walk is done (only one task walks) */
	__u64 err_addr;	    /* the address that could not be read */
	__u32 next;	    /* allgs index the next run resumes at */
	__u32 len;	    /* entries in allgs seen by the last run */
	__u32 emitted;	    /* g records written so far, all runs */
	__u32 done;	    /* walk complete (or max_goroutines reached) */
	__u32 truncated;    /* stopped at max_goroutines */
	__u32 full;	    /* the last run stopped because the ring buffer was full */
	__u32 threads_lost; /* a thread record did not fit: run again for them */
	__u32 dynptr;	    /* the last run copied stacks straight into the ring */
	__u32 torn_lost;    /* a torn notice did not fit: treat the run's gs as torn */
	__u32 direct;	    /* the last run read through the kernel's direct map */
	__u32 direct_off;   /* why it did not: enum snap_direct_off */
	__u64 direct_reads; /* copies made through the direct map, all runs */
	__u64 slow_reads;   /* copies made by bpf_copy_from_user_task, all runs */
	__u32 gave_way;	    /* the last run stopped early: a task woke up on its CPU */
	__u32 run_end;	    /* the last run stopped at its length (params.run_max, run_busy) */
	__u32 run_queued;   /* tasks runnable on the last run's CPU as it started (0: unknown) */
	__u64 ring_used;    /* ring bytes written since userspace last copied records out */
};

/* Why the walk did not read through the direct map (snap_ctl.direct_off). */
enum snap_direct_off {
	SNAP_DIRECT_ON = 0,
	SNAP_DIRECT_DISABLED,  /* asked not to, or the RAM size is unknown */
	SNAP_DIRECT_NO_RCU,    /* the kernel lacks bpf_rcu_read_lock (< 6.2) */
	SNAP_DIRECT_NO_MM,     /* the target has no address space (exiting) */
	SNAP_DIRECT_NO_BASE,   /* page tables not understood (not x86-64?) */
	SNAP_DIRECT_UNPROVEN,  /* a test read differed from bpf_copy_from_user_task */
};

/* Where the walk's time went, when the program was loaded with `profile` set
 * (ns and call counts; each timed call costs ~30 ns more). */
enum snap_prof_slot {
	SNAP_PROF_WALK,	   /* the whole walk */
	SNAP_PROF_WINDOW,  /* copies of runtime.g windows and single gs */
	SNAP_PROF_STACK,   /* stack copies */
	SNAP_PROF_RECHECK, /* re-reads of windows and single gs */
	SNAP_PROF_EMIT,	   /* ring reservations, header writes, submits */
	SNAP_PROF_SLOTS,
};

struct snap_prof {
	__u64 ns[SNAP_PROF_SLOTS];
	__u64 calls[SNAP_PROF_SLOTS];
	__u64 stack_bytes;
};

/* One goroutine: the header is followed by g_len bytes of runtime.g and then
 * stack_len bytes of stack, copied from stack_addr upward. A record may carry
 * unused bytes after those (a stack copy that failed). */
struct snap_g {
	__u32 kind;	  /* SNAP_REC_G */
	__u32 idx;	  /* index in allgs */
	__u64 addr;	  /* address of the runtime.g */
	__u64 stack_addr; /* run-time address of the first stack byte copied */
	__u32 stack_len;
	__u32 flags;	  /* enum snap_gflags */
	__u32 src;	  /* enum snap_src */
	__u32 tid;	  /* a running goroutine's thread (m.procid, as the kernel knows it), else 0 */
	__u64 ip, sp, bp; /* where unwinding starts (from src) */
	__u32 g_len;	  /* bytes of g that follow */
	__u32 pad;
};

/* A goroutine written earlier (same idx) changed while it was copied: its
 * status, sp or pc differed when its g was read again. */
struct snap_torn {
	__u32 kind; /* SNAP_REC_TORN */
	__u32 idx;
};

/* One thread of the target, seen by the task iterator. */
struct snap_thread {
	__u32 kind; /* SNAP_REC_THREAD */
	__u32 tid;
	__u32 on_cpu;	  /* running on a CPU now: ip/sp/bp are stale */
	__u32 state;	  /* task __state (0 = runnable) */
	__u64 ip, sp, bp; /* user registers at its last kernel entry */
	__u64 fsbase;	  /* TLS base: the current g is at fsbase - 8 */
};

#endif
