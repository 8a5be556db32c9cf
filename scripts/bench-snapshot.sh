#!/usr/bin/env bash
# bench-snapshot.sh - how long glimpse takes to capture every goroutine of a
# live Go process, next to pprof's goroutine?debug=2 and Delve's
# `goroutines -t`, and what each costs the target while it looks.
#
# For 1k, 10k and 100k parked goroutines (tests/fixtures/target -goroutines N
# -ticker 1ms) it measures, in one run and on the same target:
#   glimpse   `glimpse snapshot --pid P --json --no-store --reader R` for both
#             readers: capture time (the reader's duration_us: copying every g
#             and stack) and end-to-end wall time (BPF load, ELF/DWARF, unwinding,
#             variables, JSON);
#   pprof     GET /debug/pprof/goroutine?debug=2: wall time, and the target's
#             stop-the-world pauses, from runtime/metrics
#             /sched/pauses/total/other:seconds (Go 1.22+) as the target reports
#             them at /stall;
#   dlv       `dlv attach P` + `goroutines -t` in batch mode (Delve stops the
#             whole process from attach to detach);
#   stall     the target's own measure: a goroutine sleeping 1 ms at a time
#             records how late it wakes; /stall?reset=1&from=&to= returns the
#             worst lateness of the sleeps overlapping each tool's capture (and
#             of the whole run). "idle" is the same measure with no tool running.
# Each is repeated (median shown); machines are noisy, so compare within a run.
# Prints a markdown table. Every process it starts is killed on exit.
#
# Environment: BENCH_SIZES ("1000 10000 100000"), BENCH_REPS (5), BENCH_GO
# (1.23: Debian 12's Delve 1.20 reads goroutines of Go <= 1.23 binaries, and the
# pause metric needs Go >= 1.22), BENCH_DLV_TIMEOUT (180 s).
# Installs Debian's `delve` package when dlv is missing and apt-get is usable.
set -euo pipefail
cd "$(dirname "$0")/.."

GO_VERSION=${BENCH_GO:-1.23}
export BENCH_SIZES=${BENCH_SIZES:-"1000 10000 100000"}
export BENCH_REPS=${BENCH_REPS:-5}
export BENCH_DLV_TIMEOUT=${BENCH_DLV_TIMEOUT:-180}

make -s all >&2
bash tests/build-fixtures.sh build/fixtures "$GO_VERSION" >&2
export BENCH_TARGET=build/fixtures/go$GO_VERSION/target
[ -x "$BENCH_TARGET" ] || { echo "bench-snapshot: no fixture $BENCH_TARGET (is Go $GO_VERSION installed?)" >&2; exit 1; }

if ! command -v dlv >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "bench-snapshot: installing Debian's delve package for the comparison" >&2
	apt-get install -y delve >/dev/null 2>&1 || echo "bench-snapshot: could not install delve; skipping it" >&2
fi

exec python3 - <<'EOF'
import json, os, signal, statistics, subprocess, sys, time, urllib.request

TARGET = os.environ["BENCH_TARGET"]
SIZES = [int(n) for n in os.environ["BENCH_SIZES"].split()]
REPS = int(os.environ["BENCH_REPS"])
DLV_TIMEOUT = float(os.environ["BENCH_DLV_TIMEOUT"])
GLIMPSE = "build/glimpse"
DLV = subprocess.run(["sh", "-c", "command -v dlv"], capture_output=True, text=True).stdout.strip()
started = []  # processes to kill on exit


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def get(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class Target:
    """The fixture with n parked goroutines and a 1 ms ticker."""

    def __init__(self, n):
        self.p = subprocess.Popen([TARGET, "-goroutines", str(n), "-ticker", "1ms"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        started.append(self.p)
        line = self.p.stdout.readline()  # "ready pid=N http=ADDR", once all are parked
        if not line.startswith("ready"):
            raise SystemExit(f"bench-snapshot: {TARGET} did not start: {line!r}")
        self.pid = self.p.pid
        self.http = "http://" + line.split("http=")[1].strip()
        time.sleep(0.5 + n / 100000)  # let the last workers park and the heap settle
        self.stall()

    def stall(self, frm=0, to=0):
        """The target's lateness and pauses since the last call (and resets them);
        range_late_max_us: the worst lateness of the sleeps overlapping [frm, to] (Unix ns)."""
        return json.loads(get(self.http + f"/stall?reset=1&from={frm}&to={to}"))

    def stop(self):
        self.p.kill()
        self.p.wait()


def timed(t, fn, window=None):
    """Runs fn with the target's stall window around it: (seconds, fn's result, stall).
    window(result) gives the capture's [from, to] in Unix ns; else the whole run."""
    t.stall()
    t0, real0 = time.monotonic(), time.time_ns()
    res = fn()
    wall = time.monotonic() - t0
    frm, to = window(res) if window else (real0, time.time_ns())
    return wall, res, t.stall(frm, to)


def glimpse(t, reader):
    """The snapshot glimpse printed, with "wall": the command's own wall time."""
    t0 = time.monotonic()
    out = subprocess.run([GLIMPSE, "snapshot", "--pid", str(t.pid), "--json", "--no-store", "--reader", reader],
                         capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    if out.returncode:
        raise SystemExit(f"bench-snapshot: glimpse snapshot failed: {out.stderr.strip()}")
    j = json.loads(out.stdout)
    if j["reader"] != reader:
        raise SystemExit(f"bench-snapshot: glimpse used {j['reader']}, not {reader}: {j.get('reader_note')}")
    j["wall"] = wall
    return j


def pprof(t):
    return len(get(t.http + "/debug/pprof/goroutine?debug=2", timeout=600))


def dlv(t):
    try:
        out = subprocess.run([DLV, "attach", str(t.pid), "--check-go-version=false",
                              "--allow-non-terminal-interactive=true"],
                             input="goroutines -t\nquit\nn\n", capture_output=True, text=True, timeout=DLV_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timeout"
    return "ok" if out.returncode == 0 and " goroutines]" in out.stdout else "failed"


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_ms(s):
    if s is None:
        return "–"
    ms = s * 1e3
    return f"{ms:.2f} ms" if ms < 1 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms" if ms < 10000 else f"{ms / 1e3:.1f} s"


def fmt_us(us):
    return "–" if us is None else fmt_ms(us / 1e6)


def ratio(a, b):
    return "–" if a is None or b is None or not b else f"{a / b:.0f}×" if a / b >= 10 else f"{a / b:.1f}×"


rows = []
try:
    for n in SIZES:
        log(f"== {n} goroutines")
        t = Target(n)
        r = {"n": n, "cap": {"bpf": [], "process_vm_readv": []}, "e2e": {"bpf": [], "process_vm_readv": []},
             "late": {k: [] for k in ("idle", "bpf", "process_vm_readv", "pprof", "dlv")},
             "late_run": {k: [] for k in ("idle", "bpf", "process_vm_readv")},
             "pprof": [], "stw_max": [], "stw_total": [], "dlv": [], "dlv_status": "not installed" if not DLV else ""}
        for rep in range(REPS):
            for reader in ("bpf", "process_vm_readv"):
                _, j, st = timed(t, lambda: glimpse(t, reader),
                                 lambda j: (j["taken_at"], j["taken_at"] + j["duration_us"] * 1000))
                r["cap"][reader].append(j["duration_us"] / 1e6)
                r["e2e"][reader].append(j["wall"])
                r["late"][reader].append(st["range_late_max_us"])
                r["late_run"][reader].append(st["late_max_us"])
                r["goroutines"] = len(j["goroutines"])
            wall, _, st = timed(t, lambda: pprof(t))
            r["pprof"].append(wall)
            r["late"]["pprof"].append(st["range_late_max_us"])
            if st["stw_metric"]:
                r["stw_max"].append(st["stw_max_us"])
                r["stw_total"].append(st["stw_total_us"])
            # Idle: a window as long as glimpse's capture in the middle of a pause
            # as long as its whole command.
            pause, cap = med(r["e2e"]["bpf"]), med(r["cap"]["bpf"])
            mid = time.time_ns() + int(pause * 5e8)
            _, _, st = timed(t, lambda: time.sleep(pause), lambda _: (mid, mid + int(cap * 1e9)))
            r["late"]["idle"].append(st["range_late_max_us"])
            r["late_run"]["idle"].append(st["late_max_us"])
            log(f"  rep {rep + 1}: glimpse bpf {fmt_ms(r['cap']['bpf'][-1])} / "
                f"vm {fmt_ms(r['cap']['process_vm_readv'][-1])}, pprof {fmt_ms(wall)}; stall: "
                + ", ".join(f"{k} {fmt_us(r['late'][k][-1])}" for k in ("idle", "bpf", "process_vm_readv", "pprof")))
        if DLV:
            for rep in range(3 if n <= 1000 else 1):
                wall, status, st = timed(t, lambda: dlv(t))
                r["dlv_status"] = status
                if status != "ok":
                    break
                r["dlv"].append(wall)
                r["late"]["dlv"].append(st["range_late_max_us"])
                log(f"  dlv {fmt_ms(wall)}")
        t.stop()
        rows.append(r)
finally:
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()

print(f"\nglimpse snapshot vs pprof vs Delve: {TARGET} (`-goroutines N -ticker 1ms`), "
      f"{os.cpu_count()} CPUs, median of {REPS} runs (Delve: 3 at 1k, else 1), "
      f"{time.strftime('%Y-%m-%d')}\n")
print("| goroutines | glimpse capture, bpf | glimpse capture, process_vm_readv | per goroutine (bpf) "
      "| glimpse end-to-end (bpf / vm) | pprof debug=2 | pprof STW max (total) | dlv goroutines -t "
      "| pprof / glimpse | dlv / glimpse |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    cap = med(r["cap"]["bpf"])
    dl = med(r["dlv"]) if r["dlv"] else None
    print(f"| {r['n']:,} | {fmt_ms(cap)} | {fmt_ms(med(r['cap']['process_vm_readv']))} "
          f"| {cap * 1e6 / r['goroutines']:.2f} µs "
          f"| {fmt_ms(med(r['e2e']['bpf']))} / {fmt_ms(med(r['e2e']['process_vm_readv']))} "
          f"| {fmt_ms(med(r['pprof']))} "
          f"| {fmt_us(med(r['stw_max']))} ({fmt_us(med(r['stw_total']))}) "
          f"| {fmt_ms(dl) if dl else r['dlv_status']} "
          f"| {ratio(med(r['pprof']), cap)} | {ratio(dl, cap)} |")
print("\nTarget stall: the worst lateness of a 1 ms sleep in the target during each tool's capture "
      "(glimpse: its reader's duration; pprof: the request; dlv: attach to detach): median over runs, "
      "and after the slash the worst run. Idle: a window as long as glimpse's capture with no tool "
      "running. In parentheses: median during the whole glimpse command, and during an idle pause as "
      "long as that.\n")
print("| goroutines | idle | glimpse (bpf) | glimpse (process_vm_readv) | pprof debug=2 | dlv goroutines -t |")
print("|---:|---:|---:|---:|---:|---:|")


def worst(xs):
    return max(xs) if xs else None


for r in rows:
    late = {k: med(v) for k, v in r["late"].items()}
    top = {k: worst(v) for k, v in r["late"].items()}
    run = {k: med(v) for k, v in r["late_run"].items()}
    print(f"| {r['n']:,} | {fmt_us(late['idle'])} / {fmt_us(top['idle'])} ({fmt_us(run['idle'])}) "
          f"| {fmt_us(late['bpf'])} / {fmt_us(top['bpf'])} ({fmt_us(run['bpf'])}) "
          f"| {fmt_us(late['process_vm_readv'])} / {fmt_us(top['process_vm_readv'])} ({fmt_us(run['process_vm_readv'])}) "
          f"| {fmt_us(late['pprof'])} | {fmt_us(late['dlv']) if late['dlv'] is not None else r['dlv_status']} |")
print("\nglimpse capture = the reader's own duration (every runtime.g and the used part of every stack "
      "copied, nothing paused); end-to-end = the whole `glimpse snapshot --json --no-store` command, "
      "BPF load, unwinding and local variables included. pprof STW = the target's stop-the-world "
      "pauses other than GC during the request (runtime/metrics /sched/pauses/total/other:seconds). "
      "Ratios are against glimpse's BPF capture.")
EOF
