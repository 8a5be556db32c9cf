-- Upgrades a glimpse store from schema version 3 to 4, keeping all its data. Run by store.c
-- in the transaction that then applies store.sql and records version 4.
--  * Tracepoint sessions (traces, trace_probes), which glimpse serve created on its own
--    until now: IF NOT EXISTS keeps the ones it made.
--  * variables_by_name goes: it cost a third of storing a 10k-goroutine snapshot's
--    variables (50-57 ms of ~155), and the queries glimpse makes find variables by
--    snapshot and goroutine (variables_by_goroutine).
DROP INDEX IF EXISTS variables_by_name;
CREATE TABLE IF NOT EXISTS traces (
	id         INTEGER PRIMARY KEY,
	process    INTEGER REFERENCES processes(id),
	pid        INTEGER NOT NULL,
	regex      TEXT NOT NULL,
	options    TEXT,
	started    INTEGER NOT NULL,
	ended      INTEGER,
	state      TEXT NOT NULL,
	end_reason TEXT
);
