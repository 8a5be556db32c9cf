/* record_finish.c - what becomes of a recording: its recordings row while it runs,
 * and once its instance has stopped `rr pack`, the moments of the snapshots and
 * events linked to it, a warm replay server started at once (which proves it
 * replayable on this machine, or says why not), and a tar + zstd archive whose
 * binaries are stored once in DIR/binaries. Also rr's version and `rr dump` times.
 */
#include "record.h"
#include "record_int.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "buf.h"
#include "err.h"
#include "gobin.h"
#include "store.h"

extern char **environ;

#define REPLAY_TRIES 5		/* replay servers started before a recording is called not replayable */

/* Runs argv, its stdout and stderr into out (when not NULL). Returns its wait
 * status, or -1 if it could not run. */
static int run_capture(char *const *argv, struct buf *out)
{
	int p[2], st = -1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	if (pid > 0) {
		char chunk[65536];
		ssize_t n;

		while ((n = read(p[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
			if (n > 0 && out)
				buf_add(out, chunk, (size_t)n);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	close(p[0]);
	return st;
}

int rr_version(const char *rr, char *ver, size_t n)
{
	char *argv[] = {(char *)(rr ? rr : "rr"), "--version", NULL};
	struct buf out = {0};
	int st = run_capture(argv, &out);
	char *nl;

	if (st != 0) {
		buf_free(&out);
		return err_set(ENOENT, "no working rr at '%s' (give one with --rr, or use --no-rr): %s",
			       argv[0], st == -1 || (WIFEXITED(st) && WEXITSTATUS(st) == 127) ? "not found" : "it failed");
	}
	nl = strchr(buf_str(&out), '\n');
	if (nl)
		*nl = 0;
	snprintf(ver, n, "%s", buf_str(&out));
	buf_free(&out);
	return 0;
}

/* rr dump's events with their times: one (event, real_time in ns) per event,
 * ascending. */
struct rr_times {
	int64_t *event, *mono;
	size_t n;
};

/* Reads trace_dir's event times through `rr dump`. Returns 0 or a negative code. */
static int rr_times(const char *rr, const char *trace_dir, struct rr_times *t)
{
	char *argv[] = {(char *)rr, "dump", (char *)trace_dir, NULL};
	struct buf out = {0};
	size_t cap = 0;
	int st = run_capture(argv, &out);
	const char *p;

	memset(t, 0, sizeof(*t));
	if (st != 0) {
		buf_free(&out);
		return err_set(EIO, "rr dump %s failed", trace_dir);
	}
	/* Each event's block has "real_time:SECONDS global_time:EVENT". */
	for (p = buf_str(&out); (p = strstr(p, "real_time:"));) {
		char *end;
		double s = strtod(p + 10, &end);
		const char *g = strstr(end, "global_time:");

		p = end;
		if (!g || g - end > 64)
			continue;
		if (t->n == cap) {
			cap = cap ? cap * 2 : 1024;
			t->event = xrealloc(t->event, cap * sizeof(*t->event));
			t->mono = xrealloc(t->mono, cap * sizeof(*t->mono));
		}
		t->event[t->n] = strtoll(g + 12, NULL, 10);
		t->mono[t->n] = (int64_t)(s * 1e9 + 0.5);
		t->n++;
	}
	buf_free(&out);
	return 0;
}

static void rr_times_free(struct rr_times *t)
{
	free(t->event);
	free(t->mono);
}

/* The last event at or before mono_ns; the first event when mono_ns is earlier. */
static int64_t times_event_at(const struct rr_times *t, int64_t mono_ns)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (t->mono[mid] <= mono_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!t->n)
		return 0;
	return lo ? t->event[lo - 1] : t->event[0];
}

int64_t rr_event_at(const char *rr, const char *trace_dir, int64_t mono_ns)
{
	struct rr_times t;
	int64_t e;
	int rc = rr_times(rr, trace_dir, &t);

	if (rc)
		return rc;
	e = times_event_at(&t, mono_ns);
	rr_times_free(&t);
	return e;
}

int record_blobs_dir(struct recorder *r)
{
	struct buf b = {0};
	int rc = 0;

	buf_printf(&b, "%s/binaries", r->o.dir);
	if (mkdir(b.p, 0755) != 0 && errno != EEXIST)
		rc = err_set(errno, "cannot create %s: %s", b.p, strerror(errno));
	buf_free(&b);
	return rc;
}

void record_register_running(struct recorder *r, struct instance *in, int rc)
{
	struct gobin *bin = NULL;

	if (!rc && in->app_pid > 0 && gobin_open_pid(in->app_pid, &bin) != 0)
		bin = NULL;
	pthread_mutex_lock(&r->store_mu);
	if (rc)
		store_run(r->st, "UPDATE recordings SET status = 'failed', ended = ?, why_not = ? WHERE id = ?", NULL,
			  "iti", record_now(CLOCK_REALTIME), err_msg(rc), in->id);
	else
		store_run(r->st,
			  "UPDATE recordings SET status = 'recording', pid = ?, rr_pid = ?, path = ?, build_id = ?,"
			  " go_version = ?, clock_offset_ns = ?, started = ? WHERE id = ?",
			  NULL, "iitttiii", (int64_t)in->app_pid, (int64_t)in->pid, in->trace_dir,
			  bin ? bin->build_id : NULL, bin ? bin->go_version : NULL, in->clock_offset, in->started_rt,
			  in->id);
	pthread_mutex_unlock(&r->store_mu);
	gobin_close(bin);
}

/* Fills rr_event of the snapshots and events linked to recording id from their
 * capture times. Returns how many were linked. */
static int link_moments(struct recorder *r, int64_t id, int64_t offset, const struct rr_times *t)
{
	static const char *const sel[] = {
		"SELECT id, taken_at FROM snapshots WHERE recording = ? AND rr_event IS NULL",
		"SELECT id, ts_ns FROM events WHERE recording = ? AND rr_event IS NULL",
	};
	static const char *const upd[] = {
		"UPDATE snapshots SET rr_event = ? WHERE id = ?",
		"UPDATE events SET rr_event = ? WHERE id = ?",
	};
	sqlite3 *db = store_db(r->st);
	int n = 0;

	pthread_mutex_lock(&r->store_mu);
	if (store_begin(r->st) == 0) {
		for (int k = 0; k < 2; k++) {
			sqlite3_stmt *s;

			if (sqlite3_prepare_v2(db, sel[k], -1, &s, NULL) != SQLITE_OK)
				continue;
			sqlite3_bind_int64(s, 1, id);
			while (sqlite3_step(s) == SQLITE_ROW) {
				int64_t ev = times_event_at(t, sqlite3_column_int64(s, 1) - offset);

				if (store_run(r->st, upd[k], NULL, "ii", ev, sqlite3_column_int64(s, 0)) == 0)
					n++;
			}
			sqlite3_finalize(s);
		}
		store_commit(r->st);
	}
	pthread_mutex_unlock(&r->store_mu);
	return n;
}

/* Stops warm replay server slot w (with r->mu held) and clears it. */
static void warm_kill(struct recorder *r, struct warm *w)
{
	if (!w->pid)
		return;
	kill(-w->pid, SIGKILL);
	while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&r->store_mu);
	store_run(r->st, "UPDATE recordings SET replay_addr = NULL, replay_pid = NULL WHERE id = ? AND replay_pid = ?",
		  NULL, "ii", w->id, (int64_t)w->pid); /* unless another server took its place */
	pthread_mutex_unlock(&r->store_mu);
	memset(w, 0, sizeof(*w));
}

/* Starts `rr replay -W -s PORT -k -g EVENT trace_dir` and waits until it listens
 * (it reached EVENT in step) or exits (it did not: *why says why). Keeps it in a
 * warm slot, the oldest making room. Returns 0 if it listens. */
static int warm_start(struct recorder *r, struct instance *in, int64_t event, int cpu, char **why)
{
	char port[16], ev[32], *argv[13];
	struct buf log = {0};
	pid_t pid;
	uint16_t p = 0;
	int64_t deadline = record_now(CLOCK_MONOTONIC) + 600 * NS_PER_S;
	int rc = -1, k = 0;

	p = record_free_port();
	snprintf(port, sizeof(port), "%u", p);
	snprintf(ev, sizeof(ev), "%" PRId64, event);
	argv[k++] = r->rr;
	argv[k++] = "replay";
	argv[k++] = "-W";
	if (cpu >= 0)
		argv[k++] = "-u"; /* bound by us to a CPU with the recording's APIC ID */
	argv[k++] = "-s";
	argv[k++] = port;
	argv[k++] = "-k";
	argv[k++] = "-g";
	argv[k++] = ev;
	argv[k++] = in->trace_dir;
	argv[k] = NULL;
	buf_printf(&log, "%s/replay-%" PRId64 ".log", r->o.dir, in->id);
	unlink(log.p);
	pid = record_spawn_on_cpu(argv, environ, log.p, cpu);
	if (pid < 0) {
		*why = xstrdup("cannot run rr replay");
		buf_free(&log);
		return -1;
	}
	for (;;) {
		int st;
		char *tail;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			tail = record_rr_failure(log.p);
			{
				struct buf b = {0};

				buf_printf(&b, "rr replay -W did not stay in step up to event %s (exit 0x%x): %s", ev, st,
					   tail);
				*why = buf_detach(&b);
			}
			free(tail);
			kill(-pid, SIGKILL);
			break;
		}
		tail = record_log_tail(log.p, 2000);
		if (strstr(tail, "target extended-remote")) {
			free(tail);
			rc = 0;
			break;
		}
		free(tail);
		if (record_now(CLOCK_MONOTONIC) > deadline) {
			*why = xstrdup("rr replay did not reach the recording's start-up within 600 s");
			kill(-pid, SIGKILL);
			waitpid(pid, NULL, 0);
			break;
		}
		usleep(50000);
	}
	buf_free(&log);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->mu);
	{
		struct warm *slot = &r->warm[0];

		/* A free slot, else the least recently used server makes room. */
		for (unsigned i = 0; i < r->o.replay_servers; i++) {
			if (!r->warm[i].pid) {
				slot = &r->warm[i];
				break;
			}
			if (r->warm[i].used < slot->used)
				slot = &r->warm[i];
		}
		warm_kill(r, slot);
		slot->id = in->id;
		slot->pid = pid;
		slot->port = p;
		slot->started = slot->used = record_now(CLOCK_MONOTONIC);
	}
	pthread_mutex_unlock(&r->mu);
	pthread_mutex_lock(&r->store_mu);
	{
		char addr[32];

		snprintf(addr, sizeof(addr), "127.0.0.1:%u", p);
		store_run(r->st, "UPDATE recordings SET replay_addr = ?, replay_pid = ? WHERE id = ?", NULL, "tii", addr,
			  (int64_t)pid, in->id);
	}
	pthread_mutex_unlock(&r->store_mu);
	return 0;
}

void record_warm_tick(struct recorder *r)
{
	int64_t now = record_now(CLOCK_MONOTONIC), total = 0;
	int64_t limit = (int64_t)r->o.replay_mem_mb << 20;

	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < WARM_MAX; i++) {
		struct warm *w = &r->warm[i];
		int st;

		if (w->pid && waitpid(w->pid, &st, WNOHANG) == w->pid) {
			w->pid = 0;
			warm_kill(r, w);
		}
	}
	/* Once a second: which servers a debugger uses, idle ones, and memory. */
	if (now - r->warm_checked < NS_PER_S) {
		pthread_mutex_unlock(&r->mu);
		return;
	}
	r->warm_checked = now;
	for (int i = 0; i < WARM_MAX; i++) {
		struct warm *w = &r->warm[i];

		if (!w->pid)
			continue;
		if (record_port_in_use(w->port))
			w->used = now;
		if (now - w->used > (int64_t)r->o.replay_idle_s * NS_PER_S) {
			if (r->o.verbose)
				fprintf(stderr, "glimpse record: replay server of recording %" PRId64 " idle for %u s: stopped\n",
					w->id, r->o.replay_idle_s);
			warm_kill(r, w);
			continue;
		}
		w->rss = record_group_rss(w->pid);
		total += w->rss;
	}
	/* Over the memory bound: the least recently used go first. */
	while (total > limit) {
		struct warm *lru = NULL;

		for (int i = 0; i < WARM_MAX; i++)
			if (r->warm[i].pid && (!lru || r->warm[i].used < lru->used))
				lru = &r->warm[i];
		if (!lru)
			break;
		if (r->o.verbose)
			fprintf(stderr,
				"glimpse record: replay servers use %" PRId64 " MiB, over %u: stopped the one of recording"
				" %" PRId64 "\n",
				total >> 20, r->o.replay_mem_mb, lru->id);
		total -= lru->rss;
		warm_kill(r, lru);
	}
	pthread_mutex_unlock(&r->mu);
}

void record_warm_stop_all(struct recorder *r)
{
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < WARM_MAX; i++)
		warm_kill(r, &r->warm[i]);
	pthread_mutex_unlock(&r->mu);
}

/* Why a recording of the binary in trace_dir may not replay on a machine that
 * cannot trap RDTSC: dynamically linked (ld.so reads the TSC) or Go < 1.21 (its
 * runtime does at start-up). "" when neither. */
static const char *replay_hint(const char *trace_dir)
{
	const char *hint = "";
	DIR *d = opendir(trace_dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		struct buf path = {0};
		struct gobin *bin;
		Elf64_Ehdr eh;
		FILE *f;

		if (strncmp(e->d_name, "mmap_pack_", 10) != 0)
			continue;
		buf_printf(&path, "%s/%s", trace_dir, e->d_name);
		if (gobin_open(path.p, &bin) != 0) {
			buf_free(&path);
			continue;
		}
		f = fopen(path.p, "rb");
		if (f && fread(&eh, sizeof(eh), 1, f) == 1) {
			for (int i = 0; i < eh.e_phnum; i++) {
				Elf64_Phdr ph;

				if (fseek(f, (long)(eh.e_phoff + (uint64_t)i * eh.e_phentsize), SEEK_SET) != 0 ||
				    fread(&ph, sizeof(ph), 1, f) != 1)
					break;
				if (ph.p_type == PT_INTERP)
					hint = " (a dynamically linked program: ld.so reads the TSC, which rr can trap"
					       " only where the CPU lets it; static builds, CGO_ENABLED=0, replay better)";
			}
		}
		if (f)
			fclose(f);
		if (!*hint && strncmp(bin->go_version, "go1.", 4) == 0 && atoi(bin->go_version + 4) < 21)
			hint = " (Go before 1.21 reads the TSC at start-up, which rr can trap only where the CPU lets it)";
		gobin_close(bin);
		buf_free(&path);
		break;
	}
	if (d)
		closedir(d);
	return hint;
}

/* Finishes one recording: pack, event times, warm replay server, links,
 * archive, row. */
static void *finish_thread(void *arg)
{
	struct instance *in = arg;
	struct recorder *r = in->recorder;
	char *pack_argv[] = {r->rr, "pack", in->trace_dir, NULL};
	struct buf out = {0}, archive = {0};
	struct rr_times t = {0};
	struct archive_stats as = {0};
	char *why = NULL;
	const char *status = "done";
	int replayable = 0, st;
	int64_t first = 0;

	st = run_capture(pack_argv, &out);
	if (st != 0) {
		struct buf b = {0};

		buf_printf(&b, "rr pack failed: %s", buf_str(&out));
		why = buf_detach(&b);
		status = "failed";
	}
	if (!why && rr_times(r->rr, in->trace_dir, &t) != 0) {
		why = xstrdup("rr dump cannot read the trace");
		status = "failed";
	}
	if (!why) {
		first = times_event_at(&t, in->ready_mono);
		/* On VMs whose CPUID leaf 1 APIC ID changes under the guest, a replay can
		 * leave its course at rt0_go's first syscall; a new try often stays in step. */
		int cpu = -1;

		for (int attempt = 1; attempt <= REPLAY_TRIES && !replayable; attempt++) {
			unsigned rep, rec;

			free(why);
			why = NULL;
			if (warm_start(r, in, first, cpu, &why) == 0) {
				replayable = 1;
				break;
			}
			/* The CPU's APIC ID moved on: replay on a CPU that has the
			 * recording's now, if one has; else wait for the host to move. */
			cpu = record_apic_drift(why, &rep, &rec) ? record_cpu_with_apic(rec) : -1;
			if (cpu < 0 && attempt < REPLAY_TRIES)
				usleep(300000);
		}
		if (!replayable && why) {
			struct buf b = {0};

			unsigned rep = 0, rec = 0;

			if (record_apic_drift(why, &rep, &rec))
				buf_printf(&b,
					   "%d tries%s: the CPU's APIC ID in CPUID leaf 1 changed from 0x%02x when recorded"
					   " to 0x%02x on replay, and no CPU has it now (the host moved this VM's CPU, and"
					   " this CPU cannot make CPUID fault for rr; shorter recordings or a machine with"
					   " CPUID faulting replay): %s",
					   REPLAY_TRIES, replay_hint(in->trace_dir), rec, rep, why);
			else
				buf_printf(&b, "%d tries%s: %s", REPLAY_TRIES, replay_hint(in->trace_dir), why);
			free(why);
			why = buf_detach(&b);
		}
		link_moments(r, in->id, in->clock_offset, &t);
	}
	if (strcmp(status, "failed") != 0) {
		char blobs[PATH_MAX];

		snprintf(blobs, sizeof(blobs), "%s/binaries", r->o.dir);
		buf_printf(&archive, "%s/recording-%" PRId64 ".tar.zst", r->o.dir, in->id);
		int rc = archive_pack(in->trace_dir, archive.p, blobs, &as);

		if (rc) {
			free(why);
			why = xstrdup(err_msg(rc));
			status = "failed";
		}
	}
	pthread_mutex_lock(&r->store_mu);
	store_run(r->st,
		  "UPDATE recordings SET status = ?, ended = ?, bytes_raw = ?, bytes_packed = ?, bytes_binaries = ?,"
		  " archive = ?, replayable = ?, why_not = ?, first_event = ?, events = ? WHERE id = ?",
		  NULL, "tiiiititiii", status, in->ended_rt, (int64_t)as.bytes_raw, (int64_t)as.bytes_packed,
		  (int64_t)as.bytes_binaries, archive.p, (int64_t)replayable, why, first,
		  t.n ? t.event[t.n - 1] : (int64_t)0, in->id);
	pthread_mutex_unlock(&r->store_mu);
	if (r->o.verbose)
		fprintf(stderr, "glimpse record: recording %" PRId64 " %s: %s, %llu bytes, %llu packed%s%s\n", in->id,
			status, replayable ? "replayable" : "not replayable", (unsigned long long)as.bytes_raw,
			(unsigned long long)as.bytes_packed, why ? ": " : "", why ? why : "");
	rr_times_free(&t);
	buf_free(&out);
	buf_free(&archive);
	free(why);
	pthread_mutex_lock(&r->mu);
	in->state = INST_DONE;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

void record_finish_start(struct recorder *r, struct instance *in)
{
	pthread_attr_t at;
	pthread_t t;

	if (r->o.no_rr || !in->trace_dir) {
		in->state = INST_DONE;
		return;
	}
	in->recorder = r;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, finish_thread, in) != 0)
		in->state = INST_DONE;
	pthread_attr_destroy(&at);
}
