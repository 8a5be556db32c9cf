/* test_disasm.c - probe sites (disasm.c) and the stripped-binary search for
 * runtime.allgs/allglen (goglobals.c), over the target fixture built by every
 * installed Go version, with DWARF, stripped and PIE, plus Debian's own
 * (stripped, externally linked) go commands when installed.
 *
 * Independent checks come from the pclntab's pcsp table: at the probe site the
 * stack pointer must have moved by exactly the frame the prologue set up, and
 * at every RET it must be back to 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <capstone/capstone.h>
#include <elf.h>

#include "disasm.h"
#include "err.h"
#include "gobin.h"
#include "goruntime.h"
#include "pclntab.h"

#include "fixtures.h"

static struct gobin *bins[NVERSIONS][NFLAVOURS];

static int open_fixtures(void **state)
{
	return fixtures_open_all(bins);
}

static int close_fixtures(void **state)
{
	fixtures_close_all(bins);
	return 0;
}

static const struct gofunc *must_find(const struct gobin *bin, const char *name)
{
	const struct gofunc *f = pcln_lookup(bin->pcln, name);

	if (!f)
		fail_msg("%s: no function %s in the pclntab", bin->path, name);
	return f;
}

static uint8_t byte_at(const struct gobin *bin, uint64_t addr)
{
	uint8_t b = 0;

	assert_int_equal(elf_file_read(bin->elf, addr, &b, 1), 0);
	return b;
}

/* Bytes the pcsp table says the function has pushed at pc. */
static int spdelta(const struct gobin *bin, const struct gofunc *f, uint64_t pc)
{
	int d = pcln_spdelta(bin->pcln, f, pc);

	assert_true(d >= 0);
	return d;
}

struct push_walk {
	uint64_t body;
	bool pushed;
};

static int find_push_bp(const struct cs_insn *insn, void *arg)
{
	struct push_walk *w = arg;

	if (insn->address >= w->body)
		return 1;
	if (insn->id == X86_INS_PUSH && insn->detail->x86.op_count == 1 &&
	    insn->detail->x86.operands[0].type == X86_OP_REG && insn->detail->x86.operands[0].reg == X86_REG_RBP)
		w->pushed = true;
	return 0;
}

/* The frame the prologue sets up, as the pcsp table should report it at body:
 * SUBQ's n, plus 8 when BP was pushed (Go >= 1.21) rather than stored in it. */
static int prologue_sp(const struct gobin *bin, const struct gofunc *f, const struct probe_sites *ps)
{
	struct push_walk w = { .body = ps->body, .pushed = false };

	assert_true(disasm_walk(bin->elf, f, find_push_bp, &w) >= 0);
	return ps->frame_size + (w.pushed ? 8 : 0);
}

/* Every RET is a 0xC3 byte inside the function, in ascending order, with the
 * stack pointer back where it was at entry. */
static void check_rets(const struct gobin *bin, const struct gofunc *f, const struct probe_sites *ps)
{
	for (int i = 0; i < ps->nrets; i++) {
		assert_in_range(ps->rets[i], f->entry, f->end - 1);
		assert_int_equal(byte_at(bin, ps->rets[i]), 0xc3);
		assert_int_equal(spdelta(bin, f, ps->rets[i]), 0);
		if (i > 0)
			assert_true(ps->rets[i] > ps->rets[i - 1]);
	}
}

/* The instruction at body is none of the prologue's: not the stack check
 * (CMPQ .., 0x10(R14) = 49/4d 3b 66 10), PUSHQ BP, MOVQ SP, BP, SUBQ $n, SP,
 * MOVQ BP, n(SP) or LEAQ n(SP), BP. */
static void check_body_is_past_prologue(const struct gobin *bin, const struct probe_sites *ps)
{
	uint8_t b[4];

	assert_int_equal(elf_file_read(bin->elf, ps->body, b, sizeof(b)), 0);
	assert_false((b[0] == 0x49 || b[0] == 0x4d) && b[1] == 0x3b && b[2] == 0x66 && b[3] == 0x10);
	assert_int_not_equal(b[0], 0x55);
	assert_false(b[0] == 0x48 && b[1] == 0x89 && b[2] == 0xe5);
	assert_false(b[0] == 0x48 && (b[1] == 0x83 || b[1] == 0x81) && b[2] == 0xec);
	assert_false(b[0] == 0x48 && (b[1] == 0x89 || b[1] == 0x8d) && (b[2] == 0x6c || b[2] == 0xac) &&
		     b[3] == 0x24);
}

/* Link-time address of a section, from the section headers. */
static uint64_t section_addr(const struct gobin *bin, const char *name, uint64_t *size)
{
	const struct elf_section *sh = elf_file_find_section(bin->elf, name);

	if (!sh)
		fail_msg("%s: no section %s", bin->path, name);
	*size = sh->size;
	return sh->addr;
}

/* Where sym of the plain build lies in the stripped build: same offset in the
 * same section (the stripped build's data can start elsewhere, e.g. go1.26). */
static uint64_t in_stripped(const struct gobin *plain, const struct gobin *stripped, uint64_t sym)
{
	static const char *const secs[] = { ".bss", ".noptrbss", ".data", ".noptrdata" };

	for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		uint64_t psize, ssize, pa = section_addr(plain, secs[i], &psize);
		uint64_t sa = section_addr(stripped, secs[i], &ssize);

		if (sym >= pa && sym < pa + psize) {
			assert_int_equal(psize, ssize);
			return sa + (sym - pa);
		}
	}
	fail_msg("0x%llx is in no data section", (unsigned long long)sym);
	return 0;
}

/* main.Handle: small frame, `CMPQ SP, 0x10(R14); JBE` then the frame. */
static void test_handle_probe_site_is_after_stack_check_and_frame(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		for (int fl = 0; fl < NFLAVOURS; fl++) {
			const struct gobin *bin = bins[v][fl];
			const struct gofunc *f = must_find(bin, "main.Handle");
			struct probe_sites ps;

			assert_int_equal(disasm_probe_sites(bin->elf, f, &ps), 0);
			assert_int_equal(ps.entry, f->entry);
			assert_true(ps.stack_check);
			assert_true(ps.frame_pointer);
			/* 1.19: SUBQ $0x40, SP (BP slot included); 1.21+: PUSHQ BP; SUBQ $0x38, SP */
			assert_int_equal(ps.frame_size, versions[v] < 21 ? 0x40 : 0x38);
			assert_int_equal(ps.body - ps.entry, versions[v] < 21 ? 0x18 : 0x12);
			assert_int_equal(spdelta(bin, f, ps.body), 0x40);
			check_body_is_past_prologue(bin, &ps);
			assert_int_equal(ps.nrets, 2);	/* the error return and the normal one */
			check_rets(bin, f, &ps);
			probe_sites_free(&ps);
		}
	}
}

/* main.parkedWorker: a frame over 128 bytes, so the check is done on
 * `LEAQ -N(SP), R12` instead of SP. */
static void test_parked_worker_big_frame_prologue(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		for (int fl = 0; fl < NFLAVOURS; fl++) {
			const struct gobin *bin = bins[v][fl];
			const struct gofunc *f = must_find(bin, "main.parkedWorker");
			struct probe_sites ps;

			assert_int_equal(disasm_probe_sites(bin->elf, f, &ps), 0);
			assert_true(ps.stack_check);
			assert_true(ps.frame_pointer);
			assert_true(ps.frame_size > 128);
			assert_int_equal(byte_at(bin, f->entry), 0x4c);	/* LEAQ ..(SP), R12 */
			assert_int_equal(spdelta(bin, f, ps.body), prologue_sp(bin, f, &ps));
			check_body_is_past_prologue(bin, &ps);
			assert_true(ps.nrets >= 1);
			check_rets(bin, f, &ps);
			probe_sites_free(&ps);
		}
	}
}

/* runtime.memequal64: a frameless leaf (MOVQ; CMPQ; SETEQ; RET), no stack check. */
static void test_frameless_leaf_probe_site_is_entry(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		for (int fl = 0; fl < NFLAVOURS; fl++) {
			const struct gobin *bin = bins[v][fl];
			const struct gofunc *f = must_find(bin, "runtime.memequal64");
			struct probe_sites ps;

			assert_int_equal(disasm_probe_sites(bin->elf, f, &ps), 0);
			assert_false(ps.stack_check);
			assert_false(ps.frame_pointer);
			assert_int_equal(ps.frame_size, 0);
			assert_int_equal(ps.body, f->entry);
			assert_int_equal(ps.nrets, 1);
			assert_int_equal(ps.rets[0], f->entry + 9);
			check_rets(bin, f, &ps);
			probe_sites_free(&ps);
		}
	}
}

/* main.Handle does atomic.AddInt64(&calls, 1): LEAQ main.calls(SB), SI. */
static void test_rip_refs_of_handle_include_main_calls(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		for (int fl = 0; fl < NFLAVOURS; fl++) {
			const struct gobin *bin = bins[v][fl];
			const struct gofunc *f = must_find(bin, "main.Handle");
			uint64_t calls = elf_file_symbol(bins[v][fl == STRIPPED ? PLAIN : fl]->elf, "main.calls", NULL);
			uint64_t refs[64], one;
			int n = disasm_rip_refs(bin->elf, f, refs, 64), i;

			assert_int_not_equal(calls, 0);
			if (fl == STRIPPED)
				calls = in_stripped(bins[v][PLAIN], bin, calls);
			for (i = 0; i < n && refs[i] != calls; i++)
				;
			assert_true(i < n);
			for (int j = 0; j < n; j++)
				for (int k = j + 1; k < n; k++)
					assert_true(refs[j] != refs[k]);
			assert_int_equal(disasm_rip_refs(bin->elf, f, &one, 1), 1);
			assert_int_equal(one, refs[0]);
		}
	}
}

struct sweep {
	int funcs, no_pcsp, funcs_undecodable, with_check, with_frame, rets, skipped, sp_mismatch, nonzero_ret_sp;
	double ms;
};

/* Probe sites of every function of bin, checked against the pcsp table. */
static void sweep_binary(const struct gobin *bin, struct sweep *s, bool verbose)
{
	size_t n = pcln_nfuncs(bin->pcln);
	double t0 = now_ms();

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		const struct gofunc *f = pcln_func(bin->pcln, i);
		struct probe_sites ps;
		int rc = disasm_probe_sites(bin->elf, f, &ps);

		if (rc)
			fail_msg("%s: %s: %s", bin->path, f->name, err_msg(rc));
		s->funcs++;
		s->with_check += ps.stack_check;
		s->with_frame += ps.frame_pointer || ps.frame_size;
		s->rets += ps.nrets;
		s->skipped += ps.undecodable;
		if (ps.undecodable) {
			s->funcs_undecodable++;
			if (verbose)
				fprintf(stderr, "  %s: %d undecodable bytes\n", f->name, ps.undecodable);
		}
		if (pcln_spdelta(bin->pcln, f, f->entry) < 0) {
			s->no_pcsp++;	/* C code linked in by cgo: no pcsp table */
			probe_sites_free(&ps);
			continue;
		}
		if ((ps.frame_pointer || ps.frame_size) && pcln_spdelta(bin->pcln, f, ps.body) != prologue_sp(bin, f, &ps)) {
			s->sp_mismatch++;
			if (verbose)
				fprintf(stderr, "  sp at body: %s body=+0x%llx frame=%d pcsp=%d\n", f->name,
					(unsigned long long)(ps.body - ps.entry), ps.frame_size,
					pcln_spdelta(bin->pcln, f, ps.body));
		}
		for (int r = 0; r < ps.nrets; r++) {
			assert_int_equal(byte_at(bin, ps.rets[r]), 0xc3);
			if (pcln_spdelta(bin->pcln, f, ps.rets[r]) != 0) {
				s->nonzero_ret_sp++;
				if (verbose)
					fprintf(stderr, "  sp at ret: %s +0x%llx pcsp=%d\n", f->name,
						(unsigned long long)(ps.rets[r] - f->entry),
						pcln_spdelta(bin->pcln, f, ps.rets[r]));
			}
		}
		probe_sites_free(&ps);
	}
	s->ms = now_ms() - t0;
}

static void print_sweep(const char *path, const struct sweep *s)
{
	fprintf(stderr,
		"  %s: %d funcs, %d with stack check, %d with frame, %d RETs, %d undecodable bytes in %d "
		"funcs, %d pcsp mismatches at body, %d RETs with sp != 0, %d funcs without pcsp; %.0f ms\n",
		path, s->funcs, s->with_check, s->with_frame, s->rets, s->skipped, s->funcs_undecodable, s->sp_mismatch,
		s->nonzero_ret_sp, s->no_pcsp, s->ms);
}

/* Every function of every plain fixture: RETs are 0xC3 with sp back to 0, and
 * the probe site of every function with a frame sits where pcsp says the
 * frame is complete. */
static void test_every_function_agrees_with_pcsp(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		struct sweep s;

		sweep_binary(bins[v][PLAIN], &s, true);
		print_sweep(bins[v][PLAIN]->path, &s);
		assert_int_equal(s.sp_mismatch, 0);
		assert_int_equal(s.nonzero_ret_sp, 0);
		assert_true(s.with_check > s.funcs / 2);
	}
}

static void test_find_globals_matches_symtab(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		const struct gobin *plain = bins[v][PLAIN], *stripped = bins[v][STRIPPED], *pie = bins[v][PIE];
		uint64_t allgs, allglen, want_allgs, want_allglen;

		want_allgs = elf_file_symbol(plain->elf, "runtime.allgs", NULL);
		want_allglen = elf_file_symbol(plain->elf, "runtime.allglen", NULL);
		assert_int_not_equal(want_allgs, 0);
		assert_int_equal(goruntime_find_globals(plain->elf, plain->pcln, &allgs, &allglen), 0);
		assert_int_equal(allgs, want_allgs);
		assert_int_equal(allglen, want_allglen);

		assert_false(stripped->has_symtab);
		assert_int_equal(goruntime_find_globals(stripped->elf, stripped->pcln, &allgs, &allglen), 0);
		assert_int_equal(allgs, in_stripped(plain, stripped, want_allgs));
		assert_int_equal(allglen, in_stripped(plain, stripped, want_allglen));
		fprintf(stderr, "  go1.%d: allgs 0x%llx allglen 0x%llx (allglen - allgs = 0x%llx)%s\n", versions[v],
			(unsigned long long)want_allgs, (unsigned long long)want_allglen,
			(unsigned long long)(want_allglen - want_allgs),
			allgs == want_allgs ? "" : "; stripped build's data is shifted");

		assert_int_equal(goruntime_find_globals(pie->elf, pie->pcln, &allgs, &allglen), 0);
		assert_int_equal(allgs, elf_file_symbol(pie->elf, "runtime.allgs", NULL));
		assert_int_equal(allglen, elf_file_symbol(pie->elf, "runtime.allglen", NULL));
	}
}

static const char *section_of(const struct gobin *bin, uint64_t addr)
{
	static const char *const secs[] = { ".bss", ".noptrbss", ".data", ".noptrdata" };

	for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		uint64_t size, a = section_addr(bin, secs[i], &size);

		if (addr >= a && addr < a + size)
			return secs[i];
	}
	return "?";
}

/* Debian's go commands: stripped, externally linked (C code before Go text). */
static void test_debian_go_commands(void **state)
{
	static const char *const paths[] = { "/usr/lib/go-1.23/bin/go", "/usr/lib/go-1.19/bin/go" };
	int tested = 0;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct gobin *bin;
		uint64_t allgs, allglen;
		struct sweep s;
		int rc;

		if (access(paths[i], R_OK) != 0)
			continue;
		rc = gobin_open(paths[i], &bin);
		if (rc)
			fail_msg("%s: %s", paths[i], err_msg(rc));
		assert_false(bin->has_symtab);
		assert_int_equal(goruntime_find_globals(bin->elf, bin->pcln, &allgs, &allglen), 0);
		assert_string_equal(section_of(bin, allgs), ".bss");
		assert_string_equal(section_of(bin, allglen), ".noptrbss");
		fprintf(stderr, "  %s (%s): allgs 0x%llx in .bss, allglen 0x%llx in .noptrbss\n", paths[i],
			bin->go_version, (unsigned long long)allgs, (unsigned long long)allglen);
		sweep_binary(bin, &s, false);
		print_sweep(paths[i], &s);
		assert_int_equal(s.sp_mismatch, 0);
		assert_int_equal(s.nonzero_ret_sp, 0);
		gobin_close(bin);
		tested++;
	}
	if (!tested)
		skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handle_probe_site_is_after_stack_check_and_frame),
		cmocka_unit_test(test_parked_worker_big_frame_prologue),
		cmocka_unit_test(test_frameless_leaf_probe_site_is_entry),
		cmocka_unit_test(test_rip_refs_of_handle_include_main_calls),
		cmocka_unit_test(test_every_function_agrees_with_pcsp),
		cmocka_unit_test(test_find_globals_matches_symtab),
		cmocka_unit_test(test_debian_go_commands),
	};

	return cmocka_run_group_tests(tests, open_fixtures, close_fixtures);
}
