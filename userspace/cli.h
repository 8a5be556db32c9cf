/* cli.h - what every command shares: the global options, the command table
 * entry, and helpers to parse numbers and print errors the same way.
 */
#ifndef GLIMPSE_CLI_H
#define GLIMPSE_CLI_H
#include <stdbool.h>
#include <stdint.h>

#define GLIMPSE_VERSION_STRING "0.2.0"

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv);	/* argv[0] is the command name; returns the exit code */
	const char *summary;
	const char *usage;			/* full help text */
};

/* Set by main() from the global options. */
extern bool json_output;

/* Prints "glimpse: <msg>" for rc's recorded error and returns the exit code 1. */
int cli_fail(int rc);
/* Prints "glimpse <cmd>: <fmt...>" plus a hint to see help, returns exit code 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a decimal/0x number into *out; false if malformed or out of [min, max]. */
bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

extern const struct cmd cmd_inspect;
extern const struct cmd cmd_ps;
extern const struct cmd cmd_snapshot;
extern const struct cmd cmd_trace;
extern const struct cmd cmd_serve;
extern const struct cmd cmd_record;
extern const struct cmd cmd_replay;

#endif
