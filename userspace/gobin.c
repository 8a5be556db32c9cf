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
static void read_notes(struct gobin *bin)
{
	size_t len;
	const uint8_t *p = elf_file_note(bin->elf, ".note.go.buildid", "Go", 4, &len);

	if (p) {
		size_t n = len < sizeof(bin->build_id) - 1 ? len : sizeof(bin->build_id) - 1;

		memcpy(bin->build_id, p, n);
		bin->build_id[n] = '\0';
	}
	p = elf_file_note(bin->elf, ".note.gnu.build-id", "GNU", NT_GNU_BUILD_ID, &len);
	for (size_t i = 0; p && i < len && 2 * i + 2 < sizeof(bin->gnu_build_id); i++)
		sprintf(bin->gnu_build_id + 2 * i, "%02x", p[i]);
	if (!bin->build_id[0])
		snprintf(bin->build_id, sizeof(bin->build_id), "%s", bin->gnu_build_id);
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

/* Reads the Go version from the build info ("go1.21.13") and sets go_minor. */
static int read_version(struct gobin *bin)
{
	size_t len;
	const uint8_t *p = find_buildinfo(bin, &len), *q, *end;
	uint64_t n;
	int major, minor;

	if (!p)
		return err_set(GLIMPSE_ENOTGO, "%s: not a Go binary (no Go build info)", bin->path);
	if (!(p[15] & 2))
		return err_set(GLIMPSE_EUNSUP,
			       "%s: unsupported Go version: built by Go older than 1.18 (supported: go1.18 to go1.26)",
			       bin->path);
	if (p[14] != 8 || (p[15] & 1))
		return err_set(GLIMPSE_EUNSUP, "%s: not a 64-bit little-endian Go binary", bin->path);
	q = p + 32;
	end = p + len;
	n = uvarint(&q, end);
	if (q > end || n > (uint64_t)(end - q) || n >= sizeof(bin->go_version))
		return err_set(GLIMPSE_ECORRUPT, "%s: malformed Go build info", bin->path);
	memcpy(bin->go_version, q, n);
	bin->go_version[n] = '\0';
	q += n;
	n = uvarint(&q, end);
	if (q <= end && n <= (uint64_t)(end - q)) {
		bin->buildinfo_mod = q;
		bin->buildinfo_mod_len = n;
	}
	if (sscanf(bin->go_version, "go%d.%d", &major, &minor) != 2 || major != 1)
		return err_set(GLIMPSE_EUNSUP, "%s: unsupported Go version '%s' (supported: go1.18 to go1.26)",
			       bin->path, bin->go_version);
	if (minor < 18 || minor > 26)
		return err_set(GLIMPSE_EUNSUP, "%s: unsupported Go version %s (supported: go1.18 to go1.26)",
			       bin->path, bin->go_version);
	bin->go_minor = minor;
	return 0;
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
