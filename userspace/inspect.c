/* inspect.c - `glimpse inspect`: what glimpse knows about a Go binary or a running
 * Go process (version, build id, functions, probe sites, variables, runtime offsets),
 * and an addr2line mode that symbolizes pcs read from standard input.
 */
#include <getopt.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "disasm.h"
#include "dwarf.h"
#include "err.h"
#include "gobin.h"
#include "json.h"
#include "pclntab.h"
#include "plan.h"

static const char usage_text[] =
	"usage: glimpse inspect BINARY|--pid PID [--json] [--funcs REGEX | --vars FUNC | --addr2line]\n"
	"\n"
	"Shows what glimpse reads from a Go binary: Go version, build id, whether it is stripped\n"
	"or PIE, the function count, and the runtime struct offsets glimpse uses.\n"
	"\n"
	"  --pid PID       inspect the executable of a running process\n"
	"  --funcs REGEX   list functions whose name matches REGEX (POSIX extended), with entry,\n"
	"                  size, file:line and the probe sites glimpse trace uses (its entry probe,\n"
	"                  and every RET)\n"
	"  --vars FUNC     list FUNC's parameters, results and locals with types and locations\n"
	"                  (needs DWARF)\n"
	"  --addr2line     read hex pcs from standard input, print function and file:line for\n"
	"                  each, like `go tool addr2line`\n"
	"  --json          print JSON\n";

static void offsets_json(struct json *j, const struct go_offsets *o)
{
	const struct { const char *name; int v; } f[] = {
		{ "g_size", o->g_size }, { "g.stack.lo", o->g_stack_lo }, { "g.stack.hi", o->g_stack_hi },
		{ "g.m", o->g_m }, { "g.sched", o->g_sched }, { "gobuf.sp", o->gobuf_sp },
		{ "gobuf.pc", o->gobuf_pc }, { "gobuf.bp", o->gobuf_bp }, { "g.syscallsp", o->g_syscallsp },
		{ "g.syscallpc", o->g_syscallpc }, { "g.syscallbp", o->g_syscallbp },
		{ "g.atomicstatus", o->g_atomicstatus }, { "g.goid", o->g_goid },
		{ "g.waitsince", o->g_waitsince }, { "g.waitreason", o->g_waitreason }, { "g.gopc", o->g_gopc },
		{ "g.startpc", o->g_startpc }, { "g.parentGoid", o->g_parentgoid }, { "g.labels", o->g_labels },
		{ "m.procid", o->m_procid }, { "m.curg", o->m_curg },
	};

	json_obj(j);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		json_key(j, f[i].name);
		if (f[i].v < 0)
			json_null(j);
		else
			json_int(j, f[i].v);
	}
	json_kv_uint(j, "runtime.allgs", o->allgs);
	json_kv_uint(j, "runtime.allglen", o->allglen);
	json_kv_str(j, "source", o->source ? o->source : "");
	json_kv_str(j, "globals_source", o->globals_source ? o->globals_source : "");
	json_end(j);
}

static void summary_text(const struct gobin *bin)
{
	const struct go_offsets *o = &bin->offsets;

	printf("path:        %s\n", bin->path);
	printf("go version:  %s\n", bin->go_version);
	printf("build id:    %s\n", bin->build_id[0] ? bin->build_id : "(none)");
	printf("stripped:    %s\n", bin->stripped ? "yes (no DWARF: no variables or types; names and lines from the pclntab)"
						: "no (DWARF present)");
	printf("pie:         %s\n", bin->pie ? "yes" : "no");
	printf("functions:   %zu in %zu files\n", pcln_nfuncs(bin->pcln), pcln_nfiles(bin->pcln));
	printf("go text:     0x%" PRIx64 "-0x%" PRIx64 "\n", bin->text_start, bin->text_end);
	printf("runtime offsets (from %s):\n", o->source ? o->source : "?");
	printf("  sizeof(g) %d  g.goid %d  g.atomicstatus %d  g.waitreason %d  g.sched %d (sp %d pc %d bp %d)\n",
	       o->g_size, o->g_goid, o->g_atomicstatus, o->g_waitreason, o->g_sched, o->gobuf_sp, o->gobuf_pc,
	       o->gobuf_bp);
	printf("  g.stack %d/%d  g.m %d  g.syscallsp %d  g.syscallpc %d  g.syscallbp %d  g.labels %d  g.gopc %d\n",
	       o->g_stack_lo, o->g_stack_hi, o->g_m, o->g_syscallsp, o->g_syscallpc, o->g_syscallbp, o->g_labels,
	       o->g_gopc);
	printf("  m.procid %d  m.curg %d\n", o->m_procid, o->m_curg);
	printf("  runtime.allgs 0x%" PRIx64 "  runtime.allglen 0x%" PRIx64 " (from %s)\n", o->allgs, o->allglen,
	       o->globals_source ? o->globals_source : "?");
}

static void summary_json(const struct gobin *bin)
{
	struct buf out = { 0 };
	struct json j;

	json_init(&j, &out);
	json_obj(&j);
	json_kv_str(&j, "path", bin->path);
	json_kv_str(&j, "go_version", bin->go_version);
	json_kv_str(&j, "build_id", bin->build_id);
	json_kv_str(&j, "gnu_build_id", bin->gnu_build_id);
	json_kv_bool(&j, "stripped", bin->stripped);
	json_kv_bool(&j, "pie", bin->pie);
	json_kv_uint(&j, "functions", pcln_nfuncs(bin->pcln));
	json_kv_uint(&j, "files", pcln_nfiles(bin->pcln));
	json_kv_uint(&j, "text_start", bin->text_start);
	json_kv_uint(&j, "text_end", bin->text_end);
	json_key(&j, "offsets");
	offsets_json(&j, &bin->offsets);
	json_end(&j);
	puts(buf_str(&out));
	buf_free(&out);
}

static int list_funcs(const struct gobin *bin, const char *pattern)
{
	regex_t re;
	struct buf out = { 0 };
	struct json j;
	size_t matched = 0;
	int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);

	if (rc) {
		char msg[256];

		regerror(rc, &re, msg, sizeof(msg));
		return err_set(EINVAL, "bad regexp '%s': %s", pattern, msg);
	}
	json_init(&j, &out);
	if (json_output) {
		json_obj(&j);
		json_kv_str(&j, "path", bin->path);
		json_key(&j, "functions");
		json_arr(&j);
	}
	for (size_t i = 0; i < pcln_nfuncs(bin->pcln); i++) {
		const struct gofunc *f = pcln_func(bin->pcln, i);
		struct probe_sites ps;
		const char *file = "?";
		int line = 0;

		if (regexec(&re, f->name, 0, NULL, 0) != 0)
			continue;
		matched++;
		pcln_fileline(bin->pcln, f, f->entry, &file, &line);
		if (disasm_probe_sites(bin->elf, f, &ps) != 0)
			memset(&ps, 0, sizeof(ps));
		if (json_output) {
			json_obj(&j);
			json_kv_str(&j, "name", f->name);
			json_kv_uint(&j, "entry", f->entry);
			json_kv_uint(&j, "end", f->end);
			json_kv_uint(&j, "size", f->end - f->entry);
			json_kv_str(&j, "file", file);
			json_kv_int(&j, "line", line);
			json_kv_uint(&j, "body", ps.body);
			json_kv_uint(&j, "entry_probe", plan_entry_pc(bin, f, &ps));
			json_kv_int(&j, "frame_size", ps.frame_size);
			json_key(&j, "rets");
			json_arr(&j);
			for (int r = 0; r < ps.nrets; r++)
				json_uint(&j, ps.rets[r]);
			json_end(&j);
			json_end(&j);
		} else {
			buf_printf(&out, "0x%" PRIx64 " %6" PRIu64 " %s  %s:%d  entry probe 0x%" PRIx64 " rets", f->entry,
				   f->end - f->entry, f->name, file, line, plan_entry_pc(bin, f, &ps));
			for (int r = 0; r < ps.nrets; r++)
				buf_printf(&out, " 0x%" PRIx64, ps.rets[r]);
			buf_putc(&out, '\n');
		}
		probe_sites_free(&ps);
		if (out.len > 1 << 20) {
			fwrite(out.p, 1, out.len, stdout);
			buf_reset(&out);
		}
	}
	if (json_output) {
		json_end(&j);
		json_end(&j);
		buf_putc(&out, '\n');
	}
	fwrite(buf_str(&out), 1, out.len, stdout);
	buf_free(&out);
	regfree(&re);
	return matched ? 0 : err_set(ENOENT, "no function matches '%s'", pattern);
}

static int list_vars(const struct gobin *bin, const char *name)
{
	const struct dwfunc *f;
	struct buf out = { 0 }, loc = { 0 };
	struct json j;

	if (!bin->dwarf)
		return err_set(ENOENT, "%s has no DWARF (stripped): variables and types are not available", bin->path);
	f = dwarf_func_by_name(bin->dwarf, name);
	if (!f)
		return err_set(ENOENT, "no function named '%s' in the DWARF of %s%s", name, bin->path,
			       pcln_lookup(bin->pcln, name) ? " (it exists but was inlined or has no debug info)" : "");
	json_init(&j, &out);
	if (json_output) {
		json_obj(&j);
		json_kv_str(&j, "func", f->name);
		json_kv_uint(&j, "entry", f->lowpc);
		json_kv_str(&j, "file", f->file ? f->file : "");
		json_kv_int(&j, "line", f->line);
		json_key(&j, "vars");
		json_arr(&j);
	} else {
		buf_printf(&out, "%s at %s:%d (0x%" PRIx64 ")\n", f->name, f->file ? f->file : "?", f->line, f->lowpc);
	}
	for (int i = 0; i < f->nvars; i++) {
		const struct govar *v = &f->vars[i];
		const char *kind = v->is_result ? "result" : v->is_param ? "param" : "local";

		buf_reset(&loc);
		dwarf_describe_loc(bin->dwarf, v, 0, &loc);
		if (json_output) {
			json_obj(&j);
			json_kv_str(&j, "name", v->name);
			json_kv_str(&j, "kind", kind);
			json_kv_str(&j, "type", v->type && v->type->name ? v->type->name : "?");
			json_kv_uint(&j, "size", v->type ? v->type->size : 0);
			json_kv_int(&j, "decl_line", v->decl_line);
			json_kv_str(&j, "location", buf_str(&loc));
			json_end(&j);
		} else {
			buf_printf(&out, "  %-6s %-16s %-24s %s\n", kind, v->name,
				   v->type && v->type->name ? v->type->name : "?", buf_str(&loc));
		}
	}
	if (json_output) {
		json_end(&j);
		json_end(&j);
		buf_putc(&out, '\n');
	}
	fwrite(buf_str(&out), 1, out.len, stdout);
	buf_free(&out);
	buf_free(&loc);
	return 0;
}

/* Mirrors `go tool addr2line`: for every pc read, "func\nfile:line\n" ("?" and "?:0"
 * when the pc is in no function). */
static int addr2line(const struct gobin *bin)
{
	char line[256];

	while (fgets(line, sizeof(line), stdin)) {
		uint64_t pc;
		char *end, *p = line;
		const struct gofunc *f;
		const char *file = NULL;
		int ln = 0;
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		if (!*line)
			continue;
		if (strncmp(p, "0x", 2) == 0)
			p += 2;
		errno = 0;
		pc = strtoull(p, &end, 16);
		if (errno || end == p || *end)
			return err_set(EINVAL, "addr2line: not a hex pc: '%s'", line);
		f = pcln_find(bin->pcln, pc);
		if (!f || pcln_fileline(bin->pcln, f, pc, &file, &ln) != 0) {
			printf("?\n?:0\n");
			continue;
		}
		printf("%s\n%s:%d\n", f->name, file, ln);
	}
	return 0;
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' }, { "json", no_argument, NULL, 'j' },
		{ "funcs", required_argument, NULL, 'f' }, { "vars", required_argument, NULL, 'v' },
		{ "addr2line", no_argument, NULL, 'a' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *funcs = NULL, *vars = NULL;
	bool a2l = false;
	uint64_t pid = 0;
	struct gobin *bin = NULL;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:jf:v:ah", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_parse_u64(optarg, 1, INT32_MAX, &pid))
				return cli_usage_error("inspect", "--pid takes a process id, not '%s'", optarg);
			break;
		case 'j': json_output = true; break;
		case 'f': funcs = optarg; break;
		case 'v': vars = optarg; break;
		case 'a': a2l = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_usage_error("inspect", "bad option");
		}
	}
	if ((optind < argc) == (pid != 0))
		return cli_usage_error("inspect", "give exactly one of BINARY or --pid PID");
	if (!!funcs + !!vars + a2l > 1)
		return cli_usage_error("inspect", "--funcs, --vars and --addr2line exclude each other");
	rc = pid ? gobin_open_pid((pid_t)pid, &bin) : gobin_open(argv[optind], &bin);
	if (rc)
		return cli_fail(rc);
	if (funcs)
		rc = list_funcs(bin, funcs);
	else if (vars)
		rc = list_vars(bin, vars);
	else if (a2l)
		rc = addr2line(bin);
	else if (json_output)
		summary_json(bin);
	else
		summary_text(bin);
	gobin_close(bin);
	return rc ? cli_fail(rc) : 0;
}

const struct cmd cmd_inspect = {
	.name = "inspect",
	.run = run,
	.summary = "show what glimpse reads from a Go binary or process",
	.usage = usage_text,
};
