"""Shared helpers for glimpse's system tests: run the real glimpse binary, find the
Go fixtures built for every installed Go version, start and stop fixture processes.
Nothing here is a mock: tests talk to real processes, the real kernel and real HTTP."""
import json
import os
import re
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GLIMPSE = os.path.join(ROOT, "build", "glimpse")
FIXTURES = os.environ.get("GLIMPSE_FIXTURES", os.path.join(ROOT, "build", "fixtures"))
GO_VERSIONS = ["1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26"]
FLAVOURS = ["", ".stripped", ".pie"]

_procs = []


class Skip(Exception):
    """Raise to skip a test; the message says why."""


def glimpse(*args, input=None, timeout=120, check=False):
    """Runs build/glimpse with args; returns the CompletedProcess (text mode)."""
    p = subprocess.run([GLIMPSE, *map(str, args)], input=input, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"glimpse {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p


def glimpse_json(*args, **kw):
    p = glimpse(*args, check=True, **kw)
    return json.loads(p.stdout)


def go(version):
    return f"/usr/lib/go-{version}/bin/go"


def fixtures(name="target", flavours=FLAVOURS):
    """Yields (go_version, flavour, path) for every built fixture binary."""
    found = False
    for v in GO_VERSIONS:
        for fl in flavours:
            p = os.path.join(FIXTURES, f"go{v}", name + fl)
            if os.path.exists(p):
                found = True
                yield v, fl or ".dwarf", p
    if not found:
        raise AssertionError(f"no fixtures named {name} under {FIXTURES}: run make fixtures")


class Target:
    """A running fixture process (started by start_target)."""

    def __init__(self, proc, pid, http):
        self.proc, self.pid, self.http = proc, pid, http

    def alive(self):
        return self.proc.poll() is None

    def get(self, path, timeout=30):
        return http_get(self.http, path, timeout)

    def stop(self):
        if self.proc.poll() is None and getattr(self, "ns_pid", None):
            os.killpg(self.proc.pid, signal.SIGKILL)  # unshare ignores SIGTERM
            self.proc.wait()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_target(path, *args, timeout=60, env=None, user=None):
    """Starts a fixture binary and waits for its 'ready pid=N http=ADDR' line.
    env adds environment variables; user runs it as that user (root only)."""
    cmd = [path, *map(str, args)]
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ, **(env or {})))
    _procs.append(proc)
    deadline = time.time() + timeout
    line = proc.stdout.readline()
    m = re.match(r"ready pid=(\d+) http=(\S+)", line or "")
    if not m or time.time() > deadline:
        proc.kill()
        raise AssertionError(f"{path} did not start: {line!r} {proc.stderr.read()[:500]}")
    return Target(proc, int(m.group(1)), m.group(2))


def start_target_in_pid_namespace(path, *args, timeout=60):
    """Starts a fixture binary as a container runtime would: in pid and mount namespaces of its
    own (unshare --pid --mount --fork --mount-proc), where it is pid 1. The Target's pid is its
    pid here (the child of unshare), ns_pid the one it printed."""
    cmd = ["unshare", "--pid", "--mount", "--fork", "--mount-proc", "--kill-child", path, *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _procs.append(proc)
    line = proc.stdout.readline()
    m = re.match(r"ready pid=(\d+) http=(\S+)", line or "")
    if not m:
        proc.kill()
        raise AssertionError(f"{path} did not start in a pid namespace: {line!r} {proc.stderr.read()[:500]}")
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        children = f.read().split()
    assert len(children) == 1, children
    t = Target(proc, int(children[0]), m.group(2))
    t.ns_pid = int(m.group(1))
    return t


def http_get(addr, path, timeout=30):
    """A plain HTTP/1.0 GET; returns (status, body bytes)."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def cleanup():
    """Stops every process a test started (called by the runner after each test)."""
    while _procs:
        p = _procs.pop()
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        for f in (p.stdout, p.stderr):
            if f:
                f.close()
