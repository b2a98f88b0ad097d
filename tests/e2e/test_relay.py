"""Relaying to the backend: byte-exact delivery, backend replies passed
through, backend failures, size and recipient limits, connection reuse and
concurrency. "Delivered" always means: the recording backend stored it."""

import os
import random
import re
import smtplib
import subprocess
import threading
import uuid

import pytest

from moatlib import (HOSTNAME, SMTPClient, assert_relayed, dotstuff, free_port,
                     prepended_fields)

SENDER = "alice@example.org"
RCPT = "bob@example.test"


# ------------------------------------------------------------- random bodies

def random_line(rng):
    k = rng.random()
    if k < 0.10:
        return b"." + random_text(rng, 0, 60)
    if k < 0.15:
        return b"."
    if k < 0.20:
        return b".."
    if k < 0.23:
        return b"..." + random_text(rng, 0, 10)
    if k < 0.33:
        return bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randrange(1, 80)))
    if k < 0.36:
        return b"x" * 5000 if rng.random() < 0.5 else random_text(rng, 4990, 5010)
    if k < 0.42:
        return b""
    if k < 0.45:
        return b" \t "
    if k < 0.48:
        return b"From someone Mon Jan  1 00:00:00 2024"
    return random_text(rng, 1, 100)


def random_text(rng, lo, hi):
    # printable ASCII and 8-bit bytes; never CR, LF or NUL
    alphabet = bytes(range(0x20, 0x7f)) + b"\t" + bytes(range(0xa0, 0x100))
    return bytes(rng.choice(alphabet) for _ in range(rng.randrange(lo, hi + 1)))


def random_message(rng, i, tag):
    kind = i % 20
    if kind == 0:
        return b""                                   # nothing at all
    head = b"Message-ID: <%d.%s@test.example>\r\nSubject: random %d\r\n" % (i, tag, i)
    if kind == 1:
        return head + b"\r\n"                        # empty body
    if kind == 2:
        return b".starts with a dot\r\n.\r\n..\r\n"  # no header at all
    if kind == 3:
        # big: spills from memory to spool_dir (MOAT_SPOOL_MEM_MAX is 256 KiB)
        lines = [random_line(rng) for _ in range(rng.randrange(3000, 9000))]
        return head + b"\r\n" + b"\r\n".join(lines) + b"\r\n"
    lines = [random_line(rng) for _ in range(rng.randrange(1, 60))]
    return head + b"\r\n" + b"\r\n".join(lines) + b"\r\n"


def test_200_random_messages_byte_exact(moat, backend):
    rng = random.Random(5321)
    tag = uuid.uuid4().hex[:8].encode()
    msgs = {}
    for i in range(200):
        msgs["m%d@example.test" % i] = random_message(rng, i, tag)
    names = list(msgs)
    # raw sockets: 100 messages over 10 sessions
    for s in range(10):
        with SMTPClient(moat.port, timeout=30) as c:
            c.ehlo()
            for rcpt in names[s * 10:(s + 1) * 10]:
                r = c.transaction(SENDER, [rcpt], msgs[rcpt])
                assert r.code == 250, (rcpt, r)
            c.expect("QUIT", 221)
    # smtplib (adds SIZE=, does its own dot-stuffing): 100 messages over 10 sessions
    for s in range(10, 20):
        with smtplib.SMTP("127.0.0.1", moat.port, local_hostname="client.example.org", timeout=30) as smtp:
            for rcpt in names[s * 10:(s + 1) * 10]:
                m = msgs[rcpt]
                if m == b"":
                    m = b"Subject: was empty\r\n\r\n"  # smtplib cannot send an empty message
                    msgs[rcpt] = m
                refused = smtp.sendmail(SENDER, [rcpt], m)
                assert refused == {}
    stored = backend.wait_stored(200, timeout=60)
    assert len(stored) == 200, "expected exactly 200 messages, got %d" % len(stored)
    seen = set()
    for m in stored:
        assert len(m.rcpts) == 1 and m.rcpts[0] in msgs, m
        assert m.rcpts[0] not in seen, "delivered twice: %s" % m.rcpts[0]
        seen.add(m.rcpts[0])
        assert m.mail_from == SENDER
        assert_relayed(m, msgs[m.rcpts[0]])
    assert len(seen) == 200


def test_received_field_names_moat(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo("client.example.org")
        assert c.transaction(SENDER, [RCPT], b"Subject: r\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    fields = assert_relayed(m, b"Subject: r\r\n\r\nx\r\n")
    received = [f for f in fields if f.lower().startswith(b"received:")]
    assert len(received) == 1, fields
    assert HOSTNAME.encode() in received[0], received[0]
    assert b"127.0.0.1" in received[0], received[0]


def test_backend_sees_moat_hostname_and_envelope(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT, "carol@example.test"], b"x: y\r\n\r\nz\r\n",
                             mail_params="BODY=8BITMIME").code == 250
    [m] = backend.wait_stored(1)
    cmds = backend.commands(m.session)
    assert cmds[0] == "EHLO " + HOSTNAME, cmds
    assert m.mail_from == SENDER and m.rcpts == [RCPT, "carol@example.test"]
    assert "BODY=8BITMIME" in [p.upper() for p in m.mail_params], m.mail_params


def test_null_sender(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction("", [RCPT], b"Subject: bounce\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.mail_from == ""


def test_dot_stuffing_round_trip(moat, backend):
    original = b".\r\n..\r\n...\r\n. \r\n.x\r\nx.\r\n\r\n.\r\n"
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], original).code == 250
    [m] = backend.wait_stored(1)
    assert_relayed(m, original)


def test_empty_message(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        c.expect("DATA", 354)
        c.send(b".\r\n")
        assert c.reply().code == 250
    [m] = backend.wait_stored(1)
    assert_relayed(m, b"")


# ------------------------------------------------ backend replies pass through

def test_unknown_user_verbatim(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<unknown@example.test>")
        assert r.lines == ["550 5.1.1 <unknown@example.test>: User unknown"]


def test_backend_multiline_reply_verbatim(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<multiline@example.test>")
        assert r.lines == ["550-5.7.1 <multiline@example.test>: first line", "550 5.7.1 second line"]


def test_end_of_data_reply_is_the_backends(moat, backend):
    """The client's 250 is the backend's own reply (so it came after the backend's 250)."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        r = c.transaction(SENDER, [RCPT], b"Subject: q\r\n\r\nx\r\n")
    [m] = backend.wait_stored(1)
    assert r.lines == ["250 2.0.0 Ok: queued as %d" % m.n]


def test_backend_rcpt_tempfail_verbatim(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<tempfail@example.test>")
        assert r.lines == ["450 4.2.0 <tempfail@example.test>: Recipient temporarily unavailable"]


def test_mixed_recipients(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("RCPT TO:<%s>" % RCPT).code == 250
        assert c.cmd("RCPT TO:<unknown@example.test>").code == 550
        assert c.cmd("RCPT TO:<tempfail@example.test>").code == 450
        assert c.cmd("RCPT TO:<carol@example.test>").code == 250
        assert c.data(b"Subject: mixed\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == [RCPT, "carol@example.test"]


def test_backend_rejects_sender(moat, backend):
    """moat sends MAIL to the backend at the first RCPT; the backend's refusal
    of the sender reaches the client verbatim (at RCPT) and nothing is relayed."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<reject-mail@example.org>", 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        assert r.lines == ["550 5.7.1 <reject-mail@example.org>: Sender rejected"]
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
        # the session recovers
        c.expect("RSET", 250)
        assert c.transaction(SENDER, [RCPT], b"Subject: after\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.mail_from == SENDER


@pytest.mark.parametrize("rcpt,line", [
    ("reject-data@example.test", "554 5.6.0 Message content rejected"),
    ("tempfail-data@example.test", "451 4.3.0 Error: queue file write error"),
])
def test_backend_end_of_data_reply_verbatim(moat, backend, rcpt, line):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        r = c.transaction(SENDER, [rcpt], b"Subject: no\r\n\r\nx\r\n")
        assert r.lines == [line]
        # the same session and backend connection go on
        r = c.transaction(SENDER, [RCPT], b"Subject: yes\r\n\r\nx\r\n")
        assert r.code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == [RCPT]


# ------------------------------------------------------------ backend failures

def test_backend_down(moat_factory):
    m = moat_factory(_backend=None)
    for _ in range(2):
        with SMTPClient(m.port) as c:
            c.ehlo()
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            r = c.cmd("RCPT TO:<%s>" % RCPT, timeout=40)
            assert r.lines == ["451 4.4.1 Error: backend unavailable, try again later"]
            r = c.cmd("DATA")
            assert r.code in (503, 554), r
            c.expect("QUIT", 221)
    assert m.proc.poll() is None, "moat died"


@pytest.mark.parametrize("magic", ["drop-data", "drop-after-data"])
def test_backend_drops_connection_during_data(moat, backend, magic):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        body = b"Subject: lost\r\n\r\n" + b"y" * 200000 + b"\r\n"
        r = c.transaction(SENDER, ["%s@example.test" % magic], body)
        assert r.lines == ["451 4.4.2 Error: backend connection lost, try again later"]
        backend.wait_event(lambda e: e[0] == "DROP")
        # moat opens a new backend connection for the next transaction
        r = c.transaction(SENDER, [RCPT], b"Subject: next\r\n\r\nx\r\n")
        assert r.code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == [RCPT]
    assert len(backend.stored_events()) == 1


def test_client_disconnects_mid_data(moat, backend):
    c = SMTPClient(moat.port)
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % RCPT, 250)
    c.expect("DATA", 354)
    c.send(b"Subject: half\r\n\r\nsome of the body\r\nand no end")
    c.close()
    moat.wait_session_end(1)
    # a later session works, and nothing of the broken one was delivered
    with SMTPClient(moat.port) as c2:
        c2.ehlo()
        assert c2.transaction(SENDER, ["later@example.test"], b"Subject: later\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == ["later@example.test"]
    data_cmds = [(s, x) for s, x in backend.command_events() if x.upper() == "DATA"]
    assert len(data_cmds) == 1, "backend got DATA for the aborted transaction: %r" % data_cmds


def test_refused_transaction_never_reaches_backend(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.cmd("RCPT TO:bad")
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("QUIT", 221)
    moat.wait_session_end(1)
    assert not [x for x in backend.commands() if x.upper().startswith(("MAIL", "RCPT", "DATA"))]


def test_backend_comes_back(moat_factory, backend_factory):
    """Backend down at start: 451 4.4.1; once it listens, mail flows."""
    port = free_port()
    m = moat_factory(backend="127.0.0.1:%d" % port)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("RCPT TO:<%s>" % RCPT, timeout=40).code == 451
    be = backend_factory(port=port)
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: back\r\n\r\nx\r\n").code == 250
    be.wait_stored(1)


def test_client_rset_resets_backend_transaction(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<first@example.org>", 250)
        c.expect("RCPT TO:<dropped@example.test>", 250)   # the backend has MAIL+RCPT now
        c.expect("RSET", 250)
        assert c.transaction(SENDER, [RCPT], b"Subject: after rset\r\n\r\nx\r\n").code == 250
        c.expect("MAIL FROM:<third@example.org>", 250)
        c.expect("RCPT TO:<dropped2@example.test>", 250)
        c.ehlo()                                          # EHLO also ends the transaction
        assert c.transaction(SENDER, ["carol@example.test"], b"Subject: after ehlo\r\n\r\nx\r\n").code == 250
    msgs = backend.wait_stored(2)
    assert [(m.mail_from, m.rcpts) for m in msgs] == [(SENDER, [RCPT]), (SENDER, ["carol@example.test"])]


def test_backend_connection_closed_when_client_leaves(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: q\r\n\r\nx\r\n").code == 250
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
    # client vanished mid-transaction (no QUIT): moat must not keep the backend connection
    [m] = backend.wait_stored(1)
    backend.wait_event(lambda e: e[0] == "CLOSE" and int(e[1]) == m.session,
                       what="backend connection of the session closed")
    assert m.session in backend.sessions()


def test_very_long_line_in_data(moat, backend):
    original = b"Subject: long\r\n\r\n" + b"L" * 400000 + b"\r\n.end\r\n"
    with SMTPClient(moat.port, timeout=30) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], original).code == 250
    [m] = backend.wait_stored(1)
    assert_relayed(m, original)


def test_connection_reused_for_transactions(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        for i in range(3):
            r = c.transaction(SENDER, ["r%d@example.test" % i], b"Subject: %d\r\n\r\nx\r\n" % i)
            assert r.code == 250
        c.expect("QUIT", 221)
    msgs = backend.wait_stored(3)
    assert len({m.session for m in msgs}) == 1, "one backend connection per client session: %r" % msgs
    cmds = [x.upper().split(":")[0].split()[0] for x in backend.commands(msgs[0].session)]
    assert cmds.count("EHLO") == 1, cmds


def test_rset_between_backend_transactions(moat, backend):
    """The brief: the backend connection is reused "(RSET in between)"."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        for i in range(3):
            r = c.transaction(SENDER, ["r%d@example.test" % i], b"Subject: %d\r\n\r\nx\r\n" % i)
            assert r.code == 250
        c.expect("QUIT", 221)
    msgs = backend.wait_stored(3)
    cmds = [x.upper().split(":")[0].split()[0] for x in backend.commands(msgs[0].session)]
    mails = [i for i, x in enumerate(cmds) if x == "MAIL"]
    for a, b in zip(mails, mails[1:]):
        assert "RSET" in cmds[a:b], "no RSET between transactions: %r" % cmds


# ---------------------------------------------------------------- limits

def test_recipient_limit(moat_factory, backend):
    m = moat_factory(max_recipients=3)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        for i in range(3):
            c.expect("RCPT TO:<r%d@example.test>" % i, 250)
        for i in range(3, 5):
            r = c.cmd("RCPT TO:<r%d@example.test>" % i)
            assert r.lines == ["452 4.5.3 Error: too many recipients"]
        assert c.data(b"Subject: limit\r\n\r\nx\r\n").code == 250
    [msg] = backend.wait_stored(1)
    assert msg.rcpts == ["r0@example.test", "r1@example.test", "r2@example.test"]


def test_default_recipient_limit_is_100(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.send("".join("RCPT TO:<r%d@example.test>\r\n" % i for i in range(101)))
        codes = [c.reply().code for _ in range(101)]
        assert codes == [250] * 100 + [452]


def test_size_param_over_limit(moat_factory, backend):
    m = moat_factory(max_message_size=2000)
    with SMTPClient(m.port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s> SIZE=2001" % SENDER)
        assert r.lines == ["552 5.3.4 Message size exceeds fixed limit"]
        c.expect("MAIL FROM:<%s> SIZE=2000" % SENDER, 250)


def test_actual_size_over_limit(moat_factory, backend):
    m = moat_factory(max_message_size=2000)
    with SMTPClient(m.port) as c:
        c.ehlo()
        big = b"Subject: big\r\n\r\n" + (b"z" * 78 + b"\r\n") * 100  # 8 KB
        r = c.transaction(SENDER, [RCPT], big)
        assert r.lines == ["552 5.3.4 Message size exceeds fixed limit"]
        # huge, and in one burst: moat keeps reading to the end and stays in sync
        r = c.transaction(SENDER, [RCPT], b"Subject: huge\r\n\r\n" + (b"q" * 998 + b"\r\n") * 3000)
        assert r.lines == ["552 5.3.4 Message size exceeds fixed limit"]
        small = b"Subject: small\r\n\r\nok\r\n"
        assert c.transaction(SENDER, ["small@example.test"], small).code == 250
    [msg] = backend.wait_stored(1)
    assert msg.rcpts == ["small@example.test"]
    data_cmds = [x for x in backend.commands() if x.upper() == "DATA"]
    assert len(data_cmds) == 1, "oversized messages reached the backend"


def test_large_messages_spill_and_spool_is_cleaned(moat, backend):
    rng = random.Random(7)
    originals = {}
    with SMTPClient(moat.port, timeout=60) as c:
        c.ehlo()
        for i, size in enumerate((300 * 1024, 1024 * 1024, 5 * 1024 * 1024)):
            line = bytes(rng.randrange(0x20, 0x7f) for _ in range(998)) + b"\r\n"
            body = b"Subject: big %d\r\n\r\n" % i + b"." + line * (size // 1000)
            originals["big%d@example.test" % i] = body
            r = c.transaction(SENDER, ["big%d@example.test" % i], body, timeout=60)
            assert r.code == 250, r
        c.expect("QUIT", 221)
    for m in backend.wait_stored(3, timeout=60):
        assert_relayed(m, originals[m.rcpts[0]])
    moat.wait_session_end(1)
    spool = moat.config["spool_dir"]
    assert os.listdir(spool) == [], "files left in spool_dir: %r" % os.listdir(spool)


# ------------------------------------------------------ SMTPUTF8 / DSN / relay

def _ehlo_keywords(port):
    with SMTPClient(port) as c:
        return [t.upper().split()[0] for t in c.ehlo().texts[1:]]


def test_smtputf8_and_dsn_advertised_when_backend_offers(backend_factory, moat_factory):
    be = backend_factory(ehlo_ext="SMTPUTF8,DSN")
    m = moat_factory(_backend=be)
    # moat may learn the backend's capabilities only by talking to it: do one delivery first
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: warm\r\n\r\nx\r\n").code == 250
    kws = _ehlo_keywords(m.port)
    assert "SMTPUTF8" in kws and "DSN" in kws, kws
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<j\u00fcrgen@example.org> SMTPUTF8 RET=HDRS ENVID=abc123", 250)
        c.expect("RCPT TO:<b\u00f6b@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test", 250)
        assert c.data("Subject: \u00fc\r\n\r\n\u00fc\r\n".encode()).code == 250
    msg = be.wait_stored(2)[1]
    assert msg.mail_from == "j\u00fcrgen@example.org"
    assert msg.rcpts == ["b\u00f6b@example.test"]
    assert sorted(p.upper() for p in msg.mail_params) == ["ENVID=ABC123", "RET=HDRS", "SMTPUTF8"]
    assert msg.rcpt_params == [["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@example.test"]]


def test_smtputf8_and_dsn_not_offered_by_backend(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: warm\r\n\r\nx\r\n").code == 250
    kws = _ehlo_keywords(moat.port)
    assert "SMTPUTF8" not in kws and "DSN" not in kws, kws
    with SMTPClient(moat.port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER)
        assert r.code == 555 and "SMTPUTF8" in r.text, r
        r = c.cmd("MAIL FROM:<%s> RET=FULL" % SENDER)
        assert r.code == 555 and "RET" in r.text, r
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<%s> NOTIFY=NEVER" % RCPT)
        assert r.code == 555 and "NOTIFY" in r.text, r


def test_foreign_recipient_not_relayed(moat, backend):
    """local_domains = example.test: an untrusted client cannot relay elsewhere."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<victim@elsewhere.example>")
        assert 500 <= r.code < 600, r
    moat.wait_session_end(1)
    assert not [x for x in backend.commands() if "elsewhere.example" in x]


# ----------------------------------------------------------- concurrency

def test_200_parallel_sessions(moat_factory, backend):
    m = moat_factory(max_connections=1000, max_connections_per_ip=1000)
    n = 200
    barrier = threading.Barrier(n, timeout=60)
    ids = ["<%s@parallel.test>" % uuid.uuid4().hex for _ in range(n)]
    errors = []

    def worker(i):
        try:
            with SMTPClient(m.port, timeout=60) as c:
                c.ehlo()
                barrier.wait()
                msg = b"Message-ID: %s\r\nSubject: p%d\r\n\r\nbody %d\r\n" % (ids[i].encode(), i, i)
                r = c.transaction(SENDER, ["p%d@example.test" % i], msg, timeout=60)
                if r.code != 250:
                    errors.append((i, r))
                c.expect("QUIT", 221)
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    stored = backend.wait_stored(n, timeout=60)
    got = {}
    for msg in stored:
        mid = re.search(rb"^Message-ID: (<[^>]+>)", msg.data, re.M).group(1).decode()
        got[mid] = got.get(mid, 0) + 1
    assert sorted(got) == sorted(ids)
    assert set(got.values()) == {1}, "duplicates: %r" % {k: v for k, v in got.items() if v != 1}
    assert len(stored) == n


def test_swaks(moat, backend):
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % moat.port, "--to", "a@example.test",
                        "--from", "b@example.org", "--header", "Subject: swaks test",
                        "--body", "hello from swaks"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-2000:]
    [m] = backend.wait_stored(1)
    assert m.mail_from == "b@example.org" and m.rcpts == ["a@example.test"]
    assert b"hello from swaks" in m.data and b"Subject: swaks test" in m.data
    prepended_fields(m.data, m.data[m.data.index(b"Date:"):])


def test_swaks_pipelining(moat, backend):
    r = subprocess.run(["swaks", "--pipeline", "--server", "127.0.0.1:%d" % moat.port,
                        "--to", "a@example.test,c@example.test", "--from", "b@example.org"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-2000:]
    [m] = backend.wait_stored(1)
    assert m.rcpts == ["a@example.test", "c@example.test"]


# ------------------------------------------------------- misbehaving backends

@pytest.mark.parametrize("magic", ["drop-rcpt", "garbage", "hugereply"])
def test_broken_backend_at_rcpt(moat, backend, magic):
    """A backend that vanishes, answers gibberish or an oversized reply at RCPT
    (MOAT_BACKEND_REPLY_MAX is 8192): the client gets a 4xx, moat recovers."""
    with SMTPClient(moat.port, timeout=40) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<%s@example.test>" % magic)
        assert 400 <= r.code < 500 and (r.enhanced()[0] or "").startswith("4.4."), r
        c.expect("RSET", 250)
        assert c.transaction(SENDER, [RCPT], b"Subject: after %s\r\n\r\nx\r\n" % magic.encode()).code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == [RCPT]


@pytest.mark.parametrize("verb", ["RSET", "XFORWARD", "MAIL"])
def test_421_inside_the_command_group(moat_factory, verb):
    """A backend that says 421 (closing) to a command of the group [RSET] [XFORWARD] MAIL RCPT
    sends no further reply: the client's RCPT gets moat's 451 at once. (It used to wait for a
    reply that never came, until the client gave up.)"""
    from fakebackend import FakeBackend

    fb = FakeBackend(replies={verb: "421 4.3.2 Service shutting down"},
                     ehlo=("PIPELINING", "XFORWARD NAME ADDR PROTO HELO"))
    try:
        m = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_cache_time=30)
        m.wait_log(lambda l: l.get("event") == "backend_probe")
        with SMTPClient(m.port, timeout=5) as c:
            c.ehlo()
            if verb == "RSET":   # a reused connection starts with RSET: reuse one
                c.expect("MAIL FROM:<%s>" % SENDER, 250)
                fb.replies.pop(verb)
                c.expect("RCPT TO:<%s>" % RCPT, 250)
                fb.replies[verb] = "421 4.3.2 Service shutting down"
                c.expect("RSET", 250)
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            r = c.cmd("RCPT TO:<%s>" % RCPT)
            assert (r.code, r.enhanced()) == (451, ["4.4.1"]), r
        d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("code") == 451)
        assert d["reason"] == "backend closing: 421 4.3.2 Service shutting down", d
    finally:
        fb.stop()


def test_pipelining_with_slow_backend(backend_factory, moat_factory):
    be = backend_factory(slow=1)
    m = moat_factory(_backend=be)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<slowrcpt@example.test>\r\nRCPT TO:<unknown@example.test>\r\n"
               "RCPT TO:<%s>\r\nNOOP\r\nDATA\r\n" % (SENDER, RCPT))
        replies = [c.reply() for _ in range(6)]
        assert [r.code for r in replies] == [250, 250, 550, 250, 250, 354], replies
        c.send(dotstuff(b"Subject: slow pipe\r\n\r\nx\r\n"))
        assert c.reply().code == 250
    [msg] = be.wait_stored(1)
    assert msg.rcpts == ["slowrcpt@example.test", RCPT]


def test_client_gone_while_backend_busy(backend_factory, moat_factory):
    be = backend_factory(slow=1)
    m = moat_factory(_backend=be)
    c = SMTPClient(m.port)
    c.ehlo()
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<slow@example.test>\r\nDATA\r\n" % SENDER)
    assert [c.reply().code for _ in range(3)] == [250, 250, 354]
    c.send(dotstuff(b"Subject: gone\r\n\r\nx\r\n"))
    be.wait_event(lambda e: e[0] == "SLOW")
    c.close()                       # moat now has a backend reply for nobody
    m.wait_session_end(1)
    with SMTPClient(m.port) as c2:
        c2.ehlo()
        assert c2.transaction(SENDER, [RCPT], b"Subject: next\r\n\r\nx\r\n").code == 250
    be.wait_stored(2)


# ------------------------------------------------------ framing and resources

def test_random_write_boundaries(moat, backend):
    """Messages sent in tiny random pieces: CR and LF of one CRLF, the dots of
    stuffed lines and the terminator all get split across reads."""
    rng = random.Random(2920)
    originals = {}
    with SMTPClient(moat.port, timeout=30) as c:
        c.ehlo()
        for i in range(12):
            body = (b"Subject: pieces %d\r\n\r\n" % i
                    + b"\r\n".join(random_line(rng) for _ in range(30)).replace(b"x" * 5000, b"x" * 50)
                    + b"\r\n.\r\n..\r\n\r\n")
            rcpt = "piece%d@example.test" % i
            originals[rcpt] = body
            c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, rcpt))
            assert [c.reply().code for _ in range(3)] == [250, 250, 354]
            wire = dotstuff(body)
            pos = 0
            while pos < len(wire):
                n = 1 if i % 3 == 0 else rng.randrange(1, 8)
                c.send(wire[pos:pos + n])
                pos += n
            assert c.reply().code == 250
    for m in backend.wait_stored(12):
        assert_relayed(m, originals[m.rcpts[0]])


def test_two_transactions_in_one_write(moat, backend):
    m1 = b"Subject: one\r\n\r\n.first\r\n"
    m2 = b"Subject: two\r\n\r\nsecond\r\n"
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<one@example.test>\r\nDATA\r\n")
        assert [c.reply().code for _ in range(3)] == [250, 250, 354]
        c.send(dotstuff(m1) + b"MAIL FROM:<a@example.org>\r\nRCPT TO:<two@example.test>\r\nDATA\r\n")
        assert [c.reply().code for _ in range(4)] == [250, 250, 250, 354]
        c.send(dotstuff(m2) + b"QUIT\r\n")
        assert [c.reply().code for _ in range(2)] == [250, 221]
    msgs = backend.wait_stored(2)
    assert [m.rcpts for m in msgs] == [["one@example.test"], ["two@example.test"]]
    assert_relayed(msgs[0], m1)
    assert_relayed(msgs[1], m2)


def test_huge_command_line_one_error(moat):
    with SMTPClient(moat.port, timeout=20) as c:
        c.ehlo()
        c.send(b"NOOP " + b"x" * 300000 + b"\r\nNOOP\r\n")
        r = c.reply()
        assert r.lines == ["500 5.5.2 Error: line too long"]
        r = c.reply()
        assert r.lines == ["250 2.0.0 OK"], "one over-long line must give exactly one error reply: %r" % r


def test_many_pipelined_commands_without_reading(moat):
    """20000 NOOPs sent before reading a single reply: moat applies back
    pressure instead of dropping or reordering (MOAT_CLIENT_OUTPUT_MAX)."""
    n = 20000
    with SMTPClient(moat.port, timeout=30) as c:
        c.ehlo()
        t = threading.Thread(target=c.send, args=(b"NOOP\r\n" * n + b"QUIT\r\n",))
        t.start()
        for i in range(n):
            r = c.reply()
            assert r.code == 250, (i, r)
        assert c.reply().code == 221
        t.join(30)


def test_long_helo_received_lines_fit(moat, backend):
    """RFC 5322 2.1.1: header lines at most 998 octets, even for a huge HELO."""
    helo = "h" * 1500
    with SMTPClient(moat.port) as c:
        r = c.cmd("EHLO " + helo)
        assert r.code in (250, 501), r
        if r.code != 250:
            c.ehlo("h" * 250)
        assert c.transaction(SENDER, [RCPT], b"Subject: helo\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    fields = prepended_fields(m.data, b"Subject: helo\r\n\r\nx\r\n")
    for f in fields:
        for line in f.split(b"\r\n"):
            assert len(line) <= 998, "prepended header line of %d octets" % len(line)


def test_parallel_large_messages(moat_factory, backend):
    """Several messages over MOAT_SPOOL_MEM_MAX at once: no spool file mix-ups."""
    m = moat_factory(max_connections_per_ip=100)
    n = 12
    bodies = {}
    rng = random.Random(99)
    for i in range(n):
        line = bytes(rng.randrange(0x21, 0x7f) for _ in range(500)) + b"\r\n"
        bodies["big%d@example.test" % i] = b"Subject: par %d\r\n\r\n" % i + line * 1200
    errors = []
    barrier = threading.Barrier(n, timeout=30)

    def worker(rcpt):
        try:
            with SMTPClient(m.port, timeout=60) as c:
                c.ehlo()
                barrier.wait()
                r = c.transaction(SENDER, [rcpt], bodies[rcpt], timeout=60)
                if r.code != 250:
                    errors.append((rcpt, r))
        except Exception as e:  # noqa: BLE001
            errors.append((rcpt, repr(e)))

    threads = [threading.Thread(target=worker, args=(r,)) for r in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors
    msgs = backend.wait_stored(n, timeout=60)
    for msg in msgs:
        assert_relayed(msg, bodies[msg.rcpts[0]])


def _fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_no_descriptor_leak(moat, backend):
    """After sessions ending in every way, moat holds no more descriptors than before."""
    def one_round(i):
        # normal delivery
        with SMTPClient(moat.port) as c:
            c.ehlo()
            assert c.transaction(SENDER, [RCPT], b"Subject: fd\r\n\r\nx\r\n").code == 250
            c.expect("QUIT", 221)
        # client vanishes mid-DATA (after the backend connection was opened)
        c = SMTPClient(moat.port)
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        assert [c.reply().code for _ in range(3)] == [250, 250, 354]
        c.send(b"partial")
        c.close()
        # backend drops during DATA
        with SMTPClient(moat.port) as c:
            c.ehlo()
            assert c.transaction(SENDER, ["drop-data@example.test"], b"Subject: d\r\n\r\nx\r\n").code == 451
        # large (spooled) message, client leaves without QUIT
        with SMTPClient(moat.port) as c:
            c.ehlo()
            assert c.transaction(SENDER, [RCPT], b"Subject: big\r\n\r\n" + b"b" * 300000 + b"\r\n").code == 250

    one_round(0)
    moat.wait_session_end(4)
    backend.wait_all_closed()
    before = _fd_count(moat.proc.pid)
    rounds = 15
    for i in range(rounds):
        one_round(i + 1)
    moat.wait_session_end(4 * (rounds + 1))
    # moat closes the backend connection of every finished session
    backend.wait_all_closed()
    after = _fd_count(moat.proc.pid)
    assert after <= before + 1, "moat holds %d descriptors after %d rounds, %d before: %r" % (
        after, rounds, before, sorted(os.listdir("/proc/%d/fd" % moat.proc.pid)))
    assert os.listdir(moat.config["spool_dir"]) == []


def test_backend_connection_ends_with_quit(moat, backend):
    """backend_cache_time = 0: the session's idle backend connection is
    closed with a QUIT the backend reads, not just dropped."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: q\r\n\r\nx\r\n").code == 250
        c.cmd("QUIT")
    [m] = backend.wait_stored(1)
    backend.wait_event(lambda e: e[0] == "CLOSE" and int(e[1]) == m.session, what="CLOSE")
    assert backend.commands(m.session)[-1].upper() == "QUIT", backend.commands(m.session)


def test_backend_refuses_data_command_verbatim(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        r = c.transaction(SENDER, ["reject-datacmd@example.test"], b"Subject: no\r\n\r\nx\r\n")
        assert r.lines == ["554 5.7.0 DATA refused by policy"]
        assert c.transaction(SENDER, [RCPT], b"Subject: yes\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == [RCPT]


def test_backend_closes_between_rcpt_and_data(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<close-after-rcpt@example.test>", 250)
        backend.wait_event(lambda e: e[0] == "DROP")
        c.expect("DATA", 354)
        c.send(dotstuff(b"Subject: orphan\r\n\r\nx\r\n"))
        r = c.reply()
        assert r.code == 451 and r.enhanced() == ["4.4.2"], r
        assert c.transaction(SENDER, [RCPT], b"Subject: next\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == [RCPT]


def test_client_half_close_after_pipelined_quit(moat, backend):
    """A client that sends the whole transaction and QUIT, then shuts down its
    sending side, still gets its replies and the message is delivered once."""
    import socket as _s
    c = SMTPClient(moat.port)
    c.send(b"EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
    assert [c.reply().code for _ in range(4)] == [250, 250, 250, 354]
    c.send(dotstuff(b"Subject: half close\r\n\r\nx\r\n") + b"QUIT\r\n")
    c.sock.shutdown(_s.SHUT_WR)
    assert c.reply().code == 250
    assert c.reply().code == 221
    c.close()
    [m] = backend.wait_stored(1)
    assert m.data.endswith(b"Subject: half close\r\n\r\nx\r\n")


@pytest.mark.parametrize("mail,rcpt", [
    ("j\u00fcrgen@example.org", RCPT),
    (SENDER, "b\u00f6b@example.test"),
], ids=["sender", "recipient"])
def test_utf8_address_needs_smtputf8(backend_factory, moat_factory, mail, rcpt):
    """RFC 6531: a non-ASCII address without the SMTPUTF8 parameter is refused."""
    be = backend_factory(ehlo_ext="SMTPUTF8")
    m = moat_factory(_backend=be)
    with SMTPClient(m.port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s>" % mail)
        if r.code == 250:
            r = c.cmd("RCPT TO:<%s>" % rcpt)
        assert 500 <= r.code < 600, r
    m.wait_session_end(1)
    assert not [x for x in be.commands() if x.upper().startswith("RCPT")]


def test_backend_connection_cached_for_the_next_session(moat_factory, backend):
    """With backend_cache_time, a session's idle backend connection serves the
    next session (after RSET, with its own XFORWARD-less MAIL): one backend
    connection for several client sessions, each message delivered once to
    its own recipients; a connection lost in a transaction is not reused."""
    m = moat_factory(backend_cache_time=30)
    backend.wait_event(lambda e: e[0] == "CONNECT", what="the probe's CONNECT")
    backend.wait_all_closed()
    before = len([e for e in backend.events.snapshot() if e[0] == "CONNECT"])
    for k in range(5):
        with SMTPClient(m.port) as c:
            c.ehlo()
            r = c.transaction(SENDER, ["user%d@example.test" % k], b"Subject: %d\r\n\r\nx\r\n" % k)
            assert r.code == 250, r
            c.cmd("QUIT")
        m.wait_session_end(k + 1)
    msgs = backend.wait_stored(5)
    assert sorted(x.rcpts[0] for x in msgs) == ["user%d@example.test" % k for k in range(5)]
    events = backend.events.snapshot()
    assert len([e for e in events if e[0] == "CONNECT"]) == before + 1, events
    cmds = [e[2].upper() for e in events if e[0] == "CMD"]
    assert cmds.count("RSET") >= 4, cmds
    # the backend drops the connection in a transaction: the next session
    # opens a new one and still delivers
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, ["drop-after-data@example.test"], b"Subject: d\r\n\r\nx\r\n").code == 451
    m.wait_session_end(6)
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: after\r\n\r\nx\r\n").code == 250
    assert len(backend.wait_stored(6)) == 6
