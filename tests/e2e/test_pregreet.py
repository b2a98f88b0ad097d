"""greet_pause: moat sends "220-" and waits; a client that talks before the
final "220 " line is a pregreeter (postscreen's PREGREET) and is refused."""

import socket
import time

from moatlib import SMTPClient


def test_pregreet_refused(moat_factory, backend):
    m = moat_factory(greet_pause="3000")
    s = socket.create_connection(("127.0.0.1", m.port), timeout=10)
    f = s.makefile("rb")
    first = f.readline()
    assert first.startswith(b"220-"), first
    t0 = time.monotonic()
    s.sendall(b"EHLO spammer.example\r\n")       # talks before the banner is complete
    # the banner's reply is finished with its own code (RFC 5321 4.2.1: every
    # line of a reply has one code), then the refusal answers that EHLO
    assert f.readline().startswith(b"220 "), "the banner is one well-formed reply"
    reply = f.readline()
    assert reply.startswith(b"554 5.5.1"), reply
    assert time.monotonic() - t0 < 2.5, "refused at once, not after the pause"
    # the connection waits for QUIT (test_refused_linger.py): a command gets a 503
    s.sendall(b"NOOP\r\n")
    assert f.readline().startswith(b"503 5.5.1"), "a further command is answered"
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221 "), "QUIT is answered"
    assert f.readline() == b"", "and the connection is closed"
    d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == "connect")
    assert d["code"] == 554 and "pregreet" in d["reason"]
    s.close()


def test_patient_client_served(moat_factory, backend):
    m = moat_factory(greet_pause="300")
    with SMTPClient(m.port) as c:          # reads the whole multi-line banner first
        assert c.banner.code == 220 and len(c.banner.texts) == 2, c.banner
        r = c.ehlo()
        assert r.code == 250
        assert c.transaction("alice@example.org", ["bob@example.test"],
                             b"Subject: patient\r\n\r\nx\r\n").code == 250
    backend.wait_stored(1)
