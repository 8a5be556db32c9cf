-- glimpse store, schema version 4 (STORE_SCHEMA_VERSION in store.h).
-- Timestamps are nanoseconds since the Unix epoch (UTC). pcs are link-time addresses
-- (as `go tool objdump` shows them; equal to run-time addresses except in PIE binaries).
-- Applied by store.c inside one transaction when the database is new, and after the
-- upgrade steps (schema/upgrade-N.sql) when it is older: tables and indexes are created
-- if missing, views are dropped and made again (they hold no data).
-- Views named for Grafana give times as epoch milliseconds in a column named `time`.

CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS binaries (
	build_id   TEXT PRIMARY KEY,
	path       TEXT NOT NULL,
	go_version TEXT NOT NULL,
	stripped   INTEGER NOT NULL,
	pie        INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS processes (
	id         INTEGER PRIMARY KEY,
	pid        INTEGER NOT NULL,
	build_id   TEXT NOT NULL REFERENCES binaries(build_id),
	host       TEXT NOT NULL,
	started    INTEGER NOT NULL,	-- process start time
	UNIQUE (host, pid, started)
);

CREATE TABLE IF NOT EXISTS snapshots (
	id          INTEGER PRIMARY KEY,
	process     INTEGER NOT NULL REFERENCES processes(id),
	taken_at    INTEGER NOT NULL,	-- when the capture started
	duration_us INTEGER NOT NULL,	-- how long reading the goroutines took (the process never stops)
	decode_us   INTEGER NOT NULL,	-- unwinding, symbolizing and decoding afterwards, in glimpse
	reader      TEXT NOT NULL,	-- 'bpf' or 'process_vm_readv'
	goroutines  INTEGER NOT NULL,
	torn        INTEGER NOT NULL,	-- goroutines that changed while being copied
	options     TEXT,		-- JSON of the limits used
	recording   INTEGER,		-- recordings.id when taken during a recording
	rr_event    INTEGER		-- the rr event of that moment
);

-- Identical stacks are stored once: 10k goroutines usually share a few hundred.
CREATE TABLE IF NOT EXISTS stacks (
	id    INTEGER PRIMARY KEY,
	hash  TEXT NOT NULL UNIQUE,	-- of build id + pcs
	depth INTEGER NOT NULL,
	top   TEXT,			-- innermost function
	top_func TEXT			-- the stack's function as pprof and Go tracebacks show it: the innermost
					-- frame outside the runtime (go_runtime_frame in goruntime.h); for the
					-- runtime's own goroutines the outermost frame but runtime.goexit
);

CREATE TABLE IF NOT EXISTS frames (
	stack   INTEGER NOT NULL REFERENCES stacks(id),
	depth   INTEGER NOT NULL,	-- 0 = innermost, inlined frames included
	func    TEXT NOT NULL,
	file    TEXT NOT NULL,
	line    INTEGER NOT NULL,
	pc      INTEGER NOT NULL,
	inlined INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (stack, depth)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS goroutines (
	snapshot      INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
	goid          INTEGER NOT NULL,
	status        TEXT NOT NULL,	-- runnable, running, syscall, waiting, ...
	wait_reason   TEXT,		-- as the runtime names it: 'chan receive', 'select', 'sleep', ...
	wait_since_ns INTEGER,		-- when it started waiting, where the runtime records it (after a GC)
	created_by    TEXT,		-- function containing the go statement
	created_at    TEXT,		-- file:line of the go statement
	parent_goid   INTEGER,
	labels        TEXT,		-- pprof labels, JSON object
	thread        INTEGER,		-- OS thread id for running / syscall goroutines
	stack_id      INTEGER REFERENCES stacks(id),
	stack_note    TEXT,		-- why the stack is missing or partial, else NULL
	torn          INTEGER NOT NULL DEFAULT 0,
	-- The goroutine's variables, innermost frame first, one JSON array each:
	-- [depth, name, kind, type, truncated, value], value (JSON) left out when it is
	-- unavailable at that pc; NULL when none were decoded. Read them through the
	-- variables view. One row per goroutine instead of one per variable: storing a
	-- 10k-goroutine snapshot's 60k variables as rows of their own took 100 ms.
	vars          TEXT,
	PRIMARY KEY (snapshot, goid)
) WITHOUT ROWID;

-- Every decoded variable, a row each: goroutines.vars unfolded.
DROP VIEW IF EXISTS variables;
CREATE VIEW variables AS
SELECT g.snapshot, g.goid,
       v.value ->> 0 AS depth,		-- frame depth (as in frames.depth)
       v.value ->> 1 AS name,
       v.value ->> 2 AS kind,		-- param, result, local
       v.value ->> 3 AS type,
       v.value -> 5 AS value,		-- JSON; NULL when unavailable at that pc
       v.value ->> 4 AS truncated,
       v.key AS seq			-- its place among the goroutine's variables
FROM goroutines g, json_each(g.vars) v
WHERE g.vars IS NOT NULL;

CREATE INDEX IF NOT EXISTS goroutines_by_stack ON goroutines (stack_id);
CREATE INDEX IF NOT EXISTS goroutines_by_status ON goroutines (snapshot, status, wait_reason);
CREATE INDEX IF NOT EXISTS snapshots_by_process ON snapshots (process, taken_at);
CREATE INDEX IF NOT EXISTS frames_by_func ON frames (func);

-- Goroutines grouped by identical stack, like pprof's debug=1.
DROP VIEW IF EXISTS goroutine_groups;
CREATE VIEW goroutine_groups AS
SELECT g.snapshot, g.stack_id, count(*) AS goroutines, g.status, g.wait_reason,
       s.top_func, s.top, min(g.goid) AS example_goid
FROM goroutines g LEFT JOIN stacks s ON s.id = g.stack_id
GROUP BY g.snapshot, g.stack_id, g.status, g.wait_reason
ORDER BY g.snapshot, goroutines DESC;

-- Goroutines that are blocked, with why and for how long (where the runtime knows).
DROP VIEW IF EXISTS blocked_goroutines;
CREATE VIEW blocked_goroutines AS
SELECT g.snapshot, g.goid, g.wait_reason, s.top_func, s.top,
       CASE WHEN g.wait_since_ns IS NOT NULL THEN (sn.taken_at - g.wait_since_ns) / 1000000 END AS waiting_ms,
       g.created_by, g.labels
FROM goroutines g JOIN snapshots sn ON sn.id = g.snapshot LEFT JOIN stacks s ON s.id = g.stack_id
WHERE g.status = 'waiting'
ORDER BY waiting_ms DESC;

-- One line per snapshot with its process.
DROP VIEW IF EXISTS snapshot_summary;
CREATE VIEW snapshot_summary AS
SELECT sn.id, sn.taken_at, sn.duration_us, sn.reader, sn.goroutines, sn.torn,
       p.pid, p.host, b.path, b.go_version
FROM snapshots sn JOIN processes p ON p.id = sn.process JOIN binaries b ON b.build_id = p.build_id;

-- Grafana: goroutines per state in each snapshot.
DROP VIEW IF EXISTS goroutines_by_state;
CREATE VIEW goroutines_by_state AS
SELECT sn.id AS snapshot, p.pid, sn.taken_at / 1000000 AS time, g.status, count(*) AS goroutines
FROM snapshots sn JOIN processes p ON p.id = sn.process JOIN goroutines g ON g.snapshot = sn.id
GROUP BY sn.id, g.status;

-- Grafana: goroutines per function (stacks.top_func) in each snapshot.
DROP VIEW IF EXISTS goroutines_by_func;
CREATE VIEW goroutines_by_func AS
SELECT coalesce(s.top_func, '(no stack)') AS top_func, sn.id AS snapshot, p.pid,
       sn.taken_at / 1000000 AS time, count(*) AS goroutines
FROM goroutines g JOIN snapshots sn ON sn.id = g.snapshot JOIN processes p ON p.id = sn.process
LEFT JOIN stacks s ON s.id = g.stack_id
GROUP BY g.snapshot, s.top_func;

-- Grafana: blocked goroutines grouped by stack and wait reason in each snapshot, with
-- how long they have waited (NULL where the runtime does not record it).
DROP VIEW IF EXISTS blocked_stacks;
CREATE VIEW blocked_stacks AS
SELECT g.snapshot, p.pid, sn.taken_at / 1000000 AS time, g.stack_id,
       coalesce(s.top_func, '(no stack)') AS top_func, g.wait_reason, count(*) AS goroutines,
       max((sn.taken_at - g.wait_since_ns) / 1000000) AS max_waiting_ms,
       avg((sn.taken_at - g.wait_since_ns) / 1000000.0) AS avg_waiting_ms,
       min(g.goid) AS example_goid
FROM goroutines g JOIN snapshots sn ON sn.id = g.snapshot JOIN processes p ON p.id = sn.process
LEFT JOIN stacks s ON s.id = g.stack_id
WHERE g.status = 'waiting'
GROUP BY g.snapshot, g.stack_id, g.wait_reason;

-- Grafana: what each snapshot cost glimpse (reading in the target, decoding after).
DROP VIEW IF EXISTS capture_times;
CREATE VIEW capture_times AS
SELECT sn.id AS snapshot, p.pid, sn.taken_at / 1000000 AS time, sn.duration_us, sn.decode_us,
       sn.goroutines, sn.torn, sn.reader
FROM snapshots sn JOIN processes p ON p.id = sn.process;

-- Tracepoint sessions started over the HTTP API (glimpse serve): one row each, its
-- probes linked in trace_probes. state: running, done, failed, interrupted (the server
-- died while it ran); end_reason says why it ended.
CREATE TABLE IF NOT EXISTS traces (
	id         INTEGER PRIMARY KEY,
	process    INTEGER REFERENCES processes(id),
	pid        INTEGER NOT NULL,
	regex      TEXT NOT NULL,
	options    TEXT,		-- JSON: where, stack, duration_s, max_events, limits
	started    INTEGER NOT NULL,
	ended      INTEGER,
	state      TEXT NOT NULL,
	end_reason TEXT
);

-- glimpse trace: one row per traced function per trace session.
CREATE TABLE IF NOT EXISTS probes (
	id           INTEGER PRIMARY KEY,
	process      INTEGER NOT NULL REFERENCES processes(id),
	func         TEXT NOT NULL,
	spec         TEXT NOT NULL,	-- JSON: regexp, --where (and where it ran), probe pcs, argument and result types, limits, notes
	started      INTEGER NOT NULL,
	ended        INTEGER,		-- NULL while tracing
	calls        INTEGER NOT NULL DEFAULT 0,	-- call events (count-only: calls counted)
	returns      INTEGER NOT NULL DEFAULT 0,
	ring_drops   INTEGER NOT NULL DEFAULT 0,	-- events lost: the ring buffer was full
	repeats      INTEGER NOT NULL DEFAULT 0,	-- one execution hit twice (signal during the single-step), dropped
	rate_limited INTEGER NOT NULL DEFAULT 0,	-- calls over --rate-limit
	filtered     INTEGER NOT NULL DEFAULT 0	-- calls rejected by --where
);

-- One row per call and per return. A return has its call's call_id.
CREATE TABLE IF NOT EXISTS events (
	id          INTEGER PRIMARY KEY,
	probe       INTEGER NOT NULL REFERENCES probes(id) ON DELETE CASCADE,
	ts_ns       INTEGER NOT NULL,
	goid        INTEGER NOT NULL,
	tid         INTEGER NOT NULL,
	kind        TEXT NOT NULL,	-- 'call' or 'return'
	call_id     INTEGER,		-- pairs a return with its call (NULL: the call was not seen)
	args        TEXT,		-- JSON object {"name": value}; on returns the call's; NULL without DWARF
	results     TEXT,		-- returns: JSON array
	error       TEXT,		-- returns: message of the first non-nil error result
	duration_ns INTEGER,		-- returns: since the call
	stack       TEXT,		-- calls with --stack: JSON array of "func file:line"
	recording   INTEGER,		-- recordings.id when the process was being recorded
	rr_event    INTEGER
);

CREATE INDEX IF NOT EXISTS events_by_probe ON events (probe, ts_ns);
CREATE INDEX IF NOT EXISTS events_by_call ON events (probe, call_id);
CREATE INDEX IF NOT EXISTS probes_by_process ON probes (process, started);

CREATE TABLE IF NOT EXISTS trace_probes (
	trace INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
	probe INTEGER NOT NULL REFERENCES probes(id) ON DELETE CASCADE,
	PRIMARY KEY (trace, probe)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_probes_by_probe ON trace_probes (probe);

-- One row per call, with its return.
DROP VIEW IF EXISTS calls;
CREATE VIEW calls AS
SELECT c.id, p.func, c.goid, c.ts_ns, c.args, r.results, r.error, r.duration_ns, c.probe
FROM events c JOIN probes p ON p.id = c.probe
LEFT JOIN events r ON r.probe = c.probe AND r.call_id = c.call_id AND r.kind = 'return'
WHERE c.kind = 'call';

-- Arguments one per row, typed: SELECT * FROM event_args WHERE name = 'id' AND value > 100.
DROP VIEW IF EXISTS event_args;
CREATE VIEW event_args AS
SELECT e.id AS event, e.probe, e.kind, e.goid, e.ts_ns, a.key AS name, a.type AS type, a.atom AS value, a.value AS json
FROM events e, json_each(e.args) a
WHERE e.kind = 'call';

-- Latency per function.
DROP VIEW IF EXISTS call_latency;
CREATE VIEW call_latency AS
SELECT p.func, count(*) AS returns, min(e.duration_ns) AS min_ns, avg(e.duration_ns) AS avg_ns,
       max(e.duration_ns) AS max_ns, sum(e.error IS NOT NULL) AS errors
FROM events e JOIN probes p ON p.id = e.probe
WHERE e.kind = 'return' AND e.duration_ns IS NOT NULL
GROUP BY p.func;

-- Grafana: latency percentiles per function over every return stored (nearest rank: pN
-- is the smallest duration with at least N% of the returns at or below it).
DROP VIEW IF EXISTS call_latency_pct;
CREATE VIEW call_latency_pct AS
WITH r AS (
	SELECT p.func, e.duration_ns, e.error,
	       row_number() OVER (PARTITION BY p.func ORDER BY e.duration_ns) AS n,
	       count(*) OVER (PARTITION BY p.func) AS total
	FROM events e JOIN probes p ON p.id = e.probe
	WHERE e.kind = 'return' AND e.duration_ns IS NOT NULL)
SELECT func, total AS calls, sum(error IS NOT NULL) AS errors,
       min(CASE WHEN n >= 0.50 * total THEN duration_ns END) AS p50_ns,
       min(CASE WHEN n >= 0.90 * total THEN duration_ns END) AS p90_ns,
       min(CASE WHEN n >= 0.99 * total THEN duration_ns END) AS p99_ns,
       max(duration_ns) AS max_ns
FROM r GROUP BY func;

-- Grafana: the same per function and minute (time: the minute's start), for time series.
DROP VIEW IF EXISTS call_latency_pct_per_minute;
CREATE VIEW call_latency_pct_per_minute AS
WITH r AS (
	SELECT p.func, e.ts_ns / 60000000000 AS minute, e.duration_ns, e.error,
	       row_number() OVER (PARTITION BY p.func, e.ts_ns / 60000000000 ORDER BY e.duration_ns) AS n,
	       count(*) OVER (PARTITION BY p.func, e.ts_ns / 60000000000) AS total
	FROM events e JOIN probes p ON p.id = e.probe
	WHERE e.kind = 'return' AND e.duration_ns IS NOT NULL)
SELECT func, minute * 60000 AS time, total AS calls, sum(error IS NOT NULL) AS errors,
       total / 60.0 AS calls_per_second,
       min(CASE WHEN n >= 0.50 * total THEN duration_ns END) AS p50_ns,
       min(CASE WHEN n >= 0.90 * total THEN duration_ns END) AS p90_ns,
       min(CASE WHEN n >= 0.99 * total THEN duration_ns END) AS p99_ns,
       max(duration_ns) AS max_ns
FROM r GROUP BY func, minute;

-- Grafana: calls and error returns per function in each second (time: the second's
-- start), so calls is calls per second.
DROP VIEW IF EXISTS calls_per_second;
CREATE VIEW calls_per_second AS
SELECT p.func, pr.pid, e.ts_ns / 1000000000 * 1000 AS time, sum(e.kind = 'call') AS calls,
       sum(e.kind = 'return') AS returns, sum(e.kind = 'return' AND e.error IS NOT NULL) AS errors
FROM events e JOIN probes p ON p.id = e.probe JOIN processes pr ON pr.id = p.process
GROUP BY p.id, e.ts_ns / 1000000000;

-- glimpse serve: periodic snapshots of a process, by pid or by command name.
CREATE TABLE IF NOT EXISTS schedules (
	id         INTEGER PRIMARY KEY,
	pid        INTEGER,		-- the process, or NULL to follow comm
	comm       TEXT,		-- the command name (/proc/PID/comm) to find it by
	every_ms   INTEGER NOT NULL,
	vars       INTEGER NOT NULL DEFAULT 1,	-- decode variables (1) or stacks only (0)
	created    INTEGER NOT NULL,
	last_run   INTEGER,
	last_error TEXT			-- why the last run failed, NULL if it did not
);

-- glimpse serve: SQL saved by its users.
CREATE TABLE IF NOT EXISTS saved_queries (
	id      INTEGER PRIMARY KEY,
	name    TEXT NOT NULL UNIQUE,
	sql     TEXT NOT NULL,
	author  TEXT,
	created INTEGER NOT NULL,
	updated INTEGER NOT NULL
);

-- rr recordings of a Go process (snapshots.recording and events.recording point here).
CREATE TABLE IF NOT EXISTS recordings (
	id           INTEGER PRIMARY KEY,
	client_key   TEXT,		-- the client that asked for it
	command      TEXT NOT NULL,	-- JSON array: the command line recorded
	build_id     TEXT,
	go_version   TEXT,
	rr_version   TEXT,
	started      INTEGER NOT NULL,
	ended        INTEGER,		-- NULL while recording
	bytes_raw    INTEGER,		-- the trace directory's size
	bytes_packed INTEGER,		-- after rr pack / compression
	path         TEXT,		-- the trace directory
	status       TEXT NOT NULL,	-- 'recording', 'done', 'failed', ...
	replayable   INTEGER,		-- 1 if a replay was checked to work, 0 if not, NULL unknown
	why_not      TEXT,		-- why it is not replayable
	pid          INTEGER,		-- the recorded app's pid (snapshots of it link here while recording)
	rr_pid       INTEGER,		-- rr record's pid (SIGTERM stops the recording cleanly)
	clock_offset_ns INTEGER,	-- CLOCK_REALTIME - CLOCK_MONOTONIC when recording started (rr's times are monotonic)
	archive      TEXT,		-- tar + zstd of the packed trace, binaries in <dir>/binaries once
	bytes_binaries INTEGER,		-- the binaries rr pack copied in (stored outside the archive)
	first_event  INTEGER,		-- the warm replay server's first checkpoint (replays seek after it)
	events       INTEGER,		-- the trace's last event
	replay_addr  TEXT,		-- a warm replay server (gdbserver protocol) while one runs
	replay_pid   INTEGER
);
-- Snapshots and trace events of a process being recorded find their recording by pid.
CREATE INDEX IF NOT EXISTS recordings_by_pid ON recordings (pid, status);
