/* snapshot_cmd.c - `glimpse snapshot`: take a snapshot of a live Go process, store it,
 * and print it grouped by stack (text) or as one JSON object.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "gobin.h"
#include "json.h"
#include "snapshot.h"
#include "store.h"

static const char usage_text[] =
	"usage: glimpse snapshot --pid PID [--db FILE | --no-store] [--json] [--no-vars | --all-vars]\n"
	"                        [--max-string N] [--max-depth N] [--max-entries N] [--max-stack BYTES]\n"
	"                        [--reader bpf|process_vm_readv]\n"
	"\n"
	"Captures every goroutine of a running Go process - state, wait reason, stack and the\n"
	"values of local variables - without stopping it, and stores it in the database.\n"
	"\n"
	"  --pid PID          the Go process\n"
	"  --db FILE          SQLite database to add the snapshot to (default $GLIMPSE_DB or glimpse.db)\n"
	"  --no-store         print only, store nothing\n"
	"  --json             print one JSON object\n"
	"  --no-vars          skip variables (stacks and states only)\n"
	"  --all-vars         also read variables of runtime.* and internal/* frames\n"
	"  --max-string N     bytes of a string value shown (default 256)\n"
	"  --max-depth N      pointers followed from a variable (default 4)\n"
	"  --max-entries N    elements of a slice/array/map shown (default 16)\n"
	"  --max-stack BYTES  stack bytes copied per goroutine (default 65536)\n"
	"  --reader R         force the BPF iterator or the process_vm_readv reader\n"
	"                     (default: BPF, falling back to process_vm_readv with a note)\n";

static void iso_time(int64_t ns, char *out, size_t n)
{
	time_t sec = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	if (n < 64)
		return;
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ns / 1000000 % 1000));
}

void snapshot_json(const struct snapshot *s, struct buf *out)
{
	struct json j;

	json_init(&j, out);
	json_obj(&j);
	if (s->id)
		json_kv_int(&j, "snapshot_id", s->id);
	else {
		json_key(&j, "snapshot_id");
		json_null(&j);
	}
	json_kv_int(&j, "pid", s->pid);
	json_kv_str(&j, "path", s->bin->path);
	json_kv_str(&j, "go_version", s->bin->go_version);
	json_kv_int(&j, "taken_at", s->taken_at);
	json_kv_int(&j, "duration_us", s->duration_us);
	json_kv_int(&j, "decode_us", s->decode_us);
	json_kv_str(&j, "reader", s->reader);
	json_key(&j, "reader_note");
	json_str(&j, s->reader_note[0] ? s->reader_note : NULL);
	json_kv_uint(&j, "torn", s->torn);
	json_key(&j, "vars_note");
	json_str(&j, s->vars_note);
	json_key(&j, "goroutines");
	json_arr(&j);
	for (size_t i = 0; i < s->n; i++) {
		const struct snap_goroutine *g = &s->gs[i];

		json_obj(&j);
		json_kv_uint(&j, "goid", g->goid);
		json_kv_str(&j, "status", gstatus_name(g->status));
		json_key(&j, "wait_reason");
		json_str(&j, g->wait_reason);
		json_key(&j, "wait_since_ns");
		if (g->wait_since_ns)
			json_int(&j, g->wait_since_ns);
		else
			json_null(&j);
		json_key(&j, "created_by");
		json_str(&j, g->created_by);
		json_key(&j, "created_at");
		json_str(&j, g->created_at);
		json_key(&j, "labels");
		json_raw(&j, g->labels ? g->labels : "{}");
		json_key(&j, "thread");
		if (g->thread)
			json_uint(&j, g->thread);
		else
			json_null(&j);
		json_kv_bool(&j, "torn", g->torn);
		json_key(&j, "stack_note");
		json_str(&j, g->stack_note);
		json_key(&j, "frames");
		json_arr(&j);
		for (int f = 0; f < g->nframes; f++) {
			const struct snap_frame *fr = &g->frames[f];

			json_obj(&j);
			json_kv_str(&j, "func", fr->func);
			json_kv_str(&j, "file", fr->file);
			json_kv_int(&j, "line", fr->line);
			json_kv_uint(&j, "pc", fr->pc);
			json_kv_bool(&j, "inlined", fr->inlined);
			json_key(&j, "vars");
			json_arr(&j);
			for (int v = 0; v < fr->nvars; v++) {
				const struct snap_var *sv = &fr->vars[v];

				json_obj(&j);
				json_kv_str(&j, "name", sv->name);
				json_kv_str(&j, "kind", sv->kind);
				json_kv_str(&j, "type", sv->type);
				json_key(&j, "value");
				if (sv->value)
					json_raw(&j, sv->value);
				else
					json_null(&j);
				json_kv_bool(&j, "truncated", sv->truncated);
				if (!sv->value)
					json_kv_str(&j, "unavailable", sv->unavailable ? sv->unavailable : "unavailable");
				json_end(&j);
			}
			json_end(&j);
			json_end(&j);
		}
		json_end(&j);
		json_end(&j);
	}
	json_end(&j);
	json_end(&j);
	buf_putc(out, '\n');
}

#define TEXT_VALUE_MAX 160	/* bytes of a value's JSON shown in text output */

/* Goroutines with the same stack, status and wait reason, like pprof's debug=1. */
struct group {
	size_t first, count;
};

static bool same_group(const struct snap_goroutine *a, const struct snap_goroutine *b)
{
	return a->stack_hash == b->stack_hash && a->nframes == b->nframes && a->status == b->status &&
	       (a->wait_reason == b->wait_reason ||
		(a->wait_reason && b->wait_reason && strcmp(a->wait_reason, b->wait_reason) == 0)) &&
	       !a->stack_note == !b->stack_note;
}

static const struct snapshot *sort_snap;

static int cmp_g(const void *x, const void *y)
{
	const struct snap_goroutine *a = &sort_snap->gs[*(const size_t *)x], *b = &sort_snap->gs[*(const size_t *)y];

	if (a->stack_hash != b->stack_hash)
		return a->stack_hash < b->stack_hash ? -1 : 1;
	if (a->status != b->status)
		return a->status < b->status ? -1 : 1;
	return a->goid < b->goid ? -1 : a->goid > b->goid;
}

static void print_vars(struct buf *out, const struct snap_goroutine *g)
{
	for (int f = 0; f < g->nframes; f++) {
		const struct snap_frame *fr = &g->frames[f];
		bool any = false;

		for (int v = 0; v < fr->nvars; v++) {
			const struct snap_var *sv = &fr->vars[v];

			if (!any)
				buf_printf(out, "      #%d %s:", f, fr->func);
			any = true;
			if (sv->value && strlen(sv->value) > TEXT_VALUE_MAX)
				buf_printf(out, " %s=%.*s…(%zu more bytes; see --json)", sv->name, TEXT_VALUE_MAX, sv->value,
					   strlen(sv->value) - TEXT_VALUE_MAX);
			else if (sv->value)
				buf_printf(out, " %s=%s%s", sv->name, sv->value, sv->truncated ? "(truncated)" : "");
			else
				buf_printf(out, " %s=<%s>", sv->name, sv->unavailable ? sv->unavailable : "unavailable");
		}
		if (any)
			buf_putc(out, '\n');
	}
}

void snapshot_text(const struct snapshot *s, struct buf *out)
{
	size_t *order = xmalloc(sizeof(size_t) * (s->n ? s->n : 1));
	struct group *groups = xcalloc(s->n ? s->n : 1, sizeof(*groups));
	size_t ngroups = 0;
	char when[64];

	for (size_t i = 0; i < s->n; i++)
		order[i] = i;
	sort_snap = s;
	qsort(order, s->n, sizeof(*order), cmp_g);
	for (size_t i = 0; i < s->n; i++) {
		if (ngroups && same_group(&s->gs[order[groups[ngroups - 1].first]], &s->gs[order[i]])) {
			groups[ngroups - 1].count++;
			continue;
		}
		groups[ngroups++] = (struct group){ i, 1 };
	}
	/* biggest groups first, as pprof does */
	for (size_t a = 1; a < ngroups; a++)
		for (size_t b = a; b > 0 && groups[b].count > groups[b - 1].count; b--) {
			struct group t = groups[b];

			groups[b] = groups[b - 1];
			groups[b - 1] = t;
		}
	iso_time(s->taken_at, when, sizeof(when));
	buf_printf(out, "snapshot%s%.0" PRId64 " of pid %d (%s, %s) at %s\n", s->id ? " " : "", s->id, (int)s->pid,
		   s->bin->go_version, s->bin->path, when);
	buf_printf(out, "%zu goroutines read in %" PRId64 " us by %s without stopping the process, %zu torn; "
			"decoded in %" PRId64 " us\n",
		   s->n, s->duration_us, s->reader, s->torn, s->decode_us);
	if (s->reader_note[0])
		buf_printf(out, "BPF not used: %s\n", s->reader_note);
	if (s->vars_note)
		buf_printf(out, "%s\n", s->vars_note);
	for (size_t gi = 0; gi < ngroups; gi++) {
		const struct snap_goroutine *g0 = &s->gs[order[groups[gi].first]];
		size_t shown = 0;

		buf_printf(out, "\n%zu goroutine%s [%s%s%s]:", groups[gi].count, groups[gi].count == 1 ? "" : "s",
			   gstatus_name(g0->status), g0->wait_reason && *g0->wait_reason ? ": " : "",
			   g0->wait_reason ? g0->wait_reason : "");
		for (size_t k = 0; k < groups[gi].count && k < 12; k++)
			buf_printf(out, " %" PRIu64, s->gs[order[groups[gi].first + k]].goid);
		buf_puts(out, groups[gi].count > 12 ? " ...\n" : "\n");
		if (g0->stack_note)
			buf_printf(out, "    (%s)\n", g0->stack_note);
		for (int f = 0; f < g0->nframes; f++)
			buf_printf(out, "    %s%s\n        %s:%d +0x%" PRIx64 "\n", g0->frames[f].func,
				   g0->frames[f].inlined ? " (inlined)" : "", g0->frames[f].file, g0->frames[f].line,
				   g0->frames[f].offset);
		if (g0->created_by)
			buf_printf(out, "    created by %s\n        %s\n", g0->created_by,
				   g0->created_at ? g0->created_at : "?");
		for (size_t k = 0; k < groups[gi].count; k++) {
			const struct snap_goroutine *g = &s->gs[order[groups[gi].first + k]];
			bool has_vars = false;

			for (int f = 0; f < g->nframes && !has_vars; f++)
				has_vars = g->frames[f].nvars > 0;
			if (!has_vars && !g->labels && !g->torn)
				continue;
			if (shown == 8) {
				buf_printf(out, "    ... %zu more goroutines with values (see --json or the database)\n",
					   groups[gi].count - k);
				break;
			}
			buf_printf(out, "    goroutine %" PRIu64 "%s%s%s\n", g->goid, g->labels ? " labels " : "",
				   g->labels ? g->labels : "", g->torn ? " (torn: changed while being read)" : "");
			print_vars(out, g);
			shown++;
		}
	}
	free(order);
	free(groups);
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' }, { "db", required_argument, NULL, 'd' },
		{ "no-store", no_argument, NULL, 'N' }, { "json", no_argument, NULL, 'j' },
		{ "no-vars", no_argument, NULL, 'V' }, { "all-vars", no_argument, NULL, 'A' }, { "max-string", required_argument, NULL, 's' },
		{ "max-depth", required_argument, NULL, 'D' }, { "max-entries", required_argument, NULL, 'e' },
		{ "max-stack", required_argument, NULL, 'S' }, { "reader", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct snapshot_opts o;
	struct snapshot snap;
	struct gobin *bin = NULL;
	struct store *st = NULL;
	struct buf out = { 0 };
	const char *db = getenv("GLIMPSE_DB");
	bool store = true;
	uint64_t pid = 0, v;
	int c, rc;

	if (!db || !*db)
		db = STORE_DEFAULT_PATH;
	snapshot_opts_default(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:d:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_parse_u64(optarg, 1, INT32_MAX, &pid))
				return cli_usage_error("snapshot", "--pid takes a process id, not '%s'", optarg);
			break;
		case 'd': db = optarg; break;
		case 'N': store = false; break;
		case 'j': json_output = true; break;
		case 'V': o.vars = false; break;
		case 'A': o.runtime_vars = true; break;
		case 's':
		case 'D':
		case 'e':
		case 'S':
			if (!cli_parse_u64(optarg, c == 'S' ? 256 : 1, c == 'S' ? (1u << 24) : 1u << 20, &v))
				return cli_usage_error("snapshot", "--%s takes a positive number, not '%s'",
						       c == 's' ? "max-string" : c == 'D' ? "max-depth" : c == 'e' ? "max-entries" : "max-stack", optarg);
			if (c == 's')
				o.decode.max_string = (uint32_t)v;
			else if (c == 'D')
				o.decode.max_depth = (uint32_t)v;
			else if (c == 'e')
				o.decode.max_entries = (uint32_t)v;
			else
				o.read.max_stack = (uint32_t)v;
			break;
		case 'r':
			if (strcmp(optarg, "bpf") == 0)
				o.reader = READ_BPF;
			else if (strcmp(optarg, "process_vm_readv") == 0 || strcmp(optarg, "vm") == 0)
				o.reader = READ_VM;
			else
				return cli_usage_error("snapshot", "--reader is bpf or process_vm_readv, not '%s'", optarg);
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_usage_error("snapshot", "bad option");
		}
	}
	if (!pid || optind < argc)
		return cli_usage_error("snapshot", "give the process with --pid PID");
	/* Everything that can fail on bad input fails before the database is touched. */
	rc = gobin_open_pid((pid_t)pid, &bin);
	if (rc)
		return cli_fail(rc);
	rc = snapshot_take(bin, (pid_t)pid, &o, &snap);
	if (rc) {
		gobin_close(bin);
		return cli_fail(rc);
	}
	if (store) {
		rc = store_open(db, &st);
		if (!rc)
			rc = snapshot_store(st, &snap);
		store_close(st);
	}
	if (json_output)
		snapshot_json(&snap, &out);
	else
		snapshot_text(&snap, &out);
	fwrite(buf_str(&out), 1, out.len, stdout);
	if (!rc && store && !json_output)
		printf("\nstored as snapshot %" PRId64 " in %s\n", snap.id, db);
	buf_free(&out);
	snapshot_free(&snap);
	gobin_close(bin);
	return rc ? cli_fail(rc) : 0;
}

const struct cmd cmd_snapshot = {
	.name = "snapshot",
	.run = run,
	.summary = "capture every goroutine's stack and variables without stopping the process",
	.usage = usage_text,
};
