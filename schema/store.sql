-- glimpse store, schema version 1.
-- Timestamps are nanoseconds since the Unix epoch (UTC). pcs are link-time addresses
-- (as `go tool objdump` shows them; equal to run-time addresses except in PIE binaries).
-- Applied by store.c inside one transaction when the database is new.

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
	top   TEXT			-- innermost function
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
	PRIMARY KEY (snapshot, goid)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS variables (
	snapshot  INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
	goid      INTEGER NOT NULL,
	depth     INTEGER NOT NULL,	-- frame depth (as in frames.depth)
	name      TEXT NOT NULL,
	kind      TEXT NOT NULL,	-- param, result, local
	type      TEXT NOT NULL,
	value     TEXT,			-- JSON; NULL when unavailable at that pc
	truncated INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS goroutines_by_stack ON goroutines (stack_id);
CREATE INDEX IF NOT EXISTS goroutines_by_status ON goroutines (snapshot, status, wait_reason);
CREATE INDEX IF NOT EXISTS variables_by_goroutine ON variables (snapshot, goid, depth);
CREATE INDEX IF NOT EXISTS variables_by_name ON variables (name);
CREATE INDEX IF NOT EXISTS snapshots_by_process ON snapshots (process, taken_at);
CREATE INDEX IF NOT EXISTS frames_by_func ON frames (func);

-- Goroutines grouped by identical stack, like pprof's debug=1.
CREATE VIEW IF NOT EXISTS goroutine_groups AS
SELECT g.snapshot, g.stack_id, count(*) AS goroutines, g.status, g.wait_reason,
       s.top AS top_func, min(g.goid) AS example_goid
FROM goroutines g LEFT JOIN stacks s ON s.id = g.stack_id
GROUP BY g.snapshot, g.stack_id, g.status, g.wait_reason
ORDER BY g.snapshot, goroutines DESC;

-- Goroutines that are blocked, with why and for how long (where the runtime knows).
CREATE VIEW IF NOT EXISTS blocked_goroutines AS
SELECT g.snapshot, g.goid, g.wait_reason, s.top AS top_func,
       CASE WHEN g.wait_since_ns IS NOT NULL THEN (sn.taken_at - g.wait_since_ns) / 1000000 END AS waiting_ms,
       g.created_by, g.labels
FROM goroutines g JOIN snapshots sn ON sn.id = g.snapshot LEFT JOIN stacks s ON s.id = g.stack_id
WHERE g.status = 'waiting'
ORDER BY waiting_ms DESC;

-- One line per snapshot with its process.
CREATE VIEW IF NOT EXISTS snapshot_summary AS
SELECT sn.id, sn.taken_at, sn.duration_us, sn.reader, sn.goroutines, sn.torn,
       p.pid, p.host, b.path, b.go_version
FROM snapshots sn JOIN processes p ON p.id = sn.process JOIN binaries b ON b.build_id = p.build_id;
