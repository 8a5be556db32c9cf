#!/usr/bin/env bash
# demo.sh - the README's first command: on a fresh machine, set up, build glimpse and
# a demo Go service, start it, and show what glimpse sees in it without stopping it;
# then run `glimpse serve` on the demo's store, use its HTTP API once, and leave it
# serving (with the demo service) until Ctrl-C.
#   --keep      leave the demo service running afterwards
#   --no-serve  stop after the command-line part (for scripts)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0 serve=1
for a in "$@"; do
	case $a in
	--keep) keep=1 ;;
	--no-serve) serve=0 ;;
	*) echo "demo: unknown option $a" >&2; exit 2 ;;
	esac
done

make --no-print-directory setup >/dev/null
make --no-print-directory -s all
bash tests/build-fixtures.sh build/fixtures 1.26 >/dev/null
demo=build/fixtures/go1.26/target
db=${GLIMPSE_DB:-build/demo.db}

out=$(mktemp)
"$demo" -goroutines 50 -call-every 10ms >"$out" 2>&1 &
svc=$!
srv=
cleanup() {
	[ -z "$srv" ] || kill "$srv" 2>/dev/null || true
	[ "$keep" = 1 ] || kill "$svc" 2>/dev/null || true
	rm -f "$out" "$out.snap" "$out.serve"
}
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
[ "$serve" = 1 ] || { [ "$keep" = 1 ] && echo "demo service left running: pid $svc"; exit 0; }

port=${GLIMPSE_DEMO_PORT:-7070}
echo
echo "\$ glimpse serve --db $db --listen 127.0.0.1:$port"
build/glimpse serve --db "$db" --listen "127.0.0.1:$port" --quiet >"$out.serve" &
srv=$!
for _ in $(seq 100); do grep -q 'listening on' "$out.serve" && break; sleep 0.1; done
grep -q 'listening on' "$out.serve" || { echo "demo: glimpse serve did not start" >&2; exit 1; }
cat "$out.serve"
url=$(sed -n 's/.*listening on //p' "$out.serve")
token=${url##*token=}
base=${url%%/\?token=*}
echo
echo "\$ curl -H 'Authorization: Bearer \$TOKEN' -d '{\"pid\": $svc}' $base/api/snapshots"
curl -sS -H "Authorization: Bearer $token" -d "{\"pid\": $svc}" "$base/api/snapshots"
echo
echo "\$ curl -H 'Authorization: Bearer \$TOKEN' '$base/api/sql?sql=SELECT+status,count(*)+FROM+goroutines+GROUP+BY+1'"
curl -sS -H "Authorization: Bearer $token" "$base/api/sql?sql=SELECT+status,count(*)+FROM+goroutines+GROUP+BY+1"
echo
echo "glimpse serve is running on the demo's store: $url"
echo "(the API is in the README; Grafana dashboards are in web/grafana/; Ctrl-C stops the server and the demo service)"
wait "$srv"
