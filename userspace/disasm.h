/* disasm.h - instruction-level facts about Go functions, from the Capstone x86-64
 * decoder: where to place probes, and which globals a runtime function touches.
 */
#ifndef GLIMPSE_DISASM_H
#define GLIMPSE_DISASM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_file;
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
	int undecodable;	/* bytes the decoder could not decode (e.g. AVX-512 in
				 * assembly); when > 0, rets stops before the first one,
				 * since what follows may be decoded off the instruction
				 * boundaries: the function's returns cannot all be probed */
};

/* Decodes f and fills *out (free with probe_sites_free). Returns 0 or a negative code. */
int disasm_probe_sites(const struct elf_file *elf, const struct gofunc *f, struct probe_sites *out);
void probe_sites_free(struct probe_sites *ps);

/* Collects the distinct link-time addresses that f's instructions reference
 * RIP-relatively (LEAQ/MOVQ x(IP)), in order of first use, up to max.
 * Returns the count or a negative code. */
int disasm_rip_refs(const struct elf_file *elf, const struct gofunc *f, uint64_t *addrs, int max);

/* Lower level, for other instruction-level analyses (goglobals.c): decodes f
 * linearly from entry to end and calls fn(insn, arg) for each instruction
 * (Capstone x86-64, detail on, insn->address a link-time address). Bytes the
 * decoder rejects are skipped one at a time. fn returns 0 to go on, > 0 to stop
 * early, < 0 to fail with that code. Returns the number of bytes skipped (>= 0)
 * or a negative code. */
struct cs_insn;
int disasm_walk(const struct elf_file *elf, const struct gofunc *f,
		int (*fn)(const struct cs_insn *insn, void *arg), void *arg);
/* If insn has a RIP-relative memory operand, sets *target to the address it
 * refers to (address of the next instruction + displacement) and returns true. */
bool disasm_rip_target(const struct cs_insn *insn, uint64_t *target);

#endif
