/* gobin.h - the binary model: one opened Go ELF executable and everything known
 * about it (version, build id, functions, line tables, DWARF, runtime offsets).
 *
 * Snapshot, trace and replay all use this one model. It only reads the file; how
 * a live process's memory is read is someone else's business (snapshot.c, trace.c).
 * All addresses in the model are link-time addresses; add gobin_bias() of a
 * process to get run-time addresses (non-zero only for PIE).
 *
 * Composition: gobin.c opens the ELF file (elffile.h) and hands it to the parts
 * (pclntab, DWARF, runtime offsets); none of them knows or calls back into gobin.
 */
#ifndef GLIMPSE_GOBIN_H
#define GLIMPSE_GOBIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "elffile.h"
#include "goruntime.h"

struct pcln;
struct dwarf;

struct gobin {
	char *path;
	struct elf_file *elf;	/* the file: sections, symbols, bytes by address (elffile.h) */
	char go_version[32];	/* as `go version` prints it: "go1.19.8" */
	int go_minor;		/* 19 for go1.19.8 */
	char build_id[160];	/* Go build id (.note.go.buildid), else GNU build id in hex, else "" */
	char gnu_build_id[84];	/* hex, or "" */
	bool pie;		/* ET_DYN: loaded at a random base (elf->pie) */
	bool stripped;		/* no usable DWARF */
	bool has_symtab;	/* .symtab present (elf->has_symtab) */
	uint64_t text_start;	/* start of Go text (runtime.firstmoduledata.text) */
	uint64_t text_end;
	struct pcln *pcln;	/* never NULL once opened */
	struct dwarf *dwarf;	/* NULL when stripped */
	struct go_offsets offsets;	/* runtime struct offsets; see goruntime.h */

	/* private to gobin.c */
	const uint8_t *buildinfo_mod;	/* module info text after the version, or NULL */
	size_t buildinfo_mod_len;
};

/* Opens path, checks it is an amd64 Go executable of a supported version, and
 * loads the pclntab, DWARF (if present) and runtime offsets. Returns 0 and sets
 * *out (free with gobin_close) or a negative code with err_msg() explaining. */
int gobin_open(const char *path, struct gobin **out);
/* Opens the executable of a running process (/proc/PID/exe). */
int gobin_open_pid(pid_t pid, struct gobin **out);
void gobin_close(struct gobin *bin);

/* What gobin_peek() tells of an executable without opening its model. */
struct gobin_id {
	char go_version[32];	/* as in struct gobin; "" when built by Go older than 1.18 */
	char build_id[160];	/* as in struct gobin */
	bool pie;
	bool stripped;		/* no DWARF sections */
};
/* Whether the ELF file open at fd (named path in messages) is a Go executable,
 * read cheaply: its ELF and section headers, section names, Go build id notes
 * and the start of its build info, a few small reads (an open of the model
 * reads far more). Returns 0 for a Go executable glimpse supports, with *out
 * filled; GLIMPSE_EUNSUP for one it does not (an older Go, another
 * architecture; *out filled as far as known); GLIMPSE_ENOTGO for anything else
 * (including executables without section headers, which gobin_open() can still
 * find the build info of). */
int gobin_peek(int fd, const char *path, struct gobin_id *out);

/* Load bias of bin in process pid (run-time address - link-time address),
 * from /proc/PID/maps. 0 for non-PIE. Negative code on failure. */
int gobin_bias(const struct gobin *bin, pid_t pid, uint64_t *bias);

/* Bytes bin holds: the mapped file plus an estimate of what the model allocated
 * (pclntab index, DWARF image and tables, relocations). For cache accounting. */
size_t gobin_footprint(const struct gobin *bin);

/* Reads of the file itself (sections, bytes at a link-time address, pointers
 * through PIE relocations, symbols) are elf_file_*() on bin->elf. */

#endif
