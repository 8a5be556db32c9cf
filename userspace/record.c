/* record.c - glimpse record's proxy: one instance of the app per client key, started
 * on a free loopback port (under `rr record` unless --no-rr), a byte relay per
 * connection, idle stop, the client limit, and clean shutdown. What happens to a
 * recording once its instance has stopped (pack, compress, register, replay check)
 * is in record_finish.c.
 *
 * Threads: the relay thread (record_relay.c) accepts connections, reads their
 * keys and relays their bytes; a starter thread per connection that has to wait
 * for its instance to start; one loop thread watches instances (exit, idle, stop
 * timeouts); one thread per stopped recording finishes it. The instance list is
 * guarded by r->mu.
 */
#include "record.h"
#include "record_int.h"

#include <arpa/inet.h>
#include <cpuid.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "store.h"

extern char **environ;

#define STOP_GRACE_NS (30 * NS_PER_S) /* after SIGTERM, before SIGKILL */

int64_t record_now(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Splits "HOST:PORT" ("[v6]:PORT" too) and resolves it numerically into sa. */
static int parse_addr(const char *addr, struct sockaddr_storage *sa, socklen_t *len)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM}, *ai;
	const char *colon = strrchr(addr, ':');
	char host[128];
	size_t hl;

	if (!colon || colon == addr)
		return err_set(EINVAL, "--listen %s: expected HOST:PORT", addr);
	hl = (size_t)(colon - addr);
	if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return err_set(EINVAL, "--listen %s: address too long", addr);
	memcpy(host, addr, hl);
	host[hl] = 0;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return err_set(EINVAL, "--listen %s: not a numeric address and port", addr);
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* A free loopback TCP port, or 0. The port is free when asked; the app binds it
 * right after (a race another program could win is reported as a start failure). */
uint16_t record_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port = 0;

	if (fd < 0)
		return 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

int record_connect_port(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

char *record_log_tail(const char *path, size_t max)
{
	struct buf b = {0};
	char chunk[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return xstrdup("");
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);

		if (size > (long)max)
			fseek(f, size - (long)max, SEEK_SET);
		else
			fseek(f, 0, SEEK_SET);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	while (b.len && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == ' '))
		b.p[--b.len] = 0;
	return buf_detach(&b);
}

char *record_rr_failure(const char *log)
{
	char *tail = record_log_tail(log, 65536), *save = NULL;
	struct buf b = {0};
	int n = 0;

	for (char *l = strtok_r(tail, "\n", &save); l && n < 3; l = strtok_r(NULL, "\n", &save)) {
		while (*l == ' ')
			l++;
		if (!strstr(l, "FATAL") && !strstr(l, "Assertion") && !strstr(l, "Mismatched") &&
		    !strstr(l, "iverge") && !strstr(l, "rror"))
			continue;
		if (strstr(l, "emergency debugging"))
			continue;
		buf_printf(&b, "%s%.240s", n++ ? "; " : "", l);
	}
	if (!n) {
		size_t len = strlen(tail);

		buf_puts(&b, len > 300 ? tail + len - 300 : tail);
	}
	free(tail);
	return buf_detach(&b);
}

/* The environment for a child: ours with PORT set, and for rr its cache directory
 * and GOMAXPROCS (Go sees one CPU under rr). Caller frees with free_env. */
static char **child_env(const struct recorder *r, uint16_t port)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = xcalloc(n + 4, sizeof(*env));
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PORT=", 5) != 0 && strncmp(environ[i], "_RR_PATCH_LOC_DB_DIR=", 21) != 0)
			env[k++] = xstrdup(environ[i]);
	{
		struct buf b = {0};

		buf_printf(&b, "PORT=%u", port);
		env[k++] = buf_detach(&b);
	}
	if (!r->o.no_rr) {
		struct buf b = {0};

		buf_printf(&b, "_RR_PATCH_LOC_DB_DIR=%s/rr-cache", r->o.dir);
		env[k++] = buf_detach(&b);
		if (!getenv("GOMAXPROCS"))
			env[k++] = xstrdup("GOMAXPROCS=2");
	}
	return env;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* The command line for an instance: the app's with "{port}" replaced, after
 * `rr record -W -o TRACE --` unless --no-rr. Caller frees with free_strv. */
static char **child_argv(const struct recorder *r, const struct instance *in)
{
	size_t n = 0, k = 0;
	char **argv, port[16];

	while (r->o.argv[n])
		n++;
	argv = xcalloc(n + 8, sizeof(*argv));
	snprintf(port, sizeof(port), "%u", in->port);
	if (!r->o.no_rr) {
		argv[k++] = xstrdup(r->rr);
		argv[k++] = xstrdup("record");
		argv[k++] = xstrdup("-W");
		argv[k++] = xstrdup("-o");
		argv[k++] = xstrdup(in->trace_dir);
		argv[k++] = xstrdup("--");
	}
	for (size_t i = 0; i < n; i++) {
		struct buf b = {0};
		const char *s = r->o.argv[i], *p;

		while ((p = strstr(s, "{port}"))) {
			buf_add(&b, s, (size_t)(p - s));
			buf_puts(&b, port);
			s = p + 6;
		}
		buf_puts(&b, s);
		argv[k++] = buf_detach(&b);
	}
	return argv;
}

pid_t record_spawn(char *const *argv, char *const *env, const char *log)
{
	return record_spawn_on_cpu(argv, env, log, -1);
}

pid_t record_spawn_on_cpu(char *const *argv, char *const *env, const char *log, int cpu)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	pid_t pid;

	if (fd < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		static const char failed[] = "glimpse record: cannot run the command\n";

		setsid();
		if (cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			if (sched_setaffinity(0, sizeof(set), &set) != 0)
				_exit(126);
		}
		if (null >= 0)
			dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execvpe(argv[0], argv, env);
		if (write(2, failed, sizeof(failed) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	close(fd);
	return pid;
}

bool record_apic_drift(const char *why, unsigned *replay, unsigned *recorded)
{
	static const char tag[] = "Mismatched registers, replay vs rec:";
	const char *p = why ? strstr(why, tag) : NULL;
	int pairs = 0;

	if (!p)
		return false;
	p += sizeof(tag) - 1;
	for (;;) {
		char reg[16];
		unsigned long long a, b;
		int n = 0;

		if (sscanf(p, " %15[a-z0-9] 0x%llx != 0x%llx%n", reg, &a, &b, &n) != 3 || n == 0)
			break;
		if (((a ^ b) & ~0xff000000ULL) || a == b)
			return false;
		if (!pairs++) {
			*replay = (unsigned)(a >> 24) & 0xff;
			*recorded = (unsigned)(b >> 24) & 0xff;
		}
		p += n;
	}
	return pairs > 0;
}

struct apic_probe {
	int cpu;
	unsigned apic;
	bool ok;
};

/* Thread: CPUID leaf 1 on one CPU. */
static void *apic_probe_thread(void *arg)
{
	struct apic_probe *a = arg;
	cpu_set_t set;
	unsigned eax, ebx, ecx, edx;

	CPU_ZERO(&set);
	CPU_SET(a->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0 && __get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
		a->apic = ebx >> 24;
		a->ok = true;
	}
	return NULL;
}

int record_cpu_with_apic(unsigned apic)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return -1;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		struct apic_probe a = {.cpu = cpu};
		pthread_t t;

		if (!CPU_ISSET(cpu, &allowed) || pthread_create(&t, NULL, apic_probe_thread, &a) != 0)
			continue;
		pthread_join(t, NULL);
		if (a.ok && a.apic == apic)
			return cpu;
	}
	return -1;
}

bool record_port_in_use(uint16_t port)
{
	static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	bool used = false;

	for (size_t t = 0; t < sizeof(tables) / sizeof(*tables) && !used; t++) {
		FILE *f = fopen(tables[t], "r");
		char line[512];

		if (!f)
			continue;
		/* "  sl  local_address rem_address   st ...": hex port after the colon, st 01 is ESTABLISHED. */
		while (!used && fgets(line, sizeof(line), f)) {
			unsigned lport, st;
			char *colon = strchr(line, ':');

			colon = colon ? strchr(colon + 1, ':') : NULL;
			if (colon && sscanf(colon + 1, "%x %*s %x", &lport, &st) == 2 && lport == port && st == 1)
				used = true;
		}
		fclose(f);
	}
	return used;
}

int64_t record_group_rss(pid_t pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int64_t total = 0;
	long page = sysconf(_SC_PAGESIZE);

	while (d && (e = readdir(d))) {
		char path[300], stat[1024], *close_paren;
		long rss_pages;
		int pgrp;
		FILE *f;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(stat, sizeof(stat), f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		/* After "pid (comm) ": state ppid pgrp ... field 24 is rss in pages. */
		close_paren = strrchr(stat, ')');
		if (close_paren &&
		    sscanf(close_paren + 2, "%*c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d"
					    " %*u %*u %ld",
			   &pgrp, &rss_pages) == 2 &&
		    pgrp == pgid)
			total += (int64_t)rss_pages * page;
	}
	if (d)
		closedir(d);
	return total;
}

/* The pid rr record runs the app as: rr's first child. 0 until there is one. */
static pid_t rr_child(pid_t rr)
{
	char path[64], line[256];
	pid_t pid = 0;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task", rr);
	d = opendir(path);
	if (!d)
		return 0;
	while (!pid && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", rr, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f))
			pid = (pid_t)atoi(line);
		fclose(f);
	}
	closedir(d);
	return pid;
}

/* Kills an instance's process group and reaps its child; for a start that failed. */
static void kill_instance(struct instance *in)
{
	kill(-in->pid, SIGKILL);
	kill(in->pid, SIGKILL);
	while (waitpid(in->pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Starts in's process and waits until its port accepts. Called without r->mu.
 * Returns 0, or a negative code with a message (the app's exit and its log's end). */
static int start_instance(struct recorder *r, struct instance *in)
{
	char **argv, **env;
	int64_t deadline;
	int rc = 0;

	in->port = record_free_port();
	if (!in->port)
		return err_set(EADDRNOTAVAIL, "no free loopback port for the app");
	argv = child_argv(r, in);
	env = child_env(r, in->port);
	{
		struct buf b = {0};

		buf_printf(&b, "%s/instance-%" PRId64 ".log", r->o.dir, in->id);
		in->log = buf_detach(&b);
	}
	in->started_rt = record_now(CLOCK_REALTIME);
	in->clock_offset = in->started_rt - record_now(CLOCK_MONOTONIC);
	in->pid = record_spawn(argv, env, in->log);
	free_strv(argv);
	free_strv(env);
	if (in->pid < 0)
		return err_set(errno, "cannot start the app: %s", strerror(errno));
	deadline = record_now(CLOCK_MONOTONIC) + (int64_t)r->o.start_timeout_s * NS_PER_S;
	for (;;) {
		int st, fd;
		pid_t w = waitpid(in->pid, &st, WNOHANG);

		if (w == in->pid) {
			char *tail = record_log_tail(in->log, 600);

			rc = err_set(ECHILD, "the app %s with %d before its port %u accepted a connection%s%s",
				     WIFEXITED(st) ? "exited" : "was killed by signal",
				     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), in->port, *tail ? ": " : "",
				     tail);
			free(tail);
			kill(-in->pid, SIGKILL);
			return rc;
		}
		fd = record_connect_port(in->port);
		if (fd >= 0) {
			close(fd);
			break;
		}
		if (record_now(CLOCK_MONOTONIC) > deadline || r->stopping) {
			rc = err_set(ETIMEDOUT, "the app's port %u did not accept a connection within %u s", in->port,
				     r->o.start_timeout_s);
			kill_instance(in);
			return rc;
		}
		usleep(20000);
	}
	in->ready_mono = record_now(CLOCK_MONOTONIC);
	in->app_pid = r->o.no_rr ? in->pid : rr_child(in->pid);
	return 0;
}

char *record_client_key(const struct recorder *r, const char *head, const char *ip)
{
	const char *line = strstr(head, "\r\n"), *want;
	size_t wl;

	if (r->o.key == RECORD_KEY_IP || !line)
		return xstrdup(ip);
	want = r->o.key == RECORD_KEY_HEADER ? r->o.key_name : "Cookie";
	wl = strlen(want);
	for (line += 2; *line && strncmp(line, "\r\n", 2) != 0;) {
		const char *end = strstr(line, "\r\n"), *v;

		if (!end)
			break;
		if ((size_t)(end - line) > wl && strncasecmp(line, want, wl) == 0 && line[wl] == ':') {
			v = line + wl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			if (r->o.key == RECORD_KEY_HEADER)
				return xstrndup(v, (size_t)(end - v));
			/* Cookie: a=1; b=2 */
			while (v < end) {
				const char *semi = memchr(v, ';', (size_t)(end - v)), *eq;
				size_t nl = strlen(r->o.key_name);

				if (!semi)
					semi = end;
				eq = memchr(v, '=', (size_t)(semi - v));
				if (eq && (size_t)(eq - v) == nl && strncmp(v, r->o.key_name, nl) == 0)
					return xstrndup(eq + 1, (size_t)(semi - eq - 1));
				v = semi + 1;
				while (v < end && *v == ' ')
					v++;
			}
		}
		line = end + 2;
	}
	return xstrdup(ip);
}

static size_t live_instances(const struct recorder *r)
{
	size_t n = 0;

	for (const struct instance *in = r->insts; in; in = in->next)
		n += in->state == INST_STARTING || in->state == INST_RUNNING;
	return n;
}

/* Adds the recordings row of a new recording (status 'recording'). */
static int register_start(struct recorder *r, struct instance *in)
{
	struct buf cmd = {0};
	struct json j;
	int rc;

	json_init(&j, &cmd);
	json_arr(&j);
	for (size_t i = 0; r->o.argv[i]; i++)
		json_str(&j, r->o.argv[i]);
	json_end(&j);
	pthread_mutex_lock(&r->store_mu);
	rc = store_run(r->st,
		       "INSERT INTO recordings (client_key, command, rr_version, started, status, clock_offset_ns)"
		       " VALUES (?, ?, ?, ?, 'starting', ?)",
		       &in->id, "tttii", in->key, cmd.p, r->rr_ver, record_now(CLOCK_REALTIME),
		       record_now(CLOCK_REALTIME) - record_now(CLOCK_MONOTONIC));
	pthread_mutex_unlock(&r->store_mu);
	buf_free(&cmd);
	return rc;
}

struct instance *record_instance_get(struct recorder *r, const char *key)
{
	struct instance *in;

	pthread_mutex_lock(&r->mu);
	for (in = r->insts; in; in = in->next)
		if (in->state == INST_RUNNING && strcmp(in->key, key) == 0) {
			in->conns++;
			break;
		}
	pthread_mutex_unlock(&r->mu);
	return in;
}

void record_instance_release(struct recorder *r, struct instance *in)
{
	pthread_mutex_lock(&r->mu);
	in->conns--;
	pthread_mutex_unlock(&r->mu);
}

struct instance *record_instance_for(struct recorder *r, const char *key, int *status, char **msg)
{
	struct instance *in;
	int rc;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		for (in = r->insts; in; in = in->next)
			if ((in->state == INST_STARTING || in->state == INST_RUNNING) && strcmp(in->key, key) == 0)
				break;
		if (!in || in->state == INST_RUNNING)
			break;
		pthread_cond_wait(&r->cv, &r->mu);
	}
	if (in) {
		in->conns++;
		pthread_mutex_unlock(&r->mu);
		return in;
	}
	if (r->stopping || live_instances(r) >= r->o.max_clients) {
		struct buf b = {0};

		buf_printf(&b, r->stopping ? "glimpse record: shutting down"
					   : "glimpse record: client limit reached (%u clients are being %s); "
					     "try again when one has stopped",
			   r->o.max_clients, r->o.no_rr ? "served" : "recorded");
		*msg = buf_detach(&b);
		*status = 503;
		pthread_mutex_unlock(&r->mu);
		return NULL;
	}
	in = xcalloc(1, sizeof(*in));
	in->key = xstrdup(key);
	in->state = INST_STARTING;
	in->next = r->insts;
	r->insts = in;
	pthread_mutex_unlock(&r->mu);

	rc = 0;
	if (r->st && !r->o.no_rr)
		rc = register_start(r, in);
	else
		in->id = __atomic_add_fetch(&r->next_id, 1, __ATOMIC_SEQ_CST);
	if (!rc && !r->o.no_rr) {
		struct buf b = {0};

		buf_printf(&b, "%s/recording-%" PRId64, r->o.dir, in->id);
		in->trace_dir = buf_detach(&b);
	}
	if (!rc)
		rc = start_instance(r, in);
	if (r->st && !r->o.no_rr && in->id)
		record_register_running(r, in, rc);
	pthread_mutex_lock(&r->mu);
	if (rc) {
		struct buf b = {0};

		buf_printf(&b, "glimpse record: %s", err_msg(rc));
		*msg = buf_detach(&b);
		*status = 502;
		in->state = INST_FAILED;
		in->error = xstrdup(err_msg(rc));
		if (r->o.verbose)
			fprintf(stderr, "glimpse record: client %s: %s\n", key, err_msg(rc));
		in = NULL;
	} else {
		in->state = INST_RUNNING;
		in->last_active = record_now(CLOCK_MONOTONIC);
		in->conns++;
		if (r->o.verbose)
			fprintf(stderr, "glimpse record: client %s: instance %" PRId64 " pid %d on port %u\n", key,
				in->id, in->app_pid, in->port);
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return in;
}

/* Sends in the signal that lets it finish: SIGTERM to rr record (which passes it
 * on and completes the trace), or to the app's process group. With r->mu held. */
static void signal_stop(struct recorder *r, struct instance *in)
{
	if (in->state != INST_RUNNING)
		return;
	in->state = INST_STOPPING;
	in->stop_sent = record_now(CLOCK_MONOTONIC);
	if (r->o.no_rr)
		kill(-in->pid, SIGTERM);
	else
		kill(in->pid, SIGTERM);
	if (r->o.verbose)
		fprintf(stderr, "glimpse record: stopping instance %" PRId64 " (client %s)\n", in->id, in->key);
}

/* Checks every instance once: reaps those that exited (and has their recording
 * finished), stops idle ones, kills those that ignored SIGTERM, frees the
 * finished. With r->mu held. */
static void watch(struct recorder *r)
{
	int64_t now = record_now(CLOCK_MONOTONIC);

	for (struct instance **pp = &r->insts, *in; (in = *pp);) {
		int st;

		if (in->state == INST_RUNNING && r->o.idle_s &&
		    now - __atomic_load_n(&in->last_active, __ATOMIC_RELAXED) > (int64_t)r->o.idle_s * NS_PER_S)
			signal_stop(r, in);
		if (in->state == INST_STOPPING && now - in->stop_sent > STOP_GRACE_NS)
			kill(-in->pid, SIGKILL);
		if ((in->state == INST_RUNNING || in->state == INST_STOPPING) &&
		    waitpid(in->pid, &st, WNOHANG) == in->pid) {
			kill(-in->pid, SIGKILL); /* anything the app left in its group */
			in->exit_status = st;
			in->ended_rt = record_now(CLOCK_REALTIME);
			in->state = INST_EXITED;
			if (r->o.verbose)
				fprintf(stderr, "glimpse record: instance %" PRId64 " exited (status 0x%x)\n", in->id, st);
			record_finish_start(r, in);
		}
		if ((in->state == INST_FAILED || in->state == INST_DONE) && in->conns == 0) {
			*pp = in->next;
			record_instance_free(in);
			continue;
		}
		pp = &in->next;
	}
}

static void *loop_thread(void *arg)
{
	struct recorder *r = arg;

	while (!r->stopping) {
		struct pollfd p = {.fd = r->wake[0], .events = POLLIN};

		poll(&p, 1, 100);
		pthread_mutex_lock(&r->mu);
		watch(r);
		pthread_mutex_unlock(&r->mu);
		record_warm_tick(r);
	}
	return NULL;
}

void record_instance_free(struct instance *in)
{
	free(in->key);
	free(in->log);
	free(in->trace_dir);
	free(in->error);
	free(in);
}

int recorder_start(const struct record_opts *o, struct recorder **out)
{
	struct recorder *r = xcalloc(1, sizeof(*r));
	struct sockaddr_storage sa = {0};
	socklen_t len = 0;
	int rc, one = 1;

	*out = NULL;
	r->o = *o;
	if (!r->o.replay_servers || r->o.replay_servers > WARM_MAX)
		r->o.replay_servers = r->o.replay_servers ? WARM_MAX : 4;
	if (!r->o.replay_mem_mb)
		r->o.replay_mem_mb = 2048;
	if (!r->o.replay_idle_s)
		r->o.replay_idle_s = 1800;
	r->lfd = r->wake[0] = r->wake[1] = -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->store_mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (!r->o.max_clients)
		r->o.max_clients = 16;
	if (!r->o.start_timeout_s)
		r->o.start_timeout_s = o->no_rr ? 30 : 120;
	if (!r->o.argv || !r->o.argv[0]) {
		rc = err_set(EINVAL, "no command to run (glimpse record ... -- CMD ARGS)");
		goto fail;
	}
	if (mkdir(r->o.dir, 0755) != 0 && errno != EEXIST) {
		rc = err_set(errno, "cannot create %s: %s", r->o.dir, strerror(errno));
		goto fail;
	}
	if (!o->no_rr) {
		snprintf(r->rr, sizeof(r->rr), "%s", o->rr ? o->rr : "rr");
		rc = rr_version(r->rr, r->rr_ver, sizeof(r->rr_ver));
		if (rc)
			goto fail;
		rc = record_blobs_dir(r);
		if (rc)
			goto fail;
	}
	if (o->db) {
		rc = store_open(o->db, &r->st);
		if (rc)
			goto fail;
	}
	rc = parse_addr(o->listen, &sa, &len);
	if (rc)
		goto fail;
	r->lfd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(r->lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited by accept */
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, len) != 0 || listen(r->lfd, 512) != 0) {
		rc = err_set(errno, "cannot listen on %s: %s", o->listen, strerror(errno));
		goto fail;
	}
	{
		struct sockaddr_in6 bound = {0}; /* sin6_port sits where sin_port does */
		socklen_t blen = sizeof(bound);

		if (getsockname(r->lfd, (struct sockaddr *)&bound, &blen) != 0) {
			rc = err_set(errno, "cannot listen on %s: %s", o->listen, strerror(errno));
			goto fail;
		}
		r->port = ntohs(bound.sin6_port);
	}
	if (pipe2(r->wake, O_CLOEXEC) != 0) {
		rc = err_set(errno, "cannot start the proxy: %s", strerror(errno));
		goto fail;
	}
	rc = relay_start(r);
	if (rc)
		goto fail;
	if (pthread_create(&r->loop, NULL, loop_thread, r) != 0) {
		rc = err_set(errno, "cannot start the proxy: %s", strerror(errno));
		r->stopping = true;
		relay_stop(r);
		goto fail;
	}
	*out = r;
	return 0;
fail:
	if (r->lfd >= 0)
		close(r->lfd);
	if (r->wake[0] >= 0) {
		close(r->wake[0]);
		close(r->wake[1]);
	}
	store_close(r->st);
	free(r);
	return rc;
}

uint16_t recorder_port(const struct recorder *r)
{
	return r->port;
}

int recorder_stop_one(struct recorder *r, int64_t id)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&r->mu);
	for (struct instance *in = r->insts; in; in = in->next)
		if (in->id == id && (in->state == INST_RUNNING || in->state == INST_STOPPING)) {
			signal_stop(r, in);
			rc = 0;
		}
	pthread_mutex_unlock(&r->mu);
	if (rc)
		err_set(ENOENT, "no running instance %" PRId64, id);
	return rc;
}

void recorder_stop(struct recorder *r)
{
	if (!r)
		return;
	r->stopping = true;
	if (write(r->wake[1], "x", 1) < 0)
		(void)0;
	pthread_join(r->loop, NULL);
	relay_stop(r); /* every connection closed; instances still starting give up */
	close(r->lfd);
	pthread_mutex_lock(&r->mu);
	for (struct instance *in = r->insts; in; in = in->next)
		signal_stop(r, in);
	while (r->insts) {
		watch(r);
		if (!r->insts)
			break;
		pthread_mutex_unlock(&r->mu);
		usleep(50000);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	record_warm_stop_all(r);
	close(r->wake[0]);
	close(r->wake[1]);
	store_close(r->st);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->store_mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}
