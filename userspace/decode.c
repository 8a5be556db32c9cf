/* decode.c - Go values to JSON: walks a value's DWARF type over its bytes and
 * follows strings, slices, pointers, interfaces, maps, channels and funcs into
 * the target's memory through the caller's reader.
 *
 * Every read is bounded (max_bytes per top-level value) and may fail; a failed
 * read becomes {"error":"unreadable 0x..."} for that sub-value only. Maps are
 * walked in both runtime layouts: the classic hash map (hmap + buckets, Go 1.19
 * to 1.23) and the swiss tables of internal/runtime/maps (Go 1.24+). Dynamic
 * types of interfaces come from the runtime type descriptor (its name through
 * nameOff, then the DWARF type of that name, checked against its runtime address).
 * The JSON shapes are described in decode.h.
 */
#include "decode.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dwarf.h"
#include "err.h"
#include "gobin.h"
#include "json.h"
#include "pclntab.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, starts every truncation mark */

#define MAP_SLOTS	   8	/* slots per classic bucket and per swiss group */
#define MAP_MAX_INLINE	   128	/* bigger keys/elems are stored through a pointer */
#define TOPHASH_MIN	   5	/* classic: smaller tophash values mark empty/evacuated cells */
#define SWISS_CTRL_EMPTY   0x80 /* swiss: the high bit marks empty and deleted slots */
#define MAX_OVERFLOW_CHAIN 1024
#define MAX_SWISS_DIR	   (1u << 20)
#define MAX_TYPE_NAME	   1024
#define USER_ADDR_END	   (1ull << 56) /* x86-64 user space ends below, even with 5-level paging */

/* Runtime type descriptor (internal/abi.Type, runtime._type): the same layout
 * from Go 1.19 to 1.26 on 64-bit. */
enum {
	RT_SIZE = 0,
	RT_TFLAG = 20,
	RT_KIND = 23,
	RT_STR = 40,
	RT_HDR = 48,
	RT_PTR_ELEM = 48, /* PtrType.Elem */
	RT_TFLAG_UNCOMMON = 1 << 0,
	RT_TFLAG_EXTRA_STAR = 1 << 1,
	RT_DIRECT_IFACE = 1 << 5, /* in Kind before 1.26, in TFlag since */
	RT_KIND_MASK = 0x1f,
};

/* abi.Kind values used here. */
enum {
	RTK_BOOL = 1,
	RTK_INT = 2, /* .. RTK_INT64: int, int8, int16, int32, int64 */
	RTK_INT64 = 6,
	RTK_UINT = 7, /* .. uint64, then uintptr */
	RTK_UINTPTR = 12,
	RTK_FLOAT32 = 13,
	RTK_FLOAT64 = 14,
	RTK_COMPLEX64 = 15,
	RTK_COMPLEX128 = 16,
	RTK_ARRAY = 17,
	RTK_CHAN = 18,
	RTK_FUNC = 19,
	RTK_INTERFACE = 20,
	RTK_MAP = 21,
	RTK_PTR = 22,
	RTK_SLICE = 23,
	RTK_STRING = 24,
	RTK_STRUCT = 25,
	RTK_UNSAFEPTR = 26,
};

/* Offsets in the runtime structures read here: the same in every supported
 * version (checked against each version's source). */
enum {
	/* runtime.hmap: the classic map header, Go 1.19 to 1.23 */
	HMAP_COUNT = 0,
	HMAP_FLAGS = 8,
	HMAP_B = 9,
	HMAP_BUCKETS = 16,
	HMAP_OLDBUCKETS = 24,
	HMAP_SIZE = 48,
	HMAP_SAME_SIZE_GROW = 8, /* flag: growing to the same number of buckets */
	/* internal/runtime/maps.Map: the swiss map header, Go 1.24+ */
	SMAP_USED = 0,
	SMAP_DIRPTR = 16,
	SMAP_DIRLEN = 24,
	SMAP_SIZE = 48,
	/* internal/runtime/maps.table */
	STABLE_GROUPS = 16, /* groups.data */
	STABLE_MASK = 24,   /* groups.lengthMask */
	STABLE_SIZE = 32,
	/* runtime.hchan */
	HCHAN_QCOUNT = 0,
	HCHAN_DATAQSIZ = 8,
	HCHAN_CLOSED = 28,
	HCHAN_SIZE = 32,
	/* runtime.itab / internal/abi.ITab */
	ITAB_TYPE = 8,
};

static void dec(struct decoder *d, const struct gotype *t, const uint8_t *p, size_t avail, uint64_t addr,
		unsigned int depth, struct json *j);

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* A little-endian signed integer of size 1, 2, 4 or 8 bytes. */
static int64_t rd_int(const uint8_t *p, uint64_t size)
{
	int8_t i8;
	int16_t i16;
	int32_t i32;

	switch (size) {
	case 1:
		memcpy(&i8, p, 1);
		return i8;
	case 2:
		memcpy(&i16, p, 2);
		return i16;
	case 4:
		memcpy(&i32, p, 4);
		return i32;
	default:
		return (int64_t)rd64(p);
	}
}

static uint64_t rd_uint(const uint8_t *p, uint64_t size)
{
	uint64_t v = 0;

	memcpy(&v, p, size < 8 ? size : 8);
	return v;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return a > 1 ? (v + a - 1) / a * a : v;
}

void decode_limits_default(struct decode_limits *l)
{
	l->max_string = 256;
	l->max_depth = 4;
	l->max_entries = 16;
	l->max_bytes = 64 << 10;
}

void decoder_init(struct decoder *d, const struct gobin *bin, mem_read_fn read, void *ctx, uint64_t bias)
{
	uint64_t addr = 0;

	memset(d, 0, sizeof(*d));
	d->bin = bin;
	d->read = read;
	d->ctx = ctx;
	d->bias = bias;
	decode_limits_default(&d->lim);
	d->types_base = elf_file_symbol(bin->elf, "runtime.types", NULL);
	if (!d->types_base && elf_file_section(bin->elf, bin->pie ? ".data.rel.ro" : ".rodata", &addr, NULL))
		d->types_base = addr;
	d->swiss = bin->go_minor >= 24;
}

/* ---- reading ---- */

/* Could [addr, addr + n) be user memory? Garbage pointers (torn reads, dead
 * objects) are turned away here, before any reader sees them. */
static bool user_range(uint64_t addr, size_t n)
{
	return addr && addr < USER_ADDR_END && n <= USER_ADDR_END - addr;
}

/* Reads n bytes of the value at run-time addr, within the byte budget.
 * Returns 0, -E2BIG (budget spent: marks the value truncated) or -EFAULT. */
static int fetch(struct decoder *d, uint64_t addr, void *dst, size_t n)
{
	if (n > d->lim.max_bytes - d->used) {
		d->truncated = true;
		return -E2BIG;
	}
	d->used += n;
	if (!user_range(addr, n))
		return -EFAULT;
	switch (d->read(d->ctx, addr, dst, n)) {
	case 0:
		return 0;
	case -ENODATA:
		d->truncated = true;
		return -ENODATA;
	default:
		return -EFAULT;
	}
}

/* For a struct or array target that fetch() could not read whole: reads the
 * prefix of its n bytes at addr that the reader holds (a capture copies a fixed
 * number of bytes behind an interface's data word), refunding the rest of the
 * budget. Returns the bytes read into dst, 0 if none. */
static size_t fetch_prefix(struct decoder *d, const struct gotype *t, uint64_t addr, void *dst, size_t n)
{
	size_t m;

	if (!d->readable || (t->kind != GT_STRUCT && t->kind != GT_ARRAY))
		return 0;
	m = d->readable(d->ctx, addr, n);
	if (!m || m >= n || d->read(d->ctx, addr, dst, m) < 0)
		return 0;
	d->used -= n - m;
	d->truncated = true;
	return m;
}

/* Reads runtime type metadata at run-time addr: from the file image when it is
 * static (no syscall, works on captures too), else from the target. Pointer
 * fields must be read with meta_ptr. Not counted in the budget. */
static int meta_read(struct decoder *d, uint64_t addr, void *dst, size_t n)
{
	if (addr >= d->bias && elf_file_read(d->bin->elf, addr - d->bias, dst, n) == 0)
		return 0;
	err_clear();
	return user_range(addr, n) && d->read(d->ctx, addr, dst, n) == 0 ? 0 : -EFAULT;
}

static int meta_ptr(struct decoder *d, uint64_t addr, uint64_t *val)
{
	if (!user_range(addr, 8))
		return -EFAULT;
	if (d->read(d->ctx, addr, val, 8) == 0)
		return 0;
	if (addr < d->bias || elf_file_read_ptr(d->bin->elf, addr - d->bias, val) < 0) {
		err_clear();
		return -EFAULT;
	}
	if (*val)
		*val += d->bias;
	return 0;
}

/* ---- small emitters ---- */

static void put_hex(struct json *j, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "0x%" PRIx64, v);
	json_str(j, s);
}

static void put_ptr(struct json *j, uint64_t addr)
{
	json_obj(j);
	json_key(j, "ptr");
	put_hex(j, addr);
	json_end(j);
}

static void put_unreadable(struct json *j, uint64_t addr)
{
	char s[48];

	snprintf(s, sizeof(s), "unreadable 0x%" PRIx64, addr);
	json_obj(j);
	json_kv_str(j, "error", s);
	json_end(j);
}

/* What stands for a value fetch() failed (rc) to read at addr: {"ptr": ...}
 * when the byte budget is spent or the reader does not hold those bytes (a
 * capture that did not copy them), else {"error": "unreadable ..."}. */
static void put_missing(struct json *j, uint64_t addr, int rc)
{
	if (rc == -E2BIG || rc == -ENODATA)
		put_ptr(j, addr);
	else
		put_unreadable(j, addr);
}

/* fetch() for a value decoded in place: on failure writes what stands for it
 * (put_missing) and returns false. */
static bool fetch_or_mark(struct decoder *d, struct json *j, uint64_t addr, void *dst, size_t n)
{
	int rc = fetch(d, addr, dst, n);

	if (rc < 0)
		put_missing(j, addr, rc);
	return rc == 0;
}

static void put_error(struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_error(struct json *j, const char *fmt, ...)
{
	char s[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	json_obj(j);
	json_kv_str(j, "error", s);
	json_end(j);
}

/* "…+N": what stands for N elements, entries or bytes left out. */
static void put_more(struct json *j, uint64_t n)
{
	char s[32];

	snprintf(s, sizeof(s), ELLIPSIS "+%" PRIu64, n);
	json_str(j, s);
}

/* The shortest text that reads back as the same float (Go's %v does the same). */
static void put_float(struct json *j, double v, bool single)
{
	char s[40];

	if (isnan(v) || isinf(v)) {
		json_double(j, v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		double back;

		snprintf(s, sizeof(s), "%.*g", prec, v);
		back = strtod(s, NULL);
		if (single ? (float)back == (float)v : back == v)
			break;
	}
	json_raw(j, s);
}

/* ---- types ---- */

static uint64_t type_align(const struct gotype *t)
{
	uint64_t a = 1;

	if (!t)
		return 1;
	switch (t->kind) {
	case GT_BOOL:
	case GT_INT:
	case GT_UINT:
	case GT_FLOAT:
		return t->size ? t->size : 1;
	case GT_COMPLEX:
		return t->size / 2;
	case GT_ARRAY:
		return type_align(t->elem);
	case GT_STRUCT:
		for (int i = 0; i < t->nfields; i++) {
			uint64_t fa = type_align(t->fields[i].type);

			if (fa > a)
				a = fa;
		}
		return a;
	case GT_UNKNOWN:
		for (a = 8; a > 1 && t->size % a; a /= 2)
			;
		return a;
	default:
		return 8;
	}
}

/* Bytes of a value of type t the decoder may look at: arrays beyond
 * max_entries elements are never shown, so they need not be read. */
static uint64_t useful_size(const struct decoder *d, const struct gotype *t)
{
	uint64_t n, esize;

	if (t->kind != GT_ARRAY || !t->elem || t->count <= d->lim.max_entries)
		return t->size;
	n = d->lim.max_entries;
	esize = t->elem->size;
	return n ? (n - 1) * esize + useful_size(d, t->elem) : 0;
}

static bool is_name(const struct gotype *t, const char *name)
{
	return t && t->name && !strcmp(t->name, name);
}

/* ---- strings ---- */

/* Appends the text of the Go string at ptr (len bytes), cut at max_string on a
 * UTF-8 boundary and followed by "…+N" when cut. Returns 0, -EFAULT (unreadable)
 * or -EINVAL (impossible header). */
static int string_text(struct decoder *d, uint64_t ptr, int64_t len, struct buf *out)
{
	uint64_t n, want;
	uint8_t *s;
	int rc;

	if (len == 0)
		return 0;
	if (len < 0)
		return -EINVAL;
	n = (uint64_t)len;
	if (n > d->lim.max_string)
		n = d->lim.max_string;
	want = n < (uint64_t)len ? n + 1 : n; /* one more byte: is the cut inside a rune? */
	s = xmalloc(want);
	rc = fetch(d, ptr, s, want);
	if (rc == -E2BIG) {
		n = 0;
		rc = 0;
	} else if (rc < 0) {
		goto out;
	}
	for (int back = 0; n < (uint64_t)len && n > 0 && back < 3 && (s[n] & 0xc0) == 0x80; back++)
		n--;
	buf_add(out, s, n);
	if (n < (uint64_t)len) {
		buf_printf(out, ELLIPSIS "+%" PRIu64, (uint64_t)len - n);
		d->truncated = true;
	}
out:
	free(s);
	return rc;
}

static void dec_string(struct decoder *d, const uint8_t *p, struct json *j)
{
	uint64_t ptr = rd64(p);
	int64_t len = (int64_t)rd64(p + 8);
	struct buf text = {0};
	int rc = string_text(d, ptr, len, &text);

	if (rc == -EINVAL)
		put_error(j, "bad string length %" PRId64, len);
	else if (rc < 0)
		put_missing(j, ptr, rc);
	else
		json_strn(j, buf_str(&text), text.len);
	buf_free(&text);
}

/* ---- arrays, slices, structs ---- */

/* Emits count elements of type et laid out from p (avail bytes readable there;
 * run-time address addr or 0), at most max_entries of them. */
static void dec_elems(struct decoder *d, const struct gotype *et, const uint8_t *p, size_t avail, uint64_t addr,
		      uint64_t count, unsigned int depth, struct json *j)
{
	uint64_t shown = count < d->lim.max_entries ? count : d->lim.max_entries;
	uint64_t esize = et->size, i;

	json_arr(j);
	for (i = 0; i < shown; i++) {
		uint64_t off = i * esize;

		if (off + esize > avail && esize)
			break;
		dec(d, et, p + off, avail - off, addr ? addr + off : 0, depth, j);
	}
	if (i < count) {
		put_more(j, count - i);
		d->truncated = true;
	}
	json_end(j);
}

static void dec_array(struct decoder *d, const struct gotype *t, const uint8_t *p, size_t avail, uint64_t addr,
		      unsigned int depth, struct json *j)
{
	if (!t->elem) {
		put_error(j, "array of unknown type");
		return;
	}
	dec_elems(d, t->elem, p, avail, addr, t->count, depth, j);
}

static void dec_slice(struct decoder *d, const struct gotype *t, const uint8_t *p, unsigned int depth, struct json *j)
{
	uint64_t ptr = rd64(p), esize, n, room;
	int64_t len = (int64_t)rd64(p + 8), cap = (int64_t)rd64(p + 16);
	uint8_t *elems;
	int rc;

	if (!ptr) {
		json_null(j);
		return;
	}
	if (len < 0 || cap < len) {
		put_error(j, "bad slice length %" PRId64, len);
		return;
	}
	if (!t->elem) {
		put_error(j, "slice of unknown type");
		return;
	}
	if (len > 0 && depth >= d->lim.max_depth) {
		d->truncated = true;
		json_obj(j);
		json_key(j, "ptr");
		put_hex(j, ptr);
		json_kv_int(j, "len", len);
		json_end(j);
		return;
	}
	esize = t->elem->size;
	n = (uint64_t)len < d->lim.max_entries ? (uint64_t)len : d->lim.max_entries;
	room = d->lim.max_bytes - d->used;
	if (esize && n * esize > room) /* as many whole elements as the budget allows */
		n = room / esize;
	elems = xmalloc(n * esize);
	rc = n && esize ? fetch(d, ptr, elems, n * esize) : 0;
	if (rc < 0) {
		put_missing(j, ptr, rc);
	} else {
		if (n < (uint64_t)len && n < d->lim.max_entries)
			d->truncated = true;
		dec_elems(d, t->elem, elems, n * esize, ptr, (uint64_t)len, depth + 1, j);
	}
	free(elems);
}

static void dec_struct(struct decoder *d, const struct gotype *t, const uint8_t *p, size_t avail, uint64_t addr,
		       unsigned int depth, struct json *j)
{
	json_obj(j);
	for (int i = 0; i < t->nfields; i++) {
		const struct gofield *f = &t->fields[i];

		if (!f->name || !strcmp(f->name, "_"))
			continue;
		json_key(j, f->name);
		if (!f->type) {
			json_null(j);
			continue;
		}
		if (f->offset > avail) {
			json_str(j, ELLIPSIS);
			d->truncated = true;
			continue;
		}
		dec(d, f->type, p + f->offset, avail - f->offset, addr ? addr + f->offset : 0, depth, j);
	}
	json_end(j);
}

/* ---- pointers ---- */

static bool on_path(const struct decoder *d, uint64_t addr, const struct gotype *t)
{
	for (int i = 0; i < d->npath; i++)
		if (d->path[i].addr == addr && d->path[i].type == t)
			return true;
	return false;
}

/* Records that the value of type t at addr is being decoded; false if the
 * path is full (the depth limit stops long chains anyway). */
static bool path_push(struct decoder *d, uint64_t addr, const struct gotype *t)
{
	if (d->npath >= DECODE_MAX_PATH)
		return false;
	d->path[d->npath].addr = addr;
	d->path[d->npath].type = t;
	d->npath++;
	return true;
}

/* Decodes the value of type t at run-time addr, one reference deeper than depth. */
static void dec_target(struct decoder *d, const struct gotype *t, uint64_t addr, unsigned int depth, struct json *j)
{
	uint64_t n = useful_size(d, t), room = d->lim.max_bytes - d->used;
	uint8_t *p;
	int rc;

	if (depth >= d->lim.max_depth) {
		d->truncated = true;
		put_ptr(j, addr);
		return;
	}
	if (on_path(d, addr, t)) {
		json_obj(j);
		json_key(j, "ptr");
		put_hex(j, addr);
		json_kv_bool(j, "cycle", true);
		json_end(j);
		return;
	}
	if (n > room)
		n = room;
	if (t->size && !n) { /* the byte budget is spent */
		d->truncated = true;
		put_ptr(j, addr);
		return;
	}
	p = xmalloc(n);
	rc = n ? fetch(d, addr, p, n) : 0;
	if (rc == -ENODATA) {
		uint64_t m = fetch_prefix(d, t, addr, p, n);

		if (m) {
			n = m;
			rc = 0;
		}
	}
	if (rc < 0) {
		put_missing(j, addr, rc);
	} else {
		bool pushed = path_push(d, addr, t);

		dec(d, t, p, n, addr, depth + 1, j);
		if (pushed)
			d->npath--;
	}
	free(p);
}

static void dec_ptr(struct decoder *d, const struct gotype *t, const uint8_t *p, unsigned int depth, struct json *j)
{
	uint64_t addr = rd64(p);

	if (!addr)
		json_null(j);
	else if (!t->elem || t->elem->kind == GT_UNKNOWN)
		put_hex(j, addr);
	else
		dec_target(d, t->elem, addr, depth, j);
}

/* ---- interfaces ---- */

struct rtype {
	uint64_t addr; /* run-time address of the descriptor */
	uint64_t size;
	uint8_t tflag, kind;
	int32_t str; /* nameOff of its name */
	bool direct; /* the value is the data word itself */
};

static int rtype_read(struct decoder *d, uint64_t addr, struct rtype *rt)
{
	uint8_t h[RT_HDR];

	if (meta_read(d, addr, h, sizeof(h)) < 0)
		return -EFAULT;
	rt->addr = addr;
	rt->size = rd64(h + RT_SIZE);
	rt->tflag = h[RT_TFLAG];
	rt->kind = h[RT_KIND];
	memcpy(&rt->str, h + RT_STR, 4);
	if (d->bin->go_minor >= 26)
		rt->direct = rt->tflag & RT_DIRECT_IFACE;
	else
		rt->direct = rt->kind & RT_DIRECT_IFACE;
	return 0;
}

/* Appends the runtime name at nameOff off (1 flag byte, uvarint length, bytes). */
static int name_read(struct decoder *d, int32_t off, struct buf *out)
{
	uint8_t h[4], s[MAX_TYPE_NAME];
	uint64_t at = d->types_base + d->bias + (uint64_t)(int64_t)off, len = 0;
	int i;

	if (!d->types_base || meta_read(d, at, h, sizeof(h)) < 0)
		return -EFAULT;
	for (i = 1; i < 4; i++) {
		len |= (uint64_t)(h[i] & 0x7f) << (7 * (i - 1));
		if (!(h[i] & 0x80))
			break;
	}
	if (i == 4 || len > sizeof(s) || meta_read(d, at + 1 + (uint64_t)i, s, len) < 0)
		return -EFAULT;
	buf_add(out, s, len);
	return 0;
}

/* The type's name as %T prints it ("*errors.errorString", "main.Point"). */
static int rtype_name(struct decoder *d, const struct rtype *rt, struct buf *out)
{
	size_t start = out->len;

	if (name_read(d, rt->str, out) < 0)
		return -EFAULT;
	if ((rt->tflag & RT_TFLAG_EXTRA_STAR) && out->len > start && out->p[start] == '*') {
		memmove(out->p + start, out->p + start + 1, out->len - start - 1);
		out->len--;
		out->p[out->len] = '\0';
	}
	return 0;
}

/* Offset of the UncommonType after a descriptor of this kind (internal/abi). */
static uint64_t uncommon_off(const struct decoder *d, uint8_t kind)
{
	switch (kind & RT_KIND_MASK) {
	case RTK_ARRAY: /* Type + Elem, Slice, Len */
		return 72;
	case RTK_CHAN: /* Type + Elem, Dir */
		return 64;
	case RTK_FUNC: /* Type + InCount, OutCount */
	case RTK_PTR:  /* Type + Elem */
	case RTK_SLICE:
		return 56;
	case RTK_INTERFACE: /* Type + PkgPath, Methods / Fields */
	case RTK_STRUCT:
		return 80;
	case RTK_MAP: /* swiss: Type + 7 words + Flags; classic: Type + 5 words */
		return d->bin->go_minor >= 24 ? 112 : 88;
	default:
		return RT_HDR;
	}
}

/* Is the DWARF type t the one described by the runtime type rt? */
static bool dwarf_matches(const struct decoder *d, const struct gotype *t, const struct rtype *rt)
{
	uint64_t link = rt->addr - d->bias;

	if (!t || t->size != rt->size)
		return false;
	if (!t->runtime_type)
		return true;
	/* DW_AT_go_runtime_type: an offset from runtime.types (or an address). */
	return t->runtime_type == link || t->runtime_type + d->types_base == link;
}

static const struct gotype *find_type(struct decoder *d, const struct rtype *rt, const char *name,
				      struct gotype *scratch, int level);

/* A pointer type absent from DWARF: built in scratch from its element. */
static const struct gotype *find_ptr_type(struct decoder *d, const struct rtype *rt, struct gotype *scratch, int level)
{
	struct rtype ert;
	struct buf ename = {0};
	const struct gotype *et = NULL;
	uint64_t eaddr;

	if (rt->size != 8 || meta_ptr(d, rt->addr + RT_PTR_ELEM, &eaddr) < 0 || rtype_read(d, eaddr, &ert) < 0 ||
	    rtype_name(d, &ert, &ename) < 0)
		goto out;
	et = find_type(d, &ert, buf_str(&ename), scratch + 1, level + 1);
	if (!et)
		goto out;
	memset(scratch, 0, sizeof(*scratch));
	scratch->kind = GT_PTR;
	scratch->size = 8;
	scratch->elem = (struct gotype *)et;
	et = scratch;
out:
	buf_free(&ename);
	return et;
}

/* A basic type absent from DWARF (a named int only ever converted to an
 * interface has no DWARF type): built in scratch from its runtime kind. */
static const struct gotype *basic_type(const struct rtype *rt, struct gotype *scratch)
{
	static const struct {
		enum gotype_kind kind;
		uint8_t size;
	} kinds[] = {
	    [RTK_BOOL] = {GT_BOOL, 1},
	    [RTK_INT] = {GT_INT, 8},
	    [3] = {GT_INT, 1},
	    [4] = {GT_INT, 2},
	    [5] = {GT_INT, 4},
	    [RTK_INT64] = {GT_INT, 8},
	    [RTK_UINT] = {GT_UINT, 8},
	    [8] = {GT_UINT, 1},
	    [9] = {GT_UINT, 2},
	    [10] = {GT_UINT, 4},
	    [11] = {GT_UINT, 8},
	    [RTK_UINTPTR] = {GT_UINTPTR, 8},
	    [RTK_FLOAT32] = {GT_FLOAT, 4},
	    [RTK_FLOAT64] = {GT_FLOAT, 8},
	    [RTK_COMPLEX64] = {GT_COMPLEX, 8},
	    [RTK_COMPLEX128] = {GT_COMPLEX, 16},
	    [RTK_STRING] = {GT_STRING, 16},
	    [RTK_UNSAFEPTR] = {GT_UNSAFEPTR, 8},
	};
	uint8_t k = rt->kind & RT_KIND_MASK;

	if (k >= sizeof(kinds) / sizeof(kinds[0]) || !kinds[k].size || kinds[k].size != rt->size)
		return NULL;
	memset(scratch, 0, sizeof(*scratch));
	scratch->kind = kinds[k].kind;
	scratch->size = rt->size;
	return scratch;
}

/* The DWARF type of a runtime type named name (its %T spelling): by that
 * name, else by the full package path from the UncommonType ("http.Header" is
 * "net/http.Header" in DWARF), else for pointers built from the element type
 * and for basic kinds from the kind (scratch holds such built types, one per
 * level). NULL if none matches. */
static const struct gotype *find_type(struct decoder *d, const struct rtype *rt, const char *name,
				      struct gotype *scratch, int level)
{
	const struct dwarf *dw = d->bin->dwarf;
	const struct gotype *t = dwarf_type_by_name(dw, name);
	const char *dot = strchr(name, '.');
	uint8_t u[4];
	int32_t pkgoff;

	if (dwarf_matches(d, t, rt))
		return t;
	if (level >= 3)
		return NULL;
	if ((rt->kind & RT_KIND_MASK) == RTK_PTR)
		return find_ptr_type(d, rt, scratch, level);
	if ((rt->tflag & RT_TFLAG_UNCOMMON) && dot && name[0] != '*' &&
	    meta_read(d, rt->addr + uncommon_off(d, rt->kind), u, sizeof(u)) == 0) {
		struct buf full = {0};

		memcpy(&pkgoff, u, 4);
		if (pkgoff && name_read(d, pkgoff, &full) == 0) {
			buf_puts(&full, dot);
			t = dwarf_type_by_name(dw, buf_str(&full));
		}
		buf_free(&full);
		if (dwarf_matches(d, t, rt))
			return t;
	}
	return basic_type(rt, scratch);
}

/* The field of struct t that holds an error's message, or NULL. */
static const struct gofield *message_field(const struct gotype *t)
{
	static const char *const names[] = {"s", "msg", "Msg", "message", "Message"};

	if (!t || t->kind != GT_STRUCT)
		return NULL;
	for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++)
		for (int i = 0; i < t->nfields; i++)
			if (t->fields[i].type && t->fields[i].type->kind == GT_STRING && t->fields[i].name &&
			    !strcmp(t->fields[i].name, names[n]))
				return &t->fields[i];
	return NULL;
}

/* "error": the message of an error whose dynamic type is dt and whose
 * struct lives at run-time address sa. */
static void put_error_message(struct decoder *d, const struct gotype *dt, uint64_t sa, struct json *j)
{
	const struct gotype *st = dt->kind == GT_PTR ? dt->elem : dt;
	const struct gofield *f = message_field(st);
	struct buf text = {0};
	uint8_t hdr[16];

	if (!f || !sa || fetch(d, sa + f->offset, hdr, sizeof(hdr)) < 0)
		return;
	if (string_text(d, rd64(hdr), (int64_t)rd64(hdr + 8), &text) == 0) {
		json_key(j, "error");
		json_strn(j, buf_str(&text), text.len);
	}
	buf_free(&text);
}

static void dec_iface(struct decoder *d, const struct gotype *t, const uint8_t *p, unsigned int depth, struct json *j)
{
	uint64_t w0 = rd64(p), data = rd64(p + 8), taddr = w0, sa;
	struct gotype scratch[4];
	const struct gotype *dt = NULL;
	struct buf name = {0};
	struct rtype rt = {0};

	if (!w0) {
		json_null(j);
		return;
	}
	if (t->kind == GT_IFACE && meta_ptr(d, w0 + ITAB_TYPE, &taddr) < 0) {
		put_unreadable(j, w0 + ITAB_TYPE);
		return;
	}
	json_obj(j);
	json_key(j, "type");
	if (rtype_read(d, taddr, &rt) < 0 || rtype_name(d, &rt, &name) < 0) {
		json_str(j, "unknown");
	} else {
		json_str(j, buf_str(&name));
		dt = find_type(d, &rt, buf_str(&name), scratch, 0);
	}
	json_key(j, "value");
	if (!dt) {
		put_ptr(j, data);
	} else if (rt.direct) {
		dec(d, dt, p + 8, 8, 0, depth, j);
	} else if (!data) {
		json_null(j);
	} else {
		dec_target(d, dt, data, depth, j);
	}
	if (dt && t->kind == GT_IFACE && is_name(t, "error")) {
		/* where the struct holding the message lives */
		if (rt.direct)
			sa = dt->kind == GT_PTR ? data : 0;
		else
			sa = dt->kind == GT_STRUCT ? data : 0;
		put_error_message(d, dt, sa, j);
	}
	json_end(j);
	buf_free(&name);
}

/* ---- channels and funcs ---- */

static void dec_chan(struct decoder *d, const uint8_t *p, struct json *j)
{
	uint64_t addr = rd64(p);
	uint8_t h[HCHAN_SIZE];
	uint32_t closed;

	if (!addr) {
		json_null(j);
		return;
	}
	if (!fetch_or_mark(d, j, addr, h, sizeof(h)))
		return;
	memcpy(&closed, h + HCHAN_CLOSED, 4);
	json_obj(j);
	json_kv_uint(j, "len", rd64(h + HCHAN_QCOUNT));
	json_kv_uint(j, "cap", rd64(h + HCHAN_DATAQSIZ));
	if (closed)
		json_kv_bool(j, "closed", true);
	json_end(j);
}

static void dec_func(struct decoder *d, const uint8_t *p, struct json *j)
{
	uint64_t fv = rd64(p), pc;
	const struct gofunc *f;

	if (!fv) {
		json_null(j);
		return;
	}
	if (!fetch_or_mark(d, j, fv, &pc, 8)) /* a func value points to a funcval {fn, ...} */
		return;
	f = pc >= d->bias && d->bin->pcln ? pcln_find(d->bin->pcln, pc - d->bias) : NULL;
	if (f && f->entry == pc - d->bias)
		json_str(j, f->name);
	else
		put_hex(j, pc);
}

/* ---- maps ---- */

/* Where keys and elems sit in a classic bucket or a swiss group. */
struct map_layout {
	const struct gotype *key, *elem;
	bool key_ind, elem_ind; /* stored through a pointer */
	uint64_t koff, kstride; /* slot i's key at koff + i * kstride */
	uint64_t eoff, estride;
	uint64_t size;	   /* of a bucket / group */
	uint64_t overflow; /* classic: offset of the overflow pointer */
};

/* How entries are ordered: by numeric key, else by key text. */
enum map_order { ORDER_TEXT, ORDER_INT, ORDER_UINT, ORDER_FLOAT };

struct map_entry {
	char *key; /* string keys: the text; others: JSON */
	size_t klen;
	char *val; /* JSON */
	int64_t i; /* numeric keys, for sorting */
	uint64_t u;
	double f;
};

struct map_walk {
	struct decoder *d;
	const struct map_layout *ml;
	unsigned int depth; /* of the entries */
	bool strkeys;
	enum map_order order;
	struct map_entry *ents;
	size_t n;
	bool stop, cut;
};

static void map_layout(const struct gotype *t, bool swiss, struct map_layout *ml)
{
	uint64_t ks, es, ka, ea, eoff, slot;

	memset(ml, 0, sizeof(*ml));
	ml->key = t->key;
	ml->elem = t->elem;
	ml->key_ind = t->key->size > MAP_MAX_INLINE;
	ml->elem_ind = t->elem->size > MAP_MAX_INLINE;
	ks = ml->key_ind ? 8 : t->key->size;
	es = ml->elem_ind ? 8 : t->elem->size;
	ka = ml->key_ind ? 8 : type_align(t->key);
	ea = ml->elem_ind ? 8 : type_align(t->elem);
	if (!swiss) { /* bucket { tophash [8]uint8; keys [8]K; elems [8]V; overflow *bucket } */
		ml->koff = MAP_SLOTS;
		ml->kstride = ks;
		ml->eoff = MAP_SLOTS + MAP_SLOTS * ks;
		ml->estride = es;
		ml->overflow = align_up(ml->eoff + MAP_SLOTS * es, 8);
		ml->size = ml->overflow + 8;
		return;
	}
	/* group { ctrl uint64; slots [8]struct { key K; elem V } }; Go pads a
	 * non-empty struct that ends in a zero-size field by one byte. */
	eoff = align_up(ks, ea);
	slot = eoff + es;
	if (slot && !es)
		slot++;
	slot = align_up(slot, ka > ea ? ka : ea);
	ml->koff = 8;
	ml->kstride = slot;
	ml->eoff = 8 + eoff;
	ml->estride = slot;
	ml->size = slot ? 8 + MAP_SLOTS * slot : 16;
}

/* Renders the value of type t in slot bytes p (a pointer to it when ind) as
 * JSON text; for string keys (as_text) as the plain string. */
static char *render(struct map_walk *w, const struct gotype *t, bool ind, const uint8_t *p, bool as_text, size_t *len)
{
	struct decoder *d = w->d;
	struct buf out = {0};
	struct json j;
	uint8_t *tmp = NULL;
	uint64_t at = 0;

	json_init(&j, &out);
	if (ind) {
		at = rd64(p);
		tmp = xmalloc(t->size ? t->size : 1);
		if (!at)
			put_unreadable(&j, at);
		if (!at || !fetch_or_mark(d, &j, at, tmp, t->size))
			goto out;
		p = tmp;
	}
	if (as_text) {
		int64_t slen = (int64_t)rd64(p + 8);

		if (string_text(d, rd64(p), slen, &out) < 0)
			buf_printf(&out, "<unreadable 0x%" PRIx64 ">", rd64(p));
		goto out;
	}
	dec(d, t, p, t->size, at, w->depth, &j);
out:
	free(tmp);
	if (len)
		*len = out.len;
	return buf_detach(&out);
}

static void map_add(struct map_walk *w, const uint8_t *kp, const uint8_t *ep)
{
	const struct map_layout *ml = w->ml;
	struct map_entry *e;

	if (w->n >= w->d->lim.max_entries) {
		w->stop = w->cut = true;
		return;
	}
	e = &w->ents[w->n++];
	memset(e, 0, sizeof(*e));
	e->key = render(w, ml->key, ml->key_ind, kp, w->strkeys, &e->klen);
	if (w->order == ORDER_INT) {
		e->i = rd_int(kp, ml->key->size);
	} else if (w->order == ORDER_UINT) {
		e->u = rd_uint(kp, ml->key->size);
	} else if (w->order == ORDER_FLOAT && ml->key->size == 4) {
		float f;

		memcpy(&f, kp, 4);
		e->f = f;
	} else if (w->order == ORDER_FLOAT) {
		memcpy(&e->f, kp, 8);
	}
	e->val = render(w, ml->elem, ml->elem_ind, ep, false, NULL);
}

/* Reads the bucket or group at run-time addr. Returns its bytes (caller
 * frees), or NULL when it cannot be read (the walk stops, marked cut). */
static uint8_t *map_read_block(struct map_walk *w, uint64_t addr)
{
	uint8_t *b = xmalloc(w->ml->size);

	if (fetch(w->d, addr, b, w->ml->size) < 0) {
		free(b);
		w->stop = w->cut = true;
		w->d->truncated = true;
		return NULL;
	}
	return b;
}

/* Adds the entries of the slots in use in bucket/group b: a classic cell is
 * live when its tophash is not an empty/evacuated mark, a swiss slot when its
 * control byte has the high bit clear. */
static void map_block_slots(struct map_walk *w, const uint8_t *b, bool swiss)
{
	const struct map_layout *ml = w->ml;

	for (int i = 0; i < MAP_SLOTS && !w->stop; i++) {
		if (swiss ? (b[i] & SWISS_CTRL_EMPTY) : b[i] < TOPHASH_MIN)
			continue;
		map_add(w, b + ml->koff + (uint64_t)i * ml->kstride, b + ml->eoff + (uint64_t)i * ml->estride);
	}
}

/* Classic: nb buckets from base, each with its overflow chain. Cells that
 * were evacuated from old buckets are skipped by their tophash marks. */
static void walk_buckets(struct map_walk *w, uint64_t base, uint64_t nb)
{
	for (uint64_t i = 0; i < nb && !w->stop; i++) {
		uint64_t b = base + i * w->ml->size;

		for (int chain = 0; b && !w->stop && chain < MAX_OVERFLOW_CHAIN; chain++) {
			uint8_t *blk = map_read_block(w, b);

			if (!blk)
				return;
			map_block_slots(w, blk, false);
			b = rd64(blk + w->ml->overflow);
			free(blk);
		}
	}
}

static int walk_classic(struct map_walk *w, const uint8_t *h)
{
	uint8_t B = h[HMAP_B];
	uint64_t old = rd64(h + HMAP_OLDBUCKETS), buckets = rd64(h + HMAP_BUCKETS);

	if (B > 40)
		return -EINVAL;
	if (old) /* growing: entries not yet evacuated are still here */
		walk_buckets(w, old, (uint64_t)1 << ((h[HMAP_FLAGS] & HMAP_SAME_SIZE_GROW) || !B ? B : B - 1));
	if (buckets)
		walk_buckets(w, buckets, (uint64_t)1 << B);
	return 0;
}

static void walk_group(struct map_walk *w, uint64_t addr)
{
	uint8_t *g = map_read_block(w, addr);

	if (!g)
		return;
	map_block_slots(w, g, true);
	free(g);
}

/* Swiss: a small map is one group at dirPtr; a big one a directory of
 * dirLen table pointers (a table fills consecutive entries) of group arrays. */
static int walk_swiss(struct map_walk *w, const uint8_t *h)
{
	uint64_t dir = rd64(h + SMAP_DIRPTR), prev = 0, *tabs;
	int64_t dirlen = (int64_t)rd64(h + SMAP_DIRLEN);

	if (!dir)
		return 0;
	if (dirlen == 0) {
		walk_group(w, dir);
		return 0;
	}
	if (dirlen < 0 || dirlen > MAX_SWISS_DIR)
		return -EINVAL;
	if ((uint64_t)dirlen * 8 > w->d->lim.max_bytes - w->d->used) {
		w->stop = w->cut = true;
		w->d->truncated = true;
		return 0;
	}
	tabs = xmalloc((size_t)dirlen * 8);
	if (fetch(w->d, dir, tabs, (size_t)dirlen * 8) < 0)
		w->stop = w->cut = true;
	for (int64_t i = 0; i < dirlen && !w->stop; i++) {
		uint8_t tb[STABLE_SIZE];
		uint64_t groups, mask;

		if (tabs[i] == prev)
			continue;
		prev = tabs[i];
		if (fetch(w->d, tabs[i], tb, sizeof(tb)) < 0) {
			w->stop = w->cut = true;
			break;
		}
		groups = rd64(tb + STABLE_GROUPS);
		mask = rd64(tb + STABLE_MASK);
		if (mask >= MAX_SWISS_DIR)
			break;
		for (uint64_t g = 0; g <= mask && !w->stop; g++)
			walk_group(w, groups + g * w->ml->size);
	}
	free(tabs);
	return 0;
}

static int cmp_entry(const void *a, const void *b, void *order)
{
	const struct map_entry *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c;

	switch (*(const enum map_order *)order) {
	case ORDER_INT:
		return (x->i > y->i) - (x->i < y->i);
	case ORDER_UINT:
		return (x->u > y->u) - (x->u < y->u);
	case ORDER_FLOAT:
		return (x->f > y->f) - (x->f < y->f);
	default:
		c = memcmp(x->key, y->key, n);
		return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
	}
}

static void put_entries(struct map_walk *w, uint64_t total, struct json *j)
{
	uint64_t more = total > w->n ? total - w->n : 0;

	qsort_r(w->ents, w->n, sizeof(*w->ents), cmp_entry, &w->order);
	if (w->strkeys) {
		json_obj(j);
		for (size_t i = 0; i < w->n; i++) {
			json_key(j, w->ents[i].key);
			json_raw(j, w->ents[i].val);
		}
		if (w->cut) {
			json_key(j, ELLIPSIS);
			json_uint(j, more);
		}
	} else {
		json_arr(j);
		for (size_t i = 0; i < w->n; i++) {
			json_arr(j);
			json_raw(j, w->ents[i].key);
			json_raw(j, w->ents[i].val);
			json_end(j);
		}
		if (w->cut)
			put_more(j, more);
	}
	json_end(j);
}

static enum map_order key_order(const struct map_layout *ml)
{
	if (ml->key_ind)
		return ORDER_TEXT;
	switch (ml->key->kind) {
	case GT_INT:
		return ORDER_INT;
	case GT_UINT:
	case GT_UINTPTR:
	case GT_BOOL:
		return ORDER_UINT;
	case GT_FLOAT:
		return ml->key->size == 4 || ml->key->size == 8 ? ORDER_FLOAT : ORDER_TEXT;
	default:
		return ORDER_TEXT;
	}
}

static void dec_map(struct decoder *d, const struct gotype *t, const uint8_t *p, unsigned int depth, struct json *j)
{
	uint64_t addr = rd64(p), total;
	struct map_layout ml;
	struct map_walk w = {.d = d, .ml = &ml, .depth = depth + 1};
	uint8_t h[HMAP_SIZE];
	bool swiss = d->swiss;
	int rc;

	if (!addr) {
		json_null(j);
		return;
	}
	if (!t->key || !t->elem) {
		put_error(j, "map of unknown type");
		return;
	}
	if (depth >= d->lim.max_depth) {
		d->truncated = true;
		put_ptr(j, addr);
		return;
	}
	if (t->hdr && t->hdr->name) /* hash<K,V> or map<K,V> (GOEXPERIMENT may differ) */
		swiss = strncmp(t->hdr->name, "hash<", 5) != 0;
	if (!fetch_or_mark(d, j, addr, h, sizeof(h)))
		return;
	total = rd64(h + (swiss ? SMAP_USED : HMAP_COUNT));
	map_layout(t, swiss, &ml);
	w.strkeys = t->key->kind == GT_STRING && !ml.key_ind;
	w.order = key_order(&ml);
	w.ents = xcalloc(d->lim.max_entries ? d->lim.max_entries : 1, sizeof(*w.ents));
	rc = total ? (swiss ? walk_swiss(&w, h) : walk_classic(&w, h)) : 0;
	if (rc < 0)
		put_error(j, "bad map header at 0x%" PRIx64, addr);
	else
		put_entries(&w, total, j);
	if (w.cut)
		d->truncated = true;
	for (size_t i = 0; i < w.n; i++) {
		free(w.ents[i].key);
		free(w.ents[i].val);
	}
	free(w.ents);
}

/* ---- scalars and dispatch ---- */

static void dec_float(const struct gotype *t, const uint8_t *p, struct json *j)
{
	float f;
	double v;

	if (t->size == 4) {
		memcpy(&f, p, 4);
		put_float(j, f, true);
		return;
	}
	memcpy(&v, p, 8);
	put_float(j, v, false);
}

static void dec_complex(const struct gotype *t, const uint8_t *p, struct json *j)
{
	struct gotype half = {.kind = GT_FLOAT, .size = t->size / 2};

	json_arr(j);
	dec_float(&half, p, j);
	dec_float(&half, p + half.size, j);
	json_end(j);
}

static void dec_raw(const struct gotype *t, const uint8_t *p, struct json *j)
{
	struct buf hex = {0};
	uint64_t n = t->size < 64 ? t->size : 64;

	for (uint64_t i = 0; i < n; i++)
		buf_printf(&hex, "%02x", p[i]);
	json_obj(j);
	if (t->name)
		json_kv_str(j, "type", t->name);
	json_kv_str(j, "raw", buf_str(&hex));
	json_end(j);
	buf_free(&hex);
}

static bool is_composite(enum gotype_kind k)
{
	switch (k) {
	case GT_COMPLEX:
	case GT_SLICE:
	case GT_ARRAY:
	case GT_STRUCT:
	case GT_PTR:
	case GT_IFACE:
	case GT_EFACE:
	case GT_MAP:
	case GT_CHAN:
		return true;
	default:
		return false;
	}
}

/* Emits the value of type t whose bytes are at p (avail of them readable;
 * run-time address addr, 0 if unknown), depth references below the top. */
static void dec(struct decoder *d, const struct gotype *t, const uint8_t *p, size_t avail, uint64_t addr,
		unsigned int depth, struct json *j)
{
	bool composite = is_composite(t->kind);

	if ((t->size > avail && t->kind != GT_STRUCT && t->kind != GT_ARRAY) ||
	    (composite && j->depth >= JSON_MAX_DEPTH - 4)) {
		d->truncated = true;
		json_str(j, ELLIPSIS);
		return;
	}
	switch (t->kind) {
	case GT_BOOL:
		json_bool(j, p[0] != 0);
		return;
	case GT_INT:
		json_int(j, rd_int(p, t->size));
		return;
	case GT_UINT:
	case GT_UINTPTR:
		json_uint(j, rd_uint(p, t->size));
		return;
	case GT_FLOAT:
		dec_float(t, p, j);
		return;
	case GT_COMPLEX:
		dec_complex(t, p, j);
		return;
	case GT_STRING:
		dec_string(d, p, j);
		return;
	case GT_SLICE:
		dec_slice(d, t, p, depth, j);
		return;
	case GT_ARRAY:
		dec_array(d, t, p, avail, addr, depth, j);
		return;
	case GT_STRUCT:
		dec_struct(d, t, p, avail, addr, depth, j);
		return;
	case GT_PTR:
		dec_ptr(d, t, p, depth, j);
		return;
	case GT_UNSAFEPTR:
		if (rd64(p))
			put_hex(j, rd64(p));
		else
			json_null(j);
		return;
	case GT_IFACE:
	case GT_EFACE:
		dec_iface(d, t, p, depth, j);
		return;
	case GT_MAP:
		dec_map(d, t, p, depth, j);
		return;
	case GT_CHAN:
		dec_chan(d, p, j);
		return;
	case GT_FUNC:
		dec_func(d, p, j);
		return;
	default:
		dec_raw(t, p, j);
		return;
	}
}

/* ---- public ---- */

/* Decodes one top-level value: the budget and marks start afresh. */
static void run(struct decoder *d, const struct gotype *t, const uint8_t *p, size_t avail, uint64_t addr, uint64_t used,
		struct json *j, bool *truncated)
{
	d->used = used;
	d->truncated = false;
	d->npath = 0;
	if (addr)
		path_push(d, addr, t);
	dec(d, t, p, avail, addr, 0, j);
	if (truncated)
		*truncated = d->truncated;
}

int decode_json(struct decoder *d, const struct gotype *t, const uint8_t *bytes, uint64_t addr, struct json *j,
		bool *truncated)
{
	if (!d || !d->bin || !d->read || !t || (!bytes && t->size))
		return err_set(EINVAL, "decode: no decoder, type or bytes");
	run(d, t, bytes, t->size, addr, 0, j, truncated);
	return 0;
}

int decode_value(struct decoder *d, const struct gotype *t, const uint8_t *bytes, uint64_t addr, struct buf *out,
		 bool *truncated)
{
	struct json j;

	json_init(&j, out);
	return decode_json(d, t, bytes, addr, &j, truncated);
}

int decode_at(struct decoder *d, const struct gotype *t, uint64_t addr, struct buf *out, bool *truncated)
{
	struct json j;
	uint64_t n;
	uint8_t *p;

	if (!d || !d->bin || !d->read || !t)
		return err_set(EINVAL, "decode: no decoder or type");
	n = useful_size(d, t);
	if (n > d->lim.max_bytes)
		n = d->lim.max_bytes;
	p = xmalloc(n);
	if (n && d->read(d->ctx, addr, p, n) < 0) {
		free(p);
		return err_set(EFAULT, "decode: cannot read %" PRIu64 " bytes of %s at 0x%" PRIx64, n,
			       t->name ? t->name : "a value", addr);
	}
	json_init(&j, out);
	run(d, t, p, n, addr, n, &j, truncated);
	free(p);
	return 0;
}
