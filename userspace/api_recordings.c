/* api_recordings.c - /api/recordings: the rr recordings glimpse record made (listed
 * and one by one), stopping one in progress, downloading one as a self-contained
 * tar + zstd (binaries included: `tar --zstd -xf` then `rr replay -W DIR`), and a
 * replay server at a snapshot's or trace event's moment with the commands to attach
 * gdb, Delve or VS Code to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "archive.h"
#include "err.h"
#include "json.h"
#include "jsonparse.h"
#include "replay.h"
#include "store.h"

#define RECORDING_JSON                                                                                      \
	"SELECT json_object('id', id, 'client_key', client_key, 'command', json(command), 'build_id', build_id," \
	" 'go_version', go_version, 'rr_version', rr_version, 'started', started, 'ended', ended,"              \
	" 'bytes_raw', bytes_raw, 'bytes_packed', bytes_packed, 'bytes_binaries', bytes_binaries,"              \
	" 'path', path, 'archive', archive, 'status', status,"                                                  \
	" 'replayable', json(CASE replayable WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE 'null' END),"        \
	" 'why_not', why_not, 'pid', pid, 'first_event', first_event, 'events', events,"                        \
	" 'replay_addr', replay_addr,"                                                                          \
	" 'snapshots', (SELECT count(*) FROM snapshots s WHERE s.recording = recordings.id),"                   \
	" 'trace_events', (SELECT count(*) FROM events e WHERE e.recording = recordings.id))"                   \
	" FROM recordings"

static bool recording_id(struct http_req *r, struct http_resp *w, int64_t *id)
{
	char *end;
	long long v = strtoll(r->params[0], &end, 10);

	if (*end || v <= 0) {
		http_error(w, 400, "'%s' is not a recording id", r->params[0]);
		return false;
	}
	*id = v;
	return true;
}

static void list_recordings(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p = {":limit", SQLRO_INT, 100, 0, NULL};

	if (!http_query_int(r, w, "limit", 1, 10000, &p.i))
		return;
	buf_puts(&w->body, "{\"recordings\":[");
	if (api_json_rows(r->app, w, &w->body, RECORDING_JSON " ORDER BY id DESC LIMIT :limit", &p, 1) < 0)
		return;
	buf_puts(&w->body, "]}\n");
}

static void get_recording(struct http_req *r, struct http_resp *w)
{
	struct sqlro_param p = {":id", SQLRO_INT, 0, 0, NULL};
	long n;

	if (!recording_id(r, w, &p.i))
		return;
	n = api_json_rows(r->app, w, &w->body, RECORDING_JSON " WHERE id = :id", &p, 1);
	if (n == 0)
		http_error(w, 404, "no recording %" PRId64, p.i);
	else if (n > 0)
		buf_putc(&w->body, '\n');
}

/* Stops a recording in progress the way rr finishes its trace: SIGTERM to rr
 * record (whichever glimpse record runs it then packs and registers it). */
static void stop_recording(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	int64_t id, rr_pid = 0;
	int rc;

	if (!recording_id(r, w, &id))
		return;
	pthread_mutex_lock(&sv->write_lock);
	rc = store_run(sv->st, "SELECT rr_pid FROM recordings WHERE id = ? AND status = 'recording'", &rr_pid, "i",
		       id);
	pthread_mutex_unlock(&sv->write_lock);
	if (rc) {
		http_error(w, 500, "%s", err_msg(rc));
		return;
	}
	if (rr_pid <= 0) {
		http_error(w, 409, "recording %" PRId64 " is not in progress", id);
		return;
	}
	if (kill((pid_t)rr_pid, SIGTERM) != 0) {
		http_error(w, 500, "cannot signal rr record (pid %" PRId64 "): %s", rr_pid, strerror(errno));
		return;
	}
	w->status = 202;
	buf_printf(&w->body, "{\"id\":%" PRId64 ",\"stopping\":true}\n", id);
}

/* A stream of an open file, closed at the end. */
static ssize_t file_read(void *ctx, char *buf, size_t max)
{
	ssize_t n = read((int)(intptr_t)ctx, buf, max);

	return n > 0 ? n : -1;
}

static void file_done(void *ctx)
{
	close((int)(intptr_t)ctx);
}

/* The recording as one tar + zstd file with its binaries, made once next to its
 * archive (NAME.full.tar.zst), streamed. */
static void download_recording(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	struct archive_stats as;
	struct buf full = {0}, tmpdir = {0}, blobs = {0}, hdr = {0};
	char *archive = NULL, *slash;
	int64_t id;
	int fd, rc;

	if (!recording_id(r, w, &id))
		return;
	{
		sqlite3_stmt *s;

		pthread_mutex_lock(&sv->write_lock);
		if (sqlite3_prepare_v2(store_db(sv->st), "SELECT archive FROM recordings WHERE id = ? AND status = 'done'",
				       -1, &s, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(s, 1, id);
			if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
				archive = xstrdup((const char *)sqlite3_column_text(s, 0));
			sqlite3_finalize(s);
		}
		pthread_mutex_unlock(&sv->write_lock);
	}
	if (!archive) {
		http_error(w, 404, "no finished recording %" PRId64 " with an archive", id);
		return;
	}
	buf_printf(&full, "%.*s.full.tar.zst", (int)(strlen(archive) - 8), archive);
	fd = open(full.p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		buf_printf(&tmpdir, "%s.unpacked-%d", archive, (int)gettid());
		slash = strrchr(archive, '/');
		buf_printf(&blobs, "%.*s/binaries", slash ? (int)(slash - archive) : 1, slash ? archive : ".");
		rc = archive_unpack(archive, blobs.p, tmpdir.p);
		if (!rc)
			rc = archive_pack(tmpdir.p, full.p, NULL, &as);
		archive_remove_dir(tmpdir.p); /* the unpacked copy made just now */
		if (rc) {
			http_error(w, 500, "%s", err_msg(rc));
			goto out;
		}
		fd = open(full.p, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		http_error(w, 500, "cannot open %s: %s", full.p, strerror(errno));
		goto out;
	}
	w->type = "application/zstd";
	buf_printf(&hdr, "attachment; filename=\"recording-%" PRId64 ".tar.zst\"", id);
	http_add_header(w, "Content-Disposition", hdr.p);
	w->stream = (struct http_stream){file_read, file_done, (void *)(intptr_t)fd};
out:
	free(archive);
	buf_free(&full);
	buf_free(&tmpdir);
	buf_free(&blobs);
	buf_free(&hdr);
}

int api_replay_status(int rc)
{
	return rc == -ENOENT ? 404 : rc == -EINVAL ? 400 : 409;
}

bool api_replay_moment(struct http_req *r, struct http_resp *w, int64_t id, int64_t *event)
{
	struct serve *sv = r->app;
	struct jv *body = NULL;
	const char *at = NULL;
	char err[256];
	int rc = 0;

	*event = 0;
	if (r->body_len) {
		const struct jv *v;

		if (jv_parse(r->body, r->body_len, &body, err, sizeof(err)) != 0 || jv_type(body) != JV_OBJ) {
			http_error(w, 400, "body: expected a JSON object: %s", err);
			jv_free(body);
			return false;
		}
		v = jv_get(body, "at");
		if (v && jv_type(v) == JV_STR)
			at = jv_str(v);
		else if (v)
			rc = err_set(EINVAL, "at: expected \"snapshot:ID\" or \"event:ID\"");
		v = jv_get(body, "event");
		if (v && (!jv_is_int(v) || jv_int(v) < 1))
			rc = err_set(EINVAL, "event: expected an rr event number");
		else if (v)
			*event = jv_int(v);
	}
	if (at && !rc) {
		pthread_mutex_lock(&sv->write_lock);
		rc = replay_moment(sv->st, id, at, event);
		pthread_mutex_unlock(&sv->write_lock);
	}
	jv_free(body);
	if (rc)
		http_error(w, api_replay_status(rc), "%s", err_msg(rc));
	return rc == 0;
}

/* {"at": "snapshot:ID" | "event:ID"} or {"event": N} (or nothing: the replay's
 * start) -> a gdbserver there and how to attach. */
static void replay_recording(struct http_req *r, struct http_resp *w)
{
	struct serve *sv = r->app;
	struct replay_server srv;
	const char *rr = getenv("GLIMPSE_RR");
	int64_t id, event;
	struct json j;
	int rc;

	if (!recording_id(r, w, &id) || !api_replay_moment(r, w, id, &event))
		return;
	pthread_mutex_lock(&sv->write_lock);
	rc = replay_open(sv->st, rr ? rr : "rr", id, event, &srv);
	pthread_mutex_unlock(&sv->write_lock);
	if (rc) {
		http_error(w, api_replay_status(rc), "%s", err_msg(rc));
		return;
	}
	json_init(&j, &w->body);
	json_obj(&j);
	json_kv_int(&j, "recording", id);
	json_kv_int(&j, "event", srv.event);
	json_kv_str(&j, "gdbserver", srv.addr);
	json_kv_int(&j, "pid", srv.pid);
	json_kv_bool(&j, "warm", srv.warm);
	json_key(&j, "exe");
	if (srv.exe)
		json_str(&j, srv.exe);
	else
		json_null(&j);
	json_key(&j, "commands");
	json_obj(&j);
	{
		struct buf c = {0};

		buf_printf(&c, "gdb -iex 'set auto-load safe-path /' -iex 'set sysroot /'%s%s %s -ex 'target extended-remote %s'",
			   srv.gdb_script ? " -x " : "", srv.gdb_script ? srv.gdb_script : "", srv.exe ? srv.exe : "",
			   srv.addr);
		if (srv.warm)
			buf_printf(&c, " -ex 'run %" PRId64 "'", srv.event);
		json_kv_str(&j, "gdb", c.p);
		buf_reset(&c);
		buf_printf(&c, "glimpse replay %" PRId64 " --event %" PRId64 " --dlv", id, srv.event);
		json_kv_str(&j, "dlv", c.p);
		buf_reset(&c);
		buf_printf(&c, "glimpse replay %" PRId64 " --event %" PRId64 " --vscode DIR", id, srv.event);
		json_kv_str(&j, "vscode", c.p);
		buf_free(&c);
	}
	json_end(&j);
	json_end(&j);
	buf_putc(&w->body, '\n');
	replay_server_free(&srv);
}

const struct http_route api_recording_routes[] = {
	{"GET", "/api/recordings", list_recordings, false},
	{"GET", "/api/recordings/*", get_recording, false},
	{"POST", "/api/recordings/*/stop", stop_recording, false},
	{"GET", "/api/recordings/*/download", download_recording, false},
	{"POST", "/api/recordings/*/replay", replay_recording, false},
};
const size_t api_recording_nroutes = sizeof(api_recording_routes) / sizeof(api_recording_routes[0]);
