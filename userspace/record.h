/* record.h - glimpse record: a proxy that starts one instance of a Go web app per
 * client (under `rr record` unless told not to) and relays that client's bytes to
 * it, and the recordings it leaves: rr pack, tar + zstd with binaries stored once,
 * a recordings row, a warm replay server proving it replayable.
 *
 * The proxy is a byte relay: it reads a new connection's first request headers only
 * to find the client key, then copies bytes unchanged both ways (keep-alive and
 * WebSocket upgrades pass untouched). Instances listen on loopback ports that only
 * the proxy hands out; a connection reaches the instance of its own key only.
 */
#ifndef GLIMPSE_RECORD_H
#define GLIMPSE_RECORD_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct store;

enum record_key {
	RECORD_KEY_IP,		/* the client's address */
	RECORD_KEY_HEADER,	/* a request header's value */
	RECORD_KEY_COOKIE,	/* a cookie's value */
};

struct record_opts {
	const char *listen;		/* "HOST:PORT" (PORT 0: any free port) */
	enum record_key key;
	const char *key_name;		/* the header or cookie name */
	unsigned int idle_s;		/* stop an instance after this long without traffic; 0: never */
	unsigned int max_clients;	/* instances at once; more clients get 503 */
	unsigned int start_timeout_s;	/* for the instance's port to accept */
	const char *dir;		/* recordings, instance logs, the binaries store */
	const char *rr;			/* rr to run; NULL: "rr" on PATH */
	bool no_rr;			/* run instances as they are, record nothing */
	const char *db;			/* the store recordings are registered in; NULL: none */
	char *const *argv;		/* the app's command line, NULL-terminated; "{port}" is replaced */
	bool verbose;			/* one line on stderr per instance started and stopped */
	unsigned int replay_servers;	/* warm replay servers kept (0: 4; at most 64) */
	unsigned int replay_mem_mb;	/* their resident memory together (0: 2048 MiB) */
	unsigned int replay_idle_s;	/* one stops after this long without a debugger (0: 1800 s) */
};

struct recorder;

/* Listens on o->listen and starts serving in threads of its own. Returns 0 and
 * *out, or a negative code with a message (bad address, address in use, no
 * working rr). o's strings must outlive the recorder. */
int recorder_start(const struct record_opts *o, struct recorder **out);
/* The port the proxy listens on. */
uint16_t recorder_port(const struct recorder *r);
/* Stops the instance recorded as recording id (or, with --no-rr, instance id)
 * by SIGTERM; its recording is finished in the background. Returns 0 or -ENOENT. */
int recorder_stop_one(struct recorder *r, int64_t id);
/* Stops every instance, finishes their recordings (pack, compress, register,
 * replay check), stops the warm replay servers, frees r. No child is left. */
void recorder_stop(struct recorder *r);

/* rr on this machine: the version line of `rr --version` at path (NULL: "rr" on
 * PATH) into ver (size n). Returns 0, or a negative code saying why none runs. */
int rr_version(const char *rr, char *ver, size_t n);

/* The last event of rr trace dir whose real_time (the recorder's CLOCK_MONOTONIC,
 * seconds) is at or before mono_ns, through `rr dump`. 0 when none; negative on
 * failure. */
int64_t rr_event_at(const char *rr, const char *trace_dir, int64_t mono_ns);

#endif
