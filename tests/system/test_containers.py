"""Go services in containers: a fixture in pid and mount namespaces of its own, as container
runtimes start them, where m.procid holds the namespace's tids rather than the ones glimpse
sees. Snapshots must see it exactly as they see the same fixture outside a namespace."""
import os
import time

from harness import fixtures, glimpse_json, start_target, start_target_in_pid_namespace

READERS = ("bpf", "process_vm_readv")


def raw_sleeper(snap):
    """The goroutine main.rawSleeper runs on: running, its thread asleep in the kernel."""
    gs = [g for g in snap["goroutines"] if any(f["func"] == "main.rawSleeper" for f in g["frames"])
          or (g["status"] == "running" and not g["frames"])]
    return [g for g in gs if g["status"] == "running"]


def snapshot_with_sleeper(pid, reader):
    """A snapshot in which the raw sleeper has its stack: its thread sleeps 50 ms at a time and is
    on a CPU for microseconds between sleeps, so a few tries at most."""
    for _ in range(5):
        snap = glimpse_json("snapshot", "--pid", pid, "--json", "--no-store", "--reader", reader)
        running = raw_sleeper(snap)
        assert running, (reader, [(g["status"], g["stack_note"]) for g in snap["goroutines"]])
        if all(g["frames"] for g in running):
            return snap, running[0]
        time.sleep(0.01)
    raise AssertionError(f"{reader}: the running goroutine never had a stack: {running}")


def counted(var):
    """main.rawSleeper's n counts its sleeps: compared as a count, not by value."""
    if var["name"] == "n" and var["type"] == "int64":
        assert isinstance(var["value"], int) and var["value"] >= 0, var
        return dict(var, value="a count")
    return var


def comparable(snap):
    """The fixture's own goroutines (those in main.* functions, main.main's aside: it is in the
    HTTP server's accept), as sorted (stack, variables) pairs, which do not depend on goids,
    pids or where the heap is."""
    out = []
    for g in snap["goroutines"]:
        funcs = [f["func"] for f in g["frames"]]
        if not any(f.startswith("main.") for f in funcs) or "main.main" in funcs:
            continue
        frames = [(f["func"], f["file"], f["line"], repr([counted(x) for x in f.get("vars") or []]))
                  for f in g["frames"] if f["func"].startswith("main.")]
        out.append((g["status"], repr(frames)))
    return sorted(out)


def test_snapshot_of_a_process_in_its_own_pid_namespace_equals_one_outside_it():
    report = []
    for v, flavour, path in fixtures(flavours=[""]):
        if v not in ("1.19", "1.23", "1.26"):
            continue
        inside = start_target_in_pid_namespace(path, "-goroutines", 5, "-raw-sleep")
        outside = start_target(path, "-goroutines", 5, "-raw-sleep")
        assert inside.ns_pid == 1 and inside.pid != 1, (inside.pid, inside.ns_pid)
        tids = set(map(int, os.listdir(f"/proc/{inside.pid}/task")))
        time.sleep(0.2)
        for reader in READERS:
            snap_in, g_in = snapshot_with_sleeper(inside.pid, reader)
            snap_out, g_out = snapshot_with_sleeper(outside.pid, reader)
            assert snap_in["reader"] == reader, snap_in["reader"]
            # its stack came from its thread, named by the tid glimpse sees
            assert g_in["thread"] in tids, (g_in["thread"], tids)
            assert [f["func"] for f in g_in["frames"]][-2:] == ["main.rawSleeper", "runtime.goexit"], g_in
            assert [f["func"] for f in g_in["frames"]] == [f["func"] for f in g_out["frames"]], (g_in, g_out)
            a, b = comparable(snap_in), comparable(snap_out)
            assert len(a) == 5 + 3 + 1 + 1 + 1, a  # workers, sleepers, selecter, deep, raw sleeper
            assert a == b, (v, reader, [x for x in a if x not in b], [x for x in b if x not in a])
            report.append(f"go{v} {reader}: {len(snap_in['goroutines'])} goroutines, running one "
                          f"{len(g_in['frames'])} frames from thread {g_in['thread']}")
        inside.stop()
        outside.stop()
    assert report, "no fixtures"
    print("; ".join(report))
