/* plan.h - capture plans for `glimpse trace`: which Go functions a regexp names,
 * where each argument and result lives at the entry probe and at every RET (the
 * register ABI, computed from DWARF types), what the generic BPF program must copy
 * there (struct probe_site in bpf/probe.h), and how the bytes of a captured event
 * turn back into each value's bytes and a memory reader for the decoder.
 * Also `--where`: parsing, compiling what it can into the BPF plan, and
 * evaluating the rest on captured events.
 */
#ifndef GLIMPSE_PLAN_H
#define GLIMPSE_PLAN_H
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../bpf/probe.h"

struct gobin;
struct gofunc;
struct gotype;

/* How much of each value to copy. */
struct plan_limits {
	uint32_t max_string;	/* bytes of a string (default 64) */
	uint32_t max_entries;	/* elements of a slice or array (default 8) */
	uint32_t max_depth;	/* pointers followed from an argument (default 2) */
	uint32_t nstack;	/* caller frames with each call (--stack), 0: none */
};

void plan_limits_default(struct plan_limits *l);

#define PLAN_MAX_PIECES 32

/* Bytes [mem_off, mem_off + size) of a value come from op `op`'s output at op_off. */
struct plan_piece {
	uint32_t mem_off;
	uint32_t size;
	int op;
	uint32_t op_off;
};

struct plan_value {
	const char *name;		/* as in the source; "~r0", ... for unnamed results */
	const struct gotype *type;
	int npieces;
	struct plan_piece pieces[PLAN_MAX_PIECES];
	const char *unavailable;	/* why it cannot be captured (static text), else NULL */
};

struct plan_func {
	const struct gofunc *func;	/* borrowed from the binary model */
	const char *name;
	bool typed;			/* DWARF names and types are known */
	int nargs, nresults;
	struct plan_value *args, *results;
	uint64_t call_pc;		/* link-time address of the entry probe */
	int nrets;
	uint64_t *rets;			/* link-time addresses of the return probes */
	struct probe_site call, ret;	/* what BPF runs at the entry probe / at every RET */
	char *note;			/* what is not traced and why, or NULL */
	struct where *where;		/* --where bound to this function's arguments, or NULL */
};

/* Finds the functions of bin whose name matches regex (POSIX extended, like
 * `glimpse inspect --funcs`), leaving out compiler-generated wrappers and, unless
 * the regexp mentions "runtime", the runtime's own functions. Sets *funcs (an
 * array the caller frees; entries borrowed from bin) and *n. A bad regexp, no
 * match, a name the compiler inlined into every caller, or too many matches
 * (more than max) give a negative code with a message saying what to do. */
int plan_match(const struct gobin *bin, const char *regex, size_t max, const struct gofunc ***funcs, size_t *n);

enum plan_mode {
	PLAN_EVENTS,		/* calls and returns, with values */
	PLAN_CALLS_ONLY,	/* calls with arguments; no return probes */
	PLAN_COUNT,		/* count calls; no events */
};

/* Compiles the plan of f: probe sites from the disassembly, values from DWARF
 * (without DWARF: goroutine and duration only, with a note). Returns 0 or a
 * negative code for a function that cannot be probed. Free with plan_func_free. */
int plan_func(const struct gobin *bin, const struct gofunc *f, const struct plan_limits *lim, enum plan_mode mode,
	      struct plan_func *out);
void plan_func_free(struct plan_func *pf);
/* Appends a sentence (printf-style) to pf->note. */
void plan_add_note(struct plan_func *pf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- captured events ---- */

struct plan_chunk {
	int op;			/* index in the site's ops, or PROBE_CHUNK_STACK */
	int rep;
	bool failed;
	uint64_t addr;
	const uint8_t *bytes;
	uint32_t len;
};

#define PLAN_MAX_CHUNKS 512

/* One event's chunks, pointing into its record. */
struct plan_capture {
	int nchunks;
	int first[PROBE_MAX_OPS];	/* index of op i's first chunk, -1 if none */
	struct plan_chunk chunks[PLAN_MAX_CHUNKS];
	const uint64_t *stack;	/* return addresses, caller first (run-time) */
	int nstack;
};

/* Splits the data after an event header (len bytes) into chunks. Returns 0, or
 * a negative code for a malformed record. */
int plan_capture_parse(const uint8_t *data, size_t len, struct plan_capture *out);
/* Assembles v's own bytes (v->type->size of them) into out. Returns 0, or a
 * negative code when a piece was not captured. */
int plan_value_bytes(const struct plan_value *v, const struct plan_capture *c, uint8_t *out);
/* A mem_read_fn (decode.h) over the chunks copied from memory: ctx is a
 * struct plan_capture. Fails for anything that was not captured: -EFAULT
 * where BPF's copy faulted, -ENODATA for bytes it did not copy. */
int plan_capture_read(void *ctx, uint64_t addr, void *dst, size_t n);
/* A mem_readable_fn (decode.h) over the same chunks: how many of the n bytes
 * from addr on one chunk holds. */
size_t plan_capture_readable(void *ctx, uint64_t addr, size_t n);

/* ---- --where ---- */

struct where;

/* Parses EXPR: comparisons of an argument (or a field path through structs and
 * pointers, `u.Home.Lat`) with a literal - integer, float, "string", true,
 * false, nil - using == != < <= > >=, combined with && || ! and parentheses; a
 * bare boolean path also works. Returns 0 and *out (free with where_free) or a
 * negative code with the position of the error. */
int where_parse(const char *expr, struct where **out);
void where_free(struct where *w);

/* Binds a copy of w to the arguments of pf (kept in pf->where, freed with pf):
 * checks names and types, compiles into pf->call.pred what BPF can evaluate
 * (comparisons of integers, booleans, nil and strings of up to PROBE_STR_MAX
 * bytes held in the arguments themselves, not behind a pointer), and keeps the
 * rest for where_eval: the top-level && terms BPF cannot evaluate, or all of w.
 * Returns 0 or a negative code (unknown argument, type mismatch, a function
 * without DWARF). *in_bpf (if not NULL) receives whether BPF evaluates it all. */
int where_bind(const struct where *w, struct plan_func *pf, bool *in_bpf);
/* Evaluates the part of pf's --where that BPF does not on a call captured in c
 * (true without one); a value that was not captured makes its comparison false. */
bool where_eval(const struct plan_func *pf, const struct plan_capture *c);
/* Appends where pf's --where is evaluated ("in BPF: id > 100; in userspace:
 * u.Name == \"zed\"") to out. */
struct buf;
void where_describe(const struct plan_func *pf, struct buf *out);

struct probe_sites;

/* The pc where glimpse trace places f's entry probe: an instruction of the
 * prologue the kernel emulates (PUSHQ BP, or the stack check's JBE) when there is
 * one, else ps->body. Arguments are where the ABI put them there. */
uint64_t plan_entry_pc(const struct gobin *bin, const struct gofunc *f, const struct probe_sites *ps);

#endif
