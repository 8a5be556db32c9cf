/* test_replay.c - the gdb remote protocol rewrite glimpse replay --dlv puts between
 * Delve and rr (replay_rr_packets): Delve's qRRCmd with its argument in hex becomes
 * rr 5.9's qRRCmd:when:-1 with a correct checksum; every other byte passes
 * unchanged; a packet split across reads waits for its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "replay.h"

/* The checksum the gdb remote protocol puts after '#': the payload's bytes mod 256. */
static unsigned int sum(const char *payload)
{
	unsigned int s = 0;

	for (; *payload; payload++)
		s += (unsigned char)*payload;
	return s & 0xff;
}

static void test_delves_qrrcmd_becomes_the_form_rr_wants(void **state)
{
	struct buf in = {0}, out = {0};
	char want[64];

	/* "when" in hex is 7768656e; Delve sends it acked, after a plain packet. */
	buf_printf(&in, "+$qRRCmd:7768656e#%02x", sum("qRRCmd:7768656e"));
	assert_int_equal(replay_rr_packets(&in, &out), 1);
	snprintf(want, sizeof(want), "+$qRRCmd:when:-1#%02x", sum("qRRCmd:when:-1"));
	assert_string_equal(out.p, want);
	assert_int_equal(in.len, 0);
	buf_free(&in);
	buf_free(&out);
}

static void test_other_packets_and_acks_pass_unchanged(void **state)
{
	static const char stream[] = "+$qSupported:multiprocess+;swbreak+#c9+$m4a0d20,8#5e\x03$qRRCmd:when:-1#00";
	struct buf in = {0}, out = {0};

	buf_add(&in, stream, sizeof(stream) - 1);
	assert_int_equal(replay_rr_packets(&in, &out), 0); /* already in rr's form */
	assert_int_equal(out.len, sizeof(stream) - 1);
	assert_memory_equal(out.p, stream, out.len);
	buf_free(&in);
	buf_free(&out);
}

static void test_a_packet_split_across_reads_waits_for_its_end(void **state)
{
	struct buf in = {0}, out = {0};
	char tail[8], want[64];

	buf_puts(&in, "$g#67$qRRCmd:7768");
	assert_int_equal(replay_rr_packets(&in, &out), 0);
	assert_string_equal(out.p, "$g#67");
	assert_string_equal(in.p, "$qRRCmd:7768");
	snprintf(tail, sizeof(tail), "656e#%02x", sum("qRRCmd:7768656e"));
	buf_puts(&in, tail);
	assert_int_equal(replay_rr_packets(&in, &out), 1);
	snprintf(want, sizeof(want), "$g#67$qRRCmd:when:-1#%02x", sum("qRRCmd:when:-1"));
	assert_string_equal(out.p, want);
	buf_free(&in);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delves_qrrcmd_becomes_the_form_rr_wants),
		cmocka_unit_test(test_other_packets_and_acks_pass_unchanged),
		cmocka_unit_test(test_a_packet_split_across_reads_waits_for_its_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
