"""glimpse snapshot against real Go processes of every installed version, DWARF and stripped:
stacks compared with the runtime's own goroutine dump, variables with the values the fixture
holds, running goroutines, the store, and bad input."""
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time

from harness import Skip, fixtures, glimpse, glimpse_json, start_target

HEADER = re.compile(r"^goroutine (\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[([^\]]*)\]:$")
GENERIC = re.compile(r"\[[^\]]*\]")


def parse_debug2(text):
    """{goid: (status, [(func, file, line), ...])} from a debug=2 goroutine dump."""
    out, cur, lines = {}, None, text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = HEADER.match(line)
        if m:
            cur = []
            out[int(m.group(1))] = (m.group(2), cur)
        elif cur is not None and line and not line.startswith("\t") and i + 1 < len(lines) \
                and lines[i + 1].startswith("\t"):
            loc = lines[i + 1].strip().split(" ")[0]
            file, _, ln = loc.rpartition(":")
            if not line.startswith("created by ") and not line.startswith("...additional frames"):
                func = line[:line.rfind("(")] if line.endswith(")") else line
                cur.append((GENERIC.sub("[...]", func), file, int(ln)))
            i += 1
        elif not line:
            cur = None
        i += 1
    return out


def shown_by_runtime(func):
    """The runtime's showframe rule at traceback level 1 (runtime.Stack forces level 1):
    unexported runtime.* frames are hidden."""
    if "." not in func:
        return False
    return not func.startswith("runtime.") or func[len("runtime."):][:1].isupper()


def ours(snap):
    return {g["goid"]: (g, [(GENERIC.sub("[...]", f["func"]), f["file"], f["line"]) for f in g["frames"]
                            if shown_by_runtime(f["func"])])
            for g in snap["goroutines"]}


def test_snapshot_stacks_equal_the_runtimes_own_dump_for_every_version_and_flavour():
    report = []
    for v, flavour, path in fixtures():
        t = start_target(path, "-goroutines", 300)
        snap = glimpse_json("snapshot", "--pid", t.pid, "--json", "--no-store", "--no-vars")
        status, body = t.get("/debug/pprof/goroutine?debug=2")
        assert status == 200
        theirs = parse_debug2(body.decode())
        mine = ours(snap)
        compared = same = 0
        for goid, (state, frames) in theirs.items():
            if goid not in mine or state.startswith("running"):
                continue  # started after our snapshot, or the goroutine serving the dump
            compared += 1
            if mine[goid][1] == frames:
                same += 1
            elif compared - same <= 2:
                print(f"  {v}{flavour} goroutine {goid}: glimpse {mine[goid][1][:4]} runtime {frames[:4]}")
        assert compared >= 300, (v, flavour, compared)
        ratio = same / compared
        report.append(f"go{v}{flavour}: {same}/{compared}")
        assert ratio >= 0.995, (v, flavour, same, compared)
        assert snap["torn"] == 0 or snap["torn"] < compared * 0.005, snap["torn"]
        assert t.alive()
        t.stop()
    print("  stacks equal to pprof debug=2: " + ", ".join(report))


def by_frame(snap, func):
    """[(goroutine, frame)] for every goroutine with a frame of func."""
    return [(g, f) for g in snap["goroutines"] for f in g["frames"] if f["func"] == func]


def test_snapshot_reads_locals_of_parked_goroutines_correctly():
    n = 40
    for v, flavour, path in fixtures(flavours=["", ".pie"]):
        t = start_target(path, "-goroutines", n)
        snap = glimpse_json("snapshot", "--pid", t.pid, "--json", "--no-store")
        workers = by_frame(snap, "main.parkedWorker")
        assert len(workers) == n, (v, flavour, len(workers))
        seen_ids, available = set(), 0
        for g, f in workers:
            vals = {x["name"]: x["value"] for x in f["vars"] if x["value"] is not None}
            # Every variable the compiler kept live here must hold what the fixture put there.
            ident = vals.get("id")
            if ident is None and "name" in vals:
                ident = int(vals["name"].split("-")[1])
            assert ident is not None, (v, flavour, f["vars"])
            seen_ids.add(ident)
            if "name" in vals:
                assert vals["name"] == f"worker-{ident}", vals
            if "count" in vals:
                assert vals["count"] == 3 * ident, vals
            if "ratio" in vals:
                assert vals["ratio"] == ident / 4, vals
            if "order" in vals and isinstance(vals["order"], dict) and "ID" in vals["order"]:
                o = vals["order"]
                assert o["ID"] == 1000 + ident and o["Owner"] == f"worker-{ident}", o
                assert o["Items"] == ["apple", "pear", f"item-{ident}"], o
                assert o["At"] == {"Lat": 1.5, "Lon": float(ident)}, o
                assert o["Tags"] == {"a": 1, "b": 2}, o
            wg = vals.get("wg")
            if wg is not None:
                assert isinstance(wg, dict), wg
            available += len(vals)
            for x in f["vars"]:
                if x["value"] is None:
                    assert x["unavailable"], x  # always says why
        assert seen_ids == set(range(n)), (v, sorted(seen_ids)[:10])
        assert available >= 2 * n, (v, flavour, available)
        # The recursion: main.deep(n) frames hold n = 0..50, innermost first.
        deep = [g for g in snap["goroutines"] if any(f["func"] == "main.deep" for f in g["frames"])]
        assert len(deep) == 1, len(deep)
        ns = [x["value"] for f in deep[0]["frames"] if f["func"] == "main.deep" for x in f["vars"]
              if x["name"] == "n" and x["value"] is not None]
        assert len([f for f in deep[0]["frames"] if f["func"] == "main.deep"]) == 51
        assert ns == sorted(ns) and set(ns) <= set(range(51)), ns
        t.stop()


def test_snapshot_of_stripped_binaries_has_stacks_and_says_why_no_variables():
    for v, flavour, path in fixtures(flavours=[".stripped"]):
        t = start_target(path, "-goroutines", 10)
        snap = glimpse_json("snapshot", "--pid", t.pid, "--json", "--no-store")
        assert "no DWARF" in snap["vars_note"], snap["vars_note"]
        workers = by_frame(snap, "main.parkedWorker")
        assert len(workers) == 10 and all(not f["vars"] for _, f in workers)
        for g, f in workers:
            assert f["file"].endswith("tests/fixtures/target/main.go") and f["line"] > 0, f
            assert g["wait_reason"] == "chan receive" and g["created_by"] == "main.main", g
        t.stop()


def test_snapshot_running_goroutine_is_never_given_a_stale_stack():
    for v, flavour, path in fixtures(flavours=[""]):
        if v not in ("1.19", "1.23", "1.26"):
            continue
        t = start_target(path, "-goroutines", 5, "-spin")
        time.sleep(0.2)
        for reader in ("bpf", "process_vm_readv"):
            snap = glimpse_json("snapshot", "--pid", t.pid, "--json", "--no-store", "--reader", reader)
            spinners = [g for g in snap["goroutines"] if g["status"] == "running"]
            assert spinners, (v, reader, [g["status"] for g in snap["goroutines"]])
            for g in spinners:
                if g["frames"]:
                    # a stack from the thread's own registers: it must be where the thread really is
                    assert g["thread"], g
                    assert g["frames"][-1]["func"] == "runtime.goexit" or g["stack_note"], g
                else:
                    assert "running" in g["stack_note"] or "thread" in g["stack_note"], g
            sp = [g for g in snap["goroutines"] if any(f["func"] == "main.spinner" for f in g["frames"])]
            for g in sp:
                assert g["status"] in ("running", "runnable"), g
        t.stop()


def test_snapshot_is_stored_with_deduplicated_stacks_and_views():
    path = next(p for v, fl, p in fixtures(flavours=[""]) if v == "1.24")
    t = start_target(path, "-goroutines", 200)
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "g.db")
        snap = glimpse_json("snapshot", "--pid", t.pid, "--json", "--db", db)
        glimpse_json("snapshot", "--pid", t.pid, "--json", "--db", db)
        c = sqlite3.connect(db)
        assert snap["snapshot_id"] == 1
        assert c.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 2
        n = c.execute("SELECT count(*) FROM goroutines WHERE snapshot = 1").fetchone()[0]
        assert n == len(snap["goroutines"]), n
        stacks = c.execute("SELECT count(*) FROM stacks").fetchone()[0]
        assert stacks < n / 5, (stacks, n)  # 200 workers share one stack, across both snapshots
        top = c.execute("SELECT goroutines, wait_reason, top_func, top FROM goroutine_groups WHERE snapshot = 1"
                        " LIMIT 1").fetchone()
        assert top == (200, "chan receive", "main.parkedWorker", "runtime.gopark"), top
        blocked = c.execute("SELECT count(*) FROM blocked_goroutines WHERE snapshot = 2").fetchone()[0]
        assert blocked >= 200
        vals = dict(c.execute("SELECT name, value FROM variables v JOIN goroutines g USING (snapshot, goid) "
                              "WHERE snapshot = 1 AND name = 'name' LIMIT 1").fetchall())
        assert vals.get("name", "").startswith('"worker-'), vals
        row = c.execute("SELECT pid, go_version FROM snapshot_summary WHERE id = 1").fetchone()
        assert row == (t.pid, snap["go_version"]), row
    t.stop()


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None


def test_snapshot_bad_input_gives_one_message_and_leaves_the_database_untouched():
    path = next(p for v, fl, p in fixtures(flavours=[""]) if v == "1.26")
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "g.db")
        t = start_target(path, "-goroutines", 3)
        glimpse("snapshot", "--pid", t.pid, "--db", db, check=True)
        before = sha(db)
        t.stop()
        # dead pid
        p = glimpse("snapshot", "--pid", t.pid, "--db", db)
        assert p.returncode == 1 and p.stderr.strip() == f"glimpse: no process with pid {t.pid}", p.stderr
        # not a Go process
        sleeper = subprocess.Popen(["sleep", "30"])
        p = glimpse("snapshot", "--pid", sleeper.pid, "--db", db)
        sleeper.kill()
        sleeper.wait()
        assert p.returncode == 1 and "not a Go binary" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
        # unsupported Go version: the same program claiming to be go1.99 in its build info
        fake = os.path.join(d, "target-go1.99")
        data = bytearray(open(path, "rb").read())
        at = data.index(b"\xff Go buildinf:")
        ver = data.index(b"go1.26.", at)
        data[ver:ver + 7] = b"go1.99."
        open(fake, "wb").write(data)
        os.chmod(fake, 0o755)
        t2 = start_target(fake, "-goroutines", 1)
        p = glimpse("snapshot", "--pid", t2.pid, "--db", db)
        assert p.returncode == 1 and "unsupported Go version go1.99" in p.stderr, p.stderr
        assert t2.alive()
        t2.stop()
        assert sha(db) == before
        # a corrupt database: clear message, file unchanged, nothing else written
        bad = os.path.join(d, "bad.db")
        open(bad, "wb").write(b"this is not a database" * 100)
        t3 = start_target(path, "-goroutines", 1)
        bad_before = sha(bad)
        p = glimpse("snapshot", "--pid", t3.pid, "--db", bad)
        assert p.returncode == 1 and "corrupt or not a database" in p.stderr, p.stderr
        assert sha(bad) == bad_before
        # a database that is not glimpse's
        other = os.path.join(d, "other.db")
        sqlite3.connect(other).execute("CREATE TABLE users(id)").connection.commit()
        p = glimpse("snapshot", "--pid", t3.pid, "--db", other)
        assert p.returncode == 1 and "not a glimpse database" in p.stderr, p.stderr
        t3.stop()


def test_snapshot_without_bpf_permission_falls_back_or_says_why():
    if os.geteuid() != 0:
        raise Skip("needs root to drop privileges for the test")
    path = next(p for v, fl, p in fixtures(flavours=[""]) if v == "1.23")
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        exe = os.path.join(d, "target")
        shutil.copy(path, exe)
        os.chmod(exe, 0o755)
        t = start_target(exe, "-goroutines", 5, user="nobody")
        g = shutil.copy(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                                     "build", "glimpse"), os.path.join(d, "glimpse"))
        run = lambda *a: subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                         g, *map(str, a)], capture_output=True, text=True, cwd=d, timeout=60)
        p = run("snapshot", "--pid", t.pid, "--json", "--no-store")
        assert p.returncode == 0, p.stderr
        snap = json.loads(p.stdout)
        assert snap["reader"] == "process_vm_readv" and snap["reader_note"], snap["reader_note"]
        assert len(by_frame(snap, "main.parkedWorker")) == 5
        p = run("snapshot", "--pid", t.pid, "--no-store", "--reader", "bpf")
        assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1 and "BPF" in p.stderr, p.stderr
        t.stop()


def test_snapshot_of_a_real_stripped_debian_go_service():
    exe = "/usr/bin/prometheus-node-exporter"
    if not os.path.exists(exe):
        raise Skip("prometheus-node-exporter is not installed (scripts/setup.sh installs it)")
    port = 20000 + os.getpid() % 20000
    proc = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        assert proc.poll() is None
        info = glimpse_json("inspect", "--pid", proc.pid, "--json")
        assert info["stripped"], info
        snap = glimpse_json("snapshot", "--pid", proc.pid, "--json", "--no-store")
        assert "no DWARF" in snap["vars_note"]
        assert len(snap["goroutines"]) >= 3, len(snap["goroutines"])
        funcs = {f["func"] for g in snap["goroutines"] for f in g["frames"]}
        assert "net/http.(*Server).Serve" in funcs or "net.(*TCPListener).Accept" in funcs, sorted(funcs)[:40]
        complete = [g for g in snap["goroutines"] if g["frames"] and g["frames"][-1]["func"] == "runtime.goexit"]
        assert len(complete) >= len(snap["goroutines"]) - 2, [g["stack_note"] for g in snap["goroutines"]]
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_snapshot_all_vars_decodes_every_frame_without_failing():
    """--all-vars decodes the runtime's own structures too: garbage-looking pointers and
    torn values must never crash glimpse or produce invalid JSON."""
    for v, flavour, path in fixtures(flavours=["", ".pie"]):
        t = start_target(path, "-goroutines", 20, "-spin")
        for _ in range(2):
            snap = glimpse_json("snapshot", "--pid", t.pid, "--json", "--no-store", "--all-vars")
            nvars = sum(len(f["vars"]) for g in snap["goroutines"] for f in g["frames"])
            assert nvars > 100, (v, flavour, nvars)
            runtime_vars = [x for g in snap["goroutines"] for f in g["frames"] if f["func"].startswith("runtime.")
                            for x in f["vars"]]
            assert runtime_vars, (v, flavour)
        assert t.alive()
        t.stop()
