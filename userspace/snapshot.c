/* snapshot.c - turn raw goroutine copies into goroutines with states, symbolized
 * stacks and decoded variables; store them and print them.
 *
 * The process is read once, by reader.c (BPF iterator or process_vm_readv), and is
 * never stopped. Unwinding, symbolizing and decoding then work on the copies; only
 * values that live outside the copied stacks (heap objects that variables point to)
 * are read afterwards, with bounded process_vm_readv reads.
 */
#include "snapshot.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "dwarf.h"
#include "err.h"
#include "gobin.h"
#include "goruntime.h"
#include "json.h"
#include "pclntab.h"
#include "store.h"
#include "unwind.h"

#define MAX_FRAMES 256	/* physical + inlined frames kept per goroutine */

void snapshot_opts_default(struct snapshot_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->vars = true;
	o->reader = READ_AUTO;
	o->read.max_stack = READER_DEFAULT_MAX_STACK;
	decode_limits_default(&o->decode);
}

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define TARGET_PAGE 4096u
#define PAGE_CACHE_MAX 8192	/* pages kept per snapshot (32 MiB) */

/* The target's pages read so far while decoding one snapshot: the variables of
 * 10k goroutines point into the same heap pages and static strings again and
 * again, and a process_vm_readv costs microseconds, so each page is read once,
 * whole. Open addressing on the page address; data NULL marks an unreadable page. */
struct page_cache {
	struct cached_page {
		uint64_t addr;		/* page address + 1 (0: empty slot) */
		uint8_t *data;
	} *slots;
	size_t cap, n;
	uint64_t reads;			/* process_vm_readv calls made */
};

/* Memory of the target as seen by the decoder: the goroutine's copied stack
 * first (consistent with its frames), then the live process through pages. */
struct target_mem {
	pid_t pid;
	const struct raw_g *g;
	struct page_cache *pages;	/* NULL: read the process directly every time */
};

static int read_process(struct target_mem *m, uint64_t addr, void *dst, size_t n)
{
	struct iovec local = { dst, n }, remote = { (void *)(uintptr_t)addr, n };

	if (m->pages)
		m->pages->reads++;
	return process_vm_readv(m->pid, &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -EFAULT;
}

static size_t page_slot(const struct page_cache *pc, uint64_t page)
{
	size_t i = (size_t)((page >> 12) * 0x9e3779b97f4a7c15ull >> 20) & (pc->cap - 1);

	while (pc->slots[i].addr && pc->slots[i].addr != page + 1)
		i = (i + 1) & (pc->cap - 1);
	return i;
}

static void page_cache_grow(struct page_cache *pc)
{
	struct cached_page *old = pc->slots;
	size_t oldcap = pc->cap;

	pc->cap = oldcap ? 2 * oldcap : 1024;
	pc->slots = xcalloc(pc->cap, sizeof(*pc->slots));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].addr)
			pc->slots[page_slot(pc, old[i].addr - 1)] = old[i];
	free(old);
}

/* The cached copy of the page at page (NULL: unreadable), reading it on first use.
 * Returns false when the cache is full and the page is not in it. */
static bool page_get(struct target_mem *m, uint64_t page, const uint8_t **data)
{
	struct page_cache *pc = m->pages;
	struct cached_page *e;

	if (2 * (pc->n + 1) > pc->cap) {
		if (pc->n >= PAGE_CACHE_MAX) {
			e = &pc->slots[page_slot(pc, page)];
			*data = e->data;
			return e->addr != 0;
		}
		page_cache_grow(pc);
	}
	e = &pc->slots[page_slot(pc, page)];
	if (!e->addr) {
		e->addr = page + 1;
		e->data = xmalloc(TARGET_PAGE);
		if (read_process(m, page, e->data, TARGET_PAGE) != 0) {
			free(e->data);
			e->data = NULL;
		}
		pc->n++;
	}
	*data = e->data;
	return true;
}

static void page_cache_free(struct page_cache *pc)
{
	for (size_t i = 0; i < pc->cap; i++)
		free(pc->slots[i].data);
	free(pc->slots);
	memset(pc, 0, sizeof(*pc));
}

static int target_read(void *ctx, uint64_t addr, void *dst, size_t n)
{
	struct target_mem *m = ctx;

	/* written so that a garbage addr near 2^64 cannot wrap around */
	if (m->g && addr >= m->g->stack_addr && n <= m->g->stack_len &&
	    addr - m->g->stack_addr <= m->g->stack_len - n) {
		memcpy(dst, m->g->stack + (addr - m->g->stack_addr), n);
		return 0;
	}
	if (n == 0)
		return 0;
	if (m->pages && n <= TARGET_PAGE && addr <= UINT64_MAX - n) {
		uint64_t page = addr & ~(uint64_t)(TARGET_PAGE - 1), off = addr - page;
		size_t first = n < TARGET_PAGE - off ? n : TARGET_PAGE - off;
		const uint8_t *p, *q = NULL;

		/* A value spans at most two pages; both must be readable. */
		if (page_get(m, page, &p) && (first == n || page_get(m, page + TARGET_PAGE, &q))) {
			if (!p || (first < n && !q))
				return -EFAULT;
			memcpy(dst, p + off, first);
			if (first < n)
				memcpy((uint8_t *)dst + first, q, n - first);
			return 0;
		}
	}
	return read_process(m, addr, dst, n);
}

static uint64_t rd64(const uint8_t *p, int off)
{
	uint64_t v;

	memcpy(&v, p + off, 8);
	return v;
}

static uint32_t rd32(const uint8_t *p, int off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return v;
}

/* Adds one label: key and value are Go strings (data pointer, length) in the target. */
static void json_label(struct json *j, struct target_mem *m, uint64_t kp, uint64_t kn, uint64_t vp, uint64_t vn)
{
	char k[256], v[256];

	kn = kn < sizeof(k) ? kn : sizeof(k);
	vn = vn < sizeof(v) ? vn : sizeof(v);
	if (target_read(m, kp, k, kn) != 0)
		kn = 0;
	if (target_read(m, vp, v, vn) != 0)
		vn = 0;
	json_keyn(j, k, kn);
	json_strn(j, v, vn);
}

/* pprof labels: *labelMap; a map[string]string up to Go 1.23, a sorted
 * []struct{key, value string} from Go 1.24. Returns JSON or NULL. */
static char *read_labels(const struct gobin *bin, struct target_mem *m, uint64_t ptr)
{
	struct buf out = { 0 };
	struct json j;
	int shown = 0;

	if (!ptr)
		return NULL;
	json_init(&j, &out);
	json_obj(&j);
	if (bin->go_minor >= 24) {
		uint64_t hdr[3];

		if (target_read(m, ptr, hdr, sizeof(hdr)) == 0 && hdr[1] <= 64) {
			for (uint64_t i = 0; i < hdr[1]; i++) {
				uint64_t kv[4];

				if (target_read(m, hdr[0] + i * 32, kv, sizeof(kv)) != 0)
					break;
				json_label(&j, m, kv[0], kv[1], kv[2], kv[3]);
				shown++;
			}
		}
	} else {
		/* classic hmap: count@0, B@9, buckets@16; bucket: tophash[8], keys[8]string,
		 * elems[8]string, overflow *bucket (272 bytes). */
		uint64_t hmap, buckets, count;
		uint8_t hdr[48], bucket[272];

		if (target_read(m, ptr, &hmap, 8) == 0 && hmap && target_read(m, hmap, hdr, sizeof(hdr)) == 0) {
			count = rd64(hdr, 0);
			buckets = rd64(hdr, 16);
			for (uint64_t b = 0; b < (1ull << (hdr[9] > 6 ? 6 : hdr[9])) && shown < (int)count; b++) {
				uint64_t at = buckets + b * sizeof(bucket);

				for (int chain = 0; at && chain < 8; chain++) {
					if (target_read(m, at, bucket, sizeof(bucket)) != 0)
						break;
					for (int s = 0; s < 8; s++) {
						if (bucket[s] <= 4) /* empty or evacuated */
							continue;
						json_label(&j, m, rd64(bucket, 8 + 16 * s), rd64(bucket, 16 + 16 * s),
							   rd64(bucket, 136 + 16 * s), rd64(bucket, 144 + 16 * s));
						shown++;
					}
					at = rd64(bucket, 264);
				}
			}
		}
	}
	json_end(&j);
	if (!shown) {
		buf_free(&out);
		return NULL;
	}
	return buf_detach(&out);
}

static const char *kind_of(const struct govar *v)
{
	return v->is_result ? "result" : v->is_param ? "param" : "local";
}

/* What the model says about the frames at one pc: its inline expansion, the
 * DWARF function and where each of its variables is. 10k goroutines stop at a
 * few hundred distinct pcs, so a snapshot asks the pclntab and libdw once per
 * pc, not once per frame. Each part is filled on first use. */
struct pc_vars {
	uint64_t pc;			/* run-time lookup pc + 1 (0: empty slot) */
	bool located;			/* df and locs are set */
	const struct dwfunc *df;	/* NULL: no DWARF function there */
	struct varloc *locs;		/* df->nvars; npieces < 0: not live at pc */
	int ninl;			/* inline frames (pcln_frames' result), 0: not expanded yet */
	struct pcln_frame *inl;
};

struct pc_cache {
	struct pc_vars *slots;
	size_t cap, n;
	struct unwind_cache frames;	/* function and frame size of each pc */
};

static struct pc_vars *pc_slot(struct pc_cache *c, uint64_t pc)
{
	size_t i = (size_t)(pc * 0x9e3779b97f4a7c15ull >> 32) & (c->cap - 1);

	while (c->slots[i].pc && c->slots[i].pc != pc + 1)
		i = (i + 1) & (c->cap - 1);
	return &c->slots[i];
}

/* The entry of run-time lookup pc, empty when new. */
static struct pc_vars *pc_entry(struct pc_cache *c, uint64_t pc)
{
	struct pc_vars *e;

	if (2 * (c->n + 1) > c->cap) {
		struct pc_vars *old = c->slots;
		size_t oldcap = c->cap;

		c->cap = oldcap ? 2 * oldcap : 256;
		c->slots = xcalloc(c->cap, sizeof(*c->slots));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].pc)
				*pc_slot(c, old[i].pc - 1) = old[i];
		free(old);
	}
	e = pc_slot(c, pc);
	if (!e->pc) {
		e->pc = pc + 1;
		c->n++;
	}
	return e;
}

/* The inline frames of link-time pc tpc in f, innermost first, expanded once
 * per snapshot; sets *n (pcln_frames' result: <= 0 on failure). */
static const struct pcln_frame *pc_frames(const struct snapshot *s, struct pc_cache *c, const struct gofunc *f,
					  uint64_t tpc, int *n)
{
	struct pc_vars *e = pc_entry(c, tpc + s->bias);

	if (!e->ninl) {
		struct pcln_frame inl[16];
		int ni = pcln_frames(s->bin->pcln, f, tpc, inl, 16);

		e->ninl = ni ? ni : -1;
		if (ni > 0) {
			e->inl = xmalloc(sizeof(*e->inl) * (size_t)ni);
			memcpy(e->inl, inl, sizeof(*e->inl) * (size_t)ni);
		}
	}
	*n = e->ninl;
	return e->inl;
}

/* The variables of the frame at run-time lookup pc, located once per snapshot. */
static const struct pc_vars *pc_vars_at(const struct snapshot *s, struct pc_cache *c, uint64_t pc)
{
	struct pc_vars *e = pc_entry(c, pc);

	if (e->located)
		return e;
	e->located = true;
	e->df = dwarf_func_by_pc(s->bin->dwarf, pc - s->bias);
	if (!e->df || !e->df->nvars)
		return e;
	e->locs = xcalloc((size_t)e->df->nvars, sizeof(*e->locs));
	for (int i = 0; i < e->df->nvars; i++)
		if (dwarf_locate(s->bin->dwarf, &e->df->vars[i], pc - s->bias, &e->locs[i]) != 0)
			e->locs[i].npieces = -1;
	err_clear();
	return e;
}

static void pc_cache_free(struct pc_cache *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		free(c->slots[i].locs);
		free(c->slots[i].inl);
	}
	free(c->slots);
	unwind_cache_free(&c->frames);
	memset(c, 0, sizeof(*c));
}

/* Assembles var's bytes from where loc says they are in the frame whose CFA is
 * cfa; returns NULL with *why set when the value is not available there. */
static uint8_t *var_bytes(const struct snapshot *s, struct target_mem *m, const struct govar *v,
			  const struct varloc *loc, uint64_t cfa, const char **why)
{
	uint64_t size = v->type ? v->type->size : 0, at = 0;
	uint8_t *bytes;

	if (!v->type || size == 0 || size > (1 << 20)) {
		*why = size ? "too large" : "unknown type";
		return NULL;
	}
	if (loc->npieces < 0) {
		*why = "not live at this pc";
		return NULL;
	}
	bytes = xcalloc(1, size);
	for (int i = 0; i < loc->npieces; i++) {
		const struct loc_piece *p = &loc->pieces[i];
		uint64_t len = loc->npieces == 1 ? size : p->size, addr;

		if (at + len > size)
			len = size - at;
		switch (p->kind) {
		case LOC_CFA: addr = cfa + (uint64_t)p->off; break;
		case LOC_ADDR: addr = (uint64_t)p->off + s->bias; break;
		case LOC_REG:
			/* Go has no callee-saved registers: a register value in a frame
			 * that made a call is gone. */
			*why = "in a register";
			free(bytes);
			return NULL;
		default:
			*why = "optimized out";
			free(bytes);
			return NULL;
		}
		if (target_read(m, addr, bytes + at, len) != 0) {
			*why = "unreadable";
			free(bytes);
			return NULL;
		}
		at += len;
	}
	return bytes;
}

static void frame_vars(const struct snapshot *s, struct decoder *dec, struct target_mem *m, struct pc_cache *pcs,
		       struct snap_frame *fr, uint64_t lookup_pc, uint64_t cfa)
{
	const struct pc_vars *pv = pc_vars_at(s, pcs, lookup_pc);
	const struct dwfunc *df = pv->df;
	struct buf val = { 0 };

	if (!df || !df->nvars)
		return;
	fr->vars = xcalloc((size_t)df->nvars, sizeof(*fr->vars));
	for (int i = 0; i < df->nvars; i++) {
		const struct govar *v = &df->vars[i];
		struct snap_var *sv = &fr->vars[fr->nvars++];
		uint8_t *bytes;

		sv->name = v->name;
		sv->kind = kind_of(v);
		sv->type = v->type && v->type->name ? v->type->name : "?";
		bytes = var_bytes(s, m, v, &pv->locs[i], cfa, &sv->unavailable);
		if (!bytes)
			continue;
		buf_reset(&val);
		if (decode_value(dec, v->type, bytes, 0, &val, &sv->truncated) == 0)
			sv->value = xstrdup(buf_str(&val));
		else
			sv->unavailable = "undecodable";
		free(bytes);
	}
	buf_free(&val);
}

/* Frames whose variables are the runtime's own bookkeeping, not the service's. */
static bool runtime_frame(const char *func)
{
	return strncmp(func, "runtime.", 8) == 0 || strncmp(func, "internal/", 9) == 0;
}

static uint64_t fnv(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 1099511628211ull;
	}
	return h;
}

/* Why a goroutine has no stack to walk, or NULL when it has one. */
static const char *no_stack_reason(const struct raw_g *rg)
{
	if (rg->src != RAW_SRC_NONE && rg->stack_len)
		return NULL;
	if (rg->on_cpu)
		return "running on a CPU: no stack captured (never a stale one)";
	if (rg->no_thread)
		return "running, but its thread was not found";
	if (rg->sp_outside)
		return "stack pointer outside the goroutine's stack";
	if (rg->read_failed)
		return "stack unreadable";
	return "no saved stack";
}

/* Fills g from rg; m is the target's memory with rg's stack (dec reads through it too). */
static void build_goroutine(struct snapshot *s, struct decoder *dec, struct target_mem *m, struct pc_cache *pcs,
			    const struct raw_g *rg, struct snap_goroutine *g, const struct snapshot_opts *o,
			    int64_t mono_to_real)
{
	const struct go_offsets *off = &s->bin->offsets;
	const struct pcln *pcln = s->bin->pcln;
	struct uframe uf[UNWIND_MAX_FRAMES];
	struct snap_frame frames[MAX_FRAMES];
	enum unwind_end end;
	uint64_t gopc;
	bool trap = rg->src == RAW_SRC_THREAD;
	int nuf, nfr = 0;
	uint8_t reason;

	g->goid = rd64(rg->hdr, off->g_goid);
	g->status = rd32(rg->hdr, off->g_atomicstatus) & ~(uint32_t)G_SCAN;
	g->torn = rg->torn;
	g->thread = rg->tid;
	reason = rg->hdr[off->g_waitreason];
	if (g->status == G_WAITING)
		g->wait_reason = waitreason_name(s->bin->go_minor, reason);
	if (off->g_waitsince >= 0) {
		int64_t ws = (int64_t)rd64(rg->hdr, off->g_waitsince);

		g->wait_since_ns = ws > 0 ? ws + mono_to_real : 0;
	}
	if (off->g_parentgoid >= 0)
		g->parent_goid = rd64(rg->hdr, off->g_parentgoid);
	gopc = rd64(rg->hdr, off->g_gopc);
	if (gopc) {
		const struct gofunc *cf = pcln_find(pcln, gopc - s->bias);
		const char *file;
		int line;

		if (cf) {
			uint64_t tpc = gopc - s->bias > cf->entry ? gopc - s->bias - 1 : gopc - s->bias;

			g->created_by = cf->name;
			if (pcln_fileline(pcln, cf, tpc, &file, &line) == 0) {
				struct buf b = { 0 };

				buf_printf(&b, "%s:%d", file, line);
				g->created_at = buf_detach(&b);
			}
		}
	}
	if (off->g_labels >= 0)
		g->labels = read_labels(s->bin, m, rd64(rg->hdr, off->g_labels));

	g->stack_note = no_stack_reason(rg);
	if (g->stack_note)
		return;
	nuf = unwind_cached(s->bin, &pcs->frames, s->bias, rg->ip, rg->sp, rg->stack, rg->stack_addr, rg->stack_len, uf,
			    UNWIND_MAX_FRAMES, &end);
	if (end != UNWIND_DONE)
		g->stack_note = unwind_end_name(end);
	g->stack_hash = 14695981039346656037ull;
	for (int i = 0; i < nuf && nfr < MAX_FRAMES; i++) {
		const struct pcln_frame *inl;
		struct pcln_frame unknown;
		uint64_t link = uf[i].pc - s->bias;
		/* Callers' pcs are return addresses: look up the call instruction. */
		uint64_t tpc = (i == 0 && trap) || !uf[i].fn || link <= uf[i].fn->entry ? link : link - 1;
		int ni;

		g->stack_hash = fnv(g->stack_hash, link);
		if (!uf[i].fn) {
			frames[nfr++] = (struct snap_frame){ .func = "?", .file = "?", .pc = link };
			continue;
		}
		inl = pc_frames(s, pcs, uf[i].fn, tpc, &ni);
		if (ni <= 0) {
			err_clear();
			unknown = (struct pcln_frame){ uf[i].fn->name, "?", 0, false, uf[i].fn->funcid };
			inl = &unknown;
			ni = 1;
		}
		for (int k = 0; k < ni && nfr < MAX_FRAMES; k++) {
			/* Like Go's tracebacks, elide autogenerated wrappers (go statement
			 * and method wrappers) unless they called a panic. */
			if (pcln_is_wrapper(pcln, inl[k].funcid) && nfr > 0 &&
			    strcmp(frames[nfr - 1].func, "runtime.gopanic") != 0 &&
			    strcmp(frames[nfr - 1].func, "runtime.sigpanic") != 0 &&
			    strcmp(frames[nfr - 1].func, "runtime.panicwrap") != 0)
				continue;
			frames[nfr] = (struct snap_frame){
				.func = inl[k].func, .file = inl[k].file, .line = inl[k].line, .pc = link,
				.offset = link - uf[i].fn->entry, .inlined = inl[k].inlined,
			};
			/* Variables belong to the physical frame (the outermost of its inline group). */
			if (k == ni - 1 && o->vars && s->bin->dwarf && (o->runtime_vars || !runtime_frame(inl[k].func)))
				frame_vars(s, dec, m, pcs, &frames[nfr], tpc + s->bias, uf[i].cfa);
			nfr++;
		}
	}
	g->nframes = nfr;
	g->frames = xmalloc(sizeof(*frames) * (size_t)(nfr ? nfr : 1));
	memcpy(g->frames, frames, sizeof(*frames) * (size_t)nfr);
}

int snapshot_take(const struct gobin *bin, pid_t pid, const struct snapshot_opts *o, struct snapshot *out)
{
	struct raw_snapshot raw;
	struct decoder dec;
	struct page_cache pages = { 0 };
	struct pc_cache pcs = { 0 };
	/* GLIMPSE_DECODE_NO_PAGES=1: every read a process_vm_readv (for comparison). */
	struct target_mem m = { pid, NULL, getenv("GLIMPSE_DECODE_NO_PAGES") ? NULL : &pages };
	int64_t t0, mono_to_real;
	int rc;

	memset(out, 0, sizeof(*out));
	out->pid = pid;
	out->bin = bin;
	rc = gobin_bias(bin, pid, &out->bias);
	if (rc)
		return rc;
	if (o->reader == READ_VM) {
		rc = reader_vm_snapshot(pid, &bin->offsets, out->bias, &o->read, &raw);
	} else if (o->bpf && o->reader == READ_AUTO) {
		rc = reader_snapshot_with(o->bpf, pid, &bin->offsets, out->bias, &o->read, &raw);
	} else if (o->bpf) {
		rc = reader_bpf_snapshot(o->bpf, pid, &bin->offsets, out->bias, &o->read, &raw);
	} else if (o->reader == READ_BPF) {
		struct reader_bpf *r;

		rc = reader_bpf_open_for(pid, &bin->offsets, out->bias, &o->read, &r);
		if (!rc) {
			rc = reader_bpf_snapshot(r, pid, &bin->offsets, out->bias, &o->read, &raw);
			reader_bpf_close(r);
		}
	} else {
		rc = reader_snapshot(pid, &bin->offsets, out->bias, &o->read, true, &raw);
	}
	if (rc)
		return rc;
	if (raw.n == 0) {
		/* A live Go process always has goroutines: an empty read is a failure. */
		const char *reader = raw.reader ? raw.reader : "?";

		raw_snapshot_free(&raw);
		return err_set(EIO, "pid %d: the %s reader found no goroutines (allgs looked empty)", (int)pid, reader);
	}
	snprintf(out->reader_note, sizeof(out->reader_note), "%s", raw.fallback);
	t0 = now_ns(CLOCK_MONOTONIC);
	mono_to_real = now_ns(CLOCK_REALTIME) - t0;
	out->reader = raw.reader;
	out->taken_at = (int64_t)raw.started_ns;
	out->duration_us = (int64_t)(raw.duration_ns / 1000);
	out->torn = raw.torn;
	if (!bin->dwarf)
		out->vars_note = xstrdup("no variables: the binary has no DWARF (stripped)");
	else if (!o->vars)
		out->vars_note = xstrdup("no variables: --no-vars");
	decoder_init(&dec, bin, target_read, &m, out->bias);
	dec.lim = o->decode;
	out->gs = xcalloc(raw.n ? raw.n : 1, sizeof(*out->gs));
	for (size_t i = 0; i < raw.n; i++) {
		m.g = &raw.gs[i];
		build_goroutine(out, &dec, &m, &pcs, &raw.gs[i], &out->gs[out->n++], o, mono_to_real);
	}
	if (getenv("GLIMPSE_DECODE_PROFILE"))
		fprintf(stderr, "decode: %zu goroutines, %" PRIu64 " process_vm_readv, %zu pages cached, %zu pcs\n",
			out->n, pages.reads, pages.n, pcs.n);
	page_cache_free(&pages);
	pc_cache_free(&pcs);
	raw_snapshot_free(&raw);
	out->decode_us = (now_ns(CLOCK_MONOTONIC) - t0) / 1000;
	return 0;
}

void snapshot_free(struct snapshot *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct snap_goroutine *g = &s->gs[i];

		for (int f = 0; f < g->nframes; f++) {
			for (int v = 0; v < g->frames[f].nvars; v++)
				free(g->frames[f].vars[v].value);
			free(g->frames[f].vars);
		}
		free(g->frames);
		free(g->created_at);
		free(g->labels);
	}
	free(s->gs);
	free(s->vars_note);
	memset(s, 0, sizeof(*s));
}

/* Inserts g's stack under hash with its frames; sets *id. */
static int insert_stack(struct store *st, const struct snap_goroutine *g, const char *hash, int64_t *id)
{
	int rc, top = -1;

	for (int f = 0; f < g->nframes && top < 0; f++) /* the innermost frame outside the runtime */
		if (!go_runtime_frame(g->frames[f].func))
			top = f;
	for (int f = g->nframes - 1; f >= 0 && top < 0; f--) /* else the runtime function it runs */
		if (f == 0 || strcmp(g->frames[f].func, "runtime.goexit") != 0)
			top = f;
	rc = store_run(st, "INSERT INTO stacks (hash, depth, top, top_func) VALUES (?, ?, ?, ?)", id, "titt", hash,
		       (int64_t)g->nframes, g->frames[0].func, g->frames[top].func);
	for (int f = 0; !rc && f < g->nframes; f++) {
		const struct snap_frame *fr = &g->frames[f];

		rc = store_run(st, "INSERT INTO frames VALUES (?, ?, ?, ?, ?, ?, ?)", NULL, "iittiii", *id, (int64_t)f,
			       fr->func, fr->file, (int64_t)fr->line, (int64_t)fr->pc, (int64_t)fr->inlined);
	}
	return rc;
}

/* The stacks.id of each distinct stack of one snapshot being stored: 10k
 * goroutines share a few hundred stacks, so the store is asked once per stack. */
struct stack_ids {
	struct stack_id {
		uint64_t key;	/* stack_hash ^ fnv(nframes), never 0 in a used slot */
		int nframes;
		int64_t id;
	} *slots;
	size_t cap, n;
};

static struct stack_id *stack_slot(struct stack_ids *m, uint64_t key, int nframes)
{
	size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 32) & (m->cap - 1);

	while (m->slots[i].key && (m->slots[i].key != key || m->slots[i].nframes != nframes))
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

/* The slot of (key, nframes), empty (key 0) if the stack is new; grows m as needed. */
static struct stack_id *stack_lookup(struct stack_ids *m, uint64_t key, int nframes)
{
	if (2 * (m->n + 1) > m->cap) {
		struct stack_id *old = m->slots;
		size_t oldcap = m->cap;

		m->cap = oldcap ? 2 * oldcap : 256;
		m->slots = xcalloc(m->cap, sizeof(*m->slots));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].key)
				*stack_slot(m, old[i].key, old[i].nframes) = old[i];
		free(old);
	}
	return stack_slot(m, key ? key : 1, nframes);
}

static int store_stack(struct store *st, struct stack_ids *ids, const struct snap_goroutine *g, int64_t *id)
{
	uint64_t key = g->stack_hash ^ fnv(0, (uint64_t)g->nframes);
	struct stack_id *slot = stack_lookup(ids, key, g->nframes);
	char hash[40];
	int rc;

	if (slot->key) {
		*id = slot->id;
		return 0;
	}
	snprintf(hash, sizeof(hash), "%016" PRIx64 "-%d", key, g->nframes);
	rc = store_run(st, "SELECT id FROM stacks WHERE hash = ?", id, "t", hash);
	if (!rc && !*id)
		rc = insert_stack(st, g, hash, id);
	if (!rc) {
		*slot = (struct stack_id){ .key = key ? key : 1, .nframes = g->nframes, .id = *id };
		ids->n++;
	}
	return rc;
}

/* ---- bulk inserts: ROWS_PER_INSERT rows per statement, values bound in place ---- */

#define ROWS_PER_INSERT 32

/* One row of goroutines. */
struct row {
	const struct snap_goroutine *g;
	int64_t stack;			/* stacks.id, 0 for none */
	const char *vars;		/* goroutines.vars, NULL for none */
	int vars_len;
};

struct table_rows {
	const char *head;		/* INSERT ... VALUES */
	int ncols;
	void (*bind)(sqlite3_stmt *s, int at, int64_t snapshot, const struct row *r);
	char one[256], many[ROWS_PER_INSERT * 48];	/* the statement for one row and for ROWS_PER_INSERT */
};

/* Rows of one table waiting to be inserted. */
struct rows {
	struct store *st;
	int64_t snapshot;
	struct table_rows *table;
	int n;
	struct row pending[ROWS_PER_INSERT];
};

static void bind_text(sqlite3_stmt *s, int at, const char *v)
{
	if (v)
		sqlite3_bind_text(s, at, v, -1, SQLITE_STATIC); /* the snapshot outlives the step */
	else
		sqlite3_bind_null(s, at);
}

/* 0 binds NULL */
static void bind_nonzero(sqlite3_stmt *s, int at, int64_t v)
{
	if (v)
		sqlite3_bind_int64(s, at, v);
	else
		sqlite3_bind_null(s, at);
}

static void bind_goroutine(sqlite3_stmt *s, int at, int64_t snapshot, const struct row *r)
{
	const struct snap_goroutine *g = r->g;

	sqlite3_bind_int64(s, at, snapshot);
	sqlite3_bind_int64(s, at + 1, (int64_t)g->goid);
	bind_text(s, at + 2, gstatus_name(g->status));
	bind_text(s, at + 3, g->wait_reason);
	bind_nonzero(s, at + 4, g->wait_since_ns);
	bind_text(s, at + 5, g->created_by);
	bind_text(s, at + 6, g->created_at);
	bind_nonzero(s, at + 7, (int64_t)g->parent_goid);
	bind_text(s, at + 8, g->labels);
	bind_nonzero(s, at + 9, (int64_t)g->thread);
	bind_nonzero(s, at + 10, r->stack);
	bind_text(s, at + 11, g->stack_note);
	sqlite3_bind_int64(s, at + 12, (int64_t)g->torn);
	if (r->vars)
		sqlite3_bind_text(s, at + 13, r->vars, r->vars_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, at + 13);
}

static struct table_rows goroutine_rows = { "INSERT OR REPLACE INTO goroutines VALUES ", 14, bind_goroutine, "", "" };

static void build_sql(struct table_rows *t)
{
	struct buf b = { 0 };

	for (int r = 0; r < ROWS_PER_INSERT; r++) {
		buf_puts(&b, r ? ", (" : "(");
		for (int c = 0; c < t->ncols; c++)
			buf_puts(&b, c ? ", ?" : "?");
		buf_putc(&b, ')');
		if (r == 0)
			snprintf(t->one, sizeof(t->one), "%s%s", t->head, buf_str(&b));
	}
	snprintf(t->many, sizeof(t->many), "%s%s", t->head, buf_str(&b));
	buf_free(&b);
}

static void build_all_sql(void)
{
	build_sql(&goroutine_rows);
}

/* Inserts the pending rows: one statement for a full batch, else row by row. */
static int rows_flush(struct rows *rs)
{
	const struct table_rows *t = rs->table;
	sqlite3_stmt *s;
	int rc = 0;

	if (!rs->n)
		return 0;
	if (rs->n == ROWS_PER_INSERT) {
		s = store_prepare(rs->st, t->many);
		if (!s)
			return -EIO;
		for (int i = 0; i < rs->n; i++)
			t->bind(s, 1 + i * t->ncols, rs->snapshot, &rs->pending[i]);
		rc = store_step(rs->st, s);
	} else {
		s = store_prepare(rs->st, t->one);
		if (!s)
			return -EIO;
		for (int i = 0; !rc && i < rs->n; i++) {
			t->bind(s, 1, rs->snapshot, &rs->pending[i]);
			rc = store_step(rs->st, s);
		}
	}
	rs->n = 0;
	return rc;
}

static int rows_add(struct rows *rs, const struct row *r)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, build_all_sql);
	rs->pending[rs->n++] = *r;
	return rs->n == ROWS_PER_INSERT ? rows_flush(rs) : 0;
}

static int cmp_goid(const void *a, const void *b)
{
	const struct snap_goroutine *x = *(const struct snap_goroutine *const *)a;
	const struct snap_goroutine *y = *(const struct snap_goroutine *const *)b;

	return x->goid < y->goid ? -1 : x->goid > y->goid;
}

/* Appends g's variables to out as goroutines.vars holds them: a JSON array of
 * [depth, name, kind, type, truncated, value] (value left out when unavailable);
 * nothing when g has none. */
static void vars_json(struct buf *out, const struct snap_goroutine *g)
{
	bool any = false;

	for (int f = 0; f < g->nframes; f++)
		for (int v = 0; v < g->frames[f].nvars; v++) {
			const struct snap_var *var = &g->frames[f].vars[v];
			char depth[16];
			int dn = 0;

			buf_puts(out, any ? ",[" : "[[");
			any = true;
			for (int d = f; dn == 0 || d; d /= 10) /* digits, backwards */
				depth[dn++] = (char)('0' + d % 10);
			while (dn)
				buf_putc(out, depth[--dn]);
			buf_putc(out, ',');
			json_quote(out, var->name, strlen(var->name));
			buf_putc(out, ',');
			json_quote(out, var->kind, strlen(var->kind));
			buf_putc(out, ',');
			json_quote(out, var->type, strlen(var->type));
			buf_puts(out, var->truncated ? ",1" : ",0");
			if (var->value) {
				buf_putc(out, ',');
				buf_puts(out, var->value);
			}
			buf_putc(out, ']');
		}
	if (any)
		buf_putc(out, ']');
}

int snapshot_store(struct store *st, struct snapshot *s)
{
	const struct gobin *bin = s->bin;
	struct stack_ids stacks = { 0 };
	struct rows grows = { st, 0, &goroutine_rows, 0, { { 0 } } };
	struct buf vars = { 0 };
	size_t *vars_at;
	const struct snap_goroutine **order;
	int64_t proc = 0, id;
	int rc;

	rc = store_begin(st);
	if (rc)
		return rc;
	rc = store_process(st, bin, s->pid, &proc);
	if (!rc)
		rc = store_run(st,
			       "INSERT INTO snapshots (process, taken_at, duration_us, decode_us, reader, goroutines, torn,"
			       " recording) VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT max(id) FROM recordings"
			       " WHERE pid = ? AND status = 'recording'))",
			       &s->id, "iiiitiii", proc, s->taken_at, s->duration_us, s->decode_us, s->reader,
			       (int64_t)s->n, (int64_t)s->torn, (int64_t)s->pid);
	grows.snapshot = s->id;
	/* In goid order: the goroutines primary key then grows at its right edge
	 * instead of all over the tree. */
	order = xmalloc(sizeof(struct snap_goroutine *) * (s->n ? s->n : 1));
	for (size_t i = 0; i < s->n; i++)
		order[i] = &s->gs[i];
	qsort(order, s->n, sizeof(struct snap_goroutine *), cmp_goid);
	/* Every goroutine's vars first, into one buffer that no longer moves while
	 * the rows pointing into it are inserted: vars_at[i] to vars_at[i + 1]. */
	vars_at = xmalloc(sizeof(size_t) * (s->n + 1));
	for (size_t i = 0; i < s->n; i++) {
		vars_at[i] = vars.len;
		vars_json(&vars, order[i]);
	}
	vars_at[s->n] = vars.len;
	for (size_t i = 0; !rc && i < s->n; i++) {
		const struct snap_goroutine *g = order[i];
		int64_t stack = 0;

		if (g->nframes)
			rc = store_stack(st, &stacks, g, &stack);
		if (!rc)
			rc = rows_add(&grows, &(struct row){ .g = g, .stack = stack,
							     .vars = vars_at[i + 1] > vars_at[i] ? vars.p + vars_at[i] : NULL,
							     .vars_len = (int)(vars_at[i + 1] - vars_at[i]) });
	}
	if (!rc)
		rc = rows_flush(&grows);
	buf_free(&vars);
	free(vars_at);
	free(stacks.slots);
	free(order);
	if (rc) {
		store_rollback(st);
		s->id = 0;
		return err_wrap(rc, "storing the snapshot in %s", store_path(st));
	}
	id = s->id;
	rc = store_commit(st);
	s->id = rc ? 0 : id;
	return rc;
}
