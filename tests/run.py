#!/usr/bin/env python3
"""Runs every glimpse test and ends with one line CI understands:
'N passed, N failed, N skipped'.

  unit tests    build/tests/test_* (cmocka binaries; their own counts are added up)
  system tests  tests/system/test_*.py: every test_* function (no arguments) is one test;
                raising harness.Skip(reason) skips it with that reason printed.

usage: tests/run.py [SUBSTRING...]   run only tests whose name contains one of them
"""
import importlib
import os
import re
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
os.chdir(ROOT)

totals = {"passed": 0, "failed": 0, "skipped": 0}
failures = []


def selected(name, filters):
    return not filters or any(f in name for f in filters)


def run_unit(path, filters):
    name = os.path.basename(path)
    if not selected(name, filters):
        return
    t0 = time.time()
    try:
        p = subprocess.run([path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
                           env=dict(os.environ, CMOCKA_MESSAGE_OUTPUT="stdout"))
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace") + "\nTIMEOUT after 600 s", -1
    counts = {}
    for key, pat in (("passed", r"\[  PASSED  \] (\d+) test"), ("failed", r"\[  FAILED  \] (\d+) test"),
                     ("skipped", r"\[  SKIPPED \] (\d+) test")):
        m = re.findall(pat, out)
        counts[key] = int(m[-1]) if m else 0
    if rc != 0 and counts["failed"] == 0:
        counts["failed"] = 1  # crashed or aborted before cmocka could count
    for k in totals:
        totals[k] += counts[k]
    dt = time.time() - t0
    status = "FAIL" if counts["failed"] else "ok"
    print(f"{status:4} {name}: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped ({dt:.1f}s)", flush=True)
    if counts["failed"]:
        failures.append(name)
        # What failed where first (CI logs may show only a part), then the end of the output.
        why = [l for l in out.splitlines() if re.match(r"\[  (ERROR   |FAILED  )\] |\[   LINE   \]", l)]
        print("\n".join("     ! " + l for l in why[:30]), flush=True)
        print("\n".join("     | " + l for l in out.splitlines()[-60:]), flush=True)
    else:
        for l in out.splitlines():
            if "SKIP" in l or l.startswith("note:"):
                print("     | " + l)


def run_system(modname, filters):
    import harness
    mod = importlib.import_module(modname)
    for name in sorted(n for n in dir(mod) if n.startswith("test_")):
        fn = getattr(mod, name)
        full = f"{modname}.{name}"
        if not callable(fn) or not selected(full, filters):
            continue
        t0 = time.time()
        try:
            fn()
        except harness.Skip as e:
            totals["skipped"] += 1
            print(f"skip {full}: {e} ({time.time() - t0:.1f}s)", flush=True)
            continue
        except Exception:
            totals["failed"] += 1
            failures.append(full)
            print(f"FAIL {full} ({time.time() - t0:.1f}s)", flush=True)
            print("\n".join("     | " + l for l in traceback.format_exc().splitlines()[-40:]), flush=True)
            continue
        finally:
            harness.cleanup()
        totals["passed"] += 1
        print(f"ok   {full} ({time.time() - t0:.1f}s)", flush=True)


def main():
    filters = sys.argv[1:]
    t0 = time.time()
    unit_dir = os.path.join(ROOT, "build", "tests")
    if os.path.isdir(unit_dir):
        for f in sorted(os.listdir(unit_dir)):
            p = os.path.join(unit_dir, f)
            if f.startswith("test_") and os.access(p, os.X_OK):
                run_unit(p, filters)
    sysdir = os.path.join(ROOT, "tests", "system")
    for f in sorted(os.listdir(sysdir)):
        if f.startswith("test_") and f.endswith(".py"):
            run_system(f[:-3], filters)
    print(f"\n{len(failures)} failing: {', '.join(failures)}" if failures else "", flush=True)
    print(f"total time {time.time() - t0:.0f}s")
    print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    return 1 if totals["failed"] or not totals["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
