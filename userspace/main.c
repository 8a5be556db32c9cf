/* main.c - glimpse's entry point: global options and the command table.
 *
 *	glimpse [--json] <command> [options]
 *	glimpse help [command]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"

#define GLIMPSE_VERSION GLIMPSE_VERSION_STRING

static const struct cmd *const commands[] = {
	&cmd_inspect,
	&cmd_ps,
	&cmd_snapshot,
	&cmd_trace,
	&cmd_serve,
	&cmd_record,
	&cmd_replay,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: glimpse [--json] <command> [options]\n\n"
		   "glimpse debugs live Go services without stopping them.\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "  %-10s %s\n  %-10s %s\n", "help", "show help for a command", "version",
		"print glimpse's version");
	fprintf(f, "\nglobal options:\n  --json     print data as JSON (every command that prints data)\n");
}

static const struct cmd *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static int do_help(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "glimpse: unknown command '%s'\n", argv[1]);
		return 2;
	}
	fputs(c->usage, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const struct cmd *c;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
			json_output = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("glimpse %s\n", GLIMPSE_VERSION);
			return 0;
		} else {
			fprintf(stderr, "glimpse: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "help") == 0)
		return do_help(argc - i, argv + i);
	if (strcmp(argv[i], "version") == 0) {
		printf("glimpse %s\n", GLIMPSE_VERSION);
		return 0;
	}
	c = find(argv[i]);
	if (!c) {
		fprintf(stderr, "glimpse: unknown command '%s' (see 'glimpse help')\n", argv[i]);
		return 2;
	}
	return c->run(argc - i, argv + i);
}
