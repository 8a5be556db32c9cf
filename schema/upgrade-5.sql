-- Upgrades a glimpse store from schema version 4 to 5, keeping all its data. Run by store.c
-- in the transaction that then applies store.sql (which makes the variables view) and
-- records version 5.
--  * A goroutine's variables move into goroutines.vars, one JSON array per goroutine
--    ([depth, name, kind, type, truncated, value], value left out when NULL), in the order
--    they were stored; the variables table goes and store.sql makes a view of that name
--    with the same columns.
ALTER TABLE goroutines ADD COLUMN vars TEXT;
UPDATE goroutines SET vars = (
	SELECT json_group_array(json(a)) FROM (
		SELECT CASE WHEN v.value IS NULL
			    THEN json_array(v.depth, v.name, v.kind, v.type, v.truncated)
			    ELSE json_array(v.depth, v.name, v.kind, v.type, v.truncated, json(v.value)) END AS a
		FROM variables v WHERE v.snapshot = goroutines.snapshot AND v.goid = goroutines.goid
		ORDER BY v.rowid))
WHERE EXISTS (SELECT 1 FROM variables v WHERE v.snapshot = goroutines.snapshot AND v.goid = goroutines.goid);
DROP TABLE variables;
