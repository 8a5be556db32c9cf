/* bpf_log.c - quiet libbpf, and one error message when it fails. */
#include "bpf_log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static __thread char last[256]; /* per thread: lanes load side by side */
static libbpf_print_fn_t previous;

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	const char *debug = getenv("GLIMPSE_BPF_DEBUG");
	size_t n;

	if (debug && *debug && strcmp(debug, "0") != 0) {
		va_list copy;

		va_copy(copy, ap);
		vfprintf(stderr, fmt, copy);
		va_end(copy);
	}
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(last, sizeof(last), fmt, ap);
	n = strlen(last);
	while (n && (last[n - 1] == '\n' || last[n - 1] == ' '))
		last[--n] = '\0';
	return 0;
}

void bpf_log_begin(void)
{
	last[0] = '\0';
	previous = libbpf_set_print(quiet_print);
}

void bpf_log_end(void)
{
	libbpf_set_print(previous);
}

void bpf_log_record(int rc, const char *what)
{
	if (rc == -EPERM)
		err_set(EPERM, "%s: %s (needs root, or CAP_BPF and CAP_PERFMON)", what, strerror(-rc));
	else if (rc == -EACCES)
		err_set(EACCES, "%s: rejected by the kernel's verifier (GLIMPSE_BPF_DEBUG=1 shows why)", what);
	else if (last[0])
		err_set(-rc, "%s: %s (libbpf: %s)", what, strerror(-rc), last);
	else
		err_set(-rc, "%s: %s", what, strerror(-rc));
}
