"""glimpse trace against the tracee fixture of every installed Go version (DWARF, PIE and
stripped): decoded arguments and results compared with the values the fixture passes,
call/return pairing under many goroutines, a stack that grows while traced, exact counts
under async preemption, --where compared with the same filter evaluated here, the store,
detaching, and bad input."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

from harness import GLIMPSE, Skip, fixtures, glimpse, start_target

FUNCS = r"^main\.(Lookup|Register|Sum|Describe|Measure|Divide|Flags|Name|Pick\[.*\])$"

# What `values` passes and gets back, as glimpse decodes it.
VALUES = [
    ("main.Lookup", {"id": 7, "name": "bob", "at": {"Lat": 1.5, "Lon": 2}}, [42, None]),
    ("main.Lookup", {"id": -3, "name": "eve", "at": None}, [0, "no user -3"]),
    ("main.Register", {"u": {"ID": 12, "Name": "ann", "Tags": ["x", "yy"], "Home": {"Lat": 3, "Lon": 4}}}, [True]),
    ("main.Sum", {"xs": [1, 2, 3, 4]}, [10]),
    ("main.Describe", {"v": {"type": "string", "value": "hello"}}, ["string:hello"]),
    ("main.Describe", {"v": {"type": "int", "value": 42}}, ["int:42"]),
    ("main.Measure", {"s": {"type": "main.Rect", "value": {"W": 3, "H": 4}}}, [12]),
    ("main.Divide", {"a": 17, "b": 5}, [3, 2, None]),
    ("main.Divide", {"a": 1, "b": 0}, [0, 0, "division by zero"]),
    ("main.Flags", {"on": True, "small": -5, "port": 65000, "delta": -100000}, [-35005, True]),
    ("main.Name", {"u": {"ID": 5, "Name": "zed", "Tags": None, "Home": None}}, ["zed"]),
    ("main.Name", {"u": None}, [""]),
    ("main.Pick[...]", {"xs": ["a", "b", "c"], "i": 1}, ["b"]),  # generic: a hidden dictionary in RAX
    ("main.Pick[...]", {"xs": [5, 6], "i": 0}, [5]),
]


def fname(name):
    """main.Pick[go.shape.int] and Go 1.19's main.Pick[...] alike."""
    return re.sub(r"\[.*\]$", "[...]", name)


class Tracee:
    """The tracee fixture reading commands from its standard input."""

    def __init__(self, path, env=None):
        self.proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True, env=dict(os.environ, **(env or {})))
        line = self.proc.stdout.readline()
        m = re.match(r"ready pid=(\d+)", line)
        assert m, f"{path} did not start: {line!r}"
        self.pid = int(m.group(1))

    def run(self, cmd):
        """Runs one command; returns the rest of its 'done' line."""
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("done "), f"tracee: {cmd!r} gave {line!r}"
        return line.split(" ", 2)[2].strip() if line.count(" ") >= 2 else ""

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.run("quit")
            except (AssertionError, BrokenPipeError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except BrokenPipeError:
                pass


class Trace:
    """glimpse trace --pid attached to a Tracee; stdout goes to a file so a full pipe
    never slows the drain."""

    def __init__(self, pid, regex, *args, db=None):
        self.dir = tempfile.TemporaryDirectory()
        self.out = os.path.join(self.dir.name, "out")
        self.err = os.path.join(self.dir.name, "err")
        store = ["--db", db] if db else ["--no-store"]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([GLIMPSE, "trace", "--pid", str(pid), "--json", *store, *args, regex],
                                         stdout=out, stderr=err, text=True)
        deadline = time.time() + 30
        while True:  # attached once it says how many probes it placed
            text = self.stderr()
            if " probes in pid " in text:
                self.announce = text
                break
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"glimpse trace did not attach: {text}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGINT):
        """Stops tracing; returns (events, stderr text)."""
        time.sleep(0.3)  # one more drain period
        self.proc.send_signal(sig)
        assert self.proc.wait(60) == 0, self.stderr()
        with open(self.out) as f:
            events = [json.loads(l) for l in f if l.strip()]
        err = self.stderr()
        self.dir.cleanup()
        return events, err

    def stderr(self):
        with open(self.err) as f:
            return f.read()


def traced(path, regex, command, *args, db=None):
    """Starts the tracee, traces regex while it runs command; returns (events, stderr, done)."""
    t = Tracee(path)
    try:
        tr = Trace(t.pid, regex, *args, db=db)
        try:
            done = t.run(command)
        finally:
            events, err = tr.stop()
    finally:
        t.stop()
    return events, err, done


def pairs(events):
    """{call_id: (call, return or None)}, checking each return has exactly one call."""
    calls = {e["call_id"]: [e, None] for e in events if e["kind"] == "call"}
    assert len(calls) == sum(e["kind"] == "call" for e in events), "call ids repeat"
    for e in events:
        if e["kind"] == "return":
            assert e["call_id"] in calls, f"return without its call: {e}"
            assert calls[e["call_id"]][1] is None, f"two returns for one call: {e}"
            calls[e["call_id"]][1] = e
    return calls


def summary(stderr):
    m = re.search(r"(\d+) calls, (\d+) returns of .*?(\d+) events lost.*?(\d+) repeated hits dropped.*?"
                  r"(\d+) over the rate limit, (\d+) rejected by --where", stderr)
    assert m, stderr
    keys = ("calls", "returns", "lost", "repeats", "rate_limited", "filtered")
    return dict(zip(keys, map(int, m.groups())))


def test_trace_decodes_arguments_and_results_exactly_for_every_version():
    seen = []
    for v, flavour, path in fixtures("tracee", flavours=["", ".pie"]):
        events, err, done = traced(path, FUNCS, "values")
        assert done.startswith("42 <nil>|0 no user -3|true|10|"), done
        got = [(fname(c["func"]), c["args"], r and r["results"]) for c, r in pairs(events).values()]
        assert got == VALUES, f"go{v}{flavour}:\n{got}\n!=\n{VALUES}"
        for c, r in pairs(events).values():
            assert r["args"] == c["args"] and r["goid"] == c["goid"] and r["duration_ns"] > 0
            assert c["pid"] == r["pid"] and c["tid"] > 0 and c["ts_ns"] < r["ts_ns"]
            assert abs(c["ts_ns"] / 1e9 - time.time()) < 120  # epoch time
        assert summary(err)["lost"] == 0
        seen.append(f"go{v}{flavour}")
    print("  decoded exactly:", " ".join(seen))


def test_stripped_binaries_trace_calls_and_returns_with_goroutine_and_duration():
    for v, flavour, path in fixtures("tracee", flavours=[".stripped"]):
        events, err, _ = traced(path, FUNCS, "values")
        assert "no argument names or types without DWARF" in err, err
        ps = pairs(events)
        assert [fname(c["func"]) for c, _ in ps.values()] == [f for f, _, _ in VALUES]
        for c, r in ps.values():
            assert c["args"] is None and r["results"] is None and r["duration_ns"] > 0
            assert c["goid"] == r["goid"] > 0


def test_durations_pair_correctly_under_many_concurrent_goroutines():
    for v, flavour, path in fixtures("tracee", flavours=[""]):
        events, err, _ = traced(path, r"^main\.Nap$", "sleepy 200")
        ps = pairs(events)
        assert sorted(c["args"]["k"] for c, _ in ps.values()) == list(range(200))
        goids = set()
        for c, r in ps.values():
            assert r is not None, c
            k, ms = c["args"]["k"], c["args"]["ms"]
            assert ms == k % 20 + 1 and r["results"] == [k] and r["goid"] == c["goid"]
            assert ms * 1e6 <= r["duration_ns"] < ms * 1e6 + 500e6, (k, ms, r["duration_ns"])
            assert r["duration_ns"] == r["ts_ns"] - c["ts_ns"] or abs(r["duration_ns"] - (r["ts_ns"] - c["ts_ns"])) < 1000
            goids.add(c["goid"])
        assert len(goids) == 200, len(goids)  # one goroutine each


def grow_value(depth, salt):
    """What main.Grow(depth, salt) returns, computed here."""
    pads = []
    for d in range(depth, -1, -1):
        pads.append((d, salt))
        salt = (salt + 1) & 0xFF
    r = None
    for d, s in reversed(pads):
        r = (s + 255) & 0xFF if d == 0 else r + ((s + d % 256) & 0xFF)
    return r


def test_function_growing_its_stack_keeps_running_correctly_while_traced():
    for v, flavour, path in fixtures("tracee", flavours=["", ".pie"]):
        events, err, done = traced(path, r"^main\.Grow$", "grow 3000")
        got, want = map(int, done.split())
        assert got == want == grow_value(3000, 1), done
        ps = pairs(events)
        assert len(ps) == 3001 and all(r for _, r in ps.values())
        assert len({c["goid"] for c, _ in ps.values()}) == 1
        for c, r in ps.values():
            assert r["results"] == [grow_value(c["args"]["depth"], c["args"]["salt"])], (c, r)
        s = summary(err)
        assert s["calls"] == s["returns"] == 3001 and s["lost"] == 0, s


def test_n_calls_under_preemption_give_exactly_n_calls_and_n_returns():
    n, report = 20000, []
    for v, flavour, path in fixtures("tracee", flavours=["", ".stripped"]):
        events, err, done = traced(path, r"^main\.Tick$", f"tick {n} 3")
        assert done == str(n)
        kinds = [e["kind"] for e in events]
        assert kinds.count("call") == n and kinds.count("return") == n, (v, flavour, kinds.count("call"))
        ps = pairs(events)
        if flavour == ".dwarf":
            assert sorted(c["args"]["i"] for c, _ in ps.values()) == list(range(n))
            assert all(r["results"] == [c["args"]["i"] + 1] for c, r in ps.values())
        s = summary(err)
        assert s["calls"] == s["returns"] == n and s["lost"] == 0, s
        report.append(f"go{v}{flavour}: {s['repeats']} repeats dropped")
    print("  ", "; ".join(report))


def test_exact_counts_under_a_storm_of_preemption_signals():
    """SIGURG (Go's preemption signal) sent as fast as possible while Tick, whose entry and
    RET probes are both single-stepped, runs: still exactly N calls and N returns."""
    n = 30000
    path = next(p for v, fl, p in fixtures("tracee", flavours=[""]) if v == "1.26")
    t = Tracee(path)
    sent = [0]
    stop = threading.Event()

    def storm():
        while not stop.is_set():
            os.kill(t.pid, signal.SIGURG)
            sent[0] += 1

    try:
        tr = Trace(t.pid, r"^main\.Tick$")
        th = threading.Thread(target=storm)
        th.start()
        try:
            assert t.run(f"tick {n} 0") == str(n)
        finally:
            stop.set()
            th.join()
        events, err = tr.stop()
    finally:
        t.stop()
    s = summary(err)
    assert s["calls"] == s["returns"] == n and s["lost"] == 0, s
    assert len(pairs(events)) == n
    print(f"   {sent[0]} signals, {s['repeats']} repeated hits dropped")


def test_interface_holding_a_pointer_shows_the_struct_it_points_to():
    """An http.ResponseWriter holds a *http.response in its data word (a pointer-shaped
    dynamic type is stored there directly): a handler's w shows that struct's fields, as
    the server set them for an HTTP/1.0 GET, for every Go version; with --max-depth 0
    only its address."""
    seen = []
    for v, flavour, path in fixtures("target", flavours=["", ".pie"]):
        t = start_target(path, "-goroutines", 1)
        try:
            tr = Trace(t.pid, r"^net/http/pprof\.Index$", "--calls-only")
            assert t.get("/debug/pprof/")[0] == 200
            events, err = tr.stop()
            tr = Trace(t.pid, r"^net/http/pprof\.Index$", "--calls-only", "--max-depth", "0")
            assert t.get("/debug/pprof/")[0] == 200
            shallow, _ = tr.stop()
        finally:
            t.stop()
        assert len(events) == 1 == len(shallow), (v, flavour, events, err)
        w = events[0]["args"]["w"]
        assert w["type"] == "*http.response", (v, flavour, w)
        resp = w["value"]
        assert resp["contentLength"] == -1 and resp["status"] == 0 and resp["wantsClose"] is True, (v, flavour, resp)
        assert resp["req"]["RequestURI"] == "/debug/pprof/" and resp["req"]["Proto"] == "HTTP/1.0", resp["req"]
        assert resp["cw"]["res"]["cycle"] is True  # chunkWriter.res points back at the response
        assert "…" not in resp.values(), resp  # all of it was copied
        assert events[0]["truncated"] is True  # its own pointers are not followed: max-depth 2
        assert re.fullmatch(r"0x[0-9a-f]+", resp["w"]["ptr"]), resp["w"]  # a *bufio.Writer, not copied
        assert "unreadable" not in json.dumps(events[0]), events[0]  # what was not copied is no fault
        w0 = shallow[0]["args"]["w"]
        assert w0["type"] == "*http.response" and list(w0["value"]) == ["ptr"], w0
        seen.append(f"go{v}{flavour}")
    print("  w is a *http.response struct:", " ".join(seen))


def test_a_slice_of_interfaces_keeps_its_boxed_values_at_the_most_entries():
    """fmt.Sprint(a ...any) with --max-entries 16: sixteen elements' data still fit one
    event (each element gets a smaller copy than a lone interface)."""
    for v, flavour, path in fixtures("tracee", flavours=[""]):
        if v not in ("1.19", "1.22", "1.26"):
            continue
        p = subprocess.run([GLIMPSE, "trace", "--json", "--no-store", "--calls-only", "--max-entries", "16", "--exec",
                            f"{path} -run values", r"^fmt\.Sprint$"], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        assert events[0]["args"]["a"] == [{"type": "int", "value": 42}, None], (v, events[0])
        a = events[1]["args"]["a"]
        assert a[0] == {"type": "int", "value": 0} and a[1]["type"] == "*errors.errorString", (v, a)


# (expression, the same filter in Python) over `where 200`: Lookup(i, name, nil)
WHERE = [
    ('id > 100 && name == "abc"', lambda i, name: i > 100 and name == "abc"),
    ('name == "abc" || id < 3', lambda i, name: name == "abc" or i < 3),
    ('!(id >= 5) || id == 199', lambda i, name: not i >= 5 or i == 199),
    ('at == nil && id == 150', lambda i, name: i == 150),
    ('name != "abc" && id >= 195', lambda i, name: name != "abc" and i >= 195),
    ('id > 1.5 && id <= 4', lambda i, name: 1.5 < i <= 4),              # half in userspace
    ('name >= "u50" && name < "u60"', lambda i, name: "u50" <= name < "u60"),  # userspace
    ('id == 3 || id > 197.5', lambda i, name: i == 3 or i > 197.5),     # all userspace
]


def test_where_filters_exactly_in_bpf_and_in_userspace():
    names = {i: ("abc" if i % 10 == 3 else f"u{i}") for i in range(200)}
    for v, flavour, path in fixtures("tracee", flavours=["", ".pie"]):
        if v not in ("1.19", "1.23", "1.26") and flavour == ".pie":
            continue
        t = Tracee(path)
        try:
            for expr, want in WHERE:
                tr = Trace(t.pid, r"^main\.Lookup$", "--where", expr)
                t.run("where 200")
                events, err = tr.stop()
                expect = sorted(i for i in range(200) if want(i, names[i]))
                ps = pairs(events)
                got = sorted(c["args"]["id"] for c, _ in ps.values())
                assert got == expect, (v, flavour, expr, got, expect)
                assert all(r is not None and r["results"] == [c["args"]["id"] * 6, None] for c, r in ps.values())
                s = summary(err)
                assert s["calls"] == s["returns"] == len(expect) and s["filtered"] == 200 - len(expect), (expr, s)
                assert "--where in BPF" in err, err
        finally:
            t.stop()


def text_bytes(pid, start, n):
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(start)
        return f.read(n)


def func_range(path, name):
    p = glimpse("inspect", path, "--funcs", f"^{re.escape(name)}$", check=True)
    addr, size = p.stdout.split()[:2]
    return int(addr, 16), int(size)


def test_detaching_leaves_the_target_unchanged():
    for v, flavour, path in fixtures("tracee", flavours=[""]):
        if v not in ("1.19", "1.26"):
            continue
        start, size = func_range(path, "main.Lookup")
        with open(path, "rb") as f:
            data = f.read()
        t = Tracee(path)
        try:
            before = text_bytes(t.pid, start, size)
            first = t.run("values")
            tr = Trace(t.pid, r"^main\.Lookup$")
            during = text_bytes(t.pid, start, size)
            assert during != before and during.count(0xCC) > before.count(0xCC)  # the uprobes' int3s
            assert t.run("values") == first
            tr.stop(signal.SIGTERM)
            after = text_bytes(t.pid, start, size)
            assert after == before, "probes left behind"
            assert t.run("values") == first
            assert t.run("grow 2000").split()[0] == t.run("grow 2000").split()[1]
        finally:
            t.stop()
        assert before in data  # the same bytes as the file


def test_events_are_stored_and_flushed_on_sigint_and_sigterm():
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "trace.db")
        path = next(p for v, fl, p in fixtures("tracee", flavours=[""]) if v == "1.26")
        for sig in (signal.SIGINT, signal.SIGTERM):
            t = Tracee(path)
            try:
                tr = Trace(t.pid, FUNCS, "--stack", "3", db=db)
                t.run("values")
                t.run("tick 5000 0")
                events, err = tr.stop(sig)
            finally:
                t.stop()
            assert f"{len(events)} events stored in {db}" in err, err
        con = sqlite3.connect(db)
        try:
            assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 2 * 2 * len(VALUES)
            rows = con.execute("SELECT func, args, results, error, duration_ns FROM calls ORDER BY id").fetchall()
            assert [(fname(f), json.loads(a), json.loads(r)) for f, a, r, _, _ in rows[:len(VALUES)]] == VALUES
            assert [e for _, _, _, e, _ in rows if e] == ["no user -3", "division by zero"] * 2
            assert all(dur > 0 for *_, dur in rows)
            stats = con.execute("SELECT count(*), sum(calls), sum(returns), sum(ring_drops), min(ended > started)"
                                " FROM probes").fetchone()
            assert stats == (2 * 10, 2 * len(VALUES), 2 * len(VALUES), 0, 1), stats  # Pick: 2 instantiations
            stack = con.execute("SELECT stack FROM events WHERE kind = 'call' LIMIT 1").fetchone()[0]
            assert json.loads(stack)[0].startswith("main.values "), stack
            assert con.execute("SELECT value FROM event_args WHERE name = 'id' ORDER BY event").fetchall() == \
                [(7,), (-3,)] * 2
            assert con.execute("SELECT count(*) FROM events e JOIN probes p ON p.id = e.probe "
                               "JOIN processes pr ON pr.id = p.process").fetchone()[0] == 4 * len(VALUES)
        finally:
            con.close()


def test_exec_starts_the_target_with_probes_attached():
    for v, flavour, path in fixtures("tracee", flavours=[".pie"]):
        if v not in ("1.19", "1.26"):
            continue
        p = subprocess.run([GLIMPSE, "trace", "--json", "--no-store", "--stack", "2", "--exec",
                            f"{path} -run 'values;grow 50'", r"^main\.(Lookup|Grow)$"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert "ready pid=" in lines[0]
        grown = [l.split()[2:] for l in lines if l.startswith("done grow ")]
        assert grown and grown[0][0] == grown[0][1] == str(grow_value(50, 1)), lines[:3]
        events = [json.loads(l) for l in lines if l.startswith("{")]
        ps = pairs(events)
        assert len(ps) == 2 + 51 and all(r for _, r in ps.values())
        first = events[0]
        assert first["args"] == VALUES[0][1] and first["stack"][0].startswith("main.values ")
        assert "tracee/main.go:" in first["stack"][0] and first["stack"][1].startswith("main.run ")
        assert len(first["stack"]) == 2


def test_count_calls_only_max_events_and_duration():
    path = next(p for v, fl, p in fixtures("tracee", flavours=[""]) if v == "1.26")
    p = subprocess.run([GLIMPSE, "trace", "--count", "--no-store", "--exec", f"{path} -run 'tick 3000 0'", r"^main\.Tick$"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and re.search(r"main\.Tick\s+3000\n", p.stdout), p.stdout + p.stderr
    p = subprocess.run([GLIMPSE, "trace", "--json", "--no-store", "--calls-only", "--exec",
                        f"{path} -run 'tick 3000 0'", r"^main\.Tick$"], capture_output=True, text=True, timeout=60)
    events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    assert len(events) == 3000 and {e["kind"] for e in events} == {"call"}, p.stderr
    p = subprocess.run([GLIMPSE, "trace", "--json", "--no-store", "--max-events", "7", "--exec",
                        f"{path} -run 'tick 3000 0'", r"^main\.Tick$"], capture_output=True, text=True, timeout=60)
    assert len([l for l in p.stdout.splitlines() if l.startswith("{")]) == 7, p.stdout
    t = Tracee(path)
    try:
        t0 = time.time()
        p = subprocess.run([GLIMPSE, "trace", "--no-store", "--duration", "1", "--pid", str(t.pid), r"^main\.Tick$"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and 0.9 < time.time() - t0 < 10, p.stderr
    finally:
        t.stop()


def test_bad_input_gets_a_clear_message():
    path = next(p for v, fl, p in fixtures("tracee", flavours=[""]) if v == "1.26")
    t = Tracee(path)
    try:
        cases = [
            (["main\\.("], "bad regexp"),
            (["main\\.Nope"], "no function matches 'main\\.Nope'"),
            (["^main\\.double$"], "main.double is inlined into every caller"),
            (["--where", "idx > 3", "^main\\.Lookup$"], "main.Lookup has no argument 'idx'"),
            (["--where", "id > > 3", "^main\\.Lookup$"], "--where: expected a number"),
            (["--where", "name > 3", "^main\\.Lookup$"], "cannot compare 'name' (string)"),
        ]
        for args, msg in cases:
            p = glimpse("trace", "--pid", t.pid, "--no-store", *args)
            assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
        assert t.run("values").startswith("42")
    finally:
        t.stop()
    stripped = path + ".stripped"
    p = glimpse("trace", "--no-store", "--where", "id > 3", "--exec", stripped, "^main\\.Lookup$")
    assert p.returncode != 0 and "no DWARF" in p.stderr, p.stderr
    p = glimpse("trace", "--no-store", "--exec", "/bin/true", ".")
    assert p.returncode != 0 and p.stderr.startswith("glimpse: "), p.stderr
    p = glimpse("trace", "--no-store", "--pid", "999999", ".")
    assert p.returncode != 0 and "999999" in p.stderr, p.stderr
    p = glimpse("trace", "--no-store", "main")
    assert p.returncode == 2 and "--pid" in p.stderr


def test_exec_target_sharing_a_pipe_never_splits_an_event_line():
    """glimpse and the target it starts write to one pipe at once: the target a line per
    command, glimpse thousands of events; every line read is one whole JSON event or one
    whole line of the target's (each of glimpse's writes carries whole lines only). The
    same with a regular file, where glimpse writes bigger batches."""
    reps, report = 500, []
    for v, flavour, path in fixtures("tracee", flavours=[""]):
        if v not in ("1.19", "1.23", "1.26"):
            continue
        for sink in ("pipe", "file") if v == "1.26" else ("pipe",):
            cmd = [GLIMPSE, "trace", "--json", "--no-store", "--exec",
                   f"{path} -run '{';'.join(['tick 20 0;values'] * reps)}'", r"^main\.(Tick|Lookup)$"]
            with tempfile.TemporaryFile("w+") as err, tempfile.TemporaryFile("w+") as shared:
                if sink == "pipe":
                    r, w = os.pipe()  # one pipe for both: glimpse's stdout, inherited by the target
                    p = subprocess.Popen(cmd, stdout=w, stderr=err)
                    os.close(w)
                    with os.fdopen(r, "rb") as f:
                        out = f.read().decode()
                    assert p.wait(120) == 0
                else:
                    assert subprocess.run(cmd, stdout=shared, stderr=err, timeout=120).returncode == 0
                    shared.seek(0)
                    out = shared.read()
                err.seek(0)
                stderr = err.read()
            report.append(check_shared_output(v, sink, out, stderr, reps))
    print("  ", "; ".join(report))


def check_shared_output(v, sink, out, stderr, reps):
    """Checks the lines glimpse and `-run 'tick 20 0;values' x reps` wrote to one output."""
    events, child, bad = [], 0, []
    for line in out.split("\n")[:-1]:
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
                continue
            except ValueError:
                pass
        if re.fullmatch(r"ready pid=\d+|done tick 20|done values 42 <nil>\|0 no user -3\|.*", line):
            child += 1
        else:
            bad.append(line)
    assert not bad, f"go{v} {sink}: {len(bad)} broken lines, e.g. {bad[:2]}"
    assert out.endswith("\n") and child == 1 + 2 * reps, (v, sink, child)
    s = summary(stderr)
    assert len(events) == s["calls"] + s["returns"] == reps * (2 * 20 + 2 * 2) and s["lost"] == 0, (v, s)
    assert sorted(e["args"]["i"] for e in events if e["func"] == "main.Tick" and e["kind"] == "call") == \
        sorted(list(range(20)) * reps)
    return f"go{v} {sink}: {len(events)} events, {child} target lines"
