"""moat's own SMTP dialogue: banner, EHLO/HELO, sequence and syntax errors,
the commands it answers itself, pipelining and line limits.
Replies are checked against docs/SPEC-replies.txt."""

import pytest

from moatlib import HOSTNAME, SMTPClient, dotstuff

SENDER = "alice@example.org"
RCPT = "bob@example.test"


@pytest.fixture
def client(moat):
    c = SMTPClient(moat.port)
    yield c
    c.close()


def test_banner(client):
    assert client.banner.lines == ["220 %s ESMTP moat" % HOSTNAME]


def test_ehlo_capabilities(client):
    r = client.cmd("EHLO client.example.org")
    assert r.code == 250
    assert len(r.lines) > 1, "EHLO reply must be multi-line: %r" % r
    assert r.lines[0] == "250-" + HOSTNAME
    kws = [t.upper() for t in r.texts[1:]]
    for k in ("PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES"):
        assert k in kws, "%s missing from EHLO: %r" % (k, r.lines)
    # the plain backend offers neither, and moat implements none of the rest
    for k in ("SMTPUTF8", "DSN", "STARTTLS", "AUTH", "CHUNKING", "XCLIENT", "XFORWARD"):
        assert not any(x.split()[0] == k for x in kws), "%s advertised: %r" % (k, r.lines)


def test_ehlo_size_is_max_message_size(moat_factory):
    m = moat_factory(max_message_size=123456)
    with SMTPClient(m.port) as c:
        r = c.ehlo()
        assert "SIZE 123456" in [t.upper() for t in r.texts]


def test_helo(client):
    r = client.cmd("HELO client.example.org")
    assert r.lines == ["250 " + HOSTNAME]
    # HELO is enough for a transaction
    client.expect("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")


@pytest.mark.parametrize("verb", ["HELO", "EHLO"])
def test_helo_ehlo_without_argument(client, verb):
    r = client.cmd(verb)
    assert r.lines == ["501 5.5.4 Syntax: %s hostname" % verb]


def test_mail_before_helo(client):
    r = client.cmd("MAIL FROM:<%s>" % SENDER)
    assert r.lines == ["503 5.5.1 Error: send HELO/EHLO first"]


def test_rcpt_before_helo(client):
    r = client.cmd("RCPT TO:<%s>" % RCPT)
    assert r.code == 503 and r.enhanced() == ["5.5.1"], r


def test_data_before_helo(client):
    r = client.cmd("DATA")
    assert r.code == 503 and r.enhanced() == ["5.5.1"], r


def test_nested_mail(client):
    client.ehlo()
    client.expect("MAIL FROM:<%s>" % SENDER, 250)
    r = client.cmd("MAIL FROM:<%s>" % SENDER)
    assert r.lines == ["503 5.5.1 Error: nested MAIL command"]


def test_rcpt_without_mail(client):
    client.ehlo()
    r = client.cmd("RCPT TO:<%s>" % RCPT)
    assert r.lines == ["503 5.5.1 Error: need MAIL command"]


def test_data_without_mail(client):
    client.ehlo()
    r = client.cmd("DATA")
    assert r.code == 503 and r.enhanced() == ["5.5.1"], r


def test_data_without_rcpt(client):
    client.ehlo()
    client.expect("MAIL FROM:<%s>" % SENDER, 250)
    r = client.cmd("DATA")
    assert r.lines == ["503 5.5.1 Error: need RCPT command"]


def test_data_all_rcpts_refused(client, backend):
    client.ehlo()
    client.expect("MAIL FROM:<%s>" % SENDER, 250)
    client.expect("RCPT TO:<unknown@example.test>", 550)
    r = client.cmd("DATA")
    assert r.lines == ["554 5.5.1 Error: no valid recipients"]
    # the session is still usable
    client.expect("RSET", 250, "2.0.0")


def test_ehlo_resets_transaction(client):
    client.ehlo()
    client.expect("MAIL FROM:<%s>" % SENDER, 250)
    client.ehlo()
    r = client.cmd("RCPT TO:<%s>" % RCPT)
    assert r.code == 503, "EHLO must reset the transaction (RFC 5321 4.1.4): %r" % r


def test_rset_clears_transaction(client):
    client.ehlo()
    client.expect("MAIL FROM:<%s>" % SENDER, 250)
    r = client.cmd("RSET")
    assert r.lines == ["250 2.0.0 OK"]
    r = client.cmd("RCPT TO:<%s>" % RCPT)
    assert r.lines == ["503 5.5.1 Error: need MAIL command"]
    client.expect("MAIL FROM:<%s>" % SENDER, 250)


def test_unknown_command(client):
    client.ehlo()
    r = client.cmd("FOOBAR baz")
    assert r.lines == ["500 5.5.2 Error: command not recognized"]


@pytest.mark.parametrize("line", ["EXPN staff", "STARTTLS", "AUTH PLAIN AGFAAGI=", "BDAT 10 LAST",
                                  "ETRN example.test", "TURN", "XCLIENT ADDR=1.2.3.4"])
def test_unimplemented_commands(client, line):
    client.ehlo()
    r = client.cmd(line)
    assert r.lines == ["502 5.5.1 Error: command not implemented"]
    client.expect("NOOP", 250)  # still in sync


@pytest.mark.parametrize("line,expected", [
    ("MAIL alice@example.org", "501 5.5.4 Syntax: MAIL FROM:<address>"),
    ("MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"),
    ("MAIL FROM: Alice <alice@example.org>", "501 5.1.7 Bad sender address syntax"),
    ("MAIL FROM:<alice@example.org", "501 5.5.4 Syntax: MAIL FROM:<address>"),
    ("MAIL FROM:<a@@example.org>", "501 5.1.7 Bad sender address syntax"),
    ("MAIL FROM:<alice@exa mple.org>", None),
    ("MAIL FROM:<%s@example.org>" % ("a" * 65), "501 5.1.7 Bad sender address syntax"),
])
def test_mail_syntax_errors(client, line, expected):
    client.ehlo()
    r = client.cmd(line)
    if expected:
        assert r.lines == [expected]
    else:
        assert r.code == 501 and r.enhanced()[0] in ("5.5.4", "5.1.7"), r
    # no transaction was opened
    assert client.cmd("RCPT TO:<%s>" % RCPT).code == 503


@pytest.mark.parametrize("line,expected", [
    ("RCPT bob@example.test", "501 5.5.4 Syntax: RCPT TO:<address>"),
    ("RCPT TO: ", "501 5.5.4 Syntax: RCPT TO:<address>"),
    ("RCPT TO: <>", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<bob@@example.test>", "501 5.1.3 Bad recipient address syntax"),
    ("RCPT TO:<>", None),
    ("RCPT TO:<%s@example.test>" % ("b" * 65), "501 5.1.3 Bad recipient address syntax"),
])
def test_rcpt_syntax_errors(client, backend, line, expected):
    client.ehlo()
    client.expect("MAIL FROM:<%s>" % SENDER, 250)
    r = client.cmd(line)
    if expected:
        assert r.lines == [expected]
    else:
        assert r.code == 501 and r.enhanced()[0] in ("5.5.4", "5.1.3"), r
    # refused by moat itself: the backend never saw the transaction
    assert not any(c.upper().startswith("MAIL") for c in backend.commands())


def test_paths_without_brackets_as_people_type_them(moat, client, backend):
    """Issue 13 (9): "MAIL FROM: a@b" and "RCPT TO: b@c", as typed in telnet, are taken as
    Postfix takes them (strict_rfc821_envelopes = no); the backend gets the address in
    brackets and every check (relaying, the log) sees that same address."""
    client.ehlo()
    client.expect("MAIL FROM: %s BODY=8BITMIME" % SENDER, 250, "2.1.0")
    client.expect("RCPT TO: %s" % RCPT, 250)
    client.expect("RCPT TO:carol@example.test", 250)
    r = client.cmd("RCPT TO: victim@elsewhere.example")     # the relay check sees it too
    assert r.lines == ["554 5.7.1 <victim@elsewhere.example>: Relay access denied"], r
    assert client.data(b"Subject: typed\r\n\r\nhi\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.mail_from == SENDER and m.rcpts == [RCPT, "carol@example.test"], m
    cmds = backend.commands()
    assert "MAIL FROM:<%s>" % SENDER in [c.split(" BODY")[0] for c in cmds], cmds
    assert "RCPT TO:<%s>" % RCPT in cmds, cmds
    moat.wait_log(lambda l: l.get("stage") == "data" and l.get("code") == 250)
    [d] = [l for l in moat.decisions() if l["stage"] == "data"]
    assert d["mail_from"] == SENDER and d["rcpt"] == RCPT + ",carol@example.test", d
    [relay] = [l for l in moat.decisions() if l["stage"] == "rcpt"]
    assert relay["rcpt"] == "victim@elsewhere.example" and relay["code"] == 554, relay


@pytest.mark.parametrize("line", ["MAIL FROM: %s" % SENDER, "MAIL FROM:%s" % SENDER,
                                  "MAIL FROM: %s SIZE=10" % SENDER])
def test_strict_envelopes_refuses_paths_without_brackets(moat_factory, line):
    m = moat_factory(strict_envelopes="yes")
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.cmd(line).lines == ["501 5.5.4 Syntax: MAIL FROM:<address>"]
        c.expect("MAIL FROM: <%s>" % SENDER, 250)
        assert c.cmd("RCPT TO: %s" % RCPT).lines == ["501 5.5.4 Syntax: RCPT TO:<address>"]
        c.expect("RCPT TO:<%s>" % RCPT, 250)


def test_unknown_mail_parameter(client):
    client.ehlo()
    r = client.cmd("MAIL FROM:<%s> FOO=BAR" % SENDER)
    assert r.code == 555 and r.text.startswith("5.5.4 Unsupported parameter:") and "FOO" in r.text, r


def test_unknown_rcpt_parameter(client):
    client.ehlo()
    client.expect("MAIL FROM:<%s>" % SENDER, 250)
    r = client.cmd("RCPT TO:<%s> XYZZY" % RCPT)
    assert r.code == 555 and r.text.startswith("5.5.4 Unsupported parameter:") and "XYZZY" in r.text, r


def test_size_parameter_within_limit(client):
    client.ehlo()
    client.expect("MAIL FROM:<%s> SIZE=1000 BODY=8BITMIME" % SENDER, 250, "2.1.0")


@pytest.mark.parametrize("size", ["10240001", "18446744073709551615", "99999999999999999999"])
def test_size_parameter_over_limit(client, size):
    client.ehlo()
    r = client.cmd("MAIL FROM:<%s> SIZE=%s" % (SENDER, size))
    assert r.lines == ["552 5.3.4 Message size exceeds fixed limit"]


def test_size_parameter_not_a_number(client):
    """RFC 1870: size-value = 1*20DIGIT; anything else is a syntax error."""
    client.ehlo()
    for bad in ("SIZE=", "SIZE=abc", "SIZE=-1", "SIZE=" + "9" * 21):
        r = client.cmd("MAIL FROM:<%s> %s" % (SENDER, bad))
        assert r.code == 501 and r.enhanced() == ["5.5.4"], (bad, r)


def test_vrfy(client):
    client.ehlo()
    r = client.cmd("VRFY bob")
    assert r.lines == ["252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"]


def test_help(client):
    r = client.cmd("HELP")
    assert r.code == 214
    assert all(e == "2.0.0" for e in r.enhanced()), r


def test_noop(client):
    r = client.cmd("NOOP")
    assert r.lines == ["250 2.0.0 OK"]
    r = client.cmd("NOOP with an argument")
    assert r.lines == ["250 2.0.0 OK"]


def test_quit(client):
    client.ehlo()
    r = client.cmd("QUIT")
    assert r.lines == ["221 2.0.0 Bye"]
    assert client.wait_closed(5) == b""


def test_commands_are_case_insensitive(client, backend):
    client.cmd("ehlo client.example.org")
    client.expect("mail from:<%s>" % SENDER, 250)
    client.expect("rcpt to:<%s>" % RCPT, 250)
    client.expect("noop", 250)
    client.expect("rset", 250)
    client.expect("quit", 221)


def test_enhanced_status_codes_on_every_reply(moat, client, backend):
    """Every reply except the greeting, EHLO/HELO and 354 carries an enhanced
    status code whose class matches the reply code (RFC 2034)."""
    steps = [
        "NOOP", "HELP", "VRFY bob", "MAIL FROM:<%s>" % SENDER, "FOO", "EXPN x",
        "HELO client.example.org", "EHLO client.example.org", "RCPT TO:<%s>" % RCPT,
        "DATA", "MAIL FROM:bad", "MAIL FROM:<%s> FOO=1" % SENDER,
        "MAIL FROM:<%s> SIZE=999999999" % SENDER, "MAIL FROM:<%s>" % SENDER,
        "MAIL FROM:<%s>" % SENDER, "RCPT TO:bad", "RCPT TO:<unknown@example.test>",
        "RCPT TO:<tempfail@example.test>", "RCPT TO:<%s>" % RCPT, "RSET", "QUIT",
    ]
    replies = []
    for s in steps:
        replies.append((s, client.cmd(s)))
    # a whole transaction
    c2 = SMTPClient(moat.port)
    c2.ehlo()
    for s in ("MAIL FROM:<%s>" % SENDER, "RCPT TO:<%s>" % RCPT):
        replies.append((s, c2.cmd(s)))
    r = c2.cmd("DATA")
    assert r.code == 354
    c2.send(dotstuff(b"Subject: t\r\n\r\nhi\r\n"))
    replies.append(("<end of data>", c2.reply()))
    replies.append(("QUIT", c2.cmd("QUIT")))
    c2.close()
    bad = []
    for s, r in replies:
        if s.split()[0] in ("HELO", "EHLO") and r.code == 250:
            continue
        for line, enh in zip(r.lines, r.enhanced()):
            if enh is None or enh[0] != str(r.code)[0]:
                bad.append("%s -> %s" % (s, line))
    assert not bad, "replies without a matching enhanced status code:\n" + "\n".join(bad)


def test_pipelined_transaction(client, backend):
    client.ehlo()
    client.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n" % (SENDER, RCPT))
    codes = [client.reply().code for _ in range(4)]
    assert codes == [250, 250, 250, 354]
    msg = b"Subject: pipelined\r\n\r\nbody\r\n"
    client.send(dotstuff(msg) + b"QUIT\r\n")
    assert client.reply().code == 250
    assert client.reply().lines == ["221 2.0.0 Bye"]
    [m] = backend.wait_stored(1)
    assert m.rcpts == [RCPT, "carol@example.test"]
    assert m.data.endswith(msg)


def test_pipelined_errors_keep_order(client, backend):
    client.ehlo()
    client.send("MAIL FROM:<%s>\r\nRCPT TO:<unknown@example.test>\r\nRCPT TO:bad\r\n"
                "RCPT TO:<%s>\r\nNOOP\r\nDATA\r\n" % (SENDER, RCPT))
    replies = [client.reply() for _ in range(6)]
    assert [r.code for r in replies] == [250, 550, 501, 250, 250, 354], replies
    assert replies[1].lines == ["550 5.1.1 <unknown@example.test>: User unknown"]
    client.send(dotstuff(b"Subject: x\r\n\r\ny\r\n"))
    assert client.reply().code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == [RCPT]


def test_pipelined_whole_session_in_one_write(moat, backend):
    """Everything, QUIT included, in a single write."""
    c = SMTPClient(moat.port)
    msg = b"Subject: one write\r\n\r\n.leading dot\r\n"
    c.send(b"EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
           + dotstuff(msg) + b"QUIT\r\n")
    codes = [c.reply().code for _ in range(6)]
    assert codes == [250, 250, 250, 354, 250, 221]
    c.wait_closed(5)
    [m] = backend.wait_stored(1)
    assert m.data.endswith(msg)


def test_line_too_long(client):
    client.ehlo()
    r = client.cmd("NOOP " + "x" * 3000)
    assert r.lines == ["500 5.5.2 Error: line too long"]
    # the rest of the long line was discarded and the session is in sync
    assert client.cmd("NOOP").lines == ["250 2.0.0 OK"]
    client.expect("MAIL FROM:<%s>" % SENDER, 250)


def test_line_length_limit_boundary(client):
    """MOAT_CMD_LINE_MAX is 2048 bytes, CRLF included (proxy/limits.h)."""
    client.ehlo()
    ok = "NOOP " + "x" * (2048 - 5 - 2)
    assert len(ok) + 2 == 2048
    assert client.cmd(ok).code == 250
    r = client.cmd(ok + "y")
    assert r.lines == ["500 5.5.2 Error: line too long"]
    assert client.cmd("NOOP").code == 250


def test_control_characters_in_command(client):
    client.ehlo()
    r = client.cmd(b"NOOP a\x00b")
    assert 500 <= r.code <= 501, r
    r = client.cmd(b"MAIL FROM:<a\x01@example.org>")
    assert 500 <= r.code <= 501, r
    assert client.cmd("NOOP").code == 250


def test_too_many_errors(client):
    client.ehlo()
    client.send("BOGUS\r\n" * 30)
    errors = 0
    while True:
        r = client.reply()
        if r.code == 421:
            break
        assert r.code == 500, r
        errors += 1
        assert errors <= 21, "no 421 after %d errors" % errors
    assert r.lines == ["421 4.7.0 %s Error: too many errors" % HOSTNAME]
    assert 19 <= errors <= 20, "421 after %d errors (MOAT_ERROR_LIMIT is 20)" % errors
    client.wait_closed(5)


def test_ehlo_address_literal(client):
    assert client.cmd("EHLO [127.0.0.1]").code == 250
    assert client.cmd("EHLO [IPv6:::1]").code == 250


def test_ipv6_and_several_listeners(moat_factory, backend):
    m = moat_factory(listen="127.0.0.1:0, [::1]:0")
    assert len(m.addrs) == 2, m.addrs
    v6 = [a for a in m.addrs if a.startswith("[::1]:")]
    assert v6, m.addrs
    port6 = int(v6[0].rsplit(":", 1)[1])
    with SMTPClient(port6, host="::1") as c:
        assert c.banner.code == 220
        c.ehlo()
        assert c.transaction("a@example.org", ["b@example.test"], b"Subject: v6\r\n\r\nx\r\n").code == 250
        c.expect("QUIT", 221)
    [end] = m.wait_session_end(1)
    assert end["client_ip"] == "::1"
    [msg] = backend.wait_stored(1)
    assert b"::1" in msg.data.split(b"Subject:")[0]
