/* test_gdbmi.c - the gdb/MI session the replay debugger drives (gdbmi.c): records as
 * gdb 13 prints them (a *stopped with its frame, a stack list of results, locals
 * with escaped strings, stream records, the prompt) parsed into values; malformed
 * input of every kind refused without reading past its end (every prefix and
 * thousands of mutations of real records); the command whitelist; and a real gdb
 * answering ^done and ^error through the pipes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "gdbmi.h"

static const char stopped[] =
	"*stopped,reason=\"breakpoint-hit\",disp=\"keep\",bkptno=\"1\",frame={addr=\"0x00000000006495d7\","
	"func=\"main.holder\",args=[],file=\"/src/webapp/main.go\",fullname=\"/src/webapp/main.go\",line=\"42\","
	"arch=\"i386:x86-64\"},thread-id=\"1\",stopped-threads=\"all\"";
static const char stack[] =
	"12^done,stack=[frame={level=\"0\",addr=\"0x1\",func=\"main.holder\",file=\"main.go\",line=\"42\"},"
	"frame={level=\"1\",addr=\"0x2\",func=\"runtime.goexit\",file=\"asm_amd64.s\",line=\"1700\"}]";
static const char locals[] =
	"7^done,variables=[{name=\"next\",value=\"4\"},{name=\"s\",value=\"\\\"a\\\\b\\\\n\\\\\\\"\\\" \\303\\251\\n\"}]";

static void test_a_stopped_record_parses_to_its_reason_and_frame(void **state)
{
	struct mi_record r;
	const struct mi_val *f;
	char err[128];

	assert_int_equal(mi_parse_record(stopped, strlen(stopped), &r, err, sizeof(err)), 0);
	assert_int_equal(r.type, '*');
	assert_int_equal(r.token, -1);
	assert_string_equal(r.cls, "stopped");
	assert_string_equal(mi_get_str(&r.results, "reason"), "breakpoint-hit");
	f = mi_get(&r.results, "frame");
	assert_non_null(f);
	assert_int_equal(f->kind, MI_TUPLE);
	assert_string_equal(mi_get_str(f, "func"), "main.holder");
	assert_string_equal(mi_get_str(f, "line"), "42");
	assert_int_equal(mi_get(f, "args")->kind, MI_LIST);
	assert_int_equal(mi_get(f, "args")->n, 0);
	assert_null(mi_get_str(&r.results, "frame")); /* a tuple, not a string */
	assert_null(mi_get(&r.results, "nothing"));
	mi_record_free(&r);
}

static void test_a_list_of_results_and_a_list_of_values_parse_with_tokens(void **state)
{
	struct mi_record r;
	const struct mi_val *s, *v;
	char err[128];

	assert_int_equal(mi_parse_record(stack, strlen(stack), &r, err, sizeof(err)), 0);
	assert_int_equal(r.type, '^');
	assert_int_equal(r.token, 12);
	s = mi_get(&r.results, "stack");
	assert_int_equal(s->kind, MI_LIST);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->kids[1].name, "frame");
	assert_string_equal(mi_get_str(&s->kids[1], "func"), "runtime.goexit");
	mi_record_free(&r);

	assert_int_equal(mi_parse_record(locals, strlen(locals), &r, err, sizeof(err)), 0);
	v = mi_get(&r.results, "variables");
	assert_int_equal(v->n, 2);
	assert_null(v->kids[0].name);
	assert_string_equal(mi_get_str(&v->kids[0], "name"), "next");
	/* C escapes and octal bytes decoded: "a\b\n\"" é and a newline. */
	assert_string_equal(mi_get_str(&v->kids[1], "value"), "\"a\\b\\n\\\"\" \xc3\xa9\n");
	mi_record_free(&r);

	assert_int_equal(mi_parse_record("[\"1\",\"2\"]", 9, &r, err, sizeof(err)), -1);
	const char *vl = "^done,thread-ids=[\"1\",\"2\"],x={}";
	assert_int_equal(mi_parse_record(vl, strlen(vl), &r, err, sizeof(err)), 0);
	v = mi_get(&r.results, "thread-ids");
	assert_int_equal(v->n, 2);
	assert_string_equal(v->kids[1].str, "2");
	assert_int_equal(mi_get(&r.results, "x")->kind, MI_TUPLE);
	mi_record_free(&r);
}

static void test_streams_prompt_and_bare_classes(void **state)
{
	struct mi_record r;
	char err[128];

	const char *con = "~\"42\\t\\tsink += current\\n\"";
	const char *er = "^error,msg=\"No symbol \\\"x\\\" in current context.\"\r";

	assert_int_equal(mi_parse_record(con, strlen(con), &r, err, sizeof(err)), 0);
	assert_int_equal(r.type, '~');
	assert_string_equal(r.text, "42\t\tsink += current\n");
	mi_record_free(&r);
	assert_int_equal(mi_parse_record("(gdb) ", 6, &r, err, sizeof(err)), 0);
	assert_int_equal(r.type, '(');
	mi_record_free(&r);
	assert_int_equal(mi_parse_record("3^running", 9, &r, err, sizeof(err)), 0);
	assert_string_equal(r.cls, "running");
	assert_int_equal(r.token, 3);
	assert_int_equal(r.results.n, 0);
	mi_record_free(&r);
	assert_int_equal(mi_parse_record(er, strlen(er), &r, err, sizeof(err)), 0);
	assert_string_equal(mi_get_str(&r.results, "msg"), "No symbol \"x\" in current context.");
	mi_record_free(&r);
}

static void test_malformed_records_are_refused_with_a_message(void **state)
{
	static const char *const bad[] = {
		"",			"BFD: warning: system-supplied DSO",	"^",
		"^done,",		"^done,a",				"^done,a=",
		"^done,a=1",		"^done,a=\"x",				"^done,a={b=\"1\"",
		"^done,a=[\"1\"",	"^done,a=[\"1\",]",			"^done,a={\"1\"}",
		"~unquoted",		"~\"x\"trailing",			"5~\"tokened stream\"",
		"^done,a=\"1\"b=\"2\"", "99999999999999999999999^done",	"^done,a=\"\\",
		"*stopped,=\"x\"",	"^done,a=[b=\"1\",\"2\"]",
	};
	struct mi_record r;
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(mi_parse_record(bad[i], strlen(bad[i]), &r, err, sizeof(err)), -1);
		assert_true(err[0] != 0);
		assert_null(r.cls);
		assert_int_equal(r.results.n, 0);
	}
}

static void test_nesting_past_the_limit_is_refused(void **state)
{
	struct buf b = {0};
	struct mi_record r;
	char err[128];

	buf_puts(&b, "^done,a=");
	for (int i = 0; i < 10000; i++)
		buf_puts(&b, "[");
	assert_int_equal(mi_parse_record(b.p, b.len, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nested too deep"));
	buf_reset(&b);
	buf_puts(&b, "^done,a=");
	for (int i = 0; i < MI_MAX_DEPTH; i++)
		buf_puts(&b, "{b=");
	buf_puts(&b, "\"x\"");
	for (int i = 0; i < MI_MAX_DEPTH; i++)
		buf_puts(&b, "}");
	assert_int_equal(mi_parse_record(b.p, b.len, &r, err, sizeof(err)), 0);
	mi_record_free(&r);
	buf_free(&b);
}

/* Every prefix of real records, and random byte changes of them, either parse or
 * are refused; the parser reads only the bytes given (each input sits at the end
 * of its own allocation, without a terminating NUL). */
static void test_prefixes_and_mutations_never_read_past_the_input(void **state)
{
	const char *real[] = {stopped, stack, locals};
	static const char alphabet[] = "\"\\{}[],=^*~0123abc\n\0";
	unsigned int seed = 12345;
	int parsed = 0, refused = 0;

	for (size_t k = 0; k < 3; k++) {
		size_t n = strlen(real[k]);

		for (size_t len = 0; len <= n; len++) {
			char *copy = xmalloc(len ? len : 1);
			struct mi_record r;
			char err[64];

			memcpy(copy, real[k], len);
			if (mi_parse_record(copy, len, &r, err, sizeof(err)) == 0) {
				parsed++;
				mi_record_free(&r);
			} else {
				refused++;
			}
			free(copy);
		}
		for (int m = 0; m < 3000; m++) {
			char *copy = xmalloc(n);
			struct mi_record r;
			char err[64];

			memcpy(copy, real[k], n);
			for (int j = 0; j < 1 + m % 4; j++) {
				seed = seed * 1103515245u + 12345u;
				copy[(seed >> 8) % n] = alphabet[(seed >> 20) % sizeof(alphabet)];
			}
			if (mi_parse_record(copy, n, &r, err, sizeof(err)) == 0) {
				parsed++;
				mi_record_free(&r);
			} else {
				refused++;
			}
			free(copy);
		}
	}
	assert_true(parsed > 10 && refused > 1000);
}

static void test_the_whitelist_turns_commands_into_mi_and_refuses_the_rest(void **state)
{
	static const struct {
		const char *cmd, *mi;
		bool resumes;
	} good[] = {
		{"continue", "-exec-continue", true},
		{"reverse-continue", "-exec-continue --reverse", true},
		{"next", "-exec-next", true},
		{"reverse-next", "-exec-next --reverse", true},
		{"reverse-step", "-exec-step --reverse", true},
		{"reverse-finish", "-exec-finish --reverse", true},
		{"nexti", "-exec-next-instruction", true},
		{"break main.go:42", "-break-insert main.go:42", false},
		{"break /src/web-app/v2/x_y.go:7", "-break-insert /src/web-app/v2/x_y.go:7", false},
		{"delete", "-break-delete", false},
		{"delete 3", "-break-delete 3", false},
		{"frame 2", "-stack-select-frame 2", false},
		{"thread 4", "-thread-select 4", false},
		{"goroutine 7", "-interpreter-exec console \"glimpse-goroutine 7\"", false},
		{"goroutine off", "-interpreter-exec console \"glimpse-goroutine off\"", false},
	};
	static const char *const bad[] = {
		"", "continue ", "continue 5", "reverse-", "reverse-break main.go:1", "call main.f()",
		"set var x = 1", "-exec-continue", "print x", "break", "break main.go", "break main.go:",
		"break main.go:0", "break main.go:-1", "break main.go:12x", "break \"main.go\":1", "break main.go:1\n",
		"break main go:1", "break -source main.go:1", "break main.go:1;shell id", "break a`id`.go:1",
		"break main.go:99999999", "delete 0", "delete x", "delete 1 2", "frame", "frame -1", "frame 1 2",
		"thread 0", "goroutine", "goroutine 0", "goroutine -1", "goroutine 1\"", "next\n-gdb-exit",
		"shell id", "python print(1)", "quit",
	};
	struct buf mi = {0};
	bool resumes;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		buf_reset(&mi);
		assert_int_equal(gdbmi_command(good[i].cmd, &mi, &resumes), 0);
		assert_string_equal(buf_str(&mi), good[i].mi);
		assert_int_equal(resumes, good[i].resumes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&mi);
		if (gdbmi_command(bad[i], &mi, &resumes) == 0)
			fail_msg("'%s' was let through as '%s'", bad[i], buf_str(&mi));
		assert_int_equal(mi.len, 0);
	}
	buf_free(&mi);
}

static void test_a_real_gdb_answers_done_and_error_through_the_pipes(void **state)
{
	struct gdbmi *g;
	struct gdbmi_answer a;
	int rc;

	if (access("/usr/bin/gdb", X_OK) != 0) {
		printf("skip: no /usr/bin/gdb\n");
		return;
	}
	rc = gdbmi_start("gdb", NULL, NULL, 30000, &g);
	if (rc)
		fail_msg("gdb did not start: %s", err_msg(rc));
	assert_int_equal(gdbmi_run(g, "-gdb-version", 10000, &a), 0);
	assert_string_equal(a.result.cls, "done");
	assert_non_null(strstr(buf_str(&a.console), "GNU gdb"));
	gdbmi_answer_free(&a);
	assert_int_equal(gdbmi_run(g, "-gdb-show may-write-memory", 10000, &a), 0);
	assert_string_equal(mi_get_str(&a.result.results, "value"), "off");
	gdbmi_answer_free(&a);
	assert_int_equal(gdbmi_run(g, "-no-such-command", 10000, &a), 0);
	assert_string_equal(a.result.cls, "error");
	assert_non_null(strstr(mi_get_str(&a.result.results, "msg"), "Undefined MI command"));
	gdbmi_answer_free(&a);
	/* No target: stepping is an error, not a hang. */
	assert_int_equal(gdbmi_run(g, "-exec-next", 10000, &a), 0);
	assert_string_equal(a.result.cls, "error");
	assert_false(a.stopped);
	gdbmi_answer_free(&a);
	assert_null(gdbmi_last_stop(g));
	assert_true(gdbmi_alive(g));
	gdbmi_close(g);
	assert_int_equal(gdbmi_start("/nonexistent/gdb", NULL, NULL, 5000, &g), -EPIPE);
}

/* A target that runs past the time limit is interrupted and the answer says so; the
 * session stays usable. The target is gdb's own child (/bin/sleep), nobody else's. */
static void test_a_command_past_its_time_limit_is_interrupted(void **state)
{
	struct gdbmi *g;
	struct gdbmi_answer a;
	const struct mi_record *stop;
	int rc;

	if (access("/usr/bin/gdb", X_OK) != 0 || access("/bin/sleep", X_OK) != 0) {
		printf("skip: no /usr/bin/gdb or /bin/sleep\n");
		return;
	}
	rc = gdbmi_start("gdb", "/bin/sleep", NULL, 30000, &g);
	if (rc)
		fail_msg("gdb did not start: %s", err_msg(rc));
	assert_int_equal(gdbmi_run(g, "-exec-arguments 60", 10000, &a), 0);
	gdbmi_answer_free(&a);
	assert_int_equal(gdbmi_run(g, "-exec-run", 1500, &a), 0);
	assert_string_equal(a.result.cls, "running");
	assert_true(a.interrupted);
	assert_true(a.stopped);
	gdbmi_answer_free(&a);
	stop = gdbmi_last_stop(g);
	assert_non_null(stop);
	assert_string_equal(mi_get_str(&stop->results, "reason"), "signal-received");
	assert_string_equal(mi_get_str(&stop->results, "signal-name"), "SIGINT");
	/* Still answering. */
	assert_int_equal(gdbmi_run(g, "-stack-info-depth", 10000, &a), 0);
	assert_string_equal(a.result.cls, "done");
	gdbmi_answer_free(&a);
	assert_true(gdbmi_alive(g));
	gdbmi_close(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_stopped_record_parses_to_its_reason_and_frame),
		cmocka_unit_test(test_a_list_of_results_and_a_list_of_values_parse_with_tokens),
		cmocka_unit_test(test_streams_prompt_and_bare_classes),
		cmocka_unit_test(test_malformed_records_are_refused_with_a_message),
		cmocka_unit_test(test_nesting_past_the_limit_is_refused),
		cmocka_unit_test(test_prefixes_and_mutations_never_read_past_the_input),
		cmocka_unit_test(test_the_whitelist_turns_commands_into_mi_and_refuses_the_rest),
		cmocka_unit_test(test_a_real_gdb_answers_done_and_error_through_the_pipes),
		cmocka_unit_test(test_a_command_past_its_time_limit_is_interrupted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
