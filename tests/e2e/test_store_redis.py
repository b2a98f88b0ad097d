"""The store (proxy/store.h) through a real redis-server: the semantics equal
the in-memory store's, atomic across two clients racing on one key, AUTH
(redis_password), redis_db, NOSCRIPT, and the faults: Redis down at start,
killed and restarted, slow (CLIENT PAUSE, a server that never answers), an
unreachable address, wrong replies, the queue of outstanding calls full.
Driven by store_drive (tests/tools/store_drive.c), which links the store
moat's workers use and runs it on a libevent loop; and moat itself with
`redis` set: its log, its metrics, mail flowing while Redis is down."""

import os
import socket
import threading
import time

import pytest

from checkslib import RCPT, simple_message
from moatlib import SMTPClient, free_port, run_moat_t
from redislib import REDIS_SERVER, Drive, Redis, RespError, count, grey, silent_server
from test_metrics import samples, scrape

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed (make deps)")


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path).start()
    yield r
    r.stop()


def states(answers):
    return [a[2] for a in answers]


# ---------------------------------------------------------------- semantics

GREY_SCRIPT = [
    # delay 0: a retry passes at once; auto_allow 2: the network's third triplet is allowed
    [grey("g:n1|a|b", "ga:n1", delay=0, auto=2)],
    [grey("g:n1|a|b", "ga:n1", delay=0, auto=2)],
    [grey("g:n1|a|b", "ga:n1", delay=0, auto=2)],  # passed before: passes, not counted again
    [grey("g:n1|c|b", "ga:n1", delay=0, auto=2)],
    [grey("g:n1|c|b", "ga:n1", delay=0, auto=2)],
    [grey("g:n1|d|b", "ga:n1", delay=0, auto=2)],
    [grey("g:n2|d|b", "ga:n2", delay=0, auto=2)],
    # a long delay: early, with the seconds left
    [grey("g:n3|a|b", "ga:n3", delay=3600)],
    [grey("g:n3|a|b", "ga:n3", delay=3600)],
    # auto_allow 0: never allowed
    [grey("g:n1|e|b", "ga:n1", delay=0, auto=0)],
]


def run_grey_script(d):
    out = []
    for line in GREY_SCRIPT:
        out += d.ask(*line)
    return out


def test_greylist_semantics_equal_memory(redis):
    mem = Drive()
    red = Drive(redis=redis.addr)
    try:
        m = run_grey_script(mem)
        r = run_grey_script(red)
    finally:
        mem.close()
        red.close()
    assert states(m) == ["FIRST", "PASSED", "PASSED", "FIRST", "PASSED", "ALLOWED", "FIRST", "FIRST", "EARLY",
                         "FIRST"]
    assert states(r) == states(m)
    # retry_in: the delay for FIRST, what is left of it for EARLY (a second may pass between)
    assert int(r[7][3]) == 3600 and 3599 <= int(r[8][3]) <= 3600
    assert int(m[7][3]) == 3600 and 3599 <= int(m[8][3]) <= 3600


def test_greylist_entries_expire_by_ttl(redis):
    d = Drive(redis=redis.addr)
    c = redis.client()
    try:
        d.ask(grey("g:t|a|b", "ga:t", delay=3600, window=86400))
        assert 86390 <= c.call("TTL", "g:t|a|b") <= 86400
        d.ask(grey("g:u|a|b", "ga:u", delay=0, pass_ttl=1000, auto_ttl=2000))
        assert states(d.ask(grey("g:u|a|b", "ga:u", delay=0, pass_ttl=1000, auto_ttl=2000))) == ["PASSED"]
        assert 990 <= c.call("TTL", "g:u|a|b") <= 1000
        assert 1990 <= c.call("TTL", "ga:u") <= 2000
        assert c.call("GET", "ga:u") == "1"
        # an expired entry is a first time again
        c.call("DEL", "g:u|a|b")
        assert states(d.ask(grey("g:u|a|b", "ga:u", delay=0))) == ["FIRST"]
    finally:
        c.close()
        d.close()


def test_counts_equal_memory_and_windows(redis):
    mem = Drive()
    red = Drive(redis=redis.addr)
    c = redis.client()
    try:
        lines = [[count("rc:a", 1, 3600)], [count("rc:a", 2, 3600), count("rc:a", 0, 3600)],
                 [count("rc:b", 0, 60)], [count("rc:b", 5, 60)],
                 # given back: never below 0, nothing in a window not counted
                 [count("rc:c", 2, 3600), count("rc:c", -1, 3600), count("rc:c", -5, 3600), count("rc:c", 0, 3600)],
                 [count("rc:never", -1, 3600), count("rc:never", 0, 3600)]]
        m = [a for line in lines for a in mem.ask(*line)]
        r = [a for line in lines for a in red.ask(*line)]
        now = int(time.time())
        assert [a[2] for a in m] == ["1", "3", "3", "0", "5", "2", "1", "0", "0", "0", "0"]
        assert [a[2] for a in r] == [a[2] for a in m]
        assert {a[4] for a in m} == {"0"} and {a[4] for a in r} == {"1"}  # shared: Redis only
        for a in r[:3]:  # the window of now, aligned to the epoch
            reset = int(a[3])
            assert reset % 3600 == 0 and reset - 3600 <= now + 1 and now - 1 < reset, (reset, now)
        assert 0 < c.call("TTL", "rc:a") <= 3600
        assert c.call("EXISTS", "rc:never") == 0
        assert int(r[4][3]) % 60 == 0
    finally:
        c.close()
        mem.close()
        red.close()


def test_two_clients_racing_count_exactly(redis):
    """Two connections (two replicas' workers) pipelining adds to one key:
    every add is counted once (each a Lua script: atomic)."""
    a, b = Drive(redis=redis.addr), Drive(redis=redis.addr)
    try:
        n = 400
        line = [count("rc:race", 1, 3600)] * n
        results = {}

        def run(name, d):
            results[name] = d.ask(*line, timeout=30)
        threads = [threading.Thread(target=run, args=("a", a)), threading.Thread(target=run, args=("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seen = sorted(int(x[2]) for d in results.values() for x in d)
        assert seen == list(range(1, 2 * n + 1))  # each count answered once: no add lost or doubled
        assert {x[4] for d in results.values() for x in d} == {"1"}
        assert states(a.ask(count("rc:race", 0, 3600))) == [str(2 * n)]
        # a triplet raced: one FIRST, the other EARLY
        g = [grey("g:race|a|b", "ga:race", delay=3600)]
        both = []
        ts = [threading.Thread(target=lambda d=d: both.extend(d.ask(*g))) for d in (a, b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sorted(states(both)) == ["EARLY", "FIRST"]
    finally:
        a.close()
        b.close()


def test_noscript_falls_back_to_eval(redis):
    d = Drive(redis=redis.addr)
    c = redis.client()
    try:
        assert states(d.ask(count("rc:ns", 1, 3600))) == ["1"]
        assert c.call("SCRIPT", "FLUSH") == "OK"
        got = d.ask(count("rc:ns", 1, 3600), grey("g:ns|a|b", "ga:ns", delay=3600))
        assert got[0][2] == "2" and got[0][4] == "1"
        assert got[1][2] == "FIRST"
        assert d.state() == 1
    finally:
        c.close()
        d.close()


def test_cancelled_calls_never_answer(redis):
    """store_cancel (a session closing): the answer never comes, whether the
    call is in Redis's hands or already answered; a store freed with calls
    in flight (cancelled first, as sessions do) frees them when hiredis
    hands them back (ASan: no leak, no use after free)."""
    d = Drive(redis=redis.addr)
    try:
        d.wait_state(True)
        d.send(count("rc:c", 1, 3600), grey("g:c|a|b", "ga:c", delay=3600), "cancel")
        assert d.answers(1) == [["cancel", "2", "2"]]
        assert d.ask(count("rc:c", 0, 3600)) == [d.out.snapshot()[-1]]
        assert d.out.snapshot()[-1][2] == "1"  # the cancelled call had reached Redis: counted, not answered
        assert len(d.out.snapshot()) == 2
    finally:
        d.close()
    s, port = silent_server()
    d = Drive(redis="127.0.0.1:%d" % port, timeout=5000)
    try:
        d.send(count("rc:c", 1, 60), grey("g:c|a|b", "ga:c"), "quit")
        assert d.answers(1) == [["quit", "2", "2"]]
        assert d.proc.wait(10) == 0
    finally:
        d.close()
        s.close()


# ---------------------------------------------------------------- addresses

def test_ipv6_and_unix_socket(tmp_path):
    sock = os.path.join(str(tmp_path), "redis.sock")
    r = Redis(tmp_path, bind="::1", extra=["--unixsocket", sock, "--unixsocketperm", "700"]).start()
    try:
        for addr in ("[::1]:%d" % r.port, sock):
            d = Drive(redis=addr)
            try:
                d.wait_state(True)
                assert addr in d.state_lines()[0]
                assert d.ask(count("rc:addr", 1, 3600))[0][4] == "1"
            finally:
                d.close()
        assert states(drive_once(sock, count("rc:addr", 0, 3600))) == ["2"]
    finally:
        r.stop()


def drive_once(addr, command):
    d = Drive(redis=addr)
    try:
        return d.ask(command)
    finally:
        d.close()


# ---------------------------------------------------------------- AUTH, SELECT

def test_auth_and_db(tmp_path):
    r = Redis(tmp_path, password="s3cret pass").start()
    d = Drive(redis=r.addr, password="s3cret pass", db=3)
    bad = Drive(redis=r.addr, password="wrong", timeout=500)
    c0, c3 = r.client(0), r.client(3)
    try:
        d.wait_state(True)
        assert states(d.ask(grey("g:db|a|b", "ga:db"))) == ["FIRST"]
        assert c3.call("EXISTS", "g:db|a|b") == 1
        assert c0.call("EXISTS", "g:db|a|b") == 0
        # a wrong password: down, with Redis's reason; calls fail open
        line = bad.wait_state(False)
        assert "AUTH" in line["msg"] and ("WRONGPASS" in line["msg"] or "invalid" in line["msg"]), line
        got = bad.ask(grey("g:bad|a|b", "ga:bad"), count("rc:bad", 1, 60), count("rc:bad", 1, 60))
        assert got[0][2] == "SKIPPED"
        assert [(a[2], a[4]) for a in got[1:]] == [("1", "0"), ("2", "0")]  # this process's counts
        assert "s3cret" not in "".join(d.state_lines()) and "wrong" not in "".join(bad.state_lines())
    finally:
        c0.close()
        c3.close()
        d.close()
        bad.close()
        r.stop()


# ---------------------------------------------------------------- faults

def test_down_at_start_then_up(tmp_path):
    r = Redis(tmp_path)  # not started: nothing listens on its port
    d = Drive(redis=r.addr, timeout=1000)
    try:
        d.wait_state(False)
        t0 = time.monotonic()
        got = d.ask(grey("g:s|a|b", "ga:s"), count("rc:s", 1, 60), count("rc:s", 1, 60))
        assert time.monotonic() - t0 < 1.0  # answered at once, not after a deadline
        assert got[0][2] == "SKIPPED" and [(a[2], a[4]) for a in got[1:]] == [("1", "0"), ("2", "0")]
        r.start()  # the backoff's next try finds it (10 s at most)
        d.logs.wait_count(lambda l: "answers:" in l.get("msg", ""), 1, timeout=15, what="redis up")
        assert states(d.ask(grey("g:s|a|b", "ga:s"))) == ["FIRST"]
        assert len(d.state_lines()) == 2  # down once, up once
    finally:
        d.close()
        r.stop()


def test_killed_and_restarted(tmp_path):
    """kill -9 mid-run: down logged once, calls fail open at once; a restart
    without persistence: up logged once, the greylist history lost (the
    triplet is FIRST again), counting shared again."""
    r = Redis(tmp_path).start()
    d = Drive(redis=r.addr, timeout=1000)
    try:
        d.wait_state(True)
        assert states(d.ask(grey("g:k|a|b", "ga:k", delay=3600))) == ["FIRST"]
        assert states(d.ask(grey("g:k|a|b", "ga:k", delay=3600))) == ["EARLY"]
        r.kill()
        d.logs.wait_count(lambda l: "does not answer" in l.get("msg", ""), 1, what="redis down")
        for _ in range(3):
            got = d.ask(grey("g:k|a|b", "ga:k", delay=3600), count("rc:k", 1, 3600))
            assert got[0][2] == "SKIPPED" and got[1][4] == "0"
            assert int(got[0][4]) < 500
        r.start()
        d.logs.wait_count(lambda l: "answers:" in l.get("msg", ""), 2, timeout=15, what="redis up again")
        assert states(d.ask(grey("g:k|a|b", "ga:k", delay=3600))) == ["FIRST"]  # history lost
        assert d.ask(count("rc:k", 1, 3600))[0][2:5:2] == ["1", "1"]
        lines = d.state_lines()
        assert len(lines) == 3 and "answers:" in lines[0] and "does not answer" in lines[1], lines
        assert "connection lost" in lines[1] and "answers:" in lines[2]
    finally:
        d.close()
        r.stop()


def test_slow_redis(tmp_path):
    """Redis not answering for 2 s (CLIENT PAUSE: every client's commands
    wait): a call answers as a fault within redis_timeout, the connection is
    dropped (the late reply goes nowhere), and once Redis answers again the
    store is up."""
    r = Redis(tmp_path).start()
    d = Drive(redis=r.addr, timeout=300)
    c = r.client()
    try:
        d.wait_state(True)
        assert states(d.ask(count("rc:slow", 1, 3600))) == ["1"]
        assert c.call("CLIENT", "PAUSE", "2000", "ALL") == "OK"  # in force once answered
        t0 = time.monotonic()
        got = d.ask(grey("g:slow|a|b", "ga:slow"), count("rc:slow", 1, 3600))
        took = time.monotonic() - t0
        assert got[0][2] == "SKIPPED" and got[1][2:5:2] == ["2", "0"], got
        assert 0.25 <= took < 1.5, took
        line = d.logs.wait(lambda l: "does not answer" in l.get("msg", ""), what="redis down")
        assert "redis_timeout (300 ms)" in line["msg"]
        d.logs.wait_count(lambda l: "answers:" in l.get("msg", ""), 2, timeout=15, what="redis up again")
        # the late count may or may not have been applied by Redis (its
        # connection closed while it waited): a call past its deadline is
        # undetermined; its answer was the fault's
        got = d.ask(count("rc:slow", 1, 3600))[0]
        assert got[2] in ("2", "3") and got[4] == "1", got
        assert len(d.state_lines()) == 3
    finally:
        c.close()
        d.close()
        r.stop()


def test_server_that_never_answers(tmp_path):
    s, port = silent_server()
    d = Drive(redis="127.0.0.1:%d" % port, timeout=300)
    try:
        t0 = time.monotonic()
        got = d.ask(grey("g:h|a|b", "ga:h"), count("rc:h", 1, 60))
        took = time.monotonic() - t0
        assert got[0][2] == "SKIPPED" and got[1][2:5:2] == ["1", "0"]
        assert 0.25 <= took < 1.5, took
        assert "of the connect" in d.wait_state(False)["msg"]
    finally:
        d.close()
        s.close()


def test_unreachable_address():
    d = Drive(redis="192.0.2.1:6379", timeout=300)  # TEST-NET-1: nothing answers
    try:
        t0 = time.monotonic()
        got = d.ask(grey("g:u|a|b", "ga:u"), count("rc:u", 1, 60))
        assert time.monotonic() - t0 < 1.5
        assert got[0][2] == "SKIPPED" and got[1][4] == "0"
        d.wait_state(False)
        assert d.state() == 0
    finally:
        d.close()


class FakeRedis:
    """Answers PING, and every other command with reply (raw RESP) or not at all."""

    def __init__(self, reply=None):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        buf = b""
        while True:
            try:
                chunk = c.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            # one command per *N array; count them by their first argument
            while True:
                i = buf.find(b"*", 1)
                cmd, rest = (buf, b"") if i < 0 else (buf[:i], buf[i:])
                if not cmd.endswith(b"\r\n") or (i < 0 and cmd.count(b"\r\n") < 2 * int(cmd[1:cmd.find(b"\r")]) + 1):
                    break
                buf = rest
                if b"PING" in cmd:
                    c.sendall(b"+PONG\r\n")
                elif self.reply is not None:
                    c.sendall(self.reply)
                if not buf:
                    break

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("reply", [b"$5\r\nhello\r\n", b":7\r\n", b"*2\r\n:1\r\n$1\r\nx\r\n", b"*2\r\n:9\r\n:0\r\n",
                                   b"-ERR something\r\n"])
def test_wrong_replies_fail_open(reply):
    f = FakeRedis(reply)
    d = Drive(redis="127.0.0.1:%d" % f.port, timeout=2000)
    try:
        d.wait_state(True)
        got = d.ask(grey("g:w|a|b", "ga:w"), count("rc:w", 1, 60))
        assert got[0][2] == "SKIPPED" and got[1][2:5:2] == ["1", "0"], got
        assert d.state() == 1  # one bad reply is the call's fault, not the connection's
        assert sum("answered" in l.get("msg", "") for l in d.logs.snapshot()) <= 1
    finally:
        d.close()
        f.close()
    assert d.proc.returncode == 0


def test_wrongtype_key_fails_open(redis):
    d = Drive(redis=redis.addr)
    c = redis.client()
    try:
        c.call("HSET", "g:wt|a|b", "x", "1")
        got = d.ask(grey("g:wt|a|b", "ga:wt"))
        assert got[0][2] == "SKIPPED"
        line = d.logs.wait(lambda l: "answered an error" in l.get("msg", ""))
        assert "WRONGTYPE" in line["msg"]
        assert states(d.ask(grey("g:ok|a|b", "ga:ok"))) == ["FIRST"]
    finally:
        c.close()
        d.close()


def test_queue_full_answers_at_once(tmp_path):
    """MOAT_STORE_REDIS_PENDING_MAX (1024) calls outstanding on a Redis that
    answers nothing but PING: the calls beyond answer at once, the others at
    their deadline."""
    f = FakeRedis(None)
    d = Drive(redis="127.0.0.1:%d" % f.port, timeout=1500)
    try:
        d.wait_state(True)
        got = d.ask(*[count("rc:q", 1, 60)] * 1100, timeout=20)
        ms = [int(a[5]) for a in got]
        assert all(a[4] == "0" for a in got)
        assert [int(a[2]) for a in got] == list(range(1, 1101))  # counted in memory, each once
        assert all(m >= 1400 for m in ms[:1024]), ms[:3]
        assert all(m < 1000 for m in ms[1024:]), ms[1024:1030]
    finally:
        d.close()
        f.close()


# ---------------------------------------------------------------- moat itself

def test_moat_logs_and_counts_redis_state(tmp_path, moat_factory, backend):
    """moat with `redis`: each worker connects; Redis killed: each logs down
    once, moat_redis_up 0, mail still relayed (no 5xx, no stall); restarted:
    each logs up once more."""
    r = Redis(tmp_path).start()
    mport = free_port()
    m = moat_factory(_start=False, workers=2, metrics_listen="127.0.0.1:%d" % mport, redis=r.addr,
                     redis_timeout=500)
    up = lambda l: l.get("event") == "redis" and "answers:" in l.get("msg", "")
    down = lambda l: l.get("event") == "redis" and "does not answer" in l.get("msg", "")
    try:
        m.start()
        m.logs.wait_count(up, 2, what="both workers up")
        s = samples(scrape(mport))
        assert s[("moat_redis_up", ())] == 1
        assert s[("moat_redis_state_changes_total", (("to", "up"),))] == 2
        r.kill()
        m.logs.wait_count(down, 2, what="both workers down")
        s = samples(scrape(mport))
        assert s[("moat_redis_up", ())] == 0
        assert s[("moat_redis_state_changes_total", (("to", "down"),))] == 2
        with SMTPClient(m.port) as c:
            assert c.banner.code == 220
            c.ehlo()
            assert c.transaction("alice@example.org", [RCPT], simple_message("while Redis is down")).code == 250
            c.cmd("QUIT")
        backend.wait_stored(1)
        r.start()
        m.logs.wait_count(up, 4, timeout=20, what="both workers up again")
        assert len([l for l in m.logs.snapshot() if down(l)]) == 2
        s = samples(scrape(mport))
        assert s[("moat_redis_up", ())] == 1
        assert s[("moat_redis_state_changes_total", (("to", "up"),))] == 4
    finally:
        r.stop()


def test_config_redis_keys(tmp_path):
    def check(**keys):
        p = tmp_path / "t.conf"
        p.write_text("".join("%s = %s\n" % kv for kv in keys.items()))
        return run_moat_t(str(p))

    for bad, what in ((dict(redis="redis.example:6379"), "numeric"), (dict(redis="127.0.0.1:0"), "port"),
                      (dict(redis="[::1"), "numeric"), (dict(redis_timeout="5"), "redis_timeout"),
                      (dict(redis_db="-1"), "redis_db")):
        p = check(**bad)
        out = (p.stdout + p.stderr).decode()
        assert p.returncode != 0 and what in out, (bad, out)
    # a password in a file others may read: a warning, not an error; never the password
    conf = tmp_path / "pw.conf"
    conf.write_text("redis = 127.0.0.1:%d\nredis_password = pa55word\nbackend = 127.0.0.1:%d\nrun_as_root = yes\n"
                    "spool_dir = %s\n" %
                    (free_port(), free_port(), tmp_path))
    for mode, warned in ((0o644, True), (0o640, False)):
        os.chmod(conf, mode)
        p = run_moat_t(str(conf))
        err = p.stderr.decode()
        assert p.returncode == 0, err
        assert ("redis_password is in a world-readable file" in err) == warned, err
        assert "pa55word" not in err + p.stdout.decode()
