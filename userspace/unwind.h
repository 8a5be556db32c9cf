/* unwind.h - walk a goroutine's stack the way the Go runtime's own traceback
 * does: frame sizes from the pclntab's pcsp table, return address at
 * sp + framesize, caller's sp just above it. Works on stripped binaries and
 * frameless leaves, over a copy of the stack (never the live process).
 */
#ifndef GLIMPSE_UNWIND_H
#define GLIMPSE_UNWIND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gobin;
struct gofunc;

#define UNWIND_MAX_FRAMES 100	/* the runtime's own traceback limit */

struct uframe {
	uint64_t pc;			/* run-time pc: the resume/return address (or trap pc for frame 0) */
	uint64_t sp;			/* run-time sp of the frame */
	uint64_t cfa;			/* sp at the call into this frame + 8 (Go's DWARF frame base) */
	const struct gofunc *fn;	/* NULL when pc is in no Go function */
};

/* Why a walk stopped. */
enum unwind_end {
	UNWIND_DONE,		/* reached runtime.goexit (or another stack root) */
	UNWIND_TRUNCATED,	/* more than max frames */
	UNWIND_NO_FUNC,		/* a pc outside Go code (cgo, vdso, corrupt) */
	UNWIND_OUT_OF_COPY,	/* the next return address lies beyond the copied bytes */
	UNWIND_BAD_FRAME,	/* pcsp said nonsense */
};

/* Walks from (pc, sp), both run-time addresses, over stack bytes copied from
 * run-time address stack_addr. bias = run-time minus link-time address.
 * Writes up to max frames to out and returns how many; *end says why it stopped. */
int unwind(const struct gobin *bin, uint64_t bias, uint64_t pc, uint64_t sp, const uint8_t *stack,
	   uint64_t stack_addr, uint64_t stack_len, struct uframe *out, int max, enum unwind_end *end);

/* What unwind learnt about each pc (its function and frame size), for walking
 * many stacks of one binary: 10k goroutines share a few hundred pcs, and each
 * pcsp table is then decoded once. A zeroed struct is empty; one thread at a
 * time; unwind_cache_free frees it. */
struct unwind_cache {
	struct unwind_pc *slots;
	size_t cap, n;
};
/* unwind, remembering in c (NULL: no cache). */
int unwind_cached(const struct gobin *bin, struct unwind_cache *c, uint64_t bias, uint64_t pc, uint64_t sp,
		  const uint8_t *stack, uint64_t stack_addr, uint64_t stack_len, struct uframe *out, int max,
		  enum unwind_end *end);
void unwind_cache_free(struct unwind_cache *c);
const char *unwind_end_name(enum unwind_end e);

#endif
