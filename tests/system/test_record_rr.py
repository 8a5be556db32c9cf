"""glimpse record under rr and glimpse replay: static Go 1.23 and 1.26 webapp fixtures recorded
through the proxy, snapshots taken while recording, the recording stopped, packed, archived and
registered; a replay at a snapshot's moment shows the parked goroutine's local with the value the
snapshot stored (and a later snapshot's moment the later value); /api/recordings; a dynamically
linked and a Go 1.19 build reported not replayable here with the reason. Skipped, with the reason
printed, where no working rr is found (a tiny static Go program is recorded and replayed to tell)."""
import contextlib
import json
import socket
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time

from harness import GLIMPSE, Skip, glimpse
from serve import Server
from test_record import Recorder, alive, webapp

RR = os.environ.get("GLIMPSE_RR", "rr")
_rr = {}

TINY = """package main

import "fmt"

func main() { fmt.Println("hello from rr") }
"""


def rr_status():
    """None when rr records and replays a tiny static Go program here, else why not."""
    if "why" in _rr:
        return _rr["why"]
    why = None
    try:
        v = subprocess.run([RR, "--version"], capture_output=True, text=True, timeout=30)
        why = None if v.returncode == 0 else f"`{RR} --version` failed: {v.stderr.strip()[:200]}"
    except OSError as e:
        why = f"no rr ({RR}: {e}); ../shared/tools/rr-soft/install.sh builds rr.soft on PMU-less VMs"
    if not why:
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "main.go"), "w") as f:
                f.write(TINY)
            with open(os.path.join(d, "go.mod"), "w") as f:
                f.write("module tiny\n\ngo 1.21\n")
            env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod",
                       GOCACHE=os.path.expanduser("~/.cache/glimpse/go1.23"))
            subprocess.run(["/usr/lib/go-1.23/bin/go", "build", "-o", "tiny", "."], cwd=d, env=env, check=True)
            rec_env = dict(os.environ, _RR_PATCH_LOC_DB_DIR=os.path.join(d, "cache"), GOMAXPROCS="2")
            why = "rr recorded nothing"
            for attempt in range(3):  # a fresh replay fails once CPUID's APIC ID drifted: try again
                t = os.path.join(d, f"t{attempt}")
                r = subprocess.run([RR, "record", "-W", "-o", t, os.path.join(d, "tiny")], env=rec_env,
                                   capture_output=True, text=True, timeout=120)
                if r.returncode != 0:
                    why = f"rr record -W failed: {r.stderr.strip()[-300:]}"
                    continue
                p = subprocess.run([RR, "replay", "-W", "-a", t], capture_output=True, text=True, timeout=120)
                if p.returncode == 0 and "hello from rr" in p.stdout:
                    why = None
                    break
                why = f"rr replay -W -a of a static Go program failed: {p.stderr.strip()[-300:]}"
    _rr["why"] = why
    return why


def need_rr():
    why = rr_status()
    if why:
        raise Skip(why)


def wait_done(db, rid, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = sqlite3.connect(db)
        c.row_factory = sqlite3.Row
        row = c.execute("SELECT * FROM recordings WHERE id = ?", (rid,)).fetchone()
        c.close()
        if row and row["status"] not in ("starting", "recording"):
            return dict(row)
        time.sleep(0.5)
    raise AssertionError(f"recording {rid} not finished within {timeout} s")


def holder(db, snapshot):
    """(goid, value of holder's `current`) as the snapshot stored them."""
    c = sqlite3.connect(db)
    row = c.execute("SELECT goid, value FROM variables WHERE snapshot = ? AND name = 'current' "
                    "AND goid IN (SELECT g.goid FROM goroutines g JOIN frames f ON f.stack = g.stack_id "
                    "WHERE g.snapshot = ? AND f.func = 'main.holder')", (snapshot, snapshot)).fetchone()
    c.close()
    assert row, f"snapshot {snapshot} has no main.holder with `current`"
    return row[0], json.loads(row[1])


def snapshot(pid, db):
    out = glimpse("--json", "snapshot", "--pid", pid, "--db", db, check=True).stdout
    return json.loads(out)["snapshot_id"]


def gdb_current(rid, at, goid, db):
    """The value of main.holder's `current` in goroutine goid at `at`, as gdb shows it in
    the replay (glimpse replay's glimpse-goroutine command)."""
    p = glimpse("replay", rid, "--at", at, "--db", db, "--rr", RR, "--gdb", "--", "-batch",
                "-ex", f"glimpse-goroutine {goid}", "-ex", "bt", "-ex", "frame function main.holder",
                "-ex", "p current", timeout=600)
    m = re.findall(r"^\$\d+ = (-?\d+)", p.stdout, re.M)
    assert m, f"gdb did not show current: {p.stdout[-2000:]} {p.stderr[-2000:]}"
    return int(m[-1]), p


def kill_replay_servers(db):
    """Ends the replay servers glimpse replay left running on db's recordings (-k keeps them)."""
    c = sqlite3.connect(db)
    pids = [p for (p,) in c.execute("SELECT replay_pid FROM recordings WHERE replay_pid IS NOT NULL")]
    c.close()
    for pid in pids:
        try:
            os.killpg(pid, 9)
        except ProcessLookupError:
            pass


def record_session(version, tmp, requests=(3, 2), keep=False):
    """Records one client of the webapp built by go<version>, with a snapshot after each
    batch of requests; returns (db, recording row, [(snapshot id, goid, current)]), and
    with keep the glimpse record still running (its warm replay server with it) last."""
    db = os.path.join(tmp, "glimpse.db")
    r = Recorder("--key", "header:X-Client", "--idle", 0, "--db", db, "--rr", RR, tmp=tmp, no_rr=False,
                 app=webapp(version))
    snaps = []
    pid = None
    for n in requests:
        for _ in range(n):
            pid, count = r.hit({"X-Client": "alice"})
        sid = snapshot(pid, db)
        goid, current = holder(db, sid)
        assert current == count, (current, count)
        snaps.append((sid, goid, current))
    c = sqlite3.connect(db)
    rid = c.execute("SELECT id FROM recordings WHERE status = 'recording' AND pid = ?", (pid,)).fetchone()[0]
    linked = c.execute("SELECT count(*) FROM snapshots WHERE recording = ?", (rid,)).fetchone()[0]
    c.close()
    assert linked == len(requests)
    t0 = time.time()
    p = glimpse("record", "--stop", rid, "--db", db, check=True)
    assert "SIGTERM sent" in p.stdout
    row = wait_done(db, rid)
    print(f"go{version}: recording {rid} finished {time.time() - t0:.1f} s after --stop: {row['bytes_raw']} bytes "
          f"({row['bytes_binaries']} binaries) -> {row['bytes_packed']} archived, events {row['events']}, "
          f"replayable {row['replayable']} {row['why_not'] or ''}")
    if keep:
        return db, row, snaps, r
    r.stop(timeout=300)
    return db, row, snaps


class Drift(Exception):
    """A recording that cannot replay because no CPU has its APIC ID any more."""


def check_replayable(row):
    """Asserts the recording replays, or raises Drift when it cannot for the one reason
    a test cannot control: the host moved the VM's CPU (CPUID leaf 1's APIC ID changed)."""
    if row["status"] == "done" and row["replayable"] == 0 and "APIC ID" in (row["why_not"] or ""):
        raise Drift(row["why_not"])
    assert row["status"] == "done" and row["replayable"] == 1, row


def with_replayable_recording(fn, tries=3):
    """Runs fn(tmp) in a fresh directory until it does not raise Drift, up to tries times;
    then skips with the reason. On a VM whose host moves its CPUs (measured on AMD EPYC
    here: a vCPU's APIC ID changed after 60 s, then every few seconds), a recording replays
    only while some CPU has the APIC ID it started with."""
    why = None
    for attempt in range(tries):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                return fn(tmp)
            except Drift as e:
                why = str(e)
                print(f"try {attempt + 1}: not replayable, the host moved the CPU: {why[:200]}")
    raise Skip(f"{tries} recordings in a row could not replay because this VM's CPU APIC ID changed "
               f"between recording and replay (no CPUID faulting here): {why[:300]}")


def check_recording_replays_at_snapshots(version):
    need_rr()
    with_replayable_recording(lambda tmp: replays_at_snapshots(version, tmp))


def replays_at_snapshots(version, tmp):
    db, row, snaps, r = record_session(version, tmp, keep=True)
    try:
        check_replayable(row)
        assert row["bytes_raw"] > row["bytes_binaries"] > 0 and 0 < row["bytes_packed"] < row["bytes_raw"], row
        assert os.path.exists(row["archive"]) and row["go_version"].startswith(f"go{version}"), row
        c = sqlite3.connect(db)
        events = [e for (e,) in c.execute("SELECT rr_event FROM snapshots WHERE recording = ? ORDER BY id",
                                           (row["id"],))]
        c.close()
        assert all(events) and events == sorted(events), events
        # Through the warm replay server glimpse record started when the recording stopped.
        for (sid, goid, current), ev in zip(snaps, events):
            got, p = gdb_current(row["id"], f"snapshot:{sid}", goid, db)
            assert "warm rr replay" in p.stderr, p.stderr
            assert got == current, f"snapshot {sid} stored current={current}, the replay at event {ev} shows {got}"
            print(f"go{version}: snapshot {sid} (current={current}) -> rr event {ev}: replay shows current={got}")
    finally:
        r.stop(timeout=300)
        kill_replay_servers(db)


def test_record_rr_go123_replays_at_each_snapshots_moment():
    check_recording_replays_at_snapshots("1.23")


def test_record_rr_go126_replays_at_each_snapshots_moment():
    check_recording_replays_at_snapshots("1.26")


def test_record_rr_binaries_are_stored_once_across_recordings():
    need_rr()
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "glimpse.db")
        r = Recorder("--key", "header:X-Client", "--idle", 0, "--db", db, "--rr", RR, tmp=tmp, no_rr=False,
                     app=webapp("1.23"))
        for k in ("a", "b"):
            for _ in range(3):
                r.hit({"X-Client": k})
        assert r.stop(timeout=600) == 0
        c = sqlite3.connect(db)
        rows = c.execute("SELECT status, bytes_binaries, archive FROM recordings ORDER BY id").fetchall()
        c.close()
        assert [s for s, _, _ in rows] == ["done", "done"], rows
        blobs = os.listdir(os.path.join(r.dir, "binaries"))
        # Both recordings hold the same binaries (the app; rr's own preload library): stored once.
        assert len(blobs) == len(set(blobs)) and rows[0][1] == rows[1][1], (blobs, rows)
        total = sum(os.path.getsize(os.path.join(r.dir, "binaries", b)) for b in blobs)
        print(f"2 recordings: {len(blobs)} binaries stored once ({total} bytes compressed), archives "
              f"{[os.path.getsize(a) for _, _, a in rows]} bytes")


def test_record_rr_dynamic_and_go119_builds_are_reported_not_replayable_with_the_reason():
    need_rr()
    for version, flavour, what in (("1.23", ".pie", "dynamically linked"), ("1.19", "", "Go 1.19")):
        try:
            app = webapp(version, flavour)
        except StopIteration:
            raise Skip(f"no go{version} webapp{flavour} fixture")
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "glimpse.db")
            r = Recorder("--idle", 0, "--db", db, "--rr", RR, tmp=tmp, no_rr=False, app=app)
            r.hit()
            r.stop(timeout=600)
            c = sqlite3.connect(db)
            c.row_factory = sqlite3.Row
            row = dict(c.execute("SELECT * FROM recordings").fetchone())
            c.close()
            print(f"{what}: status {row['status']}, replayable {row['replayable']}: {row['why_not']}")
            assert row["status"] == "done" and row["bytes_packed"] > 0, row
            if row["replayable"] == 1:
                print(f"{what}: this machine replays it (RDTSC traps here): nothing to report")
                continue
            assert row["replayable"] == 0 and "did not stay in step" in row["why_not"], row
            p = glimpse("replay", row["id"], "--db", db, "--rr", RR)
            assert p.returncode != 0 and "cannot replay" in p.stderr, p.stderr
            kill_replay_servers(db)


def test_record_rr_api_lists_replays_downloads_and_stops_recordings():
    need_rr()
    with_replayable_recording(api_lists_replays_downloads_and_stops)


def api_lists_replays_downloads_and_stops(tmp):
    db, row, snaps = record_session("1.23", tmp, requests=(2,))
    check_replayable(row)
    s = Server(db=db, env={"GLIMPSE_RR": RR})
    try:
        lst = s.get("/api/recordings")["recordings"]
        assert [x["id"] for x in lst] == [row["id"]] and lst[0]["snapshots"] == 1, lst
        one = s.get(f"/api/recordings/{row['id']}")
        assert one["replayable"] is True and one["bytes_packed"] == row["bytes_packed"], one
        assert s.json("GET", "/api/recordings/999", expect=404)["error"]
        assert "not in progress" in s.json("POST", f"/api/recordings/{row['id']}/stop", expect=409)["error"]
        rep = s.json("POST", f"/api/recordings/{row['id']}/replay", {"at": f"snapshot:{snaps[0][0]}"})
        assert re.match(r"127\.0\.0\.1:\d+$", rep["gdbserver"]) and "target extended-remote" in \
            rep["commands"]["gdb"], rep
        status, headers, data = s.request("GET", f"/api/recordings/{row['id']}/download", timeout=600)
        assert status == 200 and headers["content-type"] == "application/zstd", (status, headers)
        path = os.path.join(tmp, "dl.tar.zst")
        with open(path, "wb") as f:
            f.write(data)
        os.mkdir(os.path.join(tmp, "dl"))
        subprocess.run(["tar", "--zstd", "-xf", path, "-C", os.path.join(tmp, "dl")], check=True)
        names = os.listdir(os.path.join(tmp, "dl"))
        assert any(n.endswith("webapp") for n in names) and "version" in names, names
        print(f"download: {len(data)} bytes, {len(names)} files, self-contained")
        # VS Code: a launch.json attaching to the same replay server.
        vs = os.path.join(tmp, "vs")
        p = glimpse("replay", row["id"], "--at", f"snapshot:{snaps[0][0]}", "--db", db, "--rr", RR,
                    "--vscode", vs, check=True)
        with open(os.path.join(vs, ".vscode", "launch.json")) as f:
            cfg = json.load(f)["configurations"][0]
        host, port = rep["gdbserver"].rsplit(":", 1)
        assert (cfg["type"], cfg["request"], cfg["host"], cfg["port"]) == ("go", "attach", host, int(port)), cfg
        assert cfg["program"].endswith("webapp") and os.path.exists(cfg["program"]), cfg
    finally:
        s.close()
        kill_replay_servers(db)


def test_record_rr_trace_events_link_to_the_recording_and_replay_at_a_calls_moment():
    need_rr()
    with_replayable_recording(trace_events_link_and_replay)


def trace_events_link_and_replay(tmp):
    db = os.path.join(tmp, "glimpse.db")
    r = Recorder("--idle", 0, "--db", db, "--rr", RR, tmp=tmp, no_rr=False, app=webapp("1.23"))
    for _ in range(3):
        pid, count = r.hit()
    # uprobes on the handler of "/" while rr records the process (they stay in the kernel).
    err = open(os.path.join(tmp, "trace.err"), "w+")
    tr = subprocess.Popen([GLIMPSE, "trace", "--pid", str(pid), r"^main\.main\.func1$", "--db", db,
                           "--duration", "60"], stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 60
    while "probes in pid" not in open(err.name).read():
        assert tr.poll() is None and time.time() < deadline, open(err.name).read()
        time.sleep(0.1)
    pid, count = r.hit()  # the 4th request: its call sees holder's current == 3
    tr.send_signal(2)
    tr.wait(60)
    err.close()
    c = sqlite3.connect(db)
    rid = c.execute("SELECT id FROM recordings WHERE pid = ?", (pid,)).fetchone()[0]
    call = c.execute("SELECT id, recording FROM events WHERE kind = 'call' ORDER BY id").fetchall()
    c.close()
    assert len(call) == 1 and call[0][1] == rid, call
    sid = snapshot(pid, db)
    goid, current = holder(db, sid)
    glimpse("record", "--stop", rid, "--db", db, check=True)
    row = wait_done(db, rid)
    try:
        check_replayable(row)
    except Drift:
        r.stop(timeout=300)
        raise
    c = sqlite3.connect(db)
    ev = c.execute("SELECT rr_event FROM events WHERE id = ?", (call[0][0],)).fetchone()[0]
    c.close()
    got, _ = gdb_current(rid, f"event:{call[0][0]}", goid, db)
    assert got == count - 1, f"at the call of request {count} (rr event {ev}) current is {got}, not {count - 1}"
    print(f"trace event {call[0][0]} -> rr event {ev}: replay shows current={got} (request {count} arriving)")
    r.stop(timeout=300)
    kill_replay_servers(db)


def test_record_rr_replay_still_works_minutes_after_the_recording_ended():
    """Past the CPUID drift that makes a fresh `rr replay` fail here: the warm replay server
    started when the recording ended still answers (GLIMPSE_RR_LATER_S, default 120)."""
    need_rr()
    with_replayable_recording(replay_works_minutes_later)


def replay_works_minutes_later(tmp):
    later = int(os.environ.get("GLIMPSE_RR_LATER_S", "120"))
    db, row, snaps = record_session("1.23", tmp)
    check_replayable(row)
    # record_session stopped glimpse record, and its warm servers with it: keep one
    # running the way `glimpse replay` leaves it, then come back later.
    sid, goid, current = snaps[0]
    p = glimpse("replay", row["id"], "--at", f"snapshot:{sid}", "--db", db, "--rr", RR, timeout=600)
    if p.returncode != 0 and "APIC ID" in p.stderr:
        raise Drift(p.stderr.strip())
    assert p.returncode == 0 and "gdbserver on 127.0.0.1:" in p.stdout, p.stderr
    pid = int(re.search(r"rr replay pid (\d+)", p.stdout).group(1))
    try:
        time.sleep(later)
        for sid, goid, current in reversed(snaps):  # later moment first, then back
            try:
                got, _ = gdb_current(row["id"], f"snapshot:{sid}", goid, db)
            except AssertionError as e:
                # On CPUs whose CPUID APIC id drifts (AMD EPYC here), a replay server that has
                # to go back before its first checkpoint leaves its course and rr closes the
                # connection: the machine's limit, not a wrong value. Any other failure fails.
                if "Remote connection closed" in str(e):
                    raise Skip(f"the rr replay server {later} s later closed the connection (rr.soft "
                               "left its course on this CPU, see NOTES on CPUID drift)")
                raise
            assert got == current, (sid, got, current)
        print(f"{later} s after the recording: the replay server still shows current="
              f"{[c for _, _, c in snaps]} at the snapshots' moments")
    finally:
        os.killpg(pid, 9)


def replay_row(db, rid):
    c = sqlite3.connect(db)
    row = c.execute("SELECT replay_addr, replay_pid FROM recordings WHERE id = ?", (rid,)).fetchone()
    c.close()
    return row


def one_replayable_recording(r, db):
    """One request through glimpse record r, its recording stopped, finished and checked
    to replay (Drift when it cannot for the CPU's APIC ID); returns its id."""
    pid, _ = r.hit()
    c = sqlite3.connect(db)
    rid = c.execute("SELECT id FROM recordings WHERE pid = ?", (pid,)).fetchone()[0]
    c.close()
    glimpse("record", "--stop", rid, "--db", db, check=True)
    check_replayable(wait_done(db, rid))
    return rid


def test_record_rr_warm_replay_servers_stop_when_idle_and_over_the_memory_bound():
    """glimpse record keeps replay servers warm within --replay-idle (while no debugger is
    attached) and --replay-mem; a server glimpse replay starts stops after its --replay-idle
    without a debugger, and not while one is attached."""
    need_rr()

    def run(tmp):
        db = os.path.join(tmp, "glimpse.db")
        r = Recorder("--idle", 0, "--db", db, "--rr", RR, "--replay-idle", 4, tmp=tmp, no_rr=False,
                     app=webapp("1.23"))
        try:
            rid = one_replayable_recording(r, db)
            addr, server = replay_row(db, rid)
            assert addr and alive(server), (addr, server)
            # A debugger attached keeps it; 4 s after it leaves, it is stopped.
            host, port = addr.rsplit(":", 1)
            s = socket.create_connection((host, int(port)), timeout=10)
            time.sleep(7)
            assert alive(server), "stopped while a debugger was attached"
            s.close()
            deadline = time.time() + 20
            while alive(server) and time.time() < deadline:
                time.sleep(0.5)
            assert not alive(server) and replay_row(db, rid) == (None, None), replay_row(db, rid)
            assert "idle for 4 s: stopped" in r.stderr(), r.stderr()[-2000:]
            print(f"warm replay server {server}: kept 7 s with a debugger attached, stopped "
                  f"{time.time() - deadline + 20:.1f} s after it left (--replay-idle 4)")
        finally:
            r.stop(timeout=300)
        # The memory bound: 1 MiB is less than any replay server, so it goes at the next check.
        r = Recorder("--idle", 0, "--db", db, "--rr", RR, "--replay-mem", 1, tmp=tmp, no_rr=False,
                     app=webapp("1.23"))
        try:
            rid = one_replayable_recording(r, db)
            deadline = time.time() + 20
            while "over 1: stopped the one of recording" not in r.stderr() and time.time() < deadline:
                time.sleep(0.5)
            line = [x for x in r.stderr().splitlines() if "over 1: stopped" in x]
            assert line and replay_row(db, rid) == (None, None), r.stderr()[-2000:]
            print(line[0])
        finally:
            r.stop(timeout=300)
        # glimpse replay's own server: stopped by its watchdog after --replay-idle.
        p = glimpse("replay", rid, "--db", db, "--rr", RR, "--replay-idle", 3, timeout=600)
        if p.returncode != 0 and "APIC ID" in p.stderr:
            raise Drift(p.stderr.strip())
        assert p.returncode == 0, p.stderr
        server = int(re.search(r"rr replay pid (\d+)", p.stdout).group(1))
        t0 = time.time()
        while alive(server) and time.time() - t0 < 30:
            time.sleep(0.5)
        assert not alive(server), "glimpse replay's server still runs 30 s after --replay-idle 3"
        print(f"glimpse replay --replay-idle 3: its server stopped {time.time() - t0:.1f} s later")

    with_replayable_recording(run)


PARANOID = "/proc/sys/kernel/perf_event_paranoid"


@contextlib.contextmanager
def perf_event_paranoid(want, keep_if):
    """kernel.perf_event_paranoid set to want for the length of the block (said on stdout, and
    restored after) unless keep_if(current value) holds; skips where it cannot be read or set."""
    try:
        with open(PARANOID) as f:
            old = int(f.read())
    except OSError as e:
        raise Skip(f"cannot read {PARANOID}: {e}")
    if keep_if(old):
        yield old
        return
    try:
        with open(PARANOID, "w") as f:
            f.write(str(want))
    except OSError as e:
        raise Skip(f"kernel.perf_event_paranoid is {old} and cannot be set to {want} here: {e}")
    print(f"kernel.perf_event_paranoid {old} -> {want} for this test (restored after)")
    try:
        yield want
    finally:
        with open(PARANOID, "w") as f:
            f.write(str(old))


def dlv_status():
    """None when Delve >= 1.24 is on PATH, else why not."""
    if not shutil.which("dlv"):
        return "no dlv on PATH (scripts/setup.sh installs Debian trixie's Delve 1.24)"
    out = subprocess.run(["dlv", "version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"Version: (\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < (1, 24):
        return f"dlv is not Delve >= 1.24 (bookworm's 1.20 cannot drive rr 5.9): {out.strip()[:100]}"
    return None


def test_record_rr_replay_dlv_breaks_shows_locals_and_rewinds():
    need_rr()
    why = dlv_status()
    if why:
        raise Skip(why)
    with open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "webapp", "main.go")) as f:
        line = next(i for i, l in enumerate(f, 1) if "sink += current" in l)

    def run(tmp):
        db, row, snaps, r = record_session("1.23", tmp, keep=True)
        try:
            check_replayable(row)
            sid, _, current = snaps[0]
            # From snapshot 1's moment (holder parked, current == 3), the next request's value
            # arrives: holder stops after its receive with next == current + 1; the one after
            # that shows current + 1; rewind goes back to the first stop.
            script = "\n".join([f"break main.go:{line}", "continue", "print current", "print next",
                                "continue", "print current", "rewind", "locals", "exit", ""])

            def dlv(how):
                t0 = time.time()
                p = glimpse("replay", row["id"], "--at", f"snapshot:{sid}", "--db", db, "--rr", RR, "--dlv",
                            input=script, timeout=600)
                out = p.stdout
                if how == "new" and p.returncode != 0 and "APIC ID" in p.stderr:
                    print(f"dlv on a new replay server not checked: the replay left its course on this CPU "
                          f"(CPUID drift): {p.stderr.strip()[-200:]}")
                    return
                assert p.returncode == 0, f"dlv exited {p.returncode}: {out[-3000:]} {p.stderr[-3000:]}"
                assert "Delve through" in p.stderr and f"{how} rr replay" in p.stderr, p.stderr
                printed = [int(v) for v in re.findall(r"^(?:\(dlv\) )*(-?\d+)$", out, re.M)]
                assert printed == [current, current + 1, current + 1], (printed, out[-3000:])
                locals_ = dict(re.findall(r"^(?:\(dlv\) )*(current|next) = (-?\d+)$", out, re.M))
                assert locals_ == {"current": str(current), "next": str(current + 1)}, (locals_, out[-3000:])
                print(f"dlv on the {how} replay server at snapshot {sid}: break main.go:{line}, current "
                      f"{current} then {current + 1}, rewind back to current={current}, next={current + 1} "
                      f"({time.time() - t0:.1f} s)")

            with perf_event_paranoid(1, lambda v: v <= 1):
                dlv("warm")  # glimpse record's, reached with Delve's restart EVENT
                r.stop(timeout=300)
                dlv("new")  # rr replay -g EVENT, started by glimpse replay
        finally:
            r.stop(timeout=300)
            kill_replay_servers(db)

    with_replayable_recording(run)


def test_record_rr_replay_dlv_says_delve_needs_perf_event_paranoid_at_most_1():
    with tempfile.TemporaryDirectory() as tmp:
        with perf_event_paranoid(2, lambda v: v > 1) as level:
            p = glimpse("replay", "1", "--dlv", "--db", os.path.join(tmp, "g.db"), timeout=60)
            with open(PARANOID) as f:
                after = int(f.read())
        assert p.returncode != 0, p
        assert f"kernel.perf_event_paranoid is {level} (it wants <= 1)" in p.stderr, p.stderr
        assert "glimpse does not change it" in p.stderr and after == level, (p.stderr, after)
        assert not os.path.exists(os.path.join(tmp, "g.db")), "nothing should be opened or started"


def two_clients(d):
    """alice: 3 requests, a snapshot, 2 more; bob: 1 request. Both recordings stopped and
    finished, glimpse record still running (their warm replay servers with it)."""
    db = os.path.join(d, "glimpse.db")
    r = Recorder("--key", "header:X-Client", "--idle", 0, "--db", db, "--rr", RR, tmp=d, no_rr=False,
                 app=webapp("1.23"))
    for _ in range(3):
        pid, count = r.hit({"X-Client": "alice"})
    sid = snapshot(pid, db)
    goid, current = holder(db, sid)
    for _ in range(2):
        r.hit({"X-Client": "alice"})
    bob, _ = r.hit({"X-Client": "bob"})
    c = sqlite3.connect(db)
    ids = [c.execute("SELECT id FROM recordings WHERE pid = ?", (p,)).fetchone()[0] for p in (pid, bob)]
    c.close()
    for rid in ids:
        glimpse("record", "--stop", rid, "--db", db, check=True)
    rows = [wait_done(db, rid) for rid in ids]
    return db, rows, (sid, goid, current), r


def gdb_children(pid):
    """The gdb --interpreter=mi3 processes whose parent is pid."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, IndexError):
            continue
        if ppid == pid and b"--interpreter=mi3" in cmd:
            out.append(int(p))
    return out


def test_record_rr_debug_api_steps_forward_and_back_within_its_limits():
    """The replay debugger over HTTP: a session at a snapshot's moment, a breakpoint where
    main.holder's local `current` changes, continue, next to another line, reverse-next back
    with the earlier value; commands outside the whitelist and bad FILE:LINE refused with 400;
    the session limit (429) and reuse; idle sessions closed; gdb ended with the server."""
    need_rr()
    with_replayable_recording(debug_api_steps)


def debug_api_steps(tmp):
    db, (alice, bob), (sid, goid, current), r = two_clients(tmp)
    try:
        check_replayable(alice)
        check_replayable(bob)
        s = Server("--debug-sessions", 1, "--debug-idle", 6, db=db, env={"GLIMPSE_RR": RR})
        try:
            t0 = time.time()
            st = s.json("POST", f"/api/recordings/{alice['id']}/debug", {"at": f"snapshot:{sid}"}, expect=201)
            sess = st["session"]
            print(f"session {sess} at rr event {st['event']} in {time.time() - t0:.2f} s: stopped in "
                  f"{st['frame']['func']} ({len(st['stack'])} frames, {len(st['threads'])} threads)")
            assert re.fullmatch(r"[0-9a-f]{32}", sess) and st["stack"] and st["threads"], st
            assert "target extended-remote" in st["commands"]["gdb"] and st["gdbserver"] in st["commands"]["gdb"]
            cmd = f"/api/debug/{sess}/cmd"
            for bad in ("call main.f()", "set var current = 1", "print current", "shell id", "-exec-continue",
                        "next 2", "continue\n-gdb-exit", "break main.go", "break main.go:0",
                        "break main.go:42\"", "break $(id).go:1", "break main.go:1;kill", "break 'main.go':4",
                        "frame -1", "goroutine x", ""):
                e = s.json("POST", cmd, {"cmd": bad}, expect=400)["error"]
                assert "command" in e or "takes" in e, (bad, e)
            s.json("POST", cmd, {"nothing": 1}, expect=400)
            s.json("POST", cmd, "not json", expect=400)
            s.json("POST", "/api/debug/0123456789abcdef0123456789abcdef/cmd", {"cmd": "next"}, expect=404)
            s.json("POST", f"/api/recordings/{alice['id']}/debug", {"at": "snapshot:999"}, expect=404)
            assert "No source file" in s.json("POST", cmd, {"cmd": "break nosuchfile.go:3"}, expect=422)["error"]
            # The limit: one session, alice's; bob's is refused until it closes.
            e = s.json("POST", f"/api/recordings/{bob['id']}/debug", {}, expect=429)["error"]
            assert "--debug-sessions 1" in e, e

            st = s.json("POST", cmd, {"cmd": "break main.go:42"})
            assert [b["line"] for b in st["breakpoints"]] == [42] and st["breakpoints"][0]["func"] == "main.holder"
            locals_ = lambda st: {v["name"]: v.get("value") for v in st["locals"]}
            timing = {}

            def run(c):
                t = time.time()
                got = s.json("POST", cmd, {"cmd": c})
                timing[c] = timing.get(c, []) + [time.time() - t]
                return got

            st = run("continue")
            assert st["stop"]["reason"] == "breakpoint-hit" and st["frame"]["func"] == "main.holder", st["stop"]
            assert st["frame"]["line"] == 42 and locals_(st)["current"] == str(current), (st["frame"], st["locals"])
            assert locals_(st)["next"] == str(current + 1)
            src = st["source"]
            assert "sink += current" in src["lines"][42 - src["first"]], src
            st = run("next")
            assert st["frame"]["line"] == 43, st["frame"]
            st = run("next")
            assert st["frame"]["line"] == 41 and locals_(st)["current"] == str(current + 1), (st["frame"], st["locals"])
            st = run("reverse-next")
            assert st["frame"]["line"] == 43 and locals_(st)["current"] == str(current), (st["frame"], st["locals"])
            st = run("reverse-step")
            assert st["frame"]["line"] == 42, st["frame"]
            st = run("frame 1")
            assert st["frame"]["level"] == 1, st["frame"]
            got = s.get(f"/api/debug/{sess}")
            assert got["frame"]["level"] == 1 and got["session"] == sess
            print("command times: " + ", ".join(f"{k} {1000 * sum(v) / len(v):.0f} ms" for k, v in timing.items()))
            # Asking again for the recording reuses its session, back at the moment.
            again = s.json("POST", f"/api/recordings/{alice['id']}/debug", {"at": f"snapshot:{sid}"})
            assert again["session"] == sess and again["event"] == st["event"], again
            assert s.json("DELETE", f"/api/debug/{sess}")["closed"] is True
            s.json("GET", f"/api/debug/{sess}", expect=404)
            # The slot is free: bob's opens, then closes itself when idle.
            b = s.json("POST", f"/api/recordings/{bob['id']}/debug", {}, expect=201)["session"]
            assert len(gdb_children(s.proc.pid)) == 1
            time.sleep(9)
            s.json("GET", f"/api/debug/{b}", expect=404)
            assert "idle for 6 s: closed" in s.stderr() and not gdb_children(s.proc.pid)
            # Sessions open at shutdown end with the server.
            s.json("POST", f"/api/recordings/{alice['id']}/debug", {"at": f"snapshot:{sid}"}, expect=201)
            pids = gdb_children(s.proc.pid)
            assert len(pids) == 1
            assert s.stop() == 0
            assert not any(alive(p) for p in pids), pids
        finally:
            s.close()
    finally:
        r.stop(timeout=300)
        kill_replay_servers(db)


STUB_GDBSERVER = r'''
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4)
print(s.getsockname()[1], flush=True)
def reply(c, data):
    c.sendall(b"$" + data + b"#" + b"%02x" % (sum(data) & 0xff))
while True:  # one connection after another: glimpse first checks that the port answers
    c, _ = s.accept()
    buf = b""
    while True:
        got = c.recv(65536)
        if not got:
            break
        buf += got
        while True:
            buf = buf.lstrip(b"+-")
            start, end = buf.find(b"$"), buf.find(b"#")
            if start < 0 or end < 0 or len(buf) < end + 3:
                break
            pkt, buf = buf[start + 1:end], buf[end + 3:]
            c.sendall(b"+")
            if pkt.startswith(b"qSupported"):
                reply(c, b"PacketSize=4000")
            elif pkt == b"?":
                reply(c, b"W00")  # no process yet, as rr's server before `run`
            elif pkt == b"!":
                reply(c, b"OK")
            elif pkt.startswith(b"vRun"):
                reply(c, b"E01")  # as a replay that left its course: it cannot go there
            else:
                reply(c, b"")
    c.close()
'''


def test_record_rr_debug_api_replaces_a_warm_replay_server_that_cannot_reach_the_moment():
    """A warm replay server that refuses the moment (as rr.soft's does once it left its course
    on a CPU whose APIC ID moved; a stub gdbserver here) is ended and forgotten, and the
    debug session opens on a new replay server."""
    need_rr()

    def run(tmp):
        db, row, snaps = record_session("1.23", tmp, requests=(1,))
        check_replayable(row)
        stub = subprocess.Popen(["python3", "-c", STUB_GDBSERVER], stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        s = None
        try:
            port = int(stub.stdout.readline())
            c = sqlite3.connect(db)
            c.execute("UPDATE recordings SET replay_addr = ?, replay_pid = ? WHERE id = ?",
                      (f"127.0.0.1:{port}", stub.pid, row["id"]))
            c.commit()
            c.close()
            s = Server(db=db, env={"GLIMPSE_RR": RR})
            sid = snaps[0][0]
            status, _, data = s.request("POST", f"/api/recordings/{row['id']}/debug", {"at": f"snapshot:{sid}"})
            # Whatever the new server does, the one that refused is ended and forgotten.
            assert "starting a new replay server" in s.stderr() and "refused event" in s.stderr(), s.stderr()
            assert stub.wait(timeout=10) == -9, "the stub was not ended"
            assert replay_row(db, row["id"])[1] != stub.pid
            if status == 409 and b"APIC ID" in data:
                raise Drift(data.decode())
            assert status == 201, (status, data[:500], s.stderr()[-2000:])
            st = json.loads(data)
            addr, pid = replay_row(db, row["id"])
            assert addr == st["gdbserver"] and addr != f"127.0.0.1:{port}" and alive(pid), (addr, pid, st["gdbserver"])
            assert st["stack"] and st["threads"], st
            print(f"warm server refused event {st['event']}: ended; new replay server {addr} (pid {pid}) "
                  f"opened the session")
            assert s.json("DELETE", f"/api/debug/{st['session']}")["closed"] is True
        finally:
            if s:
                s.close()
            if stub.poll() is None:
                os.killpg(stub.pid, 9)
            kill_replay_servers(db)

    with_replayable_recording(run)
