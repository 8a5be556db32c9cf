/* disasm.h - instruction-level facts about Go functions, from the Capstone x86-64
 * decoder: where to place probes, and which globals a runtime function touches.
 */
#ifndef GLIMPSE_DISASM_H
#define GLIMPSE_DISASM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gobin;
struct gofunc;

struct probe_sites {
	uint64_t entry;		/* the function's first instruction */
	uint64_t body;		/* first instruction after the stack check and frame set-up:
				 * the entry probe goes here (arguments still in registers) */
	int frame_size;		/* bytes reserved by SUBQ $n, SP in the prologue (0 if none) */
	bool frame_pointer;	/* PUSHQ BP; MOVQ SP, BP present */
	bool stack_check;	/* starts with the morestack check */
	int nrets;
	uint64_t *rets;		/* every RET instruction, ascending */
};

/* Decodes f and fills *out (free with probe_sites_free). Returns 0 or a negative code. */
int disasm_probe_sites(const struct gobin *bin, const struct gofunc *f, struct probe_sites *out);
void probe_sites_free(struct probe_sites *ps);

/* Collects the distinct link-time addresses that f's instructions reference
 * RIP-relatively (LEAQ/MOVQ x(IP)), in order of first use, up to max.
 * Returns the count or a negative code. */
int disasm_rip_refs(const struct gobin *bin, const struct gofunc *f, uint64_t *addrs, int max);

#endif
