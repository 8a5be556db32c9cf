#!/usr/bin/env bash
# Install everything glimpse needs to build and test on a fresh Debian 12 (bookworm) machine.
# Idempotent: re-running it changes nothing once the machine is set up. Must run as root.
#
# Suites added (the mirror is taken from the machine's own apt sources):
#   bookworm-backports  libbpf 1.4, bpftool 7.5, golang-1.21..1.23 (default backports priority)
#   trixie, trixie-backports  pinned at 50 so nothing else moves; only golang-1.24..1.26 and
#                             delve come from them
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "setup.sh: must run as root" >&2; exit 1; }

GO_VERSIONS="1.19 1.21 1.22 1.23 1.24 1.25 1.26"
BASE_PKGS="build-essential pkg-config clang llvm libelf-dev libdw-dev libzstd-dev zlib1g-dev
	libmicrohttpd-dev libsqlite3-dev sqlite3 libcapstone-dev libcmocka-dev
	curl ca-certificates python3 clang-format clang-tidy cppcheck
	openssl wrk"

# The Debian mirror this machine already uses (deb822 or one-line format).
mirror() {
	local m
	m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '{print $2}' | grep -v -- '-security' | grep -m1 '/debian/\?$' || true)
	if [ -z "$m" ]; then
		m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			grep -v -- '-security' | awk '{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' |
			grep -m1 '/debian/\?$' || true)
	fi
	[ -n "$m" ] || { echo "setup.sh: no Debian mirror found in /etc/apt sources" >&2; exit 1; }
	echo "${m%/}"
}

add_suites() {
	local m list=/etc/apt/sources.list.d/glimpse.sources pin=/etc/apt/preferences.d/glimpse-trixie
	m=$(mirror)
	local want
	want="Types: deb
URIs: $m
Suites: bookworm-backports trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"
	if [ ! -f "$list" ] || [ "$(cat "$list")" != "$(printf '%s' "$want")" ]; then
		printf '%s' "$want" >"$list"
		NEED_UPDATE=1
	fi
	if [ ! -f "$pin" ]; then
		cat >"$pin" <<'PIN'
# glimpse: take only the Go toolchains from trixie; never upgrade anything else from it.
Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50
PIN
		NEED_UPDATE=1
	fi
}

missing() { # prints the packages of "$@" that are not installed
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

apt_install() { # apt_install [-t SUITE] PKG...
	local target=()
	if [ "$1" = -t ]; then target=(-t "$2"); shift 2; fi
	local todo
	todo=$(missing "$@")
	[ -z "$todo" ] && return 0
	[ "${UPDATED:-0}" = 1 ] || { apt-get update -qq; UPDATED=1; }
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${target[@]}" $todo
}

NEED_UPDATE=0
add_suites
if [ "$NEED_UPDATE" = 1 ]; then apt-get update -qq; UPDATED=1; fi

# shellcheck disable=SC2086
apt_install $BASE_PKGS
apt_install -t bookworm-backports libbpf-dev bpftool
apt_install golang-1.19-go
for v in 1.21 1.22 1.23; do apt_install -t bookworm-backports "golang-$v-go"; done
apt_install -t trixie golang-1.24-go
for v in 1.25 1.26; do apt_install -t trixie-backports "golang-$v-go"; done

apt_install_no_start() { # installs packages that ship a service, never starting it
	[ -z "$(missing "$@")" ] && return 0
	local had_policy=0 rc=0
	[ -e /usr/sbin/policy-rc.d ] && had_policy=1
	[ "$had_policy" = 1 ] || printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	apt_install "$@" || rc=$?
	[ "$had_policy" = 1 ] || rm -f /usr/sbin/policy-rc.d
	return $rc
}

# A real stripped Go service from Debian for the tests (never started as a service here:
# policy-rc.d forbids it for the length of the install; the tests run it on loopback).
apt_install_no_start prometheus-node-exporter || true
# scripts/bench-record.sh's reference for what a byte relay costs on the machine: HAProxy in
# TCP mode, run by the bench on loopback only (its service is never started).
apt_install_no_start haproxy
# glimpse replay --dlv: trixie's Delve 1.24 (bookworm's 1.20 cannot drive rr 5.9, so it is
# replaced); a static Go binary, so it installs on bookworm as it is.
delve_version=$(dpkg-query -W -f='${Status} ${Version}' delve 2>/dev/null | awk '$3 == "installed" {print $4}')
if ! dpkg --compare-versions "${delve_version:-0}" ge 1.24; then
	[ "${UPDATED:-0}" = 1 ] || { apt-get update -qq; UPDATED=1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t trixie delve
fi

# The Grafana tests read glimpse's answers with Grafana's own parsing (@grafana/data from
# the npm registry, pinned in tests/grafana/package-lock.json).
root=$(cd "$(dirname "$0")/.." && pwd)
# Node.js and npm: Debian's, unless the machine already has a Node.js that brings its own npm.
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
if [ ! -d "$root/tests/grafana/node_modules/@grafana/data" ]; then
	(cd "$root/tests/grafana" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
# The web UI is bundled at build time (esbuild, preact, CodeMirror, uPlot) and tested in
# Debian's chromium with playwright-core and axe-core, all pinned in web/package-lock.json.
if [ ! -d "$root/web/node_modules/esbuild" ]; then
	(cd "$root/web" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
command -v chromium >/dev/null || apt_install chromium

# Kernel file systems glimpse uses.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null ||
	mountpoint -q /sys/kernel/debug/tracing || true

for v in $GO_VERSIONS; do
	[ -x "/usr/lib/go-$v/bin/go" ] || { echo "setup.sh: go $v missing after install" >&2; exit 1; }
done
echo "setup.sh: ready (libbpf $(pkg-config --modversion libbpf), $(bpftool version | head -1))"
