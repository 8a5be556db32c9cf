/* replay.c - `glimpse replay`: open a recording at a moment in a debugger. The
 * moment is a snapshot's or trace event's rr event (or one given); the replay is
 * the warm replay server glimpse record left running when it still runs, else a
 * new `rr replay -W -s PORT -k -g EVENT` on the recording's own packed trace
 * (unpacked from its archive when the trace directory is gone). Then: print how to
 * attach, run gdb attached (Go's gdb helpers loaded), relay Delve (fixing the one
 * packet rr 5.9 wants in another form), or write a VS Code launch.json.
 */
#include "replay.h"

#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "archive.h"
#include "buf.h"
#include "cli.h"
#include "err.h"
#include "json.h"
#include "record_int.h"
#include "store.h"

extern char **environ;

struct rec {
	int64_t id, first_event, events, replay_pid, replayable;
	char *status, *path, *archive, *replay_addr, *why_not, *command;
};

static char *col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? xstrdup((const char *)t) : NULL;
}

static void rec_free(struct rec *r)
{
	free(r->status);
	free(r->path);
	free(r->archive);
	free(r->replay_addr);
	free(r->why_not);
	free(r->command);
}

/* Reads recording id. Returns 0, or -ENOENT with a message. */
static int rec_load(struct store *st, int64_t id, struct rec *r)
{
	sqlite3_stmt *s;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = sqlite3_prepare_v2(store_db(st),
				"SELECT status, path, archive, replay_addr, why_not, command, coalesce(first_event, 1),"
				" coalesce(events, 0), coalesce(replay_pid, 0), coalesce(replayable, -1)"
				" FROM recordings WHERE id = ?",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_error(store_db(st), rc, "recordings");
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return err_set(ENOENT, "no recording %" PRId64, id);
	}
	r->id = id;
	r->status = col_text(s, 0);
	r->path = col_text(s, 1);
	r->archive = col_text(s, 2);
	r->replay_addr = col_text(s, 3);
	r->why_not = col_text(s, 4);
	r->command = col_text(s, 5);
	r->first_event = sqlite3_column_int64(s, 6);
	r->events = sqlite3_column_int64(s, 7);
	r->replay_pid = sqlite3_column_int64(s, 8);
	r->replayable = sqlite3_column_int64(s, 9);
	sqlite3_finalize(s);
	return 0;
}

int replay_moment(struct store *st, int64_t recording, const char *at, int64_t *event)
{
	const char *sql;
	int64_t id, rec = 0, ev = 0;
	sqlite3_stmt *s;
	uint64_t v;
	int rc;

	if (strncmp(at, "snapshot:", 9) == 0) {
		sql = "SELECT coalesce(recording, 0), coalesce(rr_event, 0) FROM snapshots WHERE id = ?";
	} else if (strncmp(at, "event:", 6) == 0) {
		sql = "SELECT coalesce(recording, 0), coalesce(rr_event, 0) FROM events WHERE id = ?";
	} else {
		return err_set(EINVAL, "--at %s: expected snapshot:ID or event:ID", at);
	}
	if (!cli_parse_u64(strchr(at, ':') + 1, 1, INT64_MAX, &v))
		return err_set(EINVAL, "--at %s: not an id", at);
	id = (int64_t)v;
	rc = sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_error(store_db(st), rc, "moment");
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		rec = sqlite3_column_int64(s, 0);
		ev = sqlite3_column_int64(s, 1);
		rc = 0;
	} else {
		rc = err_set(ENOENT, "no %s", at);
	}
	sqlite3_finalize(s);
	if (rc)
		return rc;
	if (rec != recording)
		return err_set(EINVAL, "%s was not taken during recording %" PRId64 "%s", at, recording,
			       rec ? " (it belongs to another recording)" : "");
	if (!ev)
		return err_set(EAGAIN, "%s has no rr event yet: events are linked when the recording ends", at);
	*event = ev;
	return 0;
}

/* Whether a replay server answers at addr ("127.0.0.1:PORT") and pid runs. */
static bool server_alive(const char *addr, int64_t pid)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	int fd;

	if (!colon || pid <= 0 || kill((pid_t)pid, 0) != 0)
		return false;
	fd = record_connect_port((uint16_t)atoi(colon + 1));
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* The recording's trace directory: its packed trace, or the archive unpacked next
 * to it (binaries from the store beside the archive). Caller frees. */
static int trace_dir(const struct rec *r, char **out)
{
	struct stat sb;
	struct buf dir = {0}, blobs = {0};
	char *a;
	int rc;

	if (r->path && stat(r->path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		*out = xstrdup(r->path);
		return 0;
	}
	if (!r->archive)
		return err_set(ENOENT, "recording %" PRId64 " has neither a trace directory nor an archive", r->id);
	a = xstrdup(r->archive);
	buf_printf(&blobs, "%s/binaries", dirname(a));
	buf_printf(&dir, "%s/replay-trace-%" PRId64, a, r->id);
	free(a);
	if (stat(dir.p, &sb) != 0) {
		rc = archive_unpack(r->archive, blobs.p, dir.p);
		if (rc) {
			buf_free(&dir);
			buf_free(&blobs);
			return rc;
		}
	}
	buf_free(&blobs);
	*out = buf_detach(&dir);
	return 0;
}

/* Starts `rr replay -W -s PORT -k -g event dir` in a session of its own and waits
 * until it listens. Returns 0 with *addr and *pid, or a negative code with rr's
 * last words (a replay that left its recorded course says so here). */
static int start_server(const char *rr, const char *dir, int64_t event, int cpu, char **addr, pid_t *pid,
			unsigned *recorded_apic)
{
	char port[16], ev[32];
	char *argv[] = {(char *)rr, "replay", "-W", "-s", port, "-k", "-g", ev, (char *)dir, NULL, NULL};
	struct buf log = {0}, a = {0};
	uint16_t p = record_free_port();
	int64_t deadline = record_now(CLOCK_MONOTONIC) + 600 * NS_PER_S;
	int rc = 0;

	snprintf(port, sizeof(port), "%u", p);
	snprintf(ev, sizeof(ev), "%" PRId64, event);
	if (cpu >= 0) { /* bound by us to a CPU with the recording's APIC ID: rr must not rebind */
		memmove(argv + 3, argv + 2, 7 * sizeof(*argv));
		argv[2] = "-u";
	}
	buf_printf(&log, "%s.replay-%u.log", dir, p);
	*pid = record_spawn_on_cpu(argv, environ, log.p, cpu);
	if (*pid < 0) {
		buf_free(&log);
		return err_set(errno, "cannot run %s", rr);
	}
	for (;;) {
		int st;
		char *tail = record_log_tail(log.p, 2000);

		if (strstr(tail, "target extended-remote")) {
			free(tail);
			break;
		}
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			char *why = record_rr_failure(log.p);
			unsigned rep;

			if (record_apic_drift(why, &rep, recorded_apic))
				rc = err_set(EIO,
					     "rr replay could not reach event %s: this machine cannot replay it now: the"
					     " CPU's APIC ID in CPUID leaf 1 is 0x%02x, the recording's was 0x%02x (the"
					     " host moved this VM's CPU, and this CPU cannot make CPUID fault for rr): %s",
					     ev, rep, *recorded_apic, why);
			else {
				*recorded_apic = 256;
				rc = err_set(EIO, "rr replay could not reach event %s (this machine cannot replay it: %s)",
					     ev, why);
			}
			free(why);
			free(tail);
			break;
		}
		free(tail);
		if (record_now(CLOCK_MONOTONIC) > deadline) {
			kill(-*pid, SIGKILL);
			waitpid(*pid, NULL, 0);
			rc = err_set(ETIMEDOUT, "rr replay did not reach event %s within 600 s", ev);
			break;
		}
		usleep(50000);
	}
	buf_free(&log);
	if (rc)
		return rc;
	buf_printf(&a, "127.0.0.1:%u", p);
	*addr = buf_detach(&a);
	return 0;
}

/* The recorded program's own binary in the packed trace: the largest ELF file whose
 * name ends with the command's base name (rr pack names them mmap_pack_N_NAME).
 * Caller frees; NULL when none. */
static char *trace_exe(const char *dir, const char *command_json)
{
	const char *q = command_json ? strchr(command_json, '"') : NULL;
	char base[256] = "", *best = NULL;
	off_t best_size = 0;
	DIR *d;
	struct dirent *e;

	if (q) {
		const char *end = strchr(q + 1, '"'), *slash;

		if (end) {
			snprintf(base, sizeof(base), "%.*s", (int)(end - q - 1), q + 1);
			slash = strrchr(base, '/');
			if (slash)
				memmove(base, slash + 1, strlen(slash));
		}
	}
	d = dir ? opendir(dir) : NULL;
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		size_t nl = strlen(e->d_name), bl = strlen(base);
		struct buf full = {0};
		struct stat sb;

		if (!bl || nl < bl || strcmp(e->d_name + nl - bl, base) != 0)
			continue;
		buf_printf(&full, "%s/%s", dir, e->d_name);
		if (stat(full.p, &sb) == 0 && sb.st_size > best_size) {
			free(best);
			best = buf_detach(&full);
			best_size = sb.st_size;
		}
		buf_free(&full);
	}
	closedir(d);
	return best;
}

/* A gdb command, glimpse-goroutine GOID, that shows a parked goroutine's stack as
 * frames 1 and up through a Python unwinder, since rr's replay refuses the register
 * writes the Go runtime's own `goroutine N cmd` makes. Written next to the trace. */
static const char goroutine_py[] =
	"import gdb\n"
	"from gdb.unwinder import Unwinder, register_unwinder\n"
	"\n"
	"\n"
	"class _FrameId:\n"
	"    def __init__(self, sp, pc):\n"
	"        self.sp = sp\n"
	"        self.pc = pc\n"
	"\n"
	"\n"
	"class _GoroutineUnwinder(Unwinder):\n"
	"    def __init__(self):\n"
	"        super().__init__(\"glimpse-goroutine\")\n"
	"        self.target = None\n"
	"\n"
	"    def __call__(self, pf):\n"
	"        if self.target is None or pf.level() != 0:\n"
	"            return None\n"
	"        sp0, pc0 = pf.read_register(\"rsp\"), pf.read_register(\"rip\")\n"
	"        sp, pc, bp = self.target\n"
	"        # Frame 0's id sits just below the goroutine's stack, so that gdb sees the\n"
	"        # goroutine's frames as outer to it (whatever stack the thread is on).\n"
	"        ui = pf.create_unwind_info(_FrameId(gdb.Value(sp - 8).cast(sp0.type), pc0))\n"
	"        ui.add_saved_register(\"rip\", gdb.Value(pc).cast(pc0.type))\n"
	"        ui.add_saved_register(\"rsp\", gdb.Value(sp).cast(sp0.type))\n"
	"        ui.add_saved_register(\"rbp\", gdb.Value(bp).cast(pf.read_register(\"rbp\").type))\n"
	"        return ui\n"
	"\n"
	"\n"
	"_unwinder = _GoroutineUnwinder()\n"
	"register_unwinder(None, _unwinder, replace=True)\n"
	"\n"
	"\n"
	"class _GoroutineView(gdb.Command):\n"
	"    \"\"\"glimpse-goroutine GOID: show goroutine GOID's stack as frames 1 and up (frame 0 stays the\n"
	"    thread's), without writing registers (rr's replay refuses that); `bt`, `frame N`,\n"
	"    `info locals` then read it. glimpse-goroutine off: back to the threads' own stacks.\"\"\"\n"
	"\n"
	"    def __init__(self):\n"
	"        super().__init__(\"glimpse-goroutine\", gdb.COMMAND_STACK)\n"
	"\n"
	"    def invoke(self, arg, from_tty):\n"
	"        arg = arg.strip()\n"
	"        if arg == \"off\":\n"
	"            _unwinder.target = None\n"
	"            gdb.invalidate_cached_frames()\n"
	"            return\n"
	"        goid = int(arg)\n"
	"        allgs = gdb.parse_and_eval(\"'runtime.allgs'\")\n"
	"        arr, n = allgs[\"array\"], int(allgs[\"len\"])\n"
	"        for i in range(n):\n"
	"            g = arr[i]\n"
	"            if int(g[\"goid\"]) == goid:\n"
	"                s = g[\"sched\"]\n"
	"                _unwinder.target = (int(s[\"sp\"]), int(s[\"pc\"]), int(s[\"bp\"]))\n"
	"                gdb.invalidate_cached_frames()\n"
	"                print(f\"goroutine {goid}: sp=0x{int(s['sp']):x} pc=0x{int(s['pc']):x}, its frames from frame 1\")\n"
	"                return\n"
	"        raise gdb.GdbError(f\"no goroutine {goid}\")\n"
	"\n"
	"\n"
	"_GoroutineView()\n";

/* Writes the glimpse-goroutine script beside dir; returns its path (caller frees)
 * or NULL. */
static char *gdb_script(const char *dir)
{
	struct buf path = {0};
	FILE *f;

	buf_printf(&path, "%s.glimpse-goroutine.py", dir);
	f = fopen(path.p, "w");
	if (!f || fputs(goroutine_py, f) < 0 || fclose(f) != 0) {
		buf_free(&path);
		return NULL;
	}
	return buf_detach(&path);
}

int replay_rr_packets(struct buf *in, struct buf *out)
{
	int rewritten = 0;

	for (;;) {
		char *start = in->len ? memchr(in->p, '$', in->len) : NULL, *hash;
		size_t plen, used;

		if (!start) {
			buf_add(out, in->p, in->len); /* acks, interrupts */
			buf_reset(in);
			return rewritten;
		}
		hash = memchr(start, '#', in->len - (size_t)(start - in->p));
		if (!hash || (size_t)(hash - in->p) + 3 > in->len)
			break; /* an incomplete packet waits for more */
		buf_add(out, in->p, (size_t)(start - in->p));
		plen = (size_t)(hash - start - 1);
		if (plen > 7 && strncmp(start + 1, "qRRCmd:", 7) == 0 && !memchr(start + 8, ':', plen - 7)) {
			struct buf cmd = {0};
			unsigned int sum = 0;

			buf_puts(&cmd, "qRRCmd:");
			for (size_t i = 8; i + 1 <= plen; i += 2) {
				char hx[3] = {start[i], start[i + 1], 0};

				buf_putc(&cmd, (char)strtol(hx, NULL, 16));
			}
			buf_puts(&cmd, ":-1");
			for (size_t i = 0; i < cmd.len; i++)
				sum += (unsigned char)cmd.p[i];
			buf_printf(out, "$%s#%02x", cmd.p, sum & 0xff);
			buf_free(&cmd);
			rewritten++;
		} else {
			buf_add(out, start, plen + 4);
		}
		used = (size_t)(hash + 3 - in->p);
		memmove(in->p, in->p + used, in->len - used);
		in->len -= used;
		in->p[in->len] = 0;
	}
	return rewritten;
}

/* Relays one Delve connection to rr's gdbserver, Delve's packets through
 * replay_rr_packets. Returns when either side closes. */
static void dlv_relay(int dlv, int rr)
{
	struct buf in = {0}, out = {0};
	char chunk[65536];

	for (;;) {
		struct pollfd p[2] = {{.fd = dlv, .events = POLLIN}, {.fd = rr, .events = POLLIN}};
		ssize_t n;

		if (poll(p, 2, -1) < 0)
			break;
		if (p[1].revents) {
			n = recv(rr, chunk, sizeof(chunk), 0);
			if (n <= 0 || send(dlv, chunk, (size_t)n, MSG_NOSIGNAL) != n)
				break;
		}
		if (!p[0].revents)
			continue;
		n = recv(dlv, chunk, sizeof(chunk), 0);
		if (n <= 0)
			break;
		buf_add(&in, chunk, (size_t)n);
		buf_reset(&out);
		replay_rr_packets(&in, &out);
		if (out.len && send(rr, out.p, out.len, MSG_NOSIGNAL) != (ssize_t)out.len)
			break;
	}
	buf_free(&in);
	buf_free(&out);
}

/* kernel.perf_event_paranoid, or -1 when it cannot be read. */
static int perf_event_paranoid(void)
{
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
	int level = -1;

	if (f) {
		if (fscanf(f, "%d", &level) != 1)
			level = -1;
		fclose(f);
	}
	return level;
}

/* Whether Delve can run here: dlv on PATH and kernel.perf_event_paranoid <= 1
 * (Delve refuses rr otherwise). Returns 0, or a negative code saying what to do;
 * glimpse never changes the setting. */
static int dlv_check(void)
{
	int level = perf_event_paranoid();
	const char *path = getenv("PATH");
	bool found = false;

	if (level > 1)
		return err_set(EPERM,
			       "Delve refuses to replay while kernel.perf_event_paranoid is %d (it wants <= 1); "
			       "glimpse does not change it: `sysctl kernel.perf_event_paranoid=1` as root, or "
			       "use --gdb",
			       level);
	for (const char *p = path ? path : "/usr/bin:/bin"; *p && !found;) {
		const char *end = strchrnul(p, ':');
		struct buf b = {0};

		buf_printf(&b, "%.*s/dlv", (int)(end - p), p);
		found = access(b.p, X_OK) == 0;
		buf_free(&b);
		p = *end ? end + 1 : end;
	}
	if (!found)
		return err_set(ENOENT, "no dlv on PATH (Delve >= 1.24, e.g. Debian trixie's delve package)");
	return 0;
}

/* Writes the stand-in `rr` Delve runs as `rr replay --dbgport=0 ...` into dir: it
 * says, as rr does, where the gdbserver is (relay, for exe) and then waits until
 * Delve ends it, its pid in dir/pid. Returns 0 or a negative code. */
static int write_rr_standin(const char *dir, const char *relay, const char *exe)
{
	struct buf path = {0}, text = {0};
	FILE *f;
	int rc = 0;

	if (strchr(exe, '\'') || strchr(dir, '\''))
		return err_set(EINVAL, "cannot hand %s to Delve: a quote in its path", exe);
	buf_printf(&path, "%s/rr", dir);
	buf_printf(&text,
		   "#!/bin/sh\n"
		   "# glimpse replay --dlv: stands in for `rr replay` so that Delve attaches to the\n"
		   "# running replay server through glimpse's relay.\n"
		   "echo $$ > '%s/pid'\n"
		   "printf '%%s\\n' 'Launch gdb with' \"  gdb '-l' '10000' '-ex' 'target extended-remote %s' '%s'\" >&2\n"
		   "exec sleep 2147483647\n",
		   dir, relay, exe);
	f = fopen(path.p, "w");
	if (!f || fputs(text.p, f) < 0 || fclose(f) != 0 || chmod(path.p, 0755) != 0)
		rc = err_set(errno, "cannot write %s: %s", path.p, strerror(errno));
	buf_free(&path);
	buf_free(&text);
	return rc;
}

/* Ends the stand-in rr in dir if Delve left it running, and removes dir. */
static void remove_rr_standin(const char *dir)
{
	struct buf path = {0};
	FILE *f;
	int pid = 0;

	buf_printf(&path, "%s/pid", dir);
	f = fopen(path.p, "r");
	if (f) {
		if (fscanf(f, "%d", &pid) == 1 && pid > 0)
			kill(pid, SIGKILL);
		fclose(f);
	}
	unlink(path.p);
	buf_reset(&path);
	buf_printf(&path, "%s/rr", dir);
	unlink(path.p);
	rmdir(dir);
	buf_free(&path);
}

/* --dlv: `dlv replay` attached to the replay server srv through a relay that
 * rewrites Delve's qRRCmd packet, by way of a stand-in rr on its PATH (Delve only
 * attaches to rr through `rr replay`'s own announcement). On a warm server Delve
 * first seeks to the event (`restart EVENT`). Delve reads its commands from
 * stdin. Returns dlv's exit code. */
static int run_dlv(const struct replay_server *srv, int64_t id)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int lfd, st = 0, rc;
	char relay[32], dir[] = "/tmp/glimpse-dlv-XXXXXX";
	const char *colon = srv->addr ? strrchr(srv->addr, ':') : NULL;
	struct buf init = {0}, trace = {0}, env_path = {0};
	pid_t pid;

	if (!colon)
		return cli_fail(err_set(EINVAL, "no replay server address"));
	if (!srv->exe)
		return cli_fail(err_set(ENOENT, "recording %" PRId64 ": no binary in its trace for Delve", id));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) != 0) {
		rc = err_set(errno, "cannot listen for Delve: %s", strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return cli_fail(rc);
	}
	snprintf(relay, sizeof(relay), "127.0.0.1:%u", ntohs(a.sin_port));
	if (!mkdtemp(dir)) {
		close(lfd);
		return cli_fail(err_set(errno, "cannot make a directory for Delve: %s", strerror(errno)));
	}
	rc = write_rr_standin(dir, relay, srv->exe);
	if (rc) {
		remove_rr_standin(dir);
		close(lfd);
		return cli_fail(rc);
	}
	buf_printf(&init, "%s/init", dir);
	if (srv->warm) {
		FILE *f = fopen(init.p, "w");

		if (f) {
			fprintf(f, "restart %" PRId64 "\n", srv->event);
			fclose(f);
		}
	}
	buf_printf(&trace, "glimpse-recording-%" PRId64, id);
	buf_printf(&env_path, "%s:%s", dir, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char *argv[8] = {"dlv", "replay", "--check-go-version=false", "--allow-non-terminal-interactive=true"};
		int k = 4;

		if (srv->warm) {
			argv[k++] = "--init";
			argv[k++] = init.p;
		}
		argv[k++] = trace.p;
		argv[k] = NULL;
		close(lfd);
		setenv("PATH", env_path.p, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "glimpse replay: cannot run dlv: %s\n", strerror(errno));
		_exit(127);
	}
	fprintf(stderr, "glimpse replay: Delve through %s, relayed to rr at %s (event %" PRId64 "%s, %s)\n", relay,
		srv->addr, srv->event, srv->warm ? ", reached with restart" : "", srv->exe);
	for (;;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		int c, r;

		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		if (poll(&p, 1, 200) <= 0)
			continue;
		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		r = record_connect_port((uint16_t)atoi(colon + 1));
		if (r >= 0) {
			dlv_relay(c, r);
			close(r);
		}
		close(c);
	}
	close(lfd);
	unlink(init.p);
	remove_rr_standin(dir);
	buf_free(&init);
	buf_free(&trace);
	buf_free(&env_path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static const char usage_text[] =
	"usage: glimpse replay RECORDING_ID [--at snapshot:ID | --at event:ID | --event N]\n"
	"                      [--gdb [-- GDB_ARGS] | --dlv | --vscode DIR] [--db FILE] [--rr PATH]\n"
	"\n"
	"Opens a recording made by glimpse record at a moment: a snapshot's or a trace event's\n"
	"(the rr event at or before it), or rr event N; without one, where the recording's replay\n"
	"server starts. The replay is the warm server glimpse record started when the recording\n"
	"ended (if it still runs), else a new `rr replay -W -s PORT -k -g EVENT` on the recording's\n"
	"own packed binaries, unpacked from its archive if needed. The server stays running for\n"
	"later connections (-k) until none has been attached for --replay-idle; glimpse replay\n"
	"prints its pid.\n"
	"\n"
	"  --at snapshot:ID   the moment of that snapshot (taken while recording)\n"
	"  --at event:ID      the moment of that trace event\n"
	"  --event N          rr event N\n"
	"  --gdb [-- ARGS]    run gdb attached there, the Go runtime's gdb helpers loaded; ARGS are\n"
	"                     passed on after the connection (e.g. -batch -ex 'info goroutines')\n"
	"  --dlv              run Delve (`dlv replay`, commands from stdin) attached there through a\n"
	"                     relay that fixes the one packet rr 5.9 wants in another form (Delve\n"
	"                     >= 1.24; it needs kernel.perf_event_paranoid <= 1, which glimpse never\n"
	"                     changes)\n"
	"  --vscode DIR       write DIR/.vscode/launch.json attaching VS Code's Go extension to it\n"
	"  --db FILE          the store (default $GLIMPSE_DB or glimpse.db)\n"
	"  --rr PATH          rr to use (default: rr on PATH)\n"
	"  --replay-idle S    a replay server this starts stops after S seconds with no debugger\n"
	"                     attached (default 1800)\n";

/* Writes DIR/.vscode/launch.json: an attach of the Go extension (Delve) to addr. */
static int write_vscode(const char *dir, const char *addr, const char *exe, int64_t id)
{
	struct buf path = {0}, out = {0};
	struct json j;
	FILE *f;

	if (!addr || !strchr(addr, ':'))
		return err_set(EINVAL, "no replay server address");
	buf_printf(&path, "%s/.vscode", dir);
	mkdir(dir, 0755);
	mkdir(path.p, 0755);
	buf_puts(&path, "/launch.json");
	json_init(&j, &out);
	json_obj(&j);
	json_kv_str(&j, "version", "0.2.0");
	json_key(&j, "configurations");
	json_arr(&j);
	json_obj(&j);
	{
		struct buf name = {0};

		buf_printf(&name, "glimpse recording %" PRId64, id);
		json_kv_str(&j, "name", name.p);
		buf_free(&name);
	}
	json_kv_str(&j, "type", "go");
	json_kv_str(&j, "request", "attach");
	json_kv_str(&j, "mode", "remote");
	json_kv_str(&j, "backend", "rr");
	{
		const char *colon = strrchr(addr, ':');
		struct buf host = {0};

		buf_add(&host, addr, (size_t)(colon - addr));
		json_kv_str(&j, "host", host.p);
		json_kv_int(&j, "port", atoi(colon + 1));
		buf_free(&host);
	}
	if (exe)
		json_kv_str(&j, "program", exe);
	json_end(&j);
	json_end(&j);
	json_end(&j);
	buf_putc(&out, '\n');
	f = fopen(path.p, "w");
	if (!f || fputs(out.p, f) < 0 || fclose(f) != 0) {
		int rc = err_set(errno, "cannot write %s: %s", path.p, strerror(errno));

		buf_free(&path);
		buf_free(&out);
		return rc;
	}
	printf("wrote %s (attach configuration \"glimpse recording %" PRId64 "\" to %s)\n", path.p, id, addr);
	buf_free(&path);
	buf_free(&out);
	return 0;
}

static unsigned int replay_idle_s = 1800; /* --replay-idle */

/* Starts `glimpse replay --watch PID:PORT` detached (no zombie left to the caller,
 * which may be the server): it stops the replay server once no debugger has been
 * attached for replay_idle_s, so servers left running for later connections do
 * not pile up. */
static void watch_server(pid_t pid, uint16_t port)
{
	char target[48], idle[16];
	char *argv[] = {"/proc/self/exe", "replay", "--watch", target, "--replay-idle", idle, NULL};
	pid_t mid;

	snprintf(target, sizeof(target), "%d:%u", (int)pid, port);
	snprintf(idle, sizeof(idle), "%u", replay_idle_s);
	mid = fork();
	if (mid == 0) {
		_exit(record_spawn(argv, environ, "/dev/null") < 0 ? 1 : 0);
	}
	if (mid > 0)
		while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
			;
}

/* True while pid is a live (not zombie) process leading its own process group. */
static bool server_running(pid_t pid)
{
	char path[64], line[512], *p;
	FILE *f;
	int pgrp = 0;
	char state = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
	fclose(f);
	return p && sscanf(p + 2, "%c %*d %d", &state, &pgrp) == 2 && state != 'Z' && pgrp == pid;
}

/* --watch PID:PORT: the watchdog watch_server starts. */
static int watch(const char *target)
{
	int pid = 0;
	unsigned port = 0;
	int64_t last = record_now(CLOCK_MONOTONIC);

	if (sscanf(target, "%d:%u", &pid, &port) != 2 || pid <= 1 || !port || port > 65535)
		return cli_usage_error("replay", "--watch PID:PORT");
	while (server_running(pid)) {
		int64_t now = record_now(CLOCK_MONOTONIC);

		if (record_port_in_use((uint16_t)port))
			last = now;
		else if (now - last > (int64_t)replay_idle_s * NS_PER_S) {
			kill(-pid, SIGKILL);
			break;
		}
		sleep(2);
	}
	return 0;
}

int replay_open(struct store *st, const char *rr, int64_t id, int64_t event, struct replay_server *out)
{
	struct rec r;
	char *dir = NULL;
	int rc = rec_load(st, id, &r);

	memset(out, 0, sizeof(*out));
	if (rc)
		return rc;
	if (!r.status || strcmp(r.status, "done") != 0) {
		rc = err_set(EAGAIN, "recording %" PRId64 " is %s, not done yet%s%s", id, r.status ? r.status : "?",
			     r.why_not ? ": " : "", r.why_not ? r.why_not : "");
		goto out;
	}
	if (!event)
		event = r.first_event;
	out->event = event;
	rc = trace_dir(&r, &dir);
	if (rc)
		goto out;
	out->exe = trace_exe(dir, r.command);
	out->gdb_script = gdb_script(dir);
	if (server_alive(r.replay_addr, r.replay_pid) && event >= r.first_event) {
		out->addr = xstrdup(r.replay_addr);
		out->pid = (pid_t)r.replay_pid;
		out->warm = true;
	} else {
		/* A replay leaves its course at rt0_go's first syscall when CPUID's APIC ID
		 * is not the recording's (the host moves a VM's CPUs): try again on a CPU
		 * that has it now, if one has, else after a while. */
		int cpu = -1;

		for (int attempt = 0; attempt < 3; attempt++) {
			unsigned rec = 256;

			rc = start_server(rr, dir, event, cpu, &out->addr, &out->pid, &rec);
			if (!rc)
				break;
			cpu = rec < 256 ? record_cpu_with_apic(rec) : -1;
			if (cpu < 0)
				usleep(300000);
		}
		if (!rc) {
			const char *colon = out->addr ? strrchr(out->addr, ':') : NULL;

			if (colon)
				watch_server(out->pid, (uint16_t)atoi(colon + 1));
			store_run(st, "UPDATE recordings SET replay_addr = ?, replay_pid = ?, first_event = ? WHERE id = ?",
				  NULL, "tiii", out->addr, (int64_t)out->pid, event, id);
		}
	}
out:
	free(dir);
	rec_free(&r);
	return rc;
}

void replay_forget(struct store *st, int64_t id, pid_t pid)
{
	if (pid > 0)
		kill(-pid, SIGKILL);
	store_run(st, "UPDATE recordings SET replay_addr = NULL, replay_pid = NULL WHERE id = ? AND replay_pid = ?",
		  NULL, "ii", id, (int64_t)pid);
}

void replay_server_free(struct replay_server *s)
{
	free(s->addr);
	free(s->exe);
	free(s->gdb_script);
}

static int run(int argc, char **argv)
{
	enum { O_AT = 256, O_EVENT, O_GDB, O_DLV, O_VSCODE, O_DB, O_RR, O_IDLE, O_WATCH };
	static const struct option opts[] = {
		{"at", required_argument, NULL, O_AT},       {"event", required_argument, NULL, O_EVENT},
		{"gdb", no_argument, NULL, O_GDB},           {"dlv", no_argument, NULL, O_DLV},
		{"vscode", required_argument, NULL, O_VSCODE}, {"db", required_argument, NULL, O_DB},
		{"rr", required_argument, NULL, O_RR},       {"help", no_argument, NULL, 'h'},
		{"replay-idle", required_argument, NULL, O_IDLE}, {"watch", required_argument, NULL, O_WATCH},
		{NULL, 0, NULL, 0},
	};
	const char *at = NULL, *vscode = NULL, *db = getenv("GLIMPSE_DB"), *rr = "rr", *watching = NULL;
	bool gdb = false, dlv = false;
	uint64_t id = 0, ev = 0;
	struct replay_server srv;
	struct store *st;
	int64_t event = 0;
	int c, rc;

	if (!db)
		db = STORE_DEFAULT_PATH;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_AT: at = optarg; break;
		case O_EVENT:
			if (!cli_parse_u64(optarg, 1, INT64_MAX, &ev))
				return cli_usage_error("replay", "--event: '%s' is not an event number", optarg);
			break;
		case O_GDB: gdb = true; break;
		case O_DLV: dlv = true; break;
		case O_VSCODE: vscode = optarg; break;
		case O_DB: db = optarg; break;
		case O_RR: rr = optarg; break;
		case O_IDLE:
			if (!cli_parse_u64(optarg, 1, 86400 * 365, &ev))
				return cli_usage_error("replay", "--replay-idle: '%s' is not a number of seconds", optarg);
			replay_idle_s = (unsigned int)ev;
			ev = 0;
			break;
		case O_WATCH: watching = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_usage_error("replay", "unknown option");
		}
	}
	if (watching)
		return watch(watching);
	if (optind >= argc || !cli_parse_u64(argv[optind], 1, INT64_MAX, &id))
		return cli_usage_error("replay", "expected a RECORDING_ID");
	if ((at && ev) || gdb + dlv + (vscode != NULL) > 1)
		return cli_usage_error("replay", "one moment (--at or --event) and one debugger at most");
	if (!gdb && optind + 1 < argc && strcmp(argv[optind + 1], "--") != 0)
		return cli_usage_error("replay", "unexpected argument '%s'", argv[optind + 1]);
	if (dlv) {
		rc = dlv_check();
		if (rc)
			return cli_fail(rc);
	}
	rc = store_open(db, &st);
	if (rc)
		return cli_fail(rc);
	event = (int64_t)ev;
	if (at)
		rc = replay_moment(st, (int64_t)id, at, &event);
	if (!rc)
		rc = replay_open(st, rr, (int64_t)id, event, &srv);
	store_close(st);
	if (rc)
		return cli_fail(rc);
	fprintf(stderr, "glimpse replay: recording %" PRIu64 " at event %" PRId64 ": gdbserver on %s (%s rr replay pid %d)\n",
		id, srv.event, srv.addr, srv.warm ? "warm" : "new", (int)srv.pid);
	if (gdb) {
		struct buf run_ev = {0}, target = {0};
		char **gargv = xcalloc((size_t)argc + 20, sizeof(*gargv));
		int k = 0, st2 = 0;
		pid_t pid;

		buf_printf(&target, "target extended-remote %s", srv.addr);
		buf_printf(&run_ev, "run %" PRId64, srv.event);
		gargv[k++] = "gdb";
		gargv[k++] = "-q";
		gargv[k++] = "-iex";
		gargv[k++] = "set auto-load safe-path /";
		gargv[k++] = "-iex";
		gargv[k++] = "set confirm off";
		gargv[k++] = "-iex";
		gargv[k++] = "set sysroot /";
		if (srv.gdb_script) {
			gargv[k++] = "-x";
			gargv[k++] = srv.gdb_script;
		}
		if (srv.exe)
			gargv[k++] = srv.exe;
		gargv[k++] = "-ex";
		gargv[k++] = target.p;
		if (srv.warm) {
			gargv[k++] = "-ex";
			gargv[k++] = run_ev.p;
		}
		for (int i = optind + 2; i < argc; i++)
			gargv[k++] = argv[i];
		gargv[k] = NULL;
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			execvp("gdb", gargv);
			fprintf(stderr, "glimpse replay: cannot run gdb: %s\n", strerror(errno));
			_exit(127);
		}
		while (pid > 0 && waitpid(pid, &st2, 0) < 0 && errno == EINTR)
			;
		free(gargv);
		buf_free(&run_ev);
		buf_free(&target);
		replay_server_free(&srv);
		return pid > 0 && WIFEXITED(st2) ? WEXITSTATUS(st2) : 1;
	}
	if (dlv) {
		rc = run_dlv(&srv, (int64_t)id);
		replay_server_free(&srv);
		return rc;
	}
	if (vscode) {
		rc = write_vscode(vscode, srv.addr, srv.exe, (int64_t)id);
		replay_server_free(&srv);
		return rc ? cli_fail(rc) : 0;
	}
	printf("recording %" PRIu64 " at rr event %" PRId64 ": gdbserver on %s (rr replay pid %d; it keeps running)\n",
	       id, srv.event, srv.addr, (int)srv.pid);
	{
		struct buf cmd = {0};

		buf_printf(&cmd, "gdb -iex 'set auto-load safe-path /' -iex 'set sysroot /'%s%s %s -ex 'target extended-remote %s'",
			   srv.gdb_script ? " -x " : "", srv.gdb_script ? srv.gdb_script : "", srv.exe ? srv.exe : "",
			   srv.addr);
		if (srv.warm)
			buf_printf(&cmd, " -ex 'run %" PRId64 "'", srv.event);
		printf("  gdb:     %s\n", cmd.p);
		if (srv.gdb_script)
			printf("           (then glimpse-goroutine GOID: a parked goroutine's frames, for bt, frame, info locals)\n");
		buf_free(&cmd);
	}
	printf("  Delve:   glimpse replay %" PRIu64 " --event %" PRId64 " --dlv\n", id, srv.event);
	printf("  VS Code: glimpse replay %" PRIu64 " --event %" PRId64 " --vscode DIR\n", id, srv.event);
	replay_server_free(&srv);
	return 0;
}

const struct cmd cmd_replay = {
	.name = "replay",
	.run = run,
	.summary = "open a recording at a snapshot's or event's moment in gdb, Delve or VS Code",
	.usage = usage_text,
};
