"""A restart without downtime: a new moat starts on the same port beside the
running one (SO_REUSEPORT), then the old one gets SIGTERM and drains. Clients
connecting all the while, each completing a transaction, are never refused
nor reset, and every message arrives once."""

import signal
import threading

import pytest

from checkslib import RCPT, simple_message
from moatlib import SMTPClient

MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"


@pytest.fixture
def migrate_req():
    """net.ipv4.tcp_migrate_req = 1 where it can be set, as moat(8) advises
    for a restart: the kernel then moves to the new socket a connection that
    completes its handshake in the instant between the old moat taking the
    last queued connection and closing its socket. (Without it the test
    runs too: that instant is microseconds.)"""
    old = None
    try:
        with open(MIGRATE) as f:
            old = f.read().strip()
        with open(MIGRATE, "w") as f:
            f.write("1")
    except OSError:
        old = None
    yield
    if old is not None:
        with open(MIGRATE, "w") as f:
            f.write(old)


class Clients:
    """Threads opening sessions in a loop, each delivering one message."""

    def __init__(self, port, n=6):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.delivered = []
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(k,)) for k in range(n)]
        for t in self.threads:
            t.start()

    def run(self, k):
        i = 0
        while not self.stop.is_set():
            subject = "restart %d-%d" % (k, i)
            i += 1
            try:
                with SMTPClient(self.port) as c:
                    assert c.banner.code == 220, c.banner
                    c.ehlo()
                    r = c.transaction("alice@example.org", [RCPT], simple_message(subject))
                    assert r.code == 250, r
                    c.expect("QUIT", 221)
                with self.lock:
                    self.delivered.append(subject)
            except Exception as e:  # noqa: BLE001 - every failure is the test's finding
                with self.lock:
                    self.errors.append("%s: %r" % (subject, e))

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def _served(m):
    return len(m.log_lines(event="session_end"))


@pytest.mark.parametrize("workers", [1, 2])
def test_restart_without_downtime(moat_factory, backend, migrate_req, workers):
    old = moat_factory(workers=workers, max_connections_per_ip=1000)
    old.logs.wait_count(lambda l: l.get("event") == "ready", workers)
    # a client of the old moat, half way through its session when it stops
    early = SMTPClient(old.port)
    early.ehlo()
    clients = Clients(old.port)
    try:
        old.logs.wait_until(lambda ls: _served(old) >= 100, timeout=30, what="sessions on the old moat")
        new = moat_factory(workers=workers, max_connections_per_ip=1000, listen="127.0.0.1:%d" % old.port)
        new.logs.wait_count(lambda l: l.get("event") == "ready", workers)
        # both serve the port now
        new.logs.wait_until(lambda ls: _served(new) >= 100, timeout=30, what="sessions on the new moat")
        old.signal(signal.SIGTERM)
        old.logs.wait_count(lambda l: l.get("event") == "shutdown", workers, what="the old moat draining")
        r = early.transaction("alice@example.org", [RCPT], simple_message("early"))
        assert r.code == 250, r
        early.expect("QUIT", 221)
        assert old.wait_exit(20) == 0
        after = _served(new)
        new.logs.wait_until(lambda ls: _served(new) >= after + 100, timeout=30, what="sessions after the restart")
    finally:
        clients.join()
        early.close()
    assert not clients.errors, "%d of %d clients failed: %s" % (
        len(clients.errors), len(clients.errors) + len(clients.delivered), clients.errors[:5])
    # every message once, from both moats
    subjects = [m.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                for m in backend.wait_stored(len(clients.delivered) + 1, timeout=30)]
    assert sorted(subjects) == sorted(clients.delivered + ["early"])
    ends = [l.get("event") for l in old.logs.snapshot() if l.get("event") in ("shutdown", "session_end")]
    print("old moat: %d sessions, %d of them ended while it drained; new moat: %d sessions" % (
        ends.count("session_end"), len(ends) - ends.index("shutdown") - workers, _served(new)))
    # the new moat said it shares the port (the same line warns of a second
    # moat started by mistake)
    shared = new.log_lines(event="listen")
    assert shared and "in use by another process" in shared[0]["msg"], shared
