/* gdbmi.h - a gdb/MI session: one `gdb --interpreter=mi3` process driven over
 * pipes, its output records parsed (result records ^done/^error, async records
 * *stopped, *running and =notifications, stream records ~ @ &) with MI values as
 * a small tree; and the whitelist that turns a debugger command of the web UI
 * ("reverse-next", "break main.go:42") into the one MI command that does it.
 *
 * The parser takes untrusted text (whatever gdb prints, the recorded program's
 * strings inside it): every input is either parsed or refused with a message,
 * nesting is bounded, nothing is read past len.
 */
#ifndef GLIMPSE_GDBMI_H
#define GLIMPSE_GDBMI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MI_MAX_DEPTH 64

enum mi_kind { MI_STR, MI_TUPLE, MI_LIST };

/* An MI value: a c-string, a tuple {a=1,b=2} or a list [1,2] / [frame={},frame={}].
 * Members of tuples, and of lists of results, have a name. */
struct mi_val {
	enum mi_kind kind;
	char *name;		/* NULL for a bare value (a list's element, the record itself) */
	char *str;		/* MI_STR: the decoded string */
	struct mi_val *kids;	/* MI_TUPLE, MI_LIST */
	size_t n;
};

/* One line of gdb's output. */
struct mi_record {
	char type;		/* '^' result, '*' exec, '+' status, '=' notify, '~' console,
				 * '@' target, '&' log, '(' the "(gdb)" prompt */
	int64_t token;		/* the command's token, -1 when none */
	char *cls;		/* "done", "error", "running", "stopped", ...; NULL for streams */
	char *text;		/* stream records: the decoded string; else NULL */
	struct mi_val results;	/* a tuple of the record's results (empty for streams) */
};

/* Parses one line of MI output (without its newline) into *out. Returns 0, or -1
 * with a message in err (and *out empty) when the line is not MI. Free with
 * mi_record_free. */
int mi_parse_record(const char *line, size_t len, struct mi_record *out, char *err, size_t errlen);
void mi_record_free(struct mi_record *r);
void mi_val_free(struct mi_val *v);
/* The member name of a tuple (or list of results), or NULL. */
const struct mi_val *mi_get(const struct mi_val *v, const char *name);
/* The member name's string, or NULL when absent or not a string. */
const char *mi_get_str(const struct mi_val *v, const char *name);

/* ---- the process ---- */

struct gdbmi;

/* Starts gdb in MI mode for program exe (may be NULL: gdb reads it from the
 * target), sourcing script (may be NULL), with no init files, the Go runtime's
 * helpers loaded from the Go installation (auto-load limited to /usr/lib,
 * /usr/share, /usr/local), writes to target memory and registers and calls of
 * target functions refused, printing bounded. Waits for the first prompt up to
 * timeout_ms. Returns 0 and *out, or a negative code with a message. */
int gdbmi_start(const char *gdb, const char *exe, const char *script, int timeout_ms, struct gdbmi **out);

struct gdbmi_answer {
	struct mi_record result;	/* ^done, ^connected, ^running, ^error, ^exit */
	bool stopped;			/* the target ran and stopped again (see gdbmi_last_stop) */
	bool interrupted;		/* it ran past the time limit and was interrupted */
	struct buf console;		/* console and log stream text that came meanwhile (bounded) */
};

/* Sends one MI command (cmd without token or newline; trusted text: build it with
 * gdbmi_command or from constants) and waits for its result record. When the
 * result is ^running, waits for the target to stop too: past timeout_ms it is
 * interrupted (-exec-interrupt) and given 5 s more. Returns 0 and *a (^error
 * included: a->result.cls says; free with gdbmi_answer_free), or -ETIMEDOUT when
 * gdb did not answer (or the target did not stop even when interrupted) and
 * -EPIPE when gdb died: the session is unusable after either. */
int gdbmi_run(struct gdbmi *g, const char *cmd, int timeout_ms, struct gdbmi_answer *a);
void gdbmi_answer_free(struct gdbmi_answer *a);
/* The last *stopped record seen (its results: reason, frame, thread-id, ...), or
 * NULL before the first. */
const struct mi_record *gdbmi_last_stop(const struct gdbmi *g);
/* Whether gdb still runs and answers. */
bool gdbmi_alive(const struct gdbmi *g);
/* Ends gdb (-gdb-exit, then SIGKILL after a second) and frees g. NULL is fine. */
void gdbmi_close(struct gdbmi *g);

/* ---- the whitelist ---- */

/* Turns a debugger command into the MI command that does it, appended to mi:
 *   continue step next finish stepi nexti, and reverse-<each> (reverse-finish too)
 *   break FILE:LINE      FILE of letters, digits and _ . + - / @ (not starting with -)
 *   delete [N]           all breakpoints, or breakpoint N
 *   frame N | thread N   select a frame of the current thread, or a thread
 *   goroutine N | goroutine off   show goroutine N's frames (glimpse-goroutine)
 * Numbers are decimal without sign. Anything else is refused. Returns 0 and
 * *resumes (whether the command runs the target), or -EINVAL with a message. */
int gdbmi_command(const char *cmd, struct buf *mi, bool *resumes);

#endif
