/* goruntime.c - where the Go runtime keeps what glimpse reads: offsets of
 * runtime.g / runtime.m / runtime.gobuf fields, the addresses of runtime.allgs
 * and runtime.allglen, and the names of goroutine status and wait-reason codes.
 *
 * Offsets come from the binary's DWARF when it has some, else from a built-in
 * table per Go version (amd64). The table was derived from the DWARF of
 * binaries built by each toolchain (go1.18 and go1.20 from their runtime2.go:
 * their g/m/gobuf prefixes are identical to go1.19's) and tests check it
 * against DWARF for every installed version.
 */
#include "goruntime.h"

#include <stddef.h>
#include <string.h>

#include "dwarf.h"
#include "err.h"
#include "elffile.h"

#define GO_MIN_MINOR 18
#define GO_MAX_MINOR 26

/* ---- offsets from DWARF ---- */

static const struct gofield *field_of(const struct gotype *t, const char *name)
{
	int i;

	for (i = 0; t && i < t->nfields; i++)
		if (t->fields[i].name && !strcmp(t->fields[i].name, name))
			return &t->fields[i];
	return NULL;
}

/* Offset of field `name` of t, or -1 when t has no such field. */
static int offset_of(const struct gotype *t, const char *name)
{
	const struct gofield *f = field_of(t, name);

	return f ? (int)f->offset : -1;
}

static int need_type(const struct dwarf *d, const char *name, struct gotype **out)
{
	*out = dwarf_type_by_name(d, name);
	if (!*out || (*out)->kind != GT_STRUCT || !(*out)->nfields)
		return err_set(GLIMPSE_ECORRUPT, "DWARF has no struct type %s", name);
	return 0;
}

/* Fails if one of the fields every supported Go version has is missing. */
static int check_required(const struct go_offsets *o)
{
	static const struct {
		const char *name;
		size_t off;
	} req[] = {
#define REQ(f) { #f, offsetof(struct go_offsets, f) }
		REQ(g_stack_lo), REQ(g_stack_hi), REQ(g_m), REQ(g_sched),
		REQ(gobuf_sp), REQ(gobuf_pc), REQ(gobuf_bp), REQ(g_syscallsp),
		REQ(g_syscallpc), REQ(g_atomicstatus), REQ(g_goid),
		REQ(g_waitsince), REQ(g_waitreason), REQ(g_gopc), REQ(g_startpc),
		REQ(g_labels), REQ(m_procid), REQ(m_curg),
#undef REQ
	};
	size_t i;

	for (i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		if (*(const int *)((const char *)o + req[i].off) < 0)
			return err_set(GLIMPSE_ECORRUPT, "runtime struct field for %s not found in DWARF",
				       req[i].name);
	return 0;
}

int goruntime_from_dwarf(const struct dwarf *d, struct go_offsets *out)
{
	struct gotype *g, *m, *gobuf, *stack;
	int stk, rc;

	memset(out, 0, sizeof(*out));
	if (!d)
		return err_set(ENOENT, "no DWARF");
	if ((rc = need_type(d, "runtime.g", &g)) || (rc = need_type(d, "runtime.m", &m)) ||
	    (rc = need_type(d, "runtime.gobuf", &gobuf)) ||
	    (rc = need_type(d, "runtime.stack", &stack)))
		return rc;

	stk = offset_of(g, "stack");
	out->g_size = (int)g->size;
	out->g_stack_lo = stk < 0 || offset_of(stack, "lo") < 0 ? -1 : stk + offset_of(stack, "lo");
	out->g_stack_hi = stk < 0 || offset_of(stack, "hi") < 0 ? -1 : stk + offset_of(stack, "hi");
	out->g_m = offset_of(g, "m");
	out->g_sched = offset_of(g, "sched");
	out->gobuf_sp = offset_of(gobuf, "sp");
	out->gobuf_pc = offset_of(gobuf, "pc");
	out->gobuf_bp = offset_of(gobuf, "bp");
	out->g_syscallsp = offset_of(g, "syscallsp");
	out->g_syscallpc = offset_of(g, "syscallpc");
	out->g_syscallbp = offset_of(g, "syscallbp");
	out->g_atomicstatus = offset_of(g, "atomicstatus");
	out->g_goid = offset_of(g, "goid");
	out->g_waitsince = offset_of(g, "waitsince");
	out->g_waitreason = offset_of(g, "waitreason");
	out->g_gopc = offset_of(g, "gopc");
	out->g_startpc = offset_of(g, "startpc");
	out->g_parentgoid = offset_of(g, "parentGoid");
	out->g_labels = offset_of(g, "labels");
	out->m_procid = offset_of(m, "procid");
	out->m_curg = offset_of(m, "curg");
	out->source = "dwarf";
	return check_required(out);
}

/* ---- the built-in table ---- */

struct offsets_row {
	int minor;
	struct go_offsets o;
};

/* One row per Go version (amd64), measured from the DWARF of the target fixture
 * built by each toolchain. go1.18 and go1.20 (no toolchain here) were read off
 * their runtime2.go: g up to g.labels, m up to m.curg and gobuf are laid out
 * exactly as in go1.19. */
#define ROW(mn, size, lo, hi, m, sched, sp, pc, bp, scsp, scpc, scbp, status, goid, since,	\
	    reason, gopc, startpc, parent, labels, procid, curg)				\
	{ (mn), { .g_size = (size), .g_stack_lo = (lo), .g_stack_hi = (hi), .g_m = (m),		\
		  .g_sched = (sched), .gobuf_sp = (sp), .gobuf_pc = (pc), .gobuf_bp = (bp),	\
		  .g_syscallsp = (scsp), .g_syscallpc = (scpc), .g_syscallbp = (scbp),		\
		  .g_atomicstatus = (status), .g_goid = (goid), .g_waitsince = (since),	\
		  .g_waitreason = (reason), .g_gopc = (gopc), .g_startpc = (startpc),		\
		  .g_parentgoid = (parent), .g_labels = (labels), .m_procid = (procid),	\
		  .m_curg = (curg), .source = "table" } }

static const struct offsets_row offsets_table[] = {
	/*       g   stack  g   g.     gobuf      g.syscall    atomic      wait  wait          parent       m.         */
	/*      size lo hi  m  sched  sp pc bp    sp  pc  bp   status goid since reason gopc start Goid labels procid curg */
	ROW(18, 392, 0, 8, 48, 56,    0, 8, 48,  112, 120, -1,  144, 152, 168, 176,  296, 312,  -1, 360,   72, 192),
	ROW(19, 392, 0, 8, 48, 56,    0, 8, 48,  112, 120, -1,  144, 152, 168, 176,  296, 312,  -1, 360,   72, 192),
	ROW(20, 392, 0, 8, 48, 56,    0, 8, 48,  112, 120, -1,  144, 152, 168, 176,  296, 312,  -1, 360,   72, 192),
	ROW(21, 408, 0, 8, 48, 56,    0, 8, 48,  112, 120, -1,  144, 152, 168, 176,  280, 296, 272, 344,   72, 192),
	ROW(22, 424, 0, 8, 48, 56,    0, 8, 48,  112, 120, -1,  144, 152, 168, 176,  280, 296, 272, 344,   72, 192),
	ROW(23, 432, 0, 8, 48, 56,    0, 8, 48,  112, 120, 128, 152, 160, 176, 184,  288, 304, 280, 352,   72, 192),
	ROW(24, 440, 0, 8, 48, 56,    0, 8, 48,  112, 120, 128, 152, 160, 176, 184,  288, 304, 280, 352,   72, 192),
	ROW(25, 440, 0, 8, 48, 56,    0, 8, 40,  104, 112, 120, 144, 152, 168, 176,  280, 296, 272, 344,   64, 184),
	ROW(26, 456, 0, 8, 48, 56,    0, 8, 40,  104, 112, 120, 144, 152, 168, 176,  288, 304, 280, 352,   64, 184),
};
#undef ROW

int goruntime_table(int go_minor, struct go_offsets *out)
{
	size_t i;

	for (i = 0; i < sizeof(offsets_table) / sizeof(offsets_table[0]); i++) {
		if (offsets_table[i].minor == go_minor) {
			*out = offsets_table[i].o;
			return 0;
		}
	}
	memset(out, 0, sizeof(*out));
	return err_set(GLIMPSE_EUNSUP, "unsupported Go version go1.%d (supported: go1.%d–go1.%d)",
		       go_minor, GO_MIN_MINOR, GO_MAX_MINOR);
}

/* ---- loading ---- */

static int load_globals(const struct elf_file *elf, const struct pcln *pcln, struct go_offsets *o)
{
	uint64_t allgs = elf_file_symbol(elf, "runtime.allgs", NULL);
	uint64_t allglen = elf_file_symbol(elf, "runtime.allglen", NULL);
	int rc;

	if (allgs && allglen) {
		o->globals_source = "symtab";
	} else {
		rc = goruntime_find_globals(elf, pcln, &allgs, &allglen);
		if (rc < 0)
			return err_wrap(rc, "%s: cannot find runtime.allgs", elf->path);
		o->globals_source = "disasm";
	}
	o->allgs = allgs;
	o->allglen = allglen;
	return 0;
}

int goruntime_load(const struct elf_file *elf, const struct pcln *pcln, const struct dwarf *dwarf, int go_minor,
		   struct go_offsets *out)
{
	struct go_offsets o;
	int rc = -1;

	if (dwarf) {
		rc = goruntime_from_dwarf(dwarf, &o);
		if (rc < 0)
			err_clear();	/* fall back to the table */
	}
	if (rc < 0) {
		rc = goruntime_table(go_minor, &o);
		if (rc < 0)
			return rc;
	}
	rc = load_globals(elf, pcln, &o);
	if (rc < 0)
		return rc;
	*out = o;
	return 0;
}

/* ---- names ---- */

const char *gstatus_name(uint32_t status)
{
	static const char *const names[] = {
		[G_IDLE] = "idle", [G_RUNNABLE] = "runnable", [G_RUNNING] = "running",
		[G_SYSCALL] = "syscall", [G_WAITING] = "waiting", [5] = "moribund",
		[G_DEAD] = "dead", [7] = "enqueue", [G_COPYSTACK] = "copystack",
		[G_PREEMPTED] = "preempted", [10] = "leaked",
		[11] = "waiting for cgo callback",
	};

	status &= ~(uint32_t)G_SCAN;
	if (status >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[status];
}

/* Whether name ("runtime." removed) is an exported function or an exported
 * method of an exported type, as runtime/traceback.go's isExportedRuntime says. */
static bool exported_runtime(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *fn = dot ? dot + 1 : name;

	if (!(*fn >= 'A' && *fn <= 'Z'))
		return false;
	if (!dot)
		return true;
	/* a receiver: "T" or "(*T)" */
	if (name[0] == '(' && name[1] == '*')
		name += 2;
	return *name >= 'A' && *name <= 'Z';
}

bool go_runtime_frame(const char *func)
{
	if (!strchr(func, '.'))
		return true;
	if (strncmp(func, "internal/", 9) == 0 || strncmp(func, "runtime/internal/", 17) == 0)
		return true;
	if (strncmp(func, "runtime.", 8) == 0)
		return !exported_runtime(func + 8);
	return false;
}

/* waitReasonStrings of each version's runtime2.go (the enum order changes). */
static const char *const waitreasons_1_19[] = {
	"", "GC assist marking", "IO wait", "chan receive (nil chan)",
	"chan send (nil chan)", "dumping heap", "garbage collection",
	"garbage collection scan", "panicwait", "select", "select (no cases)",
	"GC assist wait", "GC sweep wait", "GC scavenge wait", "chan receive",
	"chan send", "finalizer wait", "force gc (idle)", "semacquire", "sleep",
	"sync.Cond.Wait", "timer goroutine (idle)", "trace reader (blocked)",
	"wait for GC cycle", "GC worker (idle)", "preempted", "debug call",
};
static const char *const waitreasons_1_21[] = {
	"", "GC assist marking", "IO wait", "chan receive (nil chan)",
	"chan send (nil chan)", "dumping heap", "garbage collection",
	"garbage collection scan", "panicwait", "select", "select (no cases)",
	"GC assist wait", "GC sweep wait", "GC scavenge wait", "chan receive",
	"chan send", "finalizer wait", "force gc (idle)", "semacquire", "sleep",
	"sync.Cond.Wait", "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock",
	"trace reader (blocked)", "wait for GC cycle", "GC worker (idle)",
	"GC worker (active)", "preempted", "debug call", "GC mark termination",
	"stopping the world",
};
static const char *const waitreasons_1_22[] = {
	"", "GC assist marking", "IO wait", "chan receive (nil chan)",
	"chan send (nil chan)", "dumping heap", "garbage collection",
	"garbage collection scan", "panicwait", "select", "select (no cases)",
	"GC assist wait", "GC sweep wait", "GC scavenge wait", "chan receive",
	"chan send", "finalizer wait", "force gc (idle)", "semacquire", "sleep",
	"sync.Cond.Wait", "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock",
	"trace reader (blocked)", "wait for GC cycle", "GC worker (idle)",
	"GC worker (active)", "preempted", "debug call", "GC mark termination",
	"stopping the world", "flushing proc caches", "trace goroutine status",
	"trace proc status", "page trace flush", "coroutine",
};
static const char *const waitreasons_1_23[] = {
	"", "GC assist marking", "IO wait", "chan receive (nil chan)",
	"chan send (nil chan)", "dumping heap", "garbage collection",
	"garbage collection scan", "panicwait", "select", "select (no cases)",
	"GC assist wait", "GC sweep wait", "GC scavenge wait", "chan receive",
	"chan send", "finalizer wait", "force gc (idle)", "semacquire", "sleep",
	"sync.Cond.Wait", "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock",
	"trace reader (blocked)", "wait for GC cycle", "GC worker (idle)",
	"GC worker (active)", "preempted", "debug call", "GC mark termination",
	"stopping the world", "flushing proc caches", "trace goroutine status",
	"trace proc status", "page trace flush", "coroutine", "GC weak to strong wait",
};
static const char *const waitreasons_1_24[] = {
	"", "GC assist marking", "IO wait", "chan receive (nil chan)",
	"chan send (nil chan)", "dumping heap", "garbage collection",
	"garbage collection scan", "panicwait", "select", "select (no cases)",
	"GC assist wait", "GC sweep wait", "GC scavenge wait", "chan receive",
	"chan send", "finalizer wait", "force gc (idle)", "semacquire", "sleep",
	"sync.Cond.Wait", "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock",
	"sync.WaitGroup.Wait", "trace reader (blocked)", "wait for GC cycle",
	"GC worker (idle)", "GC worker (active)", "preempted", "debug call",
	"GC mark termination", "stopping the world", "flushing proc caches",
	"trace goroutine status", "trace proc status", "page trace flush", "coroutine",
	"GC weak to strong wait", "synctest.Run", "synctest.Wait",
	"chan receive (synctest)", "chan send (synctest)", "select (synctest)",
};
static const char *const waitreasons_1_25[] = {
	"", "GC assist marking", "IO wait", "chan receive (nil chan)",
	"chan send (nil chan)", "dumping heap", "garbage collection",
	"garbage collection scan", "panicwait", "select", "select (no cases)",
	"GC assist wait", "GC sweep wait", "GC scavenge wait", "chan receive",
	"chan send", "finalizer wait", "force gc (idle)", "GOMAXPROCS updater (idle)",
	"semacquire", "sleep", "sync.Cond.Wait", "sync.Mutex.Lock",
	"sync.RWMutex.RLock", "sync.RWMutex.Lock", "sync.WaitGroup.Wait",
	"trace reader (blocked)", "wait for GC cycle", "GC worker (idle)",
	"GC worker (active)", "preempted", "debug call", "GC mark termination",
	"stopping the world", "flushing proc caches", "trace goroutine status",
	"trace proc status", "page trace flush", "coroutine", "GC weak to strong wait",
	"synctest.Run", "synctest.Wait", "chan receive (durable)",
	"chan send (durable)", "select (durable)", "sync.WaitGroup.Wait (durable)",
	"cleanup wait",
};
static const char *const waitreasons_1_26[] = {
	"", "GC assist marking", "IO wait", "dumping heap", "garbage collection",
	"garbage collection scan", "panicwait", "GC assist wait", "GC sweep wait",
	"GC scavenge wait", "finalizer wait", "force gc (idle)",
	"GOMAXPROCS updater (idle)", "semacquire", "sleep", "chan receive (nil chan)",
	"chan send (nil chan)", "select (no cases)", "select", "chan receive",
	"chan send", "sync.Cond.Wait", "sync.Mutex.Lock", "sync.RWMutex.RLock",
	"sync.RWMutex.Lock", "sync.WaitGroup.Wait", "trace reader (blocked)",
	"wait for GC cycle", "GC worker (idle)", "GC worker (active)", "preempted",
	"debug call", "GC mark termination", "stopping the world",
	"flushing proc caches", "trace goroutine status", "trace proc status",
	"page trace flush", "coroutine", "GC weak to strong wait", "synctest.Run",
	"synctest.Wait", "chan receive (durable)", "chan send (durable)",
	"select (durable)", "sync.WaitGroup.Wait (durable)", "cleanup wait",
};
#define WR(v) { (v), sizeof(v) / sizeof((v)[0]) }
static const struct {
	const char *const *names;
	size_t n;
} waitreasons[GO_MAX_MINOR + 1 - GO_MIN_MINOR] = {
	WR(waitreasons_1_19),	/* go1.18: the same list */
	WR(waitreasons_1_19),
	WR(waitreasons_1_21),	/* go1.20: the same list */
	WR(waitreasons_1_21),
	WR(waitreasons_1_22),
	WR(waitreasons_1_23),
	WR(waitreasons_1_24),
	WR(waitreasons_1_25),
	WR(waitreasons_1_26),
};
#undef WR

const char *waitreason_name(int go_minor, uint8_t reason)
{
	if (go_minor < GO_MIN_MINOR || go_minor > GO_MAX_MINOR)
		return NULL;
	if (reason >= waitreasons[go_minor - GO_MIN_MINOR].n)
		return NULL;
	return waitreasons[go_minor - GO_MIN_MINOR].names[reason];
}
