/* disasm.c - instruction-level facts about Go amd64 functions, decoded with
 * Capstone: where the prologue ends (the entry probe site), every RET (the
 * return probe sites; never uretprobes, which break Go stacks), and which addresses a
 * function references RIP-relatively (used to find runtime globals).
 *
 * The prologue Go's compiler emits, in order (each part optional):
 *   MOVQ FS:-8, R14                    ABI0 code loading g from TLS
 *   CMPQ SP, 0x10(R14); JBE more       stack check (g.stackguard0), or for big
 *   LEAQ -N(SP), R12; CMPQ R12, ...    frames the same on SP-N, or for huge ones
 *   MOVQ SP, R12; SUBQ $N, R12; JB ... SP-N with an underflow check first
 *   PUSHQ BP; MOVQ SP, BP; SUBQ $n, SP frame set-up, Go >= 1.21 (ADDQ $-128 too)
 *   SUBQ $n, SP; MOVQ BP, n-8(SP); LEAQ n-8(SP), BP    the same, Go <= 1.20
 */
#include "disasm.h"

#include <capstone/capstone.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "elffile.h"
#include "pclntab.h"

/* Functions larger than this are not Go code we can make sense of. */
#define DISASM_MAX_FUNC (16u << 20)
/* The longest prologue above is 10 instructions. */
#define PROLOGUE_MAX 12
#define STACKGUARD0 0x10	/* offsetof(runtime.g, stackguard0) */

int disasm_walk(const struct elf_file *elf, const struct gofunc *f,
		int (*fn)(const struct cs_insn *insn, void *arg), void *arg)
{
	const uint8_t *p;
	uint8_t *code = NULL;
	size_t len, left;
	uint64_t pc;
	cs_insn *insn = NULL;
	csh cs;
	int rc, skipped = 0;

	if (f->end <= f->entry || f->end - f->entry > DISASM_MAX_FUNC)
		return err_set(GLIMPSE_ECORRUPT, "%s: bad address range 0x%llx-0x%llx", f->name,
			       (unsigned long long)f->entry, (unsigned long long)f->end);
	len = f->end - f->entry;
	code = xmalloc(len);
	rc = elf_file_read(elf, f->entry, code, len);
	if (rc) {
		free(code);
		return err_wrap(rc, "reading the code of %s", f->name);
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		free(code);
		return err_set(ENOMEM, "cannot open the Capstone x86-64 decoder");
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(cs);
	p = code;
	left = len;
	pc = f->entry;
	rc = 0;
	while (left > 0) {
		if (!cs_disasm_iter(cs, &p, &left, &pc, insn)) {
			/* Not an instruction Capstone knows (e.g. AVX-512 in assembly). */
			skipped++;
			p++;
			left--;
			pc++;
			continue;
		}
		rc = fn(insn, arg);
		if (rc)
			break;
	}
	cs_free(insn, 1);
	cs_close(&cs);
	free(code);
	if (rc < 0)
		return rc;
	return skipped;
}

bool disasm_rip_target(const struct cs_insn *insn, uint64_t *target)
{
	const cs_x86 *x = &insn->detail->x86;

	for (int i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP) {
			*target = insn->address + insn->size + (uint64_t)op->mem.disp;
			return true;
		}
	}
	return false;
}

/* An instruction of the prologue, copied out of the decoder's buffer. */
struct pinsn {
	uint64_t addr;
	uint16_t size;
	unsigned int id;
	cs_x86 x86;
};

struct sites_walk {
	struct pinsn head[PROLOGUE_MAX];
	int nhead;
	uint64_t next;		/* where the previous instruction ended */
	bool lost;		/* an undecodable byte was skipped: boundaries unsure */
	struct buf rets;	/* uint64_t addresses */
};

static int collect_sites(const cs_insn *insn, void *arg)
{
	struct sites_walk *w = arg;

	if (insn->address != w->next)
		w->lost = true;
	w->next = insn->address + insn->size;
	if (w->lost)
		return 0;
	if (w->nhead < PROLOGUE_MAX) {
		struct pinsn *pi = &w->head[w->nhead++];

		pi->addr = insn->address;
		pi->size = insn->size;
		pi->id = insn->id;
		pi->x86 = insn->detail->x86;
	}
	if (insn->id == X86_INS_RET && insn->bytes[0] == 0xc3)	/* Go never emits RET $n */
		buf_add(&w->rets, &insn->address, sizeof(insn->address));
	return 0;
}

static bool op_is_reg(const struct pinsn *pi, int i, x86_reg reg)
{
	return pi->x86.op_count > i && pi->x86.operands[i].type == X86_OP_REG &&
	       pi->x86.operands[i].reg == reg;
}

static bool op_is_imm(const struct pinsn *pi, int i, int64_t *imm)
{
	if (pi->x86.op_count <= i || pi->x86.operands[i].type != X86_OP_IMM)
		return false;
	*imm = pi->x86.operands[i].imm;
	return true;
}

/* [base + disp] with no segment and no index register. */
static bool op_is_mem(const struct pinsn *pi, int i, x86_reg base, int64_t *disp)
{
	const cs_x86_op *op = &pi->x86.operands[i];

	if (pi->x86.op_count <= i || op->type != X86_OP_MEM || op->mem.base != base ||
	    op->mem.index != X86_REG_INVALID || op->mem.segment != X86_REG_INVALID)
		return false;
	if (disp)
		*disp = op->mem.disp;
	return true;
}

/* MOVQ FS:off, reg: ABI0 code fetching g from thread-local storage. */
static bool is_tls_g_load(const struct pinsn *pi, x86_reg *greg)
{
	const cs_x86_op *src = &pi->x86.operands[1];

	if (pi->id != X86_INS_MOV || pi->x86.op_count != 2 || pi->x86.operands[0].type != X86_OP_REG ||
	    src->type != X86_OP_MEM || src->mem.segment != X86_REG_FS || src->mem.base != X86_REG_INVALID)
		return false;
	*greg = pi->x86.operands[0].reg;
	return true;
}

/* LEAQ d(SP), reg or MOVQ SP, reg: the scratch copy of SP big frames compare. */
static bool is_sp_copy(const struct pinsn *pi, x86_reg *scratch)
{
	if (pi->x86.op_count != 2 || pi->x86.operands[0].type != X86_OP_REG)
		return false;
	if ((pi->id == X86_INS_LEA && op_is_mem(pi, 1, X86_REG_RSP, NULL)) ||
	    (pi->id == X86_INS_MOV && op_is_reg(pi, 1, X86_REG_RSP))) {
		*scratch = pi->x86.operands[0].reg;
		return true;
	}
	return false;
}

/* CMPQ sp, 0x10(g) in either operand order, sp being SP or its scratch copy. */
static bool is_stackguard_cmp(const struct pinsn *pi, x86_reg greg, x86_reg scratch)
{
	int64_t disp;

	if (pi->id != X86_INS_CMP || pi->x86.op_count != 2)
		return false;
	for (int m = 0; m < 2; m++) {
		int r = 1 - m;

		if (op_is_mem(pi, m, greg, &disp) && disp == STACKGUARD0 &&
		    (op_is_reg(pi, r, X86_REG_RSP) || (scratch != X86_REG_INVALID && op_is_reg(pi, r, scratch))))
			return true;
	}
	return false;
}

/* Matches the stack check at head[i]; returns the index after its JBE or -1. */
static int match_stack_check(const struct pinsn *head, int n, int i, x86_reg greg)
{
	x86_reg scratch = X86_REG_INVALID;
	int64_t imm;

	for (int k = i; k < n && k < i + 4; k++) {
		const struct pinsn *pi = &head[k];

		if (is_stackguard_cmp(pi, greg, scratch))
			return k + 1 < n && head[k + 1].id == X86_INS_JBE ? k + 2 : -1;
		if (is_sp_copy(pi, &scratch))
			continue;
		if (pi->id == X86_INS_SUB && scratch != X86_REG_INVALID && op_is_reg(pi, 0, scratch) &&
		    op_is_imm(pi, 1, &imm))
			continue;
		if (pi->id == X86_INS_JB && scratch != X86_REG_INVALID)
			continue;
		return -1;
	}
	return -1;
}

/* SUBQ $n, SP or ADDQ $-n, SP: sets *n. */
static bool is_sp_alloc(const struct pinsn *pi, int64_t *n)
{
	int64_t imm;

	if (!op_is_reg(pi, 0, X86_REG_RSP) || !op_is_imm(pi, 1, &imm))
		return false;
	if (pi->id == X86_INS_SUB && imm > 0) {
		*n = imm;
		return true;
	}
	if (pi->id == X86_INS_ADD && imm < 0) {
		*n = -imm;
		return true;
	}
	return false;
}

/* Matches the frame set-up at head[i]; returns the index after it or -1. */
static int match_frame(const struct pinsn *head, int n, int i, struct probe_sites *out)
{
	int64_t size, d1, d2;

	/* Go >= 1.21: PUSHQ BP; MOVQ SP, BP; [SUBQ $n, SP] */
	if (i + 1 < n && head[i].id == X86_INS_PUSH && op_is_reg(&head[i], 0, X86_REG_RBP) &&
	    head[i + 1].id == X86_INS_MOV && op_is_reg(&head[i + 1], 0, X86_REG_RBP) &&
	    op_is_reg(&head[i + 1], 1, X86_REG_RSP)) {
		out->frame_pointer = true;
		i += 2;
		if (i < n && is_sp_alloc(&head[i], &size)) {
			out->frame_size = (int)size;
			i++;
		}
		return i;
	}
	/* Go <= 1.20 and some assembly: SUBQ $n, SP; [MOVQ BP, d(SP); LEAQ d(SP), BP] */
	if (i < n && is_sp_alloc(&head[i], &size)) {
		out->frame_size = (int)size;
		i++;
		if (i + 1 < n && head[i].id == X86_INS_MOV && op_is_mem(&head[i], 0, X86_REG_RSP, &d1) &&
		    op_is_reg(&head[i], 1, X86_REG_RBP) && head[i + 1].id == X86_INS_LEA &&
		    op_is_reg(&head[i + 1], 0, X86_REG_RBP) && op_is_mem(&head[i + 1], 1, X86_REG_RSP, &d2) &&
		    d1 == d2) {
			out->frame_pointer = true;
			i += 2;
		}
		return i;
	}
	return -1;
}

/* Finds where the prologue in head[0..n) ends and records what it holds. */
static void parse_prologue(const struct pinsn *head, int n, struct probe_sites *out)
{
	x86_reg greg = X86_REG_R14;
	int i = 0, j;

	if (n > 0 && is_tls_g_load(&head[0], &greg))
		i = 1;
	j = match_stack_check(head, n, i, greg);
	if (j >= 0) {
		out->stack_check = true;
		i = j;
	}
	j = match_frame(head, n, i, out);
	if (j >= 0)
		i = j;
	else if (!out->stack_check)
		i = 0;	/* nothing recognised: the body starts at entry */
	if (i == 0)
		out->body = out->entry;
	else if (i < n)
		out->body = head[i].addr;
	else
		out->body = head[n - 1].addr + head[n - 1].size;
}

int disasm_probe_sites(const struct elf_file *elf, const struct gofunc *f, struct probe_sites *out)
{
	struct sites_walk *w = xcalloc(1, sizeof(*w));
	int rc;

	memset(out, 0, sizeof(*out));
	w->next = f->entry;
	rc = disasm_walk(elf, f, collect_sites, w);
	if (rc < 0)
		goto out;
	if (w->nhead == 0) {
		rc = err_set(GLIMPSE_ECORRUPT, "%s: no decodable instruction at 0x%llx", f->name,
			     (unsigned long long)f->entry);
		goto out;
	}
	out->entry = f->entry;
	out->undecodable = rc;
	parse_prologue(w->head, w->nhead, out);
	out->nrets = (int)(w->rets.len / sizeof(uint64_t));
	out->rets = (uint64_t *)buf_detach(&w->rets);
	rc = 0;
out:
	buf_free(&w->rets);
	free(w);
	return rc;
}

void probe_sites_free(struct probe_sites *ps)
{
	if (!ps)
		return;
	free(ps->rets);
	ps->rets = NULL;
	ps->nrets = 0;
}

struct refs_walk {
	uint64_t *addrs;
	int max;
	int n;
};

static int collect_refs(const cs_insn *insn, void *arg)
{
	struct refs_walk *w = arg;
	uint64_t target;

	if (!disasm_rip_target(insn, &target))
		return 0;
	for (int i = 0; i < w->n; i++)
		if (w->addrs[i] == target)
			return 0;
	w->addrs[w->n++] = target;
	return w->n == w->max;	/* full: stop */
}

int disasm_rip_refs(const struct elf_file *elf, const struct gofunc *f, uint64_t *addrs, int max)
{
	struct refs_walk w = { .addrs = addrs, .max = max, .n = 0 };
	int rc;

	if (max <= 0)
		return 0;
	rc = disasm_walk(elf, f, collect_refs, &w);
	return rc < 0 ? rc : w.n;
}
