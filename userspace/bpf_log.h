/* bpf_log.h - libbpf's messages: kept quiet while glimpse loads and attaches BPF
 * programs (a failure is reported once, by glimpse, with libbpf's last warning in
 * it), printed in full when GLIMPSE_BPF_DEBUG=1.
 */
#ifndef GLIMPSE_BPF_LOG_H
#define GLIMPSE_BPF_LOG_H
#include <errno.h>

/* Routes libbpf's output to glimpse and forgets its last warning. Pair with bpf_log_end. */
void bpf_log_begin(void);
/* Gives libbpf back the printer it had before bpf_log_begin. */
void bpf_log_end(void);
/* Records "what: reason (libbpf: last warning)" for libbpf error rc (< 0), with a hint
 * for missing privileges or a verifier rejection. */
void bpf_log_record(int rc, const char *what);

/* bpf_log_record, returning a negative code (visibly, for callers and analyzers). */
static inline int bpf_log_error(int rc, const char *what)
{
	bpf_log_record(rc, what);
	return rc < 0 ? rc : -EIO;
}

#endif
