// SPDX-License-Identifier: GPL-2.0
/* probe.bpf.c - the one uprobe program behind `glimpse trace`, shared by every
 * Go binary and version: it runs the capture plan that userspace compiled for
 * the probe site it was attached to (found by the attach cookie), and writes one
 * event per call and per return to a ring buffer.
 *
 * Entry probes sit in the prologue after the stack check (on an instruction the
 * kernel emulates: PUSHQ BP, or the check's JBE, ignored when it branches to
 * morestack), return probes on each RET (never uretprobes: their trampoline
 * breaks Go's stack copying). A call's
 * state is kept per goroutine and frame (goid, g.stack.hi - CFA: the distance
 * from the top of the stack survives stack copies), which gives
 *   - the call id and duration carried by the return event,
 *   - the repeated hit a signal during the single-step can cause (same
 *     goroutine, site and frame, no return in between): dropped and counted,
 *   - returns of calls that --where or the rate limit dropped: dropped too.
 * Events go out without a wakeup; userspace drains on a timer, and a wakeup is
 * forced only when the ring is filling up. Records are defined in probe.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "probe.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by userspace before load. */
const volatile __s32 g_goid_off = 152;	/* runtime.g.goid */
const volatile __s32 g_stack_hi_off = 8;	/* runtime.g.stack.hi */
const volatile __u64 rate_limit;	/* calls per second per function, 0: none */
const volatile __u64 wake_bytes = 1 << 20;	/* unread bytes that force a wakeup */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* sized by userspace: one per probe site */
	__type(key, __u32);
	__type(value, struct probe_site);
} sites SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1); /* sized by userspace: one per function */
	__type(key, __u32);
	__type(value, struct probe_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, struct probe_call_key);
	__type(value, struct probe_call);
} calls SEC(".maps");

struct rate {
	__u64 window;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* sized by userspace: one per function */
	__type(key, __u32);
	__type(value, struct rate);
} rates SEC(".maps");

#define PAGE_SIZE 4096
#define X86_EFLAGS_CF 0x0001
#define X86_EFLAGS_ZF 0x0040

#define DATA_MASK  8191 /* > PROBE_MAX_DATA + chunk header + PROBE_MAX_CHUNK */
#define CHUNK_MASK (2 * PROBE_MAX_CHUNK - 1)

/* The event being assembled, and the capture's state: kept in map memory so
 * the verifier sees plain unknown scalars and loops converge at once. */
struct scratch {
	struct probe_event h;
	__u8 data[DATA_MASK + 1 + 64];
	__u32 pos;
	__u32 stop;
	__u32 opos[PROBE_MAX_OPS]; /* where op i's bytes start in data */
	__u32 olen[PROBE_MAX_OPS]; /* how many there are */
	__u32 bits;		   /* --where: a stack of booleans */
	__u32 depth;
	__u64 bp;		   /* --stack: the frame being walked */
	__u32 nframes;		   /* --stack: frames written after the first */
	__u32 pad;
	__u64 regs[16];		   /* by DWARF number */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

__u64 next_call_id;

/* Copies the registers a plan may name into s->regs, by DWARF number (loads
 * at constant offsets: the verifier refuses computed offsets into the context). */
static __always_inline void save_regs(struct scratch *s, struct pt_regs *r)
{
	s->regs[PREG_RAX] = r->ax;
	s->regs[PREG_RDX] = r->dx;
	s->regs[PREG_RCX] = r->cx;
	s->regs[PREG_RBX] = r->bx;
	s->regs[PREG_RSI] = r->si;
	s->regs[PREG_RDI] = r->di;
	s->regs[PREG_RBP] = r->bp;
	s->regs[PREG_RSP] = r->sp;
	s->regs[PREG_R8] = r->r8;
	s->regs[PREG_R9] = r->r9;
	s->regs[PREG_R10] = r->r10;
	s->regs[PREG_R11] = r->r11;
	s->regs[PREG_R12] = r->r12;
	s->regs[PREG_R13] = r->r13;
	s->regs[PREG_R14] = r->r14;
	s->regs[PREG_R15] = r->r15;
}

/* Starts a chunk at s->pos; returns a pointer to its bytes or NULL when full. */
static __always_inline struct probe_chunk *chunk_at(struct scratch *s)
{
	__u32 pos = s->pos;

	if (pos >= PROBE_MAX_DATA) {
		s->stop = 1;
		s->h.flags |= PEF_TRUNCATED;
		return NULL;
	}
	return (struct probe_chunk *)&s->data[pos & (PROBE_MAX_DATA - 1)];
}

static __always_inline void chunk_done(struct scratch *s, __u32 op, __u32 n)
{
	__u32 start = s->pos + sizeof(struct probe_chunk);

	op &= PROBE_MAX_OPS - 1; /* ops only: the stack chunk is not recorded here */
	s->opos[op] = start;
	s->olen[op] = n;
	s->pos = start + ((n + 7) & ~7u);
}

/* Copies n user bytes at addr as a chunk of op (element rep). */
static __always_inline void put_user(struct scratch *s, __u32 op, __u32 rep, __u64 addr, __u32 n)
{
	struct probe_chunk *c = chunk_at(s);
	__u32 at;

	if (!c)
		return;
	n &= CHUNK_MASK;
	if (n > PROBE_MAX_CHUNK)
		n = PROBE_MAX_CHUNK;
	c->op = op;
	c->rep = rep;
	c->failed = 0;
	c->addr = addr;
	at = (s->pos & (PROBE_MAX_DATA - 1)) + sizeof(*c);
	if (n && bpf_probe_read_user(&s->data[at], n, (const void *)addr)) {
		/* A copy past the end of a value (behind an interface's data word)
		 * may run into an unmapped page: keep what lies before it. */
		__u32 m = PAGE_SIZE - (addr & (PAGE_SIZE - 1));

		if (m > PROBE_MAX_CHUNK)
			m = PROBE_MAX_CHUNK;
		if (m < n && !bpf_probe_read_user(&s->data[at], m, (const void *)addr)) {
			n = m;
		} else {
			c->failed = 1;
			n = 0;
		}
	}
	c->len = n;
	chunk_done(s, op, n);
}

static __always_inline void put_reg(struct scratch *s, __u32 op, __u64 v)
{
	struct probe_chunk *c = chunk_at(s);

	if (!c)
		return;
	c->op = op;
	c->rep = 0;
	c->failed = 0;
	c->len = 8;
	c->addr = 0;
	*(__u64 *)((__u8 *)c + sizeof(*c)) = v;
	chunk_done(s, op, 8);
}

/* The 8 bytes at off in op src's output; false when they are not there. */
static __always_inline bool load_u64(struct scratch *s, __u32 src, __s64 off, __u64 *v)
{
	__u32 at;

	if (src >= PROBE_MAX_OPS || off < 0 || off + 8 > s->olen[src & (PROBE_MAX_OPS - 1)])
		return false;
	at = s->opos[src & (PROBE_MAX_OPS - 1)] + (__u32)off;
	*v = *(__u64 *)&s->data[at & DATA_MASK];
	return true;
}

static __always_inline void deref_one(struct scratch *s, const struct probe_op *op, __u32 i, __u32 rep)
{
	__s64 delta = (__s64)rep * op->stride;
	__u64 ptr, len, n = op->size;

	if (!load_u64(s, op->src, op->off + delta, &ptr) || !ptr)
		return;
	if (op->len_src != PROBE_NO_SRC) {
		if (!load_u64(s, op->len_src, op->len_off + delta, &len))
			return;
		if (len > PROBE_MAX_CHUNK) /* also catches negative lengths */
			len = PROBE_MAX_CHUNK;
		len *= op->elem;
		if (len < n)
			n = len;
	}
	put_user(s, i, rep, ptr, n);
}

struct capture_ctx {
	struct pt_regs *regs;
	const struct probe_site *site;
	struct scratch *s;
	__u64 cfa;
};

static long capture_op(__u64 i, void *arg)
{
	struct capture_ctx *cx = arg;
	struct scratch *s = cx->s;
	const struct probe_op *op;
	__u32 rep;

	if (i >= cx->site->nops || s->stop)
		return 1;
	op = &cx->site->ops[i & (PROBE_MAX_OPS - 1)];
	switch (op->kind) {
	case POP_REG:
		put_reg(s, i, s->regs[op->reg & 15]);
		break;
	case POP_STACK:
		put_user(s, i, 0, cx->cfa + op->off, op->size);
		break;
	case POP_DEREF:
		if (!op->nrep) {
			deref_one(s, op, i, 0);
			break;
		}
		bpf_for(rep, 0, PROBE_MAX_REP) {
			if (rep >= op->nrep || s->stop)
				break;
			deref_one(s, op, i, rep);
		}
		break;
	}
	return 0;
}

/* ---- --where, in postfix ---- */

static __always_inline bool compare(__s64 a, __s64 b, __u32 cmp, bool is_signed)
{
	__u64 ua = a, ub = b;

	switch (cmp) {
	case PC_EQ: return a == b;
	case PC_NE: return a != b;
	case PC_LT: return is_signed ? a < b : ua < ub;
	case PC_LE: return is_signed ? a <= b : ua <= ub;
	case PC_GT: return is_signed ? a > b : ua > ub;
	case PC_GE: return is_signed ? a >= b : ua >= ub;
	}
	return false;
}

static __always_inline __s64 load_int(struct scratch *s, const struct probe_pred *p)
{
	__u32 src = p->src & (PROBE_MAX_OPS - 1);
	__u64 v;

	/* a value may have fewer than 8 bytes left in its chunk: the rest is padding */
	if (p->off < 0 || p->off + p->size > s->olen[src])
		return 0;
	v = *(__u64 *)&s->data[(s->opos[src] + p->off) & DATA_MASK];
	switch (p->size) {
	case 1: return p->is_signed ? (__s64)(__s8)v : (__s64)(__u8)v;
	case 2: return p->is_signed ? (__s64)(__s16)v : (__s64)(__u16)v;
	case 4: return p->is_signed ? (__s64)(__s32)v : (__s64)(__u32)v;
	}
	return (__s64)v;
}

static __always_inline bool str_equal(struct scratch *s, const struct probe_pred *p)
{
	__u64 len;
	__u32 at, k;

	if (!load_u64(s, p->len_src, p->len_off, &len) || len != (__u64)p->val)
		return false;
	if (len > s->olen[p->src & (PROBE_MAX_OPS - 1)])
		return false; /* not captured that far */
	at = s->opos[p->src & (PROBE_MAX_OPS - 1)];
	bpf_for(k, 0, PROBE_STR_MAX) {
		if (k >= len)
			break;
		if (s->data[(at + k) & DATA_MASK] != p->str[k & (PROBE_STR_MAX - 1)])
			return false;
	}
	return true;
}

static __always_inline void push(struct scratch *s, bool v)
{
	s->bits = (s->bits << 1) | v;
	s->depth++;
}

static __always_inline bool pop(struct scratch *s)
{
	bool v = s->bits & 1;

	s->bits >>= 1;
	s->depth--;
	return v;
}

static long pred_item(__u64 i, void *arg)
{
	struct capture_ctx *cx = arg;
	struct scratch *s = cx->s;
	const struct probe_pred *p;
	bool a, b;

	if (i >= cx->site->npred)
		return 1;
	p = &cx->site->pred[i & (PROBE_MAX_PRED - 1)];
	switch (p->kind) {
	case PP_INT:
		push(s, compare(load_int(s, p), p->val, p->cmp, p->is_signed));
		break;
	case PP_STR:
		a = str_equal(s, p);
		push(s, p->cmp == PC_NE ? !a : a);
		break;
	case PP_AND:
	case PP_OR:
		b = pop(s);
		a = pop(s);
		push(s, p->kind == PP_AND ? a && b : a || b);
		break;
	case PP_NOT:
		push(s, !pop(s));
		break;
	}
	return 0;
}

/* ---- caller stack ---- */

static long stack_frame(__u64 i, void *arg)
{
	struct capture_ctx *cx = arg;
	struct scratch *s = cx->s;
	__u64 fr[2];
	__u32 at;

	if (i + 1 >= cx->site->nstack || !s->bp)
		return 1;
	if (bpf_probe_read_user(fr, sizeof(fr), (const void *)s->bp))
		return 1;
	at = s->pos + 8 * (__u32)i;
	*(__u64 *)&s->data[at & DATA_MASK] = fr[1];
	s->nframes = (__u32)i + 1;
	s->bp = fr[0] > s->bp ? fr[0] : 0; /* frames only go up the stack */
	return 0;
}

/* Return addresses from the caller up: [CFA-8], then the frame-pointer chain. */
static __always_inline void capture_stack(struct capture_ctx *cx)
{
	struct scratch *s = cx->s;
	struct probe_chunk *c;
	__u64 ret = 0, bp = cx->regs->bp;
	__u32 n;

	if (!cx->site->nstack || s->pos >= PROBE_MAX_DATA - 8 * PROBE_MAX_STACK - sizeof(*c))
		return;
	c = (struct probe_chunk *)&s->data[s->pos & (PROBE_MAX_DATA - 1)];
	if (bpf_probe_read_user(&ret, 8, (const void *)(cx->cfa - 8)))
		return;
	if (cx->site->flags & PSF_FRAMED)
		bpf_probe_read_user(&bp, 8, (const void *)(cx->cfa - 16));
	c->op = PROBE_CHUNK_STACK;
	c->rep = 0;
	c->failed = 0;
	c->addr = 0;
	s->pos += sizeof(*c);
	*(__u64 *)&s->data[s->pos & DATA_MASK] = ret;
	s->pos += 8;
	s->bp = bp;
	s->nframes = 0;
	bpf_loop(PROBE_MAX_STACK - 1, stack_frame, cx, 0);
	n = s->nframes;
	if (n > PROBE_MAX_STACK - 1)
		n = PROBE_MAX_STACK - 1;
	s->pos += 8 * n;
	c->len = 8 * (n + 1);
}

/* ---- events ---- */

static __always_inline struct scratch *begin(struct pt_regs *regs, const struct probe_site *site, __u32 cookie,
					     __u64 goid, __u64 now)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!s)
		return NULL;
	s->h.ts = now;
	s->h.goid = goid;
	s->h.call_id = 0;
	s->h.duration = 0;
	s->h.sp = regs->sp;
	s->h.ip = regs->ip; /* the kernel sets it back to the breakpoint for handlers */
	s->h.pid = pid_tgid >> 32;
	s->h.tid = (__u32)pid_tgid;
	s->h.site = cookie;
	s->h.kind = site->kind;
	s->h.flags = 0;
	s->h.data_len = 0;
	s->pos = 0;
	s->stop = 0;
	s->bits = 0;
	s->depth = 0;
	/* an op that copies nothing (a nil pointer) must not leave the previous
	 * event's output for the ops that follow pointers in it */
	__builtin_memset(s->olen, 0, sizeof(s->olen));
	save_regs(s, regs);
	return s;
}

static __always_inline void capture(struct capture_ctx *cx)
{
	bpf_loop(PROBE_MAX_OPS, capture_op, cx, 0);
}

static __always_inline bool where(struct capture_ctx *cx)
{
	if (!cx->site->npred)
		return true;
	bpf_loop(PROBE_MAX_PRED, pred_item, cx, 0);
	return cx->s->depth == 1 && (cx->s->bits & 1);
}

static __always_inline bool emit(struct scratch *s)
{
	__u64 size = sizeof(struct probe_event) + s->pos;
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (size > sizeof(struct probe_event) + DATA_MASK)
		return false;
	s->h.data_len = s->pos;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wake_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	return bpf_ringbuf_output(&events, s, size, flags) == 0;
}

static __always_inline bool over_rate(__u32 func, __u64 now)
{
	struct rate *r;
	__u64 w = now / 1000000000ull;

	if (!rate_limit)
		return false;
	r = bpf_map_lookup_elem(&rates, &func);
	if (!r)
		return false;
	if (r->window != w) {
		r->window = w;
		r->count = 0;
	}
	return __sync_fetch_and_add(&r->count, 1) >= rate_limit;
}

enum { KEPT_NO = 0, KEPT_YES = 1, KEPT_LOST = 2 };

static __always_inline int on_call(struct capture_ctx *cx, struct probe_stats *st, struct probe_call_key *key,
				   struct probe_call *call, __u32 cookie, __u64 goid, __u64 now)
{
	const struct probe_site *site = cx->site;
	struct probe_call nc = {};
	struct scratch *s;

	if (site->flags & PSF_CALLS_ONLY)
		key = NULL;
	else if (call && !call->returned && call->pc == cookie) {
		st->repeats++;
		return 0;
	}
	nc.ts = now;
	nc.pc = cookie;
	nc.func = site->func;
	nc.call_id = __sync_fetch_and_add(&next_call_id, 1) + 1;
	nc.kept = KEPT_YES;
	if (over_rate(site->func, now)) {
		st->rate_limited++;
		nc.kept = KEPT_NO;
		goto out;
	}
	s = begin(cx->regs, site, cookie, goid, now);
	if (!s)
		return 0;
	cx->s = s;
	capture(cx);
	if (!where(cx)) {
		st->filtered++;
		nc.kept = KEPT_NO;
		goto out;
	}
	capture_stack(cx);
	s->h.call_id = nc.call_id;
	if (emit(s)) {
		st->calls++;
	} else {
		st->ring_drops++;
		nc.kept = KEPT_LOST;
	}
out:
	if (key)
		bpf_map_update_elem(&calls, key, &nc, BPF_ANY);
	return 0;
}

static __always_inline int on_return(struct capture_ctx *cx, struct probe_stats *st, struct probe_call_key *key,
				     struct probe_call *call, __u32 cookie, __u64 goid, __u64 now)
{
	const struct probe_site *site = cx->site;
	__u64 call_id = 0, duration = 0;
	struct scratch *s;

	if (call && call->returned && call->pc == cookie) {
		st->repeats++;
		return 0;
	}
	if (call && !call->returned && call->func == site->func) {
		call->returned = 1;
		call->pc = cookie;
		if (call->kept != KEPT_YES) {
			if (call->kept == KEPT_LOST)
				st->ring_drops++;
			return 0;
		}
		call_id = call->call_id;
		duration = now - call->ts;
	} else {
		/* A call made before the probes were attached. */
		struct probe_call nc = {.pc = cookie, .func = site->func, .returned = 1};

		bpf_map_update_elem(&calls, key, &nc, BPF_ANY);
		if ((site->flags & PSF_NEED_CALL) || rate_limit)
			return 0; /* cannot tell whether its call would have passed */
	}
	s = begin(cx->regs, site, cookie, goid, now);
	if (!s)
		return 0;
	cx->s = s;
	s->h.call_id = call_id;
	s->h.duration = duration;
	if (!call_id)
		s->h.flags |= PEF_NO_CALL;
	capture(cx);
	if (emit(s))
		st->returns++;
	else
		st->ring_drops++;
	return 0;
}

static __always_inline int on_hit(struct pt_regs *regs)
{
	__u32 cookie = (__u32)bpf_get_attach_cookie(regs);
	struct capture_ctx cx = {.regs = regs};
	const struct probe_site *site;
	struct probe_call_key key;
	struct probe_stats *st;
	struct probe_call *call;
	__u64 g = regs->r14, goid = 0, hi = 0, now;
	__u32 func;

	site = bpf_map_lookup_elem(&sites, &cookie);
	if (!site)
		return 0;
	func = site->func;
	st = bpf_map_lookup_elem(&stats, &func);
	if (!st)
		return 0;
	/* the stack check is about to grow the stack; the call starts again after */
	if ((site->flags & PSF_SKIP_IF_BE) && (regs->flags & (X86_EFLAGS_CF | X86_EFLAGS_ZF)))
		return 0;
	if (site->flags & PSF_COUNT_ONLY) {
		st->hits++;
		return 0;
	}
	now = bpf_ktime_get_ns();
	/* Go's ABIInternal keeps the current g in R14. */
	bpf_probe_read_user(&goid, sizeof(goid), (const void *)(g + g_goid_off));
	bpf_probe_read_user(&hi, sizeof(hi), (const void *)(g + g_stack_hi_off));
	cx.site = site;
	cx.cfa = regs->sp + site->cfa_off;
	key.goid = goid;
	key.depth = hi - cx.cfa;
	call = site->flags & PSF_CALLS_ONLY ? NULL : bpf_map_lookup_elem(&calls, &key);
	if (site->kind == PROBE_CALL)
		return on_call(&cx, st, &key, call, cookie, goid, now);
	return on_return(&cx, st, &key, call, cookie, goid, now);
}

SEC("uprobe.multi")
int probe_multi(struct pt_regs *regs)
{
	return on_hit(regs);
}

/* For kernels without uprobe_multi links (< 6.6): one link per site. */
SEC("uprobe")
int probe_single(struct pt_regs *regs)
{
	return on_hit(regs);
}
