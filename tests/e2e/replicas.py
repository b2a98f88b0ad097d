"""Replicas behind a load balancer, with a shared store, all real and on
loopback (issue 17 item 5): a real redis-server, a real HAProxy sending
PROXY v2 to two moat replicas, and helpers to break them mid-run.

    RedisServer(workdir)   redis-server on a free 127.0.0.1 port, its own
                           directory, no persistence (--save '' --appendonly
                           no); kill() (SIGKILL), start() again on the same
                           port, stop(); cmd("PING") speaks RESP itself (no
                           client library needed)
    HAProxy(workdir, {"a": port, "b": port})
                           mode tcp; frontend `port` round-robins to the
                           replicas with send-proxy-v2 (consecutive
                           connections alternate), frontends port_of["a"] and
                           port_of["b"] force one replica (their servers track
                           the round-robin ones' health: no extra checks);
                           health checks (option smtpchk, check-send-proxy,
                           every inter_ms) take a dead replica out, and a
                           connection refused by one is sent to the other
                           (retries, option redispatch); server_down(name)
                           waits for HAProxy's own word that it noticed
    replicas(moat_factory, n=2, **keys)
                           moats with the same configuration, proxy_protocol
                           on, each on a fixed loopback port (a restarted one
                           comes back where HAProxy expects it)
    restart(moat_factory, old)
                           a new moat with old's configuration on old's port
    sessions(m)            a replica's client sessions (its session_end lines
                           less HAProxy's health checks); wait_sessions(ms, n)
    Traffic(port, n, concurrency, source)
                           n transactions by client threads, every reply kept;
                           run(at={k: fault}) calls fault (kill Redis, a
                           replica...) when the k-th starts, the rest going on;
                           rcpt may depend on k; retry_4xx: a 4xx is retried
                           (a new session, after a pause) as a real client would

Every wait is on something observable (a line the process printed, a log
line, a reply) with a deadline; HAProxy's and Redis's output is kept for the
failure message."""

import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from moatlib import DEFAULT_TIMEOUT, ConnectionClosed, SMTPClient, Watched, WaitTimeout, free_port
from redislib import RespClient, RespError

CHECK_HELO = "lb.replicas.test"    # the EHLO name of HAProxy's health checks


def _need(prog):
    path = shutil.which(prog) or shutil.which(prog, path="/usr/sbin:/usr/bin")
    if not path:
        pytest.skip("%s is not installed (make deps)" % prog)
    return path


class _Proc:
    """A child process whose output lines (stdout and stderr merged) are
    read into a Watched list."""

    def __init__(self, name):
        self.name = name
        self.proc = None
        self.lines = Watched()

    def _spawn(self, argv, cwd):
        self.lines = Watched()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=cwd)
        proc, lines = self.proc, self.lines

        def read():
            for raw in proc.stdout:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            lines.close()
        threading.Thread(target=read, daemon=True).start()

    def output(self):
        return "\n".join(self.lines.snapshot())

    def wait_line(self, text, timeout=DEFAULT_TIMEOUT, start=0):
        try:
            return self.lines.wait(lambda l: text in l, timeout, start=start, what="%r from %s" % (text, self.name))
        except WaitTimeout as e:
            raise WaitTimeout("%s; its output:\n%s" % (e, self.output()[-3000:]))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: a crash, nothing saved or said."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(DEFAULT_TIMEOUT)

    def stop(self):
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(DEFAULT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------- Redis

class RedisServer(_Proc):
    def __init__(self, workdir, port=None):
        super().__init__("redis-server")
        self.bin = _need("redis-server")
        self.dir = os.path.join(str(workdir), "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.starts = 0

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=DEFAULT_TIMEOUT):
        """Starts it (again, after kill() or stop(): the same port, empty)."""
        assert not self.running(), "redis-server is running already"
        self._spawn([self.bin, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                     "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                     "--databases", "16"], self.dir)
        self.wait_line("Ready to accept connections", timeout)
        self.starts += 1
        assert self.cmd("PING") == "PONG"
        return self

    def cmd(self, *args):
        """One command; the reply as str, int, list or None; an error reply
        raises."""
        c = RespClient(self.port)
        try:
            r = c.call(*args)
        finally:
            c.close()
        if isinstance(r, RespError):
            raise RuntimeError("redis: " + r)
        return r


# -------------------------------------------------------------------- HAProxy

class HAProxy(_Proc):
    def __init__(self, workdir, servers, inter_ms=200, fall=2, rise=2):
        super().__init__("haproxy")
        self.bin = _need("haproxy")
        self.dir = os.path.join(str(workdir), "haproxy")
        os.makedirs(self.dir, exist_ok=True)
        self.servers = dict(servers)          # name -> moat's port
        self.port = free_port()
        self.port_of = {name: free_port() for name in self.servers}
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(self.config(inter_ms, fall, rise))

    def config(self, inter_ms, fall, rise):
        lines = ["global", "    maxconn 500", "defaults", "    mode tcp", "    timeout connect 1s",
                 "    timeout client 60s", "    timeout server 60s",
                 # a check's reply may be slow on a loaded machine: that is not a
                 # dead replica (a refused connection, the crash, is seen at once)
                 "    timeout check 5s",
                 # a connection refused by a dead replica goes to another: at once
                 # (redispatch on every retry), before the checks have noticed
                 "    retries 2", "    option redispatch 1",
                 "frontend both", "    bind 127.0.0.1:%d" % self.port, "    default_backend replicas",
                 "backend replicas", "    balance roundrobin", "    option smtpchk EHLO " + CHECK_HELO]
        for name, port in self.servers.items():
            lines.append("    server %s 127.0.0.1:%d send-proxy-v2 check check-send-proxy inter %dms fall %d rise %d"
                         % (name, port, inter_ms, fall, rise))
        for name, port in self.servers.items():
            lines += ["frontend only_%s" % name, "    bind 127.0.0.1:%d" % self.port_of[name],
                      "    default_backend only_%s" % name, "backend only_%s" % name,
                      "    server %s 127.0.0.1:%d send-proxy-v2 track replicas/%s" % (name, port, name)]
        return "\n".join(lines) + "\n"

    def start(self, replicas=(), timeout=DEFAULT_TIMEOUT):
        """Starts HAProxy; with replicas (their moats), returns once a health
        check has reached each: HAProxy has bound every frontend by then."""
        r = subprocess.run([self.bin, "-c", "-f", self.cfg], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        marks = [len(m.logs.snapshot()) for m in replicas]
        self._spawn([self.bin, "-db", "-f", self.cfg], self.dir)
        for m, mark in zip(replicas, marks):
            try:
                wait_checked(m, timeout, start=mark)
            except WaitTimeout as e:
                raise WaitTimeout("%s; haproxy's output:\n%s" % (e, self.output()[-3000:]))
        return self

    def server_down(self, name, timeout=DEFAULT_TIMEOUT, start=0):
        """HAProxy's own line that its checks took replica name out."""
        return self.wait_line("Server replicas/%s is DOWN" % name, timeout, start)

    def server_up(self, name, timeout=DEFAULT_TIMEOUT, start=0):
        """HAProxy's own line that replica name is back (after a DOWN)."""
        return self.wait_line("Server replicas/%s is UP" % name, timeout, start)


# ------------------------------------------------------------------- replicas

def replicas(moat_factory, n=2, per=None, **keys):
    """n moats, one configuration (proxy_protocol on), each on a port of its
    own; per[i] (a dict) adds keys of replica i's own (its metrics_listen)."""
    keys.setdefault("proxy_protocol", "yes")
    out = []
    for i in range(n):
        own = dict(keys, **(per[i] if per else {}))
        m = moat_factory(listen="127.0.0.1:%d" % free_port(), **own)
        out.append(m)
    return out


def restart(moat_factory, old, **keys):
    """A new moat with old's configuration, on old's port (old must be gone)."""
    assert old.proc.poll() is not None, "the replica is still running"
    cfg = {k: v for k, v in old.config.items() if k != "spool_dir"}
    cfg.update(keys)
    return moat_factory(**cfg)


def kill(m):
    """A replica crashes (SIGKILL); its teardown then expects that exit."""
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(DEFAULT_TIMEOUT)
    m.expect_rc = -signal.SIGKILL


def sessions(m):
    """A replica's client sessions so far: session_end lines, without
    HAProxy's health checks (whose EHLO is CHECK_HELO)."""
    return [l for l in m.logs.snapshot()
            if l.get("event") == "session_end" and l.get("helo") != CHECK_HELO]


def wait_sessions(ms, n, timeout=DEFAULT_TIMEOUT):
    """Waits until the replicas ms have logged n client sessions in all
    (each logs a session's end once its client is gone: after the reply the
    client read); returns each one's sessions."""
    deadline = time.monotonic() + timeout
    while True:
        marks = [len(m.logs.snapshot()) for m in ms]
        got = [sessions(m) for m in ms]
        if sum(map(len, got)) >= n:
            return got
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout("%d client sessions logged by the replicas, expected %d" % (
                sum(map(len, got)), n))
        for m, mark in zip(ms, marks):   # a new line of any replica: each in turn, briefly
            try:
                m.wait_log(lambda l: l.get("event") == "session_end", min(left, 0.05), start=mark)
                break
            except WaitTimeout:
                pass


def wait_checked(m, timeout=DEFAULT_TIMEOUT, start=0):
    """Waits for a health check of HAProxy's to have reached m (its session)."""
    return m.wait_log(lambda l: l.get("event") == "session_end" and l.get("helo") == CHECK_HELO,
                      timeout, what="a health check's session", start=start)


# -------------------------------------------------------------------- traffic

class Traffic:
    """n transactions (one message per session) through port from source,
    by `concurrency` client threads; at[k] (a callable) runs once the k-th
    transaction has been started, while the others go on (a fault in the
    middle of a run). Every reply is kept: replies[subject] is the final
    reply's code, or the first refusal's, or "closed" for a connection lost
    before the end of data was answered."""

    def __init__(self, port, n, concurrency=4, source=None, sender="alice@example.org",
                 rcpt="bob@example.test", prefix="traffic", retry_4xx=0.0, retry_for=30):
        self.port, self.n, self.concurrency, self.source = port, n, concurrency, source
        self.sender, self.rcpt, self.prefix = sender, rcpt, prefix
        self.retry_4xx, self.retry_for = retry_4xx, retry_for   # pause between retries; give up after
        self.replies = {}
        self.retried = {}      # subject -> the 4xx replies retried (texts), with retry_4xx
        self.times = {}        # subject -> (monotonic start, end) of its transaction, retries included
        self.lock = threading.Lock()
        self.next = 0

    def rcpt_of(self, k):
        return self.rcpt(k) if callable(self.rcpt) else self.rcpt

    def message(self, subject, rcpt=None):
        return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@replicas.test>\r\n\r\nHello.\r\n"
                % (self.sender, rcpt or self.rcpt, subject, subject.replace(" ", "."))).encode()

    def one(self, subject, rcpt=None):
        """The final reply, as the client saw it ((code, text)): a
        connection lost after it (at QUIT) does not change what the client
        was told."""
        rcpt = rcpt or self.rcpt_of(0)
        code, text = "closed", ""
        try:
            with SMTPClient(self.port, source=self.source) as c:
                if c.banner.code != 220:
                    return c.banner.code, c.banner.text
                c.ehlo("client.replicas.test")
                r = c.cmd("MAIL FROM:<%s>" % self.sender)
                if r.code == 250:
                    r = c.cmd("RCPT TO:<%s>" % rcpt)
                if r.code == 250:
                    r = c.data(self.message(subject, rcpt))
                code, text = r.code, r.text
                c.cmd("QUIT")
        except (ConnectionClosed, OSError):
            pass
        return code, text

    def until_final(self, subject, rcpt):
        """One transaction; with retry_4xx, a 4xx is retried until it is not
        (a client's pause between retries, not a synchronisation)."""
        start = time.monotonic()
        code, text = self.one(subject, rcpt)
        deadline = time.monotonic() + self.retry_for
        while self.retry_4xx and isinstance(code, int) and 400 <= code < 500 and time.monotonic() < deadline:
            with self.lock:
                self.retried.setdefault(subject, []).append("%d %s" % (code, text))
            time.sleep(self.retry_4xx)
            code, text = self.one(subject, rcpt)
        with self.lock:
            self.times[subject] = (start, time.monotonic())
        return code

    def run(self, at=None, timeout=120):
        at = dict(at or {})
        errors = []

        def worker():
            while True:
                with self.lock:
                    k = self.next
                    if k >= self.n:
                        return
                    self.next += 1
                    hook = at.pop(k, None)
                if hook:
                    try:
                        hook()
                    except Exception as e:   # reported after the run
                        errors.append(e)
                subject = "%s %d" % (self.prefix, k)
                code = self.until_final(subject, self.rcpt_of(k))
                with self.lock:
                    self.replies[subject] = code

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            raise WaitTimeout("traffic: %d of %d transactions answered in %ds" % (len(self.replies), self.n, timeout))
        if errors:
            raise errors[0]
        return self.replies

    def accepted(self):
        return sorted(s for s, c in self.replies.items() if c == 250)
