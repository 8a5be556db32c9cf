#!/usr/bin/env bash
# demo.sh - the README's first command: on a fresh machine, set up, build glimpse and
# a demo Go service, start it, and show what glimpse sees in it without stopping it.
# The demo service keeps running afterwards only with --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = --keep ] && keep=1

make --no-print-directory setup >/dev/null
make --no-print-directory -s all
bash tests/build-fixtures.sh build/fixtures 1.26 >/dev/null
demo=build/fixtures/go1.26/target
db=${GLIMPSE_DB:-build/demo.db}

out=$(mktemp)
"$demo" -goroutines 50 -call-every 10ms >"$out" 2>&1 &
svc=$!
cleanup() { [ "$keep" = 1 ] || kill "$svc" 2>/dev/null || true; rm -f "$out" "$out.snap"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q '^ready' "$out" && break; sleep 0.1; done
grep -q '^ready' "$out" || { echo "demo: the demo service did not start" >&2; cat "$out" >&2; exit 1; }
echo "demo service: $(head -1 "$out")"
echo
echo "\$ glimpse inspect --pid $svc"
build/glimpse inspect --pid "$svc"
echo
echo "\$ glimpse inspect --pid $svc --funcs '^main\\.'"
build/glimpse inspect --pid "$svc" --funcs '^main\.'
echo
echo "\$ glimpse inspect --pid $svc --vars main.parkedWorker"
build/glimpse inspect --pid "$svc" --vars main.parkedWorker
echo
echo "\$ glimpse snapshot --pid $svc --db $db"
build/glimpse snapshot --pid "$svc" --db "$db" >"$out.snap"
cut -c1-200 "$out.snap" | sed -n '1,60p'
echo "... ($(wc -l <"$out.snap") lines in all)"
echo
echo "\$ glimpse trace --pid $svc '^main\.Handle\$' --duration 1 --max-events 10 --db $db"
build/glimpse trace --pid "$svc" '^main\.Handle$' --duration 1 --max-events 10 --db "$db"
echo
echo "everything above is in $db:"
echo "\$ sqlite3 $db 'SELECT goroutines, wait_reason, top_func FROM goroutine_groups LIMIT 5'"
sqlite3 "$db" 'SELECT goroutines, wait_reason, top_func FROM goroutine_groups LIMIT 5' 2>/dev/null ||
	echo "(install sqlite3 to query it)"
[ "$keep" = 1 ] && echo "demo service left running: pid $svc"
exit 0
