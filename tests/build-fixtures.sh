#!/usr/bin/env bash
# build-fixtures.sh OUTDIR VERSION... - builds every fixture in tests/fixtures/ with each
# installed Go version in three flavours: with DWARF, stripped (-s -w), and PIE.
#   OUTDIR/go1.NN/NAME  OUTDIR/go1.NN/NAME.stripped  OUTDIR/go1.NN/NAME.pie
# Rebuilds only what is older than its sources.
set -euo pipefail
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off GO111MODULE=on CGO_ENABLED=0
for v in "$@"; do
	go=/usr/lib/go-$v/bin/go
	[ -x "$go" ] || { echo "build-fixtures: go $v is not installed, skipping it" >&2; continue; }
	mkdir -p "$out/go$v"
	# The build cache lives outside the tree so fresh clones (CI) on this machine reuse it.
	export GOCACHE="${GLIMPSE_GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/glimpse}/go$v"
	for dir in "$here"/fixtures/*/; do
		name=$(basename "$dir")
		newest=$(find "$dir" -type f -newer "$out/go$v/$name.pie" 2>/dev/null | head -1 || true)
		[ -f "$out/go$v/$name.pie" ] && [ -z "$newest" ] && continue
		(cd "$dir" &&
			"$go" build -o "$out/go$v/$name" . &&
			"$go" build -ldflags='-s -w' -o "$out/go$v/$name.stripped" . &&
			"$go" build -buildmode=pie -o "$out/go$v/$name.pie" .) ||
			{ echo "build-fixtures: $name with go $v failed" >&2; exit 1; }
		echo "built $name with go$v"
	done
done
