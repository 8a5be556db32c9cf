/* replay.h - reaching a moment of a recording (glimpse replay, POST
 * /api/recordings/ID/replay): the rr event of a snapshot or trace event, and a
 * gdbserver (rr replay) there.
 */
#ifndef GLIMPSE_REPLAY_H
#define GLIMPSE_REPLAY_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct buf;

struct replay_server {
	char *addr;		/* "127.0.0.1:PORT", gdb remote protocol */
	pid_t pid;		/* rr replay */
	int64_t event;		/* the moment asked for */
	bool warm;		/* the server was running already: send `run EVENT` after connecting */
	char *exe;		/* the recorded program's binary in the packed trace, or NULL */
	char *gdb_script;	/* defines glimpse-goroutine GOID for gdb (-x), or NULL */
};

/* The rr event of at ("snapshot:ID" or "event:ID"), which must belong to recording.
 * Returns 0, or a negative code with a message (not of that recording, not linked
 * yet, no such row). */
int replay_moment(struct store *st, int64_t recording, const char *at, int64_t *event);
/* A gdbserver on recording id at event (0: where its replay starts): the warm
 * one if it runs and can seek there, else a new rr replay (recorded in the row).
 * Returns 0 and *out (free with replay_server_free), or a negative code saying
 * why (not done, not replayable here with rr's words, archive missing). */
int replay_open(struct store *st, const char *rr, int64_t id, int64_t event, struct replay_server *out);
/* Ends recording id's replay server pid (one that could not reach an event: it
 * left its course) and forgets it, so that the next replay_open starts a new one. */
void replay_forget(struct store *st, int64_t id, pid_t pid);
void replay_server_free(struct replay_server *s);
/* Moves the gdb remote protocol bytes a debugger sent from in to out: complete
 * packets (an incomplete one stays in in) and what lies between them, with
 * Delve's `qRRCmd:<hex of "when">` rewritten to the `qRRCmd:when:-1` rr 5.9
 * wants (checksum made again). Returns how many packets were rewritten. */
int replay_rr_packets(struct buf *in, struct buf *out);

#endif
