/* elffile.c - map one ELF executable, parse its section and program headers once
 * (libelf), and serve reads of it: sections, symbols, notes, bytes and
 * relocation-aware pointers at link-time addresses.
 */
#include "elffile.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"

struct elf_reloc {
	uint64_t offset;
	uint64_t value;
};

static Elf *libelf_of(const struct elf_file *f)
{
	return (Elf *)f->elf;
}

const struct elf_section *elf_file_find_section(const struct elf_file *f, const char *name)
{
	for (size_t i = 0; i < f->nsections; i++)
		if (strcmp(f->sections[i].name, name) == 0)
			return &f->sections[i];
	return NULL;
}

const uint8_t *elf_file_section(const struct elf_file *f, const char *name, uint64_t *addr, size_t *len)
{
	const struct elf_section *s = elf_file_find_section(f, name);

	if (!s || s->type == SHT_NOBITS || s->offset > f->size || s->size > f->size - s->offset)
		return NULL;
	if (addr)
		*addr = s->addr;
	if (len)
		*len = s->size;
	return f->map + s->offset;
}

const struct elf_segment *elf_file_segment(const struct elf_file *f, uint64_t addr)
{
	for (size_t i = 0; i < f->nloads; i++)
		if (addr >= f->loads[i].vaddr && addr - f->loads[i].vaddr < f->loads[i].memsz)
			return &f->loads[i];
	return NULL;
}

int elf_file_read(const struct elf_file *f, uint64_t addr, void *dst, size_t n)
{
	for (size_t i = 0; i < f->nloads; i++) {
		const struct elf_segment *s = &f->loads[i];
		uint64_t off, infile;

		if (addr < s->vaddr || addr - s->vaddr >= s->memsz || n > s->memsz - (addr - s->vaddr))
			continue;
		off = addr - s->vaddr;
		infile = 0;
		if (off < s->filesz)
			infile = s->filesz - off < n ? s->filesz - off : n;
		if (s->offset + off + infile > f->size)
			return err_set(GLIMPSE_ECORRUPT, "%s: segment beyond end of file", f->path);
		memcpy(dst, f->map + s->offset + off, infile);
		memset((uint8_t *)dst + infile, 0, n - infile);
		return 0;
	}
	return err_set(EFAULT, "%s: address 0x%llx (+%zu) is not in any loaded segment", f->path,
		       (unsigned long long)addr, n);
}

int elf_file_read_ptr(const struct elf_file *f, uint64_t addr, uint64_t *val)
{
	size_t lo = 0, hi = f->nrelocs;
	int rc = elf_file_read(f, addr, val, sizeof(*val));

	if (rc)
		return rc;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->relocs[mid].offset == addr) {
			*val = f->relocs[mid].value;
			return 0;
		}
		if (f->relocs[mid].offset < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

uint64_t elf_file_symbol(const struct elf_file *f, const char *name, uint64_t *size)
{
	Elf *elf = libelf_of(f);
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(data, (int)i, &sym))
				continue;
			n = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (n && strcmp(n, name) == 0) {
				if (size)
					*size = sym.st_size;
				return sym.st_value;
			}
		}
	}
	return 0;
}

const uint8_t *elf_note_find(const uint8_t *p, size_t len, const char *owner, uint32_t type, size_t *desc_len)
{
	size_t off = 0, olen = strlen(owner) + 1;

	while (p && off + 12 <= len) {
		uint32_t namesz, descsz, ntype;
		size_t name_at = off + 12, desc_at;

		memcpy(&namesz, p + off, 4);
		memcpy(&descsz, p + off + 4, 4);
		memcpy(&ntype, p + off + 8, 4);
		desc_at = name_at + ((namesz + 3) & ~3u);
		if (desc_at > len || descsz > len - desc_at)
			break;
		/* Go pads its owner to "Go\0\0" (namesz 4); GNU uses "GNU\0". */
		if (ntype == type && namesz >= olen && namesz <= 8 && memcmp(p + name_at, owner, olen) == 0) {
			*desc_len = descsz;
			return p + desc_at;
		}
		off = desc_at + ((descsz + 3) & ~3u);
	}
	return NULL;
}

const uint8_t *elf_file_note(const struct elf_file *f, const char *section, const char *owner, uint32_t type,
			     size_t *len)
{
	size_t seclen = 0;
	const uint8_t *p = elf_file_section(f, section, NULL, &seclen);

	return p ? elf_note_find(p, seclen, owner, type, len) : NULL;
}

size_t elf_file_footprint(const struct elf_file *f)
{
	return sizeof(*f) + f->size + f->nsections * sizeof(*f->sections) + f->nloads * sizeof(*f->loads) +
	       f->nrelocs * sizeof(*f->relocs);
}

static int cmp_reloc(const void *a, const void *b)
{
	const struct elf_reloc *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Collects the dynamic relocations that store an absolute address, so PIE
 * files can be read as if loaded at their link-time addresses. */
static void load_relocs(struct elf_file *f)
{
	Elf *elf = libelf_of(f);
	Elf_Scn *scn = NULL;
	struct buf out = { 0 };

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *data, *symdata = NULL;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		if (sh.sh_link) {
			Elf_Scn *sym = elf_getscn(elf, sh.sh_link);

			symdata = sym ? elf_getdata(sym, NULL) : NULL;
		}
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela r;
			struct elf_reloc rel;

			if (!gelf_getrela(data, (int)i, &r))
				continue;
			rel.offset = r.r_offset;
			if (GELF_R_TYPE(r.r_info) == R_X86_64_RELATIVE) {
				rel.value = (uint64_t)r.r_addend;
			} else if (GELF_R_TYPE(r.r_info) == R_X86_64_64 && symdata) {
				GElf_Sym s;

				if (!gelf_getsym(symdata, (int)GELF_R_SYM(r.r_info), &s) || s.st_shndx == SHN_UNDEF)
					continue;
				rel.value = s.st_value + (uint64_t)r.r_addend;
			} else {
				continue;
			}
			buf_add(&out, &rel, sizeof(rel));
		}
	}
	f->nrelocs = out.len / sizeof(struct elf_reloc);
	f->relocs = (struct elf_reloc *)buf_detach(&out);
	qsort(f->relocs, f->nrelocs, sizeof(*f->relocs), cmp_reloc);
}

static int map_file(struct elf_file *f, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *m;

	if (fd < 0)
		return err_set(errno, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(EINVAL, "%s: not a regular file", path);
	}
	if (st.st_size < 64) {
		close(fd);
		return err_set(GLIMPSE_ENOTGO, "%s: not an ELF file", path);
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return err_set(errno, "cannot map %s: %s", path, strerror(errno));
	f->map = m;
	f->size = (size_t)st.st_size;
	return 0;
}

/* Copies the section headers into f->sections. */
static int read_sections(struct elf_file *f)
{
	Elf *elf = libelf_of(f);
	size_t n, shstrndx;

	if (elf_getshdrnum(elf, &n) != 0 || elf_getshdrstrndx(elf, &shstrndx) != 0)
		return err_set(GLIMPSE_ECORRUPT, "%s: malformed section headers: %s", f->path, elf_errmsg(-1));
	f->sections = xcalloc(n ? n : 1, sizeof(*f->sections));
	for (size_t i = 0; i < n; i++) {
		Elf_Scn *scn = elf_getscn(elf, i);
		struct elf_section *s = &f->sections[f->nsections];
		GElf_Shdr sh;
		const char *name;

		if (!scn || !gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		s->name = name ? name : "";
		s->type = sh.sh_type;
		s->flags = sh.sh_flags;
		s->addr = sh.sh_addr;
		s->offset = sh.sh_offset;
		s->size = sh.sh_size;
		f->has_symtab |= sh.sh_type == SHT_SYMTAB;
		f->nsections++;
	}
	return 0;
}

/* Copies the PT_LOAD program headers into f->loads. */
static int read_segments(struct elf_file *f)
{
	Elf *elf = libelf_of(f);
	size_t n;

	if (elf_getphdrnum(elf, &n) != 0)
		return err_set(GLIMPSE_ECORRUPT, "%s: no program headers", f->path);
	f->loads = xcalloc(n ? n : 1, sizeof(*f->loads));
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		f->loads[f->nloads++] = (struct elf_segment){ .vaddr = ph.p_vaddr, .memsz = ph.p_memsz,
							      .offset = ph.p_offset, .filesz = ph.p_filesz,
							      .flags = ph.p_flags };
	}
	return 0;
}

static int parse(struct elf_file *f)
{
	GElf_Ehdr eh;
	Elf *elf;

	if (memcmp(f->map, ELFMAG, SELFMAG) != 0)
		return err_set(GLIMPSE_ENOTGO, "%s: not an ELF file", f->path);
	elf_version(EV_CURRENT);
	elf = elf_memory((char *)f->map, f->size);
	if (!elf || !gelf_getehdr(elf, &eh)) {
		if (elf)
			elf_end(elf);
		return err_set(GLIMPSE_ECORRUPT, "%s: malformed ELF file: %s", f->path, elf_errmsg(-1));
	}
	f->elf = elf;
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
		return err_set(GLIMPSE_EUNSUP, "%s: not an x86-64 binary (glimpse supports linux/amd64)", f->path);
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return err_set(GLIMPSE_ENOTGO, "%s: not an executable", f->path);
	memcpy(f->ident, eh.e_ident, sizeof(f->ident));
	f->type = eh.e_type;
	f->machine = eh.e_machine;
	f->pie = eh.e_type == ET_DYN;
	if (read_sections(f) || read_segments(f))
		return -GLIMPSE_ECORRUPT;
	if (f->pie)
		load_relocs(f);
	return 0;
}

int elf_file_open(const char *path, const char *name, struct elf_file **out)
{
	struct elf_file *f = xcalloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	f->path = xstrdup(name ? name : path);
	rc = map_file(f, path);
	if (!rc)
		rc = parse(f);
	if (rc) {
		elf_file_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

void elf_file_close(struct elf_file *f)
{
	if (!f)
		return;
	if (f->elf)
		elf_end(libelf_of(f));
	if (f->map)
		munmap((void *)f->map, f->size);
	free(f->sections);
	free(f->loads);
	free(f->relocs);
	free(f->path);
	free(f);
}
