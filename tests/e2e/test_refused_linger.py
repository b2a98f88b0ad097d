"""A refusal at connect waits for the client (issue 13, item 4).

A client refused at connect (a connect rule, pregreet, too many connections)
may already have written its next commands. moat used to write the refusal
and close at once: the client's next write then met a TCP reset, and a client
whose write fails never reads the refusal. Now the connection lingers (RFC
5321 3.1, like postscreen): every command is answered 503 5.5.1, QUIT 221,
EOF closes, and a short timeout, a byte and a command bound end it; the
refusal is still one decision line. A lingering connection is no session: it
does not count against max_connections or max_connections_per_ip.

The client of these tests writes like a client that does not wait for the
greeting: EHLO at once, then, as soon as moat's first reply can be read, MAIL,
RCPT and QUIT as writes of their own, and only then reads. Against a moat
that closes at the refusal the second of those writes fails (the first one
got a reset), so such a client never sees the refusal.

The blocked network is refused at connect with delay_reject = no; with the
default (yes) its refusal answers each RCPT instead, as Postfix's.
"""

import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from moatlib import HOSTNAME, SMTPClient

CLIENTS = 200
PARALLEL = 20
BLOCKED = "554 5.7.1 Your network is blocked"
R503 = "503 5.5.1 Error: this connection was refused, send QUIT"
BYE = "221 2.0.0 Bye"


def eager_client(port, source=None, timeout=15):
    """One client that writes before it reads (see the module's doc). Returns
    (bytes read, the first error or None, whether every write succeeded)."""
    got, err, writes_ok = b"", None, False
    s = socket.socket()
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"EHLO client.example\r\n")
        assert select.select([s], [], [], timeout)[0], "nothing to read from moat"
        for line in (b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<b@example.test>\r\n", b"QUIT\r\n"):
            s.sendall(line)
        writes_ok = True
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        err = type(e).__name__
        try:  # what a client that still reads after a failed write would see
            got += s.recv(4096)
        except OSError:
            pass
    finally:
        s.close()
    return got, err, writes_ok


def run_clients(port, first, source=None):
    """CLIENTS eager clients, PARALLEL at a time. Returns (how many read the
    whole refusal with every write succeeding, how many read it at all,
    how many got exactly refusal, 503 x3, 221, EOF, the first bad result)."""
    with ThreadPoolExecutor(PARALLEL) as ex:
        results = list(ex.map(lambda _: eager_client(port, source), range(CLIENTS)))
    want = ("\r\n".join([first, R503, R503, R503, BYE]) + "\r\n").encode()
    line = (first + "\r\n").encode()
    read_clean = sum(1 for got, err, ok in results if ok and err is None and got.startswith(line))
    read_any = sum(1 for got, _, _ in results if got.startswith(line))
    whole = sum(1 for got, err, ok in results if ok and err is None and got == want)
    bad = next(((got, err) for got, err, ok in results if not (ok and err is None and got == want)), None)
    return read_clean, read_any, whole, bad


def report(what, read_clean, read_any, whole, bad):
    msg = ("%s: %d of %d clients read the refusal with every write succeeding (%d read it at all, "
           "%d got refusal, 503 x3, 221 and EOF); first bad: %r"
           % (what, read_clean, CLIENTS, read_any, whole, bad))
    print(msg)
    return msg


def blocking_rules(tmp_path, client="127.0.0.1"):
    p = tmp_path / "blocked.rules"
    p.write_text('reject client %s "%s" note "blocked network"\n' % (client, BLOCKED))
    return str(p)


def connect_decisions(m):
    return [l for l in m.logs.snapshot() if l.get("event") == "decision" and l.get("stage") == "connect"]


def test_blocked_network_200_clients_read_the_refusal(moat_factory, tmp_path):
    m = moat_factory(rules=blocking_rules(tmp_path), delay_reject="no")
    counts = run_clients(m.port, BLOCKED)
    msg = report("blocked network", *counts)
    assert counts[2] == CLIENTS, msg
    # the refusal is one decision line per client, as before
    m.logs.wait_until(lambda items: len([l for l in items if l.get("event") == "session_end"]) >= CLIENTS,
                      what="every session_end")
    d = connect_decisions(m)
    assert len(d) == CLIENTS and all(l["code"] == 554 and l["reason"] == "blocked network" for l in d), d[:3]


def test_over_max_connections_per_ip_200_clients_read_the_refusal(moat_factory, backend):
    m = moat_factory(max_connections_per_ip=2)
    held = [SMTPClient(m.port) for _ in range(2)]
    counts = run_clients(m.port, "421 4.7.0 %s Error: too many connections from your address" % HOSTNAME)
    msg = report("over max_connections_per_ip", *counts)
    assert counts[2] == CLIENTS, msg
    for c in held:  # the held sessions were never disturbed
        c.ehlo()
        c.expect("QUIT", 221)
        c.close()


def test_over_max_connections_200_clients_read_the_refusal(moat_factory, backend):
    m = moat_factory(max_connections=2, max_connections_per_ip=100)
    held = [SMTPClient(m.port) for _ in range(2)]
    counts = run_clients(m.port, "421 4.7.0 %s Error: too many connections" % HOSTNAME)
    msg = report("over max_connections", *counts)
    assert counts[2] == CLIENTS, msg
    m.logs.wait_count(lambda l: l.get("event") == "decision" and l.get("reason") == "too many connections",
                      CLIENTS, what="a decision line per refusal")
    for c in held:
        c.expect("QUIT", 221)
        c.close()


def test_pregreet_refusal_answers_the_early_command(moat_factory, backend):
    m = moat_factory(greet_pause="3000")
    with SMTPClient(m.port, read_banner=False) as c:
        assert c.readline().startswith(b"220-")
        c.send("EHLO early.example\r\n")           # talks before the banner is complete
        banner = c.reply()                          # the rest of it: one code per reply
        assert banner.code == 220 and banner.lines[-1].startswith("220 "), banner
        assert c.reply().line == "554 5.5.1 Error: SMTP protocol violation"  # to that EHLO
        assert c.cmd("NOOP").line == R503
        assert c.cmd("QUIT").line == BYE
        assert c.wait_closed(5) == b""
    d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == "connect")
    assert "pregreet" in d["reason"] and d["code"] == 554, d
    assert len(connect_decisions(m)) == 1


def test_linger_ends_on_eof_timeout_and_bounds(moat_factory, tmp_path):
    # command_timeout shorter than MOAT_REFUSED_LINGER_SECS: it bounds the linger
    m = moat_factory(rules=blocking_rules(tmp_path), delay_reject="no", command_timeout=1)
    with SMTPClient(m.port) as c:                   # silent: closed at the timeout
        assert c.banner.line == BLOCKED
        t0 = time.monotonic()
        assert c.reply(timeout=5).line == "421 4.4.2 %s Error: timeout exceeded" % HOSTNAME
        assert c.wait_closed(5) == b""
        assert time.monotonic() - t0 < 4
    with SMTPClient(m.port) as c:                   # EOF: answered, then closed
        c.send("NOOP\r\nNOOP\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.wait_closed(5) == ("%s\r\n%s\r\n" % (R503, R503)).encode()
    with SMTPClient(m.port) as c:                   # at most 20 commands
        c.send("NOOP\r\n" * 25)
        got = c.wait_closed(5).decode()
        assert got == (R503 + "\r\n") * 20 + "421 4.7.0 %s Error: too many errors\r\n" % HOSTNAME, got
    with SMTPClient(m.port) as c:                   # at most 8 KiB, however it comes
        try:
            for _ in range(20):
                c.send(b"x" * 1000)
        except OSError:
            pass                                    # moat closed: a reset is fine for this one
        got = c.wait_closed(5)
        assert got.endswith(b"421 4.7.0 %s Error: too many errors\r\n" % HOSTNAME.encode()), got


def test_lingering_connections_do_not_count_against_the_limits(moat_factory, backend, tmp_path):
    m = moat_factory(rules=blocking_rules(tmp_path, "127.0.0.2"), delay_reject="no",
                     max_connections=2, max_connections_per_ip=2)
    lingering = [SMTPClient(m.port, source="127.0.0.2") for _ in range(5)]
    for c in lingering:
        assert c.banner.line == BLOCKED
    # five refused clients still connected; two sessions still fit
    ok = [SMTPClient(m.port) for _ in range(2)]
    for c in ok:
        assert c.banner.code == 220, c.banner
        c.ehlo()
    for c in lingering + ok:
        assert c.cmd("QUIT").line.startswith("221")
        c.close()


def test_lingering_is_capped(moat_factory, tmp_path):
    cap = 256  # MOAT_REFUSED_LINGER_MAX
    m = moat_factory(rules=blocking_rules(tmp_path), delay_reject="no", max_connections=cap + 10,
                     max_connections_per_ip=cap + 10)
    lingering = [SMTPClient(m.port) for _ in range(cap)]
    assert all(c.banner.line == BLOCKED for c in lingering)
    with SMTPClient(m.port) as over:                # refused and closed at once, as before
        assert over.banner.line == BLOCKED
        assert over.wait_closed(5) == b""
    m.wait_log(lambda l: l.get("event") == "refused" and "close at once" in l.get("msg", ""))
    for c in lingering[:10]:                        # room again: lingering resumes
        assert c.cmd("QUIT").line == BYE
        c.wait_closed(5)
    with SMTPClient(m.port) as again:
        assert again.cmd("NOOP").line == R503
    for c in lingering:
        c.close()
    assert len([l for l in m.logs.snapshot() if l.get("event") == "refused"]) == 1


def test_sigterm_closes_lingering_connections(moat_factory, tmp_path):
    m = moat_factory(rules=blocking_rules(tmp_path), delay_reject="no")
    c = SMTPClient(m.port)
    assert c.banner.line == BLOCKED
    assert c.cmd("NOOP").line == R503
    m.signal(15)
    assert m.wait_exit(10) == 0
    c.wait_closed(5)
    c.close()
