/* gdbmi.c - a gdb/MI session (see gdbmi.h): the MI output parser, the gdb
 * process behind two pipes with a time limit on every answer, and the whitelist
 * of debugger commands the web UI may send.
 */
#include "gdbmi.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

/* ---- the parser ---- */

struct mi_parser {
	const char *p, *end;
	int depth;
	char *err;
	size_t errlen;
};

static int fail(struct mi_parser *ps, const char *what)
{
	if (ps->err && ps->errlen && !ps->err[0]) /* the innermost failure says most */
		snprintf(ps->err, ps->errlen, "%s at byte %zu", what, (size_t)(ps->end - ps->p));
	return -1;
}

void mi_val_free(struct mi_val *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		mi_val_free(&v->kids[i]);
	free(v->kids);
	free(v->name);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

/* A c-string: "..." with C escapes (\n \t \" \\ and octal \ooo). */
static int parse_cstring(struct mi_parser *ps, char **out)
{
	struct buf b = {0};

	if (ps->p >= ps->end || *ps->p != '"')
		return fail(ps, "expected '\"'");
	ps->p++;
	while (ps->p < ps->end && *ps->p != '"') {
		char c = *ps->p++;

		if (c != '\\') {
			buf_putc(&b, c);
			continue;
		}
		if (ps->p >= ps->end)
			break;
		c = *ps->p++;
		switch (c) {
		case 'n': buf_putc(&b, '\n'); break;
		case 't': buf_putc(&b, '\t'); break;
		case 'r': buf_putc(&b, '\r'); break;
		case 'a': buf_putc(&b, '\a'); break;
		case 'b': buf_putc(&b, '\b'); break;
		case 'f': buf_putc(&b, '\f'); break;
		case 'v': buf_putc(&b, '\v'); break;
		case 'e': buf_putc(&b, 033); break;
		default:
			if (c >= '0' && c <= '7') {
				unsigned int v = (unsigned int)(c - '0');

				for (int i = 0; i < 2 && ps->p < ps->end && *ps->p >= '0' && *ps->p <= '7'; i++)
					v = v * 8 + (unsigned int)(*ps->p++ - '0');
				buf_putc(&b, (char)(v & 0xff));
			} else {
				buf_putc(&b, c); /* \" \\ and anything else: the character */
			}
		}
	}
	if (ps->p >= ps->end) {
		buf_free(&b);
		return fail(ps, "unterminated string");
	}
	ps->p++;
	*out = buf_detach(&b);
	return 0;
}

static int parse_value(struct mi_parser *ps, struct mi_val *v);

/* A variable name: up to '='. */
static int parse_name(struct mi_parser *ps, char **out)
{
	const char *s = ps->p;

	while (ps->p < ps->end && *ps->p != '=' && *ps->p != ',' && *ps->p != '{' && *ps->p != '[' &&
	       *ps->p != '"' && *ps->p != '}' && *ps->p != ']')
		ps->p++;
	if (ps->p == s || ps->p >= ps->end || *ps->p != '=')
		return fail(ps, "expected name=");
	*out = xstrndup(s, (size_t)(ps->p - s));
	ps->p++;
	return 0;
}

static struct mi_val *add_kid(struct mi_val *v)
{
	v->kids = xrealloc(v->kids, (v->n + 1) * sizeof(*v->kids));
	memset(&v->kids[v->n], 0, sizeof(*v->kids));
	return &v->kids[v->n++];
}

/* name=value */
static int parse_result(struct mi_parser *ps, struct mi_val *into)
{
	struct mi_val *k = add_kid(into);
	char *name = NULL;

	if (parse_name(ps, &name))
		return -1;
	if (parse_value(ps, k)) {
		free(name);
		return -1;
	}
	k->name = name;
	return 0;
}

/* {results} or [values] or [results], the opening bracket at ps->p. */
static int parse_compound(struct mi_parser *ps, struct mi_val *v)
{
	char close = *ps->p == '{' ? '}' : ']';
	bool tuple = close == '}';
	int results = -1; /* a list holds values or results, not both */

	if (++ps->depth > MI_MAX_DEPTH)
		return fail(ps, "nested too deep");
	v->kind = tuple ? MI_TUPLE : MI_LIST;
	ps->p++;
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		if (ps->p >= ps->end)
			return fail(ps, "unterminated tuple or list");
		bool result = tuple || (*ps->p != '"' && *ps->p != '{' && *ps->p != '[');

		if (results >= 0 && results != result)
			return fail(ps, "a list of values and results");
		results = result;
		if (result ? parse_result(ps, v) : parse_value(ps, add_kid(v)))
			return -1;
		if (ps->p >= ps->end)
			return fail(ps, "unterminated tuple or list");
		if (*ps->p == close) {
			ps->p++;
			break;
		}
		if (*ps->p != ',')
			return fail(ps, "expected ','");
		ps->p++;
	}
	ps->depth--;
	return 0;
}

static int parse_value(struct mi_parser *ps, struct mi_val *v)
{
	if (ps->p >= ps->end)
		return fail(ps, "expected a value");
	if (*ps->p == '"') {
		v->kind = MI_STR;
		return parse_cstring(ps, &v->str);
	}
	if (*ps->p == '{' || *ps->p == '[')
		return parse_compound(ps, v);
	return fail(ps, "expected a value");
}

void mi_record_free(struct mi_record *r)
{
	free(r->cls);
	free(r->text);
	mi_val_free(&r->results);
	memset(r, 0, sizeof(*r));
	r->token = -1;
}

int mi_parse_record(const char *line, size_t len, struct mi_record *out, char *err, size_t errlen)
{
	struct mi_parser ps = {line, line + len, 0, err, errlen};
	const char *s;

	memset(out, 0, sizeof(*out));
	out->token = -1;
	out->results.kind = MI_TUPLE;
	if (err && errlen)
		err[0] = 0;
	while (ps.end > ps.p && (ps.end[-1] == '\r' || ps.end[-1] == ' '))
		ps.end--;
	if (ps.end - ps.p == 5 && memcmp(ps.p, "(gdb)", 5) == 0) {
		out->type = '(';
		return 0;
	}
	if (ps.p < ps.end && *ps.p >= '0' && *ps.p <= '9') {
		int64_t t = 0;

		while (ps.p < ps.end && *ps.p >= '0' && *ps.p <= '9') {
			if (t > (INT64_MAX - 9) / 10)
				return fail(&ps, "token too large");
			t = t * 10 + (*ps.p++ - '0');
		}
		out->token = t;
	}
	if (ps.p >= ps.end || !*ps.p || !strchr("^*+=~@&", *ps.p))
		return fail(&ps, "not an MI record");
	out->type = *ps.p++;
	if (strchr("~@&", out->type)) {
		if (out->token >= 0 || parse_cstring(&ps, &out->text) || ps.p != ps.end) {
			mi_record_free(out);
			return fail(&ps, "malformed stream record");
		}
		return 0;
	}
	s = ps.p;
	while (ps.p < ps.end && *ps.p != ',')
		ps.p++;
	if (ps.p == s) {
		mi_record_free(out);
		return fail(&ps, "record without a class");
	}
	out->cls = xstrndup(s, (size_t)(ps.p - s));
	while (ps.p < ps.end) {
		if (*ps.p != ',' || (ps.p++, parse_result(&ps, &out->results))) {
			mi_record_free(out);
			return fail(&ps, "malformed results");
		}
	}
	return 0;
}

const struct mi_val *mi_get(const struct mi_val *v, const char *name)
{
	if (!v || v->kind == MI_STR)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (v->kids[i].name && strcmp(v->kids[i].name, name) == 0)
			return &v->kids[i];
	return NULL;
}

const char *mi_get_str(const struct mi_val *v, const char *name)
{
	const struct mi_val *k = mi_get(v, name);

	return k && k->kind == MI_STR ? k->str : NULL;
}

/* ---- the process ---- */

#define LINE_MAX_BYTES (8u << 20)  /* one MI line at most (a huge value: the session ends) */
#define CONSOLE_MAX_BYTES (16u << 10)

struct gdbmi {
	pid_t pid;
	int in, out;		/* gdb's stdin (we write), stdout+stderr (we read) */
	struct buf pending;	/* bytes read, not yet a whole line */
	int64_t next_token;
	uint64_t nstops;	/* *stopped records seen */
	struct mi_record last_stop;
	bool dead;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next whole line of output into line (without its newline), waiting until
 * deadline (CLOCK_MONOTONIC ms). Returns 1 with a line, 0 at the deadline,
 * -EPIPE when gdb closed its output or wrote a line too long. */
static int read_line(struct gdbmi *g, int64_t deadline, struct buf *line)
{
	for (;;) {
		char *nl = g->pending.len ? memchr(g->pending.p, '\n', g->pending.len) : NULL;
		char chunk[65536];
		struct pollfd p = {.fd = g->out, .events = POLLIN};
		int64_t left;
		ssize_t n;

		if (nl) {
			size_t used = (size_t)(nl - g->pending.p) + 1;

			buf_reset(line);
			buf_add(line, g->pending.p, used - 1);
			memmove(g->pending.p, g->pending.p + used, g->pending.len - used);
			g->pending.len -= used;
			g->pending.p[g->pending.len] = 0;
			return 1;
		}
		if (g->pending.len > LINE_MAX_BYTES) {
			g->dead = true;
			return err_set(EPIPE, "gdb wrote a line longer than %u bytes", LINE_MAX_BYTES);
		}
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
			return err_set(EPIPE, "poll: %s", strerror(errno));
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(g->out, chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			g->dead = true;
			return err_set(EPIPE, "gdb exited");
		}
		buf_add(&g->pending, chunk, (size_t)n);
	}
}

/* Takes in one line of output: remembers *stopped, collects stream text into
 * console (bounded), and returns the parsed record in *r (caller frees) or 1 for
 * a line that is not MI (kept as console text). */
static int take_line(struct gdbmi *g, const struct buf *line, struct mi_record *r, struct buf *console)
{
	char err[128];

	if (mi_parse_record(buf_str(line), line->len, r, err, sizeof(err)) != 0) {
		if (console && console->len < CONSOLE_MAX_BYTES)
			buf_printf(console, "%s\n", buf_str(line));
		return 1;
	}
	if ((r->type == '~' || r->type == '&') && console && console->len < CONSOLE_MAX_BYTES)
		buf_puts(console, r->text);
	if (r->type == '*' && r->cls && strcmp(r->cls, "stopped") == 0) {
		mi_record_free(&g->last_stop);
		g->last_stop = *r;
		memset(r, 0, sizeof(*r));
		r->token = -1;
		g->nstops++;
	}
	return 0;
}

static int send_line(struct gdbmi *g, const char *text)
{
	struct buf b = {0};
	int rc;

	buf_printf(&b, "%s\n", text);
	rc = buf_write_fd(&b, g->in, b.len);
	buf_free(&b);
	if (rc) {
		g->dead = true;
		return err_set(EPIPE, "cannot write to gdb: %s", strerror(-rc));
	}
	return 0;
}

int gdbmi_start(const char *gdb, const char *exe, const char *script, int timeout_ms, struct gdbmi **out)
{
	static const char *const settings[] = {
		"set auto-load safe-path /usr/lib:/usr/share:/usr/local",
		"set confirm off",
		"set pagination off",
		"set width 0",
		"set height 0",
		"set sysroot /",
		"set may-write-memory off",
		"set may-call-functions off",
		"set print elements 200",
		"set print repeats 20",
		"set print max-depth 4",
		"set print frame-arguments scalars",
		"set mi-async on",
	};
	const char *argv[64];
	int to[2], from[2], k = 0, rc;
	struct gdbmi *g;
	struct buf line = {0};
	int64_t deadline = now_ms() + timeout_ms;

	argv[k++] = gdb;
	argv[k++] = "--interpreter=mi3";
	argv[k++] = "-nx";
	argv[k++] = "-q";
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		argv[k++] = "-iex";
		argv[k++] = settings[i];
	}
	if (script) {
		argv[k++] = "-x";
		argv[k++] = script;
	}
	if (exe)
		argv[k++] = exe;
	argv[k] = NULL;
	if (pipe2(to, O_CLOEXEC) != 0)
		return err_set(errno, "pipe: %s", strerror(errno));
	if (pipe2(from, O_CLOEXEC) != 0) {
		rc = err_set(errno, "pipe: %s", strerror(errno));
		close(to[0]);
		close(to[1]);
		return rc;
	}
	g = xcalloc(1, sizeof(*g));
	g->last_stop.token = -1;
	g->next_token = 1;
	g->pid = fork();
	if (g->pid == 0) {
		setsid();
		dup2(to[0], 0);
		dup2(from[1], 1);
		dup2(from[1], 2);
		execvp(gdb, (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", gdb, strerror(errno));
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	g->in = to[1];
	g->out = from[0];
	if (g->pid < 0) {
		rc = err_set(errno, "cannot start %s: %s", gdb, strerror(errno));
		gdbmi_close(g);
		return rc;
	}
	/* Up to the first prompt. */
	for (;;) {
		struct mi_record r;
		struct buf said = {0};

		rc = read_line(g, deadline, &line);
		if (rc <= 0) {
			if (rc == 0)
				rc = err_set(ETIMEDOUT, "%s did not start within %d ms", gdb, timeout_ms);
			else
				rc = err_set(EPIPE, "%s exited at start: %s", gdb, buf_str(&g->pending));
			buf_free(&line);
			gdbmi_close(g);
			return rc;
		}
		if (take_line(g, &line, &r, &said) == 0) {
			bool prompt = r.type == '(';

			mi_record_free(&r);
			if (prompt) {
				buf_free(&said);
				break;
			}
		}
		buf_free(&said);
	}
	buf_free(&line);
	*out = g;
	return 0;
}

void gdbmi_answer_free(struct gdbmi_answer *a)
{
	mi_record_free(&a->result);
	buf_free(&a->console);
}

/* Reads records until one satisfies want (the result of token, or a new stop),
 * or the deadline: 1 when seen, 0 at the deadline, negative when gdb is gone. */
static int wait_for(struct gdbmi *g, int64_t token, uint64_t stops_before, int64_t deadline,
		    struct gdbmi_answer *a)
{
	struct buf line = {0};
	int rc;

	for (;;) {
		struct mi_record r;

		if (token < 0 && g->nstops > stops_before) {
			rc = 1;
			break;
		}
		rc = read_line(g, deadline, &line);
		if (rc <= 0)
			break;
		if (take_line(g, &line, &r, &a->console) != 0)
			continue;
		if (token >= 0 && r.type == '^' && r.token == token) {
			a->result = r;
			rc = 1;
			break;
		}
		mi_record_free(&r);
	}
	buf_free(&line);
	return rc;
}

int gdbmi_run(struct gdbmi *g, const char *cmd, int timeout_ms, struct gdbmi_answer *a)
{
	struct buf text = {0};
	int64_t token = g->next_token++, deadline = now_ms() + timeout_ms;
	uint64_t stops;
	int rc;

	memset(a, 0, sizeof(*a));
	a->result.token = -1;
	if (g->dead)
		return err_set(EPIPE, "gdb is gone");
	stops = g->nstops;
	buf_printf(&text, "%" PRId64 "%s", token, cmd);
	rc = send_line(g, text.p);
	buf_free(&text);
	if (rc)
		return rc;
	rc = wait_for(g, token, 0, deadline, a);
	if (rc == 0) {
		g->dead = true;
		return err_set(ETIMEDOUT, "gdb did not answer %s within %d ms", cmd, timeout_ms);
	}
	if (rc < 0)
		return rc;
	if (!a->result.cls || strcmp(a->result.cls, "running") != 0)
		return 0;
	/* The target runs: wait for it to stop, interrupting it past the limit. */
	rc = wait_for(g, -1, stops, deadline, a);
	if (rc == 0) {
		a->interrupted = true;
		deadline = now_ms() + 5000;
		if (send_line(g, "-exec-interrupt") == 0)
			rc = wait_for(g, -1, stops, deadline, a);
	}
	if (rc <= 0) {
		g->dead = true;
		return rc < 0 ? rc : err_set(ETIMEDOUT, "the target did not stop within %d ms, nor when interrupted", timeout_ms);
	}
	a->stopped = true;
	return 0;
}

const struct mi_record *gdbmi_last_stop(const struct gdbmi *g)
{
	return g->nstops ? &g->last_stop : NULL;
}

bool gdbmi_alive(const struct gdbmi *g)
{
	return g && !g->dead && waitpid(g->pid, NULL, WNOHANG) == 0;
}

void gdbmi_close(struct gdbmi *g)
{
	int64_t deadline;

	if (!g)
		return;
	if (g->pid > 0) {
		if (!g->dead) {
			/* Leave rr's replay server running for the next debugger (it was started with -k). */
			send_line(g, "-target-disconnect");
			send_line(g, "-gdb-exit");
		}
		close(g->in);
		g->in = -1;
		deadline = now_ms() + 1000;
		while (waitpid(g->pid, NULL, WNOHANG) == 0) {
			if (now_ms() > deadline) {
				kill(-g->pid, SIGKILL);
				kill(g->pid, SIGKILL);
				waitpid(g->pid, NULL, 0);
				break;
			}
			usleep(20000);
		}
	}
	if (g->in >= 0)
		close(g->in);
	if (g->out >= 0)
		close(g->out);
	buf_free(&g->pending);
	mi_record_free(&g->last_stop);
	free(g);
}

/* ---- the whitelist ---- */

/* A decimal number without sign in [0, max], the whole of s. */
static bool parse_num(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

/* FILE:LINE as the whitelist allows it. */
static bool valid_location(const char *loc, char *file, size_t filelen, uint64_t *line)
{
	const char *colon = strrchr(loc, ':');
	size_t n = colon ? (size_t)(colon - loc) : 0;

	if (!colon || n == 0 || n >= filelen || loc[0] == '-' || !parse_num(colon + 1, 10000000, line) || *line == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = loc[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_.+-/@", c)))
			return false;
	}
	memcpy(file, loc, n);
	file[n] = 0;
	return true;
}

int gdbmi_command(const char *cmd, struct buf *mi, bool *resumes)
{
	static const struct {
		const char *name, *mi;
	} exec[] = {
		{"continue", "-exec-continue"}, {"step", "-exec-step"},	  {"next", "-exec-next"},
		{"finish", "-exec-finish"},	{"stepi", "-exec-step-instruction"}, {"nexti", "-exec-next-instruction"},
	};
	const char *arg = strchr(cmd, ' ');
	size_t verb = arg ? (size_t)(arg - cmd) : strlen(cmd);
	uint64_t n;

	*resumes = false;
	if (strlen(cmd) > 600)
		return err_set(EINVAL, "command too long");
	if (arg)
		arg++;
	for (size_t i = 0; i < sizeof(exec) / sizeof(exec[0]); i++) {
		size_t l = strlen(exec[i].name);
		bool rev = verb == l + 8 && strncmp(cmd, "reverse-", 8) == 0 && strncmp(cmd + 8, exec[i].name, l) == 0;

		if (!rev && (verb != l || strncmp(cmd, exec[i].name, l) != 0))
			continue;
		if (arg)
			return err_set(EINVAL, "%.*s takes no argument", (int)verb, cmd);
		buf_printf(mi, "%s%s", exec[i].mi, rev ? " --reverse" : "");
		*resumes = true;
		return 0;
	}
	if (verb == 5 && strncmp(cmd, "break", 5) == 0) {
		char file[512];

		if (!arg || !valid_location(arg, file, sizeof(file), &n))
			return err_set(EINVAL, "break takes FILE:LINE (FILE of letters, digits and _ . + - / @; LINE a number)");
		buf_printf(mi, "-break-insert %s:%" PRIu64, file, n);
		return 0;
	}
	if (verb == 6 && strncmp(cmd, "delete", 6) == 0) {
		if (!arg) {
			buf_puts(mi, "-break-delete");
			return 0;
		}
		if (!parse_num(arg, 1000000, &n) || n == 0)
			return err_set(EINVAL, "delete takes a breakpoint number, or nothing for all");
		buf_printf(mi, "-break-delete %" PRIu64, n);
		return 0;
	}
	if ((verb == 5 && strncmp(cmd, "frame", 5) == 0) || (verb == 6 && strncmp(cmd, "thread", 6) == 0)) {
		bool frame = verb == 5;

		if (!arg || !parse_num(arg, 1000000, &n) || (!frame && n == 0))
			return err_set(EINVAL, "%s takes a number", frame ? "frame" : "thread");
		buf_printf(mi, "%s %" PRIu64, frame ? "-stack-select-frame" : "-thread-select", n);
		return 0;
	}
	if (verb == 9 && strncmp(cmd, "goroutine", 9) == 0) {
		if (arg && strcmp(arg, "off") == 0) {
			buf_puts(mi, "-interpreter-exec console \"glimpse-goroutine off\"");
			return 0;
		}
		if (!arg || !parse_num(arg, INT64_MAX, &n) || n == 0)
			return err_set(EINVAL, "goroutine takes a goroutine id, or off");
		buf_printf(mi, "-interpreter-exec console \"glimpse-goroutine %" PRIu64 "\"", n);
		return 0;
	}
	return err_set(EINVAL,
		       "unknown command '%.*s': continue, step, next, finish, stepi, nexti, reverse-<each>, "
		       "break FILE:LINE, delete [N], frame N, thread N, goroutine N|off",
		       (int)(verb > 40 ? 40 : verb), cmd);
}
