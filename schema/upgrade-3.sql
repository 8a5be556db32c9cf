-- Upgrades a glimpse store from schema version 2 to 3, keeping all its data: what
-- glimpse record keeps about a recording beyond version 2's columns. Run by store.c
-- in the transaction that then applies store.sql and records version 3. A version 1
-- store reaches here without the recordings table: it is made as version 2 had it.
CREATE TABLE IF NOT EXISTS recordings (
	id           INTEGER PRIMARY KEY,
	client_key   TEXT,
	command      TEXT NOT NULL,
	build_id     TEXT,
	go_version   TEXT,
	rr_version   TEXT,
	started      INTEGER NOT NULL,
	ended        INTEGER,
	bytes_raw    INTEGER,
	bytes_packed INTEGER,
	path         TEXT,
	status       TEXT NOT NULL,
	replayable   INTEGER,
	why_not      TEXT
);
ALTER TABLE recordings ADD COLUMN pid INTEGER;
ALTER TABLE recordings ADD COLUMN rr_pid INTEGER;
ALTER TABLE recordings ADD COLUMN clock_offset_ns INTEGER;
ALTER TABLE recordings ADD COLUMN archive TEXT;
ALTER TABLE recordings ADD COLUMN bytes_binaries INTEGER;
ALTER TABLE recordings ADD COLUMN first_event INTEGER;
ALTER TABLE recordings ADD COLUMN events INTEGER;
ALTER TABLE recordings ADD COLUMN replay_addr TEXT;
ALTER TABLE recordings ADD COLUMN replay_pid INTEGER;
