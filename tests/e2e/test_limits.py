"""Connection limits and timeouts."""

import time

import pytest

from moatlib import HOSTNAME, SMTPClient, dotstuff

SENDER = "alice@example.org"
RCPT = "bob@example.test"


def admitted(port, timeout=5):
    """Connect until moat greets with 220 (it may still be counting a session
    that has just ended); each try is a real exchange, no sleeping."""
    deadline = time.monotonic() + timeout
    while True:
        with SMTPClient(port) as c:
            if c.banner.code == 220:
                return
            assert c.banner.code == 421, c.banner
        assert time.monotonic() < deadline, "still refused %.0fs after a slot was freed" % timeout


def test_max_connections(moat_factory, backend):
    m = moat_factory(max_connections=3, max_connections_per_ip=100)
    held = [SMTPClient(m.port) for _ in range(3)]
    for c in held:
        assert c.banner.code == 220
    extra = SMTPClient(m.port, read_banner=False)
    r = extra.reply()
    assert r.lines == ["421 4.7.0 %s Error: too many connections" % HOSTNAME]
    assert extra.cmd("QUIT").code == 221  # the refused connection lingers for QUIT
    extra.wait_closed(5)
    extra.close()
    # the held sessions still work
    held[0].ehlo()
    held[0].expect("NOOP", 250)
    # once one leaves, a new client gets in
    held[0].expect("QUIT", 221)
    held[0].wait_closed(5)
    held[0].close()
    admitted(m.port)
    for c in held[1:]:
        c.close()


def test_max_connections_per_ip(moat_factory, backend):
    m = moat_factory(max_connections=100, max_connections_per_ip=2)
    held = [SMTPClient(m.port) for _ in range(2)]
    for c in held:
        assert c.banner.code == 220
    extra = SMTPClient(m.port, read_banner=False)
    r = extra.reply()
    assert r.lines == ["421 4.7.0 %s Error: too many connections from your address" % HOSTNAME]
    assert extra.cmd("QUIT").code == 221
    extra.wait_closed(5)
    extra.close()
    # another address is not affected
    with SMTPClient(m.port, source="127.0.0.2") as other:
        assert other.banner.code == 220
        other.ehlo()
    # a slot freed by a leaving client can be used again
    held[0].expect("QUIT", 221)
    held[0].wait_closed(5)
    held[0].close()
    admitted(m.port)
    for c in held[1:]:
        c.close()


def test_command_timeout(moat_factory, backend):
    m = moat_factory(command_timeout=1)
    with SMTPClient(m.port) as c:
        t0 = time.monotonic()
        r = c.reply(timeout=10)
        assert r.lines == ["421 4.4.2 %s Error: timeout exceeded" % HOSTNAME]
        assert time.monotonic() - t0 < 5
        c.wait_closed(5)


def test_command_timeout_in_transaction(moat_factory, backend):
    m = moat_factory(command_timeout=1)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        r = c.reply(timeout=10)
        assert r.lines == ["421 4.4.2 %s Error: timeout exceeded" % HOSTNAME]
        c.wait_closed(5)
    m.wait_session_end(1)
    assert backend.messages() == []


def test_command_timeout_is_per_command(moat_factory, backend):
    """Activity resets the timer: a session that sends a command every ~0.7 s
    outlives command_timeout=2 several times over (the pauses are the thing
    under test here, not synchronisation)."""
    m = moat_factory(command_timeout=2)
    with SMTPClient(m.port) as c:
        c.ehlo()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:
            time.sleep(0.7)
            c.expect("NOOP", 250)


def test_data_timeout(moat_factory, backend):
    m = moat_factory(command_timeout=30, data_timeout=1)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: stalled\r\n\r\nhalf a mess")
        t0 = time.monotonic()
        r = c.reply(timeout=10)
        assert r.lines == ["421 4.4.2 %s Error: timeout exceeded" % HOSTNAME]
        assert time.monotonic() - t0 < 5
        c.wait_closed(5)
    m.wait_session_end(1)
    assert backend.messages() == []
    assert not [x for x in backend.commands() if x.upper() == "DATA"]


def test_data_phase_uses_data_timeout(moat_factory, backend):
    """command_timeout does not apply inside DATA: a 2 s pause in the middle of
    the message is fine with command_timeout=1 and data_timeout=10."""
    m = moat_factory(command_timeout=1, data_timeout=10)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        assert [c.reply().code for _ in range(3)] == [250, 250, 354]
        c.send(b"Subject: slow client\r\n\r\nfirst half\r\n")
        time.sleep(2)
        c.send(dotstuff(b"second half\r\n"))
        r = c.reply(timeout=10)
        assert r.code == 250, r
    [msg] = backend.wait_stored(1)
    assert msg.data.endswith(b"Subject: slow client\r\n\r\nfirst half\r\nsecond half\r\n")


def test_client_timeouts_do_not_run_while_moat_waits_for_backend(backend_factory, moat_factory):
    """The client is not idle while moat waits for the backend: with
    command_timeout=1 and data_timeout=1 a backend that takes 2 s to answer RCPT
    and end of data still gives the client its replies (no 421 4.4.2 — a 421
    after the backend's 250 would make the client send the mail again)."""
    be = backend_factory(slow=2)
    m = moat_factory(_backend=be, command_timeout=1, data_timeout=1)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<slowrcpt@example.test>")
        assert r.code == 250, r
        c.expect("DATA", 354)
        c.send(dotstuff(b"Subject: patience\r\n\r\nx\r\n"))
        r = c.reply(timeout=10)
        assert r.code == 250, r
    [msg] = be.wait_stored(1)
    assert msg.rcpts == ["slowrcpt@example.test"]


def test_data_reply_waits_for_slow_backend(backend_factory, moat_factory):
    be = backend_factory(slow=2)
    m = moat_factory(_backend=be, command_timeout=1, data_timeout=1)
    with SMTPClient(m.port) as c:
        c.ehlo()
        r = c.transaction(SENDER, ["slow@example.test"], b"Subject: patience\r\n\r\nx\r\n", timeout=10)
        assert r.code == 250, r
    be.wait_stored(1)


def test_connection_churn_does_not_leak_slots(moat_factory, backend):
    """Hundreds of clients that vanish at once (some with a RST) leave no
    counted connection behind: afterwards max_connections clients still fit."""
    import socket
    import struct
    m = moat_factory(max_connections=5, max_connections_per_ip=5)
    for i in range(300):
        s = socket.socket()
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.connect(("127.0.0.1", m.port))
        if i % 3 == 0:
            s.sendall(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n")
        s.close()
    deadline = time.monotonic() + 10
    while True:
        clients = []
        try:
            for _ in range(5):
                clients.append(SMTPClient(m.port))
            if all(c.banner.code == 220 for c in clients):
                break
        finally:
            for c in clients:
                c.close()
        assert time.monotonic() < deadline, "moat still counts vanished clients: %r" % [c.banner for c in clients]
    assert m.proc.poll() is None


def test_command_timeout_with_partial_line(moat_factory, backend):
    m = moat_factory(command_timeout=1)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@exa")
        r = c.reply(timeout=10)
        assert r.lines == ["421 4.4.2 %s Error: timeout exceeded" % HOSTNAME]
        c.wait_closed(5)


# ------------------------------------------- limits exact across the workers

def _ready(m, workers):
    m.logs.wait_count(lambda l: l.get("event") == "ready", workers, what="%d ready lines" % workers)


def _first_code(port):
    """The code of moat's first reply line to a new connection (a refused
    client may be told more later: only the first line is the answer)."""
    c = SMTPClient(port, read_banner=False)
    line = c.readline()
    return c, int(line[:3]), line.decode()


def _exact(m, limit, refusal, rounds=3):
    """limit concurrent connections from 127.0.0.1 get the banner, the next
    one the refusal; one leaves (its session_end logged), exactly one more
    gets in. Several rounds: the kernel spreads connections over the workers
    at random, and every spread must give the same answer."""
    for rnd in range(rounds):
        held = []
        for k in range(limit):
            c, code, line = _first_code(m.port)
            assert code == 220, "round %d: connection %d of a limit of %d: %r" % (rnd, k + 1, limit, line)
            held.append(c)
        c, code, line = _first_code(m.port)
        assert code == 421 and refusal in line, "round %d: connection %d: %r" % (rnd, limit + 1, line)
        c.close()
        held[0].expect("QUIT", 221)
        held[0].wait_closed(5)
        held.pop(0).close()
        # its slot is back, for whichever worker takes the next connection
        _wait_given_back(m, rnd * (limit + 1) + 1)
        c, code, line = _first_code(m.port)
        assert code == 220, "round %d: after one left: %r" % (rnd, line)
        held.append(c)
        c, code, line = _first_code(m.port)
        assert code == 421 and refusal in line, "round %d: again over the limit: %r" % (rnd, line)
        c.close()
        for h in held:
            h.close()
        _wait_given_back(m, (rnd + 1) * (limit + 1))
    workers = {l["worker"] for l in m.log_lines(event="session_end")}
    return workers


def _wait_given_back(m, n):
    """n sessions that held a slot have ended (session_end is logged once
    the connection is given back)."""
    m.logs.wait_count(lambda l: l.get("event") == "session_end" and l.get("rejected") == 0, n,
                      what="%d sessions ended" % n)


@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("key,refusal", [("max_connections_per_ip", "too many connections from your address"),
                                         ("max_connections", "too many connections")])
def test_connection_limit_exact_across_workers(moat_factory, backend, key, refusal, workers):
    """A limit of 20, 21 connections from 127.0.0.1: exactly 20 get the
    banner and the 21st the refusal, with 1, 2 and 4 workers."""
    limits = {"max_connections": 1000, "max_connections_per_ip": 1000, key: 20}
    m = moat_factory(workers=workers, **limits)
    _ready(m, workers)
    served = _exact(m, 20, refusal)
    assert workers == 1 or len(served) > 1, served
