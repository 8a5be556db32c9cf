/* goglobals.c - finds runtime.allgs and runtime.allglen in binaries without a
 * symbol table, by decoding the runtime functions that use them.
 *
 * runtime.allgadd (proc.go) does, in every Go version from 1.18 to 1.26:
 *	allgs = append(allgs, gp)                  reads allgs, allgs+8, allgs+16
 *	atomic.Storeuintptr(&allglen, len(allgs))  MOVQ allgs+8(SB), CX
 *	                                           LEAQ allglen(SB), DX; XCHGQ CX, 0(DX)
 * so allgs is the one address whose +8 and +16 are referenced too, and allglen
 * is where the value loaded from allgs+8 is stored. runtime.forEachG (reads
 * allgs and allgs+8) and runtime.forEachGRace (reads allglen first) confirm it,
 * or stand in when allgadd is missing. allgs holds pointers (.bss) and
 * allglen does not (.noptrbss): they are not adjacent.
 */
#include "goruntime.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <string.h>

#include "disasm.h"
#include "err.h"
#include "elffile.h"
#include "pclntab.h"

#define MAX_REFS 256
#define MAX_STORES 32
#define SLICE_SIZE 24	/* ptr, len, cap */

enum regkind { REG_UNKNOWN, REG_ADDR, REG_LOADED };

/* What a general-purpose register is known to hold: the address of a global
 * (LEAQ sym(SB), R) or the value loaded from one (MOVQ sym(SB), R). */
struct regval {
	enum regkind kind;
	uint64_t target;
};

/* A store of the value loaded from `from` to the global at `to`. */
struct gstore {
	uint64_t to;
	uint64_t from;
};

struct gwalk {
	uint64_t refs[MAX_REFS];	/* distinct RIP-relative targets, first use order */
	int nrefs;
	struct gstore stores[MAX_STORES];
	int nstores;
	struct regval regs[16];		/* by 64-bit register number, see gpr_index */
};

static const x86_reg gpr_names[16][4] = {
	{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL },
	{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL },
	{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL },
	{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL },
	{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL },
	{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL },
	{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL },
	{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL },
	{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B },
	{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B },
	{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B },
	{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B },
	{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B },
	{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B },
	{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B },
	{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B },
};

/* 0..15 for any width of a general-purpose register, -1 otherwise (AH & co.
 * map to -1 too, which only costs precision). */
static int gpr_index(unsigned int reg)
{
	for (int i = 0; i < 16; i++)
		for (int w = 0; w < 4; w++)
			if (gpr_names[i][w] == reg)
				return i;
	return -1;
}

static bool is_gpr64(unsigned int reg)
{
	int i = gpr_index(reg);

	return i >= 0 && gpr_names[i][0] == reg;
}

static void forget_reg(struct gwalk *w, unsigned int reg)
{
	int i = gpr_index(reg);

	if (i >= 0)
		w->regs[i].kind = REG_UNKNOWN;
}

static void add_ref(struct gwalk *w, uint64_t target)
{
	for (int i = 0; i < w->nrefs; i++)
		if (w->refs[i] == target)
			return;
	if (w->nrefs < MAX_REFS)
		w->refs[w->nrefs++] = target;
}

static bool has_ref(const struct gwalk *w, uint64_t target)
{
	for (int i = 0; i < w->nrefs; i++)
		if (w->refs[i] == target)
			return true;
	return false;
}

/* Address a memory operand refers to, when it is a known global:
 * sym+d(SB) directly, or d(R) with R holding &sym. */
static bool mem_global(const struct gwalk *w, const cs_insn *insn, const cs_x86_op *op, uint64_t *addr)
{
	int r;

	if (op->mem.index != X86_REG_INVALID || op->mem.segment != X86_REG_INVALID)
		return false;
	if (op->mem.base == X86_REG_RIP)
		return disasm_rip_target(insn, addr);
	r = gpr_index(op->mem.base);
	if (r < 0 || w->regs[r].kind != REG_ADDR)
		return false;
	*addr = w->regs[r].target + (uint64_t)op->mem.disp;
	return true;
}

/* MOVQ R, mem or XCHGQ R, mem (an atomic store), R holding a loaded global. */
static void note_store(struct gwalk *w, const cs_insn *insn)
{
	const cs_x86 *x = &insn->detail->x86;
	const cs_x86_op *mem, *reg;
	uint64_t to;
	int r;

	if ((insn->id != X86_INS_MOV && insn->id != X86_INS_XCHG) || x->op_count != 2)
		return;
	mem = &x->operands[0];
	reg = &x->operands[1];
	if (insn->id == X86_INS_XCHG && mem->type == X86_OP_REG) {
		mem = &x->operands[1];
		reg = &x->operands[0];
	}
	if (mem->type != X86_OP_MEM || reg->type != X86_OP_REG || !is_gpr64(reg->reg))
		return;
	r = gpr_index(reg->reg);
	if (w->regs[r].kind != REG_LOADED || !mem_global(w, insn, mem, &to) || w->nstores == MAX_STORES)
		return;
	w->stores[w->nstores].to = to;
	w->stores[w->nstores].from = w->regs[r].target;
	w->nstores++;
}

/* Updates what registers hold after insn. */
static void track_regs(struct gwalk *w, const cs_insn *insn)
{
	const cs_x86 *x = &insn->detail->x86;
	const cs_detail *d = insn->detail;
	uint64_t target;
	bool rip = disasm_rip_target(insn, &target);

	if (insn->id == X86_INS_CALL) {
		memset(w->regs, 0, sizeof(w->regs));
		return;
	}
	for (int i = 0; i < d->regs_write_count; i++)
		forget_reg(w, d->regs_write[i]);
	for (int i = 0; i < x->op_count; i++)
		if (x->operands[i].type == X86_OP_REG && (x->operands[i].access & CS_AC_WRITE))
			forget_reg(w, x->operands[i].reg);
	if (!rip || x->op_count != 2 || x->operands[0].type != X86_OP_REG || !is_gpr64(x->operands[0].reg))
		return;
	if (insn->id == X86_INS_LEA || insn->id == X86_INS_MOV) {
		struct regval *rv = &w->regs[gpr_index(x->operands[0].reg)];

		rv->kind = insn->id == X86_INS_LEA ? REG_ADDR : REG_LOADED;
		rv->target = target;
	}
}

static int walk_insn(const cs_insn *insn, void *arg)
{
	struct gwalk *w = arg;
	uint64_t target;

	if (disasm_rip_target(insn, &target))
		add_ref(w, target);
	note_store(w, insn);
	track_regs(w, insn);
	return 0;
}

/* Decodes the runtime function `name` into *w. Returns 0, 1 if the binary has
 * no such function, or a negative code. */
static int walk_func(const struct elf_file *elf, const struct pcln *pcln, const char *name, struct gwalk *w)
{
	const struct gofunc *f = pcln_lookup(pcln, name);
	int rc;

	memset(w, 0, sizeof(*w));
	if (!f)
		return 1;
	rc = disasm_walk(elf, f, walk_insn, w);
	if (rc < 0)
		return err_wrap(rc, "decoding %s", name);
	return 0;
}

/* The one referenced address A with A+8 (and A+16 if want_cap) referenced too,
 * or 0 if there is none or more than one. */
static uint64_t find_slice_header(const struct gwalk *w, bool want_cap)
{
	uint64_t found = 0;

	for (int i = 0; i < w->nrefs; i++) {
		uint64_t a = w->refs[i];

		if (!has_ref(w, a + 8) || (want_cap && !has_ref(w, a + 16)))
			continue;
		if (found && found != a)
			return 0;
		found = a;
	}
	return found;
}

/* Where allgadd stores the length it loaded from allgs+8, or 0. */
static uint64_t find_len_store(const struct gwalk *w, uint64_t allgs)
{
	uint64_t found = 0;

	for (int i = 0; i < w->nstores; i++) {
		const struct gstore *s = &w->stores[i];

		if (s->from != allgs + 8 || (s->to >= allgs && s->to < allgs + SLICE_SIZE))
			continue;
		if (found && found != s->to)
			return 0;
		found = s->to;
	}
	return found;
}

/* Name of the writable, allocated, non-code section holding [addr, addr+size),
 * or NULL. */
static const char *data_section(const struct elf_file *elf, uint64_t addr, uint64_t size)
{
	for (size_t i = 0; i < elf->nsections; i++) {
		const struct elf_section *sh = &elf->sections[i];

		if ((sh->flags & (SHF_ALLOC | SHF_WRITE)) != (SHF_ALLOC | SHF_WRITE) || (sh->flags & SHF_EXECINSTR))
			continue;
		if (addr >= sh->addr && size <= sh->size && addr - sh->addr <= sh->size - size)
			return sh->name;
	}
	return NULL;
}

/* allgs and allglen from allgadd; 1 if allgadd is missing. */
static int from_allgadd(const struct elf_file *elf, const struct pcln *pcln, struct gwalk *w, uint64_t *allgs, uint64_t *allglen)
{
	int rc = walk_func(elf, pcln, "runtime.allgadd", w);

	if (rc)
		return rc;
	*allgs = find_slice_header(w, true);
	if (!*allgs)
		return err_set(GLIMPSE_ECORRUPT, "%s: runtime.allgadd does not use one 24-byte slice (allgs)",
			       elf->path);
	*allglen = find_len_store(w, *allgs);
	if (!*allglen)
		return err_set(GLIMPSE_ECORRUPT, "%s: runtime.allgadd does not store len(allgs) (allglen)",
			       elf->path);
	return 0;
}

/* Confirms (or, where *allgs or *allglen is 0, supplies) the addresses from
 * forEachG and forEachGRace, when the binary has them. */
static int cross_check(const struct elf_file *elf, const struct pcln *pcln, struct gwalk *w, uint64_t *allgs, uint64_t *allglen)
{
	int rc = walk_func(elf, pcln, "runtime.forEachG", w);

	if (rc < 0)
		return rc;
	if (rc == 0 && !*allgs)
		*allgs = find_slice_header(w, false);
	if (rc == 0 && (!has_ref(w, *allgs) || !has_ref(w, *allgs + 8)))
		return err_set(GLIMPSE_ECORRUPT, "%s: runtime.forEachG does not read allgs at 0x%llx", elf->path,
			       (unsigned long long)*allgs);
	rc = walk_func(elf, pcln, "runtime.forEachGRace", w);
	if (rc < 0)
		return rc;
	if (rc == 0 && !*allglen && w->nrefs > 0)
		*allglen = w->refs[0];	/* atomicAllG loads allglen before allgptr */
	if (rc == 0 && !has_ref(w, *allglen))
		return err_set(GLIMPSE_ECORRUPT, "%s: runtime.forEachGRace does not read allglen at 0x%llx",
			       elf->path, (unsigned long long)*allglen);
	return 0;
}

int goruntime_find_globals(const struct elf_file *elf, const struct pcln *pcln, uint64_t *allgs, uint64_t *allglen)
{
	struct gwalk w;
	int rc;

	*allgs = *allglen = 0;
	rc = from_allgadd(elf, pcln, &w, allgs, allglen);
	if (rc < 0)
		return rc;
	rc = cross_check(elf, pcln, &w, allgs, allglen);
	if (rc < 0)
		return rc;
	if (!*allgs || !*allglen)
		return err_set(GLIMPSE_ECORRUPT, "%s: cannot find runtime.allgs/allglen (no allgadd, forEachG "
			       "or forEachGRace in the pclntab)", elf->path);
	if (!data_section(elf, *allgs, SLICE_SIZE))
		return err_set(GLIMPSE_ECORRUPT, "%s: runtime.allgs candidate 0x%llx is not in a data section",
			       elf->path, (unsigned long long)*allgs);
	if (!data_section(elf, *allglen, 8))
		return err_set(GLIMPSE_ECORRUPT, "%s: runtime.allglen candidate 0x%llx is not in a data section",
			       elf->path, (unsigned long long)*allglen);
	if (*allglen + 8 > *allgs && *allglen < *allgs + SLICE_SIZE)
		return err_set(GLIMPSE_ECORRUPT, "%s: runtime.allgs (0x%llx) and allglen (0x%llx) overlap",
			       elf->path, (unsigned long long)*allgs, (unsigned long long)*allglen);
	return 0;
}
