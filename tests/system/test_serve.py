"""glimpse serve: the real server on a loopback port, talked to with real HTTP, against real Go
fixture processes and a real SQLite store."""
import csv
import hashlib
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.parse

from harness import GLIMPSE, Skip, fixtures, glimpse, glimpse_json, start_target, start_target_in_pid_namespace
from serve import Server
from test_trace import Tracee


def target(version="1.23", flavour="", *args):
    path = next(p for v, fl, p in fixtures("target", flavours=[flavour]) if v == version)
    return start_target(path, *args)


def stored_db(tmp, goroutines=200):
    """A store holding one real snapshot (CLI) of a fixture."""
    db = os.path.join(tmp, "glimpse.db")
    t = target("1.23", "", "-goroutines", goroutines)
    glimpse("snapshot", "--pid", t.pid, "--db", db, check=True)
    t.stop()
    return db


def files_digest(db):
    h = hashlib.sha256()
    for suffix in ("", "-wal"):
        if os.path.exists(db + suffix):
            with open(db + suffix, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


QUERIES = [
    "SELECT goid, status, wait_reason, created_by, thread, torn FROM goroutines ORDER BY goid",
    "SELECT status, count(*) AS n FROM goroutines GROUP BY status ORDER BY status",
    "SELECT f.func, f.file, f.line, f.pc FROM frames f ORDER BY f.stack, f.depth LIMIT 50",
    "SELECT name, type, value, truncated FROM variables ORDER BY snapshot, goid, seq LIMIT 100",
    "SELECT 1.5 AS x, 'a,\"b\"' AS y, NULL AS z",
]


def test_serve_sql_answers_equal_sqlite3s_in_json_csv_and_objects():
    with tempfile.TemporaryDirectory() as tmp:
        db = stored_db(tmp)
        s = Server(db=db)
        try:
            for q in QUERIES:
                want = json.loads(subprocess.run(["sqlite3", "-json", db, q], capture_output=True, text=True,
                                                 check=True).stdout or "[]")
                status, _, body = s.sql(q)
                assert status == 200, body
                ans = json.loads(body)
                assert not ans["truncated"]
                got = [dict(zip(ans["columns"], r)) for r in ans["rows"]]
                assert got == want, (q, got[:3], want[:3])
                status, _, body = s.sql(q, fmt="objects")
                assert status == 200 and json.loads(body) == want, q
                want_csv = subprocess.run(["sqlite3", "-csv", "-header", db, q], capture_output=True, text=True,
                                          check=True).stdout
                status, headers, body = s.sql(q, fmt="csv")
                assert status == 200 and headers["content-type"].startswith("text/csv")
                assert list(csv.reader(io.StringIO(body.decode()))) == list(csv.reader(io.StringIO(want_csv))), q
            # POST with named and positional parameters, Accept: text/csv
            ans = s.json("POST", "/api/sql", {"sql": "SELECT count(*) FROM goroutines WHERE goid > :g",
                                              "params": {"g": 10}})
            n = sqlite3.connect(db).execute("SELECT count(*) FROM goroutines WHERE goid > 10").fetchone()[0]
            assert ans["rows"] == [[n]] and ans["types"] == ["integer"]
            ans = s.json("POST", "/api/sql", {"sql": "SELECT ? + ?", "params": [2, 3]})
            assert ans["rows"] == [[5]]
            status, headers, body = s.request("GET", "/api/sql?sql=SELECT+1+AS+one", headers={"Accept": "text/csv"})
            assert status == 200 and body.decode().split() == ["one", "1"]
        finally:
            s.close()


WRITES = [
    "INSERT INTO meta VALUES ('x', 'y')",
    "UPDATE goroutines SET status = 'gone'",
    "DELETE FROM goroutines",
    "DROP TABLE goroutines",
    "CREATE TABLE evil (x)",
    "ATTACH DATABASE '/tmp/glimpse-evil.db' AS evil",
    "PRAGMA writable_schema = 1",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA user_version = 7",
    "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')",
    "VACUUM INTO '/tmp/glimpse-evil-copy.db'",
    "SELECT 1; DELETE FROM goroutines",
    "REINDEX",
    "ANALYZE",
    "BEGIN",
]


def test_serve_sql_refuses_every_write_and_leaves_the_database_byte_identical():
    with tempfile.TemporaryDirectory() as tmp:
        db = stored_db(tmp)
        s = Server(db=db)
        try:
            time.sleep(0.2)
            before = files_digest(db)
            for q in WRITES:
                status, _, body = s.sql(q)
                assert status in (400, 403), (q, status, body)
                assert "error" in json.loads(body), body
                status, _, body = s.request("POST", "/api/sql", {"sql": q})
                assert status in (400, 403), (q, status, body)
            assert files_digest(db) == before
            assert not os.path.exists("/tmp/glimpse-evil.db") and not os.path.exists("/tmp/glimpse-evil-copy.db")
            # refused for the right reason, not by accident
            assert b"read-only" in s.sql("DELETE FROM goroutines")[2]
            assert b"one statement" in s.sql("SELECT 1; SELECT 2")[2]
            status, _, body = s.sql("SELECT * FROM no_such_table")
            assert status == 400 and b"no such table" in body
        finally:
            s.close()
        ok = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]
        assert ok == "ok"


def test_serve_runaway_query_is_stopped_by_the_time_limit_while_others_are_answered():
    with tempfile.TemporaryDirectory() as tmp:
        db = stored_db(tmp, 20)
        s = Server("--sql-timeout-ms", 1500, db=db)
        try:
            result = {}

            def runaway():
                t0 = time.time()
                result["r"] = s.sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                    "SELECT count(*) FROM c")
                result["t"] = time.time() - t0

            th = threading.Thread(target=runaway)
            th.start()
            time.sleep(0.3)
            quick = []
            while th.is_alive():
                t0 = time.time()
                status, _, body = s.sql("SELECT count(*) FROM goroutines")
                assert status == 200, body
                quick.append(time.time() - t0)
                time.sleep(0.05)
            th.join()
            status, _, body = result["r"]
            assert status == 400 and b"time limit of 1500 ms" in body, body
            assert 1.4 < result["t"] < 5, result["t"]
            assert len(quick) >= 5 and max(quick) < 0.5, quick
            metrics = s.request("GET", "/metrics")[2].decode()
            assert re.search(r"^glimpse_sql_queries_limited_total [1-9]", metrics, re.M), metrics
            print(f"note: runaway stopped after {result['t']:.2f} s; {len(quick)} queries answered meanwhile, "
                  f"slowest {max(quick) * 1e3:.1f} ms")
        finally:
            s.close()


ROUTES = [("GET", "/api/sql?sql=SELECT+1"), ("POST", "/api/sql"), ("GET", "/api/snapshots"),
          ("POST", "/api/snapshots"), ("GET", "/api/snapshots/1"), ("GET", "/api/snapshots/1/goroutines"),
          ("GET", "/api/snapshots/1/groups"), ("GET", "/api/traces"), ("POST", "/api/traces"),
          ("GET", "/api/traces/1"), ("POST", "/api/traces/1/stop"), ("GET", "/api/traces/1/events"),
          ("GET", "/api/traces/1/stream"), ("GET", "/metrics"), ("GET", "/api/schedules"), ("GET", "/api/processes"),
          ("POST", "/grafana/query"),
          ("POST", "/api/schedules"), ("DELETE", "/api/schedules/1")]


def test_serve_token_is_required_on_every_route_but_health():
    s = Server()
    try:
        for method, path in ROUTES:
            for tok in (None, "wrong-token-0123456789", s.token[:-1]):
                status, _, body = s.request(method, path, body="{}" if method == "POST" else None, token=tok)
                assert status == 401, (method, path, tok, status, body)
                assert "error" in json.loads(body)
        status, _, body = s.request("GET", "/api/health", token=None)
        assert status == 200 and json.loads(body)["status"] == "ok"
        # The UI's way: ?token= once, then the cookie.
        status, headers, _ = s.request("GET", f"/api/snapshots?token={s.token}", token=None)
        assert status == 200 and "glimpse_token=" in headers.get("set-cookie", ""), headers
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"]
        status, _, _ = s.request("GET", "/api/snapshots", token=None, headers={"Cookie": cookie})
        assert status == 200
        mode = os.stat(s.db + ".token").st_mode & 0o777
        assert mode == 0o600, oct(mode)
    finally:
        s.close()


def test_serve_refuses_plain_http_on_a_non_loopback_address_and_serves_tls():
    with tempfile.TemporaryDirectory() as tmp:
        p = glimpse("serve", "--db", os.path.join(tmp, "g.db"), "--listen", "0.0.0.0:0", timeout=30)
        assert p.returncode != 0 and "not a loopback address" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(tmp, "g.db"))
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        s = Server(tls=(cert, key))
        try:
            assert s.url.startswith("https://")
            assert s.get("/api/health", token=None)["status"] == "ok"
            assert s.json("GET", "/api/sql?sql=SELECT+42")["rows"] == [[42]]
            status, _, _ = s.request("GET", "/api/snapshots", token=None)
            assert status == 401
            # plain HTTP to the TLS port gets no answer
            with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
                c.sendall(b"GET /api/health HTTP/1.0\r\n\r\n")
                try:
                    data = c.recv(100)
                except (ConnectionResetError, socket.timeout):
                    data = b""
            assert not data.startswith(b"HTTP/1.1 200"), data
        finally:
            s.close()


def test_serve_answers_bad_requests_clearly_and_keeps_serving():
    s = Server()
    try:
        status, _, body = s.request("POST", "/api/snapshots", body="{not json")
        assert status == 400 and b"not JSON" in body, body
        status, _, body = s.request("POST", "/api/sql", body="x" * (2 << 20))
        assert status == 413 and b"limit" in body, body
        status, _, body = s.request("GET", "/api/nothing-here")
        assert status == 404 and json.loads(body)["error"]
        status, headers, body = s.request("DELETE", "/api/snapshots")
        assert status == 405 and "GET" in headers["allow"] and "POST" in headers["allow"], (status, headers)
        status, _, body = s.request("GET", "/api/snapshots?limit=abc")
        assert status == 400 and b"limit" in body
        status, _, body = s.request("POST", "/api/snapshots", {"pid": 99999999999})
        assert status == 400, body
        status, _, body = s.request("POST", "/api/snapshots", {"pid": 4194000})
        assert status == 404 and b"no process" in body, body
        status, _, body = s.request("POST", "/api/traces", {"pid": os.getpid(), "regex": "(("})
        assert status in (400, 404), body
        status, _, body = s.request("GET", "/api/snapshots/12345")
        assert status == 404
        # Headers one byte a second: that client waits alone; others are answered.
        slow = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        stop = threading.Event()

        def dribble():
            for ch in b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                if stop.is_set():
                    return
                try:
                    slow.send(bytes([ch]))
                except OSError:
                    return
                time.sleep(1)

        th = threading.Thread(target=dribble, daemon=True)
        th.start()
        time.sleep(1.5)
        for _ in range(20):
            t0 = time.time()
            assert s.get("/api/health", token=None)["status"] == "ok"
            assert time.time() - t0 < 0.5
        # Headers over the limit are refused.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (128 << 10) + b"\r\n\r\n")
            resp = c.recv(200)
        assert re.match(rb"HTTP/1\.1 4(31|13|00)", resp), resp[:100]
        stop.set()
        slow.close()
        assert s.proc.poll() is None
        assert s.get("/api/health", token=None)["status"] == "ok"
    finally:
        s.close()


def goroutine_shape(g):
    return (g["goid"], g["status"], g["wait_reason"], tuple((f["func"], f["file"], f["line"]) for f in g["frames"]))


def test_serve_snapshot_over_the_api_equals_the_clis_on_the_same_process():
    for v in ("1.19", "1.23", "1.26"):
        t = target(v, "", "-goroutines", 300)
        s = Server()
        try:
            time.sleep(0.5)  # let the fixture settle: every worker parked
            cli = glimpse_json("--json", "snapshot", "--pid", t.pid, "--no-store")
            ans = s.json("POST", "/api/snapshots", {"pid": t.pid}, expect=201)
            assert ans["snapshot_id"] >= 1 and ans["goroutines"] == len(cli["goroutines"]), ans
            api = s.get(f"/api/snapshots/{ans['snapshot_id']}")
            assert api["pid"] == t.pid and api["go_version"] == cli["go_version"]
            parked = lambda snap: {goroutine_shape(g) for g in snap["goroutines"]
                                   if any(f["func"] == "main.parkedWorker" for f in g["frames"])}
            assert len(parked(cli)) == 300 and parked(api) == parked(cli), v
            # variables: the same values as the CLI's
            vals = lambda snap: {(g["goid"], fr["func"], var["name"], json.dumps(var["value"], sort_keys=True))
                                 for g in snap["goroutines"] for fr in g["frames"] for var in fr["vars"]
                                 if fr["func"] == "main.parkedWorker"}
            assert vals(api) == vals(cli) and len(vals(cli)) >= 300, v
            # filters and groups
            some = next(g for g in api["goroutines"] if any(f["func"] == "main.parkedWorker" for f in g["frames"]))
            idv = next(var["value"] for f in some["frames"] for var in f["vars"] if var["name"] == "id")
            page = s.get(f"/api/snapshots/{ans['snapshot_id']}/goroutines?func=parkedWorker&var=id={idv}")
            assert page["total"] == 1 and page["goroutines"][0]["goid"] == some["goid"], page
            # a string by its text and as JSON, a name alone, and values that are not there
            strs = [(var["name"], var["value"]) for f in some["frames"] for var in f["vars"]
                    if isinstance(var["value"], str) and var["value"]]
            assert strs, some  # parkedWorker's name
            name, text = strs[0]
            for q in (text, json.dumps(text)):
                page = s.get(f"/api/snapshots/{ans['snapshot_id']}/goroutines?var="
                             + urllib.parse.quote(f"{name}={q}"))
                assert some["goid"] in [g["goid"] for g in page["goroutines"]], (name, q, page["total"])
            page = s.get(f"/api/snapshots/{ans['snapshot_id']}/goroutines?func=parkedWorker&var=id")
            assert page["total"] == len(parked(api)), page["total"]
            for q in ("id=-12345", "nosuchvar", "nosuchvar=1"):
                assert s.get(f"/api/snapshots/{ans['snapshot_id']}/goroutines?var={q}")["total"] == 0, q
            page = s.get(f"/api/snapshots/{ans['snapshot_id']}/goroutines?status=waiting&limit=7&offset=3")
            assert len(page["goroutines"]) == 7 and page["total"] >= 300
            groups = s.get(f"/api/snapshots/{ans['snapshot_id']}/groups")["groups"]
            assert groups[0]["goroutines"] >= 300 and len(groups[0]["goids"]) == groups[0]["goroutines"]
            assert any(f["func"] == "main.parkedWorker" for f in groups[0]["frames"])
            lst = s.get(f"/api/snapshots?pid={t.pid}")["snapshots"]
            assert [x["snapshot_id"] for x in lst] == [ans["snapshot_id"]]
        finally:
            s.close()
            t.stop()


def test_serve_trace_over_the_api_gives_the_clis_events_live_and_stored():
    path = next(p for v, fl, p in fixtures("tracee", flavours=[""]) if v == "1.26")
    tr = Tracee(path)
    s = Server()
    try:
        ans = s.json("POST", "/api/traces", {"pid": tr.pid, "regex": "^main\\.(Lookup|Divide)$", "duration_s": 30},
                     expect=201)
        tid = ans["trace_id"]
        assert sorted(ans["functions"]) == ["main.Divide", "main.Lookup"], ans
        # a live stream, read while the calls happen
        stream_lines = []

        def read_stream():
            c = s.conn(timeout=30)
            c.request("GET", f"/api/traces/{tid}/stream", headers={"Authorization": f"Bearer {s.token}"})
            r = c.getresponse()
            assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
            while True:
                line = r.fp.readline()
                if not line:
                    break
                stream_lines.append(line.decode().rstrip("\n"))
                if line.startswith(b"event: end"):
                    break
            c.close()

        th = threading.Thread(target=read_stream)
        th.start()
        time.sleep(0.3)
        tr.run("where 20")
        time.sleep(0.5)
        live = s.get(f"/api/traces/{tid}")
        assert live["state"] == "running" and "live" in live, live
        stopped = s.json("POST", f"/api/traces/{tid}/stop")
        assert stopped["state"] == "done" and stopped["end_reason"] == "stopped on request", stopped
        th.join(30)
        events = s.get(f"/api/traces/{tid}/events")["events"]
        calls = [e for e in events if e["kind"] == "call"]
        rets = [e for e in events if e["kind"] == "return"]
        assert len(calls) == 20 and len(rets) == 20, (len(calls), len(rets))
        assert [c["args"]["id"] for c in calls] == list(range(20))
        assert all(r["duration_ns"] > 0 for r in rets)
        streamed = [json.loads(l[6:]) for l in stream_lines if l.startswith("data: {\"event_id\"")]
        assert [e["event_id"] for e in streamed] == [e["event_id"] for e in events], (len(streamed), len(events))
        assert s.get(f"/api/traces/{tid}/events?after={events[9]['event_id']}&limit=5")["events"] == events[10:15]
        # the CLI on the same process gives the same events (but ids and times)
        cli = subprocess.Popen([GLIMPSE, "trace", "--pid", str(tr.pid), "--json", "--no-store",
                                "^main\\.(Lookup|Divide)$"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while True:
            line = cli.stderr.readline()
            if " probes in pid " in line or time.time() > deadline:
                break
        tr.run("where 20")
        time.sleep(0.4)
        cli.send_signal(signal.SIGINT)
        out, _ = cli.communicate(30)
        cev = [json.loads(l) for l in out.splitlines() if l.strip()]
        key = lambda e: (e["func"], e["kind"], json.dumps(e["args"], sort_keys=True), json.dumps(e["results"]))
        assert [key(e) for e in cev] == [key(e) for e in events]
        assert s.json("POST", f"/api/traces/{tid}/stop", expect=409)
        assert s.json("GET", "/api/traces/999", expect=404)
    finally:
        s.close()
        tr.stop()


def test_serve_sigterm_stops_trace_sessions_and_flushes_their_events():
    path = next(p for v, fl, p in fixtures("tracee", flavours=[""]) if v == "1.23")
    tr = Tracee(path)
    s = Server()
    try:
        tid = s.json("POST", "/api/traces", {"pid": tr.pid, "regex": "^main\\.Lookup$"}, expect=201)["trace_id"]
        tr.run("where 50")
        assert s.stop(signal.SIGTERM) == 0, s.stderr()
        db = sqlite3.connect(s.db)
        state, reason = db.execute("SELECT state, end_reason FROM traces WHERE id = ?", (tid,)).fetchone()
        assert state == "done" and reason == "the server stopped", (state, reason)
        n = db.execute("SELECT count(*) FROM events e JOIN trace_probes tp ON tp.probe = e.probe WHERE tp.trace = ?",
                       (tid,)).fetchone()[0]
        assert n == 100, n
        # probes detached: the process runs on, untraced
        tr.run("where 5")
    finally:
        s.close()
        tr.stop()


def test_serve_sigkill_during_snapshots_loses_nothing_answered_with_an_id():
    t = target("1.23", "", "-goroutines", 500)
    s = Server("--quiet")
    ids, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            try:
                status, _, body = s.request("POST", "/api/snapshots", {"pid": t.pid}, timeout=30)
            except OSError:
                return
            if status == 201:
                ids.append(json.loads(body)["snapshot_id"])

    try:
        th = threading.Thread(target=loop)
        th.start()
        deadline = time.time() + 60
        while len(ids) < 5 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.13)
        s.proc.kill()
        s.proc.wait()
        stop.set()
        th.join(30)
        assert len(ids) >= 5, ids
        db = sqlite3.connect(s.db)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in db.execute("SELECT id FROM snapshots")}
        assert set(ids) <= stored, (ids, stored)
        for i in ids:
            n = db.execute("SELECT count(*) FROM goroutines WHERE snapshot = ?", (i,)).fetchone()[0]
            assert n >= 500, (i, n)
        print(f"note: {len(ids)} snapshots answered before SIGKILL, all stored")
    finally:
        stop.set()
        s.close()
        t.stop()


def test_serve_schedules_metrics_and_one_capture_per_process():
    t = target("1.23", "", "-goroutines", 100)
    s = Server("--every", "300ms", "--pid", t.pid, "--no-vars")
    try:
        time.sleep(1.6)
        scheds = s.get("/api/schedules")["schedules"]
        assert len(scheds) == 1 and scheds[0]["pid"] == t.pid and scheds[0]["runs"] >= 3, scheds
        added = s.json("POST", "/api/schedules", {"comm": "target", "every": "250ms", "vars": False}, expect=201)
        time.sleep(1.0)
        s.json("DELETE", f"/api/schedules/{added['schedule_id']}")
        s.json("DELETE", f"/api/schedules/{scheds[0]['schedule_id']}")
        n = s.get("/api/snapshots?limit=1000")["snapshots"]
        assert len(n) >= 5, len(n)
        time.sleep(0.5)
        n2 = len(s.get("/api/snapshots?limit=1000")["snapshots"])
        time.sleep(0.8)
        assert len(s.get("/api/snapshots?limit=1000")["snapshots"]) == n2, "schedules still running after DELETE"
        assert s.json("DELETE", "/api/schedules/999", expect=404)
        status, _, body = s.request("POST", "/api/schedules", {"pid": t.pid, "every": "1ms"})
        assert status == 400
        m = s.request("GET", "/metrics")[2].decode()
        for name in ("glimpse_snapshots_total", "glimpse_capture_seconds_bucket", "glimpse_snapshot_seconds_count",
                     "glimpse_http_requests_total", "glimpse_events_stored_total", "glimpse_events_lost_total",
                     "glimpse_sql_queries_limited_total", "glimpse_trace_sessions_running"):
            assert re.search(rf"^{name}[{{ ]", m, re.M), name
        taken = int(re.search(r"^glimpse_snapshots_total (\d+)", m, re.M).group(1))
        assert taken >= 5
        assert re.search(r'glimpse_http_requests_total\{route="/api/schedules",code="201"\} 1', m), m
    finally:
        s.close()
        t.stop()


def test_serve_keep_deletes_old_snapshots_in_the_background():
    t = target("1.23", "", "-goroutines", 50)
    s = Server("--keep", "2s")
    try:
        first = s.json("POST", "/api/snapshots", {"pid": t.pid}, expect=201)
        second = s.json("POST", "/api/snapshots", {"pid": t.pid}, expect=201)
        time.sleep(12.5)  # past --keep, and one background pass (every 10 s)
        third = s.json("POST", "/api/snapshots", {"pid": t.pid}, expect=201)
        assert third["snapshot_id"] > second["snapshot_id"] > first["snapshot_id"], "a snapshot id was given twice"
        kept = [x["taken_at"] for x in s.get("/api/snapshots")["snapshots"]]
        # everything past --keep went, but the newest, which keeps ids from being reused
        assert kept == [third["taken_at"], second["taken_at"]], kept
        ans = s.json("GET", f"/api/sql?sql=SELECT+count(*)+FROM+goroutines+WHERE+snapshot={first['snapshot_id']}")
        assert ans["rows"] == [[0]]
        av = s.json("GET", "/api/sql?sql=PRAGMA+auto_vacuum")
        assert av["rows"] == [[2]], av
    finally:
        s.close()
        t.stop()


def test_serve_lists_go_processes_containerized_ones_included_and_snapshots_them():
    plain = target("1.26", ".pie", "-goroutines", 30)
    path = next(p for v, fl, p in fixtures("target", flavours=[".stripped"]) if v == "1.23")
    boxed = start_target_in_pid_namespace(path, "-goroutines", 40, "-raw-sleep")
    sleeper = subprocess.Popen(["sleep", "100"])
    s = Server()
    try:
        procs = {p["pid"]: p for p in s.get("/api/processes")["processes"]}
        assert sleeper.pid not in procs and os.getpid() not in procs
        p = procs[plain.pid]
        assert p["pie"] and not p["stripped"] and p["go_version"].startswith("go1.26") and p["ns_pid"] == plain.pid
        assert not p["other_ns"] and p["exe"].endswith("go1.26/target.pie") and p["command"] == "target.pie", p
        b = procs[boxed.pid]
        assert b["stripped"] and b["other_ns"] and b["ns_pid"] == boxed.ns_pid == 1 and b["cgroup"], b
        # the containerized process's running goroutine gets its stack over the API too
        ans = s.json("POST", "/api/snapshots", {"pid": boxed.pid}, expect=201)
        snap = s.get(f"/api/snapshots/{ans['snapshot_id']}")
        running = [g for g in snap["goroutines"] if g["status"] in ("running", "syscall") and g["frames"]]
        assert running and all(g["thread"] for g in running), [(g["status"], g["stack_note"]) for g in snap["goroutines"]
                                                               if g["status"] in ("running", "syscall")]
    finally:
        sleeper.kill()
        sleeper.wait()
        s.close()
        boxed.stop()
        plain.stop()
