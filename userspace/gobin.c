/* gobin.c - open a Go ELF executable once: check it is amd64 Go of a supported
 * version, read its build info and build id, and compose the rest of the binary
 * model from the opened file (pclntab, DWARF, runtime offsets). Also: a
 * process's load bias. Reads of the file are elffile.c's.
 */
#include "gobin.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "dwarf.h"
#include "err.h"
#include "pclntab.h"

static const char buildinfo_magic[] = "\xff Go buildinf:";

/* Sets build_id and gnu_build_id from the notes. */
/* Sets build_id (160 bytes) from the bytes of .note.go.buildid (go, go_len)
 * or, when it has none, of .note.gnu.build-id (gnu, gnu_len) in hex; the
 * latter also into gnu_id (84 bytes) unless NULL. */
static void build_ids(const uint8_t *go, size_t go_len, const uint8_t *gnu, size_t gnu_len, char *build_id,
		      char *gnu_id)
{
	const size_t cap = sizeof(((struct gobin *)0)->build_id), gnu_cap = sizeof(((struct gobin *)0)->gnu_build_id);
	char hex[sizeof(((struct gobin *)0)->gnu_build_id)] = "";
	const uint8_t *d;
	size_t n = 0;

	build_id[0] = '\0';
	d = go ? elf_note_find(go, go_len, "Go", 4, &n) : NULL;
	if (d) {
		if (n > cap - 1)
			n = cap - 1;
		memcpy(build_id, d, n);
		build_id[n] = '\0';
	}
	d = gnu ? elf_note_find(gnu, gnu_len, "GNU", NT_GNU_BUILD_ID, &n) : NULL;
	for (size_t i = 0; d && i < n && 2 * i + 2 < gnu_cap; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
	if (gnu_id)
		snprintf(gnu_id, gnu_cap, "%s", hex);
	if (!build_id[0])
		snprintf(build_id, cap, "%s", hex);
}

static void read_notes(struct gobin *bin)
{
	size_t go_len = 0, gnu_len = 0;
	const uint8_t *go = elf_file_section(bin->elf, ".note.go.buildid", NULL, &go_len);
	const uint8_t *gnu = elf_file_section(bin->elf, ".note.gnu.build-id", NULL, &gnu_len);

	build_ids(go, go_len, gnu, gnu_len, bin->build_id, bin->gnu_build_id);
}

static uint64_t uvarint(const uint8_t **p, const uint8_t *end)
{
	uint64_t v = 0;

	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	*p = end + 1; /* mark failure */
	return 0;
}

/* Finds the Go build info blob: the .go.buildinfo section, or the magic anywhere
 * in a writable segment (binaries whose section headers were removed). */
static const uint8_t *find_buildinfo(const struct gobin *bin, size_t *len)
{
	const struct elf_file *f = bin->elf;
	const uint8_t *p = elf_file_section(f, ".go.buildinfo", NULL, len);

	if (p && *len >= 32 && memcmp(p, buildinfo_magic, 14) == 0)
		return p;
	for (size_t off = 0; off + 32 <= f->size; off += 16) {
		if (memcmp(f->map + off, buildinfo_magic, 14) == 0) {
			*len = f->size - off;
			return f->map + off;
		}
	}
	return NULL;
}

/* Parses the Go build info blob p[0..len) of the binary named path: the Go
 * version into version (32 bytes: "go1.21.13") and *minor, and where the module
 * info is (*mod, *mod_len; NULL when unreadable). Returns 0, or a negative code
 * (GLIMPSE_EUNSUP: a Go binary glimpse cannot read, version then "" when older
 * than Go 1.18). */
static int parse_buildinfo(const uint8_t *p, size_t len, const char *path, char *version, int *minor,
			   const uint8_t **mod, size_t *mod_len)
{
	const uint8_t *q, *end;
	uint64_t n;
	int major;

	version[0] = '\0';
	*mod = NULL;
	*mod_len = 0;
	if (!(p[15] & 2))
		return err_set(GLIMPSE_EUNSUP,
			       "%s: unsupported Go version: built by Go older than 1.18 (supported: go1.18 to go1.26)",
			       path);
	if (p[14] != 8 || (p[15] & 1))
		return err_set(GLIMPSE_EUNSUP, "%s: not a 64-bit little-endian Go binary", path);
	q = p + 32;
	end = p + len;
	n = uvarint(&q, end);
	if (q > end || n > (uint64_t)(end - q) || n >= sizeof(((struct gobin *)0)->go_version))
		return err_set(GLIMPSE_ECORRUPT, "%s: malformed Go build info", path);
	memcpy(version, q, n);
	version[n] = '\0';
	q += n;
	n = uvarint(&q, end);
	if (q <= end && n <= (uint64_t)(end - q)) {
		*mod = q;
		*mod_len = n;
	}
	if (sscanf(version, "go%d.%d", &major, minor) != 2 || major != 1)
		return err_set(GLIMPSE_EUNSUP, "%s: unsupported Go version '%s' (supported: go1.18 to go1.26)", path,
			       version);
	if (*minor < 18 || *minor > 26)
		return err_set(GLIMPSE_EUNSUP, "%s: unsupported Go version %s (supported: go1.18 to go1.26)", path,
			       version);
	return 0;
}

/* Reads the Go version from the build info ("go1.21.13") and sets go_minor. */
static int read_version(struct gobin *bin)
{
	size_t len;
	const uint8_t *p = find_buildinfo(bin, &len);

	if (!p)
		return err_set(GLIMPSE_ENOTGO, "%s: not a Go binary (no Go build info)", bin->path);
	return parse_buildinfo(p, len, bin->path, bin->go_version, &bin->go_minor, &bin->buildinfo_mod,
			       &bin->buildinfo_mod_len);
}

/* n bytes of fd at off, in memory the caller frees (with room for a NUL
 * after them); NULL when fewer could be read. */
static uint8_t *read_at(int fd, uint64_t off, size_t n)
{
	uint8_t *p = xmalloc(n + 1);

	if (pread(fd, p, n, (off_t)off) != (ssize_t)n) {
		free(p);
		return NULL;
	}
	p[n] = '\0';
	return p;
}

#define PEEK_MAX_SECTIONS 1024	     /* more section headers than this: not a Go executable */
#define PEEK_MAX_NAMES	  (64u << 10) /* bytes of section names read at most */
#define PEEK_MAX_NOTE	  4096	     /* bytes of a note section read at most */
#define PEEK_BUILDINFO	  4096	     /* bytes of build info read (the version is near its start) */

int gobin_peek(int fd, const char *path, struct gobin_id *out)
{
	uint8_t *names = NULL, *go = NULL, *gnu = NULL, *info = NULL;
	size_t go_len = 0, gnu_len = 0, info_len = 0, names_len;
	const uint8_t *mod;
	size_t mod_len;
	Elf64_Shdr *sh = NULL;
	bool dwarf = false;
	Elf64_Ehdr eh;
	int rc, minor;

	memset(out, 0, sizeof(*out));
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
		return err_set(GLIMPSE_ENOTGO, "%s: not an ELF executable", path);
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
		return err_set(GLIMPSE_ENOTGO, "%s: not an x86-64 ELF file", path);
	if (eh.e_shentsize != sizeof(Elf64_Shdr) || !eh.e_shnum || eh.e_shnum > PEEK_MAX_SECTIONS ||
	    eh.e_shstrndx >= eh.e_shnum)
		return err_set(GLIMPSE_ENOTGO, "%s: no section headers", path);
	sh = (Elf64_Shdr *)read_at(fd, eh.e_shoff, (size_t)eh.e_shnum * sizeof(*sh));
	names_len = sh ? sh[eh.e_shstrndx].sh_size : 0;
	if (names_len > PEEK_MAX_NAMES)
		names_len = PEEK_MAX_NAMES;
	names = sh ? read_at(fd, sh[eh.e_shstrndx].sh_offset, names_len) : NULL;
	for (size_t i = 0; names && i < eh.e_shnum; i++) {
		const char *name = (const char *)names + sh[i].sh_name;
		size_t n = sh[i].sh_size;

		if (sh[i].sh_name >= names_len || sh[i].sh_type == SHT_NOBITS)
			continue;
		if (!strcmp(name, ".go.buildinfo") && !info) {
			info_len = n < PEEK_BUILDINFO ? n : PEEK_BUILDINFO;
			info = read_at(fd, sh[i].sh_offset, info_len);
		} else if (!strcmp(name, ".note.go.buildid") && !go && n <= PEEK_MAX_NOTE) {
			go = read_at(fd, sh[i].sh_offset, n);
			go_len = go ? n : 0;
		} else if (!strcmp(name, ".note.gnu.build-id") && !gnu && n <= PEEK_MAX_NOTE) {
			gnu = read_at(fd, sh[i].sh_offset, n);
			gnu_len = gnu ? n : 0;
		} else if (!strcmp(name, ".debug_info") || !strcmp(name, ".zdebug_info")) {
			dwarf = true;
		}
	}
	if (!info || info_len < 32 || memcmp(info, buildinfo_magic, 14) != 0) {
		rc = err_set(GLIMPSE_ENOTGO, "%s: not a Go binary (no Go build info)", path);
		goto out;
	}
	rc = parse_buildinfo(info, info_len, path, out->go_version, &minor, &mod, &mod_len);
	if (rc == -GLIMPSE_ECORRUPT)
		rc = -GLIMPSE_EUNSUP;
	build_ids(go, go_len, gnu, gnu_len, out->build_id, NULL);
	out->pie = eh.e_type == ET_DYN;
	out->stripped = !dwarf;
out:
	free(sh);
	free(names);
	free(go);
	free(gnu);
	free(info);
	return rc;
}


/* Words elffile's "F: not an ELF file" as "F: not a Go binary (not an ELF file)";
 * other failures pass unchanged. Returns rc. */
static int not_elf_is_not_go(int rc)
{
	static const char suffix[] = ": not an ELF file";
	char msg[1024];
	size_t n;

	snprintf(msg, sizeof(msg), "%s", err_msg(rc));
	n = strlen(msg);
	if (rc != -GLIMPSE_ENOTGO || n < sizeof(suffix) - 1 || strcmp(msg + n - (sizeof(suffix) - 1), suffix) != 0)
		return rc;
	msg[n - (sizeof(suffix) - 1)] = '\0';
	return err_set(GLIMPSE_ENOTGO, "%s: not a Go binary (not an ELF file)", msg);
}

/* Opens file `path` but names it `name` in the model and in messages. */
static int open_as(const char *path, const char *name, struct gobin **out)
{
	struct gobin *bin = xcalloc(1, sizeof(*bin));
	int rc;

	*out = NULL;
	err_clear();
	bin->path = xstrdup(name);
	rc = elf_file_open(path, name, &bin->elf);
	if (rc)
		rc = not_elf_is_not_go(rc);
	if (!rc)
		rc = read_version(bin);
	if (rc)
		goto fail;
	bin->pie = bin->elf->pie;
	bin->has_symtab = bin->elf->has_symtab;
	read_notes(bin);
	rc = pcln_open(bin->elf, bin->go_minor, &bin->pcln);
	if (rc)
		goto fail;
	pcln_text(bin->pcln, &bin->text_start, &bin->text_end);
	rc = dwarf_load(bin->elf, &bin->dwarf);
	if (rc < 0) {
		/* Broken DWARF is not fatal: carry on as if stripped, but say so. */
		fprintf(stderr, "glimpse: warning: %s: ignoring unreadable DWARF: %s\n", name, err_msg(rc));
		bin->dwarf = NULL;
		err_clear();
	}
	bin->stripped = bin->dwarf == NULL;
	rc = goruntime_load(bin->elf, bin->pcln, bin->dwarf, bin->go_minor, &bin->offsets);
	if (rc)
		goto fail;
	*out = bin;
	return 0;
fail:
	gobin_close(bin);
	return rc;
}

int gobin_open(const char *path, struct gobin **out)
{
	return open_as(path, path, out);
}

int gobin_open_pid(pid_t pid, struct gobin **out)
{
	char link[64], exe[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0) {
		if (errno == ENOENT || errno == ESRCH)
			return err_set(ESRCH, "no process with pid %d", (int)pid);
		return err_set(errno, "cannot read %s: %s", link, strerror(errno));
	}
	exe[n] = '\0';
	/* Open through /proc so a deleted or replaced executable still works. */
	return open_as(link, exe, out);
}

int gobin_bias(const struct gobin *bin, pid_t pid, uint64_t *bias)
{
	char path[64], line[4096];
	struct stat exe;
	FILE *f;
	uint64_t base = 0, first_vaddr = UINT64_MAX, first_off = 0;
	bool found = false;

	*bias = 0;
	if (!bin->pie)
		return 0;
	for (size_t i = 0; i < bin->elf->nloads; i++) {
		if (bin->elf->loads[i].vaddr < first_vaddr) {
			first_vaddr = bin->elf->loads[i].vaddr;
			first_off = bin->elf->loads[i].offset;
		}
	}
	if (first_vaddr == UINT64_MAX)
		return err_set(GLIMPSE_ECORRUPT, "%s: no program headers", bin->path);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &exe) != 0)
		return err_set(ESRCH, "no process with pid %d", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return err_set(ESRCH, "no process with pid %d", (int)pid);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off, inode;
		unsigned int maj, min;

		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &lo, &hi, &off, &maj, &min, &inode) != 6)
			continue;
		if (inode != exe.st_ino || off != (first_off & ~0xfffULL))
			continue;
		base = lo;
		found = true;
		break;
	}
	fclose(f);
	if (!found)
		return err_set(ENOENT, "pid %d: executable mapping not found in /proc/%d/maps", (int)pid, (int)pid);
	*bias = base - (first_vaddr & ~0xfffULL);
	return 0;
}

size_t gobin_footprint(const struct gobin *bin)
{
	const struct elf_file *f = bin->elf;

	return sizeof(*bin) + elf_file_footprint(f) + pcln_footprint(bin->pcln) + dwarf_footprint(bin->dwarf);
}

void gobin_close(struct gobin *bin)
{
	if (!bin)
		return;
	if (bin->dwarf)
		dwarf_free(bin->dwarf);
	if (bin->pcln)
		pcln_close(bin->pcln);
	elf_file_close(bin->elf);
	free(bin->path);
	free(bin);
}
