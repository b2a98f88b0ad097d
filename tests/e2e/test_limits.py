"""Connection limits and timeouts."""

import time

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
