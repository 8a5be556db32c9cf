/* test_pclntab.c - the pclntab reader against the real Go fixtures of every
 * installed Go version (with DWARF, stripped, PIE) and against damaged copies.
 *
 * Source positions are checked against tests/fixtures/target/main.go itself, so
 * editing the fixture does not silently break the expectations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fixture_path.h"
#include "gobin.h"
#include "pclntab.h"

static const char *const versions[] = {"1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26"};
static const char *const flavours[] = {"", ".stripped", ".pie"};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))
#define NFLAVOURS (sizeof(flavours) / sizeof(flavours[0]))

static struct gobin *open_fixture(const char *path)
{
	struct gobin *bin = NULL;
	int rc = gobin_open(path, &bin);

	if (rc)
		fail_msg("gobin_open %s: %s", path, err_msg(rc));
	assert_non_null(bin->pcln);
	return bin;
}

/* Line number of the first line of main.go containing text (after line `after`). */
static int source_line(const char *text, int after)
{
	char line[512];
	int n = 0, found = 0;
	FILE *f = fopen("tests/fixtures/target/main.go", "r");

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		if (++n > after && strstr(line, text))
			found = n;
	fclose(f);
	if (!found)
		fail_msg("main.go has no line containing '%s'", text);
	return found;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void check_known_function(const struct gobin *bin, const char *name, const char *decl)
{
	const struct gofunc *f = pcln_lookup(bin->pcln, name);
	const char *file;
	int line;

	if (!f)
		fail_msg("%s: %s not found", bin->path, name);
	assert_string_equal(f->name, name);
	assert_true(f->entry >= bin->text_start && f->entry < f->end && f->end <= bin->text_end);
	assert_true(f->end - f->entry < 64 * 1024);
	assert_ptr_equal(pcln_find(bin->pcln, f->entry), f);
	assert_ptr_equal(pcln_find(bin->pcln, f->end - 1), f);
	assert_int_equal(pcln_fileline(bin->pcln, f, f->entry, &file, &line), 0);
	assert_true(ends_with(file, "tests/fixtures/target/main.go"));
	assert_int_equal(line, source_line(decl, 0));
	/* with a symbol table, the pclntab agrees with it */
	if (bin->has_symtab)
		assert_int_equal(elf_file_symbol(bin->elf, name, NULL), f->entry);
}

/* pcHeader.textStart (relocated in PIE builds) agrees with the module data's
 * text, until Go 1.26 stopped storing it. */
static void check_header_text_start(const struct gobin *bin)
{
	uint64_t addr, text;

	if (!elf_file_section(bin->elf, ".gopclntab", &addr, NULL))
		assert_non_null(elf_file_section(bin->elf, ".data.rel.ro.gopclntab", &addr, NULL));
	assert_int_equal(elf_file_read_ptr(bin->elf, addr + 24, &text), 0);
	assert_int_equal(text, bin->go_minor >= 26 ? 0 : bin->text_start);
}

static void test_pclntab_finds_main_functions_in_every_fixture(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		uint64_t text[NFLAVOURS] = {0};

		for (size_t fl = 0; fl < NFLAVOURS; fl++) {
			const char *path = fixture(versions[v], flavours[fl]);
			struct gobin *bin;

			if (!path)
				continue;
			bin = open_fixture(path);
			check_known_function(bin, "main.Handle", "func Handle(");
			check_known_function(bin, "main.parkedWorker", "func parkedWorker(");
			check_known_function(bin, "main.main", "func main()");
			assert_null(pcln_lookup(bin->pcln, "main.noSuchFunction"));
			assert_true(pcln_nfuncs(bin->pcln) > 1000);
			assert_true(pcln_nfiles(bin->pcln) > 100);
			if (bin->has_symtab)
				assert_int_equal(elf_file_symbol(bin->elf, "runtime.text", NULL), bin->text_start);
			check_header_text_start(bin);
			text[fl] = bin->text_start;
			gobin_close(bin);
		}
		/* stripping does not move code */
		if (text[0] && text[1])
			assert_int_equal(text[0], text[1]);
	}
}

static void check_round_trips(const struct gobin *bin)
{
	const struct pcln *p = bin->pcln;
	size_t n = pcln_nfuncs(p);

	assert_null(pcln_func(p, n));
	assert_null(pcln_find(p, bin->text_start - 1));
	assert_null(pcln_find(p, bin->text_end));
	assert_int_equal(pcln_func(p, n - 1)->end, bin->text_end);
	for (size_t i = 0; i < n; i++) {
		const struct gofunc *f = pcln_func(p, i), *byname = pcln_lookup(p, f->name);

		assert_non_null(f->name);
		if (i + 1 < n)
			assert_int_equal(f->end, pcln_func(p, i + 1)->entry);
		assert_non_null(byname);
		assert_string_equal(byname->name, f->name);
		if (f->end == f->entry)
			continue;
		if (pcln_find(p, f->entry) != f || pcln_find(p, f->end - 1) != f ||
		    pcln_find(p, f->entry + (f->end - f->entry) / 2) != f)
			fail_msg("%s: pcln_find does not round-trip %s", bin->path, f->name);
	}
}

static void test_pcln_find_round_trips_for_every_function(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		for (size_t fl = 0; fl < NFLAVOURS; fl++) {
			const char *path = fixture(versions[v], flavours[fl]);
			struct gobin *bin;

			if (!path)
				continue;
			bin = open_fixture(path);
			check_round_trips(bin);
			gobin_close(bin);
		}
	}
}

static void check_spdelta(const struct gobin *bin)
{
	const struct pcln *p = bin->pcln;
	const struct gofunc *h = pcln_lookup(p, "main.Handle");
	size_t without = 0;
	int max = 0;

	for (size_t i = 0; i < pcln_nfuncs(p); i++) {
		const struct gofunc *f = pcln_func(p, i);
		int sp = pcln_spdelta(p, f, f->entry);

		if (sp < 0)
			without++; /* markers such as go:textfipsstart have no pcsp table */
		else if (sp != 0)
			fail_msg("%s: spdelta of %s at entry is %d", bin->path, f->name, sp);
	}
	assert_true(without <= 4);
	/* Handle calls fmt.Errorf, so it has a frame: 8-byte aligned, pushed after entry */
	assert_non_null(h);
	for (uint64_t pc = h->entry; pc < h->end; pc++) {
		int sp = pcln_spdelta(p, h, pc);

		if (sp >= 0 && sp > max)
			max = sp;
	}
	assert_true(max >= 16 && max % 8 == 0);
}

static void test_spdelta_is_zero_at_entry_and_a_frame_inside(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		for (size_t fl = 0; fl < NFLAVOURS; fl++) {
			const char *path = fixture(versions[v], flavours[fl]);
			struct gobin *bin;

			if (!path)
				continue;
			bin = open_fixture(path);
			check_spdelta(bin);
			gobin_close(bin);
		}
	}
}

/* Finds a pc of parkedWorker whose innermost frame is callee, and checks the
 * expansion: callee (inlined) at its own file, then parkedWorker at the call line. */
static void check_inlined_call(const struct gobin *bin, const char *callee, const char *file, const char *call)
{
	const struct pcln *p = bin->pcln;
	const struct gofunc *f = pcln_lookup(p, "main.parkedWorker");
	int call_line = source_line(call, source_line("func parkedWorker(", 0));
	struct pcln_frame fr[8];

	assert_non_null(f);
	for (uint64_t pc = f->entry; pc < f->end; pc++) {
		int n = pcln_frames(p, f, pc, fr, 8);
		const char *ifile;
		int iline;

		assert_true(n >= 1);
		if (strcmp(fr[0].func, callee) != 0)
			continue;
		assert_int_equal(n, 2);
		assert_true(fr[0].inlined);
		assert_true(ends_with(fr[0].file, file));
		assert_int_equal(pcln_fileline(p, f, pc, &ifile, &iline), 0);
		assert_string_equal(ifile, fr[0].file);
		assert_int_equal(iline, fr[0].line);
		assert_string_equal(fr[1].func, "main.parkedWorker");
		assert_false(fr[1].inlined);
		assert_true(ends_with(fr[1].file, "tests/fixtures/target/main.go"));
		assert_int_equal(fr[1].line, call_line);
		/* a short buffer gets the innermost frames only */
		assert_int_equal(pcln_frames(p, f, pc, fr, 1), 1);
		assert_string_equal(fr[0].func, callee);
		return;
	}
	fail_msg("%s: no pc of main.parkedWorker expands to an inlined %s", bin->path, callee);
}

static void check_plain_frame(const struct gobin *bin)
{
	const struct gofunc *f = pcln_lookup(bin->pcln, "main.Handle");
	struct pcln_frame fr[4];
	const char *file;
	int line;

	assert_int_equal(pcln_frames(bin->pcln, f, f->entry, fr, 4), 1);
	assert_string_equal(fr[0].func, "main.Handle");
	assert_false(fr[0].inlined);
	assert_int_equal(pcln_fileline(bin->pcln, f, f->entry, &file, &line), 0);
	assert_string_equal(fr[0].file, file);
	assert_int_equal(fr[0].line, line);
}

static void test_frames_expand_inlined_calls(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		for (size_t fl = 0; fl < NFLAVOURS; fl++) {
			const char *path = fixture(versions[v], flavours[fl]);
			struct gobin *bin;

			if (!path)
				continue;
			bin = open_fixture(path);
			check_inlined_call(bin, "errors.New", "/src/errors/errors.go", "errors.New(\"boom\")");
			check_inlined_call(bin, "sync.(*WaitGroup).Done", "/src/sync/waitgroup.go", "wg.Done()");
			check_plain_frame(bin);
			gobin_close(bin);
		}
	}
}

/* Exercises every query on every function of a (possibly damaged) pclntab. */
static void query_everything(const struct pcln *p)
{
	struct pcln_frame fr[16];
	const char *file;
	int line;

	for (size_t i = 0; i < pcln_nfuncs(p); i++) {
		const struct gofunc *f = pcln_func(p, i);
		uint64_t mid = f->entry + (f->end - f->entry) / 2;

		pcln_find(p, mid);
		pcln_lookup(p, f->name);
		pcln_fileline(p, f, mid, &file, &line);
		pcln_spdelta(p, f, mid);
		pcln_frames(p, f, mid, fr, 16);
	}
}

static uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*s >> 33);
}

/* An opened stripped fixture whose image the tests damage: bin->elf->map points
 * at a private copy (elf_file_section and elf_file_read read through it), so
 * pcln_open can be run again and again on damaged bytes. */
struct damaged {
	struct gobin *bin;
	const uint8_t *orig;
	uint8_t *copy;
	size_t off; /* file offset of the pclntab section */
	size_t len; /* its size */
};

static int damaged_setup(void **state)
{
	static const char *const prefer[] = {"1.23", "1.26", "1.19", "1.21", "1.22", "1.24", "1.25"};
	struct damaged *d = calloc(1, sizeof(*d));
	const char *path = NULL;
	const uint8_t *sec;

	for (size_t v = 0; !path && v < sizeof(prefer) / sizeof(prefer[0]); v++)
		path = fixture(prefer[v], ".stripped");
	if (!path || !d)
		return -1;
	d->bin = open_fixture(path);
	d->orig = d->bin->elf->map;
	sec = elf_file_section(d->bin->elf, ".gopclntab", NULL, &d->len);
	if (!sec)
		return -1;
	d->off = sec - d->orig;
	d->copy = malloc(d->bin->elf->size);
	if (!d->copy)
		return -1;
	d->bin->elf->map = d->copy;
	*state = d;
	return 0;
}

static int damaged_teardown(void **state)
{
	struct damaged *d = *state;

	d->bin->elf->map = d->orig;
	free(d->copy);
	gobin_close(d->bin);
	free(d);
	return 0;
}

/* Older and unknown magics, other pointer sizes, table offsets past the end. */
static void test_damaged_pclntab_header_is_rejected(void **state)
{
	static const struct {
		size_t at;
		uint32_t val;
		int err;
	} hdr[] = {
	    {0, 0xfffffffa, GLIMPSE_EUNSUP},	{0, 0xfffffffb, GLIMPSE_EUNSUP},    {0, 0xfffffff5, GLIMPSE_EUNSUP},
	    {0, 0x12345678, GLIMPSE_ECORRUPT},	{4, 0x04010000, GLIMPSE_EUNSUP},    {4, 0x08030000, GLIMPSE_ECORRUPT},
	    {8, 0xffffffff, GLIMPSE_ECORRUPT},	{32, 0xfffffff0, GLIMPSE_ECORRUPT}, {40, 0x10, GLIMPSE_ECORRUPT},
	    {64, 0x7fffffff, GLIMPSE_ECORRUPT},
	};
	struct damaged *d = *state;

	for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
		struct pcln *p = NULL;
		int rc;

		memcpy(d->copy, d->orig, d->bin->elf->size);
		memcpy(d->copy + d->off + hdr[i].at, &hdr[i].val, 4);
		err_clear();
		rc = pcln_open(d->bin->elf, d->bin->go_minor, &p);
		assert_int_equal(rc, -hdr[i].err);
		assert_null(p);
		if (i == 0)
			assert_non_null(strstr(err_msg(rc), "unsupported Go version: pclntab magic 0xfffffffa"));
	}
}

/* Random damage anywhere behind the header, in the pcvalue tables
 * (pcHeader.pctabOffset) and in the functab and _func records (pclnOffset):
 * pcln_open and every query must give a result or a clean error, never crash. */
static void test_damaged_pclntab_tables_give_errors_not_crashes(void **state)
{
	struct damaged *d = *state;
	uint64_t seed = 42, pctab, pclntab;
	int opened = 0, rejected = 0;

	memcpy(&pctab, d->orig + d->off + 56, 8);
	memcpy(&pclntab, d->orig + d->off + 64, 8);
	assert_true(72 < pctab && pctab < pclntab && pclntab < d->len);
	for (int round = 0; round < 300; round++) {
		size_t from = round % 3 == 0 ? 72 : round % 3 == 1 ? pctab : pclntab;
		struct pcln *p = NULL;
		int rc;

		memcpy(d->copy, d->orig, d->bin->elf->size);
		for (int k = 0; k < 1 + round % 64; k++)
			d->copy[d->off + from + rnd(&seed) % (d->len - from)] = (uint8_t)rnd(&seed);
		rc = pcln_open(d->bin->elf, d->bin->go_minor, &p);
		if (rc) {
			assert_int_equal(rc, -GLIMPSE_ECORRUPT);
			rejected++;
			continue;
		}
		opened++;
		query_everything(p);
		pcln_close(p);
	}
	printf("note: damaged pclntab: %d rejected at open, %d opened and fully queried\n", rejected, opened);
	assert_true(opened > 0 && rejected > 0);
}

/* A binary cut short loses its section headers and tables: a clean error. */
static void test_truncated_binary_is_rejected(void **state)
{
	const char *path = fixture("1.26", ".stripped");
	char tmp[] = "/tmp/glimpse-pclntab-XXXXXX";
	struct gobin *bin = NULL;
	FILE *in, *out;
	char chunk[65536];
	size_t n, total = 0, keep;
	int fd, rc;

	if (!path)
		skip();
	in = fopen(path, "rb");
	assert_non_null(in);
	fseek(in, 0, SEEK_END);
	keep = (size_t)ftell(in) / 2;
	rewind(in);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	out = fdopen(fd, "wb");
	while (total < keep &&
	       (n = fread(chunk, 1, sizeof(chunk) < keep - total ? sizeof(chunk) : keep - total, in)) > 0) {
		fwrite(chunk, 1, n, out);
		total += n;
	}
	fclose(in);
	fclose(out);
	rc = gobin_open(tmp, &bin);
	unlink(tmp);
	assert_true(rc < 0);
	assert_null(bin);
	assert_true(strlen(err_msg(rc)) > 0);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Debian's own go command is a large stripped Go binary: parsing its pclntab
 * (tens of thousands of functions) and the first name lookup must be fast. */
static void test_large_stripped_binary_opens_fast(void **state)
{
	static const char *const bins[] = {"/usr/lib/go-1.26/pkg/tool/linux_amd64/compile", "/usr/lib/go-1.23/bin/go"};
	int tested = 0;

	for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
		struct gobin *bin = NULL;
		struct pcln *p = NULL;
		double t0, t1, t2;

		if (access(bins[i], R_OK) != 0 || gobin_open(bins[i], &bin) != 0)
			continue;
		t0 = now_ms();
		assert_int_equal(pcln_open(bin->elf, bin->go_minor, &p), 0);
		t1 = now_ms();
		assert_non_null(pcln_lookup(p, "main.main"));
		t2 = now_ms();
		printf("note: %s: %zu functions, pcln_open %.1f ms, first lookup %.1f ms\n", bins[i], pcln_nfuncs(p),
		       t1 - t0, t2 - t1);
		assert_true(pcln_nfuncs(p) > 10000);
		assert_true(t1 - t0 < 250 && t2 - t1 < 250);
		check_round_trips(bin);
		pcln_close(p);
		gobin_close(bin);
		tested++;
	}
	if (!tested)
		skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pclntab_finds_main_functions_in_every_fixture),
	    cmocka_unit_test(test_pcln_find_round_trips_for_every_function),
	    cmocka_unit_test(test_spdelta_is_zero_at_entry_and_a_frame_inside),
	    cmocka_unit_test(test_frames_expand_inlined_calls),
	    cmocka_unit_test_setup_teardown(test_damaged_pclntab_header_is_rejected, damaged_setup, damaged_teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_pclntab_tables_give_errors_not_crashes, damaged_setup,
					    damaged_teardown),
	    cmocka_unit_test(test_truncated_binary_is_rejected),
	    cmocka_unit_test(test_large_stripped_binary_opens_fast),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
