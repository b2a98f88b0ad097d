"""A real redis-server for the tests (its own temp dir, a free loopback port,
no persistence: `--save '' --appendonly no`), a minimal RESP client to look
at what moat stored, and store_drive (tests/tools/store_drive.c), the store
driven from a pipe against it."""

import json
import os
import shutil
import socket
import subprocess
import threading
import time

from moatlib import ASAN_PATTERNS, DEFAULT_TIMEOUT, MOAT_BIN, Watched, WaitTimeout, free_port

REDIS_SERVER = shutil.which("redis-server")
STORE_DRIVE = os.path.join(os.path.dirname(os.path.abspath(MOAT_BIN)), "tests", "store_drive")


class Redis:
    """redis-server on 127.0.0.1:port; start() waits for its "Ready to accept
    connections" line, kill() is kill -9, start() again restarts it empty."""

    def __init__(self, workdir, port=None, password=None, extra=(), bind="127.0.0.1"):
        self.dir = os.path.join(str(workdir), "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.password = password
        self.extra = list(extra)
        self.bind = bind
        self.proc = None
        self.lines = Watched()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=DEFAULT_TIMEOUT):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", self.bind, "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--logfile", "", "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.lines = Watched()
        self.proc = subprocess.Popen(args + self.extra, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, args=(self.proc, self.lines), daemon=True).start()
        self.lines.wait(lambda l: "Ready to accept connections" in l, timeout, what="redis-server ready")
        return self

    @staticmethod
    def _read(proc, lines):
        for line in proc.stdout:
            lines.append(line.decode("utf-8", "replace"))
        lines.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        self.kill()

    def client(self, db=0):
        return RespClient(self.port, self.password, db)


class RespClient:
    """Just enough RESP to ask Redis what the store wrote."""

    def __init__(self, port, password=None, db=0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEFAULT_TIMEOUT)
        self.buf = b""
        if password:
            assert self.call("AUTH", password) == "OK"
        if db:
            assert self.call("SELECT", str(db)) == "OK"

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ValueError("bad RESP line %r" % line)

    def close(self):
        self.sock.close()


class RespError(str):
    pass


class Drive:
    """store_drive: send() a line of commands, answers() reads one answer per
    command, sorted by their place in the line. logs: its JSON log lines."""

    def __init__(self, redis=None, password=None, db=None, timeout=None):
        if not os.path.exists(STORE_DRIVE):
            raise AssertionError("%s is missing: make unit (or make %s) builds it" %
                                 (STORE_DRIVE, os.path.relpath(STORE_DRIVE)))
        args = [STORE_DRIVE]
        for k, v in (("--redis", redis), ("--password", password), ("--db", db), ("--timeout", timeout)):
            if v is not None:
                args += [k, str(v)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = Watched()
        self.logs = Watched()
        self.noise = []
        self.taken = 0
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            self.out.append(line.decode().split())
        self.out.close()

    def _read_err(self):
        for line in self.proc.stderr:
            text = line.decode("utf-8", "replace").rstrip("\n")
            try:
                self.logs.append(json.loads(text))
            except ValueError:
                self.noise.append(text)
        self.logs.close()

    def send(self, *commands):
        self.proc.stdin.write((" ; ".join(commands) + "\n").encode())
        self.proc.stdin.flush()
        return len(commands)

    def answers(self, n, timeout=DEFAULT_TIMEOUT):
        start = self.taken
        self.out.wait_until(lambda items: len(items) >= start + n, timeout, what="%d answers" % n)
        got = self.out.snapshot()[start:start + n]
        self.taken += n
        return sorted(got, key=lambda a: int(a[1]))

    def ask(self, *commands, timeout=DEFAULT_TIMEOUT):
        """The answers of commands sent as one pipelined line, in their order."""
        return self.answers(self.send(*commands), timeout)

    def state(self):
        return int(self.ask("state")[0][2])

    def wait_state(self, up, timeout=DEFAULT_TIMEOUT):
        """Wait for the log line of the state (up: "answers", down: "does not answer")."""
        word = "answers:" if up else "does not answer"
        return self.logs.wait(lambda l: l.get("event") == "redis" and word in l.get("msg", ""), timeout,
                              start=0, what="redis %s log line" % ("up" if up else "down"))

    def state_lines(self):
        return [l["msg"] for l in self.logs.snapshot() if l.get("event") == "redis" and
                ("answers:" in l.get("msg", "") or "does not answer" in l.get("msg", ""))]

    def close(self, timeout=DEFAULT_TIMEOUT):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise WaitTimeout("store_drive did not exit at the end of its input")
        self.logs.wait_eof(5)
        san = [l for l in self.noise if any(p in l for p in ASAN_PATTERNS)]
        assert not san, "sanitizer report from store_drive:\n" + "\n".join(self.noise[-60:])
        assert self.proc.returncode == 0, "store_drive exited %r:\n%s" % (self.proc.returncode,
                                                                          "\n".join(self.noise[-20:]))
        return self.proc.returncode


def grey(triplet, client, delay=300, window=86400, pass_ttl=36 * 86400, auto=5, auto_ttl=7 * 86400):
    return "grey %s %s %d %d %d %d %d" % (triplet, client, delay, window, pass_ttl, auto, auto_ttl)


def count(key, add, window):
    return "count %s %d %d" % (key, add, window)


def silent_server():
    """A listening socket that accepts and never answers: a Redis that hangs.
    Returns (socket, port); accepted connections are kept open in a thread."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    held = []

    def accept():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            held.append(c)
    threading.Thread(target=accept, daemon=True).start()
    return s, s.getsockname()[1]


def now():
    return time.time()
