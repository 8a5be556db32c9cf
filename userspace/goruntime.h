/* goruntime.h - where the Go runtime keeps what glimpse reads: struct field
 * offsets of runtime.g / runtime.m / runtime.gobuf, the addresses of
 * runtime.allgs and runtime.allglen, and the names of status and wait-reason codes.
 *
 * Offsets come from DWARF when the binary has it, else from a built-in table per
 * Go version (checked against DWARF in tests for every installed version).
 * Names follow the runtime's own (atomicstatus, sched, waitreason, ...).
 */
#ifndef GLIMPSE_GORUNTIME_H
#define GLIMPSE_GORUNTIME_H
#include <stdbool.h>
#include <stdint.h>

struct dwarf;
struct elf_file;
struct pcln;

/* -1 marks a field this Go version does not have. */
struct go_offsets {
	int g_size;			/* sizeof(runtime.g) */
	int g_stack_lo, g_stack_hi;	/* g.stack.lo / g.stack.hi */
	int g_m;			/* g.m (*m) */
	int g_sched;			/* g.sched (gobuf) */
	int gobuf_sp, gobuf_pc, gobuf_bp;	/* within gobuf */
	int g_syscallsp, g_syscallpc, g_syscallbp;
	int g_atomicstatus;		/* uint32 */
	int g_goid;			/* uint64 (int64 before 1.?): read 8 bytes */
	int g_waitsince;		/* int64, nanotime() when it started waiting (approx.) */
	int g_waitreason;		/* uint8 */
	int g_gopc;			/* pc of the go statement that created it */
	int g_startpc;			/* pc of the goroutine function */
	int g_parentgoid;		/* 1.21+ */
	int g_labels;			/* unsafe.Pointer to the pprof label map */
	int m_procid;			/* uint64, the thread id */
	int m_curg;			/* *g */
	uint64_t allgs;			/* link-time address of runtime.allgs (a []*g slice header) */
	uint64_t allglen;		/* link-time address of runtime.allglen (uintptr) */
	const char *source;		/* "dwarf" or "table": where the struct offsets came from */
	const char *globals_source;	/* "symtab" or "disasm": where allgs/allglen came from */
};

/* Goroutine status codes (runtime2.go); the scan bit is masked off by gstatus_name. */
enum {
	G_IDLE = 0, G_RUNNABLE = 1, G_RUNNING = 2, G_SYSCALL = 3, G_WAITING = 4,
	G_DEAD = 6, G_COPYSTACK = 8, G_PREEMPTED = 9, G_SCAN = 0x1000,
};

/* Fills *out for an executable built by go1.<go_minor>: struct offsets from its
 * DWARF if dwarf is not NULL (and has them) else the table, and the allgs/allglen
 * addresses from elf's symbol table or, stripped, by decoding runtime code found
 * through pcln. Returns 0 or a negative code (GLIMPSE_EUNSUP for a Go version
 * with no table). */
int goruntime_load(const struct elf_file *elf, const struct pcln *pcln, const struct dwarf *dwarf, int go_minor,
		   struct go_offsets *out);
/* The built-in table for go1.<minor>. Returns 0 or -GLIMPSE_EUNSUP. */
int goruntime_table(int go_minor, struct go_offsets *out);
/* Offsets read from DWARF types runtime.g, runtime.m, runtime.gobuf, runtime.stack.
 * Returns 0 or a negative code (e.g. no DWARF). Does not set allgs/allglen. */
int goruntime_from_dwarf(const struct dwarf *d, struct go_offsets *out);
/* Stripped binaries: finds runtime.allgs and runtime.allglen by decoding runtime
 * functions that use them (runtime.allgadd, runtime.forEachG, ...; located through
 * the pclntab) and taking their RIP-relative operands, then sanity-checks them.
 * Implemented in goglobals.c. Returns 0 or a negative code. */
int goruntime_find_globals(const struct elf_file *elf, const struct pcln *pcln, uint64_t *allgs, uint64_t *allglen);
/* "running", "waiting", ... for an atomicstatus value (scan bit ignored). */
const char *gstatus_name(uint32_t status);
/* The runtime's waitReasonStrings entry for this Go version, e.g. "chan receive";
 * "" for waitReasonZero, NULL if out of range. */
const char *waitreason_name(int go_minor, uint8_t reason);
/* Whether the frame of function func (a pclntab name, not NULL) is the runtime's and not the
 * program's: what a Go traceback hides (runtime/traceback.go's showfuncinfo:
 * unexported runtime.* functions and names without a package), and the standard
 * library's internal/ and runtime/internal/ packages (the plumbing under sync, net
 * and os). Exported runtime functions (runtime.Gosched, runtime.(*Func).Name) are
 * the program's calls and are not runtime frames. A stack's function
 * (stacks.top_func) is its innermost frame for which this is false. */
bool go_runtime_frame(const char *func);

#endif
