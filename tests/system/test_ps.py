"""glimpse ps: the Go processes of this host, each with what it is and where it runs, from real
fixtures of two Go versions, stripped, PIE and in a pid namespace of its own; other processes
are not listed."""
import os
import subprocess
import time

from harness import _procs, fixtures, glimpse, glimpse_json, start_target, start_target_in_pid_namespace


def fixture(version, flavour):
    for v, fl, path in fixtures(flavours=[flavour]):
        if v == version:
            return path
    raise AssertionError(f"no target{flavour} fixture for go{version}")


def cgroup_v2(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line[3:].strip() for line in f if line.startswith("0::"))


def test_ps_lists_go_processes_with_version_build_id_flavour_namespace_and_cgroup():
    versions = [v for v, _, _ in fixtures(flavours=[""])]
    old, new = versions[0], versions[-1]
    assert old != new, "needs fixtures of two Go versions"
    started = {
        "old": (fixture(old, ""), start_target(fixture(old, ""), "-goroutines", 2)),
        "new": (fixture(new, ""), start_target(fixture(new, ""), "-goroutines", 2)),
        "stripped": (fixture(new, ".stripped"), start_target(fixture(new, ".stripped"), "-goroutines", 2)),
        "pie": (fixture(old, ".pie"), start_target(fixture(old, ".pie"), "-goroutines", 2)),
        "namespaced": (fixture(new, ""), start_target_in_pid_namespace(fixture(new, ""), "-goroutines", 2)),
    }
    sleep = subprocess.Popen(["sleep", "100"], start_new_session=True)
    _procs.append(sleep)
    listed = {p["pid"]: p for p in glimpse_json("ps", "--json")}
    for name, (path, t) in started.items():
        assert t.pid in listed, (name, t.pid, sorted(listed))
        p = listed[t.pid]
        want = glimpse_json("inspect", path, "--json")
        assert p["go_version"] == want["go_version"], (name, p, want["go_version"])
        assert p["build_id"] == want["build_id"] and p["build_id"], (name, p, want["build_id"])
        assert p["stripped"] == want["stripped"] == (name == "stripped"), (name, p)
        assert p["pie"] == want["pie"] == (name == "pie"), (name, p)
        assert p["exe"] == os.path.realpath(path), (name, p)
        assert p["command"] == os.path.basename(path)[:15], (name, p)
        assert p["cgroup"] and p["cgroup"] == cgroup_v2(t.pid), (name, p)
        if name == "namespaced":
            assert p["ns_pid"] == t.ns_pid == 1 and p["other_ns"], p
        else:
            assert p["ns_pid"] == t.pid and not p["other_ns"], (name, p)
    assert listed[started["old"][1].pid]["go_version"] != listed[started["new"][1].pid]["go_version"]
    assert sleep.pid not in listed, listed[sleep.pid]
    assert os.getpid() not in listed
    # the text table has a row for each
    text = glimpse("ps", check=True).stdout
    for name, (path, t) in started.items():
        assert any(line.split()[:1] == [str(t.pid)] for line in text.splitlines()), (name, text)
    # a listing's cost: the whole command, a fresh process each time (its cache empty)
    nprocs = sum(1 for d in os.listdir("/proc") if d.isdigit())
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        glimpse("ps", "--json", check=True)
        times.append((time.perf_counter() - t0) * 1e3)
    print(f"glimpse ps --json over {nprocs} processes ({len(listed)} Go): "
          f"median {sorted(times)[2]:.1f} ms per run, process start included")
