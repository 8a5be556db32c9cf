-- Upgrades a glimpse store from schema version 1 to 2, keeping all its data. Run by
-- store.c in the transaction that then applies store.sql (which adds the new tables
-- and makes the views again) and records version 2.
-- go_runtime_frame() is a function store.c gives SQLite for this (goruntime.h).

-- A stack's function as pprof shows it: the innermost frame outside the runtime; for
-- the runtime's own goroutines, the function they run (the outermost frame but
-- runtime.goexit). As snapshot.c fills it for new stacks.
ALTER TABLE stacks ADD COLUMN top_func TEXT;
UPDATE stacks SET top_func = coalesce(
	(SELECT f.func FROM frames f WHERE f.stack = stacks.id AND NOT go_runtime_frame(f.func)
	 ORDER BY f.depth LIMIT 1),
	(SELECT f.func FROM frames f WHERE f.stack = stacks.id AND (f.func <> 'runtime.goexit' OR f.depth = 0)
	 ORDER BY f.depth DESC LIMIT 1),
	top);
