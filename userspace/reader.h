/* reader.h - copies every goroutine of a live Go process without stopping it,
 * as raw records (runtime.g bytes plus the top of each stack) that snapshot.c
 * later unwinds and decodes.
 *
 * Two readers produce the same records: a sleepable BPF task iterator
 * (reader_bpf.c, bpf/snapshot.bpf.c) and process_vm_readv (reader_vm.c). Neither
 * ptrace-stops or writes the target. A goroutine that moved while it was copied
 * is marked torn rather than reported wrong; a running goroutine gets a stack
 * only from its own thread's registers while that thread is off-CPU, never from
 * the stale g.sched.
 */
#ifndef GLIMPSE_READER_H
#define GLIMPSE_READER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "goruntime.h"

#define READER_DEFAULT_MAX_STACK (64u << 10)
#define READER_MAX_STACK	 (1u << 20) /* larger max_stack values are clamped to this */

struct read_limits {
	uint32_t max_stack;	 /* bytes of stack copied per goroutine; 0: 64 KiB */
	uint32_t max_goroutines; /* records at most; 0: no limit */
};

/* Where a goroutine's stack copy starts (the same values as enum snap_src). */
enum raw_src {
	RAW_SRC_NONE = 0,    /* no stack: see on_cpu / no_thread / sp_outside / read_failed */
	RAW_SRC_SCHED = 1,   /* g.sched: parked or runnable */
	RAW_SRC_SYSCALL = 2, /* g.syscallsp/pc/bp: in a system call */
	RAW_SRC_THREAD = 3,  /* its thread's user registers (thread was off-CPU) */
};

/* One live goroutine (not dead, not idle). */
struct raw_g {
	uint64_t addr; /* address of the runtime.g */
	uint32_t idx;  /* its index in runtime.allgs */
	uint8_t *hdr;  /* offsets.g_size bytes of the g (hdr_len), owned by the snapshot */
	uint32_t hdr_len;
	uint64_t goid;	 /* from hdr, for convenience */
	uint32_t status; /* atomicstatus from hdr, scan bit included */
	enum raw_src src;
	uint64_t ip, sp, bp; /* where unwinding starts: thread registers when regs_valid,
			      * else g.sched or g.syscall*; bp may be 0 (process_vm_readv
			      * cannot see a thread's bp) */
	uint64_t stack_addr; /* run-time address where `stack` starts (the sp used) */
	uint32_t stack_len;
	uint8_t *stack;	      /* NULL when stack_len is 0; owned by the snapshot */
	bool stack_truncated; /* the stack continues above stack_addr + stack_len */
	bool regs_valid;      /* ip/sp/bp are the registers of thread `tid` */
	uint32_t tid;	      /* a running goroutine's thread (m.procid), else 0; a tid of
			       * glimpse's pid namespace, mapped from the target's own */
	bool on_cpu;	      /* running, thread on a CPU: running without a stack */
	bool no_thread;	      /* running, but its thread could not be found */
	bool sp_outside;      /* sp not within [stack.lo, stack.hi): no stack copied */
	bool read_failed;     /* the stack could not be read */
	bool torn;	      /* status, sp or pc changed while copying */
};

/* One thread of the target. */
struct raw_thread {
	uint32_t tid;
	bool on_cpu;	     /* bpf: on a CPU now; process_vm_readv: state R */
	bool regs_valid;     /* ip/sp(/bp/fsbase) are its user registers */
	uint64_t ip, sp, bp; /* bp and fsbase: bpf only (0 otherwise) */
	uint64_t fsbase;
};

struct raw_block;

/* How a BPF walk went, run by run (see reader_bpf.c). */
struct reader_runs {
	unsigned int runs;	   /* iterator runs */
	unsigned int gave_way;	   /* runs that stopped early for a task waking up on their CPU */
	unsigned int ring_full;	   /* runs that stopped for a full ring, whose records were then copied out */
	unsigned int idle_runs;	   /* runs that started with no other task waiting for their CPU */
	unsigned int longest_idle; /* most allgs entries one such run walked */
	unsigned int longest_busy; /* most allgs entries one of the other runs walked */
	unsigned int idle_cut;	   /* runs that started idle yet stopped short of run_max (a bug) */
};

struct raw_snapshot {
	const char *reader; /* "bpf" or "process_vm_readv" (static strings) */
	const char *copy;   /* how bpf copied: "direct map", "dynptr" or "buffered" (see
			     * reader_bpf.c); NULL for process_vm_readv */
	const char *direct_off; /* bpf: "on", or why not the direct map: "off (...)" */
	uint64_t direct_reads, slow_reads; /* bpf: copies through the direct map, and not */
	size_t n;
	struct raw_g *gs;
	size_t nthreads;
	struct raw_thread *threads;
	uint64_t started_ns;	  /* CLOCK_REALTIME when the copy started */
	uint64_t duration_ns;	  /* wall time of the copy (BPF load excluded) */
	uint64_t setup_ns;	  /* BPF load and attach time, 0 for process_vm_readv */
	size_t torn;		  /* goroutines marked torn */
	size_t allglen;		  /* entries of allgs seen (dead ones included) */
	bool truncated;		  /* stopped at max_goroutines */
	struct reader_runs walk;  /* bpf: its runs, all lanes */
	unsigned int lanes;	  /* bpf: copies of the walk that ran side by side */
	char fallback[256];	  /* why BPF was not used ("" when it was, or not allowed) */
	struct raw_block *blocks; /* internal: the memory hdr and stack point into */
	struct reader_pin *pin;	  /* internal: the BPF ring the last run's records are in */
};

/* The readers' shape (reader_common.h has the picture): reader.c takes
 * snapshots (reader_snapshot, reader_snapshot_with) with one of the two readers
 * below it, reader_bpf.c and reader_vm.c, which share reader_common.c and
 * never call each other.
 *
 * Copies every live goroutine of pid. off are the target binary's runtime
 * offsets (allgs/allglen link-time; bias is added, non-zero for PIE), lim may be
 * NULL for defaults. Tries the BPF reader when allow_bpf, falls back to
 * process_vm_readv when BPF cannot be used (out->fallback says why) and sets
 * out->reader to the one that ran. Returns 0 or a negative code (-ESRCH "no
 * process with pid N", -GLIMPSE_ENOTGO when allgs does not look like a goroutine
 * list). On success the caller frees *out with raw_snapshot_free; on failure
 * *out holds nothing to free. */
int reader_snapshot(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		    bool allow_bpf, struct raw_snapshot *out);
/* reader_snapshot with a BPF reader the caller keeps open across snapshots (a
 * server's warm one, see reader_bpf_open_warm; NULL: process_vm_readv only):
 * falls back to process_vm_readv as reader_snapshot does when the BPF walk
 * fails (out->fallback says why). warm takes one snapshot at a time: callers
 * on several threads serialize their calls. */
struct reader_bpf;
int reader_snapshot_with(struct reader_bpf *warm, pid_t pid, const struct go_offsets *off, uint64_t bias,
			 const struct read_limits *lim, struct raw_snapshot *out);
/* Frees what a snapshot holds (not the struct itself) and zeroes it. */
void raw_snapshot_free(struct raw_snapshot *s);

/* The process_vm_readv reader alone. Same contract as reader_snapshot. */
int reader_vm_snapshot(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		       struct raw_snapshot *out);

/* The BPF reader, loaded once and used for many snapshots (loading costs
 * ~0.07 s, the verifier's; a snapshot of 10k goroutines ~5 ms on two CPUs).
 * Takes one snapshot at a time; opening swaps libbpf's print callback for a
 * moment (not thread-safe). Environment read at open: GLIMPSE_READER_PROFILE=1
 * prints where each snapshot's time went (both readers), GLIMPSE_BPF_NO_DIRECT=1
 * copies every byte with bpf_copy_from_user_task() (not through the direct map),
 * GLIMPSE_BPF_LANES=N walks with at most N lanes (default: the CPUs, at most 2),
 * GLIMPSE_BPF_CHUNK=N walks N allgs entries per iterator run (default 128),
 * GLIMPSE_BPF_NO_GIVE_WAY=1 runs each chunk to its end even when a task wakes
 * up on its CPU,
 * GLIMPSE_BPF_NO_DYNPTR=1 then takes the path of kernels before 6.16,
 * GLIMPSE_BPF_DEBUG=1 shows libbpf's log.
 * reader_bpf_open returns 0 and sets *out, or a negative code with a message
 * saying why BPF is unusable (needs CAP_BPF+CAP_PERFMON, kernel >= 6.2 with BTF).
 * Its rings keep their size (8 MiB a lane) whatever the target. */
int reader_bpf_open(struct reader_bpf **out);
/* The same with a ring buffer of ring_bytes (a power of two, at least 2 MiB;
 * 0: the default 8 MiB per lane). A smaller ring only means more iterator
 * runs, and records copied out of the ring when it fills. */
int reader_bpf_open_ring(uint32_t ring_bytes, struct reader_bpf **out);
/* reader_bpf_open for snapshots of pid: its rings sized for the goroutines pid
 * has now (8 to 128 MiB per lane), so that a walk rarely stops to copy records
 * out of a full ring; and no second lane loaded when pid is too small or too
 * large to be given two. Like reader_bpf_open_warm's, it sizes itself again
 * for any larger target it is then given. */
int reader_bpf_open_for(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
			struct reader_bpf **out);
/* A reader to keep open and use for snapshots of any process, one after
 * another (a server's): before each snapshot it grows its rings for the
 * largest target it has seen (8 to 128 MiB a lane, as reader_bpf_open_for
 * would size them) and loads the lanes a target needs that it lacks; neither
 * happens during a walk, and each costs a load (~0.07 s) once. Should that
 * load fail, the reader goes on as it was. */
int reader_bpf_open_warm(struct reader_bpf **out);
/* Same contract as reader_snapshot, with this reader only (no fallback).
 * The records stay where the walk wrote them, in the reader's ring buffers,
 * unless a ring was used up (copying 10k goroutines' worth out costs ~1.5 ms): the
 * next snapshot of the same reader first copies them into out's own memory,
 * and closing the reader waits until out is freed. */
int reader_bpf_snapshot(struct reader_bpf *r, pid_t pid, const struct go_offsets *off, uint64_t bias,
			const struct read_limits *lim, struct raw_snapshot *out);
/* Closes r now, or when the last snapshot still using its ring is freed. */
void reader_bpf_close(struct reader_bpf *r);
/* Internal: raw_snapshot_free's half of the above. */
struct reader_pin;
void reader_pin_release(struct reader_pin *pin);

#endif
