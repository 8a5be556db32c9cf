/* pclntab.h - functions, line tables and frame sizes from the Go pclntab.
 *
 * Works on stripped binaries: the pclntab is always present. Supports the
 * pclntab formats of Go 1.18 to 1.26 (magics 0xfffffff0 and 0xfffffff1).
 * Every string returned points into the mapped file and lives as long as the gobin.
 */
#ifndef GLIMPSE_PCLNTAB_H
#define GLIMPSE_PCLNTAB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gobin;
struct pcln;

struct gofunc {
	const char *name;	/* e.g. "main.(*server).handle" */
	uint64_t entry;		/* link-time address of the first instruction */
	uint64_t end;		/* one past the last byte (next function's entry) */
	uint32_t funcoff;	/* offset of this _func record in the pclntab */
};

/* One frame of a pc after inline expansion: innermost first. */
struct pcln_frame {
	const char *func;
	const char *file;
	int line;
	bool inlined;		/* true for every frame but the outermost (the real function) */
};

/* Parses the pclntab of bin (located via .gopclntab / .data.rel.ro.gopclntab or
 * the module data) and sets bin->text_start/text_end. Returns 0 or a negative code. */
int pcln_open(struct gobin *bin, struct pcln **out);
void pcln_close(struct pcln *p);

size_t pcln_nfuncs(const struct pcln *p);
const struct gofunc *pcln_func(const struct pcln *p, size_t i);	/* sorted by entry */
/* The function containing pc, or NULL. O(log n). */
const struct gofunc *pcln_find(const struct pcln *p, uint64_t pc);
/* Function by exact name, or NULL. */
const struct gofunc *pcln_lookup(const struct pcln *p, const char *name);

/* File and line of pc (the innermost inlined position, as addr2line reports).
 * Returns 0 or a negative code. */
int pcln_fileline(const struct pcln *p, const struct gofunc *f, uint64_t pc, const char **file, int *line);
/* Stack-pointer delta at pc: bytes the function has pushed at that pc, not counting
 * the return address (0 at entry). Negative code on error. */
int pcln_spdelta(const struct pcln *p, const struct gofunc *f, uint64_t pc);
/* Expands pc into its inlined frames, innermost first, up to max. Returns the
 * number of frames written (>= 1 for a valid pc) or a negative code. */
int pcln_frames(const struct pcln *p, const struct gofunc *f, uint64_t pc, struct pcln_frame *out, int max);
/* Number of distinct source files. */
size_t pcln_nfiles(const struct pcln *p);

#endif
