/* test_trace.c - capture plans (plan.c) over the tracee fixture built by every
 * installed Go version, with DWARF, stripped and PIE.
 *
 * Independent checks: the register ABI that plan.c computes must agree with the
 * DWARF location lists the compiler wrote, byte for byte, at every entry probe
 * of every function where libdw can read them; entry probes must sit on an
 * instruction the kernel emulates (PUSHQ BP, or the stack check's JBE); results
 * must land in the registers the Go internal ABI document lists. Captures are
 * produced by a small interpreter of the plan written here from probe.h's
 * description of each operation (what the BPF program does), over fake
 * registers and memory, so plan_value_bytes, plan_capture_read and where_eval
 * are checked against values whose bytes the test laid out itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "dwarf.h"
#include "err.h"
#include "gobin.h"
#include "pclntab.h"
#include "plan.h"

#include "fixtures.h"

enum { T_PLAIN, T_STRIPPED, T_PIE, T_NFLAVOURS };
static const char *const tracee[T_NFLAVOURS] = {"tracee", "tracee.stripped", "tracee.pie"};
static struct gobin *bins[NVERSIONS][T_NFLAVOURS];

static int open_fixtures(void **state)
{
	for (int v = 0; v < NVERSIONS; v++)
		for (int fl = 0; fl < T_NFLAVOURS; fl++)
			if (fixture_open(versions[v], tracee[fl], &bins[v][fl]))
				return -1;
	return 0;
}

static int close_fixtures(void **state)
{
	for (int v = 0; v < NVERSIONS; v++)
		for (int fl = 0; fl < T_NFLAVOURS; fl++)
			gobin_close(bins[v][fl]);
	return 0;
}

static void plan_of(const struct gobin *bin, const char *name, enum plan_mode mode, struct plan_func *pf)
{
	const struct gofunc *f = pcln_lookup(bin->pcln, name);
	struct plan_limits lim;

	if (!f)
		fail_msg("%s: no function %s", bin->path, name);
	plan_limits_default(&lim);
	if (plan_func(bin, f, &lim, mode, pf))
		fail_msg("%s: plan of %s: %s", bin->path, name, err_msg(-1));
}

static const struct plan_value *value(const struct plan_value *vals, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(vals[i].name, name))
			return &vals[i];
	fail_msg("no value %s", name);
	return NULL;
}

/* The register holding bytes [off, off + size) of v, or -1 (stack, or not one piece). */
static int reg_of(const struct probe_site *site, const struct plan_value *v, uint32_t off)
{
	for (int i = 0; i < v->npieces; i++)
		if (v->pieces[i].mem_off == off && site->ops[v->pieces[i].op].kind == POP_REG)
			return site->ops[v->pieces[i].op].reg;
	return -1;
}

/* ---- the ABI against DWARF ---- */

/* What holds byte b of a value: a register (and the byte within it) or CFA+off. */
struct byte_home {
	int kind; /* 0 unknown, 1 register, 2 stack */
	int reg;
	int64_t off;
};

static void homes_from_plan(const struct probe_site *site, const struct plan_value *v, struct byte_home *h, size_t n)
{
	for (int i = 0; i < v->npieces; i++) {
		const struct plan_piece *pc = &v->pieces[i];
		const struct probe_op *op = &site->ops[pc->op];

		for (uint32_t b = 0; b < pc->size && pc->mem_off + b < n; b++) {
			struct byte_home *x = &h[pc->mem_off + b];

			if (op->kind == POP_REG)
				*x = (struct byte_home){1, op->reg, pc->op_off + b};
			else
				*x = (struct byte_home){2, -1, op->off + pc->op_off + b};
		}
	}
}

/* Fills h from DWARF; false if a piece is of a kind the plan never produces, or
 * if the pieces do not add up to the value (Go leaves out padding pieces, which
 * leaves the place of what follows padding unsaid). */
static bool homes_from_dwarf(const struct varloc *loc, uint64_t size, struct byte_home *h, size_t n)
{
	uint64_t at = 0, total = 0;

	for (int i = 0; i < loc->npieces; i++)
		total += loc->npieces == 1 && !loc->pieces[i].size ? size : loc->pieces[i].size;
	if (total != size)
		return false;

	for (int i = 0; i < loc->npieces; i++) {
		const struct loc_piece *p = &loc->pieces[i];
		uint32_t len = loc->npieces == 1 && !p->size ? (uint32_t)size : p->size;

		for (uint32_t b = 0; b < len && at + b < n; b++) {
			if (p->kind == LOC_REG)
				h[at + b] = (struct byte_home){1, p->reg, b};
			else if (p->kind == LOC_CFA)
				h[at + b] = (struct byte_home){2, -1, p->off + b};
			else if (p->kind != LOC_EMPTY)
				return false;
		}
		at += len;
	}
	return true;
}

/* Whether DWARF puts two arguments of dw in one register at pc: some Go versions
 * write such lists (go1.19's runtime.(*pallocData).findScavengeCandidate has
 * min and max both in RCX); the ABI says otherwise and the values agree with it. */
static bool dwarf_shares_a_register(const struct dwarf *d, const struct dwfunc *dw, uint64_t pc)
{
	int owner[64];

	for (int r = 0; r < 64; r++)
		owner[r] = -1;
	for (int i = 0; i < dw->nvars; i++) {
		struct varloc loc;

		if (!dw->vars[i].is_param || dw->vars[i].is_result || dwarf_locate(d, &dw->vars[i], pc, &loc) != 0)
			continue;
		for (int k = 0; k < loc.npieces; k++) {
			int r = loc.pieces[k].reg;

			if (loc.pieces[k].kind != LOC_REG || r < 0 || r >= 64)
				continue;
			if (owner[r] >= 0 && owner[r] != i)
				return true;
			owner[r] = i;
		}
	}
	err_clear();
	return false;
}

static void test_abi_locations_equal_dwarf_at_every_entry_probe(void **state)
{
	int compared = 0, functions = 0, inconsistent = 0;

	for (int v = 0; v < NVERSIONS; v++) {
		const struct gobin *bin = bins[v][T_PLAIN];

		for (size_t i = 0; i < pcln_nfuncs(bin->pcln); i++) {
			const struct gofunc *f = pcln_func(bin->pcln, i);
			const struct dwfunc *dw = dwarf_func_by_pc(bin->dwarf, f->entry);
			struct plan_limits lim;
			struct plan_func pf;
			int k = 0;

			if (!dw || dw->lowpc != f->entry || pcln_is_wrapper(bin->pcln, f->funcid) ||
			    (dw->file && strstr(dw->file, "<autogenerated>")))
				continue;
			plan_limits_default(&lim);
			if (plan_func(bin, f, &lim, PLAN_EVENTS, &pf)) {
				err_clear();
				continue;
			}
			if (dwarf_shares_a_register(bin->dwarf, dw, pf.call_pc)) {
				inconsistent++;
				plan_func_free(&pf);
				continue;
			}
			functions++;
			for (int d = 0; d < dw->nvars; d++) {
				const struct govar *gv = &dw->vars[d];
				const struct plan_value *pv;
				struct byte_home mine[64] = {{0}}, theirs[64] = {{0}};
				struct varloc loc;
				size_t n;

				if (!gv->is_param || gv->is_result)
					continue;
				pv = &pf.args[k++];
				if (pv->unavailable || !pv->type || !pv->type->size || pv->type->size > 64)
					continue;
				if (dwarf_locate(bin->dwarf, gv, pf.call_pc, &loc) != 0) {
					err_clear();
					continue;
				}
				n = pv->type->size;
				homes_from_plan(&pf.call, pv, mine, n);
				if (!homes_from_dwarf(&loc, n, theirs, n))
					continue;
				for (size_t b = 0; b < n; b++) {
					if (!theirs[b].kind || !mine[b].kind)
						continue; /* padding, or a piece DWARF left empty */
					if (memcmp(&mine[b], &theirs[b], sizeof(mine[b])))
						fail_msg("go1.%d %s arg %s byte %zu: plan says %s %d%+lld, DWARF says %s %d%+lld",
							 versions[v], f->name, pv->name, b, mine[b].kind == 1 ? "reg" : "cfa",
							 mine[b].reg, (long long)mine[b].off, theirs[b].kind == 1 ? "reg" : "cfa",
							 theirs[b].reg, (long long)theirs[b].off);
				}
				compared++;
			}
			plan_func_free(&pf);
		}
	}
	printf("note: %d arguments of %d functions: ABI locations equal DWARF's (%d functions skipped: "
	       "DWARF gives two arguments one register)\n", compared, functions, inconsistent);
	assert_true(compared > 1000 * NVERSIONS);
	assert_true(inconsistent < functions / 100);
}

/* ---- probe sites ---- */

static void test_entry_probe_sits_on_an_emulated_instruction(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		for (int fl = 0; fl < T_NFLAVOURS; fl++) {
			const struct gobin *bin = bins[v][fl];
			struct plan_func pf;
			uint8_t insn[2] = {0};

			plan_of(bin, "main.Lookup", PLAN_EVENTS, &pf);
			assert_int_equal(elf_file_read(bin->elf, pf.call_pc, insn, 2), 0);
			assert_int_equal(pf.call.cfa_off, 8); /* nothing pushed yet */
			if (versions[v] >= 21) {
				assert_int_equal(insn[0], 0x55); /* PUSHQ BP */
				assert_false(pf.call.flags & PSF_SKIP_IF_BE);
			} else {
				/* Go 1.19 allocates its frame with SUBQ: the JBE of the stack check */
				assert_true(insn[0] == 0x76 || (insn[0] == 0x0f && insn[1] == 0x86));
				assert_true(pf.call.flags & PSF_SKIP_IF_BE);
			}
			assert_int_equal(pf.nrets, 2);
			for (int r = 0; r < pf.nrets; r++) {
				assert_int_equal(elf_file_read(bin->elf, pf.rets[r], insn, 1), 0);
				assert_int_equal(insn[0], 0xc3);
				assert_int_equal(pcln_spdelta(bin->pcln, pf.func, pf.rets[r]), 0);
			}
			plan_func_free(&pf);
		}
	}
}

static void test_frameless_leaf_is_probed_at_its_entry(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		struct plan_func pf;

		plan_of(bins[v][T_PLAIN], "main.Tick", PLAN_EVENTS, &pf);
		assert_int_equal(pf.call_pc, pf.func->entry);
		assert_int_equal(pf.call.cfa_off, 8);
		assert_int_equal(pf.nrets, 1);
		assert_false(pf.call.flags & (PSF_SKIP_IF_BE | PSF_FRAMED));
		plan_func_free(&pf);
	}
}

/* ---- values ---- */

static void test_lookup_plan_copies_registers_string_and_pointer_target(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		struct plan_func pf;
		const struct plan_value *id, *name, *at;
		const struct probe_op *deref_str = NULL, *deref_at = NULL;

		plan_of(bins[v][T_PLAIN], "main.Lookup", PLAN_EVENTS, &pf);
		assert_true(pf.typed);
		assert_int_equal(pf.nargs, 3);
		assert_int_equal(pf.nresults, 2);
		id = value(pf.args, 3, "id");
		name = value(pf.args, 3, "name");
		at = value(pf.args, 3, "at");
		assert_int_equal(reg_of(&pf.call, id, 0), PREG_RAX);
		assert_int_equal(reg_of(&pf.call, name, 0), PREG_RBX);
		assert_int_equal(reg_of(&pf.call, name, 8), PREG_RCX);
		assert_int_equal(reg_of(&pf.call, at, 0), PREG_RDI);
		for (int i = 0; i < pf.call.nops; i++) {
			const struct probe_op *op = &pf.call.ops[i];

			if (op->kind == POP_DEREF && op->src == name->pieces[0].op && op->len_src == name->pieces[1].op)
				deref_str = op;
			if (op->kind == POP_DEREF && op->src == at->pieces[0].op && op->len_src == PROBE_NO_SRC)
				deref_at = op;
		}
		assert_non_null(deref_str);
		assert_int_equal(deref_str->size, 65); /* max_string + 1 */
		assert_int_equal(deref_str->elem, 1);
		assert_non_null(deref_at);
		assert_int_equal(deref_at->size, 16); /* a Point */
		/* results: int in RAX, error in RBX+RCX, counted from the first register again */
		assert_int_equal(reg_of(&pf.ret, &pf.results[0], 0), PREG_RAX);
		assert_int_equal(reg_of(&pf.ret, &pf.results[1], 0), PREG_RBX);
		assert_int_equal(reg_of(&pf.ret, &pf.results[1], 8), PREG_RCX);
		assert_string_equal(pf.results[1].type->name, "error");
		plan_func_free(&pf);
	}
}

static void test_struct_argument_takes_seven_registers_and_follows_slices(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		static const int regs[] = {PREG_RAX, PREG_RBX, PREG_RCX, PREG_RDI, PREG_RSI, PREG_R8, PREG_R9};
		struct plan_func pf;
		const struct plan_value *u;
		bool repeated = false;

		plan_of(bins[v][T_PLAIN], "main.Register", PLAN_EVENTS, &pf);
		u = value(pf.args, pf.nargs, "u");
		assert_null(u->unavailable);
		assert_int_equal(u->npieces, 7); /* ID, Name{ptr,len}, Tags{ptr,len,cap}, Home */
		for (int i = 0; i < 7; i++)
			assert_int_equal(reg_of(&pf.call, u, 8 * (uint32_t)i), regs[i]);
		for (int i = 0; i < pf.call.nops; i++)
			if (pf.call.ops[i].kind == POP_DEREF && pf.call.ops[i].nrep)
				repeated = pf.call.ops[i].stride == 16; /* the strings of Tags */
		assert_true(repeated);
		assert_int_equal(reg_of(&pf.ret, &pf.results[0], 0), PREG_RAX);
		plan_func_free(&pf);
	}
}

static void test_divide_results_and_flags_small_integers(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		struct plan_func pf;

		plan_of(bins[v][T_PLAIN], "main.Divide", PLAN_EVENTS, &pf);
		assert_int_equal(pf.nresults, 3);
		assert_string_equal(pf.results[0].name, "q");
		assert_string_equal(pf.results[2].name, "err");
		assert_int_equal(reg_of(&pf.ret, &pf.results[0], 0), PREG_RAX);
		assert_int_equal(reg_of(&pf.ret, &pf.results[1], 0), PREG_RBX);
		assert_int_equal(reg_of(&pf.ret, &pf.results[2], 0), PREG_RCX);
		assert_int_equal(reg_of(&pf.ret, &pf.results[2], 8), PREG_RDI);
		plan_func_free(&pf);

		plan_of(bins[v][T_PLAIN], "main.Flags", PLAN_EVENTS, &pf);
		assert_int_equal(pf.nargs, 4);
		for (int i = 0; i < 4; i++) {
			static const int regs[] = {PREG_RAX, PREG_RBX, PREG_RCX, PREG_RDI};

			assert_int_equal(reg_of(&pf.call, &pf.args[i], 0), regs[i]);
			assert_int_equal(pf.args[i].pieces[0].size, pf.args[i].type->size);
		}
		plan_func_free(&pf);
	}
}

static void test_generic_shape_takes_its_dictionary_first(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		const struct gobin *bin = bins[v][T_PLAIN];
		int seen = 0;

		for (size_t i = 0; i < pcln_nfuncs(bin->pcln); i++) {
			const struct gofunc *f = pcln_func(bin->pcln, i);
			struct plan_limits lim;
			struct plan_func pf;

			if (strncmp(f->name, "main.Pick[", 10))
				continue;
			plan_limits_default(&lim);
			assert_int_equal(plan_func(bin, f, &lim, PLAN_EVENTS, &pf), 0);
			assert_int_equal(pf.nargs, 2); /* xs, i: DWARF does not list the dictionary */
			assert_int_equal(reg_of(&pf.call, &pf.args[0], 0), PREG_RBX);
			assert_int_equal(reg_of(&pf.call, &pf.args[1], 0), PREG_RSI);
			plan_func_free(&pf);
			seen++;
		}
		assert_int_equal(seen, 2); /* [go.shape.string] and [go.shape.int] */
	}
}

static void test_float_values_are_marked_unavailable(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		struct plan_func pf;

		plan_of(bins[v][T_PLAIN], "main.Rect.Area", PLAN_EVENTS, &pf);
		assert_null(pf.args[0].unavailable); /* the receiver: two ints */
		assert_non_null(pf.results[0].unavailable);
		assert_non_null(strstr(pf.results[0].unavailable, "SSE"));
		plan_func_free(&pf);
	}
}

static void test_stripped_binary_plans_calls_and_returns_without_values(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		struct plan_func pf, plain;

		plan_of(bins[v][T_STRIPPED], "main.Lookup", PLAN_EVENTS, &pf);
		plan_of(bins[v][T_PLAIN], "main.Lookup", PLAN_EVENTS, &plain);
		assert_false(pf.typed);
		assert_int_equal(pf.nargs, 0);
		assert_int_equal(pf.call.nops, 0);
		assert_non_null(strstr(pf.note, "no argument names or types without DWARF"));
		assert_int_equal(pf.call_pc, plain.call_pc); /* same code, same sites */
		assert_int_equal(pf.nrets, plain.nrets);
		plan_func_free(&pf);
		plan_func_free(&plain);
	}
}

static void test_count_and_calls_only_modes(void **state)
{
	struct plan_func pf;

	plan_of(bins[NVERSIONS - 1][T_PLAIN], "main.Lookup", PLAN_COUNT, &pf);
	assert_true(pf.call.flags & PSF_COUNT_ONLY);
	assert_int_equal(pf.nrets, 0);
	assert_int_equal(pf.call.nops, 0);
	plan_func_free(&pf);
	plan_of(bins[NVERSIONS - 1][T_PLAIN], "main.Lookup", PLAN_CALLS_ONLY, &pf);
	assert_true(pf.call.flags & PSF_CALLS_ONLY);
	assert_int_equal(pf.nrets, 0);
	assert_true(pf.call.nops >= 5);
	plan_func_free(&pf);
}

/* ---- which functions ---- */

static void test_match_reports_bad_input_clearly(void **state)
{
	const struct gobin *bin = bins[NVERSIONS - 1][T_PLAIN];
	const struct gofunc **fs;
	size_t n;

	assert_int_equal(plan_match(bin, "main\\.(Lookup|Divide)$", 100, &fs, &n), 0);
	assert_int_equal(n, 2);
	free(fs);
	assert_true(plan_match(bin, "main\\.(", 100, &fs, &n) < 0);
	assert_non_null(strstr(err_msg(-1), "bad regexp"));
	assert_true(plan_match(bin, "main\\.Nope", 100, &fs, &n) < 0);
	assert_non_null(strstr(err_msg(-1), "no function matches"));
	assert_true(plan_match(bin, "main\\.double$", 100, &fs, &n) < 0);
	assert_non_null(strstr(err_msg(-1), "main.double is inlined into every caller"));
	assert_true(plan_match(bin, "main\\.", 3, &fs, &n) < 0);
	assert_non_null(strstr(err_msg(-1), "narrow the regexp"));
	/* the runtime only when asked for */
	assert_int_equal(plan_match(bin, "^(main\\.Tick|runtime\\.gopark)$", 100, &fs, &n), 0);
	assert_int_equal(n, 2);
	free(fs);
	assert_int_equal(plan_match(bin, "gopark$|^main\\.Tick$", 100, &fs, &n), 0);
	assert_int_equal(n, 1);
	free(fs);
	for (int v = 0; v < NVERSIONS; v++) { /* stripped: the names are in the pclntab */
		assert_true(plan_match(bins[v][T_STRIPPED], "^main\\.double$", 100, &fs, &n) < 0);
		assert_non_null(strstr(err_msg(-1), "inlined"));
	}
}

/* ---- captures: a plan interpreter standing in for the BPF program ---- */

struct fake_mem {
	uint64_t addr;
	const void *bytes;
	size_t len;
};

struct fake {
	uint64_t regs[16];
	uint64_t cfa;
	const struct fake_mem *mem;
	int nmem;
	uint8_t out[8192];
	size_t len;
	uint32_t opos[PROBE_MAX_OPS], olen[PROBE_MAX_OPS];
};

static bool fake_read(const struct fake *f, uint64_t addr, void *dst, size_t n)
{
	for (int i = 0; i < f->nmem; i++)
		if (addr >= f->mem[i].addr && addr + n <= f->mem[i].addr + f->mem[i].len) {
			memcpy(dst, (const uint8_t *)f->mem[i].bytes + (addr - f->mem[i].addr), n);
			return true;
		}
	return false;
}

static void fake_chunk(struct fake *f, int op, int rep, uint64_t addr, const void *bytes, uint32_t n, bool failed)
{
	struct probe_chunk c = {.op = (uint8_t)op, .rep = (uint8_t)rep, .failed = failed, .len = failed ? 0 : n, .addr = addr};

	memcpy(f->out + f->len, &c, sizeof(c));
	f->len += sizeof(c);
	if (!failed) {
		memcpy(f->out + f->len, bytes, n);
		if (!rep) {
			f->opos[op] = (uint32_t)f->len;
			f->olen[op] = n;
		}
	}
	f->len += failed ? 0 : (n + 7) & ~7u;
}

static bool out_u64(const struct fake *f, int op, int64_t off, uint64_t *v)
{
	if (off < 0 || (uint64_t)off + 8 > f->olen[op])
		return false;
	memcpy(v, f->out + f->opos[op] + off, 8);
	return true;
}

/* Runs site's ops the way probe.h describes them. */
static void run_plan(const struct probe_site *site, struct fake *f)
{
	uint8_t tmp[PROBE_MAX_CHUNK];

	f->len = 0;
	for (int i = 0; i < site->nops; i++) {
		const struct probe_op *op = &site->ops[i];

		if (op->kind == POP_REG) {
			fake_chunk(f, i, 0, 0, &f->regs[op->reg], 8, false);
			continue;
		}
		if (op->kind == POP_STACK) {
			bool ok = fake_read(f, f->cfa + op->off, tmp, op->size);

			fake_chunk(f, i, 0, f->cfa + op->off, tmp, op->size, !ok);
			continue;
		}
		for (int rep = 0; rep < (op->nrep ? op->nrep : 1); rep++) {
			int64_t d = (int64_t)rep * op->stride;
			uint64_t ptr, len, n = op->size;

			if (!out_u64(f, op->src, op->off + d, &ptr) || !ptr)
				continue;
			if (op->len_src != PROBE_NO_SRC) {
				if (!out_u64(f, op->len_src, op->len_off + d, &len))
					continue;
				if (len > PROBE_MAX_CHUNK)
					len = PROBE_MAX_CHUNK;
				if (len * op->elem < n)
					n = len * op->elem;
			}
			fake_chunk(f, i, rep, ptr, tmp, (uint32_t)n, !fake_read(f, ptr, tmp, n));
		}
	}
}

/* A User {ID 5, Name "zed", Tags ["x", "yy"], Home &{3, 4}} laid out at 0x1000. */
struct user_mem {
	uint64_t user[7];
	uint64_t tags[4];
	double home[2];
};

static void lay_out_user(struct user_mem *m, struct fake_mem mem[5])
{
	static const char zed[] = "zed", x[] = "x";
	uint64_t user[7] = {5, 0x2000, 3, 0x3000, 2, 2, 0x4000};
	uint64_t tags[4] = {0x5000, 1, 0x5100, 2};

	memcpy(m->user, user, sizeof(user));
	memcpy(m->tags, tags, sizeof(tags));
	m->home[0] = 3;
	m->home[1] = 4;
	mem[0] = (struct fake_mem){0x1000, m->user, sizeof(m->user)};
	mem[1] = (struct fake_mem){0x2000, zed, 3};
	mem[2] = (struct fake_mem){0x3000, m->tags, sizeof(m->tags)};
	mem[3] = (struct fake_mem){0x4000, m->home, sizeof(m->home)};
	mem[4] = (struct fake_mem){0x5000, x, 1};
}

static void test_capture_gives_back_value_bytes_and_pointed_memory(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		struct fake *f = calloc(1, sizeof(*f));
		struct plan_capture *c = calloc(1, sizeof(*c));
		struct fake_mem mem[5];
		struct user_mem um;
		struct plan_func pf;
		uint8_t bytes[8], name[3], tags[32];
		uint64_t p;

		lay_out_user(&um, mem);
		f->mem = mem;
		f->nmem = 5;
		f->regs[PREG_RAX] = 0x1000; /* u *User */
		plan_of(bins[v][T_PLAIN], "main.Name", PLAN_EVENTS, &pf);
		run_plan(&pf.call, f);
		assert_int_equal(plan_capture_parse(f->out, f->len, c), 0);
		assert_int_equal(plan_value_bytes(&pf.args[0], c, bytes), 0);
		memcpy(&p, bytes, 8);
		assert_int_equal(p, 0x1000);
		/* the User itself, its Name and its Tags' backing array were copied */
		assert_int_equal(plan_capture_read(c, 0x1008, &p, 8), 0);
		assert_int_equal(p, 0x2000);
		assert_int_equal(plan_capture_read(c, 0x2000, name, 3), 0);
		assert_memory_equal(name, "zed", 3);
		assert_int_equal(plan_capture_read(c, 0x3000, tags, 32), 0);
		/* the strings in Tags (strings do not count as a level), and Home */
		assert_int_equal(plan_capture_read(c, 0x5000, name, 1), 0);
		assert_int_equal(name[0], 'x');
		assert_int_equal(plan_capture_read(c, 0x4000, tags, 16), 0);
		/* nothing else: not what the fake memory lacks (0x5100), not past a copy */
		assert_true(plan_capture_read(c, 0x5100, name, 1) < 0);
		assert_true(plan_capture_read(c, 0x2000, name, 4) < 0);
		plan_func_free(&pf);
		free(f);
		free(c);
	}
}

static bool where_on_user(const struct gobin *bin, const char *expr, uint64_t uptr, bool *in_bpf)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct plan_capture *c = calloc(1, sizeof(*c));
	struct fake_mem mem[5];
	struct user_mem um;
	struct plan_func pf;
	struct where *w;
	bool r;

	lay_out_user(&um, mem);
	f->mem = mem;
	f->nmem = 5;
	f->regs[PREG_RAX] = uptr;
	plan_of(bin, "main.Name", PLAN_EVENTS, &pf);
	if (where_parse(expr, &w) || where_bind(w, &pf, in_bpf))
		fail_msg("--where '%s': %s", expr, err_msg(-1));
	run_plan(&pf.call, f);
	assert_int_equal(plan_capture_parse(f->out, f->len, c), 0);
	r = where_eval(&pf, c);
	where_free(w);
	plan_func_free(&pf);
	free(f);
	free(c);
	return r;
}

static void test_where_through_pointers_is_evaluated_in_userspace(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		const struct gobin *bin = bins[v][T_PLAIN];
		bool in_bpf = true;

		assert_true(where_on_user(bin, "u.Name == \"zed\"", 0x1000, &in_bpf));
		assert_false(in_bpf);
		assert_false(where_on_user(bin, "u.Name == \"ze\"", 0x1000, NULL));
		assert_true(where_on_user(bin, "u.Name > \"abc\" && u.ID >= 5", 0x1000, NULL));
		assert_true(where_on_user(bin, "u.Home.Lat == 3 && u.Home.Lon > 3.5", 0x1000, NULL));
		assert_false(where_on_user(bin, "u.ID != 5 || !(u.Home.Lat < 4)", 0x1000, NULL));
		/* nil, and a nil pointer on the way: the comparison is false */
		assert_true(where_on_user(bin, "u == nil", 0, &in_bpf));
		assert_true(in_bpf);
		assert_false(where_on_user(bin, "u.ID == 5", 0, NULL));
		assert_false(where_on_user(bin, "u.ID != 5", 0, NULL));
	}
}

static void test_where_compiles_argument_comparisons_into_bpf(void **state)
{
	const struct gobin *bin = bins[NVERSIONS - 1][T_PLAIN];
	struct plan_func pf;
	struct where *w;
	struct buf d = {0};
	bool in_bpf = false;

	plan_of(bin, "main.Lookup", PLAN_EVENTS, &pf);
	assert_int_equal(where_parse("id > 100 && name == \"abc\"", &w), 0);
	assert_int_equal(where_bind(w, &pf, &in_bpf), 0);
	assert_true(in_bpf);
	assert_int_equal(pf.call.npred, 3);
	assert_int_equal(pf.call.pred[0].kind, PP_INT);
	assert_int_equal(pf.call.pred[0].cmp, PC_GT);
	assert_int_equal(pf.call.pred[0].val, 100);
	assert_true(pf.call.pred[0].is_signed);
	assert_int_equal(pf.call.pred[1].kind, PP_STR);
	assert_int_equal(pf.call.pred[1].val, 3);
	assert_memory_equal(pf.call.pred[1].str, "abc", 3);
	assert_int_equal(pf.call.pred[2].kind, PP_AND);
	where_describe(&pf, &d);
	assert_string_equal(buf_str(&d), "in BPF: id > 100 && name == \"abc\"");
	where_free(w);

	/* a float literal cannot go to BPF: that && term is left to userspace */
	buf_reset(&d);
	assert_int_equal(where_parse("id < 4 && id > 1.5", &w), 0);
	assert_int_equal(where_bind(w, &pf, &in_bpf), 0);
	assert_false(in_bpf);
	assert_int_equal(pf.call.npred, 1);
	where_describe(&pf, &d);
	assert_string_equal(buf_str(&d), "in BPF: id < 4; in userspace: id > 1.5");
	where_free(w);

	/* an || with a part BPF cannot do goes to userspace whole */
	assert_int_equal(where_parse("id == 3 || id > 1.5", &w), 0);
	assert_int_equal(where_bind(w, &pf, &in_bpf), 0);
	assert_false(in_bpf);
	assert_int_equal(pf.call.npred, 0);
	where_free(w);
	buf_free(&d);
	plan_func_free(&pf);
}

static void test_where_reports_bad_input_clearly(void **state)
{
	static const struct {
		const char *expr, *msg;
	} bad[] = {
		{"id > > 3", "expected a number"},
		{"(id > 3", "expected ')'"},
		{"id > 3 extra", "unexpected text"},
		{"name == \"abc", "unterminated string"},
		{"idx > 3", "has no argument 'idx'"},
		{"id > \"x\"", "cannot compare 'id' (int)"},
		{"at.Alt > 1", "has no field 'Alt'"},
		{"id", "not a bool"},
	};
	const struct gobin *bin = bins[NVERSIONS - 1][T_PLAIN];
	struct plan_func pf, stripped;
	struct where *w;

	plan_of(bin, "main.Lookup", PLAN_EVENTS, &pf);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = where_parse(bad[i].expr, &w);

		if (!rc) {
			rc = where_bind(w, &pf, NULL);
			where_free(w);
		}
		assert_true(rc < 0);
		if (!strstr(err_msg(rc), bad[i].msg))
			fail_msg("'%s': got '%s', want '%s'", bad[i].expr, err_msg(rc), bad[i].msg);
	}
	plan_func_free(&pf);
	plan_of(bins[NVERSIONS - 1][T_STRIPPED], "main.Lookup", PLAN_EVENTS, &stripped);
	assert_int_equal(where_parse("id > 3", &w), 0);
	assert_true(where_bind(w, &stripped, NULL) < 0);
	assert_non_null(strstr(err_msg(-1), "no DWARF"));
	where_free(w);
	plan_func_free(&stripped);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi_locations_equal_dwarf_at_every_entry_probe),
		cmocka_unit_test(test_entry_probe_sits_on_an_emulated_instruction),
		cmocka_unit_test(test_frameless_leaf_is_probed_at_its_entry),
		cmocka_unit_test(test_lookup_plan_copies_registers_string_and_pointer_target),
		cmocka_unit_test(test_struct_argument_takes_seven_registers_and_follows_slices),
		cmocka_unit_test(test_divide_results_and_flags_small_integers),
		cmocka_unit_test(test_generic_shape_takes_its_dictionary_first),
		cmocka_unit_test(test_float_values_are_marked_unavailable),
		cmocka_unit_test(test_stripped_binary_plans_calls_and_returns_without_values),
		cmocka_unit_test(test_count_and_calls_only_modes),
		cmocka_unit_test(test_match_reports_bad_input_clearly),
		cmocka_unit_test(test_capture_gives_back_value_bytes_and_pointed_memory),
		cmocka_unit_test(test_where_through_pointers_is_evaluated_in_userspace),
		cmocka_unit_test(test_where_compiles_argument_comparisons_into_bpf),
		cmocka_unit_test(test_where_reports_bad_input_clearly),
	};

	return cmocka_run_group_tests(tests, open_fixtures, close_fixtures);
}
