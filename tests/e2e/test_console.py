"""The dialogue people type (issue 13, item 9), through moat to a real Postfix.

The classic transcript of someone learning SMTP in telnet: EHLO, "MAIL FROM: alice@..." and
"RCPT TO: bob@..." with a blank after the colon and no angle brackets, DATA, a Subject in raw
8-bit UTF-8 (no SMTPUTF8, no MIME: what a UTF-8 terminal sends), ".", QUIT. It is replayed
byte for byte on a raw socket, a line per write, each command after the previous reply, as
a person does. Postfix behind moat (strict_rfc821_envelopes = no, its default) takes that
dialogue; so must moat: the message lands in bob's Maildir with the subject's bytes intact,
and moat's decision line joins Postfix's log by the queue id. With strict_envelopes = yes
moat refuses the bracketless MAIL with its 501.

One private Postfix (pf_helpers.PfStack: its own DNS on loopback, Maildir delivery for
example.com) for the module, with two moats in front of it: the default one and a strict one.
"""

import re
import socket
import time

import pytest

from pf_helpers import PfStack, pf_default_zone

SUBJECT = "Привет из консоли"
TRANSCRIPT = [
    # (what the person types, the reply code expected after it; None: no reply, typing on)
    (b"EHLO localhost\r\n", 250),
    (b"MAIL FROM: alice@example.org\r\n", 250),
    (b"RCPT TO: bob@example.com\r\n", 250),
    (b"DATA\r\n", 354),
    (b"Subject: " + SUBJECT.encode() + b"\r\n", None),
    (b"\r\n", None),
    (b"Hello Bob, typed by hand.\r\n", None),
    (b".\r\n", 250),
    (b"QUIT\r\n", 221),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    zone = pf_default_zone() + [
        ("example.org", "MX", (10, "mail.example.org")),
        ("mail.example.org", "A", "127.0.0.1"),
        ("example.org", "A", "127.0.0.1"),
        ("example.org", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
        ("example.com", "MX", (10, "pf.example.com")),
        ("pf.example.com", "A", "127.0.0.1"),
    ]
    s = PfStack(tmp_path_factory.mktemp("console"), users=("bob",), zone=zone,
                domain="example.com")
    s.strict = s.add_moat(strict_envelopes="yes")
    yield s
    s.stop()


def read_reply(sock, buf, deadline):
    """One whole reply (its last line "NNN " ...): (code, lines), and what is left in buf."""
    lines = []
    while True:
        while b"\r\n" not in buf:
            left = deadline - time.monotonic()
            assert left > 0, "no reply in time; have %r" % (lines,)
            sock.settimeout(left)
            data = sock.recv(4096)
            assert data, "connection closed; replies so far %r" % (lines,)
            buf += data
        line, buf = buf.split(b"\r\n", 1)
        lines.append(line.decode("utf-8", "replace"))
        if line[3:4] == b" ":
            return int(line[:3]), lines, buf


def replay(port, transcript, timeout=30):
    """The transcript on a raw socket, a line per write, waiting for each reply it expects.
    Stops at the first reply that is not the one expected; returns [(line, code, lines)]."""
    deadline = time.monotonic() + timeout
    got = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        code, lines, buf = read_reply(sock, b"", deadline)
        assert code == 220, lines
        for line, want in transcript:
            sock.sendall(line)
            if want is None:
                continue
            code, lines, buf = read_reply(sock, buf, deadline)
            got.append((line, code, lines))
            if code != want:
                break
    return got


def test_typed_dialogue_reaches_the_mailbox(stack):
    start = stack.pf.maillog_size()
    before = stack.maildir_files("bob")
    got = replay(stack.moat.port, TRANSCRIPT)
    codes = [(line, code) for line, code, _ in got]
    assert codes == [(line, want) for line, want in TRANSCRIPT if want is not None], got
    queued = stack.pf.wait_for_log(re.compile(r": to=<bob@example\.com>.*status=sent"),
                                   timeout=30, start=start)
    qid = queued.split(": to=", 1)[0].rsplit(" ", 1)[1]
    new = stack.maildir_files("bob") - before
    assert len(new) == 1, new
    with open("%s/new/%s" % (stack.pf.maildir("bob"), new.pop()), "rb") as f:
        data = f.read()
    # the 8-bit subject, byte for byte, and the body
    assert b"\nSubject: " + SUBJECT.encode() + b"\n" in data, data[:600]
    assert data.endswith(b"\n\nHello Bob, typed by hand.\n"), data[-200:]
    # Postfix got the addresses in brackets: its log names them as moat checked them
    log = stack.pf.maillog_since(start)
    assert "%s: from=<alice@example.org>" % qid in log, log
    # moat's decision line names the same message: its queue id joins Postfix's log
    d = stack.moat.wait_log(lambda l: l.get("stage") == "data" and l.get("code") == 250)
    assert d["mail_from"] == "alice@example.org" and d["rcpt"] == "bob@example.com", d
    assert d.get("queue_id") == qid, (d, qid)
    assert d["subject"] == SUBJECT, d          # the log is UTF-8, readable


def test_strict_envelopes_refuses_the_typed_dialogue(stack):
    start = stack.pf.maillog_size()
    got = replay(stack.strict.port, TRANSCRIPT)
    assert [c for _, c, _ in got] == [250, 501], got
    assert got[-1][2] == ["501 5.5.4 Syntax: MAIL FROM:<address>"], got
    d = stack.strict.wait_log(lambda l: l.get("stage") == "mail" and l.get("code") == 501)
    assert d["action"] == "reject" and d["mail_from"] == "alice@example.org", d
    # nothing reached Postfix but the probe
    assert "alice@example.org" not in stack.pf.maillog_since(start)
