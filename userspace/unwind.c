/* unwind.c - goroutine stack walking over a copied stack, using pcsp frame sizes. */
#include "unwind.h"

#include <string.h>

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

int unwind(const struct gobin *bin, uint64_t bias, uint64_t pc, uint64_t sp, const uint8_t *stack,
	   uint64_t stack_addr, uint64_t stack_len, struct uframe *out, int max, enum unwind_end *end)
{
	int n = 0;

	*end = UNWIND_DONE;
	while (pc) {
		const struct gofunc *f = pcln_find(bin->pcln, pc - bias);
		int spd;
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
		spd = pcln_spdelta(bin->pcln, f, pc - bias);
		if (spd < 0 || spd > (1 << 24)) {
			n++;
			*end = UNWIND_BAD_FRAME;
			break;
		}
		out[n].cfa = sp + (uint64_t)spd + 8;
		n++;
		if (is_stack_root(f->name))
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
