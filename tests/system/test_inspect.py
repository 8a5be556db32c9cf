"""glimpse inspect on real Go binaries of every installed version, stripped, PIE, and on bad input."""
import json
import os
import subprocess
import time

from harness import Skip, fixtures, glimpse, glimpse_json, go, start_target


def go_version_string(v):
    return subprocess.run([go(v), "version"], capture_output=True, text=True).stdout.split()[2]


def test_inspect_reports_version_buildid_and_flavour_of_every_fixture():
    seen = 0
    for v, flavour, path in fixtures():
        info = glimpse_json("inspect", path, "--json")
        assert info["go_version"] == go_version_string(v), (path, info["go_version"])
        assert info["stripped"] == (flavour == ".stripped"), (path, info["stripped"])
        assert info["pie"] == (flavour == ".pie"), (path, info["pie"])
        buildid = subprocess.run([go(v), "tool", "buildid", path], capture_output=True, text=True).stdout.strip()
        assert info["build_id"] == buildid, (path, info["build_id"], buildid)
        assert info["functions"] > 1000, info["functions"]
        off = info["offsets"]
        assert off["source"] == ("table" if flavour == ".stripped" else "dwarf"), off["source"]
        assert off["globals_source"] == ("disasm" if flavour == ".stripped" else "symtab"), off["globals_source"]
        for k in ("g.goid", "g.atomicstatus", "g.sched", "m.curg", "runtime.allgs", "runtime.allglen"):
            assert isinstance(off[k], int) and off[k] > 0, (path, k, off[k])
        assert off["gobuf.sp"] == 0 and off["gobuf.pc"] == 8, off
        seen += 1
    assert seen == 21, seen


def test_inspect_text_output_names_the_essentials():
    for v, flavour, path in fixtures(flavours=[".stripped"]):
        out = glimpse("inspect", path, check=True).stdout
        assert "go version:  go1." + v.split(".")[1] in out, out
        assert "stripped:    yes" in out, out
        assert "runtime offsets (from table)" in out, out


def test_inspect_rejects_non_go_binary_with_one_clear_message():
    p = glimpse("inspect", "/bin/ls")
    assert p.returncode == 1, p
    assert p.stderr.strip() == "glimpse: /bin/ls: not a Go binary (no Go build info)", p.stderr
    assert p.stdout == ""
    p = glimpse("inspect", "/etc/hostname")
    assert p.returncode == 1 and "not a Go binary" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    p = glimpse("inspect", "/nonexistent/binary")
    assert p.returncode == 1 and "cannot open /nonexistent/binary" in p.stderr, p.stderr


def test_inspect_dead_pid_and_bad_arguments():
    p = glimpse("inspect", "--pid", "12abc")
    assert p.returncode == 2 and "--pid takes a process id" in p.stderr, p.stderr
    p = glimpse("inspect", "--pid", "999999999")
    assert p.returncode == 1 and p.stderr.strip() == "glimpse: no process with pid 999999999", p.stderr
    # a pid that existed and is gone
    child = subprocess.Popen(["true"])
    child.wait()
    p = glimpse("inspect", "--pid", child.pid)
    assert p.returncode == 1 and f"no process with pid {child.pid}" in p.stderr, p.stderr
    p = glimpse("inspect")
    assert p.returncode == 2 and "exactly one of BINARY or --pid" in p.stderr, p.stderr
    p = glimpse("inspect", "--pid", os.getpid())
    assert p.returncode == 1 and "not a Go binary" in p.stderr, p.stderr


def test_inspect_pid_of_running_target_matches_file():
    path = next(p for v, fl, p in fixtures(flavours=[".pie"]) if v == "1.23")
    t = start_target(path, "-goroutines", "5")
    by_pid = glimpse_json("inspect", "--pid", t.pid, "--json")
    by_file = glimpse_json("inspect", path, "--json")
    assert by_pid["path"] == os.path.realpath(path), by_pid["path"]
    assert by_pid["build_id"] == by_file["build_id"] and by_pid["offsets"] == by_file["offsets"]
    assert t.alive()


def test_inspect_funcs_regexp_and_errors():
    path = next(p for v, fl, p in fixtures(flavours=[""]) if v == "1.26")
    out = glimpse_json("inspect", path, "--funcs", r"^main\.(Handle|parkedWorker)$", "--json")
    names = sorted(f["name"] for f in out["functions"])
    assert names == ["main.Handle", "main.parkedWorker"], names
    for f in out["functions"]:
        assert f["entry"] < f["body"] < f["end"], f
        assert f["entry"] < f["entry_probe"] <= f["body"], f
        assert f["rets"] and all(f["entry"] < r < f["end"] for r in f["rets"]), f
        assert f["file"].endswith("tests/fixtures/target/main.go"), f
    p = glimpse("inspect", path, "--funcs", "(")
    assert p.returncode == 1 and "bad regexp '('" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    p = glimpse("inspect", path, "--funcs", "^no_such_function$")
    assert p.returncode == 1 and "no function matches" in p.stderr, p.stderr


def test_inspect_vars_lists_params_results_locals_or_says_no_dwarf():
    for v, flavour, path in fixtures(flavours=["", ".stripped"]):
        if flavour == ".stripped":
            p = glimpse("inspect", path, "--vars", "main.Handle")
            assert p.returncode == 1 and "has no DWARF" in p.stderr, p.stderr
            continue
        out = glimpse_json("inspect", path, "--vars", "main.Handle", "--json")
        params = [(x["name"], x["type"]) for x in out["vars"] if x["kind"] == "param"]
        assert params == [("id", "int"), ("name", "string"), ("at", "main.Point")], (v, params)
        results = [x["type"] for x in out["vars"] if x["kind"] == "result"]
        assert results == ["int", "error"], (v, results)


def test_inspect_large_stripped_distribution_binaries_quickly():
    bins = [b for b in ("/usr/lib/go-1.19/bin/go", "/usr/lib/go-1.23/bin/go", "/usr/lib/go-1.26/bin/go",
                        "/usr/lib/go-1.26/pkg/tool/linux_amd64/compile") if os.path.exists(b)]
    if not bins:
        raise Skip("no Debian Go toolchain binaries installed")
    for b in bins:
        t0 = time.time()
        info = glimpse_json("inspect", b, "--json")
        dt = time.time() - t0
        assert info["stripped"] and info["functions"] > 5000, (b, info["functions"])
        assert info["offsets"]["runtime.allgs"] > 0, b
        assert dt < 1.0, f"{b}: inspect took {dt:.2f}s"
