#!/usr/bin/env bash
# bench-serve.sh - what a user of `glimpse serve` waits for, next to its peers, in one run.
#
# 1. A snapshot over the API end to end: from the POST /api/snapshots request sent to its
#    answer (the snapshot id, committed to the store), with and without variables, for 1k,
#    10k and 100k parked goroutines (tests/fixtures/target -goroutines N -ticker 1ms), next to
#    pprof's goroutine?debug=2 and `glimpse snapshot` (the CLI, which stores too) on the same
#    target. The target's stall during each is its own measure: a goroutine sleeping 1 ms at a
#    time records how late it wakes (the worst lateness overlapping the request), with "idle"
#    the same measure while nothing looks.
# 2. /api/sql under wrk (Debian's package): a point query and an aggregate over the 100k-row
#    goroutines of a stored snapshot, next to /api/health on the same server, with a thread per
#    connection (the default) and with a pool of worker threads: requests/s and p99.
# Prints markdown tables and ratios; the machine is noisy, so compare within a run.
#
# Environment: BENCH_SIZES ("1000 10000 100000"), BENCH_REPS (5), BENCH_GO (1.23),
# BENCH_WRK_SECONDS (5), BENCH_WRK_CONNS (8).
set -euo pipefail
cd "$(dirname "$0")/.."

GO_VERSION=${BENCH_GO:-1.23}
export BENCH_SIZES=${BENCH_SIZES:-"1000 10000 100000"}
export BENCH_REPS=${BENCH_REPS:-5}
export BENCH_WRK_SECONDS=${BENCH_WRK_SECONDS:-5}
export BENCH_WRK_CONNS=${BENCH_WRK_CONNS:-8}

make -s all >&2
bash tests/build-fixtures.sh build/fixtures "$GO_VERSION" >&2
export BENCH_TARGET=build/fixtures/go$GO_VERSION/target
if ! command -v wrk >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "bench-serve: installing Debian's wrk for the SQL load" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || echo "bench-serve: no wrk; skipping part 2" >&2
fi

exec python3 - <<'EOF'
import http.client, json, os, re, socket, statistics, subprocess, sys, tempfile, time, urllib.parse, urllib.request

TARGET = os.environ["BENCH_TARGET"]
SIZES = [int(n) for n in os.environ["BENCH_SIZES"].split()]
REPS = int(os.environ["BENCH_REPS"])
WRK_S = int(os.environ["BENCH_WRK_SECONDS"])
WRK_C = int(os.environ["BENCH_WRK_CONNS"])
GLIMPSE = "build/glimpse"
started = []
tmp = tempfile.TemporaryDirectory()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def get(url, timeout=600):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    def __init__(self, n):
        self.p = subprocess.Popen([TARGET, "-goroutines", str(n), "-ticker", "1ms"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        started.append(self.p)
        line = self.p.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"bench-serve: {TARGET} did not start: {line!r}")
        self.pid = self.p.pid
        self.http = "http://" + line.split("http=")[1].strip()
        time.sleep(0.5 + n / 100000)
        self.stall()

    def stall(self, frm=0, to=0):
        return json.loads(get(self.http + f"/stall?reset=1&from={frm}&to={to}"))

    def stop(self):
        self.p.kill()
        self.p.wait()


class Server:
    def __init__(self, db, *args):
        self.port = free_port()
        self.p = subprocess.Popen([GLIMPSE, "serve", "--db", db, "--listen", f"127.0.0.1:{self.port}", "--quiet",
                                   *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        started.append(self.p)
        line = self.p.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"bench-serve: glimpse serve did not start: {line!r}")
        self.p.stdout.readline()
        self.token = line.rsplit("token=", 1)[1].strip()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def post(self, path, body):
        self.conn.request("POST", path, json.dumps(body), {"Authorization": f"Bearer {self.token}"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise SystemExit(f"bench-serve: {path}: {r.status} {data[:300]!r}")
        return json.loads(data)

    def stop(self):
        self.conn.close()
        self.p.terminate()
        self.p.wait(60)


def timed(t, fn):
    """(seconds, result, worst lateness of the target's 1 ms ticker during fn, in us)."""
    t.stall()
    t0, real0 = time.monotonic(), time.time_ns()
    res = fn()
    wall = time.monotonic() - t0
    st = t.stall(real0, time.time_ns())
    return wall, res, st["range_late_max_us"]


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_ms(s):
    if s is None:
        return "–"
    ms = s * 1e3
    return f"{ms:.2f} ms" if ms < 1 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms" if ms < 10000 else f"{ms / 1e3:.1f} s"


def ratio(a, b):
    return "–" if a is None or b is None or not b else f"{a / b:.2f}×"


rows = []
sql_db = None
try:
    for n in SIZES:
        log(f"== {n} goroutines")
        t = Target(n)
        db = os.path.join(tmp.name, f"bench-{n}.db")
        s = Server(db)
        # warm: the model and the BPF reader are loaded once per server
        s.post("/api/snapshots", {"pid": t.pid, "vars": False})
        r = {"n": n, "api_vars": [], "api_novars": [], "cli_vars": [], "cli_novars": [], "pprof": [],
             "late": {k: [] for k in ("idle", "api_vars", "api_novars", "pprof")}, "parts": []}
        for rep in range(REPS):
            for vars_ in (True, False):
                key = "api_vars" if vars_ else "api_novars"
                wall, ans, late = timed(t, lambda: s.post("/api/snapshots", {"pid": t.pid, "vars": vars_}))
                r[key].append(wall)
                r["late"][key].append(late)
                if vars_:
                    r["parts"].append((ans["duration_us"], ans["decode_us"], ans["store_us"]))
                cli = [GLIMPSE, "snapshot", "--pid", str(t.pid), "--json", "--db", os.path.join(tmp.name, "cli.db")]
                t0 = time.monotonic()
                subprocess.run(cli + ([] if vars_ else ["--no-vars"]), capture_output=True, check=True, timeout=600)
                r["cli_vars" if vars_ else "cli_novars"].append(time.monotonic() - t0)
            wall, _, late = timed(t, lambda: get(t.http + "/debug/pprof/goroutine?debug=2"))
            r["pprof"].append(wall)
            r["late"]["pprof"].append(late)
            pause = med(r["api_vars"])
            _, _, late = timed(t, lambda: time.sleep(pause))
            r["late"]["idle"].append(late)
            log(f"  rep {rep + 1}: api {fmt_ms(r['api_vars'][-1])} with vars, {fmt_ms(r['api_novars'][-1])} without;"
                f" pprof {fmt_ms(r['pprof'][-1])}; cli {fmt_ms(r['cli_vars'][-1])}")
        s.stop()
        t.stop()
        rows.append(r)
        if n == max(SIZES):
            sql_db = db
finally:
    for p in started:
        if p.poll() is None:
            p.kill()

print(f"\n### Snapshot over the API, end to end ({cpu()}, {os.cpu_count()} CPUs, Go {os.environ.get('BENCH_GO', '1.23')} "
      f"fixture, medians of {REPS})\n")
print("| goroutines | API with vars | API without vars | pprof debug=2 | API/pprof with vars | API/pprof without |"
      " CLI with vars | CLI without | capture / decode / store (with vars) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    parts = [med([p[i] for p in r["parts"]]) / 1e6 for i in range(3)]
    print(f"| {r['n']:,} | {fmt_ms(med(r['api_vars']))} | {fmt_ms(med(r['api_novars']))} | {fmt_ms(med(r['pprof']))} |"
          f" {ratio(med(r['api_vars']), med(r['pprof']))} | {ratio(med(r['api_novars']), med(r['pprof']))} |"
          f" {fmt_ms(med(r['cli_vars']))} | {fmt_ms(med(r['cli_novars']))} |"
          f" {' / '.join(fmt_ms(p) for p in parts)} |")
print("\nWorst lateness of the target's 1 ms ticker during each (median of the runs):\n")
print("| goroutines | idle | API with vars | API without vars | pprof debug=2 |")
print("|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['n']:,} | " + " | ".join(fmt_ms(med(r["late"][k]) / 1e6) for k in ("idle", "api_vars", "api_novars", "pprof"))
          + " |")

if not sql_db or subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode:
    sys.exit(0)


def wrk(port, token, path):
    out = subprocess.run(["wrk", "-t", "2", "-c", str(WRK_C), "-d", f"{WRK_S}s", "--latency", "-H",
                          f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=WRK_S + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"bench-serve: {path}: {errors.group(1)} error answers")
    return rps, p99


snap = json.loads(subprocess.run(["sqlite3", "-json", sql_db, "SELECT max(id) AS id, (SELECT count(*) FROM goroutines"
                                  " WHERE snapshot = (SELECT max(id) FROM snapshots)) AS n FROM snapshots"],
                                 capture_output=True, text=True, check=True).stdout)[0]
goid = subprocess.run(["sqlite3", sql_db, f"SELECT goid FROM goroutines WHERE snapshot = {snap['id']} LIMIT 1 OFFSET 500"],
                      capture_output=True, text=True, check=True).stdout.strip()
queries = {
    "/api/health": "/api/health",
    "point query": "/api/sql?" + urllib.parse.urlencode(
        {"sql": "SELECT * FROM goroutines WHERE snapshot = :s AND goid = :g", "p.s": snap["id"], "p.g": goid}),
    "aggregate": "/api/sql?" + urllib.parse.urlencode(
        {"sql": "SELECT status, wait_reason, count(*) FROM goroutines WHERE snapshot = :s GROUP BY 1, 2",
         "p.s": snap["id"]}),
}
print(f"\n### /api/sql under wrk ({WRK_C} connections, {WRK_S} s each, {snap['n']:,} goroutine rows, {cpu()})\n")
print("| server threads | query | req/s | p99 | × /api/health req/s |")
print("|---|---|---:|---:|---:|")
for threads in ("0", "4"):
    s = Server(sql_db, "--threads", threads)
    try:
        res = {name: wrk(s.port, s.token, path) for name, path in queries.items()}
    finally:
        s.stop()
    label = "one per connection" if threads == "0" else f"pool of {threads}"
    for name, (rps, p99) in res.items():
        print(f"| {label} | {name} | {rps:,.0f} | {fmt_ms(p99)} | {rps / res['/api/health'][0]:.2f}× |")
EOF
