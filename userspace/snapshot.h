/* snapshot.h - a picture of every goroutine of a live Go process: state, stack,
 * and the values of local variables, taken without stopping the process.
 *
 * Reading is done by reader.h (BPF iterator, or process_vm_readv); everything after
 * that (unwinding, symbolizing, decoding variables) happens here on the copies.
 */
#ifndef GLIMPSE_SNAPSHOT_H
#define GLIMPSE_SNAPSHOT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "decode.h"
#include "reader.h"

struct gobin;
struct store;
struct buf;

enum reader_choice {
	READ_AUTO,			/* BPF iterator, falling back to process_vm_readv */
	READ_BPF,			/* BPF only: fail if it cannot run */
	READ_VM,			/* process_vm_readv only */
};

struct snapshot_opts {
	bool vars;			/* decode variables (needs DWARF) */
	bool runtime_vars;		/* also in frames of the runtime and internal packages */
	enum reader_choice reader;
	struct reader_bpf *bpf;		/* a BPF reader the caller keeps loaded (the server): used
					 * for READ_AUTO and READ_BPF instead of loading one */
	struct read_limits read;
	struct decode_limits decode;
};

struct snap_var {
	const char *name;		/* borrowed from the binary model */
	const char *kind;		/* "param", "result", "local" */
	const char *type;
	char *value;			/* JSON text, or NULL when unavailable at that pc */
	const char *unavailable;	/* why value is NULL */
	bool truncated;
};

struct snap_frame {
	const char *func, *file;	/* borrowed from the binary model */
	int line;
	uint64_t pc;			/* link-time */
	uint64_t offset;		/* pc - function entry, as "+0x.." in Go tracebacks */
	bool inlined;
	int nvars;
	struct snap_var *vars;
};

struct snap_goroutine {
	uint64_t goid;
	uint32_t status;		/* atomicstatus with the scan bit masked */
	const char *wait_reason;	/* NULL unless waiting */
	int64_t wait_since_ns;		/* epoch ns, 0 if the runtime has not recorded it */
	const char *created_by;		/* function holding the go statement, NULL for roots */
	char *created_at;		/* "file:line" */
	uint64_t parent_goid;
	char *labels;			/* JSON object, NULL if none */
	uint32_t thread;		/* OS thread running it (running, syscall), else 0 */
	bool torn;
	const char *stack_note;		/* why the stack is missing or partial, NULL if complete */
	int nframes;
	struct snap_frame *frames;
	uint64_t stack_hash;
};

struct snapshot {
	pid_t pid;
	const struct gobin *bin;
	uint64_t bias;
	const char *reader;
	char reader_note[256];		/* why BPF was not used, "" if it was */
	int64_t taken_at;		/* epoch ns */
	int64_t duration_us;		/* reading the goroutines */
	int64_t decode_us;		/* everything after */
	size_t torn;
	size_t n;
	struct snap_goroutine *gs;
	char *vars_note;		/* why no variables were read (stripped, --no-vars), or NULL */
	int64_t id;			/* snapshots.id once stored, else 0 */
};

void snapshot_opts_default(struct snapshot_opts *o);
/* Takes a snapshot of process pid, whose binary model is bin. Returns 0 or a
 * negative code (the process is never stopped or written to either way).
 * Decoding reads each page of the target's memory once per snapshot (whole, with
 * one process_vm_readv) and locates each pc's variables once. Environment:
 * GLIMPSE_DECODE_PROFILE=1 prints the reads, pages and pcs of each decode,
 * GLIMPSE_DECODE_NO_PAGES=1 reads every value with its own process_vm_readv. */
int snapshot_take(const struct gobin *bin, pid_t pid, const struct snapshot_opts *o, struct snapshot *out);
void snapshot_free(struct snapshot *s);
/* Writes s into the store in one transaction; sets s->id. Goroutines go in goid
 * order, 32 rows per INSERT, values bound in place, each distinct stack looked
 * up once. */
int snapshot_store(struct store *st, struct snapshot *s);
/* Text like pprof's debug=1: goroutines grouped by identical stack, with variables per frame. */
void snapshot_text(const struct snapshot *s, struct buf *out);
/* The --json object (see README). */
void snapshot_json(const struct snapshot *s, struct buf *out);

#endif
