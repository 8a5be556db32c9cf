"""glimpse's Grafana dashboards (web/grafana): every panel's and variable's SQL, taken from
the dashboard JSON and filled in as Grafana fills its macros, runs read-only against a store
written by the real glimpse (snapshots of the target fixture, a trace of the tracee) and
answers rows with the columns the panel names; the time range and the process variable
really filter; the provisioning files name the data sources the dashboards use. Then the
same requests over real HTTP to glimpse serve: each panel's POST to /api/sql as the
Infinity data source sends it, and the JSON API data source protocol under /grafana."""
import glob
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time

from harness import ROOT, Skip
from serve import Server
from test_schema import fill_store

GRAFANA = os.path.join(ROOT, "web", "grafana")


def queries():
    """[(dashboard file, panel title, Infinity query)] of every panel and variable."""
    out = []
    for path in sorted(glob.glob(os.path.join(GRAFANA, "dashboards", "*.json"))):
        with open(path) as f:
            d = json.load(f)
        name = os.path.basename(path)
        for p in d["panels"]:
            assert p["targets"], (name, p["title"])
            out += [(name, p["title"], t) for t in p["targets"]]
        for v in d["templating"]["list"]:
            out.append((name, "variable " + v["name"], v["query"]["infinityQuery"]))
    return out


def fill(q, frm, to, pid, interval_ms=10000):
    """The SQL and parameters Grafana would POST for query q."""
    opts = q["url_options"]
    assert q["url"] == "http://127.0.0.1:7070/api/sql" and opts["method"] == "POST", q["url"]
    assert {"key": "format", "value": "objects"} in opts["params"]
    data = opts["data"]
    for macro, value in (("${__from}", frm), ("${__to}", to), ("${__interval_ms}", interval_ms), ("${pid}", pid)):
        data = data.replace(macro, str(value))
    assert "${" not in data and "$__" not in data, data
    body = json.loads(data)
    return body["sql"], {k.lstrip(":"): v for k, v in body.get("params", {}).items()}


def run(db, sql, params):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cur = c.execute(sql, params)
        rows = cur.fetchall()
        return [d[0] for d in cur.description], rows
    finally:
        c.close()


def test_dashboards_are_what_the_generator_writes_and_use_the_provisioned_data_sources():
    p = subprocess.run(["python3", os.path.join(ROOT, "scripts", "grafana-dashboards.py"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(os.path.join(GRAFANA, "provisioning", "datasources", "glimpse.yaml")) as f:
        ds = f.read()
    uids = dict(zip(re.findall(r"^\s+uid: (\S+)", ds, re.M), re.findall(r"^\s+type: (\S+)", ds, re.M)))
    assert uids == {"glimpse-sql": "yesoreyeram-infinity-datasource", "glimpse-json": "simpod-json-datasource"}, uids
    assert "url: http://127.0.0.1:7070/grafana" in ds and "httpHeaderValue1: Bearer $GLIMPSE_TOKEN" in ds
    with open(os.path.join(GRAFANA, "provisioning", "dashboards", "glimpse.yaml")) as f:
        assert "type: file" in f.read()
    names = set()
    for name, title, q in queries():
        assert uids.get(q["datasource"]["uid"]) == q["datasource"]["type"], (name, title)
        names.add(name)
    assert names == {"goroutines-by-state.json", "blocked-stacks.json", "goroutines-by-func.json",
                     "trace-calls.json", "capture-times.json"}, names


def test_every_panel_query_answers_rows_from_a_real_store():
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "g.db")
        t0 = int(time.time() * 1000)
        t, _ = fill_store(db)
        t.stop()
        frm, to = t0 - 3600_000, int(time.time() * 1000) + 60_000
        pids = [r[0] for r in sqlite3.connect(db).execute("SELECT pid FROM processes")]
        assert len(pids) == 2, pids
        report = []
        for name, title, q in queries():
            sql, params = fill(q, frm, to, 0)
            cols, rows = run(db, sql, params)
            assert rows, (name, title, sql)
            want = [c["selector"] for c in q["columns"]]
            assert set(want) <= set(cols), (name, title, want, cols)
            if "time" in want:
                i = cols.index("time")
                assert all(frm <= r[i] <= to + 60_000 for r in rows), (name, title)
            report.append(len(rows))
            if title.startswith("variable"):
                assert sorted(int(r[0]) for r in rows) == sorted(pids)
                continue
            # The range and the process variable filter.
            sql, params = fill(q, 631152000000, 631152060000, 0)  # 1990
            assert run(db, sql, params)[1] == [], (name, title, "rows outside the range")
            sql, params = fill(q, frm, to, 1)  # no such pid
            assert run(db, sql, params)[1] == [], (name, title, "rows of another process")
            some = 0
            for pid in pids:
                sql, params = fill(q, frm, to, pid)
                some += len(run(db, sql, params)[1])
            assert some > 0, (name, title)
        print(f"  {len(report)} queries answered {sum(report)} rows ({min(report)}..{max(report)} each)")


def filled_store(d):
    """A store written by the real glimpse and its time range (epoch ms)."""
    db = os.path.join(d, "g.db")
    t0 = int(time.time() * 1000)
    t, _ = fill_store(db)
    t.stop()
    return db, t0 - 3600_000, int(time.time() * 1000) + 60_000


def test_every_panel_request_answers_through_glimpse_serve_as_infinity_sends_it():
    with tempfile.TemporaryDirectory() as d:
        db, frm, to = filled_store(d)
        s = Server(db=db)
        try:
            n = 0
            for name, title, q in queries():
                fill(q, frm, to, 0)  # checks the shape
                data = q["url_options"]["data"]
                for macro, value in (("${__from}", frm), ("${__to}", to), ("${__interval_ms}", 10000),
                                     ("${pid}", 0)):
                    data = data.replace(macro, str(value))
                rows = s.json("POST", "/api/sql?format=objects", data.encode(),
                              headers={"Content-Type": "application/json"})
                sql, params = fill(q, frm, to, 0)
                cols, want = run(db, sql, params)
                assert isinstance(rows, list) and len(rows) == len(want) > 0, (name, title, len(rows), len(want))
                assert [[r[c] for c in cols] for r in rows] == [list(w) for w in want], (name, title)
                n += len(rows)
            print(f"  {len(queries())} panel requests, {n} rows, equal to sqlite3's")
        finally:
            s.close()


def grafana_body(frm, to, targets, **extra):
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
    return {"range": {"from": iso(frm), "to": iso(to), "raw": {"from": "now-1h", "to": "now"}},
            "intervalMs": 10000, "maxDataPoints": 500, "targets": targets, **extra}


def test_json_datasource_protocol_answers_over_http():
    with tempfile.TemporaryDirectory() as d:
        db, frm, to = filled_store(d)
        s = Server(db=db)
        try:
            status, _, body = s.request("GET", "/grafana")
            assert status == 200, body
            assert s.request("GET", "/grafana/")[0] == 200
            assert s.request("GET", "/grafana", token=False)[0] == 401
            metrics = [m["value"] for m in s.json("POST", "/grafana/metrics", {})]
            assert "sql" in metrics and "goroutines_by_state" in metrics, metrics
            # Every canned metric answers; time series are [{"target", "datapoints"}].
            for m in metrics:
                if m == "sql":
                    continue
                got = s.json("POST", "/grafana/query", grafana_body(frm, to, [{"refId": "A", "target": m}]))
                assert got, m
                for a in got:
                    assert ("datapoints" in a and "target" in a) or (a["type"] == "table" and "rows" in a), (m, a)
            # A series equals the view's rows.
            got = s.json("POST", "/grafana/query", grafana_body(frm, to, [{
                "refId": "A", "target": "sql", "payload": {"format": "time_series", "sql":
                    "SELECT time, status AS metric, sum(goroutines) AS n FROM goroutines_by_state"
                    " WHERE time BETWEEN $__from AND $__to GROUP BY time, status ORDER BY time"}}]))
            want = {}
            for t, st, n in run(db, "SELECT time, status, sum(goroutines) FROM goroutines_by_state"
                                    " GROUP BY time, status ORDER BY time", {})[1]:
                want.setdefault(st, []).append([n, t])
            assert {a["target"]: a["datapoints"] for a in got} == want, got
            v = s.json("POST", "/grafana/variable", {"payload": {"sql": "SELECT pid FROM processes ORDER BY pid"}})
            pids = [r[0] for r in run(db, "SELECT pid FROM processes ORDER BY pid", {})[1]]
            assert v == [{"__text": str(p), "__value": str(p)} for p in pids], v
            assert {"type": "number", "text": "pid"} in s.json("POST", "/grafana/tag-keys", {})
            assert s.json("POST", "/grafana/tag-values", {"key": "pid"}) == [{"text": str(p)} for p in pids]
            bad = s.json("POST", "/grafana/query", grafana_body(frm, to, [
                {"refId": "A", "payload": {"sql": "DELETE FROM snapshots"}}]), expect=403)
            assert "target A" in bad["error"], bad
        finally:
            s.close()


def test_infinity_answers_parse_into_grafana_frames_with_time_number_and_string_fields():
    """Every panel's answer, as objects and as CSV, read by @grafana/data (the npm package Grafana
    itself parses frames with): the time column is a time field, counts are numbers, names strings."""
    node_modules = os.path.join(ROOT, "tests", "grafana", "node_modules", "@grafana", "data")
    if not os.path.isdir(node_modules):
        raise Skip("@grafana/data is not installed (scripts/setup.sh runs npm ci in tests/grafana)")
    with tempfile.TemporaryDirectory() as d:
        db, frm, to = filled_store(d)
        s = Server(db=db)
        try:
            p = subprocess.run(["node", os.path.join(ROOT, "tests", "grafana", "frames.js"), f"http://127.0.0.1:{s.port}",
                                s.token, os.path.join(GRAFANA, "dashboards"), str(frm), str(to), "0"],
                               capture_output=True, text=True, timeout=120)
        finally:
            s.close()
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    assert p.returncode == 0 and lines, p.stdout + p.stderr
    assert len(lines) == len(queries()), (len(lines), len(queries()))
    types = {}
    for l in lines:
        assert l["rows"] > 0 and l["csv_rows"] == l["rows"], l
        assert [f["name"] for f in l["fields"]] == [f["name"] for f in l["csv_fields"]], l
        for f in l["fields"]:
            types.setdefault(f["name"], set()).add(f["type"])
        if any(f["name"] == "time" for f in l["fields"]):
            assert l["time_field"] and {"time": "time"}.items() <= {f["name"]: f["type"] for f in l["fields"]}.items(), l
    assert types["time"] == {"time"}, types["time"]
    for numeric in ("goroutines", "duration_us", "calls_per_second"):
        if numeric in types:
            assert types[numeric] == {"number"}, (numeric, types[numeric])
    assert {"string"} == types.get("series", {"string"}), types.get("series")
    print(f"  {len(lines)} panel answers read by @grafana/data: " +
          ", ".join(sorted(f"{k}={'/'.join(sorted(v))}" for k, v in types.items() if k in ("time", "series", "goroutines"))))
