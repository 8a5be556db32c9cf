"""glimpse's Grafana dashboards (web/grafana): every panel's and variable's SQL, taken from
the dashboard JSON and filled in as Grafana fills its macros, runs read-only against a store
written by the real glimpse (snapshots of the target fixture, a trace of the tracee) and
answers rows with the columns the panel names; the time range and the process variable
really filter; the provisioning files name the data sources the dashboards use."""
import glob
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time

from harness import ROOT
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
