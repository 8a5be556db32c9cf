/* unwind.c - goroutine stack walking over a copied stack, using pcsp frame sizes
 * (remembered per pc when the caller keeps an unwind_cache). */
#include "unwind.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gobin.h"
#include "pclntab.h"

static bool is_stack_root(const char *name)
{
	/* Frames the runtime's traceback stops at (funcID goexit, mstart, rt0_go...). */
	static const char *const roots[] = {
		"runtime.goexit", "runtime.mstart", "runtime.mstart0", "runtime.rt0_go",
		"runtime.mcall", "runtime.morestack", "runtime.systemstack_switch", "runtime.asmcgocall",
	};

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		if (strcmp(name, roots[i]) == 0)
			return true;
	return false;
}

/* One pc's frame facts. */
struct unwind_pc {
	uint64_t pc;			/* link-time pc + 1 (0: empty slot) */
	const struct gofunc *fn;
	int spd;			/* pcln_spdelta's result */
	bool root;
};

static struct unwind_pc *slot_of(struct unwind_cache *c, uint64_t pc)
{
	size_t i = (size_t)(pc * 0x9e3779b97f4a7c15ull >> 32) & (c->cap - 1);

	while (c->slots[i].pc && c->slots[i].pc != pc + 1)
		i = (i + 1) & (c->cap - 1);
	return &c->slots[i];
}

/* The function holding link-time pc, its frame size there and whether it is a
 * stack root, from c when it has them. */
static const struct gofunc *frame_at(const struct gobin *bin, struct unwind_cache *c, uint64_t pc, int *spd,
				     bool *root)
{
	struct unwind_pc *e = NULL;
	const struct gofunc *f;

	if (c) {
		if (2 * (c->n + 1) > c->cap) {
			struct unwind_pc *old = c->slots;
			size_t oldcap = c->cap;

			c->cap = oldcap ? 2 * oldcap : 512;
			c->slots = xcalloc(c->cap, sizeof(*c->slots));
			for (size_t i = 0; i < oldcap; i++)
				if (old[i].pc)
					*slot_of(c, old[i].pc - 1) = old[i];
			free(old);
		}
		e = slot_of(c, pc);
		if (e->pc) {
			*spd = e->spd;
			*root = e->root;
			return e->fn;
		}
	}
	f = pcln_find(bin->pcln, pc);
	*spd = f ? pcln_spdelta(bin->pcln, f, pc) : -1;
	*root = f && is_stack_root(f->name);
	if (e) {
		*e = (struct unwind_pc){ .pc = pc + 1, .fn = f, .spd = *spd, .root = *root };
		c->n++;
	}
	return f;
}

void unwind_cache_free(struct unwind_cache *c)
{
	free(c->slots);
	memset(c, 0, sizeof(*c));
}

int unwind(const struct gobin *bin, uint64_t bias, uint64_t pc, uint64_t sp, const uint8_t *stack,
	   uint64_t stack_addr, uint64_t stack_len, struct uframe *out, int max, enum unwind_end *end)
{
	return unwind_cached(bin, NULL, bias, pc, sp, stack, stack_addr, stack_len, out, max, end);
}

int unwind_cached(const struct gobin *bin, struct unwind_cache *c, uint64_t bias, uint64_t pc, uint64_t sp,
		  const uint8_t *stack, uint64_t stack_addr, uint64_t stack_len, struct uframe *out, int max,
		  enum unwind_end *end)
{
	int n = 0;

	*end = UNWIND_DONE;
	while (pc) {
		int spd;
		bool root;
		const struct gofunc *f = frame_at(bin, c, pc - bias, &spd, &root);
		uint64_t ra_at, ra;

		if (n == max) {
			*end = UNWIND_TRUNCATED;
			break;
		}
		out[n].pc = pc;
		out[n].sp = sp;
		out[n].fn = f;
		out[n].cfa = 0;
		if (!f) {
			n++;
			*end = UNWIND_NO_FUNC;
			break;
		}
		if (spd < 0 || spd > (1 << 24)) {
			n++;
			*end = UNWIND_BAD_FRAME;
			break;
		}
		out[n].cfa = sp + (uint64_t)spd + 8;
		n++;
		if (root)
			break;
		ra_at = sp + (uint64_t)spd;
		if (ra_at < stack_addr || stack_len < 8 || ra_at - stack_addr > stack_len - 8) {
			*end = UNWIND_OUT_OF_COPY;
			break;
		}
		memcpy(&ra, stack + (ra_at - stack_addr), 8);
		pc = ra;
		sp = ra_at + 8;
	}
	return n;
}

const char *unwind_end_name(enum unwind_end e)
{
	switch (e) {
	case UNWIND_DONE: return "done";
	case UNWIND_TRUNCATED: return "truncated";
	case UNWIND_NO_FUNC: return "pc outside Go code";
	case UNWIND_OUT_OF_COPY: return "stack copy too short";
	case UNWIND_BAD_FRAME: return "bad frame size";
	}
	return "?";
}
