#!/usr/bin/env bash
# lint.sh - static analysis of userspace/ (make lint; CI runs it): clang-tidy with the
# checks in .clang-tidy, two files at a time, then cppcheck. Any finding fails.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
flags="-std=gnu11 -D_GNU_SOURCE -Iuserspace -Ibuild $(pkg-config --cflags capstone)"
# Findings in build/ are in generated code (bpftool's skeletons), not ours.
ls userspace/*.c | xargs -P2 -I{} sh -c "clang-tidy --quiet {} -- $flags 2>&1" | grep -vE '^(.*/)?build/[^/]*\.skel\.h:' >"$out"
if grep -qE '(warning|error):' "$out"; then
	grep -E '(warning|error):' "$out"
	echo "lint: clang-tidy found $(grep -cE '(warning|error):' "$out") problems"
	exit 1
fi
cppcheck -j2 --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
	--suppress=missingIncludeSystem --suppress=missingInclude --suppress=unknownMacro -Iuserspace userspace ||
	{ echo "lint: cppcheck found problems"; exit 1; }
echo "lint: clean ($(ls userspace/*.c | wc -l) files)"
