"""The web UI served by `glimpse serve` at /: the embedded bundle and its headers over real
HTTP, and the browser tests (web/test/ui.test.mjs: playwright-core driving Debian's chromium)
against a real server and real fixture processes, screenshots in build/webui-shots."""
import os
import re
import shutil
import subprocess
import tempfile

from harness import ROOT, Skip, fixtures, start_target
from serve import Server


def target(*args):
    path = next(p for v, fl, p in fixtures("target", flavours=[""]) if v == "1.23")
    return start_target(path, *args)


def test_webui_is_served_with_its_token_cookie_csp_and_cache_headers():
    s = Server()
    try:
        status, _, body = s.request("GET", "/", token=None)
        assert status == 401, (status, body)
        status, headers, body = s.request("GET", f"/?token={s.token}", token=None)
        assert status == 200 and headers["content-type"].startswith("text/html"), headers
        assert "glimpse_token=" in headers.get("set-cookie", "") and "HttpOnly" in headers["set-cookie"]
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp and "'unsafe-inline'" not in csp, csp
        nonce = re.search(r"'nonce-([0-9a-f]{32})'", csp).group(1)
        assert f'content="{nonce}"'.encode() in body, body[:400]
        assert headers["cache-control"] == "no-cache" and headers["referrer-policy"] == "no-referrer"
        # A second answer has another nonce.
        _, h2, _ = s.request("GET", "/")
        assert nonce not in h2["content-security-policy"]
        js = re.search(rb'src="(/assets/main-[A-Z0-9]+\.js)"', body).group(1).decode()
        status, headers, plain = s.request("GET", js)
        assert status == 200 and headers["content-type"].startswith("text/javascript"), headers
        assert "immutable" in headers["cache-control"] and "content-encoding" not in headers
        status, headers, gz = s.request("GET", js, headers={"Accept-Encoding": "gzip"})
        assert headers.get("content-encoding") == "gzip" and len(gz) < len(plain) / 2, (headers, len(gz))
        # Every view has its own URL: unknown paths outside /api answer the page.
        for path in ("/snapshots/7", "/traces/new?pid=1", "/sql", "/recordings/3/replay", "/recordings/3/debug?at=snapshot:2"):
            status, headers, b = s.request("GET", path)
            assert status == 200 and b'<div id="app">' in b, (path, status)
        status, _, b = s.request("GET", "/assets/nothing-ABC.js")
        assert status == 404, status
        status, _, b = s.request("GET", "/api/nothing-here")
        assert status == 404 and b"no such route" in b
        status, headers, _ = s.request("PUT", "/api/snapshots")
        assert status == 405 and sorted(headers["allow"].split(", ")) == ["GET", "POST"], headers
    finally:
        s.stop()


def test_webui_saved_queries_and_function_completion_routes():
    t = target("-goroutines", "3")
    s = Server()
    try:
        q = s.json("POST", "/api/queries", {"name": "states", "sql": "SELECT 1", "author": "ana"}, expect=201)
        q2 = s.json("POST", "/api/queries", {"name": "states", "sql": "SELECT 2", "author": "bo"}, expect=201)
        assert q2["query_id"] == q["query_id"] and q2["sql"] == "SELECT 2" and q2["created"] == q["created"]
        assert q2["updated"] >= q["updated"] and q2["author"] == "bo"
        assert [x["name"] for x in s.get("/api/queries")["queries"]] == ["states"]
        s.json("POST", "/api/queries", {"name": "", "sql": "x"}, expect=400)
        s.json("DELETE", f"/api/queries/{q['query_id']}")
        s.json("DELETE", f"/api/queries/{q['query_id']}", expect=404)
        f = s.get(f"/api/processes/{t.pid}/functions?match=hand&limit=5")
        assert f["functions"][0] == "main.Handle" and f["total"] >= 1, f
        assert all("hand" in n.lower() for n in f["functions"])
        s.json("GET", "/api/processes/4194000/functions", expect=404)
    finally:
        s.stop()


def test_webui_in_chromium_snapshot_variables_flame_compare_trace_sql_axe():
    node = shutil.which("node")
    chromium = shutil.which("chromium")
    if not node or not chromium:
        raise Skip("needs node and Debian's chromium (scripts/setup.sh installs them)")
    if not os.path.isdir(os.path.join(ROOT, "web", "node_modules", "playwright-core")):
        raise Skip("needs web/node_modules (npm ci in web/, as scripts/setup.sh does)")
    small = target("-goroutines", "20")
    big = target("-goroutines", "60")
    tracee = target("-goroutines", "2", "-call-every", "20ms")
    s = Server()
    shots = os.path.join(ROOT, "build", "webui-shots")
    try:
        env = dict(os.environ, GLIMPSE_URL=s.url, TARGET_PID=str(small.pid), TARGET2_PID=str(big.pid),
                   TRACEE_PID=str(tracee.pid), SHOTS=shots)
        r = subprocess.run([node, os.path.join(ROOT, "web", "test", "ui.test.mjs")], env=env, capture_output=True,
                           text=True, timeout=600)
        out = r.stdout
        print(out)
        assert r.returncode == 0, out + "\n" + "\n".join(l for l in r.stderr.splitlines() if "[pid=" not in l)[-3000:]
        assert "all 11 checks passed" in out and out.count("\nok ") + out.startswith("ok ") == 11, out
        for name in ("02-snapshot", "04-variable", "05-flame-filtered", "06-compare", "08-trace-live", "11-sql-chart"):
            assert os.path.getsize(os.path.join(shots, name + ".png")) > 10000, name
    finally:
        s.stop()


def test_webui_replay_debugger_steps_backwards_and_sees_a_local_change():
    """The replay debugger page in chromium (ui.test.mjs, its 'replay:' step) on a real rr
    recording of the Go 1.23 webapp made through glimpse record's proxy: opened at a
    snapshot's moment, a breakpoint where main.holder's `current` changes, continue, next
    past the change, reverse-next and reverse-step back to the earlier value; axe on the
    page in both themes. Skipped with the reason where rr does not work."""
    from test_record_rr import RR, check_replayable, kill_replay_servers, need_rr, record_session, with_replayable_recording
    node, chromium = shutil.which("node"), shutil.which("chromium")
    if not node or not chromium or not os.path.isdir(os.path.join(ROOT, "web", "node_modules", "playwright-core")):
        raise Skip("needs node, Debian's chromium and web/node_modules (scripts/setup.sh)")
    need_rr()

    def run(tmp):
        db, row, snaps, r = record_session("1.23", tmp, requests=(3, 2), keep=True)
        try:
            check_replayable(row)
            sid, _, current = snaps[0]
            s = Server(db=db, env={"GLIMPSE_RR": RR})
            shots = os.path.join(ROOT, "build", "webui-shots")
            try:
                env = dict(os.environ, GLIMPSE_URL=s.url, SHOTS=shots, ONLY="^replay:", RECORDING_ID=str(row["id"]),
                           SNAPSHOT_ID=str(sid), CURRENT=str(current))
                p = subprocess.run([node, os.path.join(ROOT, "web", "test", "ui.test.mjs")], env=env,
                                   capture_output=True, text=True, timeout=600)
                print(p.stdout)
                assert p.returncode == 0, p.stdout + "\n" + p.stderr[-3000:]
                assert "ok replay: step backwards and see a local change" in p.stdout, p.stdout
                assert "axe: debugger=0 debugger-dark=0" in p.stdout, p.stdout
                for name in ("15-debugger-moment", "16-debugger-forward", "17-debugger-reversed", "18-debugger-dark"):
                    assert os.path.getsize(os.path.join(shots, name + ".png")) > 10000, name
            finally:
                s.close()
        finally:
            r.stop(timeout=300)
            kill_replay_servers(db)

    with_replayable_recording(run)
