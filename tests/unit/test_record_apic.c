/* test_record_apic.c - how glimpse record and glimpse replay recognise a replay that
 * failed because CPUID leaf 1's APIC ID is not the recording's (record_apic_drift),
 * and find a CPU whose APIC ID is the recording's now (record_cpu_with_apic).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <cpuid.h>
#include <pthread.h>
#include <sched.h>

#include "record_int.h"

static void test_an_apic_id_mismatch_is_recognised_with_both_ids(void **state)
{
	/* What rr.soft printed in CI when the host moved the VM's CPU. */
	const char *why = "[FATAL src/ReplayTask.cc:130:validate_regs()] ; -> Assertion `!comparison.mismatch_count'"
			  " failed to hold. Mismatched registers, replay vs rec: rbx 0xc9fe0800 != 0x6bfe0800";
	unsigned rep = 0, rec = 0;

	assert_true(record_apic_drift(why, &rep, &rec));
	assert_int_equal(rep, 0xc9);
	assert_int_equal(rec, 0x6b);
}

static void test_other_mismatches_are_not_called_apic_drift(void **state)
{
	unsigned rep, rec;

	/* The TSC read by ld.so: low bits differ. */
	assert_false(record_apic_drift("Mismatched registers, replay vs rec: rdx 0x1b4f800000000 != 0x1b4f700000000",
				       &rep, &rec));
	/* One APIC-like register and one that is not. */
	assert_false(record_apic_drift("Mismatched registers, replay vs rec: rbx 0xc9fe0800 != 0x6bfe0800 rax 0x1 != 0x2",
				       &rep, &rec));
	assert_false(record_apic_drift("Expected syscall_bp_vm to be clear", &rep, &rec));
	assert_false(record_apic_drift("Mismatched registers, replay vs rec: ", &rep, &rec));
	assert_false(record_apic_drift(NULL, &rep, &rec));
	/* Two registers both holding CPUID's EBX: still drift. */
	assert_true(record_apic_drift("Mismatched registers, replay vs rec: rbx 0xd0fe0800 != 0xc9fe0800"
				      " rsi 0xd0fe0800 != 0xc9fe0800",
				      &rep, &rec));
	assert_int_equal(rec, 0xc9);
}

struct probe {
	int cpu;
	unsigned apic;
};

static void *probe(void *arg)
{
	struct probe *p = arg;
	cpu_set_t set;
	unsigned a, b, c, d;

	CPU_ZERO(&set);
	CPU_SET(p->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0 && __get_cpuid(1, &a, &b, &c, &d))
		p->apic = b >> 24;
	else
		p->apic = 0x100;
	return NULL;
}

static void test_the_cpu_with_an_apic_id_is_found_and_a_missing_one_is_not(void **state)
{
	cpu_set_t allowed;
	bool seen[0x101] = {0};
	struct probe first = {.cpu = -1};

	assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		struct probe p = {.cpu = cpu};
		pthread_t t;

		if (!CPU_ISSET(cpu, &allowed))
			continue;
		assert_int_equal(pthread_create(&t, NULL, probe, &p), 0);
		pthread_join(t, NULL);
		assert_true(p.apic < 0x100);
		seen[p.apic] = true;
		if (first.cpu < 0)
			first = p;
	}
	assert_true(first.cpu >= 0);
	int cpu = record_cpu_with_apic(first.apic);
	struct probe again = {.cpu = cpu};
	pthread_t t;

	assert_true(cpu >= 0);
	assert_int_equal(pthread_create(&t, NULL, probe, &again), 0);
	pthread_join(t, NULL);
	assert_int_equal(again.apic, first.apic);
	for (unsigned a = 0; a < 0x100; a++) {
		if (!seen[a]) {
			assert_int_equal(record_cpu_with_apic(a), -1);
			break;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_apic_id_mismatch_is_recognised_with_both_ids),
		cmocka_unit_test(test_other_mismatches_are_not_called_apic_drift),
		cmocka_unit_test(test_the_cpu_with_an_apic_id_is_found_and_a_missing_one_is_not),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
