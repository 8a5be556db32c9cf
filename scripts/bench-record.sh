#!/usr/bin/env bash
# bench-record.sh - what glimpse record costs a web app, next to its peers, in one run.
#
# The webapp fixture (tests/fixtures/webapp, static Go) under wrk (Debian's package), GET /
# (a request that counts and hands its number to a parked goroutine), keep-alive with
# BENCH_WRK_CONNS connections and a new connection per request with one:
#   direct              the app alone
#   haproxy (tcp)       HAProxy in TCP mode, one thread, in front of it: the peer, what a byte
#                       relay costs on this machine (skipped without haproxy)
#   glimpse (--no-rr)   through glimpse record's proxy, instances not recorded   goal >= 0.9x direct
#   rr alone            the app under `rr record -W`
#   haproxy + rr        HAProxy in front of that
#   glimpse + rr        through glimpse record, recording                        goal: <= 5% below rr alone
# All run at once and BENCH_ROUNDS rounds go through them in turn (medians), so that other work
# on the machine weighs on each alike; the relays' own CPU time per request is printed too.
# and the recording's size per request before compression (rr's own files: the trace without
# the binaries rr pack copies in) and after (tar + zstd; binaries stored once apart), goal
# <= 1 KB per simple request. rr parts are skipped with the reason when no working rr is found.
# Prints a markdown table; the machine is noisy, so compare within a run.
#
# Environment: BENCH_GO (1.23), BENCH_WRK_SECONDS (5), BENCH_WRK_CONNS (8), BENCH_ROUNDS (3), RR (rr).
set -euo pipefail
cd "$(dirname "$0")/.."

GO_VERSION=${BENCH_GO:-1.23}
export BENCH_WRK_SECONDS=${BENCH_WRK_SECONDS:-5}
export BENCH_WRK_CONNS=${BENCH_WRK_CONNS:-8}
export RR=${RR:-rr}
export BENCH_ROUNDS=${BENCH_ROUNDS:-3}
make -s all >&2
bash tests/build-fixtures.sh build/fixtures "$GO_VERSION" >&2
export BENCH_APP=build/fixtures/go$GO_VERSION/webapp
command -v wrk >/dev/null || { echo "bench-record: wrk is needed (apt-get install wrk)" >&2; exit 1; }

exec python3 - <<'PYEOF'
import os, re, shutil, socket, sqlite3, subprocess, tempfile, time

APP = os.path.abspath(os.environ["BENCH_APP"])
SECS = os.environ["BENCH_WRK_SECONDS"]
CONNS = os.environ["BENCH_WRK_CONNS"]
RR = os.environ["RR"]
ROUNDS = int(os.environ["BENCH_ROUNDS"])
HAPROXY = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy")
GLIMPSE = os.path.abspath("build/glimpse")
tmp = tempfile.mkdtemp(prefix="bench-record-")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=120):
    t = time.time() + timeout
    while time.time() < t:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def wrk(port, conns, close):
    args = ["wrk", "-t1", f"-c{conns}", f"-d{SECS}s", "--latency", f"http://127.0.0.1:{port}/"]
    if close:
        args[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return rps, p99, reqs


def loads(port):
    ka = wrk(port, CONNS, False)
    cl = wrk(port, 1, True)
    return {"keep-alive": ka, "new conn": cl}


def rr_works():
    try:
        v = subprocess.run([RR, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        return None, f"no rr ({e})"
    if v.returncode != 0:
        return None, f"rr --version failed: {v.stderr.strip()[:200]}"
    return v.stdout.strip(), None


def cpu_ns(pid):
    """CPU time (user + system) of process pid's own threads, ns."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def haproxy(backend_port):
    """HAProxy in TCP mode (one thread, like glimpse's relay) in front of backend_port."""
    port = free_port()
    cfg = os.path.join(tmp, f"haproxy-{port}.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend in
    bind 127.0.0.1:{port}
    default_backend app
backend app
    server app 127.0.0.1:{backend_port}
""")
    h = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return h, port


def recorder(no_rr, db=None):
    d = os.path.join(tmp, f"rec-{'norr' if no_rr else 'rr'}")
    args = [GLIMPSE, "record", "--listen", "127.0.0.1:0", "--dir", d, "--idle", "0"]
    if no_rr:
        args.append("--no-rr")
    else:
        args += ["--rr", RR, "--db", db]
    args += ["--", APP, "-port", "{port}"]
    g = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "record.err"), "a"),
                         text=True, start_new_session=True)
    port = int(re.search(r"port (\d+)", g.stdout.readline()).group(1))
    # The first request starts the instance: not measured.
    subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "180", f"http://127.0.0.1:{port}/"])
    return g, port


# Every setup runs at once and the rounds go through them in turn, so that other work on the
# machine weighs on all of them alike; each cell is the median of the rounds.
setups, procs, notes = [], [], []  # setups: (name, port, pid whose CPU is the relay's or None)
port = free_port()
p = subprocess.Popen([APP, "-port", str(port)], stdout=subprocess.DEVNULL)
procs.append(p)
wait_port(port)
setups.append(("direct", port, None))
if HAPROXY:
    h, hport = haproxy(port)
    procs.append(h)
    setups.append(("haproxy (tcp)", hport, h.pid))
else:
    notes.append("haproxy rows skipped: no haproxy (scripts/setup.sh installs it)")
g, gport = recorder(True)
setups.append(("glimpse (--no-rr)", gport, g.pid))

ver, why = rr_works()
grr = None
if ver:
    env = dict(os.environ, GOMAXPROCS="2", _RR_PATCH_LOC_DB_DIR=os.path.join(tmp, "rr-cache"))
    port = free_port()
    trace = os.path.join(tmp, "rr-alone")
    p = subprocess.Popen([RR, "record", "-W", "-o", trace, APP, "-port", str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    wait_port(port)
    setups.append(("rr alone", port, None))
    if HAPROXY:
        h, hport = haproxy(port)
        procs.append(h)
        setups.append(("haproxy + rr", hport, h.pid))
    db = os.path.join(tmp, "glimpse.db")
    grr, port = recorder(False, db)
    setups.append(("glimpse + rr", port, grr.pid))
else:
    notes.append(f"rr parts skipped: {why}")

cells = {name: {"keep-alive": [], "new conn": []} for name, _, _ in setups}
for _ in range(ROUNDS):
    for name, port, pid in setups:
        for load, (conns, close) in (("keep-alive", (CONNS, False)), ("new conn", (1, True))):
            c0 = cpu_ns(pid) if pid else 0
            rps, p99, reqs = wrk(port, conns, close)
            cpu = (cpu_ns(pid) - c0) / max(reqs, 1) / 1000 if pid else None
            cells[name][load].append((rps, p99, reqs, cpu))


def med(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


rows = []
for name, _, _ in setups:
    rows.append((name, {load: tuple(med([c[k] for c in cs]) for k in range(4)) + (sum(c[2] for c in cs),)
                        for load, cs in cells[name].items()}))

if grr:
    nreq = 1 + sum(r[4] for r in dict(rows)["glimpse + rr"].values())
    grr.terminate()
    grr.wait(600)
    c = sqlite3.connect(db)
    rec = c.execute("SELECT bytes_raw, bytes_binaries, bytes_packed, replayable, why_not FROM recordings "
                    "ORDER BY id DESC LIMIT 1").fetchone()
    notes.append(f"rr: {ver}")
    if rec and rec[0]:
        raw, binaries, packed, replayable, why_not = rec
        notes.append(f"recording of {nreq} requests: {raw} bytes packed by rr ({binaries} of them binaries), "
                     f"{raw - binaries} of rr's own = {(raw - binaries) / nreq:.0f} B/request before compression, "
                     f"{packed} after tar+zstd = {packed / nreq:.0f} B/request; replayable here: "
                     f"{'yes' if replayable else 'no (' + str(why_not)[:200] + ')'}")
    else:
        notes.append(f"the recording was not registered: {rec}")
g.terminate()
g.wait(60)
for p in procs:
    p.terminate()
    p.wait()

print(f"\n| setup | keep-alive req/s (c={CONNS}) | p99 ms | new conn req/s (c=1) | p99 ms "
      f"| relay CPU µs/request (keep-alive, new conn) |")
print("| --- | --- | --- | --- | --- | --- |")
for name, r in rows:
    ka, cl = r["keep-alive"], r["new conn"]
    cpu = f"{ka[3]:.1f}, {cl[3]:.1f}" if ka[3] is not None else ""
    print(f"| {name} | {ka[0]:.0f} | {ka[1]:.2f} | {cl[0]:.0f} | {cl[1]:.2f} | {cpu} |")
by = dict(rows)
print()


def ratio(name, base, goal):
    if name not in by or base not in by:
        return
    a, b = by[name], by[base]
    print(f"{name} / {base}: keep-alive {a['keep-alive'][0] / b['keep-alive'][0]:.2f}x req/s, "
          f"p99 {a['keep-alive'][1] / b['keep-alive'][1]:.2f}x; new conn {a['new conn'][0] / b['new conn'][0]:.2f}x "
          f"req/s, p99 {a['new conn'][1] / b['new conn'][1]:.2f}x{goal}")


ratio("glimpse (--no-rr)", "direct", " (goal >= 0.9x req/s)")
ratio("haproxy (tcp)", "direct", " (the peer: what a byte relay costs on this machine)")
ratio("glimpse + rr", "rr alone", " (goal >= 0.95x req/s)")
ratio("haproxy + rr", "rr alone", " (the peer)")
for n in notes:
    print(n)
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
print(f"CPU: {cpu[0] if cpu else '?'} x {len(cpu)}; {ROUNDS} rounds, medians; wrk {SECS} s per cell")
subprocess.run(["rm", "-rf", tmp])
PYEOF
