#!/usr/bin/env python3
"""grafana-dashboards.py - writes web/grafana/dashboards/*.json, glimpse's Grafana
dashboards, from the panels and SQL below (edit here, then run it; --check says
whether the committed files are what this writes).

Every panel asks glimpse serve's /api/sql through the Infinity data source
(uid glimpse-sql, web/grafana/provisioning/datasources/glimpse.yaml): a POST with
{"sql": ..., "params": {":from": ${__from}, ":to": ${__to}, ...}} and
?format=objects, so the answer is a JSON array of row objects. Grafana fills the
macros: ${__from}/${__to} are the time range in epoch ms, ${__interval_ms} the
time series step, ${pid} the dashboard's process variable (0: all processes).
The views the SQL reads are in schema/store.sql; times are epoch ms in `time`.

usage: scripts/grafana-dashboards.py [--check]
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "web", "grafana", "dashboards")
API = "http://127.0.0.1:7070/api/sql"
DS = {"type": "yesoreyeram-infinity-datasource", "uid": "glimpse-sql"}

# The latest snapshot of each process within the time range (and the pid chosen).
LATEST = ("SELECT max(sn.id) FROM snapshots sn JOIN processes p ON p.id = sn.process"
          " WHERE sn.taken_at / 1000000 BETWEEN :from AND :to AND (:pid = 0 OR p.pid = :pid)"
          " GROUP BY sn.process")
IN_RANGE = "time BETWEEN :from AND :to AND (:pid = 0 OR pid = :pid)"


def body(sql):
    """The POST body: the SQL and the named parameters it uses (/api/sql refuses
    others), as Grafana sends it with its macros filled in."""
    macros = {":from": "${__from}", ":to": "${__to}", ":pid": "${pid}", ":interval_ms": "${__interval_ms}"}
    params = ", ".join(f'"{p}": {m}' for p, m in macros.items() if re.search(re.escape(p) + r"\b", sql))
    return '{"sql": ' + json.dumps(" ".join(sql.split())) + ', "params": {' + params + '}}'


def target(sql, columns, fmt="table", ref="A"):
    """An Infinity query of /api/sql; columns: [(name, "timestamp_epoch"|"string"|"number")]."""
    return {
        "refId": ref,
        "datasource": DS,
        "type": "json",
        "source": "url",
        "parser": "backend",
        "format": fmt,
        "url": API,
        "url_options": {
            "method": "POST",
            "params": [{"key": "format", "value": "objects"}],
            "body_type": "raw",
            "body_content_type": "application/json",
            "data": body(sql),
        },
        "root_selector": "",
        "columns": [{"selector": c, "text": c, "type": t} for c, t in columns],
    }


def panel(title, kind, targets, x, y, w, h, unit=None, description=None, long_series=False):
    p = {
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    if description:
        p["description"] = description
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if long_series:
        # Rows are (time, series name, values...): one series per name.
        p["transformations"] = [{"id": "prepareTimeSeries", "options": {"format": "multi"}}]
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    return p


PID_VARIABLE = {
    "name": "pid",
    "label": "process",
    "type": "query",
    "datasource": DS,
    "query": {
        "queryType": "infinity",
        "refId": "variable",
        "infinityQuery": target("SELECT DISTINCT pid FROM processes ORDER BY pid", [("pid", "string")],
                                ref="variable"),
    },
    "includeAll": True,
    "allValue": "0",
    "current": {"text": "All", "value": "$__all"},
    "refresh": 2,
    "sort": 3,
}


def dashboard(uid, title, description, panels, refresh="30s"):
    for i, p in enumerate(panels, 1):
        p["id"] = i
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["glimpse"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": refresh,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [PID_VARIABLE]},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["glimpse"], "title": "glimpse", "asDropdown": True}],
        "panels": panels,
    }


DASHBOARDS = {
    "goroutines-by-state": dashboard(
        "glimpse-goroutines-by-state", "glimpse: goroutines by state",
        "Goroutines in each state (running, runnable, waiting, syscall, ...) in every snapshot, per process.",
        [
            panel("Goroutines by state", "timeseries", [target(
                f"""SELECT time, status || ' (pid ' || pid || ')' AS series, goroutines
                    FROM goroutines_by_state WHERE {IN_RANGE} ORDER BY time""",
                [("time", "timestamp_epoch"), ("series", "string"), ("goroutines", "number")])],
                0, 0, 24, 10, long_series=True),
            panel("Latest snapshot", "table", [target(
                f"""SELECT pid, snapshot, status, goroutines FROM goroutines_by_state
                    WHERE snapshot IN ({LATEST}) ORDER BY pid, goroutines DESC""",
                [("pid", "number"), ("snapshot", "number"), ("status", "string"), ("goroutines", "number")])],
                0, 10, 12, 8),
            panel("Goroutines per process", "timeseries", [target(
                f"""SELECT time, 'pid ' || pid AS series, sum(goroutines) AS goroutines
                    FROM goroutines_by_state WHERE {IN_RANGE} GROUP BY snapshot ORDER BY time""",
                [("time", "timestamp_epoch"), ("series", "string"), ("goroutines", "number")])],
                12, 10, 12, 8, long_series=True),
        ]),
    "blocked-stacks": dashboard(
        "glimpse-blocked-stacks", "glimpse: blocked stacks",
        "Blocked goroutines grouped by stack and wait reason: how many, in which function, and how long "
        "they have waited (where the runtime records it).",
        [
            panel("Top blocked stacks (latest snapshot)", "table", [target(
                f"""SELECT pid, top_func, wait_reason, goroutines, max_waiting_ms, avg_waiting_ms, stack_id,
                           example_goid
                    FROM blocked_stacks WHERE snapshot IN ({LATEST})
                    ORDER BY goroutines DESC, max_waiting_ms DESC LIMIT 50""",
                [("pid", "number"), ("top_func", "string"), ("wait_reason", "string"), ("goroutines", "number"),
                 ("max_waiting_ms", "number"), ("avg_waiting_ms", "number"), ("stack_id", "number"),
                 ("example_goid", "number")])],
                0, 0, 24, 10, description="stack_id: SELECT * FROM frames WHERE stack = stack_id shows the stack."),
            panel("Blocked goroutines by function", "timeseries", [target(
                f"""SELECT time, top_func || ' (' || wait_reason || ')' AS series, sum(goroutines) AS goroutines
                    FROM blocked_stacks WHERE {IN_RANGE}
                      AND top_func IN (SELECT top_func FROM blocked_stacks WHERE {IN_RANGE}
                                       GROUP BY top_func ORDER BY sum(goroutines) DESC LIMIT 10)
                    GROUP BY snapshot, top_func, wait_reason ORDER BY time""",
                [("time", "timestamp_epoch"), ("series", "string"), ("goroutines", "number")])],
                0, 10, 12, 9, long_series=True),
            panel("Longest wait by function", "timeseries", [target(
                f"""SELECT time, top_func AS series, max(max_waiting_ms) AS max_waiting_ms
                    FROM blocked_stacks WHERE {IN_RANGE}
                    GROUP BY snapshot, top_func ORDER BY time""",
                [("time", "timestamp_epoch"), ("series", "string"), ("max_waiting_ms", "number")])],
                12, 10, 12, 9, unit="ms", long_series=True,
                description="Empty for goroutines whose wait start the runtime has not recorded "
                            "(it does after a garbage collection)."),
        ]),
    "goroutines-by-func": dashboard(
        "glimpse-goroutines-by-func", "glimpse: goroutines by function",
        "Goroutines per function across snapshots: the innermost frame outside the runtime, as pprof shows it.",
        [
            panel("Goroutines by function (top 15)", "timeseries", [target(
                f"""SELECT time, top_func AS series, sum(goroutines) AS goroutines
                    FROM goroutines_by_func WHERE {IN_RANGE}
                      AND top_func IN (SELECT top_func FROM goroutines_by_func WHERE {IN_RANGE}
                                       GROUP BY top_func ORDER BY max(goroutines) DESC LIMIT 15)
                    GROUP BY snapshot, top_func ORDER BY time""",
                [("time", "timestamp_epoch"), ("series", "string"), ("goroutines", "number")])],
                0, 0, 24, 11, long_series=True),
            panel("Functions in the latest snapshot", "table", [target(
                f"""SELECT pid, top_func, goroutines FROM goroutines_by_func
                    WHERE snapshot IN ({LATEST}) ORDER BY goroutines DESC LIMIT 100""",
                [("pid", "number"), ("top_func", "string"), ("goroutines", "number")])],
                0, 11, 12, 10),
            panel("Change over the range", "table", [target(
                f"""SELECT top_func, min(goroutines) AS fewest, max(goroutines) AS most,
                           max(goroutines) - min(goroutines) AS spread, count(*) AS snapshots
                    FROM goroutines_by_func WHERE {IN_RANGE}
                    GROUP BY top_func ORDER BY spread DESC, most DESC LIMIT 100""",
                [("top_func", "string"), ("fewest", "number"), ("most", "number"), ("spread", "number"),
                 ("snapshots", "number")])],
                12, 11, 12, 10, description="A function whose goroutines keep growing is a leak candidate."),
        ]),
    "trace-calls": dashboard(
        "glimpse-trace-calls", "glimpse: traced calls",
        "glimpse trace: calls and errors per second, and latency percentiles, per traced function.",
        [
            panel("Calls per second", "timeseries", [target(
                f"""SELECT time / :interval_ms * :interval_ms AS time, func AS series,
                           sum(calls) * 1000.0 / max(:interval_ms, 1000) AS calls_per_second
                    FROM calls_per_second WHERE {IN_RANGE}
                    GROUP BY 1, func ORDER BY 1""",
                [("time", "timestamp_epoch"), ("series", "string"), ("calls_per_second", "number")])],
                0, 0, 12, 9, unit="reqps", long_series=True),
            panel("Errors per second", "timeseries", [target(
                f"""SELECT time / :interval_ms * :interval_ms AS time, func AS series,
                           sum(errors) * 1000.0 / max(:interval_ms, 1000) AS errors_per_second
                    FROM calls_per_second WHERE {IN_RANGE}
                    GROUP BY 1, func ORDER BY 1""",
                [("time", "timestamp_epoch"), ("series", "string"), ("errors_per_second", "number")])],
                12, 0, 12, 9, unit="reqps", long_series=True),
            panel("Latency percentiles per minute", "timeseries", [target(
                """SELECT l.time, l.func AS series, l.p50_ns / 1e6 AS p50_ms, l.p90_ns / 1e6 AS p90_ms,
                          l.p99_ns / 1e6 AS p99_ms
                   FROM call_latency_pct_per_minute l
                   WHERE l.time BETWEEN :from - 60000 AND :to
                     AND (:pid = 0 OR l.func IN (SELECT p.func FROM probes p JOIN processes pr ON pr.id = p.process
                                                 WHERE pr.pid = :pid))
                   ORDER BY l.time""",
                [("time", "timestamp_epoch"), ("series", "string"), ("p50_ms", "number"), ("p90_ms", "number"),
                 ("p99_ms", "number")])],
                0, 9, 24, 10, unit="ms", long_series=True),
            panel("Latency by function", "table", [target(
                """WITH r AS (
                       SELECT c.func, c.duration_ns, c.error,
                              row_number() OVER (PARTITION BY c.func ORDER BY c.duration_ns) AS n,
                              count(*) OVER (PARTITION BY c.func) AS total
                       FROM calls c JOIN probes p ON p.id = c.probe JOIN processes pr ON pr.id = p.process
                       WHERE c.duration_ns IS NOT NULL AND c.ts_ns BETWEEN :from * 1000000 AND :to * 1000000
                         AND (:pid = 0 OR pr.pid = :pid))
                   SELECT func, total AS calls, sum(error IS NOT NULL) AS errors,
                          min(CASE WHEN n >= 0.50 * total THEN duration_ns END) / 1e6 AS p50_ms,
                          min(CASE WHEN n >= 0.90 * total THEN duration_ns END) / 1e6 AS p90_ms,
                          min(CASE WHEN n >= 0.99 * total THEN duration_ns END) / 1e6 AS p99_ms,
                          max(duration_ns) / 1e6 AS max_ms
                   FROM r GROUP BY func ORDER BY calls DESC""",
                [("func", "string"), ("calls", "number"), ("errors", "number"), ("p50_ms", "number"),
                 ("p90_ms", "number"), ("p99_ms", "number"), ("max_ms", "number")])],
                0, 19, 24, 9),
            panel("Latest errors", "table", [target(
                """SELECT c.ts_ns / 1000000 AS time, c.func, c.goid, c.error, c.args, c.duration_ns / 1e6 AS ms
                   FROM calls c JOIN probes p ON p.id = c.probe JOIN processes pr ON pr.id = p.process
                   WHERE c.error IS NOT NULL AND c.ts_ns BETWEEN :from * 1000000 AND :to * 1000000
                     AND (:pid = 0 OR pr.pid = :pid)
                   ORDER BY c.ts_ns DESC LIMIT 100""",
                [("time", "timestamp_epoch"), ("func", "string"), ("goid", "number"), ("error", "string"),
                 ("args", "string"), ("ms", "number")])],
                0, 28, 24, 8),
        ]),
    "capture-times": dashboard(
        "glimpse-capture-times", "glimpse: capture times",
        "What each snapshot cost: the time reading the goroutines (the target runs on) and decoding "
        "them afterwards in glimpse.",
        [
            panel("Capture and decode time", "timeseries", [target(
                f"""SELECT time, 'pid ' || pid AS series, duration_us, decode_us
                    FROM capture_times WHERE {IN_RANGE} ORDER BY time""",
                [("time", "timestamp_epoch"), ("series", "string"), ("duration_us", "number"),
                 ("decode_us", "number")])],
                0, 0, 16, 10, unit="µs", long_series=True),
            panel("Capture time per 1000 goroutines", "stat", [target(
                f"""SELECT 'pid ' || pid AS process, avg(duration_us * 1000.0 / goroutines) AS us_per_1000
                    FROM capture_times WHERE {IN_RANGE} AND goroutines > 0 GROUP BY pid""",
                [("process", "string"), ("us_per_1000", "number")])],
                16, 0, 8, 10, unit="µs"),
            panel("Snapshots", "table", [target(
                f"""SELECT time, snapshot, pid, goroutines, duration_us, decode_us, torn, reader
                    FROM capture_times WHERE {IN_RANGE} ORDER BY time DESC LIMIT 200""",
                [("time", "timestamp_epoch"), ("snapshot", "number"), ("pid", "number"),
                 ("goroutines", "number"), ("duration_us", "number"), ("decode_us", "number"),
                 ("torn", "number"), ("reader", "string")])],
                0, 10, 24, 10),
        ]),
}


def render():
    return {f"{name}.json": json.dumps(d, indent=2, ensure_ascii=False) + "\n" for name, d in DASHBOARDS.items()}


def main():
    files = render()
    if sys.argv[1:] == ["--check"]:
        stale = [n for n, text in files.items()
                 if not os.path.exists(os.path.join(OUT, n)) or open(os.path.join(OUT, n)).read() != text]
        if stale:
            print("stale (run scripts/grafana-dashboards.py): " + ", ".join(stale))
            return 1
        return 0
    os.makedirs(OUT, exist_ok=True)
    for n, text in files.items():
        with open(os.path.join(OUT, n), "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
