"""SMTP smuggling: the only end of data is CRLF.CRLF. Bare LF and bare CR are
normalised to CRLF, and a "." line that ends in a bare LF/CR is data, sent to
the backend dot-stuffed, so the backend never sees a second message."""

import pytest

from moatlib import SMTPClient, has_bare_cr_or_lf, normalise_eol

SENDER = "alice@example.org"
RCPT = "bob@example.test"

# Each variant is what sits between "body" and "MAIL FROM:<evil@...>".
VARIANTS = {
    "lf.lf": b"\n.\n",
    "lf.crlf": b"\n.\r\n",
    "crlf.lf": b"\r\n.\n",
    "cr.cr": b"\r.\r",
    "cr.crlf": b"\r.\r\n",
    "crlf.cr": b"\r\n.\r",
    "crlf.crcrlf": b"\r\n.\r\r\n",
    "lf.cr": b"\n.\r",
    "cr.lf": b"\r.\n",
    "crlf.lfcrlf": b"\r\n.\n\r\n",
    "lfcr.crlf": b"\n\r.\r\n",
    "crlf.sp.crlf": b"\r\n. \r\n",
    "crlfcr.crlf": b"\r\n\r.\r\n",
}

SMUGGLED = (b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.test>\r\n"
            b"DATA\r\nFrom: ceo@example.test\r\nsmuggled text\r\n")


def expected_content(body):
    """What the backend must get for a client DATA section `body` (which ends
    in CRLF, before the final ".\r\n"): lines are the CRLF-framed lines;
    an ordinary line starting with "." loses that dot (RFC 5321 4.5.2); a "."
    directly followed by a bare CR/LF is data and stays; then every bare CR
    and bare LF becomes CRLF."""
    lines = body[:-2].split(b"\r\n")
    out = []
    for l in lines:
        if l.startswith(b".") and len(l) > 1 and l[1:2] not in (b"\r", b"\n"):
            l = l[1:]
        out.append(l)
    return normalise_eol(b"\r\n".join(out) + b"\r\n")


def send_attempt(moat, variant):
    body = b"Subject: x\r\n\r\nbody" + variant + SMUGGLED
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        assert [c.reply().code for _ in range(3)] == [250, 250, 354]
        c.send(body + b".\r\n")
        first = c.reply(timeout=15)
        c.send(b"QUIT\r\n")
        second = c.reply()
    return body, first, second


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_smuggling_single_message(moat, backend, variant):
    body, first, second = send_attempt(moat, variant)
    assert first.code == 250, first
    # Had moat ended the data early, the smuggled MAIL would be answered before QUIT.
    assert second.lines == ["221 2.0.0 Bye"], "extra reply after end of data: %r" % second
    moat.wait_session_end(1)
    msgs = backend.messages()
    assert len(msgs) == 1, "backend got %d messages: %r" % (len(msgs), msgs)
    [m] = msgs
    assert m.mail_from == SENDER and m.rcpts == [RCPT]
    assert b"smuggled text" in m.data
    assert not any("evil@" in x for x in backend.commands()), backend.commands()
    assert not has_bare_cr_or_lf(m.raw), "bare CR/LF reached the backend: %r" % m.raw


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_smuggling_normalised_exactly(moat, backend, variant):
    """Bare CR and bare LF each became CRLF and nothing else changed."""
    body, first, second = send_attempt(moat, variant)
    assert first.code == 250
    [m] = backend.wait_stored(1)
    expected = expected_content(body)
    assert m.data.endswith(expected), "expected the message to end with %r, got %r" % (
        expected[-200:], m.data[-200:])
    assert m.raw.endswith(b"\r\n.\r\n") and m.raw.count(b"\r\n.\r\n") == 1


def test_bare_lf_message_normalised(moat, backend):
    original = b"Subject: unix\n\nline one\nline two\n"
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        c.expect("DATA", 354)
        c.send(original + b"\r\n.\r\n")
        assert c.reply().code == 250
    [m] = backend.wait_stored(1)
    assert m.data.endswith(b"Subject: unix\r\n\r\nline one\r\nline two\r\n\r\n")
    assert not has_bare_cr_or_lf(m.raw)


def test_lf_dot_lf_is_not_end_of_data(moat, backend):
    """A client that ends with only LF.LF gets no reply until the real CRLF.CRLF."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        assert [c.reply().code for _ in range(3)] == [250, 250, 354]
        c.send(b"Subject: x\r\n\r\nbody\n.\nNOOP\r\n")
        # NOOP above is data; the next line really ends the message
        c.send(b".\r\nNOOP\r\n")
        assert c.reply().code == 250
        r = c.reply()
        assert r.lines == ["250 2.0.0 OK"]
    [m] = backend.wait_stored(1)
    assert m.data.endswith(b"body\r\n.\r\nNOOP\r\n")


def test_smuggling_in_separate_writes(moat, backend):
    """The same attack with every byte of the trick in its own write."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        assert [c.reply().code for _ in range(3)] == [250, 250, 354]
        c.send(b"Subject: x\r\n\r\nbody")
        for b in b"\n.\n":
            c.send(bytes([b]))
        c.send(SMUGGLED)
        for b in b".\r\n":
            c.send(bytes([b]))
        assert c.reply().code == 250
        assert c.cmd("QUIT").code == 221
    moat.wait_session_end(1)
    [m] = backend.messages()
    assert b"smuggled text" in m.data
    assert not any("evil@" in x for x in backend.commands())
