/* elffile.h - reads of one ELF file: the floor the binary model stands on.
 *
 * An elf_file is a read-only mapping of one executable with its section and
 * program headers parsed once: sections by name, symbols, notes, bytes at a
 * link-time address (bss reads as zeros) and pointers read through the dynamic
 * relocations that hold absolute addresses (R_X86_64_RELATIVE and R_X86_64_64),
 * so a PIE file reads as if loaded at its link-time addresses.
 *
 * It knows nothing of Go: pclntab.c, dwarf.c, goruntime.c and disasm.c read
 * through it, and gobin.c composes them. (Named elffile, not elf, so that it
 * does not shadow the system's <elf.h> on the include path.)
 */
#ifndef GLIMPSE_ELFFILE_H
#define GLIMPSE_ELFFILE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One section header. */
struct elf_section {
	const char *name;	/* into the mapped file; "" if unnamed */
	uint32_t type;		/* SHT_* */
	uint64_t flags;		/* SHF_* */
	uint64_t addr;		/* link-time address (0 if not allocated) */
	uint64_t offset;	/* in the file */
	uint64_t size;
};

/* One PT_LOAD program header. */
struct elf_segment {
	uint64_t vaddr, memsz;
	uint64_t offset, filesz;
	uint32_t flags;		/* PF_* */
};

struct elf_reloc;

struct elf_file {
	char *path;		/* the name used in messages */
	const uint8_t *map;	/* the whole file, mapped read-only */
	size_t size;
	uint8_t ident[16];	/* e_ident */
	uint16_t type;		/* e_type: ET_EXEC or ET_DYN */
	uint16_t machine;	/* e_machine */
	bool pie;		/* ET_DYN */
	bool has_symtab;	/* a .symtab section is present */
	struct elf_section *sections;	/* in header order; index 0 is the null section */
	size_t nsections;
	struct elf_segment *loads;	/* PT_LOAD segments in header order */
	size_t nloads;

	/* private to elffile.c */
	void *elf;			/* Elf *, libelf handle on map */
	struct elf_reloc *relocs;	/* absolute-address relocations, sorted by offset */
	size_t nrelocs;
};

/* Maps the file at path and parses its headers; messages name it `name` (NULL:
 * path). Accepts 64-bit x86-64 executables (ET_EXEC, ET_DYN) only: another file
 * fails with GLIMPSE_ENOTGO (not ELF, not executable) or GLIMPSE_EUNSUP (other
 * architecture), and err_msg() says which. On success *out is the caller's
 * (elf_file_close). */
int elf_file_open(const char *path, const char *name, struct elf_file **out);
void elf_file_close(struct elf_file *f);

/* Section by name, or NULL. */
const struct elf_section *elf_file_find_section(const struct elf_file *f, const char *name);
/* Contents of the named section: a pointer into the mapped file, setting addr and
 * len; NULL if absent, SHT_NOBITS or out of the file. */
const uint8_t *elf_file_section(const struct elf_file *f, const char *name, uint64_t *addr, size_t *len);
/* Reads n bytes at link-time address addr from any PT_LOAD segment holding all
 * of them; bytes past the file's part of the segment (bss) read as zero.
 * Returns 0, or a negative code (EFAULT: not in any segment). */
int elf_file_read(const struct elf_file *f, uint64_t addr, void *dst, size_t n);
/* Reads the 8-byte pointer at addr, taking the value of an absolute-address
 * relocation at addr if there is one (PIE files hold 0 there). */
int elf_file_read_ptr(const struct elf_file *f, uint64_t addr, uint64_t *val);
/* Value of a symbol in .symtab, setting *size if size is not NULL; 0 if there
 * is no such symbol (or no .symtab). */
uint64_t elf_file_symbol(const struct elf_file *f, const char *name, uint64_t *size);
/* The descriptor of the first note of owner and type in note section bytes
 * p[0..len), and its size in *desc_len; NULL when there is none. */
const uint8_t *elf_note_find(const uint8_t *p, size_t len, const char *owner, uint32_t type, size_t *desc_len);
/* The descriptor of the first note of this owner and type in the named section:
 * a pointer into the mapped file with its length in *len, or NULL. */
const uint8_t *elf_file_note(const struct elf_file *f, const char *section, const char *owner, uint32_t type,
			     size_t *len);
/* Bytes f holds: the mapped file and its parsed headers and relocations. */
size_t elf_file_footprint(const struct elf_file *f);
/* The PT_LOAD segment holding addr, or NULL. */
const struct elf_segment *elf_file_segment(const struct elf_file *f, uint64_t addr);

#endif
