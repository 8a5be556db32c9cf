/* reader.c - the one entry for reading a Go process's goroutines: takes a
 * snapshot with the BPF reader (reader_bpf.c) and falls back to
 * process_vm_readv (reader_vm.c) when BPF cannot be used, saying why. The two
 * readers sit below it and share reader_common.c; neither calls the other.
 */
#include "reader_common.h"

#include <errno.h>
#include <linux/types.h>
#include <stdio.h>

#include "../bpf/snapshot.h"
#include "err.h"

void raw_snapshot_free(struct raw_snapshot *s)
{
	if (!s)
		return;
	reader_pin_release(s->pin);
	reader_release(s);
}

/* After the BPF reader failed with rc (why, a message, when it could not even
 * be opened): the process_vm_readv reader, with out->fallback saying why;
 * unless BPF failed in a way the other reader would fail too. */
static int fall_back(int rc, pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		     struct raw_snapshot *out)
{
	char why[sizeof(out->fallback)];

	snprintf(why, sizeof(why), "BPF reader unavailable: %s", err_msg(rc));
	err_clear();
	rc = reader_vm_snapshot(pid, off, bias, lim, out);
	if (rc)
		return err_wrap(rc, "%s; process_vm_readv", why);
	snprintf(out->fallback, sizeof(out->fallback), "%s", why);
	return 0;
}

/* Whether a BPF snapshot that failed with rc should not be taken again with
 * process_vm_readv, which would fail the same way. */
static bool final(int rc)
{
	return rc == -ESRCH || rc == -GLIMPSE_ENOTGO;
}

int reader_snapshot_with(struct reader_bpf *warm, pid_t pid, const struct go_offsets *off, uint64_t bias,
			 const struct read_limits *lim, struct raw_snapshot *out)
{
	int rc;

	if (!warm)
		return reader_vm_snapshot(pid, off, bias, lim, out);
	rc = reader_bpf_snapshot(warm, pid, off, bias, lim, out);
	if (!rc || final(rc))
		return rc;
	return fall_back(rc, pid, off, bias, lim, out);
}

int reader_snapshot(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		    bool allow_bpf, struct raw_snapshot *out)
{
	struct reader_bpf *r = NULL;
	struct snap_params p;
	uint64_t t0, load_ns;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = reader_params(pid, off, bias, lim, &p);
	if (rc)
		return rc;
	if (!allow_bpf)
		return reader_vm_snapshot(pid, off, bias, lim, out);
	t0 = reader_now_ns(CLOCK_MONOTONIC);
	rc = reader_bpf_open_for(pid, off, bias, lim, &r);
	if (rc)
		return fall_back(rc, pid, off, bias, lim, out);
	load_ns = reader_now_ns(CLOCK_MONOTONIC) - t0;
	rc = reader_bpf_snapshot(r, pid, off, bias, lim, out);
	reader_bpf_close(r);
	if (!rc)
		out->setup_ns += load_ns;
	if (!rc || final(rc))
		return rc;
	return fall_back(rc, pid, off, bias, lim, out);
}
