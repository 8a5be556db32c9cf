/* test_goruntime.c - runtime struct offsets (goruntime.c) for every installed
 * Go version: the built-in table must equal what each binary's DWARF says,
 * gobin_open must pick DWARF or the table and the symbol table or code decoding
 * for allgs/allglen, and the wait-reason names must equal waitReasonStrings as
 * written in each version's own runtime2.go (parsed here from
 * /usr/lib/go-1.NN/src/runtime/runtime2.go).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <elf.h>

#include "buf.h"
#include "err.h"
#include "gobin.h"
#include "goruntime.h"

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

#define FIELD(f) { #f, offsetof(struct go_offsets, f) }
static const struct {
	const char *name;
	size_t off;
} offset_fields[] = {
	FIELD(g_size), FIELD(g_stack_lo), FIELD(g_stack_hi), FIELD(g_m), FIELD(g_sched),
	FIELD(gobuf_sp), FIELD(gobuf_pc), FIELD(gobuf_bp), FIELD(g_syscallsp), FIELD(g_syscallpc),
	FIELD(g_syscallbp), FIELD(g_atomicstatus), FIELD(g_goid), FIELD(g_waitsince),
	FIELD(g_waitreason), FIELD(g_gopc), FIELD(g_startpc), FIELD(g_parentgoid), FIELD(g_labels),
	FIELD(m_procid), FIELD(m_curg),
};
#undef FIELD
#define NFIELDS (int)(sizeof(offset_fields) / sizeof(offset_fields[0]))

static int field_value(const struct go_offsets *o, int i)
{
	return *(const int *)((const char *)o + offset_fields[i].off);
}

/* The acceptance criterion: for every version, every field, table == DWARF. */
static void test_table_equals_dwarf_for_every_version_and_field(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		for (int fl = 0; fl < NFLAVOURS; fl++) {
			struct go_offsets dw, tab;
			int bad = 0;

			if (fl == STRIPPED)
				continue;
			assert_int_equal(goruntime_from_dwarf(bins[v][fl]->dwarf, &dw), 0);
			assert_string_equal(dw.source, "dwarf");
			assert_int_equal(goruntime_table(versions[v], &tab), 0);
			assert_string_equal(tab.source, "table");
			for (int i = 0; i < NFIELDS; i++) {
				if (field_value(&dw, i) == field_value(&tab, i))
					continue;
				fprintf(stderr, "go1.%d %s: %s is %d in DWARF, %d in the table\n", versions[v],
					flavours[fl], offset_fields[i].name, field_value(&dw, i),
					field_value(&tab, i));
				bad++;
			}
			assert_int_equal(bad, 0);
		}
	}
}

/* Facts measured independently (NOTES-go-runtime.md) and version boundaries. */
static void test_table_matches_measured_notes_and_version_changes(void **state)
{
	struct go_offsets o;

	assert_int_equal(goruntime_table(19, &o), 0);
	assert_int_equal(o.g_size, 392);
	assert_int_equal(o.g_atomicstatus, 144);
	assert_int_equal(o.g_goid, 152);
	assert_int_equal(o.g_waitreason, 176);
	assert_int_equal(o.g_labels, 360);
	assert_int_equal(o.g_syscallbp, -1);
	assert_int_equal(o.g_parentgoid, -1);
	assert_int_equal(o.m_curg, 192);

	assert_int_equal(goruntime_table(23, &o), 0);
	assert_int_equal(o.g_size, 432);
	assert_int_equal(o.g_syscallbp, 128);
	assert_int_equal(o.g_atomicstatus, 152);
	assert_int_equal(o.g_goid, 160);
	assert_int_equal(o.g_waitreason, 184);
	assert_int_equal(o.g_labels, 352);
	assert_int_equal(o.m_procid, 72);
	assert_int_equal(o.gobuf_bp, 48);

	/* go1.25 dropped gobuf.ret: everything after g.sched moved up 8 bytes */
	assert_int_equal(goruntime_table(25, &o), 0);
	assert_int_equal(o.gobuf_bp, 40);
	assert_int_equal(o.g_syscallsp, 104);
	assert_int_equal(o.m_procid, 64);

	/* go1.18 and go1.20 have no toolchain here: their table rows equal go1.19's */
	for (int minor = 18; minor <= 20; minor += 2) {
		struct go_offsets ref;

		assert_int_equal(goruntime_table(minor, &o), 0);
		assert_int_equal(goruntime_table(19, &ref), 0);
		for (int i = 0; i < NFIELDS; i++)
			assert_int_equal(field_value(&o, i), field_value(&ref, i));
	}
}

static void test_table_rejects_unsupported_versions(void **state)
{
	struct go_offsets o;

	assert_int_equal(goruntime_table(17, &o), -GLIMPSE_EUNSUP);
	assert_string_equal(err_msg(-GLIMPSE_EUNSUP), "unsupported Go version go1.17 (supported: go1.18–go1.26)");
	assert_int_equal(goruntime_table(27, &o), -GLIMPSE_EUNSUP);
	assert_non_null(strstr(err_msg(-GLIMPSE_EUNSUP), "go1.27"));
	err_clear();
	for (int minor = 18; minor <= 26; minor++)
		assert_int_equal(goruntime_table(minor, &o), 0);
}

static uint64_t section_addr(const struct gobin *bin, const char *name)
{
	const struct elf_section *sh = elf_file_find_section(bin->elf, name);

	if (!sh)
		fail_msg("%s: no section %s", bin->path, name);
	return sh->addr;
}

static void test_load_takes_dwarf_or_table_and_symtab_or_disasm(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		const struct go_offsets *plain = &bins[v][PLAIN]->offsets;
		const struct go_offsets *strip = &bins[v][STRIPPED]->offsets;
		const struct go_offsets *pie = &bins[v][PIE]->offsets;

		assert_string_equal(plain->source, "dwarf");
		assert_string_equal(plain->globals_source, "symtab");
		assert_string_equal(pie->source, "dwarf");
		assert_string_equal(pie->globals_source, "symtab");
		assert_string_equal(strip->source, "table");
		assert_string_equal(strip->globals_source, "disasm");
		assert_true(plain->allgs != 0 && plain->allglen != 0);
		assert_true(plain->allgs != plain->allglen);
		/* the stripped build lays out the same variables (its sections may
		 * start a few bytes elsewhere: go1.21's .bss moved by 0x20) */
		assert_int_equal(strip->allgs - section_addr(bins[v][STRIPPED], ".bss"),
				 plain->allgs - section_addr(bins[v][PLAIN], ".bss"));
		assert_int_equal(strip->allglen - section_addr(bins[v][STRIPPED], ".noptrbss"),
				 plain->allglen - section_addr(bins[v][PLAIN], ".noptrbss"));
		for (int i = 0; i < NFIELDS; i++)
			assert_int_equal(field_value(strip, i), field_value(plain, i));
	}
}

static void test_gstatus_names(void **state)
{
	assert_string_equal(gstatus_name(G_IDLE), "idle");
	assert_string_equal(gstatus_name(G_RUNNABLE), "runnable");
	assert_string_equal(gstatus_name(G_RUNNING), "running");
	assert_string_equal(gstatus_name(G_SYSCALL), "syscall");
	assert_string_equal(gstatus_name(G_WAITING), "waiting");
	assert_string_equal(gstatus_name(G_SCAN | G_WAITING), "waiting");
	assert_string_equal(gstatus_name(G_DEAD), "dead");
	assert_string_equal(gstatus_name(G_COPYSTACK), "copystack");
	assert_string_equal(gstatus_name(G_PREEMPTED), "preempted");
	assert_string_equal(gstatus_name(G_SCAN | G_PREEMPTED), "preempted");
	assert_string_equal(gstatus_name(10), "leaked");	/* go1.26 */
	assert_string_equal(gstatus_name(99), "unknown");
}

/* ---- waitReasonStrings, parsed from the runtime's own source ---- */

static char *read_file(const char *path)
{
	struct buf b = { 0 };
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	return buf_detach(&b);
}

/* The waitReason constants in declaration order ("waitReasonZero waitReason = iota"
 * up to the closing parenthesis), one identifier per line. */
static int parse_enum(const char *src, char names[][64], int max)
{
	const char *p = strstr(src, "waitReasonZero "), *end;
	int n = 0;

	if (!p)
		return -1;
	end = strstr(p, "\n)");
	while (p && p < end && n < max) {
		const char *q = p;

		while (*q == ' ' || *q == '\t')
			q++;
		if (!strncmp(q, "waitReason", 10)) {
			size_t len = strcspn(q, " \t\n");

			snprintf(names[n++], 64, "%.*s", (int)len, q);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return n;
}

/* The string for constant `name` in "var waitReasonStrings = [...]string{ name: "..." }". */
static int parse_string(const char *src, const char *name, char *out, size_t size)
{
	const char *table = strstr(src, "var waitReasonStrings");
	const char *end = table ? strstr(table, "\n}") : NULL;
	char key[96];
	const char *p;

	if (!table || !end)
		return -1;
	snprintf(key, sizeof(key), "\t%.64s:", name);
	p = strstr(table, key);
	if (!p || p > end)
		return -1;
	p = strchr(p, '"');
	if (!p)
		return -1;
	snprintf(out, size, "%.*s", (int)strcspn(p + 1, "\""), p + 1);
	return 0;
}

static void test_waitreasons_match_each_runtime2_go(void **state)
{
	for (int v = 0; v < NVERSIONS; v++) {
		char path[128], names[96][64], want[96];
		char *src;
		int n;

		snprintf(path, sizeof(path), "/usr/lib/go-1.%d/src/runtime/runtime2.go", versions[v]);
		src = read_file(path);
		if (!src) {
			printf("# %s missing: go1.%d wait reasons not checked\n", path, versions[v]);
			continue;
		}
		n = parse_enum(src, names, 96);
		assert_true(n > 20);
		for (int i = 0; i < n; i++) {
			const char *got = waitreason_name(versions[v], (uint8_t)i);

			assert_int_equal(parse_string(src, names[i], want, sizeof(want)), 0);
			if (!got || strcmp(got, want))
				fail_msg("go1.%d: wait reason %d (%s) is \"%s\", runtime2.go says \"%s\"",
					 versions[v], i, names[i], got ? got : "(null)", want);
		}
		assert_null(waitreason_name(versions[v], (uint8_t)n));
		printf("# go1.%d: %d wait reasons match runtime2.go\n", versions[v], n);
		free(src);
	}
}

static void test_waitreason_spot_checks(void **state)
{
	assert_string_equal(waitreason_name(19, 0), "");
	assert_string_equal(waitreason_name(19, 14), "chan receive");
	assert_string_equal(waitreason_name(19, 19), "sleep");
	assert_string_equal(waitreason_name(21, 21), "sync.Mutex.Lock");
	/* go1.26 reordered the enum */
	assert_string_equal(waitreason_name(26, 19), "chan receive");
	assert_string_equal(waitreason_name(26, 14), "sleep");
	/* go1.18 == go1.19, go1.20 == go1.21 */
	for (int i = 0; i < 256; i++) {
		const char *a = waitreason_name(18, (uint8_t)i), *b = waitreason_name(19, (uint8_t)i);
		const char *c = waitreason_name(20, (uint8_t)i), *d = waitreason_name(21, (uint8_t)i);

		assert_true(a == b || (a && b && !strcmp(a, b)));
		assert_true(c == d || (c && d && !strcmp(c, d)));
	}
	assert_null(waitreason_name(17, 1));
	assert_null(waitreason_name(27, 1));
	assert_null(waitreason_name(19, 200));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_equals_dwarf_for_every_version_and_field),
		cmocka_unit_test(test_table_matches_measured_notes_and_version_changes),
		cmocka_unit_test(test_table_rejects_unsupported_versions),
		cmocka_unit_test(test_load_takes_dwarf_or_table_and_symtab_or_disasm),
		cmocka_unit_test(test_gstatus_names),
		cmocka_unit_test(test_waitreasons_match_each_runtime2_go),
		cmocka_unit_test(test_waitreason_spot_checks),
	};

	return cmocka_run_group_tests(tests, open_fixtures, close_fixtures);
}
