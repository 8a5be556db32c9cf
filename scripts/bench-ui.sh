#!/usr/bin/env bash
# bench-ui.sh - the web UI on a 100k-goroutine snapshot, in Debian's chromium driven by
# playwright-core (web/test/bench.mjs): the time from navigation to the grouped view
# being shown (goal: at most 1 s), from a filter typed to the filtered view shown (goal:
# at most 200 ms), and the bytes the page transferred (cache disabled, gzip).
#
# A real target (tests/fixtures/target -goroutines N) and a real `glimpse serve` with
# its own store; the snapshot is taken with variables, as the UI does.
#
# Environment: BENCH_GOROUTINES (100000), BENCH_RUNS (5), BENCH_GO (1.23),
# GLIMPSE_FIXTURES (build/fixtures; built here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_GOROUTINES:-100000}
GO_VERSION=${BENCH_GO:-1.23}
FIX=${GLIMPSE_FIXTURES:-build/fixtures}
make -s all >&2
[ -x "$FIX/go$GO_VERSION/target" ] || bash tests/build-fixtures.sh "$FIX" "$GO_VERSION" >&2
dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT

"$FIX/go$GO_VERSION/target" -goroutines "$N" >"$dir/target.out" 2>&1 &
pids+=($!)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
build/glimpse serve --db "$dir/g.db" --listen "127.0.0.1:$port" --quiet >"$dir/serve.out" 2>"$dir/serve.err" &
pids+=($!)
for _ in $(seq 600); do
	grep -q '^ready' "$dir/target.out" && grep -q 'listening on' "$dir/serve.out" && break
	sleep 0.1
done
tpid=$(sed -n 's/^ready pid=\([0-9]*\).*/\1/p' "$dir/target.out")
url=$(sed -n 's/.*listening on //p' "$dir/serve.out")
token=$(cat "$dir/g.db.token")
snap=$(curl -sf -H "Authorization: Bearer $token" -d "{\"pid\": $tpid, \"vars\": true}" "127.0.0.1:$port/api/snapshots" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshot_id"])')
echo "bench-ui: snapshot $snap of $N goroutines (pid $tpid); chromium $(chromium --version 2>/dev/null | awk '{print $2}')" >&2
GLIMPSE_URL=$url SNAPSHOT=$snap FILTER=main.sleeper RUNS=${BENCH_RUNS:-5} node web/test/bench.mjs >"$dir/bench.json"
python3 - "$dir/bench.json" "$N" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["median"]
print(f"| goroutines | navigation → grouped view | filter typed → filtered view | transferred |")
print(f"|---:|---:|---:|---:|")
print(f"| {int(sys.argv[2]):,} | {m['navigation_ms']} ms (goal ≤ 1000) | {m['filter_ms']} ms (goal ≤ 200) | {m['transferred_bytes'] / 1024:.0f} KiB |")
print(f"{r['goroutines']:,} goroutines in {r['groups']} groups; runs: navigation {r['navigation_ms']} ms, filter {r['filter_ms']} ms, bytes {r['transferred_bytes']}")
PY
