/* api_debug.c - the replay debugger's API (/api/recordings/ID/debug, /api/debug/SID):
 * debug sessions, each one gdb in MI mode (gdbmi.c) attached to a recording's rr
 * replay server (replay.c) at a snapshot's or trace event's moment, driven by
 * whitelisted commands (continue, step, next, finish and their reverse forms,
 * breakpoints at FILE:LINE, frame, thread and goroutine selection). Each answer
 * is the state: why it stopped, the frame, the source around the line, the
 * stack, the locals, the threads and the breakpoints, all bounded.
 *
 * Bounds: one command at a time per session (its mutex), a time limit per
 * command (the target is interrupted past it), a limit on sessions, sessions
 * idle too long closed (api_debug_reap), all closed when the server stops.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"
#include "err.h"
#include "gdbmi.h"
#include "json.h"
#include "jsonparse.h"
#include "replay.h"

#define DEBUG_SESSIONS_HARD_MAX 64
#define DEBUG_STACK_MAX 64		/* frames in a state */
#define DEBUG_LOCALS_MAX 200		/* variables in a state */
#define DEBUG_VALUE_MAX 2048		/* bytes of one value */
#define DEBUG_THREADS_MAX 128
#define DEBUG_BREAKS_MAX 64
#define DEBUG_CONTEXT_MAX 200		/* source lines either side, at most */
#define DEBUG_SOURCE_MAX (8 << 20)	/* bytes of a source file read */
#define DEBUG_CONSOLE_MAX 4096		/* bytes of gdb's console text in an answer */
#define DEBUG_START_MS 60000		/* gdb reading the program's symbols */
#define DEBUG_QUERY_MS 15000		/* a query for the state (no target running) */

struct dbg {
	char id[33];
	int64_t recording, event;
	char *gdbserver, *exe, *script;
	struct gdbmi *gdb;
	pthread_mutex_t lock;		/* one command at a time; held while gdb works */
	/* Under sessions.lock: */
	int refs;
	bool closed;
	int64_t last_ms;
};

static struct {
	pthread_mutex_t lock;
	struct dbg *s[DEBUG_SESSIONS_HARD_MAX];
	int n;
	int max, idle_s, cmd_s;
	int64_t next_reap_ms;
} sessions = {PTHREAD_MUTEX_INITIALIZER, {NULL}, 0, 4, 600, 30, 0};

void api_debug_config(unsigned int max, unsigned int idle_s, unsigned int cmd_s)
{
	pthread_mutex_lock(&sessions.lock);
	sessions.max = (int)(max > DEBUG_SESSIONS_HARD_MAX ? DEBUG_SESSIONS_HARD_MAX : max);
	sessions.idle_s = (int)idle_s;
	sessions.cmd_s = (int)(cmd_s ? cmd_s : 1);
	pthread_mutex_unlock(&sessions.lock);
}

static void dbg_free(struct dbg *d)
{
	gdbmi_close(d->gdb);
	pthread_mutex_destroy(&d->lock);
	free(d->gdbserver);
	free(d->exe);
	free(d->script);
	free(d);
}

/* Drops a reference taken by find or open; the last one frees. */
static void dbg_put(struct dbg *d)
{
	bool last;

	pthread_mutex_lock(&sessions.lock);
	last = --d->refs == 0;
	pthread_mutex_unlock(&sessions.lock);
	if (last)
		dbg_free(d);
}

/* Takes d out of the table (no new references) and drops the table's reference;
 * under sessions.lock, the caller holding a reference of its own. */
static void unlist(struct dbg *d)
{
	for (int i = 0; i < sessions.n; i++)
		if (sessions.s[i] == d) {
			sessions.s[i] = sessions.s[--sessions.n];
			d->closed = true;
			d->refs--;
			return;
		}
}

/* The session id, with a reference (dbg_put it), or NULL. */
static struct dbg *find(const char *id)
{
	struct dbg *d = NULL;

	pthread_mutex_lock(&sessions.lock);
	for (int i = 0; i < sessions.n; i++)
		if (!sessions.s[i]->closed && http_token_equal(sessions.s[i]->id, id)) {
			d = sessions.s[i];
			d->refs++;
			d->last_ms = serve_mono_ms();
			break;
		}
	pthread_mutex_unlock(&sessions.lock);
	return d;
}

/* Closes d: out of the table, gdb ended once no command runs. The caller keeps
 * its reference (and drops it with dbg_put). */
static void dbg_close(struct dbg *d)
{
	pthread_mutex_lock(&sessions.lock);
	unlist(d);
	pthread_mutex_unlock(&sessions.lock);
	pthread_mutex_lock(&d->lock);
	gdbmi_close(d->gdb);
	d->gdb = NULL;
	pthread_mutex_unlock(&d->lock);
}

/* Locks d for one command, waiting while another runs (up to the command limit
 * and a little more). Returns false with a 409 answer when it does not come. */
static bool dbg_lock(struct dbg *d, struct http_resp *w)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += sessions.cmd_s + 10;
	if (pthread_mutex_timedlock(&d->lock, &until) != 0) {
		http_error(w, 409, "debug session %s is busy with another command", d->id);
		return false;
	}
	if (!d->gdb || !gdbmi_alive(d->gdb)) {
		pthread_mutex_unlock(&d->lock);
		http_error(w, 410, "debug session %s has ended (gdb is gone)", d->id);
		dbg_close(d); /* the caller keeps its reference */
		return false;
	}
	return true;
}

static int64_t num(const char *s)
{
	return s ? strtoll(s, NULL, 0) : 0;
}

/* Runs a query (no target running) on d's gdb: 0 with *a, 1 when gdb answered
 * ^error (*a holds it), negative when gdb is gone. */
static int query(struct dbg *d, const char *cmd, struct gdbmi_answer *a)
{
	int rc = gdbmi_run(d->gdb, cmd, DEBUG_QUERY_MS, a);

	if (rc)
		return rc;
	return strcmp(a->result.cls, "error") == 0 ? 1 : 0;
}

static void kv_opt_str(struct json *j, const char *k, const char *v)
{
	if (v)
		json_kv_str(j, k, v);
}

/* A frame tuple as {"level","func","file","fullname","line","addr"}. */
static void frame_json(struct json *j, const struct mi_val *f)
{
	json_obj(j);
	json_kv_int(j, "level", num(mi_get_str(f, "level")));
	kv_opt_str(j, "func", mi_get_str(f, "func"));
	kv_opt_str(j, "file", mi_get_str(f, "file"));
	kv_opt_str(j, "fullname", mi_get_str(f, "fullname"));
	if (mi_get_str(f, "line"))
		json_kv_int(j, "line", num(mi_get_str(f, "line")));
	kv_opt_str(j, "addr", mi_get_str(f, "addr"));
	json_end(j);
}

static void error_msg(struct json *j, const char *key, const struct gdbmi_answer *a)
{
	const char *m = mi_get_str(&a->result.results, "msg");

	json_kv_str(j, key, m ? m : "gdb refused");
}

/* Whether path names a source file glimpse shows: a regular file with a source
 * suffix (the path comes from the recorded program's DWARF). */
static const char *source_refusal(const char *path, struct stat *sb)
{
	static const char *const ok[] = {".go", ".s", ".c", ".h", ".S"};
	const char *dot = strrchr(path, '.');
	bool suffix = false;

	for (size_t i = 0; dot && i < sizeof(ok) / sizeof(ok[0]); i++)
		suffix |= strcmp(dot, ok[i]) == 0;
	if (!suffix)
		return "not a source file (.go, .s, .c, .h)";
	if (stat(path, sb) != 0)
		return "not readable on this host";
	if (!S_ISREG(sb->st_mode))
		return "not a regular file";
	if (sb->st_size > DEBUG_SOURCE_MAX)
		return "larger than 8 MiB";
	return NULL;
}

/* "source": the lines of path around line (context either side). */
static void source_json(struct json *j, const char *path, int64_t line, int64_t context)
{
	struct stat sb;
	const char *why = path ? source_refusal(path, &sb) : "no source file for this frame";
	FILE *f = NULL;
	char *text = NULL;
	size_t n = 0;

	json_key(j, "source");
	json_obj(j);
	kv_opt_str(j, "path", path);
	json_kv_int(j, "line", line);
	if (!why) {
		f = fopen(path, "r");
		text = f ? xmalloc((size_t)sb.st_size + 1) : NULL;
		n = f ? fread(text, 1, (size_t)sb.st_size, f) : 0;
		if (f)
			fclose(f);
		if (!f)
			why = "not readable on this host";
	}
	if (why) {
		json_kv_str(j, "unavailable", why);
		json_end(j);
		free(text);
		return;
	}
	{
		int64_t first = line - context < 1 ? 1 : line - context, last = line + context, no = 1;
		const char *p = text, *end = text + n;

		json_kv_int(j, "first", first);
		json_key(j, "lines");
		json_arr(j);
		while (p < end && no <= last) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

			if (no >= first)
				json_strn(j, p, len > 1000 ? 1000 : len);
			p += len + (nl ? 1 : 0);
			no++;
		}
		json_end(j);
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));

			no++;
			p = nl ? nl + 1 : end;
		}
		json_kv_int(j, "lines_total", no - 1);
	}
	json_end(j);
	free(text);
}

/* The session's state as JSON members of the object open in j. Returns 0, or a
 * negative code when gdb is gone (the answer is then incomplete). */
static int state_json(struct dbg *d, struct json *j, int64_t context)
{
	const struct mi_record *stop = gdbmi_last_stop(d->gdb);
	struct gdbmi_answer a;
	const struct mi_val *v;
	int rc;

	json_kv_str(j, "session", d->id);
	json_kv_int(j, "recording", d->recording);
	json_kv_int(j, "event", d->event);
	json_kv_str(j, "gdbserver", d->gdbserver);
	json_key(j, "stop");
	if (stop) {
		json_obj(j);
		kv_opt_str(j, "reason", mi_get_str(&stop->results, "reason"));
		kv_opt_str(j, "thread", mi_get_str(&stop->results, "thread-id"));
		kv_opt_str(j, "breakpoint", mi_get_str(&stop->results, "bkptno"));
		kv_opt_str(j, "signal", mi_get_str(&stop->results, "signal-name"));
		kv_opt_str(j, "exit_code", mi_get_str(&stop->results, "exit-code"));
		json_end(j);
	} else {
		json_null(j);
	}

	/* The selected frame, and the source around its line. */
	rc = query(d, "-stack-info-frame", &a);
	if (rc < 0)
		return rc;
	json_key(j, "frame");
	v = rc == 0 ? mi_get(&a.result.results, "frame") : NULL;
	if (v) {
		frame_json(j, v);
		source_json(j, mi_get_str(v, "fullname"), num(mi_get_str(v, "line")), context);
	} else {
		json_null(j);
		if (rc == 1)
			error_msg(j, "frame_error", &a);
	}
	gdbmi_answer_free(&a);

	/* The stack: DEBUG_STACK_MAX frames, one more to tell it goes on. */
	{
		struct buf c = {0};

		buf_printf(&c, "-stack-list-frames 0 %d", DEBUG_STACK_MAX);
		rc = query(d, c.p, &a);
		buf_free(&c);
	}
	if (rc < 0)
		return rc;
	json_key(j, "stack");
	json_arr(j);
	v = rc == 0 ? mi_get(&a.result.results, "stack") : NULL;
	for (size_t i = 0; v && i < v->n && i < DEBUG_STACK_MAX; i++)
		frame_json(j, &v->kids[i]);
	json_end(j);
	json_kv_bool(j, "stack_truncated", v && v->n > DEBUG_STACK_MAX);
	gdbmi_answer_free(&a);

	/* The selected frame's locals and arguments, values bounded. */
	rc = query(d, "-stack-list-variables --all-values", &a);
	if (rc < 0)
		return rc;
	json_key(j, "locals");
	json_arr(j);
	v = rc == 0 ? mi_get(&a.result.results, "variables") : NULL;
	for (size_t i = 0; v && i < v->n && i < DEBUG_LOCALS_MAX; i++) {
		const char *name = mi_get_str(&v->kids[i], "name"), *val = mi_get_str(&v->kids[i], "value");
		size_t len = val ? strlen(val) : 0;

		json_obj(j);
		json_kv_str(j, "name", name ? name : "?");
		if (val) {
			json_key(j, "value");
			json_strn(j, val, len > DEBUG_VALUE_MAX ? DEBUG_VALUE_MAX : len);
		}
		if (mi_get_str(&v->kids[i], "arg"))
			json_kv_bool(j, "arg", true);
		if (len > DEBUG_VALUE_MAX)
			json_kv_bool(j, "truncated", true);
		json_end(j);
	}
	json_end(j);
	json_kv_bool(j, "locals_truncated", v && v->n > DEBUG_LOCALS_MAX);
	if (rc == 1)
		error_msg(j, "locals_error", &a);
	gdbmi_answer_free(&a);

	/* Threads, with the current one. */
	rc = query(d, "-thread-info", &a);
	if (rc < 0)
		return rc;
	json_key(j, "threads");
	json_arr(j);
	v = rc == 0 ? mi_get(&a.result.results, "threads") : NULL;
	for (size_t i = 0; v && i < v->n && i < DEBUG_THREADS_MAX; i++) {
		const struct mi_val *t = &v->kids[i], *f = mi_get(t, "frame");

		json_obj(j);
		json_kv_int(j, "id", num(mi_get_str(t, "id")));
		kv_opt_str(j, "target_id", mi_get_str(t, "target-id"));
		if (f) {
			kv_opt_str(j, "func", mi_get_str(f, "func"));
			kv_opt_str(j, "file", mi_get_str(f, "file"));
			if (mi_get_str(f, "line"))
				json_kv_int(j, "line", num(mi_get_str(f, "line")));
		}
		json_end(j);
	}
	json_end(j);
	if (rc == 0 && mi_get_str(&a.result.results, "current-thread-id"))
		json_kv_int(j, "current_thread", num(mi_get_str(&a.result.results, "current-thread-id")));
	gdbmi_answer_free(&a);

	/* Breakpoints. */
	rc = query(d, "-break-list", &a);
	if (rc < 0)
		return rc;
	json_key(j, "breakpoints");
	json_arr(j);
	v = rc == 0 ? mi_get(mi_get(&a.result.results, "BreakpointTable"), "body") : NULL;
	for (size_t i = 0; v && i < v->n && i < DEBUG_BREAKS_MAX; i++) {
		const struct mi_val *b = &v->kids[i];

		json_obj(j);
		json_kv_int(j, "number", num(mi_get_str(b, "number")));
		kv_opt_str(j, "location", mi_get_str(b, "original-location"));
		kv_opt_str(j, "func", mi_get_str(b, "func"));
		kv_opt_str(j, "file", mi_get_str(b, "file"));
		kv_opt_str(j, "fullname", mi_get_str(b, "fullname"));
		if (mi_get_str(b, "line"))
			json_kv_int(j, "line", num(mi_get_str(b, "line")));
		json_kv_int(j, "hits", num(mi_get_str(b, "times")));
		json_kv_bool(j, "enabled", mi_get_str(b, "enabled") && strcmp(mi_get_str(b, "enabled"), "y") == 0);
		json_end(j);
	}
	json_end(j);
	gdbmi_answer_free(&a);

	/* How to attach a debugger of one's own instead, and the limits. */
	json_key(j, "commands");
	json_obj(j);
	{
		struct buf c = {0};

		buf_printf(&c, "gdb -iex 'set auto-load safe-path /' -iex 'set sysroot /'%s%s %s -ex 'target extended-remote %s'"
			       " -ex 'run %" PRId64 "'",
			   d->script ? " -x " : "", d->script ? d->script : "", d->exe ? d->exe : "", d->gdbserver, d->event);
		json_kv_str(j, "gdb", c.p);
		buf_reset(&c);
		buf_printf(&c, "glimpse replay %" PRId64 " --event %" PRId64 " --dlv", d->recording, d->event);
		json_kv_str(j, "dlv", c.p);
		buf_reset(&c);
		buf_printf(&c, "glimpse replay %" PRId64 " --event %" PRId64 " --vscode DIR", d->recording, d->event);
		json_kv_str(j, "vscode", c.p);
		buf_free(&c);
	}
	json_end(j);
	json_key(j, "limits");
	json_obj(j);
	json_kv_int(j, "stack", DEBUG_STACK_MAX);
	json_kv_int(j, "locals", DEBUG_LOCALS_MAX);
	json_kv_int(j, "value_bytes", DEBUG_VALUE_MAX);
	json_kv_int(j, "command_s", sessions.cmd_s);
	json_kv_int(j, "idle_s", sessions.idle_s);
	json_end(j);
	return 0;
}

/* Answers d's state (d locked), with what a command did when it ran one. On a
 * gdb gone the session is closed and the answer says so (502). */
static void answer_state(struct dbg *d, struct http_req *r, struct http_resp *w, const char *cmd,
			 const struct gdbmi_answer *a)
{
	int64_t context = 15;
	struct json j;
	int rc;

	if (!http_query_int(r, w, "context", 0, DEBUG_CONTEXT_MAX, &context))
		return;
	json_init(&j, &w->body);
	json_obj(&j);
	rc = state_json(d, &j, context);
	if (rc) {
		buf_reset(&w->body);
		http_error(w, 502, "gdb stopped answering (%s); the debug session is closed", err_msg(rc));
		/* closed by the next request or the reaper, once the caller lets go of its lock */
		return;
	}
	if (cmd) {
		json_key(&j, "result");
		json_obj(&j);
		json_kv_str(&j, "cmd", cmd);
		json_kv_bool(&j, "ran", a->stopped);
		json_kv_bool(&j, "interrupted", a->interrupted);
		json_key(&j, "console");
		json_strn(&j, buf_str(&a->console), a->console.len > DEBUG_CONSOLE_MAX ? DEBUG_CONSOLE_MAX : a->console.len);
		json_end(&j);
	}
	json_end(&j);
	buf_putc(&w->body, '\n');
}

/* Seeks d's replay to event (rr's `run EVENT` on its gdbserver). Returns 0, or an
 * HTTP status with the answer set: 502 when the replay server refused or ended
 * (rr.soft leaves its course going back on a CPU whose APIC ID moved). */
static int seek(struct dbg *d, int64_t event, struct http_resp *w)
{
	struct gdbmi_answer a;
	struct buf c = {0};
	int rc;

	buf_printf(&c, "-interpreter-exec console \"run %" PRId64 "\"", event);
	rc = gdbmi_run(d->gdb, c.p, sessions.cmd_s * 1000 + 120000, &a);
	buf_free(&c);
	if (rc) {
		http_error(w, 504, "the replay did not reach event %" PRId64 ": %s", event, err_msg(rc));
		return 504;
	}
	if (strcmp(a.result.cls, "error") == 0) {
		const char *m = mi_get_str(&a.result.results, "msg");

		http_error(w, 502, "the replay server refused event %" PRId64 ": %s", event, m ? m : "?");
		gdbmi_answer_free(&a);
		return 502;
	}
	gdbmi_answer_free(&a);
	d->event = event;
	return 0;
}

/* Starts gdb for d and connects it to the replay server; seeks when the server
 * was already running (warm). Returns 0, or an HTTP status with the answer set. */
static int connect_gdb(struct dbg *d, bool warm, struct http_resp *w)
{
	const char *gdb = getenv("GLIMPSE_GDB");
	struct gdbmi_answer a;
	struct buf c = {0};
	int rc;

	rc = gdbmi_start(gdb ? gdb : "gdb", d->exe, d->script, DEBUG_START_MS, &d->gdb);
	if (rc) {
		http_error(w, 500, "cannot start gdb: %s", err_msg(rc));
		return 500;
	}
	buf_printf(&c, "-target-select extended-remote %s", d->gdbserver);
	rc = gdbmi_run(d->gdb, c.p, DEBUG_START_MS, &a);
	buf_free(&c);
	if (rc || strcmp(a.result.cls, "connected") != 0) {
		const char *m = rc ? err_msg(rc) : mi_get_str(&a.result.results, "msg");

		http_error(w, 502, "gdb cannot connect to the replay server at %s (another debugger attached?): %s",
			   d->gdbserver, m ? m : "?");
		if (!rc)
			gdbmi_answer_free(&a);
		return 502;
	}
	gdbmi_answer_free(&a);
	return warm ? seek(d, d->event, w) : 0;
}

/* Opens recording id's replay server at event for d (its event, gdbserver, exe and
 * script) and connects gdb to it. A warm server that cannot reach the event (it
 * left its course: rr.soft going back after the host moved the CPU so that CPUID's
 * APIC ID is no longer the recording's) is ended and forgotten, and a new one,
 * which replay_open binds to a CPU with the recording's APIC ID, takes its place.
 * Returns 0, or an HTTP status with the answer set. */
static int attach(struct serve *sv, struct dbg *d, int64_t id, int64_t event, struct http_resp *w)
{
	const char *rr = getenv("GLIMPSE_RR");
	struct replay_server srv;
	int rc;

	for (int attempt = 0;; attempt++) {
		pthread_mutex_lock(&sv->write_lock);
		rc = replay_open(sv->st, rr ? rr : "rr", id, event, &srv);
		pthread_mutex_unlock(&sv->write_lock);
		if (rc) {
			http_error(w, api_replay_status(rc), "%s", err_msg(rc));
			return api_replay_status(rc);
		}
		free(d->gdbserver);
		free(d->exe);
		free(d->script);
		d->event = srv.event;
		d->gdbserver = xstrdup(srv.addr);
		d->exe = srv.exe ? xstrdup(srv.exe) : NULL;
		d->script = srv.gdb_script ? xstrdup(srv.gdb_script) : NULL;
		rc = connect_gdb(d, srv.warm, w);
		if (rc == 502 && srv.warm && attempt == 0 && d->gdb && gdbmi_alive(d->gdb)) {
			/* gdb is attached, so it is the server that could not go there. */
			fprintf(stderr, "glimpse serve: recording %" PRId64 ": %s; starting a new replay server\n", id,
				buf_str(&w->body));
			gdbmi_close(d->gdb);
			d->gdb = NULL;
			pthread_mutex_lock(&sv->write_lock);
			replay_forget(sv->st, id, srv.pid);
			pthread_mutex_unlock(&sv->write_lock);
			replay_server_free(&srv);
			w->status = 200;
			buf_reset(&w->body);
			continue;
		}
		replay_server_free(&srv);
		return rc;
	}
}

/* {"at": "snapshot:ID" | "event:ID"} or {"event": N} (nothing: where the replay
 * starts) -> a debug session there (the recording's own, reused, when open) and
 * its state. */
static void open_session(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	struct dbg *d = NULL;
	int64_t id, event;

	if (!http_param_id(r, w, 0, "recording", &id) || !api_replay_moment(r, w, id, &event))
		return;
	/* The recording's session when one is open: seek it there. */
	pthread_mutex_lock(&sessions.lock);
	for (int i = 0; i < sessions.n; i++)
		if (sessions.s[i]->recording == id && !sessions.s[i]->closed) {
			d = sessions.s[i];
			d->refs++;
			break;
		}
	if (!d && sessions.n >= sessions.max) {
		int n = sessions.n, max = sessions.max;

		pthread_mutex_unlock(&sessions.lock);
		http_error(w, 429,
			   "%d debug sessions are open, the limit (serve --debug-sessions %d): close one (DELETE "
			   "/api/debug/SID) or wait until one is idle for %d s",
			   n, max, sessions.idle_s);
		return;
	}
	if (d) {
		pthread_mutex_unlock(&sessions.lock);
		if (!dbg_lock(d, w)) {
			dbg_put(d);
			return;
		}
		if (seek(d, event ? event : d->event, w) == 0)
			answer_state(d, r, w, NULL, NULL);
		pthread_mutex_unlock(&d->lock);
		dbg_put(d);
		return;
	}
	/* A new one: its slot taken now, gdb started outside the table's lock. */
	d = xcalloc(1, sizeof(*d));
	{
		unsigned char rnd[16];

		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
			pthread_mutex_unlock(&sessions.lock);
			free(d);
			http_error(w, 500, "getrandom: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < 16; i++)
			snprintf(d->id + 2 * i, 3, "%02x", rnd[i]);
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_lock(&d->lock);
	d->recording = id;
	d->refs = 2; /* the table's and ours */
	d->last_ms = serve_mono_ms();
	sessions.s[sessions.n++] = d;
	pthread_mutex_unlock(&sessions.lock);

	if (attach(sv, d, id, event, w)) {
		pthread_mutex_unlock(&d->lock);
		dbg_close(d); /* the table's reference */
		dbg_put(d);
		return;
	}
	w->status = 201;
	answer_state(d, r, w, NULL, NULL);
	pthread_mutex_unlock(&d->lock);
	dbg_put(d);
}

static struct dbg *session_param(struct http_req *r, struct http_resp *w)
{
	struct dbg *d = find(r->params[0]);

	if (!d)
		http_error(w, 404, "no debug session %.40s (closed, idle too long, or the server restarted)",
			   r->params[0]);
	return d;
}

static void get_session(struct http_req *r, struct http_resp *w)
{
	struct dbg *d = session_param(r, w);

	if (!d)
		return;
	if (dbg_lock(d, w)) {
		answer_state(d, r, w, NULL, NULL);
		pthread_mutex_unlock(&d->lock);
	}
	dbg_put(d);
}

/* {"cmd": "reverse-next"} -> the command run (whitelist: gdbmi_command), then the state. */
static void run_command(struct http_req *r, struct http_resp *w)
{
	struct dbg *d;
	struct jv *body = NULL;
	const struct jv *v;
	struct gdbmi_answer a;
	struct buf mi = {0};
	bool resumes;
	char err[256];
	const char *cmd;
	int rc;

	if (jv_parse(r->body, r->body_len, &body, err, sizeof(err)) != 0 || jv_type(body) != JV_OBJ) {
		http_error(w, 400, "body: expected {\"cmd\": \"...\"}: %s", err);
		jv_free(body);
		return;
	}
	v = jv_get(body, "cmd");
	cmd = v ? jv_str(v) : NULL;
	if (!cmd) {
		http_error(w, 400, "body: expected {\"cmd\": \"...\"}");
		jv_free(body);
		return;
	}
	rc = gdbmi_command(cmd, &mi, &resumes);
	if (rc) {
		http_error(w, 400, "%s", err_msg(rc));
		goto out;
	}
	d = session_param(r, w);
	if (!d)
		goto out;
	if (!dbg_lock(d, w)) {
		dbg_put(d);
		goto out;
	}
	rc = gdbmi_run(d->gdb, mi.p, resumes ? sessions.cmd_s * 1000 : DEBUG_QUERY_MS, &a);
	if (rc) {
		http_error(w, 504, "%s: %s; the debug session is closed", cmd, err_msg(rc));
		pthread_mutex_unlock(&d->lock);
		dbg_close(d);
		dbg_put(d);
		goto out;
	}
	if (strcmp(a.result.cls, "error") == 0) {
		const char *m = mi_get_str(&a.result.results, "msg");

		http_error(w, 422, "gdb: %s", m ? m : "refused");
	} else {
		answer_state(d, r, w, cmd, &a);
	}
	gdbmi_answer_free(&a);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_lock(&sessions.lock);
	d->last_ms = serve_mono_ms();
	pthread_mutex_unlock(&sessions.lock);
	dbg_put(d);
out:
	buf_free(&mi);
	jv_free(body);
}

static void delete_session(struct http_req *r, struct http_resp *w)
{
	struct dbg *d = session_param(r, w);

	if (!d)
		return;
	buf_printf(&w->body, "{\"session\":\"%s\",\"closed\":true}\n", d->id);
	dbg_close(d);
	dbg_put(d);
}

static void list_sessions(struct http_req *r, struct http_resp *w)
{
	int64_t now = serve_mono_ms();
	struct json j;

	json_init(&j, &w->body);
	json_obj(&j);
	pthread_mutex_lock(&sessions.lock);
	json_key(&j, "sessions");
	json_arr(&j);
	for (int i = 0; i < sessions.n; i++) {
		const struct dbg *d = sessions.s[i];

		json_obj(&j);
		json_kv_str(&j, "session", d->id);
		json_kv_int(&j, "recording", d->recording);
		json_kv_int(&j, "event", d->event);
		json_kv_int(&j, "idle_s", (now - d->last_ms) / 1000);
		json_end(&j);
	}
	json_end(&j);
	json_kv_int(&j, "max", sessions.max);
	json_kv_int(&j, "idle_s", sessions.idle_s);
	json_kv_int(&j, "command_s", sessions.cmd_s);
	pthread_mutex_unlock(&sessions.lock);
	json_end(&j);
	buf_putc(&w->body, '\n');
}

void api_debug_reap(void)
{
	int64_t now = serve_mono_ms();
	struct dbg *idle = NULL;

	pthread_mutex_lock(&sessions.lock);
	if (now < sessions.next_reap_ms) {
		pthread_mutex_unlock(&sessions.lock);
		return;
	}
	sessions.next_reap_ms = now + 1000;
	bool gone = false;

	for (int i = 0; i < sessions.n && !idle; i++) {
		struct dbg *d = sessions.s[i];

		/* Idle too long, or its gdb gone (timed out, died): closed unless a command runs. */
		if (pthread_mutex_trylock(&d->lock) != 0)
			continue;
		gone = !gdbmi_alive(d->gdb);
		if (gone || now - d->last_ms > (int64_t)sessions.idle_s * 1000) {
			idle = d;
			idle->refs++;
		}
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_unlock(&sessions.lock);
	if (idle) {
		if (gone)
			fprintf(stderr, "glimpse serve: debug session %s of recording %" PRId64 ": gdb is gone: closed\n",
				idle->id, idle->recording);
		else
			fprintf(stderr, "glimpse serve: debug session %s of recording %" PRId64 " idle for %d s: closed\n",
				idle->id, idle->recording, sessions.idle_s);
		dbg_close(idle);
		dbg_put(idle);
	}
}

void api_debug_close_all(void)
{
	for (;;) {
		struct dbg *d = NULL;

		pthread_mutex_lock(&sessions.lock);
		if (sessions.n) {
			d = sessions.s[0];
			d->refs++;
		}
		pthread_mutex_unlock(&sessions.lock);
		if (!d)
			return;
		dbg_close(d);
		dbg_put(d);
	}
}

const struct http_route api_debug_routes[] = {
	{"POST", "/api/recordings/*/debug", open_session, false},
	{"GET", "/api/debug", list_sessions, false},
	{"GET", "/api/debug/*", get_session, false},
	{"DELETE", "/api/debug/*", delete_session, false},
	{"POST", "/api/debug/*/cmd", run_command, false},
};
const size_t api_debug_nroutes = sizeof(api_debug_routes) / sizeof(api_debug_routes[0]);
