#!/usr/bin/env bash
# bench-record.sh - what glimpse record costs a web app, next to its peers, in one run.
#
# The webapp fixture (tests/fixtures/webapp, static Go) under wrk (Debian's package), GET /
# (a request that counts and hands its number to a parked goroutine), keep-alive with
# BENCH_WRK_CONNS connections and a new connection per request with one:
#   direct            the app alone
#   proxy (--no-rr)   through glimpse record's proxy, instances not recorded   goal >= 0.9x direct
#   rr alone          the app under `rr record -W`
#   proxy + rr        through glimpse record, recording                        goal: <= 5% below rr alone
# and the recording's size per request before compression (rr's own files: the trace without
# the binaries rr pack copies in) and after (tar + zstd; binaries stored once apart), goal
# <= 1 KB per simple request. rr parts are skipped with the reason when no working rr is found.
# Prints a markdown table; the machine is noisy, so compare within a run.
#
# Environment: BENCH_GO (1.23), BENCH_WRK_SECONDS (5), BENCH_WRK_CONNS (8), RR (rr).
set -euo pipefail
cd "$(dirname "$0")/.."

GO_VERSION=${BENCH_GO:-1.23}
export BENCH_WRK_SECONDS=${BENCH_WRK_SECONDS:-5}
export BENCH_WRK_CONNS=${BENCH_WRK_CONNS:-8}
export RR=${RR:-rr}
make -s all >&2
bash tests/build-fixtures.sh build/fixtures "$GO_VERSION" >&2
export BENCH_APP=build/fixtures/go$GO_VERSION/webapp
command -v wrk >/dev/null || { echo "bench-record: wrk is needed (apt-get install wrk)" >&2; exit 1; }

exec python3 - <<'PYEOF'
import os, re, signal, socket, sqlite3, subprocess, sys, tempfile, time

APP = os.path.abspath(os.environ["BENCH_APP"])
SECS = os.environ["BENCH_WRK_SECONDS"]
CONNS = os.environ["BENCH_WRK_CONNS"]
RR = os.environ["RR"]
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


rows, notes = [], []
# direct
port = free_port()
p = subprocess.Popen([APP, "-port", str(port)], stdout=subprocess.DEVNULL)
wait_port(port)
rows.append(("direct", loads(port)))
p.terminate(); p.wait()


def recorder(no_rr, db=None):
    d = os.path.join(tmp, f"rec-{len(rows)}")
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


g, port = recorder(True)
rows.append(("proxy (--no-rr)", loads(port)))
g.terminate(); g.wait()

ver, why = rr_works()
if ver:
    env = dict(os.environ, GOMAXPROCS="2", _RR_PATCH_LOC_DB_DIR=os.path.join(tmp, "rr-cache"))
    port = free_port()
    trace = os.path.join(tmp, "rr-alone")
    p = subprocess.Popen([RR, "record", "-W", "-o", trace, APP, "-port", str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    rows.append(("rr alone", loads(port)))
    p.terminate(); p.wait()
    db = os.path.join(tmp, "glimpse.db")
    g, port = recorder(False, db)
    proxy_rr = loads(port)
    rows.append(("proxy + rr", proxy_rr))
    nreq = 1 + sum(r[2] for r in proxy_rr.values())
    g.terminate(); g.wait(600)
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
else:
    notes.append(f"rr parts skipped: {why}")

print("\n| setup | keep-alive req/s (c=%s) | p99 ms | new conn req/s (c=1) | p99 ms |" % CONNS)
print("| --- | --- | --- | --- | --- |")
for name, r in rows:
    ka, cl = r["keep-alive"], r["new conn"]
    print(f"| {name} | {ka[0]:.0f} | {ka[1]:.2f} | {cl[0]:.0f} | {cl[1]:.2f} |")
by = dict(rows)
print()
print(f"proxy/direct: keep-alive {by['proxy (--no-rr)']['keep-alive'][0] / by['direct']['keep-alive'][0]:.2f}x, "
      f"new conn {by['proxy (--no-rr)']['new conn'][0] / by['direct']['new conn'][0]:.2f}x (goal >= 0.9x)")
if "proxy + rr" in by:
    print(f"proxy+rr / rr alone: keep-alive {by['proxy + rr']['keep-alive'][0] / by['rr alone']['keep-alive'][0]:.2f}x, "
          f"new conn {by['proxy + rr']['new conn'][0] / by['rr alone']['new conn'][0]:.2f}x (goal >= 0.95x)")
for n in notes:
    print(n)
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
print(f"CPU: {cpu[0] if cpu else '?'} x {len(cpu)}")
subprocess.run(["rm", "-rf", tmp])
PYEOF
