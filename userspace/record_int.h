/* record_int.h - what record.c (the proxy and instances) and record_finish.c (what
 * happens to a recording once its instance stopped) share; not for other modules.
 */
#ifndef GLIMPSE_RECORD_INT_H
#define GLIMPSE_RECORD_INT_H
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "record.h"

#define NS_PER_S 1000000000LL
#define WARM_MAX 64			/* warm replay servers kept at most (o.replay_servers) */

enum inst_state {
	INST_STARTING,	/* its process is starting; connections for its key wait */
	INST_RUNNING,
	INST_STOPPING,	/* SIGTERM sent */
	INST_EXITED,	/* reaped; its recording is being finished */
	INST_FAILED,	/* did not start */
	INST_DONE,	/* finished: freed once no connection uses it */
};

struct instance {
	struct instance *next;
	int64_t id;		/* recordings.id (or a counter without a store) */
	char *key;
	enum inst_state state;
	pid_t pid;		/* our child: rr record, or the app */
	pid_t app_pid;		/* the app itself */
	uint16_t port;
	int conns;		/* connections relayed now */
	int64_t last_active;	/* CLOCK_MONOTONIC ns of the last byte relayed (atomic) */
	int64_t started_rt, ended_rt, clock_offset, ready_mono, stop_sent;
	int exit_status;
	char *log;		/* the instance's stdout and stderr */
	char *trace_dir;	/* rr's trace directory */
	char *error;
	struct recorder *recorder;	/* for the thread finishing it */
};

struct relay;

struct warm {
	int64_t id;		/* recordings.id */
	pid_t pid;		/* rr replay -s */
	uint16_t port;
	int64_t started;	/* CLOCK_MONOTONIC ns */
	int64_t used;		/* CLOCK_MONOTONIC ns a debugger was last seen attached */
	int64_t rss;		/* bytes resident, rr and its replayed processes */
};

struct recorder {
	struct record_opts o;
	int lfd, wake[2];
	uint16_t port;
	pthread_t loop;
	struct relay *relay;	/* record_relay.c */
	pthread_mutex_t mu;	/* the instance list, nconns */
	pthread_cond_t cv;
	struct instance *insts;
	int64_t next_id;
	bool stopping;
	struct store *st;
	pthread_mutex_t store_mu;
	char rr[PATH_MAX];
	char rr_ver[128];
	struct warm warm[WARM_MAX];	/* guarded by mu; o.replay_servers used */
	int64_t warm_checked;		/* CLOCK_MONOTONIC ns of the last use and memory check */
};

int64_t record_now(clockid_t c);
/* A free loopback TCP port (free when asked), or 0. */
uint16_t record_free_port(void);
/* A connected socket to 127.0.0.1:port, or -1. */
int record_connect_port(uint16_t port);
/* The last max bytes of a file, trailing newlines dropped (caller frees; "" if none). */
char *record_log_tail(const char *path, size_t max);
/* What rr said when it failed, from its log: its FATAL, assertion and mismatch
 * lines (at most 3), else the log's end. Caller frees. */
char *record_rr_failure(const char *log);
/* Forks and execs argv with env in a new session, stdout and stderr appended to
 * log. Returns the pid or -1. */
pid_t record_spawn(char *const *argv, char *const *env, const char *log);
/* record_spawn, the child bound to CPU cpu (none when cpu < 0). */
pid_t record_spawn_on_cpu(char *const *argv, char *const *env, const char *log, int cpu);
/* rr replay's failure said the APIC ID in CPUID leaf 1 differs from the
 * recording's (every mismatched register differs only in bits 31:24): true, with
 * the APIC IDs of the replay and the recording. */
bool record_apic_drift(const char *why, unsigned *replay, unsigned *recorded);
/* The online CPU whose CPUID leaf 1 APIC ID is apic now, or -1 (the host may
 * move a VM's CPUs: the answer holds for a while, not for ever). */
int record_cpu_with_apic(unsigned apic);
/* A TCP connection to or from local port is established now (/proc/net/tcp{,6}):
 * a debugger is attached to the replay server listening there. */
bool record_port_in_use(uint16_t port);
/* The resident memory, in bytes, of the processes in process group pgid. */
int64_t record_group_rss(pid_t pgid);
void record_instance_free(struct instance *in);
/* The client key of a new connection: its address ip, or a header or cookie of
 * the request whose start is head (NUL-terminated); the address when that header
 * or cookie is missing. Caller frees. */
char *record_client_key(const struct recorder *r, const char *head, const char *ip);
/* The running instance of key with a connection counted, or NULL when there is
 * none running (none yet, or one starting). Never blocks on a start. */
struct instance *record_instance_get(struct recorder *r, const char *key);
/* Gets the running instance of key, or starts one (waits for one starting).
 * Returns it with a connection counted, or NULL with *status and a message
 * (caller frees; 503 over the client limit, 502 when the app did not start). */
struct instance *record_instance_for(struct recorder *r, const char *key, int *status, char **msg);
/* Uncounts a connection of in. */
void record_instance_release(struct recorder *r, struct instance *in);

/* record_relay.c */
/* Starts the relay thread on r->lfd (accept, key, relay). Returns 0 or a negative
 * code with a message. */
int relay_start(struct recorder *r);
/* Ends the relay thread (r->stopping set): closes every connection, waits for the
 * starter threads. */
void relay_stop(struct recorder *r);

/* record_finish.c */
int record_blobs_dir(struct recorder *r);
/* After an instance started (rc 0) or failed: its row's status, pids and path. */
void record_register_running(struct recorder *r, struct instance *in, int rc);
/* in has exited: finishes its recording in a thread of its own and sets it
 * INST_DONE (with r->mu held). */
void record_finish_start(struct recorder *r, struct instance *in);
void record_warm_tick(struct recorder *r);
void record_warm_stop_all(struct recorder *r);

#endif
