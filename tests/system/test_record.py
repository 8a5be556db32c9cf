"""glimpse record: the per-client proxy in front of a real Go web app (tests/fixtures/webapp),
talked to over real TCP. These run the instances without rr (--no-rr): one instance per client
key, bytes unchanged both ways, idle stop, the client limit, start failures and shutdown."""
import http.client
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import GLIMPSE, _procs, fixtures

INSTANCE = re.compile(rb"instance=(\d+) count=(\d+)")


def webapp(version="1.23", flavour=""):
    return next(p for v, fl, p in fixtures("webapp", flavours=[flavour]) if v == version)


def alive(pid):
    """Whether pid is a process that has not exited (zombies count as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def argv0(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None


class Recorder:
    """A running `glimpse record` (its own session), its port and stderr."""

    def __init__(self, *args, app=None, no_rr=True, tmp=None, cmd=None):
        self.dir = os.path.join(tmp, "rec")
        argv = [GLIMPSE, "record", "--listen", "127.0.0.1:0", "--dir", self.dir, "-v", *map(str, args)]
        if no_rr:
            argv.append("--no-rr")
        argv += ["--", *(cmd or [app or webapp(), "-port", "{port}"])]
        self.err_path = os.path.join(tmp, "record.err")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     start_new_session=True)
        _procs.append(self.proc)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on port (\d+)", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"glimpse record did not start: {line!r} {self.stderr()}")
        self.port = int(m.group(1))

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def conn(self, source="127.0.0.1", timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout, source_address=(source, 0))

    def get(self, path="/", headers=None, source="127.0.0.1"):
        c = self.conn(source)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def hit(self, headers=None, source="127.0.0.1"):
        """GET / through the proxy: (instance pid, count)."""
        status, body = self.get("/", headers, source)
        m = INSTANCE.search(body)
        assert status == 200 and m, (status, body)
        return int(m.group(1)), int(m.group(2))

    def stop(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.err.close()
        return rc


def test_record_starts_one_instance_per_client_ip_and_reuses_it():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder(tmp=tmp)
        a1, a2 = r.hit(source="127.0.0.1"), r.hit(source="127.0.0.1")
        b1 = r.hit(source="127.0.0.2")
        assert a1[0] == a2[0] and (a1[1], a2[1]) == (1, 2), (a1, a2)
        assert b1[0] != a1[0] and b1[1] == 1, (a1, b1)
        assert r.stop() == 0


def test_record_keys_clients_by_header_and_by_cookie():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder("--key", "header:X-Client", tmp=tmp)
        alice = [r.hit({"X-Client": "alice"}) for _ in range(3)]
        bob = r.hit({"x-client": "bob"})  # header names are case-insensitive
        assert len({p for p, _ in alice}) == 1 and [n for _, n in alice] == [1, 2, 3], alice
        assert bob[0] != alice[0][0] and bob[1] == 1
        r.stop()
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder("--key", "cookie:session", tmp=tmp)
        c1 = r.hit({"Cookie": "theme=dark; session=s1; lang=en"})
        c2 = r.hit({"Cookie": "session=s1"})
        c3 = r.hit({"Cookie": "session=s2; theme=dark"})
        assert c1[0] == c2[0] and c2[1] == 2 and c3[0] != c1[0] and c3[1] == 1, (c1, c2, c3)
        r.stop()


def test_record_relays_large_bodies_both_ways_keep_alive_and_upgrades_byte_for_byte():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder(tmp=tmp)
        up = os.urandom(8 << 20)
        c = r.conn()
        c.request("POST", "/echo", body=up)
        resp = c.getresponse()
        assert resp.status == 200 and resp.read() == up
        # The same connection (keep-alive) for the other direction, then a third request.
        n = 5 << 20
        c.request("GET", f"/bytes?n={n}")
        got = c.getresponse().read()
        assert got == bytes((i * 7 + 3) % 251 for i in range(n))
        c.request("GET", "/")
        pid_keepalive = int(INSTANCE.search(c.getresponse().read()).group(1))
        c.close()
        assert r.hit()[0] == pid_keepalive
        # An upgraded connection: raw bytes both ways after 101.
        s = socket.create_connection(("127.0.0.1", r.port), timeout=30)
        s.sendall(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        rest = head.split(b"\r\n\r\n", 1)[1]
        blob = os.urandom(1 << 20)
        threading.Thread(target=s.sendall, args=(blob,)).start()
        while len(rest) < len(blob):
            rest += s.recv(65536)
        assert rest == blob
        s.close()
        r.stop()


def test_record_serves_many_concurrent_clients_each_on_its_own_instance():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder("--key", "header:X-Client", "--max-clients", 8, tmp=tmp)
        results, errors = {}, []

        def client(k):
            try:
                body = os.urandom(200_000)
                for i in range(10):
                    c = r.conn()
                    c.request("POST", "/echo", body=body, headers={"X-Client": f"c{k}"})
                    assert c.getresponse().read() == body
                    c.close()
                results[k] = r.hit({"X-Client": f"c{k}"})
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        t0 = time.time()
        ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        assert len({pid for pid, _ in results.values()}) == 8, results
        assert all(n == 1 for _, n in results.values()), results
        print(f"8 clients x 10 requests of 200 kB echoed in {time.time() - t0:.2f} s")
        r.stop()


def test_record_stops_an_idle_instance_and_starts_a_new_one_when_the_client_returns():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder("--idle", 1, tmp=tmp)
        pid, n = r.hit()
        deadline = time.time() + 10
        while alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not alive(pid), "idle instance still running"
        pid2, n2 = r.hit()
        assert pid2 != pid and n2 == 1
        assert "stopping instance 1" in r.stderr()
        r.stop()


def test_record_client_limit_answers_the_extra_client_503_with_a_message():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder("--key", "header:X-Client", "--max-clients", 2, tmp=tmp)
        r.hit({"X-Client": "a"})
        r.hit({"X-Client": "b"})
        status, body = r.get("/", {"X-Client": "c"})
        assert status == 503 and b"client limit reached (2 clients" in body, (status, body)
        assert r.hit({"X-Client": "a"})[1] == 2  # the others are still served
        r.stop()


def test_record_app_that_fails_to_start_gives_a_clear_error_and_leaves_no_process():
    with tempfile.TemporaryDirectory() as tmp:
        # Exits at once: its own message reaches the client.
        r = Recorder(tmp=tmp, cmd=["sh", "-c", "echo 'cannot open config.yaml' >&2; exit 3"])
        status, body = r.get("/")
        assert status == 502 and b"exited with 3" in body and b"cannot open config.yaml" in body, body
        r.stop()
    with tempfile.TemporaryDirectory() as tmp:
        # Never listens: the start times out and the process is killed.
        marker = f"glimpse-test-sleeper-{os.getpid()}"
        r = Recorder("--start-timeout", 1, tmp=tmp, cmd=["bash", "-c", f"exec -a {marker} sleep 600"])
        status, body = r.get("/")
        assert status == 502 and b"did not accept a connection within 1 s" in body, body
        left = [p for p in os.listdir("/proc") if p.isdigit() and argv0(p) == marker and alive(p)]
        assert not left, f"processes left behind: {left}"
        r.stop()
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder(tmp=tmp, cmd=["/nonexistent/app", "{port}"])
        status, body = r.get("/")
        assert status == 502 and b"cannot run the command" in body, body
        r.stop()


def test_record_shutdown_stops_every_instance_and_leaves_no_child():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder("--key", "header:X-Client", tmp=tmp)
        pids = [r.hit({"X-Client": f"k{i}"})[0] for i in range(4)]
        # An open keep-alive connection does not hold shutdown up.
        c = r.conn()
        c.request("GET", "/", headers={"X-Client": "k0"})
        c.getresponse().read()
        t0 = time.time()
        assert r.stop(timeout=40) == 0
        assert all(not alive(p) for p in pids), [p for p in pids if alive(p)]
        print(f"shutdown with 4 instances: {time.time() - t0:.2f} s")
        c.close()


def test_record_a_client_cannot_reach_another_clients_instance():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder("--key", "header:X-Client", tmp=tmp)
        a = r.hit({"X-Client": "a"})
        for _ in range(3):
            r.hit({"X-Client": "a"})
        b = r.hit({"X-Client": "b"})
        # Later requests on b's keep-alive connection cannot switch to a's instance by
        # sending a's key: the key is read from a connection's first request only.
        c = r.conn()
        c.request("GET", "/", headers={"X-Client": "b"})
        first = INSTANCE.search(c.getresponse().read())
        c.request("GET", "/", headers={"X-Client": "a"})
        second = INSTANCE.search(c.getresponse().read())
        c.close()
        assert int(first.group(1)) == int(second.group(1)) == b[0] != a[0]
        assert r.get("/count", {"X-Client": "a"})[1].endswith(b"count=4\n")
        r.stop()


def test_serve_record_runs_the_proxy_inside_glimpse_serve_and_stops_it_with_the_server():
    from serve import Server
    tmp = tempfile.TemporaryDirectory()
    s = Server("--record", "127.0.0.1:0", "--record-no-rr", "--record-key", "header:X-Client",
               "--record-dir", os.path.join(tmp.name, "rec"), "--", webapp(), "-port", "{port}")
    try:
        deadline = time.time() + 30
        while "recording proxy on port" not in s.stdout() and time.time() < deadline:
            time.sleep(0.05)
        port = int(re.search(r"recording proxy on port (\d+)", s.stdout()).group(1))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        pids = set()
        for _ in range(3):
            c.request("GET", "/", headers={"X-Client": "a"})
            pids.add(int(INSTANCE.search(c.getresponse().read()).group(1)))
        c.close()
        assert len(pids) == 1
        assert s.get("/api/recordings")["recordings"] == []  # --record-no-rr records nothing
        assert s.stop() == 0
        assert not alive(pids.pop())
    finally:
        s.close()
        tmp.cleanup()


def test_record_without_a_working_rr_says_so_and_starts_nothing():
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([GLIMPSE, "record", "--listen", "127.0.0.1:0", "--dir", os.path.join(tmp, "d"),
                            "--db", os.path.join(tmp, "g.db"), "--rr", "/nonexistent/rr", "--", webapp()],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and "no working rr at '/nonexistent/rr'" in p.stderr, p.stderr
        assert "--no-rr" in p.stderr


def test_record_a_starting_instance_holds_no_other_client_up():
    with tempfile.TemporaryDirectory() as tmp:
        slow = os.path.join(tmp, "slow")
        cmd = ["bash", "-c", f'[ -e {slow} ] && sleep 3; exec "$0" -port "$1"', webapp(), "{port}"]
        r = Recorder("--key", "header:X-Client", tmp=tmp, cmd=cmd)
        a = r.hit({"X-Client": "a"})
        open(slow, "w").close()
        b = []
        t = threading.Thread(target=lambda: b.append(r.hit({"X-Client": "b"})))
        t0 = time.time()
        t.start()
        time.sleep(0.3)
        # b's instance takes 3 s to start; a is served meanwhile, on a new connection and
        # with headers that arrive a few bytes at a time.
        times = []
        for _ in range(5):
            t1 = time.time()
            assert r.hit({"X-Client": "a"})[0] == a[0]
            times.append(time.time() - t1)
        s = socket.create_connection(("127.0.0.1", r.port), timeout=30)
        req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Client: a\r\nConnection: close\r\n\r\n"
        for i in range(0, len(req), 7):
            s.sendall(req[i:i + 7])
            time.sleep(0.01)
        resp = b""
        while chunk := s.recv(65536):
            resp += chunk
        s.close()
        assert f"instance={a[0]} count=7".encode() in resp, resp
        waited = time.time() - t0
        t.join()
        assert b and b[0][0] != a[0] and time.time() - t0 >= 2.5, (b, time.time() - t0)
        assert waited < 2.5 and max(times) < 1, (waited, times)
        print(f"a served in {max(times) * 1000:.1f} ms at most while b's instance started "
              f"({time.time() - t0:.1f} s)")
        r.stop()


def test_record_relay_leaves_no_descriptor_behind():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder(tmp=tmp)
        r.hit()
        fds = lambda: len(os.listdir(f"/proc/{r.proc.pid}/fd"))  # noqa: E731
        before = fds()
        for i in range(300):
            r.get("/bytes?n=100000" if i % 3 == 0 else "/")
        # Idle keep-alive connections closed by the client, and ones it resets.
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", r.port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(100)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            s.close()
        time.sleep(0.5)
        after = fds()
        # Empty pipes are kept for reuse: a few, not one pair per connection.
        assert after - before <= 8, (before, after)
        print(f"descriptors: {before} before, {after} after 320 connections")
        r.stop()


def test_record_passes_a_clients_half_close_on_and_still_delivers_the_answer():
    with tempfile.TemporaryDirectory() as tmp:
        r = Recorder(tmp=tmp)
        body = os.urandom(300_000)
        s = socket.create_connection(("127.0.0.1", r.port), timeout=30)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        s.shutdown(socket.SHUT_WR)  # the app reads EOF after the body; the answer still comes back
        resp = b""
        while chunk := s.recv(65536):
            resp += chunk
        s.close()
        head, _, got = resp.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and got == body, (head, len(got))
        r.stop()
