/* dwarf.h - what DWARF says about a Go binary: functions with their parameters,
 * results and locals, where each lives at a given pc, and Go types with layouts.
 *
 * Built on libdw. Loaded once per binary (absent for stripped binaries). Types are
 * interned: one struct gotype per DWARF type DIE, shared, freed with the dwarf.
 */
#ifndef GLIMPSE_DWARF_H
#define GLIMPSE_DWARF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_file;
struct dwarf;

enum gotype_kind {
	GT_UNKNOWN = 0,
	GT_BOOL, GT_INT, GT_UINT, GT_UINTPTR, GT_FLOAT, GT_COMPLEX,
	GT_STRING, GT_SLICE, GT_ARRAY, GT_STRUCT, GT_PTR, GT_UNSAFEPTR,
	GT_IFACE,	/* non-empty interface: {itab *, data} */
	GT_EFACE,	/* interface{} / any: {type *, data} */
	GT_MAP,		/* a pointer to the runtime map header (hmap or, 1.24+, swiss map) */
	GT_CHAN, GT_FUNC,
};

struct gofield {
	const char *name;
	uint64_t offset;
	struct gotype *type;
	bool embedded;
};

struct gotype {
	enum gotype_kind kind;
	const char *name;	/* Go spelling: "int", "[]string", "map[string]int", "main.T" */
	uint64_t size;
	struct gotype *elem;	/* PTR, SLICE, ARRAY, CHAN: element; MAP: value */
	struct gotype *key;	/* MAP */
	struct gotype *hdr;	/* MAP: the runtime map struct the pointer points to (hmap / maps.Map) */
	uint64_t count;		/* ARRAY length */
	int nfields;		/* STRUCT (also SLICE/STRING/IFACE headers as DWARF lays them out) */
	struct gofield *fields;
	uint64_t runtime_type;	/* DW_AT_go_runtime_type: the runtime._type's offset from runtime.types (0: none) */
};

/* One piece of a variable's location at some pc. */
enum loc_kind {
	LOC_REG,	/* in DWARF register `reg` (0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp, 8-15 r8-r15, 17-32 xmm0-15) */
	LOC_CFA,	/* in memory at CFA + off (Go's frame base is the CFA: SP at the call + 8) */
	LOC_ADDR,	/* in memory at absolute link-time address off */
	LOC_EMPTY,	/* this piece was optimized out */
};

struct loc_piece {
	enum loc_kind kind;
	int reg;
	int64_t off;
	uint32_t size;	/* bytes this piece covers; the whole variable when there is one piece */
};

#define LOC_MAX_PIECES 16
struct varloc {
	int npieces;
	struct loc_piece pieces[LOC_MAX_PIECES];
};

struct govar {
	const char *name;
	struct gotype *type;
	bool is_param;		/* formal parameter */
	bool is_result;		/* named or unnamed result (DW_AT_variable_parameter) */
	int decl_line;
	/* opaque to callers: where to find the location description */
	uint64_t scope_lo, scope_hi;	/* lexical block range, 0/0 for the whole function */
	uint64_t die_off;
};

struct dwfunc {
	const char *name;
	uint64_t lowpc, highpc;	/* link-time [lowpc, highpc) */
	const char *file;
	int line;
	int nvars;
	struct govar *vars;	/* parameters first (in order), then results, then locals */
};

/* Loads the DWARF of elf (inflated into a private image of its own).
 * Returns 0 and *out, 1 if the file has no DWARF (*out = NULL), or a negative
 * code for broken DWARF. */
int dwarf_load(const struct elf_file *elf, struct dwarf **out);
void dwarf_free(struct dwarf *d);
/* An estimate of the bytes d holds: its inflated image, its tables, the types and
 * names it owns, and what libdw builds over the image. */
size_t dwarf_footprint(const struct dwarf *d);

size_t dwarf_nfuncs(const struct dwarf *d);
const struct dwfunc *dwarf_func_at(const struct dwarf *d, size_t i);
/* The function whose [lowpc, highpc) holds pc, or NULL. */
const struct dwfunc *dwarf_func_by_pc(const struct dwarf *d, uint64_t pc);
const struct dwfunc *dwarf_func_by_name(const struct dwarf *d, const char *name);
/* A named type ("runtime.g"), or NULL. */
struct gotype *dwarf_type_by_name(const struct dwarf *d, const char *name);

/* Where var lives at pc. Returns 0 (out filled), 1 if the variable has no location
 * at pc (not live, or out of scope: report it as unavailable), or a negative code. */
int dwarf_locate(const struct dwarf *d, const struct govar *var, uint64_t pc, struct varloc *out);
/* Human-readable location of var at pc ("rax", "cfa-24", "rbx:8+rcx:8",
 * "unavailable") appended to out; or the location list summary when pc == 0. */
struct buf;
void dwarf_describe_loc(const struct dwarf *d, const struct govar *var, uint64_t pc, struct buf *out);

#endif
