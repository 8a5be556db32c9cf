/* dwarf.c - what the DWARF of a Go binary says about functions, variables and
 * types, read with libdw (elfutils).
 *
 * dwarf_load walks every compile unit once: each concrete DW_TAG_subprogram
 * becomes a struct dwfunc with its parameters, results and locals (including
 * those of nested lexical blocks), and every named type DIE is interned as a
 * struct gotype (one per DIE offset; typedefs Go emits as "the same name again"
 * share their target's gotype). Everything is built at load time: lookups
 * never change the model.
 *
 * Go compresses its DWARF sections (SHF_COMPRESSED, zlib). libelf would
 * decompress them in place, writing to the section headers of the image, which
 * elffile maps read-only; so dwarf_load inflates the .debug_* sections into a
 * private ELF image of its own and hands that to libdw.
 *
 * Locations are not decoded at load: dwarf_locate asks libdw for the location
 * expression that covers a pc (DWARF 4 .debug_loc and DWARF 5 .debug_loclists
 * alike) and turns it into register / CFA-relative / absolute pieces.
 *
 * Go specifics: the frame base of every function is DW_OP_call_frame_cfa; Go's
 * own attributes DW_AT_go_kind .. DW_AT_go_runtime_type (0x2900..0x2904) carry
 * the reflect kind, map key/element, chan element and the runtime type address.
 */
#include <elfutils/libdw.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"
#include "dwarf.h"
#include "err.h"
#include "elffile.h"

/* The DWARF constants used here. <dwarf.h> from elfutils cannot be included:
 * userspace/dwarf.h (this module's header) shadows it on the include path. */
enum {
	DW_TAG_array_type = 0x01, DW_TAG_formal_parameter = 0x05,
	DW_TAG_lexical_block = 0x0b, DW_TAG_member = 0x0d,
	DW_TAG_pointer_type = 0x0f, DW_TAG_compile_unit = 0x11,
	DW_TAG_structure_type = 0x13, DW_TAG_subroutine_type = 0x15,
	DW_TAG_typedef = 0x16, DW_TAG_subrange_type = 0x21,
	DW_TAG_base_type = 0x24, DW_TAG_subprogram = 0x2e, DW_TAG_variable = 0x34,
};
enum {
	DW_AT_location = 0x02, DW_AT_name = 0x03, DW_AT_byte_size = 0x0b,
	DW_AT_upper_bound = 0x2f, DW_AT_count = 0x37,
	DW_AT_data_member_location = 0x38, DW_AT_decl_line = 0x3b,
	DW_AT_encoding = 0x3e, DW_AT_type = 0x49, DW_AT_variable_parameter = 0x4b,
};
enum {
	DW_FORM_block2 = 0x03, DW_FORM_block4 = 0x04, DW_FORM_block = 0x09,
	DW_FORM_block1 = 0x0a, DW_FORM_exprloc = 0x18,
};
enum {
	DW_ATE_boolean = 0x2, DW_ATE_complex_float = 0x3, DW_ATE_float = 0x4,
	DW_ATE_signed = 0x5, DW_ATE_signed_char = 0x6, DW_ATE_unsigned = 0x7,
	DW_ATE_unsigned_char = 0x8,
};
enum {
	DW_OP_addr = 0x03, DW_OP_const1u = 0x08, DW_OP_const1s = 0x09,
	DW_OP_const2u = 0x0a, DW_OP_const2s = 0x0b, DW_OP_const4u = 0x0c,
	DW_OP_const4s = 0x0d, DW_OP_const8u = 0x0e, DW_OP_const8s = 0x0f,
	DW_OP_constu = 0x10, DW_OP_consts = 0x11, DW_OP_minus = 0x1c,
	DW_OP_plus = 0x22, DW_OP_plus_uconst = 0x23, DW_OP_lit0 = 0x30,
	DW_OP_lit31 = 0x4f, DW_OP_reg0 = 0x50, DW_OP_reg31 = 0x6f,
	DW_OP_regx = 0x90, DW_OP_fbreg = 0x91, DW_OP_piece = 0x93,
	DW_OP_call_frame_cfa = 0x9c,
};

#define DW_AT_go_kind		0x2900
#define DW_AT_go_key		0x2901
#define DW_AT_go_elem		0x2902
#define DW_AT_go_embedded_field	0x2903
#define DW_AT_go_runtime_type	0x2904

/* reflect.Kind values as the linker writes them in DW_AT_go_kind. */
enum {
	GOKIND_BOOL = 1, GOKIND_INT = 2, GOKIND_INT64 = 6, GOKIND_UINT = 7,
	GOKIND_UINT64 = 11, GOKIND_UINTPTR = 12, GOKIND_FLOAT32 = 13,
	GOKIND_FLOAT64 = 14, GOKIND_COMPLEX64 = 15, GOKIND_COMPLEX128 = 16,
	GOKIND_ARRAY = 17, GOKIND_CHAN = 18, GOKIND_FUNC = 19,
	GOKIND_INTERFACE = 20, GOKIND_MAP = 21, GOKIND_PTR = 22,
	GOKIND_SLICE = 23, GOKIND_STRING = 24, GOKIND_STRUCT = 25,
	GOKIND_UNSAFEPTR = 26, GOKIND_MASK = 0x1f,
};

/* DIE offset -> gotype, open addressing (keys stored +1 so 0 means empty). */
struct typemap {
	uint64_t *keys;
	struct gotype **vals;
	size_t cap, len;
};

struct named {
	const char *name;
	Dwarf_Off off;
};

/* A variable whose lexical block covers several pc ranges. */
struct scope_range {
	uint64_t die_off;
	uint64_t lo, hi;
};

struct dwarf {
	Dwarf *dw;
	Elf *elf;			/* over image: the inflated .debug_* sections */
	char *image;
	size_t image_len;
	struct dwfunc *funcs;		/* sorted by lowpc */
	size_t nfuncs;
	struct govar *vars;		/* every function's vars; funcs point into it */
	size_t nvars;
	const struct dwfunc **by_name;	/* sorted by name */
	struct named *types;		/* named type DIEs, sorted by name */
	size_t ntypes;
	struct typemap map;
	struct scope_range *scopes;	/* sorted by die_off */
	size_t nscopes;
	void **owned;			/* everything else to free with the dwarf */
	size_t nowned;
};

/* Growable arrays used while loading. */
struct vec {
	void *p;
	size_t len, cap, elem;
};

static void *vec_push(struct vec *v)
{
	if (v->len == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->p = xrealloc(v->p, v->cap * v->elem);
	}
	return (char *)v->p + v->len++ * v->elem;
}

struct loader {
	struct dwarf *d;
	struct vec funcs;	/* struct dwfunc; vars holds an index until the end */
	struct vec vars;	/* struct govar */
	struct vec types;	/* struct named */
	struct vec scopes;	/* struct scope_range */
	struct vec owned;	/* void * */
	struct vec block;	/* Dwarf_Addr pairs of the current lexical block */
};

static void *own(struct loader *l, void *p)
{
	*(void **)vec_push(&l->owned) = p;
	return p;
}

/* ---- type map ---- */

static size_t map_slot(const struct typemap *m, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;

	return (h >> 17) & (m->cap - 1);
}

static struct gotype *map_get(const struct typemap *m, uint64_t off)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = map_slot(m, off + 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == off + 1)
			return m->vals[i];
	return NULL;
}

static void map_put(struct typemap *m, uint64_t off, struct gotype *t);

static void map_grow(struct typemap *m)
{
	struct typemap old = *m;
	size_t i;

	m->cap = old.cap ? old.cap * 2 : 4096;
	m->len = 0;
	m->keys = xcalloc(m->cap, sizeof(*m->keys));
	m->vals = xcalloc(m->cap, sizeof(struct gotype *));
	for (i = 0; i < old.cap; i++)
		if (old.keys[i])
			map_put(m, old.keys[i] - 1, old.vals[i]);
	free(old.keys);
	free(old.vals);
}

static void map_put(struct typemap *m, uint64_t off, struct gotype *t)
{
	size_t i;

	if ((m->len + 1) * 2 > m->cap)
		map_grow(m);
	for (i = map_slot(m, off + 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == off + 1)
			break;
	if (!m->keys[i])
		m->len++;
	m->keys[i] = off + 1;
	m->vals[i] = t;
}

/* ---- attribute helpers ---- */

static bool attr_udata(Dwarf_Die *die, unsigned int name, Dwarf_Word *val)
{
	Dwarf_Attribute a;

	return dwarf_attr_integrate(die, name, &a) && dwarf_formudata(&a, val) == 0;
}

static bool attr_flag(Dwarf_Die *die, unsigned int name)
{
	Dwarf_Attribute a;
	bool flag = false;

	if (!dwarf_attr_integrate(die, name, &a))
		return false;
	if (dwarf_formflag(&a, &flag) != 0)
		return false;
	return flag;
}

static const char *attr_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;

	if (!dwarf_attr_integrate(die, DW_AT_name, &a))
		return NULL;
	return dwarf_formstring(&a);
}

/* The DIE an attribute refers to (integrating abstract origins). */
static bool attr_ref(Dwarf_Die *die, unsigned int name, Dwarf_Die *out)
{
	Dwarf_Attribute a;

	return dwarf_attr_integrate(die, name, &a) && dwarf_formref_die(&a, out);
}

/* ---- types ---- */

static struct gotype *type_at(struct loader *l, Dwarf_Off off);

static struct gotype *type_ref(struct loader *l, Dwarf_Die *die, unsigned int name)
{
	Dwarf_Die t;

	if (!attr_ref(die, name, &t))
		return NULL;
	return type_at(l, dwarf_dieoffset(&t));
}

static struct gotype *new_type(struct loader *l, Dwarf_Off off, const char *name)
{
	struct gotype *t = own(l, xcalloc(1, sizeof(*t)));

	t->name = name;
	map_put(&l->d->map, off, t);
	return t;
}

static enum gotype_kind kind_from_go(Dwarf_Word k)
{
	k &= GOKIND_MASK;
	if (k == GOKIND_BOOL)
		return GT_BOOL;
	if (k >= GOKIND_INT && k <= GOKIND_INT64)
		return GT_INT;
	if (k >= GOKIND_UINT && k <= GOKIND_UINT64)
		return GT_UINT;
	if (k == GOKIND_UINTPTR)
		return GT_UINTPTR;
	if (k == GOKIND_FLOAT32 || k == GOKIND_FLOAT64)
		return GT_FLOAT;
	if (k == GOKIND_COMPLEX64 || k == GOKIND_COMPLEX128)
		return GT_COMPLEX;
	return GT_UNKNOWN;
}

static enum gotype_kind kind_from_encoding(Dwarf_Die *die)
{
	Dwarf_Word enc = 0;

	attr_udata(die, DW_AT_encoding, &enc);
	switch (enc) {
	case DW_ATE_boolean:
		return GT_BOOL;
	case DW_ATE_signed:
	case DW_ATE_signed_char:
		return GT_INT;
	case DW_ATE_unsigned:
	case DW_ATE_unsigned_char:
		return GT_UINT;
	case DW_ATE_float:
		return GT_FLOAT;
	case DW_ATE_complex_float:
		return GT_COMPLEX;
	default:
		return GT_UNKNOWN;
	}
}

static void fill_fields(struct loader *l, struct gotype *t, Dwarf_Die *die)
{
	struct vec fields = { .elem = sizeof(struct gofield) };
	Dwarf_Die c;

	if (dwarf_child(die, &c) != 0)
		return;
	do {
		struct gofield *f;
		Dwarf_Word off = 0;

		if (dwarf_tag(&c) != DW_TAG_member)
			continue;
		f = vec_push(&fields);
		f->name = attr_name(&c);
		attr_udata(&c, DW_AT_data_member_location, &off);
		f->offset = off;
		f->embedded = attr_flag(&c, DW_AT_go_embedded_field);
		f->type = type_ref(l, &c, DW_AT_type);
	} while (dwarf_siblingof(&c, &c) == 0);
	t->nfields = (int)fields.len;
	t->fields = fields.len ? own(l, fields.p) : NULL;
	if (!fields.len)
		free(fields.p);
}

static void fill_array(struct loader *l, struct gotype *t, Dwarf_Die *die)
{
	Dwarf_Die c;
	Dwarf_Word n;

	t->kind = GT_ARRAY;
	t->elem = type_ref(l, die, DW_AT_type);
	if (dwarf_child(die, &c) != 0)
		return;
	do {
		if (dwarf_tag(&c) != DW_TAG_subrange_type)
			continue;
		if (attr_udata(&c, DW_AT_count, &n))
			t->count = n;
		else if (attr_udata(&c, DW_AT_upper_bound, &n))
			t->count = n + 1;
		return;
	} while (dwarf_siblingof(&c, &c) == 0);
}

/* A typedef carrying DW_AT_go_kind: Go's map, chan and interface types. */
static void fill_go_typedef(struct loader *l, struct gotype *t, Dwarf_Die *die, Dwarf_Word gokind)
{
	struct gotype *under = type_ref(l, die, DW_AT_type);

	switch (gokind & GOKIND_MASK) {
	case GOKIND_MAP:
		t->kind = GT_MAP;
		t->size = 8;
		t->key = type_ref(l, die, DW_AT_go_key);
		t->elem = type_ref(l, die, DW_AT_go_elem);
		t->hdr = under && under->kind == GT_PTR ? under->elem : NULL;
		return;
	case GOKIND_CHAN:
		t->kind = GT_CHAN;
		t->size = 8;
		t->elem = type_ref(l, die, DW_AT_go_elem);
		t->hdr = under && under->kind == GT_PTR ? under->elem : NULL;
		return;
	case GOKIND_INTERFACE:
		t->kind = GT_IFACE;
		t->size = 16;
		if (under && under->name && !strcmp(under->name, "runtime.eface"))
			t->kind = GT_EFACE;
		if (under) {
			t->nfields = under->nfields;
			t->fields = under->fields;
		}
		return;
	default:
		if (under) {
			const char *name = t->name;
			uint64_t rt = t->runtime_type;

			*t = *under;
			t->name = name;
			t->runtime_type = rt;
		}
		return;
	}
}

static void fill_type(struct loader *l, struct gotype *t, Dwarf_Die *die)
{
	Dwarf_Word gokind = 0, size;
	bool has_kind = attr_udata(die, DW_AT_go_kind, &gokind);
	Dwarf_Attribute a;
	Dwarf_Addr rt;

	if (attr_udata(die, DW_AT_byte_size, &size))
		t->size = size;
	if (dwarf_attr(die, DW_AT_go_runtime_type, &a) && dwarf_formaddr(&a, &rt) == 0)
		t->runtime_type = rt;

	switch (dwarf_tag(die)) {
	case DW_TAG_base_type:
		t->kind = has_kind ? kind_from_go(gokind) : kind_from_encoding(die);
		return;
	case DW_TAG_pointer_type:
		t->size = 8;
		t->elem = type_ref(l, die, DW_AT_type);
		t->kind = t->elem ? GT_PTR : GT_UNSAFEPTR;
		if (!t->name && t->elem && t->elem->name) {
			struct buf b = { 0 };

			buf_printf(&b, "*%s", t->elem->name);
			t->name = own(l, buf_detach(&b));
		}
		return;
	case DW_TAG_structure_type:
		t->kind = GT_STRUCT;
		if (has_kind && (gokind & GOKIND_MASK) == GOKIND_STRING)
			t->kind = GT_STRING;
		if (has_kind && (gokind & GOKIND_MASK) == GOKIND_SLICE) {
			t->kind = GT_SLICE;
			t->elem = type_ref(l, die, DW_AT_go_elem);
		}
		fill_fields(l, t, die);
		return;
	case DW_TAG_array_type:
		fill_array(l, t, die);
		return;
	case DW_TAG_subroutine_type:
		t->kind = GT_FUNC;
		t->size = 8;
		return;
	case DW_TAG_typedef:
		fill_go_typedef(l, t, die, gokind);
		return;
	default:
		t->kind = GT_UNKNOWN;
		return;
	}
}

/* The interned type of the type DIE at off; NULL if there is no DIE there. */
static struct gotype *type_at(struct loader *l, Dwarf_Off off)
{
	struct gotype *t = map_get(&l->d->map, off), *target;
	Dwarf_Word gokind;
	Dwarf_Die die;
	const char *name;

	if (t)
		return t;
	if (!dwarf_offdie(l->d->dw, off, &die))
		return NULL;
	name = attr_name(&die);
	if (dwarf_tag(&die) == DW_TAG_typedef && !attr_udata(&die, DW_AT_go_kind, &gokind)) {
		/* Go writes "typedef T -> the definition of T": one type. */
		target = type_ref(l, &die, DW_AT_type);
		if (target && (!name || (target->name && !strcmp(name, target->name)))) {
			map_put(&l->d->map, off, target);
			return target;
		}
		t = new_type(l, off, name);
		if (target) {
			*t = *target;
			t->name = name;
		}
		return t;
	}
	t = new_type(l, off, name);
	fill_type(l, t, &die);
	return t;
}

/* ---- functions and their variables ---- */

static bool is_type_tag(int tag)
{
	switch (tag) {
	case DW_TAG_base_type:
	case DW_TAG_pointer_type:
	case DW_TAG_structure_type:
	case DW_TAG_array_type:
	case DW_TAG_subroutine_type:
	case DW_TAG_typedef:
		return true;
	default:
		return false;
	}
}

/* Records the pc ranges of a lexical block in l->block; returns how many. */
static size_t block_ranges(struct loader *l, Dwarf_Die *block)
{
	Dwarf_Addr base, start, end;
	ptrdiff_t off = 0;

	l->block.len = 0;
	while ((off = dwarf_ranges(block, off, &base, &start, &end)) > 0) {
		Dwarf_Addr *r = vec_push(&l->block);

		r[0] = start;
		r[1] = end;
	}
	return l->block.len;
}

static void add_var(struct loader *l, Dwarf_Die *die, bool param, bool result,
		    const Dwarf_Addr *scope, size_t nscope)
{
	struct govar *v = vec_push(&l->vars);
	Dwarf_Word line = 0;
	size_t i;

	memset(v, 0, sizeof(*v));
	v->name = attr_name(die);
	v->type = type_ref(l, die, DW_AT_type);
	v->is_param = param;
	v->is_result = result;
	if (attr_udata(die, DW_AT_decl_line, &line))
		v->decl_line = (int)line;
	v->die_off = dwarf_dieoffset(die);
	if (!nscope)
		return;
	v->scope_lo = scope[0];
	v->scope_hi = scope[1];
	for (i = 1; i < nscope; i++) {
		if (scope[2 * i] < v->scope_lo)
			v->scope_lo = scope[2 * i];
		if (scope[2 * i + 1] > v->scope_hi)
			v->scope_hi = scope[2 * i + 1];
	}
	if (nscope == 1)
		return;
	for (i = 0; i < nscope; i++) {
		struct scope_range *s = vec_push(&l->scopes);

		s->die_off = v->die_off;
		s->lo = scope[2 * i];
		s->hi = scope[2 * i + 1];
	}
}

/* Locals of die (a subprogram or lexical block), blocks depth first. */
static void add_locals(struct loader *l, Dwarf_Die *die, const Dwarf_Addr *scope, size_t nscope)
{
	Dwarf_Addr *mine;
	Dwarf_Die c;
	size_t n;

	if (dwarf_child(die, &c) != 0)
		return;
	do {
		switch (dwarf_tag(&c)) {
		case DW_TAG_variable:
			add_var(l, &c, false, false, scope, nscope);
			break;
		case DW_TAG_lexical_block:
			n = block_ranges(l, &c);
			if (!n) {	/* no ranges of its own: the enclosing scope */
				add_locals(l, &c, scope, nscope);
				break;
			}
			mine = xmalloc(n * 2 * sizeof(*mine));
			memcpy(mine, l->block.p, n * 2 * sizeof(*mine));
			add_locals(l, &c, mine, n);
			free(mine);
			break;
		default:
			break;
		}
	} while (dwarf_siblingof(&c, &c) == 0);
}

/* Parameters (results == false) or results of a subprogram, in order. */
static void add_params(struct loader *l, Dwarf_Die *die, bool results)
{
	Dwarf_Die c;

	if (dwarf_child(die, &c) != 0)
		return;
	do {
		bool is_result;

		if (dwarf_tag(&c) != DW_TAG_formal_parameter)
			continue;
		is_result = attr_flag(&c, DW_AT_variable_parameter);
		if (is_result == results)
			add_var(l, &c, true, is_result, NULL, 0);
	} while (dwarf_siblingof(&c, &c) == 0);
}

static void add_func(struct loader *l, Dwarf_Die *die)
{
	struct dwfunc *f;
	Dwarf_Addr lo, hi;
	Dwarf_Word line = 0;
	size_t first = l->vars.len;

	if (dwarf_lowpc(die, &lo) != 0 || dwarf_highpc(die, &hi) != 0)
		return;
	add_params(l, die, false);
	add_params(l, die, true);
	add_locals(l, die, NULL, 0);
	f = vec_push(&l->funcs);
	memset(f, 0, sizeof(*f));
	f->name = attr_name(die);
	f->lowpc = lo;
	f->highpc = hi;
	f->file = dwarf_decl_file(die);
	if (attr_udata(die, DW_AT_decl_line, &line))
		f->line = (int)line;
	f->nvars = (int)(l->vars.len - first);
	f->vars = (struct govar *)(uintptr_t)first;	/* fixed up in finish() */
}

static void add_named_type(struct loader *l, Dwarf_Die *die)
{
	struct named *n;
	const char *name = attr_name(die);

	if (!name)
		return;
	n = vec_push(&l->types);
	n->name = name;
	n->off = dwarf_dieoffset(die);
}

static void walk_unit(struct loader *l, Dwarf_Die *cu)
{
	Dwarf_Die c;
	int tag;

	if (dwarf_child(cu, &c) != 0)
		return;
	do {
		tag = dwarf_tag(&c);
		if (tag == DW_TAG_subprogram)
			add_func(l, &c);
		else if (is_type_tag(tag))
			add_named_type(l, &c);
	} while (dwarf_siblingof(&c, &c) == 0);
}

/* ---- indexes ---- */

static int cmp_func_pc(const void *a, const void *b)
{
	const struct dwfunc *x = a, *y = b;

	return x->lowpc < y->lowpc ? -1 : x->lowpc > y->lowpc;
}

/* Compiler-generated wrappers (ABI0 wrappers of assembly-callable functions)
 * carry the name of the function they wrap, in file "<autogenerated>". */
static bool is_wrapper(const struct dwfunc *f)
{
	return f->file && strstr(f->file, "<autogenerated>");
}

/* By name; among equal names the real function first, then by address. */
static int cmp_func_name(const void *a, const void *b)
{
	const struct dwfunc *x = *(const struct dwfunc *const *)a;
	const struct dwfunc *y = *(const struct dwfunc *const *)b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (is_wrapper(x) != is_wrapper(y))
		return is_wrapper(x) ? 1 : -1;
	return x->lowpc < y->lowpc ? -1 : x->lowpc > y->lowpc;
}

static int cmp_named(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int cmp_scope(const void *a, const void *b)
{
	const struct scope_range *x = a, *y = b;

	return x->die_off < y->die_off ? -1 : x->die_off > y->die_off;
}

/* qsort, for arrays that may be empty and then NULL (qsort's base must not be). */
static void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

/* Turns the loader's vectors into the dwarf's sorted, immutable arrays. */
static void finish(struct loader *l)
{
	struct dwarf *d = l->d;
	size_t i, n = 0;

	d->vars = l->vars.p;
	d->nvars = l->vars.len;
	d->funcs = l->funcs.p;
	for (i = 0; i < l->funcs.len; i++) {
		struct dwfunc *f = &d->funcs[i];

		f->vars = f->nvars ? d->vars + (uintptr_t)f->vars : NULL;
		if (f->name)
			d->funcs[n++] = *f;
	}
	d->nfuncs = n;
	sort(d->funcs, n, sizeof(*d->funcs), cmp_func_pc);
	d->by_name = xmalloc((n ? n : 1) * sizeof(const struct dwfunc *));
	for (i = 0; i < n; i++)
		d->by_name[i] = &d->funcs[i];
	sort(d->by_name, n, sizeof(const struct dwfunc *), cmp_func_name);

	d->types = l->types.p;
	d->ntypes = l->types.len;
	sort(d->types, d->ntypes, sizeof(*d->types), cmp_named);
	d->scopes = l->scopes.p;
	d->nscopes = l->scopes.len;
	sort(d->scopes, d->nscopes, sizeof(*d->scopes), cmp_scope);
	d->owned = l->owned.p;
	d->nowned = l->owned.len;
	free(l->block.p);
}

/* Interns every named type so that lookups never write to the dwarf. */
static void intern_named_types(struct loader *l)
{
	const struct named *types = l->types.p;
	size_t i;

	for (i = 0; i < l->types.len; i++)
		type_at(l, types[i].off);
}

/* ---- the private image of the DWARF sections ---- */

#define MAX_DEBUG_SECTIONS 32

struct debug_section {
	char name[32];			/* ".debug_info", also for ".zdebug_info" */
	const uint8_t *data;		/* in the file image */
	size_t len;
	int compression;		/* 0 none, 1 ELF zlib (SHF_COMPRESSED), 2 .zdebug zlib */
	size_t size;			/* inflated size */
	size_t off;			/* in the private image */
};

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Fills s from one section header; returns false if it is not usable DWARF. */
static bool debug_section(const struct elf_file *elf, const char *name, const struct elf_section *sh,
			  struct debug_section *s)
{
	Elf64_Chdr ch;

	if (sh->type == SHT_NOBITS || sh->offset > elf->size || sh->size > elf->size - sh->offset)
		return false;
	memset(s, 0, sizeof(*s));
	s->data = elf->map + sh->offset;
	s->len = sh->size;
	s->size = s->len;
	if (!strncmp(name, ".zdebug_", 8)) {
		if (s->len < 12 || memcmp(s->data, "ZLIB", 4))
			return false;
		snprintf(s->name, sizeof(s->name), ".%s", name + 2);
		s->compression = 2;
		s->size = be64(s->data + 4);
		return true;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (!(sh->flags & SHF_COMPRESSED))
		return true;
	if (s->len < sizeof(ch))
		return false;
	memcpy(&ch, s->data, sizeof(ch));
	if (ch.ch_type != ELFCOMPRESS_ZLIB)
		return false;
	s->compression = 1;
	s->size = ch.ch_size;
	return true;
}

/* The .debug_* sections of elf; returns how many (0: no DWARF). */
static int find_debug_sections(const struct elf_file *elf, struct debug_section *out)
{
	const char *name;
	int n = 0;
	bool info = false;

	for (size_t i = 0; i < elf->nsections && n < MAX_DEBUG_SECTIONS; i++) {
		name = elf->sections[i].name;
		if ((strncmp(name, ".debug_", 7) && strncmp(name, ".zdebug_", 8)) ||
		    strlen(name) >= sizeof(out[n].name) || strstr(name, "debug_frame"))
			continue;	/* libdw does not need the CFI here */
		if (!debug_section(elf, name, &elf->sections[i], &out[n]))
			continue;
		info |= !strcmp(out[n].name, ".debug_info");
		n++;
	}
	return info ? n : 0;
}

static int inflate_section(const struct elf_file *elf, const struct debug_section *s, char *dst)
{
	size_t hdr = s->compression == 1 ? sizeof(Elf64_Chdr) : 12;
	uLongf len = s->size;

	if (!s->compression) {
		memcpy(dst, s->data, s->len);
		return 0;
	}
	if (uncompress((Bytef *)dst, &len, s->data + hdr, s->len - hdr) != Z_OK || len != s->size)
		return err_set(GLIMPSE_ECORRUPT, "%s: cannot inflate %s", elf->path, s->name);
	return 0;
}

/* Builds d->image: an ELF file holding only the inflated DWARF sections of elf,
 * with the ELF header of elf, and opens it with libelf as d->elf. */
static int build_image(const struct elf_file *elf, struct debug_section *secs, int n, struct dwarf *d)
{
	Elf64_Ehdr *eh;
	Elf64_Shdr *sh;
	size_t off = sizeof(*eh), strtab, shoff, len;
	char *p;
	int i, rc;

	for (i = 0; i < n; i++) {
		secs[i].off = off;
		off = (off + secs[i].size + 7) & ~(size_t)7;
	}
	strtab = off;
	off += 1 + sizeof(".shstrtab");
	for (i = 0; i < n; i++)
		off += strlen(secs[i].name) + 1;
	shoff = (off + 7) & ~(size_t)7;
	len = shoff + (size_t)(n + 2) * sizeof(*sh);
	p = d->image = xcalloc(1, len);
	d->image_len = len;

	eh = (Elf64_Ehdr *)p;
	memcpy(eh->e_ident, elf->ident, EI_NIDENT);
	eh->e_type = elf->type;
	eh->e_machine = elf->machine;
	eh->e_version = EV_CURRENT;
	eh->e_ehsize = sizeof(*eh);
	eh->e_shoff = shoff;
	eh->e_shentsize = sizeof(*sh);
	eh->e_shnum = (Elf64_Half)(n + 2);
	eh->e_shstrndx = (Elf64_Half)(n + 1);

	sh = (Elf64_Shdr *)(p + shoff);
	off = strtab + 1;
	for (i = 0; i < n; i++) {
		size_t namelen = strlen(secs[i].name) + 1;

		rc = inflate_section(elf, &secs[i], p + secs[i].off);
		if (rc < 0)
			return rc;
		sh[i + 1] = (Elf64_Shdr){ .sh_name = (Elf64_Word)(off - strtab), .sh_type = SHT_PROGBITS,
					  .sh_offset = secs[i].off, .sh_size = secs[i].size,
					  .sh_addralign = 1 };
		memcpy(p + off, secs[i].name, namelen);	/* room counted above */
		off += namelen;
	}
	sh[n + 1] = (Elf64_Shdr){ .sh_name = (Elf64_Word)(off - strtab), .sh_type = SHT_STRTAB,
				  .sh_offset = strtab, .sh_size = shoff - strtab, .sh_addralign = 1 };
	memcpy(p + off, ".shstrtab", sizeof(".shstrtab"));

	d->elf = elf_memory(p, len);
	if (!d->elf)
		return err_set(GLIMPSE_ECORRUPT, "%s: DWARF image: %s", elf->path, elf_errmsg(-1));
	return 0;
}

/* ---- public: loading ---- */

int dwarf_load(const struct elf_file *elf, struct dwarf **out)
{
	struct loader l = {
		.funcs = { .elem = sizeof(struct dwfunc) },
		.vars = { .elem = sizeof(struct govar) },
		.types = { .elem = sizeof(struct named) },
		.scopes = { .elem = sizeof(struct scope_range) },
		.owned = { .elem = sizeof(void *) },
		.block = { .elem = 2 * sizeof(Dwarf_Addr) },
	};
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie, subdie;
	uint8_t unit_type;
	Dwarf_Half version;
	struct debug_section secs[MAX_DEBUG_SECTIONS];
	int nsecs, rc;

	*out = NULL;
	nsecs = find_debug_sections(elf, secs);
	if (!nsecs)
		return 1;
	l.d = xcalloc(1, sizeof(*l.d));
	rc = build_image(elf, secs, nsecs, l.d);
	if (rc < 0)
		goto fail;
	l.d->dw = dwarf_begin_elf(l.d->elf, DWARF_C_READ, NULL);
	if (!l.d->dw) {
		rc = err_set(GLIMPSE_ECORRUPT, "%s: cannot read DWARF: %s", elf->path, dwarf_errmsg(-1));
		goto fail;
	}
	while (dwarf_get_units(l.d->dw, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0) {
		if (dwarf_tag(&cudie) == DW_TAG_compile_unit)
			walk_unit(&l, &cudie);
	}
	intern_named_types(&l);
	finish(&l);
	*out = l.d;
	return 0;
fail:
	dwarf_free(l.d);
	return rc;
}

void dwarf_free(struct dwarf *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->nowned; i++)
		free(d->owned[i]);
	free(d->owned);
	free(d->map.keys);
	free(d->map.vals);
	free(d->funcs);
	free(d->vars);
	free(d->by_name);
	free(d->types);
	free(d->scopes);
	if (d->dw)
		dwarf_end(d->dw);
	if (d->elf)
		elf_end(d->elf);
	free(d->image);
	free(d);
}

size_t dwarf_footprint(const struct dwarf *d)
{
	if (!d)
		return 0;
	/* Owned blocks are types, fields and names: 64 bytes is their rough mean.
	 * libdw's abbreviations, CU list and line tables: a quarter of the image. */
	return sizeof(*d) + d->image_len + d->image_len / 4 + d->nfuncs * (sizeof(*d->funcs) + sizeof(void *)) +
	       d->nvars * sizeof(*d->vars) + d->ntypes * sizeof(*d->types) +
	       d->map.cap * (sizeof(*d->map.keys) + sizeof(void *)) + d->nscopes * sizeof(*d->scopes) +
	       d->nowned * (sizeof(*d->owned) + 64);
}

/* ---- public: lookups ---- */

size_t dwarf_nfuncs(const struct dwarf *d)
{
	return d ? d->nfuncs : 0;
}

const struct dwfunc *dwarf_func_at(const struct dwarf *d, size_t i)
{
	return d && i < d->nfuncs ? &d->funcs[i] : NULL;
}

const struct dwfunc *dwarf_func_by_pc(const struct dwarf *d, uint64_t pc)
{
	size_t lo = 0, hi, mid;

	if (!d || !d->nfuncs)
		return NULL;
	hi = d->nfuncs;
	while (hi - lo > 1) {	/* last function with lowpc <= pc */
		mid = lo + (hi - lo) / 2;
		if (d->funcs[mid].lowpc <= pc)
			lo = mid;
		else
			hi = mid;
	}
	if (pc < d->funcs[lo].lowpc || pc >= d->funcs[lo].highpc)
		return NULL;
	return &d->funcs[lo];
}

const struct dwfunc *dwarf_func_by_name(const struct dwarf *d, const char *name)
{
	size_t lo = 0, hi, mid;

	if (!d || !name)
		return NULL;
	hi = d->nfuncs;
	while (lo < hi) {	/* the first function with this name */
		mid = lo + (hi - lo) / 2;
		if (strcmp(d->by_name[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == d->nfuncs || strcmp(d->by_name[lo]->name, name))
		return NULL;
	return d->by_name[lo];
}

struct gotype *dwarf_type_by_name(const struct dwarf *d, const char *name)
{
	size_t lo = 0, hi, mid;

	if (!d || !name)
		return NULL;
	hi = d->ntypes;
	while (lo < hi) {	/* first entry >= name */
		mid = lo + (hi - lo) / 2;
		if (strcmp(d->types[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == d->ntypes || strcmp(d->types[lo].name, name))
		return NULL;
	return map_get(&d->map, d->types[lo].off);
}

/* ---- public: locations ---- */

/* Is pc inside the (multi-range) scope of var? */
static bool in_scope(const struct dwarf *d, const struct govar *var, uint64_t pc)
{
	struct scope_range key = { .die_off = var->die_off };
	const struct scope_range *s;

	if (!var->scope_lo && !var->scope_hi)
		return true;
	if (pc < var->scope_lo || pc >= var->scope_hi)
		return false;
	s = bsearch(&key, d->scopes, d->nscopes, sizeof(*s), cmp_scope);
	if (!s)
		return true;	/* one range: the hull is exact */
	while (s > d->scopes && s[-1].die_off == var->die_off)
		s--;
	for (; s < d->scopes + d->nscopes && s->die_off == var->die_off; s++)
		if (pc >= s->lo && pc < s->hi)
			return true;
	return false;
}

static int add_piece(struct varloc *out, const struct loc_piece *p, bool have, uint32_t size)
{
	struct loc_piece *q;

	if (out->npieces == LOC_MAX_PIECES)
		return err_set(GLIMPSE_EUNSUP, "location has more than %d pieces", LOC_MAX_PIECES);
	q = &out->pieces[out->npieces++];
	if (have)
		*q = *p;
	else
		*q = (struct loc_piece){ .kind = LOC_EMPTY };
	q->size = size;
	return 0;
}

/* Turns one location expression into pieces. Returns 0, 1 (nothing there), or < 0. */
static int eval_expr(const Dwarf_Op *ops, size_t n, uint64_t size, struct varloc *out)
{
	struct loc_piece cur = { 0 };
	bool have = false, any = false;
	int64_t konst = 0;
	uint64_t total;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		uint8_t op = ops[i].atom;

		if (op >= DW_OP_reg0 && op <= DW_OP_reg31) {
			cur = (struct loc_piece){ .kind = LOC_REG, .reg = op - DW_OP_reg0 };
			have = true;
		} else if (op >= DW_OP_lit0 && op <= DW_OP_lit31) {
			konst = op - DW_OP_lit0;
		} else {
			switch (op) {
			case DW_OP_regx:
				cur = (struct loc_piece){ .kind = LOC_REG, .reg = (int)ops[i].number };
				have = true;
				break;
			case DW_OP_call_frame_cfa:
				cur = (struct loc_piece){ .kind = LOC_CFA };
				have = true;
				break;
			case DW_OP_fbreg:
				cur = (struct loc_piece){ .kind = LOC_CFA, .off = (int64_t)ops[i].number };
				have = true;
				break;
			case DW_OP_addr:
				cur = (struct loc_piece){ .kind = LOC_ADDR, .off = (int64_t)ops[i].number };
				have = true;
				break;
			case DW_OP_consts:
			case DW_OP_constu:
			case DW_OP_const1s: case DW_OP_const1u:
			case DW_OP_const2s: case DW_OP_const2u:
			case DW_OP_const4s: case DW_OP_const4u:
			case DW_OP_const8s: case DW_OP_const8u:
				konst = (int64_t)ops[i].number;
				break;
			case DW_OP_plus:
				if (!have || cur.kind == LOC_REG)
					goto unsupported;
				cur.off += konst;
				break;
			case DW_OP_minus:
				if (!have || cur.kind == LOC_REG)
					goto unsupported;
				cur.off -= konst;
				break;
			case DW_OP_plus_uconst:
				if (!have || cur.kind == LOC_REG)
					goto unsupported;
				cur.off += (int64_t)ops[i].number;
				break;
			case DW_OP_piece:
				rc = add_piece(out, &cur, have, (uint32_t)ops[i].number);
				if (rc < 0)
					return rc;
				any |= have;
				have = false;
				break;
			default:
				goto unsupported;
			}
		}
	}
	if (out->npieces == 0) {
		if (!have)
			return 1;
		add_piece(out, &cur, true, (uint32_t)size);
		return 0;
	}
	for (i = 0, total = 0; i < (size_t)out->npieces; i++)
		total += out->pieces[i].size;
	if (size && total > size)	/* seen in go1.19-1.21 for type switches */
		return err_set(GLIMPSE_EUNSUP, "location pieces cover %" PRIu64 " bytes of a %" PRIu64
			       "-byte variable", total, size);
	return any ? 0 : 1;
unsupported:
	return err_set(GLIMPSE_EUNSUP, "unsupported DWARF location operation 0x%x", ops[i].atom);
}

static uint64_t var_size(const struct govar *var)
{
	return var->type ? var->type->size : 0;
}

static bool is_block_form(Dwarf_Attribute *attr)
{
	switch (dwarf_whatform(attr)) {
	case DW_FORM_block1:
	case DW_FORM_block2:
	case DW_FORM_block4:
	case DW_FORM_block:
	case DW_FORM_exprloc:
		return true;
	default:
		return false;
	}
}

static bool read_uleb(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	unsigned int shift = 0;

	*v = 0;
	while (*p < end && shift < 64) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

static bool read_sleb(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	unsigned int shift = 0;
	uint8_t b = 0;

	*v = 0;
	while (*p < end && shift < 64) {
		b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (b & 0x80)
		return false;
	if (shift < 64 && (b & 0x40))
		*v |= ~(uint64_t)0 << shift;
	return true;
}

static bool read_fixed(const uint8_t **p, const uint8_t *end, int n, bool sign, uint64_t *v)
{
	int i;

	if (end - *p < n)
		return false;
	*v = 0;
	for (i = 0; i < n; i++)
		*v |= (uint64_t)(*p)[i] << (8 * i);
	if (sign && n < 8 && (*v >> (8 * n - 1)) & 1)
		*v |= ~(uint64_t)0 << (8 * n);
	*p += n;
	return true;
}

/* Decodes the operations of a block-form location expression into ops.
 * libdw refuses block forms other than exprloc in DWARF 4+ units, and Go's
 * DWARF 4 uses DW_FORM_block1 for single-expression locations. Returns the
 * number of operations, or -1 for an operation eval_expr would not take. */
static int decode_block(const uint8_t *p, size_t len, Dwarf_Op *ops, int max)
{
	const uint8_t *end = p + len;
	int n = 0;
	bool ok;

	while (p < end) {
		Dwarf_Op *op;
		uint8_t atom = *p++;

		if (n == max)
			return -1;
		op = &ops[n++];
		memset(op, 0, sizeof(*op));
		op->atom = atom;
		if ((atom >= DW_OP_reg0 && atom <= DW_OP_reg31) ||
		    (atom >= DW_OP_lit0 && atom <= DW_OP_lit31))
			continue;
		switch (atom) {
		case DW_OP_call_frame_cfa:
		case DW_OP_plus:
		case DW_OP_minus:
			ok = true;
			break;
		case DW_OP_addr:
			ok = read_fixed(&p, end, 8, false, &op->number);
			break;
		case DW_OP_const1u: ok = read_fixed(&p, end, 1, false, &op->number); break;
		case DW_OP_const1s: ok = read_fixed(&p, end, 1, true, &op->number); break;
		case DW_OP_const2u: ok = read_fixed(&p, end, 2, false, &op->number); break;
		case DW_OP_const2s: ok = read_fixed(&p, end, 2, true, &op->number); break;
		case DW_OP_const4u: ok = read_fixed(&p, end, 4, false, &op->number); break;
		case DW_OP_const4s: ok = read_fixed(&p, end, 4, true, &op->number); break;
		case DW_OP_const8u:
		case DW_OP_const8s: ok = read_fixed(&p, end, 8, false, &op->number); break;
		case DW_OP_constu:
		case DW_OP_plus_uconst:
		case DW_OP_regx:
		case DW_OP_piece:
			ok = read_uleb(&p, end, &op->number);
			break;
		case DW_OP_consts:
		case DW_OP_fbreg:
			ok = read_sleb(&p, end, &op->number);
			break;
		default:
			ok = false;
			break;
		}
		if (!ok)
			return -1;
	}
	return n;
}

/* The one expression of a block-form location: 0 and ops, 1 if empty, < 0. */
static int block_expr(Dwarf_Attribute *attr, Dwarf_Op *ops, size_t *n)
{
	Dwarf_Block block;
	int rc;

	*n = 0;
	if (dwarf_formblock(attr, &block) != 0)
		return err_set(GLIMPSE_ECORRUPT, "bad location block: %s", dwarf_errmsg(-1));
	if (block.length == 0)
		return 1;
	rc = decode_block(block.data, block.length, ops, 4 * LOC_MAX_PIECES);
	if (rc < 0)
		return err_set(GLIMPSE_EUNSUP, "unsupported DWARF location expression");
	*n = (size_t)rc;
	return 0;
}

int dwarf_locate(const struct dwarf *d, const struct govar *var, uint64_t pc, struct varloc *out)
{
	Dwarf_Op ops[4 * LOC_MAX_PIECES];
	Dwarf_Attribute attr;
	Dwarf_Op *expr;
	size_t len;
	Dwarf_Die die;
	int n;

	memset(out, 0, sizeof(*out));
	if (!in_scope(d, var, pc))
		return 1;
	if (!dwarf_offdie(d->dw, var->die_off, &die))
		return err_set(GLIMPSE_ECORRUPT, "no DWARF entry at 0x%" PRIx64, var->die_off);
	if (!dwarf_attr(&die, DW_AT_location, &attr))
		return 1;
	if (is_block_form(&attr)) {
		n = block_expr(&attr, ops, &len);
		if (n)
			return n;
		return eval_expr(ops, len, var_size(var), out);
	}
	n = dwarf_getlocation_addr(&attr, pc, &expr, &len, 1);
	if (n < 0)
		return err_set(GLIMPSE_ECORRUPT, "location of %s: %s", var->name ? var->name : "?",
			       dwarf_errmsg(-1));
	if (n == 0 || len == 0)
		return 1;
	return eval_expr(expr, len, var_size(var), out);
}

static const char *const regnames[] = {
	"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
};

static void describe_piece(const struct loc_piece *p, struct buf *out)
{
	switch (p->kind) {
	case LOC_REG:
		if (p->reg >= 0 && p->reg <= 16)
			buf_puts(out, regnames[p->reg]);
		else if (p->reg >= 17 && p->reg <= 32)
			buf_printf(out, "xmm%d", p->reg - 17);
		else
			buf_printf(out, "reg%d", p->reg);
		break;
	case LOC_CFA:
		buf_printf(out, "cfa%+" PRId64, p->off);
		break;
	case LOC_ADDR:
		buf_printf(out, "0x%" PRIx64, (uint64_t)p->off);
		break;
	case LOC_EMPTY:
		buf_puts(out, "-");
		break;
	}
}

static void describe_varloc(const struct varloc *loc, struct buf *out)
{
	uint64_t at = 0;
	int i;

	if (loc->npieces == 1) {
		describe_piece(&loc->pieces[0], out);
		return;
	}
	for (i = 0; i < loc->npieces; i++) {
		if (i)
			buf_putc(out, ' ');
		describe_piece(&loc->pieces[i], out);
		buf_printf(out, "[%" PRIu64 ":%" PRIu64 "]", at, at + loc->pieces[i].size);
		at += loc->pieces[i].size;
	}
}

static void describe_expr(const Dwarf_Op *ops, size_t n, uint64_t size, struct buf *out)
{
	struct varloc loc;
	int rc = eval_expr(ops, n, size, &loc);

	if (rc == 0)
		describe_varloc(&loc, out);
	else if (rc == 1)
		buf_puts(out, "unavailable");
	else
		buf_puts(out, "unsupported");
}

/* Every entry of var's location list: "[lo,hi) desc; ...". */
static void describe_list(const struct dwarf *d, const struct govar *var, struct buf *out)
{
	Dwarf_Addr base, start, end;
	Dwarf_Attribute attr;
	Dwarf_Op *expr;
	ptrdiff_t off = 0;
	size_t len, n = 0;
	Dwarf_Die die;

	if (!dwarf_offdie(d->dw, var->die_off, &die) || !dwarf_attr(&die, DW_AT_location, &attr)) {
		buf_puts(out, "unavailable");
		return;
	}
	if (is_block_form(&attr)) {
		Dwarf_Op ops[4 * LOC_MAX_PIECES];
		int rc = block_expr(&attr, ops, &len);

		if (rc == 0)
			describe_expr(ops, len, var_size(var), out);
		else
			buf_puts(out, rc == 1 ? "unavailable" : "unsupported");
		return;
	}
	while ((off = dwarf_getlocations(&attr, off, &base, &start, &end, &expr, &len)) > 0) {
		if (n++)
			buf_puts(out, "; ");
		if (start != 0 || end != (Dwarf_Addr)-1)
			buf_printf(out, "[0x%" PRIx64 ",0x%" PRIx64 ") ", start, end);
		describe_expr(expr, len, var_size(var), out);
	}
	if (!n)
		buf_puts(out, "unavailable");
}

void dwarf_describe_loc(const struct dwarf *d, const struct govar *var, uint64_t pc, struct buf *out)
{
	struct varloc loc;
	int rc;

	if (pc == 0) {
		describe_list(d, var, out);
		return;
	}
	rc = dwarf_locate(d, var, pc, &loc);
	if (rc == 0)
		describe_varloc(&loc, out);
	else if (rc == 1)
		buf_puts(out, "unavailable");
	else
		buf_puts(out, "unsupported");
}
