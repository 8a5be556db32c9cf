/* trace.c - the userspace half of `glimpse trace`: plans the probes, loads
 * bpf/probe.bpf.c once with a site table keyed by attach cookie, attaches one
 * uprobe per site (a single uprobe_multi link where the kernel has them),
 * drains the ring buffer and turns records into events: arguments and results
 * decoded from the captured bytes with decode.c, returns matched to their calls
 * by the call id BPF assigned, userspace --where applied, caller stacks
 * symbolized.
 */
#include "trace.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#ifndef ENOTSUPP
#define ENOTSUPP 524 /* the kernel's, not in userspace headers */
#endif
#include <elf.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bpf_log.h"
#include "buf.h"
#include "decode.h"
#include "dwarf.h"
#include "err.h"
#include "gobin.h"
#include "json.h"
#include "pclntab.h"
#include "probe.skel.h"

#define DEFAULT_RING  (32u << 20)
#define DEFAULT_FUNCS 1000
#define CALLS_MAX     (1u << 20) /* calls kept waiting for their return */

/* Calls waiting for their return: call id -> the call's arguments (JSON), or
 * FILTERED when userspace --where rejected it. Open addressing. */
static char filtered_mark;
#define FILTERED (&filtered_mark)

struct call_table {
	uint64_t *ids;
	char **args;
	size_t cap, n;
};

struct site {
	size_t func;
	int kind;
	uint64_t pc;		/* link-time */
	size_t func_call;	/* index of the function's entry site */
};

struct trace {
	const struct gobin *bin;
	struct trace_opts o;
	struct plan_func *funcs;
	size_t nfuncs;
	struct site *sites;
	size_t nsites;
	struct probe_bpf *skel;
	bool multi;			/* uprobe_multi program loaded */
	struct ring_buffer *ring;
	struct bpf_link **links;
	size_t nlinks;
	uint64_t bias;
	int64_t clock_off;		/* CLOCK_REALTIME - CLOCK_MONOTONIC */
	struct decoder dec;
	struct plan_capture cap;
	struct call_table calls;
	uint64_t *user_filtered;	/* per function: calls --where rejected in userspace */
	uint64_t *user_dropped;		/* per function: their returns */
	/* the event being delivered */
	trace_event_fn fn;
	void *arg;
	int delivered;
	struct buf args, results, stack, tmp;
	char **values;
	int nvalues_cap;
};

void trace_opts_default(struct trace_opts *o)
{
	memset(o, 0, sizeof(*o));
	plan_limits_default(&o->lim);
	o->ring_bytes = DEFAULT_RING;
	o->max_funcs = DEFAULT_FUNCS;
}

/* ---- the call table ---- */

static size_t slot_of(const struct call_table *ct, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (ct->cap - 1);
}

static void calls_clear(struct call_table *ct)
{
	for (size_t i = 0; i < ct->cap; i++)
		if (ct->args[i] != FILTERED)
			free(ct->args[i]);
	free(ct->ids);
	free(ct->args);
	memset(ct, 0, sizeof(*ct));
}

static void calls_put(struct call_table *ct, uint64_t id, char *args)
{
	size_t i;

	if (ct->n >= CALLS_MAX) /* calls that never returned (panics): forget them all */
		calls_clear(ct);
	if (2 * (ct->n + 1) > ct->cap) {
		struct call_table big = {.cap = ct->cap ? 2 * ct->cap : 1024};

		big.ids = xcalloc(big.cap, sizeof(*big.ids));
		big.args = xcalloc(big.cap, sizeof(*big.args));
		for (size_t k = 0; k < ct->cap; k++)
			if (ct->ids[k])
				calls_put(&big, ct->ids[k], ct->args[k]);
		free(ct->ids);
		free(ct->args);
		*ct = big;
	}
	for (i = slot_of(ct, id); ct->ids[i] && ct->ids[i] != id; i = (i + 1) & (ct->cap - 1))
		;
	if (ct->ids[i] == id && ct->args[i] != FILTERED)
		free(ct->args[i]);
	else if (!ct->ids[i])
		ct->n++;
	ct->ids[i] = id;
	ct->args[i] = args;
}

/* Removes id and returns its value (the caller owns it), or NULL. */
static char *calls_take(struct call_table *ct, uint64_t id)
{
	size_t i, j;
	char *v;

	if (!ct->cap || !id)
		return NULL;
	for (i = slot_of(ct, id); ct->ids[i] != id; i = (i + 1) & (ct->cap - 1))
		if (!ct->ids[i])
			return NULL;
	v = ct->args[i];
	ct->ids[i] = 0;
	ct->args[i] = NULL;
	ct->n--;
	/* backward-shift the run after the hole */
	for (j = (i + 1) & (ct->cap - 1); ct->ids[j]; j = (j + 1) & (ct->cap - 1)) {
		size_t home = slot_of(ct, ct->ids[j]);

		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			ct->ids[i] = ct->ids[j];
			ct->args[i] = ct->args[j];
			ct->ids[j] = 0;
			ct->args[j] = NULL;
			i = j;
		}
	}
	return v;
}

/* ---- opening ---- */

static int plan_all(struct trace *t)
{
	const struct gofunc **fs;
	struct where *w = NULL;
	size_t n, nsites = 0;
	int rc;

	rc = plan_match(t->bin, t->o.regex, t->o.max_funcs, &fs, &n);
	if (rc)
		return rc;
	if (t->o.where) {
		rc = where_parse(t->o.where, &w);
		if (rc)
			goto out;
	}
	t->funcs = xcalloc(n, sizeof(*t->funcs));
	for (size_t i = 0; i < n; i++) {
		rc = plan_func(t->bin, fs[i], &t->o.lim,
			       t->o.count_only ? PLAN_COUNT : t->o.calls_only ? PLAN_CALLS_ONLY : PLAN_EVENTS, &t->funcs[i]);
		if (rc)
			goto out;
		t->nfuncs++;
		t->funcs[i].call.func = (uint32_t)i;
		t->funcs[i].ret.func = (uint32_t)i;
		if (w) {
			rc = where_bind(w, &t->funcs[i], NULL);
			if (rc)
				goto out;
		}
		nsites += 1 + (size_t)t->funcs[i].nrets;
	}
	t->sites = xcalloc(nsites, sizeof(*t->sites));
	for (size_t i = 0; i < t->nfuncs; i++) {
		size_t call = t->nsites;

		t->sites[t->nsites++] = (struct site){i, PROBE_CALL, t->funcs[i].call_pc, call};
		for (int r = 0; r < t->funcs[i].nrets; r++)
			t->sites[t->nsites++] = (struct site){i, PROBE_RETURN, t->funcs[i].rets[r], call};
	}
out:
	where_free(w);
	free(fs);
	return rc;
}

/* Opens and loads the BPF object; without uprobe_multi (kernel < 6.6) only the
 * one-link-per-site program is loaded. */
static int load_bpf(struct trace *t)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc;

		t->skel = probe_bpf__open();
		if (!t->skel)
			return bpf_log_error(-errno, "opening the BPF probe program");
		t->multi = attempt == 0;
		bpf_program__set_autoload(t->skel->progs.probe_multi, t->multi);
		bpf_program__set_autoload(t->skel->progs.probe_single, !t->multi);
		t->skel->rodata->g_goid_off = t->bin->offsets.g_goid;
		t->skel->rodata->g_stack_hi_off = t->bin->offsets.g_stack_hi;
		t->skel->rodata->rate_limit = t->o.rate_limit;
		t->skel->rodata->wake_bytes = t->o.ring_bytes / 4;
		rc = bpf_map__set_max_entries(t->skel->maps.sites, (uint32_t)t->nsites);
		if (!rc)
			rc = bpf_map__set_max_entries(t->skel->maps.stats, (uint32_t)t->nfuncs);
		if (!rc)
			rc = bpf_map__set_max_entries(t->skel->maps.rates, (uint32_t)t->nfuncs);
		if (!rc)
			rc = bpf_map__set_max_entries(t->skel->maps.events, t->o.ring_bytes);
		if (rc)
			return bpf_log_error(rc, "sizing the BPF maps");
		rc = probe_bpf__load(t->skel);
		if (!rc)
			return 0;
		probe_bpf__destroy(t->skel);
		t->skel = NULL;
		if (attempt == 1 || rc == -EPERM)
			return bpf_log_error(rc, "loading the BPF probe program");
	}
	return 0;
}

static int fill_sites(struct trace *t)
{
	int fd;

	if (!t->skel)
		return err_set(EINVAL, "the BPF probe program is not loaded");
	fd = bpf_map__fd(t->skel->maps.sites);
	for (size_t i = 0; i < t->nsites; i++) {
		const struct plan_func *pf = &t->funcs[t->sites[i].func];
		struct probe_site s = t->sites[i].kind == PROBE_CALL ? pf->call : pf->ret;
		uint32_t key = (uint32_t)i;
		int d = pcln_spdelta(t->bin->pcln, pf->func, t->sites[i].pc);

		if (t->sites[i].kind == PROBE_RETURN && d > 0)
			s.cfa_off = d + 8; /* a RET with something still pushed (never seen in Go) */
		if (t->sites[i].kind == PROBE_RETURN && pf->where)
			s.flags |= PSF_NEED_CALL;
		if (bpf_map_update_elem(fd, &key, &s, BPF_ANY))
			return bpf_log_error(-errno, "filling the probe site table");
	}
	return 0;
}

static int64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int on_record(void *ctx, void *data, size_t size);

int trace_open(const struct gobin *bin, const struct trace_opts *o, struct trace **out)
{
	struct trace *t;
	int rc;

	*out = NULL;
	if (o->ring_bytes && (o->ring_bytes & (o->ring_bytes - 1)))
		return err_set(EINVAL, "ring buffer of %u bytes: want a power of two", o->ring_bytes);
	if (bin->offsets.g_goid < 0 || bin->offsets.g_stack_hi < 0)
		return err_set(GLIMPSE_EUNSUP, "%s: runtime.g offsets unknown for %s", bin->path, bin->go_version);
	t = xcalloc(1, sizeof(*t));
	t->bin = bin;
	t->o = *o;
	if (!t->o.ring_bytes)
		t->o.ring_bytes = DEFAULT_RING;
	if (!t->o.max_funcs)
		t->o.max_funcs = DEFAULT_FUNCS;
	rc = plan_all(t);
	if (rc)
		goto fail;
	t->user_filtered = xcalloc(t->nfuncs, sizeof(*t->user_filtered));
	t->user_dropped = xcalloc(t->nfuncs, sizeof(*t->user_dropped));
	bpf_log_begin();
	rc = load_bpf(t);
	if (!rc)
		rc = fill_sites(t);
	if (!rc) {
		t->ring = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_record, t, NULL);
		if (!t->ring)
			rc = bpf_log_error(-errno, "mapping the BPF ring buffer");
	}
	bpf_log_end();
	if (rc)
		goto fail;
	if (bin->dwarf) {
		decoder_init(&t->dec, bin, plan_capture_read, &t->cap, 0);
		t->dec.readable = plan_capture_readable;
		t->dec.lim.max_string = t->o.lim.max_string;
		t->dec.lim.max_entries = t->o.lim.max_entries;
		t->dec.lim.max_depth = t->o.lim.max_depth;
	}
	t->clock_off = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
	*out = t;
	return 0;
fail:
	trace_close(t);
	return rc;
}

size_t trace_nfuncs(const struct trace *t)
{
	return t->nfuncs;
}

const struct plan_func *trace_func(const struct trace *t, size_t i)
{
	return i < t->nfuncs ? &t->funcs[i] : NULL;
}

size_t trace_nsites(const struct trace *t)
{
	return t->nsites;
}

/* ---- attaching ---- */

/* File offset of link-time address addr (what uprobes are placed by). */
static int file_offset(const struct gobin *bin, uint64_t addr, uint64_t *off)
{
	for (size_t i = 0; i < bin->elf->nloads; i++) {
		const struct elf_segment *ph = &bin->elf->loads[i];

		if (!(ph->flags & PF_X))
			continue;
		if (addr >= ph->vaddr && addr < ph->vaddr + ph->filesz) {
			*off = addr - ph->vaddr + ph->offset;
			return 0;
		}
	}
	return err_set(GLIMPSE_ECORRUPT, "%s: 0x%" PRIx64 " is not in an executable segment", bin->path, addr);
}

/* Whether the kernel refused a probe because of the instruction it sits on
 * (a prefix or opcode uprobes cannot single-step). */
static bool refused(int rc)
{
	return rc == -524 /* ENOTSUPP */ || rc == -EINVAL || rc == -EOPNOTSUPP;
}

struct attach {
	struct trace *t;
	const char *path;
	pid_t pid;
	const unsigned long *offs;
	bool *bad;		/* per site: the kernel refused it */
};

static void add_link(struct trace *t, struct bpf_link *l)
{
	t->links = xrealloc(t->links, (t->nlinks + 1) * sizeof(struct bpf_link *));
	t->links[t->nlinks++] = l;
}

/* Attaches sites idx[0..n) with one uprobe_multi link; when the kernel refuses,
 * splits the set to find the sites it refuses and attaches the rest. */
static int attach_multi(struct attach *a, const size_t *idx, size_t n)
{
	unsigned long *offs = xcalloc(n, sizeof(*offs));
	__u64 *cookies = xcalloc(n, sizeof(*cookies));
	struct bpf_uprobe_multi_opts mo = {.sz = sizeof(mo), .offsets = offs, .cookies = cookies, .cnt = n};
	struct bpf_link *l;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		offs[i] = a->offs[idx[i]];
		cookies[i] = idx[i];
	}
	l = bpf_program__attach_uprobe_multi(a->t->skel->progs.probe_multi, a->pid, a->path, NULL, &mo);
	if (l)
		add_link(a->t, l);
	else if (!refused(-errno))
		rc = -errno;
	else if (n == 1)
		a->bad[idx[0]] = true;
	else if (!(rc = attach_multi(a, idx, n / 2)))
		rc = attach_multi(a, idx + n / 2, n - n / 2);
	free(offs);
	free(cookies);
	return rc;
}

/* The same with one link per site (kernels without uprobe_multi). */
static int attach_single(struct attach *a, const size_t *idx, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct bpf_uprobe_opts uo = {.sz = sizeof(uo), .bpf_cookie = idx[i]};
		struct bpf_link *l =
			bpf_program__attach_uprobe_opts(a->t->skel->progs.probe_single, a->pid, a->path, a->offs[idx[i]], &uo);

		if (l)
			add_link(a->t, l);
		else if (refused(-errno))
			a->bad[idx[i]] = true;
		else
			return -errno;
	}
	return 0;
}

static int attach_group(struct attach *a, const size_t *idx, size_t n)
{
	if (!n)
		return 0;
	return a->t->multi ? attach_multi(a, idx, n) : attach_single(a, idx, n);
}

/* Entry probes first; return probes only of functions whose entry probe the
 * kernel accepted (a return without its call says nothing). */
static int attach_all(struct attach *a)
{
	struct trace *t = a->t;
	size_t *idx = xcalloc(t->nsites, sizeof(*idx)), n = 0;
	int rc;

	for (size_t i = 0; i < t->nsites; i++)
		if (t->sites[i].kind == PROBE_CALL)
			idx[n++] = i;
	rc = attach_group(a, idx, n);
	n = 0;
	for (size_t i = 0; !rc && i < t->nsites; i++) {
		const struct site *s = &t->sites[i];
		struct plan_func *pf = &t->funcs[s->func];

		if (s->kind == PROBE_CALL && a->bad[i])
			plan_add_note(pf, "the kernel refused the entry probe at 0x%" PRIx64 ": not traced", s->pc);
		else if (s->kind == PROBE_RETURN && !a->bad[t->sites[i].func_call])
			idx[n++] = i;
	}
	if (!rc)
		rc = attach_group(a, idx, n);
	for (size_t i = 0; !rc && i < t->nsites; i++)
		if (t->sites[i].kind == PROBE_RETURN && a->bad[i])
			plan_add_note(&t->funcs[t->sites[i].func],
				      "the kernel refused the return probe at 0x%" PRIx64 ": returns there not traced",
				      t->sites[i].pc);
	free(idx);
	return rc;
}

int trace_attach(struct trace *t, const char *path, pid_t pid, uint64_t bias)
{
	unsigned long *offs = xcalloc(t->nsites, sizeof(*offs));
	struct attach a = {.t = t, .path = path, .pid = pid, .offs = offs};
	size_t nbad = 0;
	int rc = 0;

	t->bias = bias;
	t->dec.bias = bias;
	for (size_t i = 0; i < t->nsites && !rc; i++) {
		uint64_t off = 0;

		rc = file_offset(t->bin, t->sites[i].pc, &off);
		offs[i] = (unsigned long)off;
	}
	if (rc)
		goto out;
	a.bad = xcalloc(t->nsites, sizeof(*a.bad));
	bpf_log_begin();
	rc = attach_all(&a);
	bpf_log_end();
	for (size_t i = 0; i < t->nsites; i++)
		nbad += a.bad[i] && t->sites[i].kind == PROBE_CALL;
	if (!rc && nbad == t->nfuncs)
		rc = err_set(ENOTSUPP, "the kernel refused every entry probe (GLIMPSE_BPF_DEBUG=1 shows why)");
	if (rc) {
		trace_detach(t);
		if (rc != -ENOTSUPP)
			rc = bpf_log_error(rc, "attaching the uprobes");
		err_wrap(rc, "%s (pid %d)", path, (int)pid);
	}
	free(a.bad);
out:
	free(offs);
	return rc;
}

void trace_set_bias(struct trace *t, uint64_t bias)
{
	t->bias = bias;
	t->dec.bias = bias;
}

void trace_detach(struct trace *t)
{
	for (size_t i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);
	free(t->links);
	t->links = NULL;
	t->nlinks = 0;
}

/* ---- events ---- */

/* The message of an error value's JSON ({"type":..., "error": "msg"}): a
 * pointer to the string token after the top-level "error" key, or NULL. */
static const char *error_member(const char *json, size_t *len)
{
	int depth = 0;

	for (const char *p = json; *p; p++) {
		if (*p == '"') {
			const char *s = p++;

			for (; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (!*p)
				return NULL;
			if (depth == 1 && p - s == 6 && !strncmp(s, "\"error\"", 7) && p[1] == ':' && p[2] == '"') {
				const char *v = p + 2, *e = v + 1;

				for (; *e && *e != '"'; e++)
					if (*e == '\\' && e[1])
						e++;
				if (!*e)
					return NULL;
				*len = (size_t)(e + 1 - v);
				return v;
			}
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			depth--;
		}
	}
	return NULL;
}

static bool is_error_type(const struct gotype *t)
{
	return t && t->kind == GT_IFACE && t->name && !strcmp(t->name, "error");
}

/* Decodes v from the current capture into t->tmp (JSON). */
static bool value_json(struct trace *t, const struct plan_value *v, bool *truncated)
{
	uint8_t small[256], *bytes = small;
	bool cut = false;
	int rc;

	buf_reset(&t->tmp);
	if (!v->unavailable && v->type && v->type->size > sizeof(small))
		bytes = xmalloc(v->type->size);
	if (v->unavailable || plan_value_bytes(v, &t->cap, bytes) < 0) {
		struct json j;

		json_init(&j, &t->tmp);
		json_obj(&j);
		json_kv_str(&j, "unavailable", v->unavailable ? v->unavailable : "not captured (the copy faulted)");
		json_end(&j);
		if (bytes != small)
			free(bytes);
		return false;
	}
	t->dec.ctx = &t->cap;
	rc = decode_value(&t->dec, v->type, bytes, 0, &t->tmp, &cut);
	if (bytes != small)
		free(bytes);
	if (rc < 0) {
		buf_reset(&t->tmp);
		buf_puts(&t->tmp, "null");
	}
	*truncated |= cut;
	return true;
}

static void grow_values(struct trace *t, int n)
{
	if (n <= t->nvalues_cap)
		return;
	t->values = xrealloc(t->values, n * sizeof(*t->values));
	for (int i = t->nvalues_cap; i < n; i++)
		t->values[i] = NULL;
	t->nvalues_cap = n;
}

/* Fills ev's values, and args (calls) or results + error (returns). */
static void decode_values(struct trace *t, const struct plan_func *pf, struct trace_event *ev, char **error)
{
	const struct plan_value *vals = ev->kind == PROBE_CALL ? pf->args : pf->results;
	int n = ev->kind == PROBE_CALL ? pf->nargs : pf->nresults;
	struct buf *out = ev->kind == PROBE_CALL ? &t->args : &t->results;
	struct json j;

	grow_values(t, n);
	json_init(&j, out);
	if (ev->kind == PROBE_CALL)
		json_obj(&j);
	else
		json_arr(&j);
	for (int i = 0; i < n; i++) {
		const char *text;
		size_t len;

		value_json(t, &vals[i], &ev->truncated);
		text = buf_str(&t->tmp);
		if (is_error_type(vals[i].type) && !vals[i].unavailable && strcmp(text, "null")) {
			const char *m = error_member(text, &len);

			if (m) {
				char *msg = xstrndup(m, len);

				if (ev->kind == PROBE_RETURN && !*error)
					*error = xstrdup(msg);
				free(t->values[i]);
				t->values[i] = msg;
				goto put;
			}
		}
		free(t->values[i]);
		t->values[i] = xstrdup(text);
put:
		if (ev->kind == PROBE_CALL)
			json_key(&j, vals[i].name);
		json_raw(&j, t->values[i]);
	}
	json_end(&j);
	ev->values = (const char *const *)t->values;
	ev->nvalues = n;
}

/* The error message as text: the JSON string token without quotes and escapes. */
static char *unquote(const char *tok)
{
	struct buf b = {0};
	size_t n = strlen(tok);

	for (size_t i = 1; i + 1 < n; i++) {
		char c = tok[i];

		if (c == '\\' && i + 2 < n) {
			c = tok[++i];
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
			else if (c == 'u' && i + 4 < n) {
				unsigned int cp = 0;

				sscanf(tok + i + 1, "%4x", &cp);
				i += 4;
				if (cp < 0x80) {
					buf_putc(&b, (char)cp);
				} else if (cp < 0x800) {
					buf_putc(&b, (char)(0xc0 | (cp >> 6)));
					buf_putc(&b, (char)(0x80 | (cp & 0x3f)));
				} else {
					buf_putc(&b, (char)(0xe0 | (cp >> 12)));
					buf_putc(&b, (char)(0x80 | ((cp >> 6) & 0x3f)));
					buf_putc(&b, (char)(0x80 | (cp & 0x3f)));
				}
				continue;
			}
		}
		buf_putc(&b, c);
	}
	return buf_detach(&b);
}

static void symbolize_stack(struct trace *t)
{
	struct json j;

	buf_reset(&t->stack);
	json_init(&j, &t->stack);
	json_arr(&j);
	for (int i = 0; i < t->cap.nstack; i++) {
		uint64_t pc = t->cap.stack[i] - t->bias;
		const struct gofunc *f = pcln_find(t->bin->pcln, pc - 1);
		struct pcln_frame fr[8];
		char line[512];
		int n;

		if (!f) {
			snprintf(line, sizeof(line), "0x%" PRIx64, pc);
			json_str(&j, line);
			continue;
		}
		n = pcln_frames(t->bin->pcln, f, pc - 1, fr, 8);
		for (int k = 0; k < n; k++) {
			snprintf(line, sizeof(line), "%s %s:%d", fr[k].func, fr[k].file, fr[k].line);
			json_str(&j, line);
		}
		if (n <= 0) {
			snprintf(line, sizeof(line), "%s+0x%" PRIx64, f->name, pc - f->entry);
			json_str(&j, line);
		}
	}
	json_end(&j);
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct trace *t = ctx;
	const struct probe_event *h = data;
	struct trace_event ev = {0};
	const struct plan_func *pf;
	char *call_args = NULL, *error = NULL;

	if (size < sizeof(*h) || h->site >= t->nsites || h->data_len > size - sizeof(*h))
		return 0;
	if (plan_capture_parse((const uint8_t *)data + sizeof(*h), h->data_len, &t->cap) < 0)
		return 0;
	if (h->ip - t->sites[h->site].pc != t->bias) /* a PIE started by --exec */
		trace_set_bias(t, h->ip - t->sites[h->site].pc);
	ev.func = t->sites[h->site].func;
	pf = &t->funcs[ev.func];
	ev.kind = h->kind;
	ev.ts_ns = (int64_t)h->ts + t->clock_off;
	ev.pid = h->pid;
	ev.tid = h->tid;
	ev.goid = h->goid;
	ev.call_id = h->call_id;
	ev.duration_ns = h->flags & PEF_NO_CALL ? -1 : (int64_t)h->duration;
	ev.truncated = h->flags & PEF_TRUNCATED;
	buf_reset(&t->args);
	buf_reset(&t->results);
	if (ev.kind == PROBE_CALL) {
		if (pf->where && !where_eval(pf, &t->cap)) {
			t->user_filtered[ev.func]++;
			if (pf->nrets)
				calls_put(&t->calls, h->call_id, FILTERED);
			return 0;
		}
		if (pf->typed) {
			decode_values(t, pf, &ev, &error);
			ev.args = buf_str(&t->args);
		}
		if (t->cap.nstack) {
			symbolize_stack(t);
			ev.stack = buf_str(&t->stack);
		}
		if (pf->nrets) /* its return will show the call's arguments */
			calls_put(&t->calls, h->call_id, pf->typed ? xstrdup(ev.args) : NULL);
	} else {
		call_args = calls_take(&t->calls, h->call_id);
		if (call_args == FILTERED || (!h->call_id && pf->where)) {
			t->user_dropped[ev.func]++;
			return 0;
		}
		if (pf->typed) {
			decode_values(t, pf, &ev, &error);
			ev.results = buf_str(&t->results);
		}
		ev.args = call_args;
		if (error) {
			char *msg = unquote(error);

			free(error);
			error = msg;
		}
		ev.error = error;
	}
	t->fn(&ev, t->arg);
	t->delivered++;
	free(call_args);
	free(error);
	return 0;
}

int trace_poll(struct trace *t, int timeout_ms, trace_event_fn fn, void *arg)
{
	int rc;

	t->fn = fn;
	t->arg = arg;
	t->delivered = 0;
	rc = ring_buffer__poll(t->ring, timeout_ms);
	if (rc >= 0 || rc == -EINTR)
		rc = ring_buffer__consume(t->ring);
	if (rc < 0 && rc != -EINTR)
		return err_set(-rc, "reading the BPF ring buffer: %s", strerror(-rc));
	return t->delivered;
}

void trace_stats(const struct trace *t, size_t i, struct trace_stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct probe_stats *per;
	uint32_t key = (uint32_t)i;

	memset(out, 0, sizeof(*out));
	if (ncpu <= 0 || i >= t->nfuncs || !t->skel)
		return;
	per = xcalloc((size_t)ncpu, sizeof(*per));
	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stats), &key, per) == 0) {
		for (int c = 0; c < ncpu; c++) {
			out->calls += per[c].calls;
			out->returns += per[c].returns;
			out->ring_drops += per[c].ring_drops;
			out->repeats += per[c].repeats;
			out->rate_limited += per[c].rate_limited;
			out->filtered += per[c].filtered;
			out->hits += per[c].hits;
		}
	}
	free(per);
	out->filtered += t->user_filtered[i];
	out->calls -= out->calls >= t->user_filtered[i] ? t->user_filtered[i] : out->calls;
	out->returns -= out->returns >= t->user_dropped[i] ? t->user_dropped[i] : out->returns;
}

void trace_close(struct trace *t)
{
	if (!t)
		return;
	trace_detach(t);
	ring_buffer__free(t->ring);
	probe_bpf__destroy(t->skel);
	for (size_t i = 0; i < t->nfuncs; i++)
		plan_func_free(&t->funcs[i]);
	free(t->funcs);
	free(t->sites);
	free(t->user_filtered);
	free(t->user_dropped);
	calls_clear(&t->calls);
	buf_free(&t->args);
	buf_free(&t->results);
	buf_free(&t->stack);
	buf_free(&t->tmp);
	for (int i = 0; i < t->nvalues_cap; i++)
		free(t->values[i]);
	free(t->values);
	free(t);
}
