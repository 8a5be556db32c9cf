#!/usr/bin/env bash
# bench-probe.sh - what tracing one Go function costs per call, glimpse next to its
# peers in the same run: a tight loop in the tracee fixture calls main.Bench(id, name,
# odd) N times and reports ns per call, untraced and under each tool:
#
#   no probe                     the loop alone
#   glimpse --count              an entry probe that counts
#   glimpse --calls-only         each call with its 3 arguments (one a string), as JSON
#   glimpse calls+returns        arguments, results and duration (a RET probe too)
#   glimpse ... --db             the same, stored in SQLite
#   bpftrace count / printf      uprobe on the function, count(), or printf of the 3 args
#   dlv trace --ebpf             when it works on this machine
#
# Each configuration runs ROUNDS times, interleaved, against a fresh process; the
# median is reported, with the overhead over "no probe", its ratio to bpftrace's
# count-only overhead, and for glimpse the events per second it delivered during the
# loop and how many it lost. Other load on the machine moves these numbers: compare
# the ratios.
#
#   N=200000 ROUNDS=3 GO=1.26 bash scripts/bench-probe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
GO=${GO:-1.26}
BIN=build/fixtures/go$GO/tracee

[ -x build/glimpse ] || make all
[ -x "$BIN" ] || bash tests/build-fixtures.sh build/fixtures "$GO"
if ! command -v bpftrace >/dev/null; then
	echo "bench-probe: installing bpftrace (Debian package) to compare with" >&2
	apt-get install -y bpftrace >/dev/null 2>&1 || echo "bench-probe: bpftrace could not be installed" >&2
fi
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

exec python3 - "$BIN" "$N" "$ROUNDS" <<'EOF'
import os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

BIN, N, ROUNDS = os.path.abspath(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
GLIMPSE = os.path.abspath("build/glimpse")
FUNC = r"^main\.Bench$"
tmp = tempfile.mkdtemp(prefix="bench-probe-")

def glimpse(*args):
    return [GLIMPSE, "trace", "--pid", "{pid}", *args, FUNC]

CONFIGS = [
    ("no probe", None, None),
    ("glimpse --count", glimpse("--count", "--no-store"), " probes in pid "),
    ("glimpse --calls-only, 3 args", glimpse("--calls-only", "--no-store", "--json"), " probes in pid "),
    ("glimpse calls+returns", glimpse("--no-store", "--json"), " probes in pid "),
    ("glimpse calls+returns --db", glimpse("--json", "--db", os.path.join(tmp, "bench.db")), " probes in pid "),
]
if shutil.which("bpftrace"):
    CONFIGS += [
        ("bpftrace count", ["bpftrace", "-p", "{pid}", "-e", f"uprobe:{BIN}:main.Bench {{ @n = count(); }}"],
         "Attaching"),
        ("bpftrace printf, 3 args", ["bpftrace", "-p", "{pid}", "-e",
                                     f"uprobe:{BIN}:main.Bench {{ printf(\"%d %s %d\\n\", reg(\"ax\"), "
                                     f"str(reg(\"bx\"), reg(\"cx\")), reg(\"di\")); }}"], "Attaching"),
    ]
if shutil.which("dlv"):
    CONFIGS.append(("dlv trace --ebpf", ["dlv", "trace", "--ebpf", "-p", "{pid}", FUNC], None))

unavailable = {}


class Tracee:
    def __init__(self):
        self.p = subprocess.Popen([BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        self.pid = int(self.p.stdout.readline().split("=")[1])

    def bench(self):
        self.p.stdin.write(f"bench {N}\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        return float(line.split()[2]) if line.startswith("done bench") else None

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()


def start_tool(name, cmd, ready, pid):
    out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.Popen([a.replace("{pid}", str(pid)) for a in cmd], stdout=o, stderr=e, text=True,
                             start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        text = open(err).read() + open(out).read()
        if p.poll() is not None:
            return p, text
        if ready and ready in text:
            if not name.startswith("glimpse"):
                time.sleep(2)  # bpftrace says "Attaching" before it has attached
            return p, None
        if not ready and time.time() > deadline - 20:
            return p, None
        time.sleep(0.05)
    return p, None


def stop_tool(p):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return open(os.path.join(tmp, "err")).read() + open(os.path.join(tmp, "out")).read()


def why(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    best = [l for l in lines if "unable" in l] or [l for l in lines if "rror" in l] or lines or ["exited"]
    return best[0][:200]


def one(name, cmd, ready):
    t = Tracee()
    try:
        if cmd is None:
            return t.bench(), ""
        p, failed = start_tool(name, cmd, ready, t.pid)
        if failed is not None:
            unavailable[name] = why(failed)
            stop_tool(p)
            return None, ""
        ns = t.bench()
        time.sleep(0.3)
        text = stop_tool(p)
        if name.startswith("dlv") and ("unable to set tracepoint" in text or "no breakpoints set" in text):
            unavailable[name] = why(text)
            return None, text
        return ns, text
    finally:
        t.stop()


results = {name: [] for name, _, _ in CONFIGS}
stats = {}
for r in range(ROUNDS):
    for name, cmd, ready in CONFIGS:
        if name in unavailable:
            continue
        ns, text = one(name, cmd, ready)
        if ns is None:
            continue
        results[name].append(ns)
        m = re.search(r"(\d+) calls, (\d+) returns .*?(\d+) events lost", text)
        if m:
            calls, rets, lost = map(int, m.groups())
            stats.setdefault(name, []).append((calls + rets, lost, ns))
        m = re.search(r"(\d+) calls of 1 functions", text) or re.search(r"@n: (\d+)", text)
        if m:
            stats.setdefault(name, []).append((int(m.group(1)), 0, ns))

base = statistics.median(results["no probe"])
ref = statistics.median(results["bpftrace count"]) - base if results.get("bpftrace count") else None
print(f"\nmain.Bench(id int, name string, odd bool), {N} calls per run, median of {ROUNDS} runs; "
      f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load {os.getloadavg()[0]:.2f}\n")
print(f"| {'tool':32} | {'ns/call':>9} | {'overhead ns':>11} | {'x bpftrace count':>16} | {'events/s':>9} | {'lost':>5} |")
print(f"|{'-' * 34}|{'-' * 11}|{'-' * 13}|{'-' * 18}|{'-' * 11}|{'-' * 7}|")
for name, _, _ in CONFIGS:
    if name in unavailable or not results[name]:
        print(f"| {name:32} | {'n/a':>9} | {'':>11} | {'':>16} | {'':>9} | {'':>5} |  {unavailable.get(name, '')}")
        continue
    ns = statistics.median(results[name])
    over = ns - base
    ratio = f"{over / ref:.2f}" if ref and name != "no probe" else ""
    evs, lost = "", ""
    if name in stats and name.startswith("glimpse") and "count" not in name:
        events, lost_n, run_ns = min(stats[name], key=lambda st: abs(st[2] - ns))  # the median run
        evs, lost = f"{events / (N * run_ns / 1e9) / 1e3:.0f}k", str(lost_n)
    elif name in stats:
        counted = statistics.median(s[0] for s in stats[name])
        lost = "" if counted >= N else str(N - counted)
    print(f"| {name:32} | {ns:9.1f} | {over if name != 'no probe' else 0:11.1f} | {ratio:>16} | {evs:>9} | {lost:>5} |")

if ref:
    args = statistics.median(results["glimpse --calls-only, 3 args"]) - base
    print(f"\nglimpse with 3 arguments: {args:.0f} ns per call vs bpftrace counting only: {ref:.0f} ns "
          f"({args / ref:.2f}x; goal <= 1: {'met' if args <= ref else 'NOT met'})")
if stats.get("glimpse --calls-only, 3 args"):
    events, lost_n, run_ns = max(stats["glimpse --calls-only, 3 args"], key=lambda s: s[0] / s[2])
    rate = events / (N * run_ns / 1e9)
    print(f"glimpse sustained {rate / 1e3:.0f}k events/s with {lost_n} lost "
          f"(goal >= 500k with none lost: {'met' if rate >= 5e5 and lost_n == 0 else 'NOT met'})")
for name, why in unavailable.items():
    print(f"{name}: not available here: {why}")
shutil.rmtree(tmp, ignore_errors=True)
EOF
