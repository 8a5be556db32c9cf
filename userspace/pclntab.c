/* pclntab.c - the Go pclntab: function table, pc→file:line, frame sizes (pcsp)
 * and the inline tree, for Go 1.18 to 1.26 on amd64.
 *
 * The pclntab is the runtime's own symbol table and survives stripping. Layout
 * (runtime/symtab.go): a pcHeader, then funcnametab, cutab, filetab, pctab and
 * pclntable (the functab, then the _func records). Everything is read in place
 * from the mapped file and every read is bounds-checked against its sub-table,
 * so a malformed binary yields GLIMPSE_ECORRUPT, never a wild read.
 *
 * Two things live outside the section and are found through the module data
 * (runtime.firstmoduledata, in .go.module since Go 1.26, else .noptrdata; located
 * by its pointer to the pcHeader, a relocation in PIE builds): the start of
 * Go text (pcHeader.textStart is 0 since Go 1.26, and the .text section header
 * is wrong for externally linked binaries) and moduledata.gofunc, the base of
 * funcdata offsets such as the inline tree.
 */
#include "pclntab.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "elffile.h"

#define MAGIC_GO118 0xfffffff0u /* Go 1.18, 1.19 */
#define MAGIC_GO120 0xfffffff1u /* Go 1.20 and later */
#define HEADER_SIZE 72		/* pcHeader on 64-bit targets */

#define PCDATA_INLTREEINDEX 2
#define FUNCDATA_INLTREE    3

/* runtime.moduledata field offsets on amd64 (checked against DWARF of 1.19-1.26). */
#define MD_FUNCNAMETAB	8
#define MD_CUTAB	32
#define MD_FILETAB	56
#define MD_PCTAB	80
#define MD_PCLNTABLE	104
#define MD_FTAB		128
#define MD_TEXT		176
#define MD_GOFUNC_GO118 304 /* no covctrs/ecovctrs before 1.20 */
#define MD_GOFUNC_GO120 320

/* A sub-table of the section: [off, off + len). */
struct span {
	size_t off;
	size_t len;
};

struct pcln {
	const struct elf_file *elf;
	int go_minor; /* 19 for go1.19: FuncID numbering */
	const uint8_t *tab; /* the section; the pcHeader is at tab[0] */
	size_t len;
	uint64_t addr; /* link-time address of the pcHeader */
	bool go120;    /* magic 0xfffffff1: _func.startLine, new inlinedCall */
	uint8_t minlc;
	struct span funcnames, cutab, filetab, pctab, pclntable;
	size_t names_end; /* names starting before this offset are NUL-terminated */
	size_t files_end; /* same for filetab */
	size_t nfiles;
	uint64_t gofunc; /* moduledata.gofunc, 0 if unknown (no inline frames) */
	uint64_t text_start, text_end; /* Go text: from the module data, end of the last function */
	struct gofunc *funcs;
	size_t nfuncs;
	uint32_t *byname; /* hash of name → index + 1, built by the first pcln_lookup */
	size_t nbuckets;
};

/* The parts of a _func record that the pcvalue queries need. */
struct funcinfo {
	uint32_t pcsp, pcfile, pcln, npcdata, cu_offset;
	uint8_t nfuncdata;
	const uint8_t *tables; /* npcdata uint32 pcdata offsets, then nfuncdata funcdata offsets */
};

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static bool span_has(const struct span *s, uint64_t off, uint64_t n)
{
	return off <= s->len && n <= s->len - off;
}

static const uint8_t *span_at(const struct pcln *p, const struct span *s, size_t off)
{
	return p->tab + s->off + off;
}

/* Offset just past the last NUL in s: every string starting before it is terminated. */
static size_t terminated_end(const struct pcln *p, const struct span *s)
{
	const uint8_t *nul = memrchr(span_at(p, s, 0), 0, s->len);

	return nul ? (size_t)(nul - span_at(p, s, 0)) + 1 : 0;
}

static const char *funcname_at(const struct pcln *p, int64_t nameoff)
{
	if (nameoff < 0 || (uint64_t)nameoff >= p->names_end)
		return NULL;
	return (const char *)span_at(p, &p->funcnames, nameoff);
}

static int parse_header(struct pcln *p)
{
	const uint8_t *h = p->tab;
	uint64_t off[5], nfunc;
	struct span *spans[5] = {&p->funcnames, &p->cutab, &p->filetab, &p->pctab, &p->pclntable};
	uint32_t magic;

	if (p->len < HEADER_SIZE || p->len > UINT32_MAX)
		return err_set(GLIMPSE_ECORRUPT, "pclntab: bad section size (%zu bytes)", p->len);
	magic = le32(h);
	if ((magic & 0xfffffff0u) != 0xfffffff0u)
		return err_set(GLIMPSE_ECORRUPT, "pclntab: bad magic 0x%x", magic);
	if (magic != MAGIC_GO118 && magic != MAGIC_GO120)
		return err_set(GLIMPSE_EUNSUP,
			       "unsupported Go version: pclntab magic 0x%x "
			       "(0xfffffffa: Go 1.16/1.17, 0xfffffffb: Go 1.2-1.15; glimpse reads "
			       "Go 1.18 to 1.26)",
			       magic);
	if (h[4] || h[5] || (h[6] != 1 && h[6] != 2 && h[6] != 4))
		return err_set(GLIMPSE_ECORRUPT, "pclntab: bad header");
	if (h[7] != 8)
		return err_set(GLIMPSE_EUNSUP, "pclntab: pointer size %u (only 64-bit is supported)", h[7]);
	p->go120 = magic == MAGIC_GO120;
	p->minlc = h[6];
	nfunc = le64(h + 8);
	p->nfiles = le64(h + 16);
	for (int i = 0; i < 5; i++)
		off[i] = le64(h + 32 + 8 * i);
	/* The sub-tables follow each other in this order; each ends where the next starts. */
	for (int i = 0; i < 5; i++) {
		uint64_t end = i < 4 ? off[i + 1] : p->len;

		if (off[i] < HEADER_SIZE || off[i] > end || end > p->len)
			return err_set(GLIMPSE_ECORRUPT, "pclntab: bad table offsets in header");
		spans[i]->off = off[i];
		spans[i]->len = end - off[i];
	}
	if (nfunc == 0 || !span_has(&p->pclntable, 0, (nfunc + 1) * 8) || nfunc > UINT32_MAX)
		return err_set(GLIMPSE_ECORRUPT, "pclntab: bad function count %llu", (unsigned long long)nfunc);
	p->nfuncs = nfunc;
	p->names_end = terminated_end(p, &p->funcnames);
	p->files_end = terminated_end(p, &p->filetab);
	return 0;
}

/* Checks that a candidate address holds runtime.firstmoduledata: its slices must
 * point at this pclntab's sub-tables. */
static bool moduledata_matches(const struct pcln *p, uint64_t md)
{
	const struct {
		int field;
		size_t off;
	} checks[] = {
	    {0, 0}, /* pcHeader */
	    {MD_FUNCNAMETAB, p->funcnames.off},
	    {MD_CUTAB, p->cutab.off},
	    {MD_FILETAB, p->filetab.off},
	    {MD_PCTAB, p->pctab.off},
	    {MD_PCLNTABLE, p->pclntable.off},
	    {MD_FTAB, p->pclntable.off},
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		if (elf_file_read_ptr(p->elf, md + checks[i].field, &v) || v != p->addr + checks[i].off)
			return false;
	return true;
}

/* Non-PIE: the module data holds the pcHeader address as a plain pointer. */
static uint64_t scan_data(const struct pcln *p, const char *section)
{
	const uint8_t *data;
	uint64_t addr;
	size_t len;

	data = elf_file_section(p->elf, section, &addr, &len);
	if (!data)
		return 0;
	for (size_t i = (8 - addr % 8) % 8; i + 8 <= len; i += 8)
		if (le64(data + i) == p->addr && moduledata_matches(p, addr + i))
			return addr + i;
	return 0;
}

/* PIE: the pointer is an R_X86_64_RELATIVE relocation whose addend is the pcHeader. */
static uint64_t scan_relocs(const struct pcln *p, const char *section)
{
	const uint8_t *rela;
	uint64_t addr;
	size_t len;

	rela = elf_file_section(p->elf, section, &addr, &len);
	if (!rela)
		return 0;
	for (size_t i = 0; i + sizeof(Elf64_Rela) <= len; i += sizeof(Elf64_Rela)) {
		Elf64_Rela r;

		memcpy(&r, rela + i, sizeof(r));
		if (ELF64_R_TYPE(r.r_info) == R_X86_64_RELATIVE && (uint64_t)r.r_addend == p->addr &&
		    moduledata_matches(p, r.r_offset))
			return r.r_offset;
	}
	return 0;
}

static uint64_t find_moduledata(const struct pcln *p)
{
	static const char *const data[] = {".go.module", ".noptrdata", ".data", ".data.rel.ro"};
	static const char *const relocs[] = {".rela.dyn", ".rela"};
	uint64_t md;

	for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++)
		if ((md = scan_data(p, data[i])))
			return md;
	for (size_t i = 0; i < sizeof(relocs) / sizeof(relocs[0]); i++)
		if ((md = scan_relocs(p, relocs[i])))
			return md;
	return 0;
}

/* Sets text_start and gofunc from the module data, falling back to pcHeader.textStart. */
static int find_text(struct pcln *p, uint64_t *text)
{
	uint64_t md = find_moduledata(p), hdr_text = 0;
	int rc;

	if (md) {
		rc = elf_file_read_ptr(p->elf, md + MD_TEXT, text);
		if (!rc)
			rc = elf_file_read_ptr(p->elf, md + (p->go120 ? MD_GOFUNC_GO120 : MD_GOFUNC_GO118), &p->gofunc);
		if (rc)
			return err_wrap(rc, "reading runtime.firstmoduledata");
		return 0;
	}
	/* No module data: text start from the header (0 since Go 1.26), no inline tree. */
	rc = elf_file_read_ptr(p->elf, p->addr + 24, &hdr_text);
	if (rc || !hdr_text)
		return err_set(GLIMPSE_ECORRUPT, "pclntab: cannot find the start of Go text "
						 "(runtime.firstmoduledata not found)");
	*text = hdr_text;
	return 0;
}

static size_t func_header_size(const struct pcln *p)
{
	return p->go120 ? 44 : 40;
}

/* Fills p->funcs from the functab: entry, end, name and _func offset of each function. */
static int load_funcs(struct pcln *p, uint64_t text)
{
	const uint8_t *ftab = span_at(p, &p->pclntable, 0);
	size_t hsize = func_header_size(p);
	uint32_t prev = 0;

	p->funcs = xcalloc(p->nfuncs, sizeof(*p->funcs));
	for (size_t i = 0; i <= p->nfuncs; i++) {
		uint32_t entryoff = le32(ftab + 8 * i), funcoff = le32(ftab + 8 * i + 4);
		struct gofunc *f = &p->funcs[i];

		if (entryoff < prev)
			return err_set(GLIMPSE_ECORRUPT, "pclntab: function table not sorted at %zu", i);
		prev = entryoff;
		if (i > 0)
			p->funcs[i - 1].end = text + entryoff;
		if (i == p->nfuncs)
			break;
		if (!span_has(&p->pclntable, funcoff, hsize))
			return err_set(GLIMPSE_ECORRUPT, "pclntab: bad _func offset 0x%x", funcoff);
		f->entry = text + entryoff;
		f->funcoff = p->pclntable.off + funcoff;
		f->name = funcname_at(p, (int32_t)le32(p->tab + f->funcoff + 4));
		f->funcid = p->tab[f->funcoff + hsize - 4];
		if (!f->name)
			return err_set(GLIMPSE_ECORRUPT, "pclntab: bad name of function %zu", i);
	}
	return 0;
}

/* Parses the pclntab of elf (located via .gopclntab / .data.rel.ro.gopclntab),
 * built by go1.<go_minor>, and finds the module data. On success *out is owned by the caller
 * (pcln_close) and reads elf, which must outlive it. Returns 0 or a negative code. */
int pcln_open(const struct elf_file *elf, int go_minor, struct pcln **out)
{
	struct pcln *p = xcalloc(1, sizeof(*p));
	uint64_t text = 0;
	int rc;

	p->elf = elf;
	p->go_minor = go_minor;
	p->tab = elf_file_section(elf, ".gopclntab", &p->addr, &p->len);
	if (!p->tab)
		p->tab = elf_file_section(elf, ".data.rel.ro.gopclntab", &p->addr, &p->len);
	if (!p->tab) {
		rc = err_set(GLIMPSE_ENOTGO, "no .gopclntab section");
		goto fail;
	}
	rc = parse_header(p);
	if (!rc)
		rc = find_text(p, &text);
	if (!rc)
		rc = load_funcs(p, text);
	if (rc)
		goto fail;
	p->text_start = text;
	p->text_end = p->funcs[p->nfuncs - 1].end;
	*out = p;
	return 0;
fail:
	pcln_close(p);
	return err_wrap(rc, "%s", elf->path);
}

/* Start of Go text and the end of its last function, as link-time addresses. */
void pcln_text(const struct pcln *p, uint64_t *start, uint64_t *end)
{
	*start = p->text_start;
	*end = p->text_end;
}

/* Frees p (not the file it reads). NULL is fine. */
void pcln_close(struct pcln *p)
{
	if (!p)
		return;
	free(p->funcs);
	free(p->byname);
	free(p);
}

/* Number of functions in the table. */
size_t pcln_nfuncs(const struct pcln *p)
{
	return p->nfuncs;
}

/* The i-th function in entry order, or NULL when i is out of range. */
const struct gofunc *pcln_func(const struct pcln *p, size_t i)
{
	return i < p->nfuncs ? &p->funcs[i] : NULL;
}

/* The function whose [entry, end) holds pc, or NULL. */
const struct gofunc *pcln_find(const struct pcln *p, uint64_t pc)
{
	size_t lo = 0, hi = p->nfuncs;

	if (!p->nfuncs || pc < p->funcs[0].entry || pc >= p->funcs[p->nfuncs - 1].end)
		return NULL;
	/* Last function with entry <= pc. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->funcs[mid].entry <= pc)
			lo = mid;
		else
			hi = mid;
	}
	return pc < p->funcs[lo].end ? &p->funcs[lo] : NULL;
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* Builds the open-addressed table of index + 1 (twice as many buckets as
 * functions) and returns it. The first function (lowest entry) wins for
 * duplicate names. */
static const uint32_t *build_name_index(struct pcln *p)
{
	size_t n = 2;

	while (n < 2 * p->nfuncs)
		n *= 2;
	p->byname = xcalloc(n, sizeof(*p->byname));
	p->nbuckets = n;
	for (size_t i = 0; i < p->nfuncs; i++) {
		size_t b = name_hash(p->funcs[i].name) & (n - 1);

		while (p->byname[b] && strcmp(p->funcs[p->byname[b] - 1].name, p->funcs[i].name))
			b = (b + 1) & (n - 1);
		if (!p->byname[b])
			p->byname[b] = i + 1;
	}
	return p->byname;
}

/* The function named exactly name, or NULL. The first call builds an index
 * (not thread-safe: make one call before sharing p between threads). */
const struct gofunc *pcln_lookup(const struct pcln *p, const char *name)
{
	const uint32_t *idx = p->byname ? p->byname : build_name_index((struct pcln *)p);
	size_t mask = p->nbuckets - 1;

	for (size_t b = name_hash(name) & mask; idx[b]; b = (b + 1) & mask) {
		const struct gofunc *f = &p->funcs[idx[b] - 1];

		if (!strcmp(f->name, name))
			return f;
	}
	return NULL;
}

static int func_info(const struct pcln *p, const struct gofunc *f, struct funcinfo *fi)
{
	size_t hsize = func_header_size(p);
	const uint8_t *h;
	struct span all = {0, p->len};

	*fi = (struct funcinfo){0};
	if (!span_has(&all, f->funcoff, hsize))
		goto bad;
	h = p->tab + f->funcoff;
	fi->pcsp = le32(h + 16);
	fi->pcfile = le32(h + 20);
	fi->pcln = le32(h + 24);
	fi->npcdata = le32(h + 28);
	fi->cu_offset = le32(h + 32);
	fi->nfuncdata = h[hsize - 1];
	fi->tables = h + hsize;
	if (!span_has(&all, f->funcoff + hsize, 4 * ((uint64_t)fi->npcdata + fi->nfuncdata)))
		goto bad;
	return 0;
bad:
	return err_set(GLIMPSE_ECORRUPT, "pclntab: bad _func record of %s", f->name);
}

static uint32_t pcdata_off(const struct funcinfo *fi, uint32_t i)
{
	return i < fi->npcdata ? le32(fi->tables + 4 * i) : 0;
}

static uint32_t funcdata_off(const struct funcinfo *fi, uint32_t i)
{
	return i < fi->nfuncdata ? le32(fi->tables + 4 * ((size_t)fi->npcdata + i)) : UINT32_MAX;
}

/* Reads a uint32 varint at *pos (bounded by end); returns false past the end. */
static bool read_varint(const uint8_t *tab, size_t *pos, size_t end, uint32_t *v)
{
	uint32_t val = 0;

	for (int shift = 0; shift < 35; shift += 7) {
		uint8_t b;

		if (*pos >= end)
			return false;
		b = tab[(*pos)++];
		val |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = val;
			return true;
		}
	}
	return false;
}

/* Evaluates the pcvalue table at pctab offset off for pc in the function starting
 * at entry (runtime.pcvalue): sets *val, -1 when the table has no entry for pc. */
static int pcvalue(const struct pcln *p, uint32_t off, uint64_t entry, uint64_t pc, int32_t *val)
{
	size_t pos = p->pctab.off + off, end = p->pctab.off + p->pctab.len;
	uint64_t cur = entry;
	uint32_t v = UINT32_MAX; /* -1, in unsigned arithmetic: damaged tables must not overflow */

	*val = -1;
	if (off == 0)
		return 0;
	if (off >= p->pctab.len)
		return err_set(GLIMPSE_ECORRUPT, "pclntab: pcvalue table offset 0x%x out of range", off);
	for (bool first = true;; first = false) {
		uint32_t uv, pcdelta;

		if (pos >= end)
			break;
		if (p->tab[pos] == 0 && !first)
			return 0;
		if (!read_varint(p->tab, &pos, end, &uv) || !read_varint(p->tab, &pos, end, &pcdelta))
			break;
		v += -(uv & 1) ^ (uv >> 1);
		cur += (uint64_t)pcdelta * p->minlc;
		if (pc < cur) {
			*val = (int32_t)v;
			return 0;
		}
	}
	return err_set(GLIMPSE_ECORRUPT, "pclntab: truncated pcvalue table at 0x%x", off);
}

/* The file of fileno in f's compilation unit: "" when there is none (fileno < 0 or
 * a cutab hole), NULL when the tables are malformed. */
static const char *file_name(const struct pcln *p, const struct funcinfo *fi, int32_t fileno)
{
	uint64_t idx = (uint64_t)fi->cu_offset + (uint32_t)fileno;
	uint32_t off;

	if (fileno < 0)
		return "";
	if (!span_has(&p->cutab, idx * 4, 4))
		return NULL;
	off = le32(span_at(p, &p->cutab, idx * 4));
	if (off == UINT32_MAX)
		return "";
	if (off >= p->files_end)
		return NULL;
	return (const char *)span_at(p, &p->filetab, off);
}

static int fileline(const struct pcln *p, const struct gofunc *f, const struct funcinfo *fi, uint64_t pc,
		    const char **file, int *line)
{
	const char *name;
	int32_t fileno, ln;
	int rc;

	rc = pcvalue(p, fi->pcfile, f->entry, pc, &fileno);
	if (!rc)
		rc = pcvalue(p, fi->pcln, f->entry, pc, &ln);
	if (rc)
		return rc;
	name = file_name(p, fi, fileno);
	if (!name)
		return err_set(GLIMPSE_ECORRUPT, "pclntab: bad file number %d in %s", fileno, f->name);
	*file = name;
	*line = ln;
	return 0;
}

/* File and line of pc in f, the innermost inlined position, exactly as `go tool
 * addr2line` prints them: where the tables say nothing about pc (the padding
 * after a function's last instruction) *file is "" and *line is -1. *file points
 * into the mapped binary. Returns 0 or a negative code for malformed tables;
 * *file and *line are only written on success. */
int pcln_fileline(const struct pcln *p, const struct gofunc *f, uint64_t pc, const char **file, int *line)
{
	struct funcinfo fi;
	int rc;

	rc = func_info(p, f, &fi);
	if (rc)
		return rc;
	return fileline(p, f, &fi, pc, file, line);
}

/* Bytes pushed by f at pc, excluding the return address (pcsp table). Returns the
 * delta (>= 0) or a negative code. */
int pcln_spdelta(const struct pcln *p, const struct gofunc *f, uint64_t pc)
{
	struct funcinfo fi;
	int32_t sp;
	int rc;

	rc = func_info(p, f, &fi);
	if (!rc)
		rc = pcvalue(p, fi.pcsp, f->entry, pc, &sp);
	if (rc)
		return rc;
	if (sp < 0)
		return err_set(GLIMPSE_ECORRUPT, "pclntab: no frame size for pc 0x%llx in %s", (unsigned long long)pc,
			       f->name);
	return sp;
}

/* Name and parentPc of entry ix of the inline tree at inltree. */
static int inlined_call(const struct pcln *p, uint64_t inltree, int32_t ix, const char **name, int32_t *parent_pc,
			uint8_t *funcid)
{
	uint8_t ic[20];
	size_t size = p->go120 ? 16 : 20;
	int rc;

	rc = elf_file_read(p->elf, inltree + (uint64_t)ix * size, ic, size);
	if (rc)
		return err_wrap(rc, "reading inline tree entry %d", ix);
	/* 1.20+: funcID, _[3], nameOff, parentPc, startLine.
	 * 1.18/1.19: parent, funcID, _, file, line, func_ (name offset), parentPc. */
	*name = funcname_at(p, (int32_t)le32(ic + (p->go120 ? 4 : 12)));
	*parent_pc = (int32_t)le32(ic + (p->go120 ? 8 : 16));
	*funcid = ic[p->go120 ? 0 : 2];
	if (!*name)
		return err_set(GLIMPSE_ECORRUPT, "pclntab: bad inline tree entry %d", ix);
	return 0;
}

/* Inline frames of pc in f, innermost first; the last frame written is f itself
 * unless max cuts the expansion short. The file:line of an outer frame is that of
 * its call site (the inlined call's parentPc), as runtime tracebacks show it.
 * Without the module data (gofunc unknown) only f's own frame is produced.
 * Returns the number of frames written or a negative code. */
int pcln_frames(const struct pcln *p, const struct gofunc *f, uint64_t pc, struct pcln_frame *out, int max)
{
	struct funcinfo fi;
	uint64_t inltree = 0;
	uint32_t inloff;
	int n = 0, rc;

	rc = func_info(p, f, &fi);
	if (rc)
		return rc;
	inloff = funcdata_off(&fi, FUNCDATA_INLTREE);
	if (p->gofunc && inloff != UINT32_MAX && pcdata_off(&fi, PCDATA_INLTREEINDEX))
		inltree = p->gofunc + inloff;
	while (n < max) {
		struct pcln_frame *fr = &out[n++];
		int32_t ix = -1, parent_pc = 0;

		rc = fileline(p, f, &fi, pc, &fr->file, &fr->line);
		if (!rc && inltree)
			rc = pcvalue(p, pcdata_off(&fi, PCDATA_INLTREEINDEX), f->entry, pc, &ix);
		if (rc)
			return rc;
		fr->func = f->name;
		fr->funcid = f->funcid;
		fr->inlined = ix >= 0;
		if (ix < 0)
			break;
		rc = inlined_call(p, inltree, ix, &fr->func, &parent_pc, &fr->funcid);
		if (rc)
			return rc;
		pc = f->entry + (uint32_t)parent_pc;
	}
	return n;
}

bool pcln_is_wrapper(const struct pcln *p, uint8_t funcid)
{
	/* abi.FuncIDWrapper is the last FuncID; the list grew in 1.22 (corostart)
	 * and 1.25 (runCleanups). */
	int minor = p->go_minor;

	return funcid == (minor >= 25 ? 23 : minor >= 22 ? 22 : 21);
}

size_t pcln_footprint(const struct pcln *p)
{
	return sizeof(*p) + (p->nfuncs + 1) * sizeof(*p->funcs) + p->nbuckets * sizeof(*p->byname);
}

/* Number of entries in the file table (pcHeader.nfiles). */
size_t pcln_nfiles(const struct pcln *p)
{
	return p->nfiles;
}
