"""moat's log: one JSON object per line; start-up lines; one decision line per
decision; a session_end line per session."""

import json
import signal

import pytest

from moatlib import SMTPClient

SENDER = "alice@example.org"
RCPT = "bob@example.test"
DECISION_FIELDS = ("ts", "session", "client_ip", "helo", "mail_from", "rcpt", "stage", "action",
                   "code", "reason", "spf", "dkim")


def strict_json_lines(m):
    out = []
    for raw in m.raw_lines:
        text = raw.decode("utf-8")          # strict: the log must be valid UTF-8
        assert text.endswith("\n"), "unterminated log line %r" % raw
        obj = json.loads(text)
        assert isinstance(obj, dict), text
        out.append(obj)
    return out


def test_startup_lines(moat):
    lines = moat.logs.snapshot()
    listening = [l for l in lines if l.get("event") == "listening"]
    ready = [i for i, l in enumerate(lines) if l.get("event") == "ready"]
    assert listening and ready
    assert lines.index(listening[-1]) < ready[0], "ready must come after every listening line"
    for l in listening + [lines[ready[0]]]:
        assert l.get("level") == "info" and "ts" in l, l
    assert listening[0]["addr"] == "127.0.0.1:%d" % moat.port


def test_every_line_is_json(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo('we"ird\\helo\xe9'.encode("latin-1").decode("latin-1"))
        c.cmd(b'MAIL FROM:<"quo\\"ted"@example.org>')
        c.cmd(b"RCPT TO:<unknown@example.test>")
        c.cmd(b"RCPT TO:<%s>" % RCPT.encode())
        c.data(b"Subject: x\r\n\r\ny\r\n")
        c.cmd(b"RSET")
        c.cmd(b"MAIL FROM:<\xff\xfe@example.org>")
        c.cmd(b"BOGUS \xc3\x28 \x7f")
        c.cmd("QUIT")
    with SMTPClient(moat.port) as c:
        c.send(b"EHLO " + b"h" * 1500 + b"\r\n")
        c.reply()
        c.send(b"MAIL FROM:<" + b"\xe4" * 60 + b"@example.org> SIZE=1\r\n")
        c.reply()
    moat.wait_session_end(2)
    moat.signal(signal.SIGTERM)
    assert moat.wait_exit(15) == 0
    assert not moat.noise, "non-JSON lines on stderr: %r" % moat.noise[:5]
    lines = strict_json_lines(moat)
    assert lines
    for l in lines:
        assert "ts" in l, l
        for k, v in l.items():
            if isinstance(v, str) and k not in ("addr",):
                assert len(v.encode()) <= 1200, "field %s is %d bytes: untrusted text is not capped" % (k, len(v))


def _session(moat, helo, actions):
    with SMTPClient(moat.port) as c:
        c.ehlo(helo)
        for a in actions:
            a(c)
        c.expect("QUIT", 221)
    [end] = moat.wait_session_end(1, pred=lambda l: True)
    return end


def test_reject_has_one_decision_line(moat, backend):
    def act(c):
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<unknown@example.test>", 550)
    end = _session(moat, "client.example.org", [act])
    sid = end["session"]
    rejects = [l for l in moat.decisions() if l.get("session") == sid and l.get("action") == "reject"]
    assert len(rejects) == 1, "expected one reject decision line, got %r" % rejects
    d = rejects[0]
    missing = [f for f in DECISION_FIELDS if f not in d]
    assert not missing, "decision line lacks %r: %r" % (missing, d)
    assert d["stage"] == "rcpt"
    assert d["code"] in (550, "550")
    assert d["client_ip"] == "127.0.0.1"
    assert d["helo"] == "client.example.org"
    assert d["mail_from"] == SENDER
    assert d["rcpt"] == "unknown@example.test"


def test_size_reject_decision(moat_factory, backend):
    m = moat_factory(max_message_size=2000)

    def act(c):
        c.expect("MAIL FROM:<%s> SIZE=5000" % SENDER, 552)
    end = _session(m, "client.example.org", [act])
    rejects = [l for l in m.decisions() if l.get("session") == end["session"] and l.get("action") == "reject"]
    assert len(rejects) == 1, rejects
    assert rejects[0]["stage"] == "mail" and rejects[0]["code"] in (552, "552"), rejects[0]


def test_tempfail_decision(moat_factory):
    m = moat_factory(_backend=None)

    def act(c):
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 451)
    end = _session(m, "client.example.org", [act])
    d = [l for l in m.decisions() if l.get("session") == end["session"] and l.get("action") == "tempfail"]
    assert len(d) == 1, d
    assert d[0]["stage"] == "rcpt" and d[0]["code"] in (451, "451")


def test_accepted_message_decision(moat, backend):
    def act(c):
        assert c.transaction(SENDER, [RCPT], b"Subject: ok\r\n\r\nx\r\n").code == 250
    end = _session(moat, "client.example.org", [act])
    acc = [l for l in moat.decisions() if l.get("session") == end["session"]
           and l.get("stage") == "data" and l.get("action") == "accept"]
    assert len(acc) == 1, moat.decisions()
    assert acc[0]["code"] in (250, "250") and acc[0]["rcpt"] in (RCPT, [RCPT]), acc[0]


def test_session_end_line(moat, backend):
    def act(c):
        assert c.transaction(SENDER, [RCPT], b"Subject: ok\r\n\r\nx\r\n").code == 250
        assert c.transaction(SENDER, [RCPT], b"Subject: ok2\r\n\r\nx\r\n").code == 250
    end = _session(moat, "client.example.org", [act])
    assert end["client_ip"] == "127.0.0.1"
    assert "ts" in end and end.get("session") not in (None, "")
    counts = {k: v for k, v in end.items() if isinstance(v, int) and not isinstance(v, bool)}
    assert counts, "session_end has no counts: %r" % end
    assert 2 in counts.values(), "session_end does not count the 2 messages: %r" % end
    # session ids are unique per session
    with SMTPClient(moat.port) as c:
        c.expect("QUIT", 221)
    ends = moat.wait_session_end(2)
    assert ends[0]["session"] != ends[1]["session"]


def test_log_to_file(moat_factory, backend, tmp_path):
    """log = PATH: the same JSON lines go to the file, nothing to stderr."""
    import time
    from moatlib import free_port
    path = tmp_path / "moat.log"
    port = free_port()
    m = moat_factory(log=str(path), listen="127.0.0.1:%d" % port, _start=False)
    m.start(wait_ready=False)

    def file_lines():
        if not path.exists():
            return []
        return [json.loads(l) for l in path.read_text().splitlines() if l.endswith("}")]

    # poll the file (an observable) for the ready line
    deadline = time.monotonic() + 10
    while not any(l.get("event") == "ready" for l in file_lines()):
        assert m.proc.poll() is None, m.stderr_text()
        assert time.monotonic() < deadline, "no ready line in %s" % path
        time.sleep(0.02)
    with SMTPClient(port) as c:
        c.ehlo()
        c.expect("QUIT", 221)
    deadline = time.monotonic() + 10
    while not any(l.get("event") == "session_end" for l in file_lines()):
        assert time.monotonic() < deadline, "no session_end in %s" % path
        time.sleep(0.02)
    for line in path.read_text().splitlines():
        assert isinstance(json.loads(line), dict)
    m.signal(signal.SIGTERM)
    assert m.wait_exit(10) == 0
    assert m.raw_lines == [], "log = file, yet moat wrote to stderr: %r" % m.raw_lines[:3]


def data_decision(m):
    return m.wait_log(lambda l: l.get("stage") == "data" and "action" in l, what="data decision")


def test_data_decision_names_the_message(moat, backend):
    """Issue 13 (5): the data-stage decision line says enough to find the message: the
    backend's queue id (from its "250 ... queued as N"), the first Message-ID and Subject
    as written (RFC 2047 words not decoded, unfolded, escaped only as JSON needs), the size."""
    msg = (b"Message-ID: <abc.123@example.org>\r\n"
           b"Subject: =?UTF-8?B?0J/RgNC40LLQtdGC?= \"quoted\" \\ tab\there\r\n"
           b"  folded\r\n"
           b"Subject: a second subject\r\n"
           b"Message-ID: <second@example.org>\r\n"
           b"\r\nbody\r\n")
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], msg).code == 250
    [m] = backend.wait_stored(1)
    d = data_decision(moat)
    assert d["action"] == "accept" and d["queue_id"] == str(m.n), (d, m)
    assert d["message_id"] == "<abc.123@example.org>", d
    assert d["subject"] == '=?UTF-8?B?0J/RgNC40LLQtdGC?= "quoted" \\ tab\there  folded', d
    assert d["size"] == len(msg), d


def test_data_decision_cuts_the_subject(moat, backend):
    """A long Subject is cut at 200 bytes, never inside a UTF-8 character; no Message-ID
    is an empty field."""
    subject = "Привет из консоли " * 20          # 33 bytes each: the cut falls inside a letter
    with SMTPClient(moat.port) as c:
        c.ehlo()
        msg = b"Subject: " + subject.encode() + b"\r\n\r\nx\r\n"
        assert c.transaction(SENDER, [RCPT], msg).code == 250
    d = data_decision(moat)
    got = d["subject"].encode("utf-8")
    assert len(got) <= 200 and subject.encode().startswith(got) and len(got) >= 198, got
    got.decode("utf-8")                               # whole characters only
    assert d["message_id"] == "", d


def test_data_refusal_names_the_message(moat_factory, backend):
    m = moat_factory(max_message_size=2000)
    with SMTPClient(m.port) as c:
        c.ehlo()
        msg = b"Message-ID: <big@example.org>\r\nSubject: too big\r\n\r\n" + b"x" * 3000 + b"\r\n"
        assert c.transaction(SENDER, [RCPT], msg).code == 552
    d = data_decision(m)
    assert d["action"] == "reject" and d["code"] == 552, d
    assert d["message_id"] == "<big@example.org>" and d["subject"] == "too big", d
    assert d["queue_id"] == "", d


@pytest.mark.parametrize("stage,line,code,logged", [
    ("mail", "MAIL FROM:<a@@example.org>", 501, "a@@example.org"),
    ("mail", "MAIL FROM:alice@example.org>", 501, "alice@example.org>"),
    ("mail", "MAIL FROM:<alice@example.org> FOO=1", 555, "alice@example.org"),
    ("mail", "MAIL FROM:<alice@example.org> SIZE=x", 501, "alice@example.org"),
    ("mail", "MAIL FROM:<j\xf6rg@example.org>", 553, "j\xf6rg@example.org"),
    ("mail", "MAIL FROM <alice@example.org>", 501, "FROM <alice@example.org>"),
    ("rcpt", "RCPT TO:<bob@@example.test>", 501, "bob@@example.test"),
    ("rcpt", "RCPT TO:<bob@example..test>", 501, "bob@example..test"),
    ("rcpt", "RCPT TO:<%s> NOTIFY=NEVER" % RCPT, 555, RCPT),
    ("rcpt", "RCPT TO:", 501, ""),
])
def test_syntax_refusal_is_a_decision_line(moat, backend, stage, line, code, logged):
    """Issue 13 (5): a MAIL or RCPT refused for its syntax is a decision line like any
    refusal, with the address as the client wrote it."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        if stage == "rcpt":
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd(line.encode("utf-8"))
        assert r.code == code, r
        c.expect("QUIT", 221)
    moat.wait_session_end(1)
    [d] = [l for l in moat.decisions() if l.get("action") == "reject"]
    assert d["stage"] == stage and d["code"] == code and d["reason"], d
    assert d["esc"] == r.enhanced()[0], (d, r)
    field = "mail_from" if stage == "mail" else "rcpt"
    assert d[field] == logged, d
    if stage == "rcpt":
        assert d["mail_from"] == SENDER, d


def test_too_many_errors_is_logged_as_the_421(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        codes = [c.cmd("MAIL FROM:<a@@b>").code for _ in range(20)]
        assert codes == [501] * 19 + [421], codes
    moat.wait_session_end(1)
    lines = [l for l in moat.decisions() if l.get("stage") == "mail"]
    assert [l["code"] for l in lines] == [501] * 19 + [421], lines


def test_trailing_dot_of_a_domain(moat, backend):
    """Issue 13 (5): "RCPT TO:<alice@EXAMPLE.COM.>" is taken as Postfix takes it, the root's
    dot dropped: the relay check sees EXAMPLE.COM, the backend gets what was checked."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s.>" % SENDER, 250)
        r = c.cmd("RCPT TO:<alice@EXAMPLE.COM.>")
        # %{rcpt} is the address as the rules see it: the domain lower-cased A-labels
        assert r.lines == ["554 5.7.1 <alice@example.com>: Relay access denied"], r
        c.expect("RCPT TO:<bob@EXAMPLE.TEST.>", 250)
        assert c.data(b"Subject: dot\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.mail_from == SENDER and m.rcpts == ["bob@EXAMPLE.TEST"], m
    assert "RCPT TO:<bob@EXAMPLE.TEST>" in backend.commands()
    refused = [l for l in moat.decisions() if l.get("stage") == "rcpt"]
    assert [(l["rcpt"], l["code"]) for l in refused] == [("alice@EXAMPLE.COM", 554)], refused
    d = data_decision(moat)
    assert d["mail_from"] == SENDER and d["rcpt"] == "bob@EXAMPLE.TEST" and d["spf"] == "pass", d
