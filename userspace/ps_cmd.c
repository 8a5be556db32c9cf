/* ps_cmd.c - `glimpse ps`: the Go processes running on this host, as a table or
 * a JSON array (see procs.h).
 */
#include <getopt.h>
#include <stdio.h>

#include "buf.h"
#include "cli.h"
#include "json.h"
#include "procs.h"

static const char usage_text[] =
	"usage: glimpse ps [--json]\n"
	"\n"
	"Lists the Go processes running on this host: pid (and pid inside its own pid namespace,\n"
	"for processes in containers), command, Go version, whether stripped (no DWARF: no\n"
	"variables in snapshots) or PIE, cgroup, executable and build id. Processes glimpse may\n"
	"not read are left out.\n"
	"\n"
	"  --json   print a JSON array of objects with keys pid, ns_pid, other_ns, command, exe,\n"
	"           go_version, build_id, stripped, pie, cgroup\n";

static void print_table(const struct go_proc *procs, size_t n)
{
	printf("%-8s %-8s %-16s %-10s %-8s %-4s %-32s %s\n", "PID", "NS_PID", "COMMAND", "GO", "STRIPPED", "PIE",
	       "CGROUP", "EXE");
	for (size_t i = 0; i < n; i++) {
		const struct go_proc *g = &procs[i];
		char ns[16];

		if (g->other_ns)
			snprintf(ns, sizeof(ns), "%d", (int)g->ns_pid);
		else
			snprintf(ns, sizeof(ns), "-");
		printf("%-8d %-8s %-16s %-10s %-8s %-4s %-32s %s\n", (int)g->pid, ns, g->comm,
		       g->go_version[0] ? g->go_version : "<go1.18", g->stripped ? "yes" : "no", g->pie ? "yes" : "no",
		       g->cgroup[0] ? g->cgroup : "-", g->exe);
	}
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct go_proc *procs;
	size_t n;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json_output = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_usage_error("ps", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("ps", "takes no arguments");
	rc = procs_list(&procs, &n);
	if (rc)
		return cli_fail(rc);
	if (json_output) {
		struct buf out = {0};

		procs_json(procs, n, &out);
		puts(buf_str(&out));
		buf_free(&out);
	} else {
		print_table(procs, n);
	}
	procs_free(procs, n);
	return 0;
}

const struct cmd cmd_ps = {
	.name = "ps",
	.run = run,
	.summary = "list the Go processes running on this host",
	.usage = usage_text,
};
