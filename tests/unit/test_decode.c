/* test_decode.c - the value decoder against live Go processes of every installed
 * Go version, with and without PIE.
 *
 * tests/fixtures/values keeps one global, main.vals (*main.Values), holding a
 * value of each kind. The tests find it through the symbol table, its type
 * through DWARF, read the running process with process_vm_readv and compare the
 * JSON of each field with what main.go put there. Maps are the classic hash map
 * up to Go 1.23 and swiss tables from 1.24, small (one bucket/group) and big
 * (many buckets, several swiss tables).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture_path.h"
#include "buf.h"
#include "decode.h"
#include "dwarf.h"
#include "err.h"
#include "gobin.h"

static const char *const versions[] = {"1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26"};
static const char *const flavours[] = {"", ".pie"};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))
#define NFLAVOURS (sizeof(flavours) / sizeof(flavours[0]))
#define NPROCS	  (NVERSIONS * NFLAVOURS)

/* One running values fixture. */
struct proc {
	char name[32]; /* "go1.24.pie" */
	pid_t pid;
	struct gobin *bin;
	uint64_t bias;
	uint64_t vals;		     /* run-time address of the Values main.vals points to */
	const struct gotype *values; /* main.Values */
};

static struct proc procs[NPROCS];
static int nprocs;

static int vm_read(void *ctx, uint64_t addr, void *dst, size_t n)
{
	pid_t pid = *(pid_t *)ctx;
	struct iovec local = {dst, n}, remote = {(void *)(uintptr_t)addr, n};

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -EFAULT;
}

static uint64_t read_u64(struct proc *p, uint64_t addr)
{
	uint64_t v = 0;

	if (vm_read(&p->pid, addr, &v, 8))
		fail_msg("%s: cannot read 0x%" PRIx64, p->name, addr);
	return v;
}

/* Starts path and waits for its "ready" line. Returns the pid or -1. */
static pid_t spawn(const char *path)
{
	char line[128] = "";
	struct pollfd pfd;
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	if (pid < 0 || poll(&pfd, 1, 10000) != 1 || read(fds[0], line, sizeof(line) - 1) <= 0 ||
	    !strstr(line, "ready")) {
		fprintf(stderr, "%s did not get ready (printed '%s')\n", path, line);
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		pid = -1;
	}
	close(fds[0]);
	return pid;
}

static int start_all(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		for (size_t f = 0; f < NFLAVOURS; f++) {
			struct proc *p = &procs[nprocs];
			char path[512];
			uint64_t sym;
			int rc;

			snprintf(path, sizeof(path), "%s/go%s/values%s", fixture_dir(), versions[v], flavours[f]);
			snprintf(p->name, sizeof(p->name), "go%s%s", versions[v], flavours[f]);
			if (access(path, X_OK) != 0) {
				fprintf(stderr, "fixture %s is missing: run make fixtures\n", path);
				return -1;
			}
			rc = gobin_open(path, &p->bin);
			if (rc) {
				fprintf(stderr, "gobin_open %s: %s\n", path, err_msg(rc));
				return -1;
			}
			nprocs++;
			p->pid = spawn(path);
			if (p->pid < 0 || gobin_bias(p->bin, p->pid, &p->bias) < 0)
				return -1;
			sym = elf_file_symbol(p->bin->elf, "main.vals", NULL);
			p->values = dwarf_type_by_name(p->bin->dwarf, "main.Values");
			if (!sym || !p->values) {
				fprintf(stderr, "%s: no main.vals or main.Values\n", p->name);
				return -1;
			}
			if (vm_read(&p->pid, sym + p->bias, &p->vals, 8) < 0) {
				fprintf(stderr, "%s: cannot read main.vals\n", p->name);
				return -1;
			}
		}
	}
	return 0;
}

static int stop_all(void **state)
{
	for (int i = 0; i < nprocs; i++) {
		if (procs[i].pid > 0) {
			kill(procs[i].pid, SIGKILL);
			waitpid(procs[i].pid, NULL, 0);
		}
		gobin_close(procs[i].bin);
	}
	nprocs = 0;
	return 0;
}

static void init(struct decoder *d, struct proc *p)
{
	decoder_init(d, p->bin, vm_read, &p->pid, p->bias);
}

static const struct gofield *field(struct proc *p, const char *name)
{
	for (int i = 0; i < p->values->nfields; i++)
		if (!strcmp(p->values->fields[i].name, name))
			return &p->values->fields[i];
	fail_msg("%s: main.Values has no field %s", p->name, name);
	return NULL;
}

/* JSON of main.vals.<name> decoded with d (caller frees). */
static char *decode_field(struct decoder *d, struct proc *p, const char *name, bool *truncated)
{
	const struct gofield *f = field(p, name);
	struct buf out = {0};
	int rc = decode_at(d, f->type, p->vals + f->offset, &out, truncated);

	if (rc)
		fail_msg("%s: decode %s: %s", p->name, name, err_msg(rc));
	return buf_detach(&out);
}

/* ---- a small JSON validator: the decoder must always write valid JSON ---- */

static const char *json_skip_value(const char *s);

static const char *ws(const char *s)
{
	while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
		s++;
	return s;
}

static const char *json_skip_string(const char *s)
{
	if (*s++ != '"')
		return NULL;
	while (*s && *s != '"') {
		if ((unsigned char)*s < 0x20)
			return NULL;
		if (*s == '\\') {
			s++;
			if (!*s)
				return NULL;
		}
		s++;
	}
	return *s == '"' ? s + 1 : NULL;
}

static const char *json_skip_list(const char *s, char close, bool members)
{
	s = ws(s + 1);
	if (*s == close)
		return s + 1;
	for (;;) {
		if (members) {
			s = json_skip_string(ws(s));
			if (!s || *(s = ws(s)) != ':')
				return NULL;
			s++;
		}
		s = json_skip_value(s);
		if (!s)
			return NULL;
		s = ws(s);
		if (*s == close)
			return s + 1;
		if (*s++ != ',')
			return NULL;
	}
}

static const char *json_skip_value(const char *s)
{
	char *end;

	s = ws(s);
	switch (*s) {
	case '{':
		return json_skip_list(s, '}', true);
	case '[':
		return json_skip_list(s, ']', false);
	case '"':
		return json_skip_string(s);
	case 't':
		return strncmp(s, "true", 4) ? NULL : s + 4;
	case 'f':
		return strncmp(s, "false", 5) ? NULL : s + 5;
	case 'n':
		return strncmp(s, "null", 4) ? NULL : s + 4;
	default:
		strtod(s, &end);
		return end == s ? NULL : end;
	}
}

static void assert_valid_json(const char *what, const char *s)
{
	const char *end = json_skip_value(s);

	if (!end || *ws(end))
		fail_msg("%s: invalid JSON: %s", what, s);
}

static void expect(struct proc *p, const char *what, const char *got, const char *want)
{
	assert_valid_json(what, got);
	if (strcmp(got, want) != 0)
		fail_msg("%s %s:\n  got  %s\n  want %s", p->name, what, got, want);
}

/* ---- tests ---- */

struct case_ {
	const char *field;
	const char *json;
	bool truncated;
};

static const struct case_ scalar_cases[] = {
    {"Bool", "true", false},
    {"Int", "-42", false},
    {"I8", "-8", false},
    {"I16", "-16", false},
    {"I32", "-32", false},
    {"I64", "-1099511627776", false},
    {"U8", "200", false},
    {"U16", "60000", false},
    {"U32", "4000000000", false},
    {"U64", "18446744073709551615", false},
    {"Uptr", "4096", false},
    {"F32", "1.5", false},
    {"F64", "-2.25", false},
    {"C128", "[1.5,-2]", false},
    {"Str", "\"hello, \\\"world\\\"\\n\"", false},
    {"Empty", "\"\"", false},
    {"Bytes", "[104,105]", false},
    {"Ints", "[0,1,4,9,16,25,36,49,64,81,100,121,144,169,196,225,\"\xe2\x80\xa6+4\"]", true},
    {"NilS", "null", false},
    {"Arr", "[1,-2,3]", false},
    {"Strs", "[\"a\",\"b\"]", false},
    {"Nested", "{\"Name\":\"outer\",\"In\":{\"P\":{\"X\":7,\"Y\":8},\"Flag\":true},\"Ratio\":0.5}", false},
    {"PtrNil", "null", false},
    {"Ptr", "{\"X\":1,\"Y\":2}", false},
    {"Ch", "{\"len\":2,\"cap\":4}", false},
    {"NilCh", "null", false},
    {"Fn", "\"main.Double\"", false},
    {"BigArr", "[7,8,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\"\xe2\x80\xa6+99984\"]", true},
    {"NilFn", "null", false},
};

static void run_cases(const struct case_ *cases, size_t n)
{
	for (int i = 0; i < nprocs; i++) {
		struct decoder d;

		init(&d, &procs[i]);
		for (size_t c = 0; c < n; c++) {
			bool truncated = !cases[c].truncated;
			char *got = decode_field(&d, &procs[i], cases[c].field, &truncated);

			expect(&procs[i], cases[c].field, got, cases[c].json);
			if (truncated != cases[c].truncated)
				fail_msg("%s %s: truncated is %d", procs[i].name, cases[c].field, truncated);
			free(got);
		}
	}
}

static void test_decode_scalars_strings_slices_structs(void **state)
{
	run_cases(scalar_cases, sizeof(scalar_cases) / sizeof(scalar_cases[0]));
}

/* "x" + 200 × "é" (2 bytes each): 256 bytes would end inside an "é", so the
 * cut is at 255 and 146 bytes are left out. */
static void test_decode_long_string_cut_on_utf8_boundary(void **state)
{
	struct buf want = {0};
	struct case_ c = {"Long", NULL, true};

	buf_puts(&want, "\"x");
	for (int i = 0; i < 127; i++)
		buf_puts(&want, "\xc3\xa9");
	buf_puts(&want, "\xe2\x80\xa6+146\"");
	c.json = buf_str(&want);
	run_cases(&c, 1);
	buf_free(&want);
}

static const struct case_ iface_cases[] = {
    {"AnyInt", "{\"type\":\"int\",\"value\":42}", false},
    {"AnyStr", "{\"type\":\"string\",\"value\":\"str\"}", false},
    {"AnyPt", "{\"type\":\"main.Point\",\"value\":{\"X\":5,\"Y\":6}}", false},
    {"AnyPtr", "{\"type\":\"*main.Point\",\"value\":{\"X\":9,\"Y\":10}}", false},
    {"AnyNil", "null", false},
    {"Err", "{\"type\":\"*errors.errorString\",\"value\":{\"s\":\"boom\"},\"error\":\"boom\"}", false},
    {"Wrapped",
     "{\"type\":\"*fmt.wrapError\",\"value\":{\"msg\":\"wrapped: boom\",\"err\":"
     "{\"type\":\"*errors.errorString\",\"value\":{\"s\":\"boom\"},\"error\":\"boom\"}},"
     "\"error\":\"wrapped: boom\"}",
     false},
    {"NilErr", "null", false},
    /* DWARF spells this type glimpse.test/values/geo.Coord: found through the
     * package path in the runtime type's UncommonType */
    {"AnyGeo", "{\"type\":\"geo.Coord\",\"value\":{\"Lat\":1.5,\"Lon\":-0.25}}", false},
    {"AnyGeoP", "{\"type\":\"*geo.Coord\",\"value\":{\"Lat\":3,\"Lon\":4}}", false},
    {"AnyMap", "{\"type\":\"map[string]int\",\"value\":{\"z\":26}}", false},
    {"AnySl", "{\"type\":\"[]int\",\"value\":[1,2]}", false},
    {"AnyC", "{\"type\":\"main.Celsius\",\"value\":36.6}", false},
};

static void test_decode_interfaces_and_errors(void **state)
{
	run_cases(iface_cases, sizeof(iface_cases) / sizeof(iface_cases[0]));
}

static const struct case_ map_cases[] = {
    {"Small", "{\"a\":1,\"b\":2,\"c\":3}", false},
    {"ByPoint", "[[{\"X\":1,\"Y\":2},\"p12\"],[{\"X\":3,\"Y\":4},\"p34\"]]", false},
    {"BigVal", "{\"k\":{\"A\":[1,2,3,0,0,0,0,0,0,0,0,0,0,0,0,0,\"\xe2\x80\xa6+4\"],\"Tag\":\"big\"}}", true},
    {"Set", "{\"x\":{},\"y\":{}}", false},
    {"NilMap", "null", false},
    {"NoMap", "[]", false},
    {"ByBig", "[[[1,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\"\xe2\x80\xa6+4\"],3]]", true},
};

static void test_decode_small_maps(void **state)
{
	run_cases(map_cases, sizeof(map_cases) / sizeof(map_cases[0]));
}

/* Big: 100 entries (classic: 16+ buckets; swiss: one table of many groups);
 * Huge: 3000 entries (swiss: a directory of several tables). With room for
 * every entry the JSON is exact; with the defaults 16 entries are shown. */
static void test_decode_big_maps(void **state)
{
	for (int i = 0; i < nprocs; i++) {
		struct proc *p = &procs[i];
		struct buf want = {0};
		struct decoder d;
		bool truncated;
		char *got;
		int k, v, n, prev = -1, shown = 0;
		const char *s;

		init(&d, p);
		d.lim.max_entries = 5000;
		d.lim.max_bytes = 4 << 20;
		for (k = 0; k < 100; k++)
			buf_printf(&want, "%s[%d,%d]", k ? "," : "[", k, k * k);
		buf_puts(&want, "]");
		got = decode_field(&d, p, "Big", &truncated);
		expect(p, "Big (all)", got, buf_str(&want));
		assert_false(truncated);
		free(got);

		buf_reset(&want);
		for (k = 0; k < 3000; k++)
			buf_printf(&want, "%s[%d,%d]", k ? "," : "[", k, -k);
		buf_puts(&want, "]");
		got = decode_field(&d, p, "Huge", &truncated);
		expect(p, "Huge (all)", got, buf_str(&want));
		assert_false(truncated);
		free(got);
		buf_free(&want);

		/* defaults: 16 entries in key order, each right, then the mark */
		init(&d, p);
		got = decode_field(&d, p, "Big", &truncated);
		assert_valid_json("Big", got);
		assert_true(truncated);
		for (s = got + 1; sscanf(s, "[%d,%d]%n", &k, &v, &n) == 2; s += n + 1, shown++) {
			if (v != k * k || k <= prev)
				fail_msg("%s Big: entry [%d,%d] after %d in %s", p->name, k, v, prev, got);
			prev = k;
		}
		assert_int_equal(shown, 16);
		assert_string_equal(s, "\"\xe2\x80\xa6+84\"]");
		free(got);
	}
}

/* A pointer cycle is shown once, then marked; a chain deeper than max_depth
 * ends in the address of the first pointer not followed. */
static void test_decode_pointer_cycles_and_depth(void **state)
{
	for (int i = 0; i < nprocs; i++) {
		struct proc *p = &procs[i];
		uint64_t a = read_u64(p, p->vals + field(p, "Cycle")->offset);
		uint64_t l1 = read_u64(p, p->vals + field(p, "Deep")->offset);
		uint64_t l3 = read_u64(p, read_u64(p, l1 + 8) + 8);
		uint64_t pt = read_u64(p, p->vals + field(p, "Ptr")->offset);
		char want[256];
		struct decoder d;
		bool truncated;
		char *got;

		init(&d, p);
		snprintf(want, sizeof(want),
			 "{\"Val\":1,\"Next\":{\"Val\":2,\"Next\":{\"ptr\":\"0x%" PRIx64 "\",\"cycle\":true}}}", a);
		got = decode_field(&d, p, "Cycle", &truncated);
		expect(p, "Cycle", got, want);
		assert_false(truncated);
		free(got);

		d.lim.max_depth = 2;
		snprintf(want, sizeof(want),
			 "{\"Level\":1,\"Down\":{\"Level\":2,\"Down\":{\"ptr\":\"0x%" PRIx64 "\"}}}", l3);
		got = decode_field(&d, p, "Deep", &truncated);
		expect(p, "Deep", got, want);
		assert_true(truncated);
		free(got);

		snprintf(want, sizeof(want), "\"0x%" PRIx64 "\"", pt);
		got = decode_field(&d, p, "UPtr", &truncated);
		expect(p, "UPtr", got, want);
		free(got);
	}
}

/* The whole *main.Values at once, with the default limits. */
static void test_decode_whole_value_with_default_limits(void **state)
{
	for (int i = 0; i < nprocs; i++) {
		struct proc *p = &procs[i];
		const struct gotype *t = dwarf_type_by_name(p->bin->dwarf, "*main.Values");
		uint64_t sym = elf_file_symbol(p->bin->elf, "main.vals", NULL) + p->bias;
		struct buf out = {0};
		struct decoder d;
		bool truncated;
		struct timespec t0, t1;

		assert_non_null(t);
		init(&d, p);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(decode_at(&d, t, sym, &out, &truncated), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_valid_json("Values", buf_str(&out));
		assert_true(truncated);
		assert_true(d.used <= d.lim.max_bytes);
		if (!strstr(buf_str(&out), "\"Small\":{\"a\":1,\"b\":2,\"c\":3}") ||
		    !strstr(buf_str(&out), "\"Err\":{\"type\":\"*errors.errorString\""))
			fail_msg("%s: Values: %s", p->name, buf_str(&out));
		if (i == 0)
			printf("note: %s: *main.Values: %zu bytes of JSON, %" PRIu64 " bytes read, %.1f us\n", p->name,
			       out.len, d.used,
			       (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3);
		buf_free(&out);
	}
}

/* Memory that cannot be read, and a byte budget that runs out, mark only the
 * sub-value concerned; the JSON stays valid. */
static void test_decode_unreadable_memory_and_byte_budget(void **state)
{
	for (int i = 0; i < nprocs; i++) {
		struct proc *p = &procs[i];
		uint64_t bad[3] = {0x10, 3, 3};
		struct buf out = {0};
		struct decoder d;
		bool truncated;
		char *got;

		init(&d, p);
		assert_int_equal(decode_value(&d, field(p, "Ptr")->type, (uint8_t *)bad, 0, &out, &truncated), 0);
		expect(p, "bad pointer", buf_str(&out), "{\"error\":\"unreadable 0x10\"}");
		buf_reset(&out);
		assert_int_equal(decode_value(&d, field(p, "Ints")->type, (uint8_t *)bad, 0, &out, &truncated), 0);
		expect(p, "bad slice", buf_str(&out), "{\"error\":\"unreadable 0x10\"}");
		buf_reset(&out);
		assert_int_equal(decode_value(&d, field(p, "Str")->type, (uint8_t *)bad, 0, &out, &truncated), 0);
		expect(p, "bad string", buf_str(&out), "{\"error\":\"unreadable 0x10\"}");
		buf_reset(&out);
		assert_int_equal(decode_value(&d, field(p, "Small")->type, (uint8_t *)bad, 0, &out, &truncated), 0);
		expect(p, "bad map", buf_str(&out), "{\"error\":\"unreadable 0x10\"}");
		buf_free(&out);

		d.lim.max_bytes = 600;
		got = decode_field(&d, p, "Huge", &truncated);
		assert_valid_json("Huge (600 bytes)", got);
		assert_true(truncated);
		assert_true(d.used <= 600);
		assert_non_null(strstr(got, "\xe2\x80\xa6+"));
		free(got);
	}
}

/* A reader holding some bytes only (a trace capture): the object of the first
 * range, the start of the second. */
struct partial {
	pid_t pid;
	uint64_t lo[2], hi[2];
};

static int partial_read(void *ctx, uint64_t addr, void *dst, size_t n)
{
	struct partial *pr = ctx;

	for (int i = 0; i < 2; i++)
		if (addr >= pr->lo[i] && addr + n <= pr->hi[i])
			return vm_read(&pr->pid, addr, dst, n);
	return -ENODATA;
}

static size_t partial_readable(void *ctx, uint64_t addr, size_t n)
{
	const struct partial *pr = ctx;

	for (int i = 0; i < 2; i++)
		if (addr >= pr->lo[i] && addr < pr->hi[i])
			return pr->hi[i] - addr < n ? pr->hi[i] - addr : n;
	return 0;
}

/* What the reader does not hold shows as an address, not as unreadable; a
 * pointer's target (here behind an interface's data word) of which it holds
 * a prefix is decoded from that prefix. */
static void test_decode_what_the_reader_holds_of_a_target(void **state)
{
	for (int i = 0; i < nprocs; i++) {
		struct proc *p = &procs[i];
		uint64_t pt = read_u64(p, p->vals + field(p, "AnyPtr")->offset + 8);
		struct partial pr = {.pid = p->pid, .lo = {p->vals, pt}, .hi = {p->vals + p->values->size, pt + 8}};
		struct decoder d;
		bool truncated = false;
		char want[128];
		char *got;

		decoder_init(&d, p->bin, partial_read, &pr, p->bias);
		got = decode_field(&d, p, "AnyPtr", &truncated);
		snprintf(want, sizeof(want), "{\"type\":\"*main.Point\",\"value\":{\"ptr\":\"0x%" PRIx64 "\"}}", pt);
		expect(p, "AnyPtr, none of its target", got, want);
		assert_true(truncated);
		free(got);
		d.readable = partial_readable;
		got = decode_field(&d, p, "AnyPtr", &truncated);
		expect(p, "AnyPtr, half its target", got, "{\"type\":\"*main.Point\",\"value\":{\"X\":9,\"Y\":\"\xe2\x80\xa6\"}}");
		assert_true(truncated);
		free(got);
	}
}

/* Garbage in every field's bytes (as a torn read could give): words that
 * point into the fixture's heap, at small offsets from real objects, or
 * nowhere. The decoder must stay within its budget and write valid JSON. */
#ifndef GARBAGE_ROUNDS
#define GARBAGE_ROUNDS 40
#endif

static void test_decode_garbage_stays_bounded_and_valid(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < nprocs; i++) {
		struct proc *p = &procs[i];
		struct decoder d;
		struct buf out = {0};

		init(&d, p);
		for (int round = 0; round < GARBAGE_ROUNDS; round++) {
			for (int f = 0; f < p->values->nfields; f++) {
				const struct gotype *t = p->values->fields[f].type;
				uint64_t words[64];
				bool truncated;

				if (t->size > sizeof(words))
					continue;
				for (size_t w = 0; w < sizeof(words) / 8; w++) {
					seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
					switch (seed % 4) {
					case 0:
						words[w] = p->vals + (seed >> 8) % 4096;
						break;
					case 1:
						words[w] =
						    read_u64(p, p->vals + 8 * ((seed >> 8) % (p->values->size / 8))) +
						    ((seed >> 20) % 64);
						break;
					case 2:
						words[w] = (seed >> 8) % 300;
						break;
					default:
						words[w] = seed;
						break;
					}
				}
				buf_reset(&out);
				assert_int_equal(decode_value(&d, t, (uint8_t *)words, 0, &out, &truncated), 0);
				assert_valid_json(p->values->fields[f].name, buf_str(&out));
				assert_true(d.used <= d.lim.max_bytes);
			}
		}
		buf_free(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_scalars_strings_slices_structs),
	    cmocka_unit_test(test_decode_long_string_cut_on_utf8_boundary),
	    cmocka_unit_test(test_decode_interfaces_and_errors),
	    cmocka_unit_test(test_decode_small_maps),
	    cmocka_unit_test(test_decode_big_maps),
	    cmocka_unit_test(test_decode_pointer_cycles_and_depth),
	    cmocka_unit_test(test_decode_whole_value_with_default_limits),
	    cmocka_unit_test(test_decode_unreadable_memory_and_byte_budget),
	    cmocka_unit_test(test_decode_what_the_reader_holds_of_a_target),
	    cmocka_unit_test(test_decode_garbage_stays_bounded_and_valid),
	};

	return cmocka_run_group_tests(tests, start_all, stop_all);
}
