/* reader_common.h - what reader_common.c gives the two goroutine readers
 * (reader_bpf.c, reader_vm.c), and nothing else includes but reader.c and the
 * tests: the walk's parameters, a snapshot's memory, records to struct raw_g,
 * process_vm_readv reads, tids out of a pid namespace.
 *
 * The readers' shape, one way down:
 *	reader.c          reader_snapshot(), reader_snapshot_with(): picks a reader, falls back
 *	reader_bpf.c      the BPF task iterator         reader_vm.c  process_vm_readv
 *	reader_common.c   what both share (this file's functions)
 * Neither reader calls the other, and reader_common.c calls neither.
 */
#ifndef GLIMPSE_READER_COMMON_H
#define GLIMPSE_READER_COMMON_H
#include <string.h>

#include "reader.h"

#define MAX_ALLGS (1u << 23) /* allgs entries a snapshot reads at most */

struct snap_params;
struct snap_g;
struct snap_tid;
struct buf;

/* Checks pid exists and off is usable and fills the walk's parameters. */
int reader_params(pid_t pid, const struct go_offsets *off, uint64_t bias, const struct read_limits *lim,
		  struct snap_params *p);
/* Returns n bytes that out owns (raw_snapshot_free frees them): from its last
 * block, or a new block of max(n, block) bytes. One allocation serves many
 * gs; large blocks are faulted in at once. */
uint8_t *reader_alloc(struct raw_snapshot *out, size_t n, size_t block);
/* Frees out's memory, goroutines and threads (all but a BPF reader's pin,
 * which raw_snapshot_free releases) and zeroes it: a reader's way out of a
 * snapshot that failed. */
void reader_release(struct raw_snapshot *out);
/* Before a snapshot starts: makes room, already faulted in, for what a target
 * with allglen goroutines will need (their raw_g in gs, their g and stack bytes
 * in out's memory), so that the copy itself touches no fresh memory (a fault
 * costs ~2 us a page here). A hint: the readers still grow both as needed.
 * (out NULL: room for the raw_gs only.) Returns allglen, or 0 when unknown. */
size_t reader_reserve(pid_t pid, const struct snap_params *p, struct raw_snapshot *out, struct buf *gs);
/* Faults in b's room past its contents in one go (before a copy starts). */
void reader_prefault(struct buf *b);
/* pid's allglen now, or 0 when unknown. */
size_t reader_allglen(pid_t pid, const struct snap_params *p);
/* Bytes of g and stack a snapshot is expected to take per goroutine. */
size_t reader_bytes_per_g(const struct snap_params *p);
/* Appends the raw_g for record h to gs (a buffer of struct raw_g): its g is the
 * h->g_len bytes at g, its stack the h->stack_len bytes at stack, both memory
 * of the snapshot. */
void reader_add_g(struct buf *gs, const struct snap_g *h, uint8_t *g, uint8_t *stack, const struct go_offsets *off);
/* Moves gs into out->gs/n (in allgs order) and counts out->torn. */
void reader_finish(struct raw_snapshot *out, struct buf *gs);
/* The error for process_vm_readv of pid failing with errno err (not EFAULT):
 * the process is gone, or may not be read. */
int reader_read_error(int err, pid_t pid);
/* Reads n bytes at addr of pid into dst with process_vm_readv: 0, -EFAULT when
 * they are not all readable, or reader_read_error's codes. */
int reader_read(pid_t pid, void *dst, size_t n, uint64_t addr);
/* When pid is in another pid namespace than glimpse (a container), where
 * m.procid holds tids of that namespace: its threads' tids there and here
 * (from /proc/PID/task/TID/status NSpid), at most SNAP_NS_TIDS. Returns their
 * count and sets *tids (caller frees), or 0 and NULL when pid shares glimpse's
 * pid namespace, where tids need no mapping. */
size_t reader_ns_tids(pid_t pid, struct snap_tid **tids);
/* The tid here of the thread whose tid in the target's namespace is procid:
 * procid itself when n is 0, else from tids[0..n), 0 when it is not there. */
uint32_t reader_host_tid(const struct snap_tid *tids, size_t n, uint32_t procid);
/* The time on clock clk in ns. */
uint64_t reader_now_ns(clockid_t clk);
/* The message for the walk failing to read allgs (rc: negative errno). */
int reader_allgs_error(int rc, pid_t pid, uint64_t addr);
/* Whether GLIMPSE_READER_PROFILE asks the readers to print where their time went. */
bool reader_profiling(void);

/* The 8 or 4 bytes at offset off of a copied runtime.g. */
static inline uint64_t reader_u64(const uint8_t *g, int off)
{
	uint64_t v;

	memcpy(&v, g + off, 8);
	return v;
}

static inline uint32_t reader_u32(const uint8_t *g, int off)
{
	uint32_t v;

	memcpy(&v, g + off, 4);
	return v;
}

#endif
