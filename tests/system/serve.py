"""A real `glimpse serve` for the system tests: started on a free loopback port with its own
store and token, talked to with real HTTP (http.client), stopped by signal."""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse

from harness import GLIMPSE, _procs


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args, db=None, tls=None, env=None):
        self.dir = tempfile.TemporaryDirectory()
        self.db = db or os.path.join(self.dir.name, "glimpse.db")
        self.port = free_port()
        self.tls = tls
        self.err_path = os.path.join(self.dir.name, "stderr")
        self.out_path = os.path.join(self.dir.name, "stdout")
        cmd = [GLIMPSE, "serve", "--db", self.db, "--listen", f"127.0.0.1:{self.port}", *map(str, args)]
        if tls:
            cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=dict(os.environ, **(env or {})))
        _procs.append(self.proc)
        deadline = time.time() + 30
        while "listening on" not in self.stdout():
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"glimpse serve did not start: {self.stderr()}")
            time.sleep(0.05)
        line = next(l for l in self.stdout().splitlines() if "listening on" in l)
        self.url = line.split("listening on ", 1)[1].strip()
        self.token = urllib.parse.parse_qs(urllib.parse.urlparse(self.url).query)["token"][0]

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def conn(self, timeout=60):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            ctx.check_hostname = False
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, token=True, headers=None, timeout=120):
        """Returns (status, headers dict, body bytes)."""
        h = dict(headers or {})
        if token is True:
            h["Authorization"] = f"Bearer {self.token}"
        elif token:
            h["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, body=None, expect=200, **kw):
        status, _, data = self.request(method, path, body, **kw)
        assert status == expect, f"{method} {path}: {status} {data[:500]!r}"
        return json.loads(data)

    def get(self, path, **kw):
        return self.json("GET", path, **kw)

    def sql(self, sql, fmt=None, **params):
        q = {"sql": sql, **{f"p.{k}": v for k, v in params.items()}}
        if fmt:
            q["format"] = fmt
        return self.request("GET", "/api/sql?" + urllib.parse.urlencode(q))

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(timeout)
        return self.proc.returncode

    def close(self):
        self.stop()
        self.dir.cleanup()
