/* record_cmd.c - `glimpse record`: the per-client recording proxy from the command
 * line (record.c does the work), and `glimpse record --stop ID`, which stops one
 * recording of a running proxy the way rr finishes cleanly (SIGTERM to rr record).
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "record.h"
#include "store.h"

static const char usage_text[] =
	"usage: glimpse record --listen ADDR [--key ip|header:NAME|cookie:NAME] [--idle S] [--max-clients N]\n"
	"                      [--dir DIR] [--rr PATH] [--no-rr] [--db FILE] [--start-timeout S]\n"
	"                      [--replay-servers N] [--replay-mem MB] [--replay-idle S] [-v] -- CMD ARGS...\n"
	"       glimpse record --stop ID [--db FILE]\n"
	"\n"
	"A proxy on ADDR that starts one instance of a web app per client, under `rr record`, so\n"
	"each client's session becomes its own recording (see glimpse replay). The instance gets a\n"
	"free loopback port in place of {port} in CMD and ARGS and in $PORT; the proxy waits until\n"
	"it accepts, then relays that client's connections to it byte for byte (keep-alive and\n"
	"WebSocket upgrades included; only the key is read from a connection's first request).\n"
	"Snapshots and trace events taken of a recorded process point at their moment in it.\n"
	"\n"
	"  --listen ADDR        HOST:PORT to listen on (PORT 0: any; the port is printed)\n"
	"  --key K              what tells clients apart: ip (default), header:NAME, cookie:NAME\n"
	"                       (a connection without that header or cookie is keyed by its address)\n"
	"  --idle S             stop a client's instance after S seconds without traffic (default 300; 0: never)\n"
	"  --max-clients N      instances at once (default 16); more clients get 503 with a message\n"
	"  --dir DIR            recordings, instance logs, binaries stored once (default glimpse-recordings)\n"
	"  --rr PATH            rr to use (default: rr on PATH; -W is passed for rr.soft)\n"
	"  --no-rr              run the instances without recording them\n"
	"  --db FILE            store recordings are registered in (default $GLIMPSE_DB or glimpse.db)\n"
	"  --start-timeout S    for an instance's port to accept (default 30, 120 under rr)\n"
	"  --replay-servers N   replay servers kept warm (default 4, at most 64): the least recently\n"
	"                       used makes room\n"
	"  --replay-mem MB      their resident memory together (default 2048): over it, the least\n"
	"                       recently used stop\n"
	"  --replay-idle S      one stops after S seconds with no debugger attached (default 1800)\n"
	"  -v, --verbose        a line per instance started, stopped and recording finished\n"
	"  --stop ID            stop recording ID of a running glimpse record (SIGTERM to its rr)\n"
	"\n"
	"A recording is stopped by --idle, --stop, POST /api/recordings/ID/stop, and on SIGINT or\n"
	"SIGTERM to glimpse record (which stops every instance and leaves no process behind); then\n"
	"it is packed (rr pack), archived (tar + zstd; binaries stored once under DIR/binaries),\n"
	"registered in the recordings table, and a replay server is started on it at once, which\n"
	"proves it replayable on this machine (or the table says why not).\n";

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* --stop ID: SIGTERM to the rr record of a recording in progress. */
static int stop_recording(const char *db, const char *id_text)
{
	struct store *st;
	uint64_t id;
	int64_t rr_pid = 0;
	int rc;

	if (!cli_parse_u64(id_text, 1, INT64_MAX, &id))
		return cli_usage_error("record", "--stop: '%s' is not a recording id", id_text);
	rc = store_open(db, &st);
	if (rc)
		return cli_fail(rc);
	rc = store_run(st, "SELECT rr_pid FROM recordings WHERE id = ? AND status = 'recording'", &rr_pid, "i",
		       (int64_t)id);
	store_close(st);
	if (rc)
		return cli_fail(rc);
	if (rr_pid <= 0)
		return cli_fail(err_set(ENOENT, "recording %" PRIu64 " is not being recorded", id));
	if (kill((pid_t)rr_pid, SIGTERM) != 0)
		return cli_fail(err_set(errno, "cannot stop recording %" PRIu64 " (rr pid %" PRId64 "): %s", id,
					rr_pid, strerror(errno)));
	printf("recording %" PRIu64 ": SIGTERM sent to rr record (pid %" PRId64 "); it is finished in the background\n",
	       id, rr_pid);
	return 0;
}

static int parse_key(struct record_opts *o, const char *k)
{
	if (strcmp(k, "ip") == 0) {
		o->key = RECORD_KEY_IP;
	} else if (strncmp(k, "header:", 7) == 0 && k[7]) {
		o->key = RECORD_KEY_HEADER;
		o->key_name = k + 7;
	} else if (strncmp(k, "cookie:", 7) == 0 && k[7]) {
		o->key = RECORD_KEY_COOKIE;
		o->key_name = k + 7;
	} else {
		return -1;
	}
	return 0;
}

static int run(int argc, char **argv)
{
	enum { O_DIR = 256, O_RR, O_NO_RR, O_DB, O_IDLE, O_MAX, O_STOP, O_TIMEOUT, O_KEY, O_LISTEN, O_RSERV, O_RMEM, O_RIDLE };
	static const struct option opts[] = {
		{"listen", required_argument, NULL, O_LISTEN}, {"key", required_argument, NULL, O_KEY},
		{"idle", required_argument, NULL, O_IDLE},     {"max-clients", required_argument, NULL, O_MAX},
		{"dir", required_argument, NULL, O_DIR},       {"rr", required_argument, NULL, O_RR},
		{"no-rr", no_argument, NULL, O_NO_RR},         {"db", required_argument, NULL, O_DB},
		{"stop", required_argument, NULL, O_STOP},     {"start-timeout", required_argument, NULL, O_TIMEOUT},
		{"replay-servers", required_argument, NULL, O_RSERV}, {"replay-mem", required_argument, NULL, O_RMEM},
		{"replay-idle", required_argument, NULL, O_RIDLE},
		{"verbose", no_argument, NULL, 'v'},           {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct record_opts o = {.idle_s = 300, .max_clients = 16, .dir = "glimpse-recordings"};
	const char *stop = NULL, *db = getenv("GLIMPSE_DB");
	struct recorder *r;
	struct sigaction sa = {.sa_handler = on_signal};
	uint64_t v;
	int c, rc;

	if (!db)
		db = STORE_DEFAULT_PATH;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: o.listen = optarg; break;
		case O_KEY:
			if (parse_key(&o, optarg))
				return cli_usage_error("record", "--key: expected ip, header:NAME or cookie:NAME");
			break;
		case O_IDLE:
			if (!cli_parse_u64(optarg, 0, 86400 * 365, &v))
				return cli_usage_error("record", "--idle: '%s' is not a number of seconds", optarg);
			o.idle_s = (unsigned int)v;
			break;
		case O_MAX:
			if (!cli_parse_u64(optarg, 1, 10000, &v))
				return cli_usage_error("record", "--max-clients: '%s' is not in 1..10000", optarg);
			o.max_clients = (unsigned int)v;
			break;
		case O_TIMEOUT:
			if (!cli_parse_u64(optarg, 1, 3600, &v))
				return cli_usage_error("record", "--start-timeout: '%s' is not in 1..3600", optarg);
			o.start_timeout_s = (unsigned int)v;
			break;
		case O_RSERV:
			if (!cli_parse_u64(optarg, 1, 64, &v))
				return cli_usage_error("record", "--replay-servers: '%s' is not in 1..64", optarg);
			o.replay_servers = (unsigned int)v;
			break;
		case O_RMEM:
			if (!cli_parse_u64(optarg, 1, 1 << 20, &v))
				return cli_usage_error("record", "--replay-mem: '%s' is not a number of MiB", optarg);
			o.replay_mem_mb = (unsigned int)v;
			break;
		case O_RIDLE:
			if (!cli_parse_u64(optarg, 1, 86400 * 365, &v))
				return cli_usage_error("record", "--replay-idle: '%s' is not a number of seconds", optarg);
			o.replay_idle_s = (unsigned int)v;
			break;
		case O_DIR: o.dir = optarg; break;
		case O_RR: o.rr = optarg; break;
		case O_NO_RR: o.no_rr = true; break;
		case O_DB: db = optarg; break;
		case O_STOP: stop = optarg; break;
		case 'v': o.verbose = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_usage_error("record", "unknown option");
		}
	}
	if (stop)
		return stop_recording(db, stop);
	if (!o.listen)
		return cli_usage_error("record", "--listen ADDR is required");
	if (optind >= argc)
		return cli_usage_error("record", "no command to run: glimpse record --listen ADDR -- CMD ARGS...");
	o.argv = argv + optind;
	o.db = o.no_rr ? NULL : db;
	rc = recorder_start(&o, &r);
	if (rc)
		return cli_fail(rc);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	printf("glimpse record: listening on port %u, %s\n", recorder_port(r),
	       o.no_rr ? "instances not recorded (--no-rr)" : "recording every client's instance under rr");
	fflush(stdout);
	while (!stop_signal)
		pause();
	fprintf(stderr, "glimpse record: stopping (signal %d): finishing recordings\n", (int)stop_signal);
	recorder_stop(r);
	return 0;
}

const struct cmd cmd_record = {
	.name = "record",
	.run = run,
	.summary = "record each client's instance of a web app under rr, behind a proxy",
	.usage = usage_text,
};
