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

/* Memory of the target as seen by the decoder: the goroutine's copied stack
 * first (consistent with its frames), then the live process. */
struct target_mem {
	pid_t pid;
	const struct raw_g *g;
};

static int target_read(void *ctx, uint64_t addr, void *dst, size_t n)
{
	struct target_mem *m = ctx;
	struct iovec local = { dst, n }, remote = { (void *)(uintptr_t)addr, n };

	/* written so that a garbage addr near 2^64 cannot wrap around */
	if (m->g && addr >= m->g->stack_addr && n <= m->g->stack_len &&
	    addr - m->g->stack_addr <= m->g->stack_len - n) {
		memcpy(dst, m->g->stack + (addr - m->g->stack_addr), n);
		return 0;
	}
	if (n == 0)
		return 0;
	if (process_vm_readv(m->pid, &local, 1, &remote, 1, 0) != (ssize_t)n)
		return -EFAULT;
	return 0;
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

/* Assembles var's bytes at lookup pc `pc` in the frame whose CFA is cfa; returns
 * NULL with *why set when the value is not available there. */
static uint8_t *var_bytes(const struct snapshot *s, struct target_mem *m, const struct govar *v, uint64_t pc,
			  uint64_t cfa, const char **why)
{
	struct varloc loc;
	uint64_t size = v->type ? v->type->size : 0, at = 0;
	uint8_t *bytes;
	int rc;

	if (!v->type || size == 0 || size > (1 << 20)) {
		*why = size ? "too large" : "unknown type";
		return NULL;
	}
	rc = dwarf_locate(s->bin->dwarf, v, pc - s->bias, &loc);
	if (rc != 0) {
		*why = "not live at this pc";
		return NULL;
	}
	bytes = xcalloc(1, size);
	for (int i = 0; i < loc.npieces; i++) {
		const struct loc_piece *p = &loc.pieces[i];
		uint64_t len = loc.npieces == 1 ? size : p->size, addr;

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

static void frame_vars(const struct snapshot *s, struct decoder *dec, struct target_mem *m, struct snap_frame *fr,
		       uint64_t lookup_pc, uint64_t cfa)
{
	const struct dwfunc *df = dwarf_func_by_pc(s->bin->dwarf, lookup_pc - s->bias);
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
		bytes = var_bytes(s, m, v, lookup_pc, cfa, &sv->unavailable);
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

static void build_goroutine(struct snapshot *s, struct decoder *dec, const struct raw_g *rg, struct snap_goroutine *g,
			    const struct snapshot_opts *o, int64_t mono_to_real)
{
	const struct go_offsets *off = &s->bin->offsets;
	const struct pcln *pcln = s->bin->pcln;
	struct uframe uf[UNWIND_MAX_FRAMES];
	struct snap_frame frames[MAX_FRAMES];
	struct target_mem m = { s->pid, rg };
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
		g->labels = read_labels(s->bin, &m, rd64(rg->hdr, off->g_labels));

	g->stack_note = no_stack_reason(rg);
	if (g->stack_note)
		return;
	nuf = unwind(s->bin, s->bias, rg->ip, rg->sp, rg->stack, rg->stack_addr, rg->stack_len, uf, UNWIND_MAX_FRAMES, &end);
	if (end != UNWIND_DONE)
		g->stack_note = unwind_end_name(end);
	g->stack_hash = 14695981039346656037ull;
	for (int i = 0; i < nuf && nfr < MAX_FRAMES; i++) {
		struct pcln_frame inl[16];
		uint64_t link = uf[i].pc - s->bias;
		/* Callers' pcs are return addresses: look up the call instruction. */
		uint64_t tpc = (i == 0 && trap) || !uf[i].fn || link <= uf[i].fn->entry ? link : link - 1;
		int ni;

		g->stack_hash = fnv(g->stack_hash, link);
		if (!uf[i].fn) {
			frames[nfr++] = (struct snap_frame){ .func = "?", .file = "?", .pc = link };
			continue;
		}
		ni = pcln_frames(pcln, uf[i].fn, tpc, inl, 16);
		if (ni <= 0) {
			inl[0] = (struct pcln_frame){ uf[i].fn->name, "?", 0, false, uf[i].fn->funcid };
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
				frame_vars(s, dec, &m, &frames[nfr], tpc + s->bias, uf[i].cfa);
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
	struct target_mem m = { pid, NULL };
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
	} else if (o->warm) {
		rc = reader_bpf_snapshot(o->warm, pid, &bin->offsets, out->bias, &o->read, &raw);
		if (rc && rc != -ESRCH && o->reader == READ_AUTO) {
			char why[200];

			snprintf(why, sizeof(why), "%s", err_msg(rc));
			rc = reader_vm_snapshot(pid, &bin->offsets, out->bias, &o->read, &raw);
			if (!rc)
				snprintf(raw.fallback, sizeof(raw.fallback), "%s", why);
		}
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
		build_goroutine(out, &dec, &raw.gs[i], &out->gs[out->n++], o, mono_to_real);
	}
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

static int store_stack(struct store *st, const struct snapshot *s, const struct snap_goroutine *g, int64_t *id)
{
	char hash[40];
	int rc, top = -1;

	snprintf(hash, sizeof(hash), "%016" PRIx64 "-%d", g->stack_hash ^ fnv(0, (uint64_t)g->nframes), g->nframes);
	rc = store_run(st, "SELECT id FROM stacks WHERE hash = ?", id, "t", hash);
	if (rc || *id)
		return rc;
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

static int64_t process_start_ns(pid_t pid)
{
	char path[64], line[1024];
	FILE *f;
	unsigned long long ticks = 0;
	double uptime = 0, boot_real;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(line, ')');
	/* field 22 (starttime) is the 20th after the ") " */
	for (int i = 0; p && i < 20; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return 0;
	f = fopen("/proc/uptime", "re");
	if (f) {
		if (fscanf(f, "%lf", &uptime) != 1)
			uptime = 0;
		fclose(f);
	}
	boot_real = (double)now_ns(CLOCK_REALTIME) / 1e9 - uptime;
	/* rounded to the second so repeated snapshots map to the same process row */
	return (int64_t)(boot_real + (double)ticks / (double)sysconf(_SC_CLK_TCK) + 0.5) * 1000000000;
}

int snapshot_store(struct store *st, struct snapshot *s)
{
	const struct gobin *bin = s->bin;
	char host[256] = "";
	int64_t proc = 0, id;
	int rc;

	gethostname(host, sizeof(host) - 1);
	rc = store_begin(st);
	if (rc)
		return rc;
	rc = store_run(st, "INSERT OR IGNORE INTO binaries VALUES (?, ?, ?, ?, ?)", NULL, "tttii", bin->build_id,
		       bin->path, bin->go_version, (int64_t)bin->stripped, (int64_t)bin->pie);
	if (!rc)
		rc = store_run(st, "INSERT OR IGNORE INTO processes (pid, build_id, host, started) VALUES (?, ?, ?, ?)",
			       NULL, "itti", (int64_t)s->pid, bin->build_id, host, process_start_ns(s->pid));
	if (!rc)
		rc = store_run(st, "SELECT id FROM processes WHERE host = ? AND pid = ? ORDER BY started DESC LIMIT 1",
			       &proc, "ti", host, (int64_t)s->pid);
	if (!rc)
		rc = store_run(st,
			       "INSERT INTO snapshots (process, taken_at, duration_us, decode_us, reader, goroutines, torn,"
			       " recording) VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT max(id) FROM recordings"
			       " WHERE pid = ? AND status = 'recording'))",
			       &s->id, "iiiitiii", proc, s->taken_at, s->duration_us, s->decode_us, s->reader,
			       (int64_t)s->n, (int64_t)s->torn, (int64_t)s->pid);
	for (size_t i = 0; !rc && i < s->n; i++) {
		const struct snap_goroutine *g = &s->gs[i];
		int64_t stack = 0;

		if (g->nframes)
			rc = store_stack(st, s, g, &stack);
		if (!rc)
			rc = store_run(st,
				       "INSERT OR REPLACE INTO goroutines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				       NULL, "iittzttztzzti", s->id, (int64_t)g->goid, gstatus_name(g->status),
				       g->wait_reason, g->wait_since_ns, g->created_by, g->created_at,
				       (int64_t)g->parent_goid, g->labels, (int64_t)g->thread, stack, g->stack_note,
				       (int64_t)g->torn);
		for (int f = 0; !rc && f < g->nframes; f++)
			for (int v = 0; !rc && v < g->frames[f].nvars; v++) {
				const struct snap_var *sv = &g->frames[f].vars[v];

				rc = store_run(st, "INSERT INTO variables VALUES (?, ?, ?, ?, ?, ?, ?, ?)", NULL, "iiitttti",
					       s->id, (int64_t)g->goid, (int64_t)f, sv->name, sv->kind, sv->type,
					       sv->value, (int64_t)sv->truncated);
			}
	}
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
