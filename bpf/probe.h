/* probe.h - what bpf/probe.bpf.c (the generic tracepoint program) and
 * userspace/trace.c share: the capture plan of one probe site, the event record
 * it writes to the ring buffer, and its counters. Nothing else belongs here.
 *
 * A plan is a short list of copy operations. Each one's output is a chunk of the
 * event: registers and stack slots hold a value's own bytes, and DEREF follows a
 * pointer found in an earlier chunk (string data, a slice's backing array, a
 * pointer's target, an interface's data). BPF copies bytes only; userspace turns
 * them into values with the types it compiled the plan from.
 *
 * Integer types come from the includer: vmlinux.h on the BPF side,
 * <linux/types.h> in userspace.
 */
#ifndef GLIMPSE_PROBE_H
#define GLIMPSE_PROBE_H

#define PROBE_MAX_OPS	32	/* copy operations per site */
#define PROBE_MAX_PRED	16	/* --where items per site (postfix) */
#define PROBE_MAX_DATA	4096	/* chunk bytes per event (a chunk may end past it) */
#define PROBE_MAX_CHUNK 1024	/* bytes one operation copies */
#define PROBE_MAX_REP	16	/* elements a repeated DEREF visits */
#define PROBE_MAX_STACK 32	/* caller frames per event */
#define PROBE_STR_MAX	32	/* bytes of a string literal compared in BPF */
#define PROBE_NO_SRC	0xff

/* Registers, by their DWARF number (what the plan names). */
enum probe_reg {
	PREG_RAX = 0, PREG_RDX = 1, PREG_RCX = 2, PREG_RBX = 3, PREG_RSI = 4, PREG_RDI = 5,
	PREG_RBP = 6, PREG_RSP = 7, PREG_R8 = 8, PREG_R9 = 9, PREG_R10 = 10, PREG_R11 = 11,
	PREG_R12 = 12, PREG_R13 = 13, PREG_R14 = 14, PREG_R15 = 15,
};

enum probe_op_kind {
	POP_REG = 1,	/* 8 bytes of register `reg` */
	POP_STACK = 2,	/* `size` bytes at CFA + off */
	POP_DEREF = 3,	/* bytes at the pointer found at `off` in op `src`'s output:
			 * `size` of them, or (len_src set) the int64 at `len_off` in
			 * op `len_src`'s output times `elem`, at most `size` */
};

struct probe_op {
	__u8 kind;	/* enum probe_op_kind */
	__u8 reg;	/* POP_REG: enum probe_reg */
	__u8 src;	/* POP_DEREF: index of an earlier, non-repeated op */
	__u8 len_src;	/* POP_DEREF: op holding the length, or PROBE_NO_SRC */
	__s32 off;
	__s32 len_off;
	__u32 size;	/* <= PROBE_MAX_CHUNK */
	__u32 elem;	/* bytes per unit of length */
	__u16 nrep;	/* DEREF over elements: for i < nrep, pointer at off + i * stride
			 * and length at len_off + i * stride in src's output (src and
			 * len_src the same op), while they lie within that output */
	__u16 stride;
};

enum probe_pred_kind {
	PP_INT = 1,	/* integer at off in op src (size 1/2/4/8, signed or not) <op> val */
	PP_STR = 2,	/* string: length at len_off in op len_src, bytes from op src <op> str */
	PP_AND = 3,	/* pops two */
	PP_OR = 4,
	PP_NOT = 5,	/* pops one */
};

enum probe_cmp { PC_EQ = 1, PC_NE, PC_LT, PC_LE, PC_GT, PC_GE };

struct probe_pred {
	__u8 kind;	/* enum probe_pred_kind */
	__u8 cmp;	/* enum probe_cmp */
	__u8 src;
	__u8 len_src;
	__u8 size;
	__u8 is_signed;
	__u16 pad;
	__s32 off;
	__s32 len_off;
	__s64 val;	/* PP_INT: the constant; PP_STR: its length */
	__u8 str[PROBE_STR_MAX];
};

enum probe_kind {
	PROBE_CALL = 1,		/* entry probe, in the prologue after the stack check */
	PROBE_RETURN = 2,	/* a RET instruction */
};

enum probe_site_flags {
	PSF_COUNT_ONLY = 1 << 0,	/* count calls per function; no event, no state */
	PSF_FRAMED = 1 << 1,		/* BP was pushed: the caller's BP is at CFA - 16 */
	PSF_NEED_CALL = 1 << 2,		/* returns: drop those whose call was not seen
					 * (--where could not be evaluated for it) */
	PSF_SKIP_IF_BE = 1 << 3,	/* the site is the stack check's JBE: ignore the
					 * hit when it branches (CF or ZF set) to morestack */
	PSF_CALLS_ONLY = 1 << 4,	/* no return probes: no call state to keep */
};

/* The value of the `sites` map at index = attach cookie. */
struct probe_site {
	__u32 func;	/* index of the traced function (counters, rate limit) */
	__u16 kind;	/* enum probe_kind */
	__u16 flags;	/* enum probe_site_flags */
	__s32 cfa_off;	/* CFA = RSP + cfa_off at this pc */
	__u16 nops;
	__u16 npred;	/* 0: every call passes */
	__u16 nstack;	/* caller frames to copy (calls only) */
	__u16 pad;
	struct probe_op ops[PROBE_MAX_OPS];
	struct probe_pred pred[PROBE_MAX_PRED];
};

enum probe_event_flags {
	PEF_NO_CALL = 1 << 0,		/* a return whose call was not seen (in flight at attach) */
	PEF_TRUNCATED = 1 << 1,		/* the plan did not fit PROBE_MAX_DATA */
};

/* One call or return. Chunks follow the header: struct probe_chunk, then its
 * bytes, padded to 8. */
struct probe_event {
	__u64 ts;	/* bpf_ktime_get_ns() */
	__u64 goid;
	__u64 call_id;	/* unique per call; a return carries its call's (0 if unseen) */
	__u64 duration;	/* returns: ns since the call, 0 if unknown */
	__u64 sp;	/* RSP at the probe */
	__u64 ip;	/* the probe's run-time address (minus the site's link-time
			 * address: the load bias) */
	__u32 pid, tid;
	__u32 site;	/* attach cookie */
	__u16 kind;	/* enum probe_kind */
	__u16 flags;	/* enum probe_event_flags */
	__u32 data_len;	/* bytes of chunks after the header */
	__u32 pad;
};

#define PROBE_CHUNK_STACK 0xfe	/* probe_chunk.op of the caller pcs (return addresses) */

struct probe_chunk {
	__u8 op;	/* index in the site's ops, or PROBE_CHUNK_STACK */
	__u8 rep;	/* element index of a repeated DEREF */
	__u16 failed;	/* 1: the copy faulted: no bytes */
	__u32 len;	/* bytes copied: fewer than asked when the rest lay past
			 * the end of a page that was not mapped */
	__u64 addr;	/* run-time address copied from (0 for registers) */
};

/* Per function and CPU. */
struct probe_stats {
	__u64 calls;		/* call events written */
	__u64 returns;		/* return events written */
	__u64 ring_drops;	/* events lost: ring buffer full */
	__u64 repeats;		/* the same hit delivered twice (dropped) */
	__u64 rate_limited;	/* calls over the rate limit (and their returns) */
	__u64 filtered;		/* calls rejected by --where in BPF */
	__u64 hits;		/* count-only mode: calls */
	__u64 pad;
};

/* The state of one call in flight, keyed by goroutine and frame. */
struct probe_call_key {
	__u64 goid;
	__u64 depth;	/* g.stack.hi - CFA: survives stack copies */
};

struct probe_call {
	__u64 ts;
	__u64 call_id;
	__u64 pc;	/* the entry site's cookie, or the RET's once returned */
	__u32 func;
	__u16 kept;	/* the call event was written */
	__u16 returned;
};

#endif
