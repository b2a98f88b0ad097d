"""AUTH passed on to the backend (issue 14, items 3 and 6), against the
recording backend offering AUTH PLAIN LOGIN (backend.py --auth): PLAIN with
an initial response and with a 334, LOGIN's two rounds, the backend's verdict
heard verbatim, "*", answers moat cannot read, the bound of an answer line,
the refusals before anything goes out; no credential in any log line; the
login name on decision lines and in an auth line per attempt; relaying and
the rules of an authenticated session; the authenticated backend connection
never pooled; the failure limit across workers. The same against a real
Postfix with Dovecot SASL: test_auth_postfix.py."""

import base64
import re
import time

import pytest

from moatlib import HOSTNAME, SMTPClient
from test_submission import certs, smtps, sub_moat  # noqa: F401 - the certs fixture
from test_tls import starttls

USER, PASSWORD = "alice", "Secret-Pa55word"
SENDER = "alice@example.test"
LOCAL = "bob@example.test"
REMOTE = "carol@elsewhere.example"
MSG = b"Subject: authenticated\r\n\r\nhello\r\n"


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user=USER, password=PASSWORD, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


@pytest.fixture
def abackend(backend_factory):
    return backend_factory(auth="%s:%s,bob:other-secret" % (USER, PASSWORD))


@pytest.fixture
def amoat(moat_factory, certs, abackend):  # noqa: F811 - the fixture imported above
    return sub_moat(moat_factory, certs, _backend=abackend)


def auth_lines(m, **match):
    return [l for l in m.logs.snapshot() if l.get("event") == "auth" and all(l.get(k) == v for k, v in match.items())]


def wait_auth(m, start=0, **match):
    return m.wait_log(lambda l: l.get("event") == "auth" and all(l.get(k) == v for k, v in match.items()),
                      start=start, what="auth line %r" % match)


def authed(port, how="smtps"):
    """A client after EHLO on smtps, or STARTTLS and EHLO on submission."""
    c = smtps(port) if how == "smtps" else starttls(port)
    c.ehlo()
    return c


# ------------------------------------------------------- the exchange

def test_plain_initial_response(amoat, abackend):
    with authed(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).lines == ["235 2.7.0 Authentication successful"]
        assert c.transaction(SENDER, [LOCAL], MSG).code == 250
    msg = abackend.wait_stored(1)[0]
    assert msg.auth_user == USER   # the message went over the connection that authenticated
    assert b"with ESMTPSA (TLSv1.3 cipher " in msg.data, msg.data[:500]
    line = wait_auth(amoat, result="success")
    assert line == {**line, "auth_user": USER, "mechanism": "PLAIN", "listener": "smtps", "code": 235, "esc": "2.7.0"}
    d = amoat.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == "data")
    assert d["auth_user"] == USER and d["listener"] == "smtps" and d["rule_id"] == "authenticated", d


def test_plain_after_334(amoat):
    with authed(amoat.ports["submission"], "submission") as c:
        assert c.cmd("AUTH PLAIN").lines == ["334 "]        # the backend's challenge, verbatim
        assert c.cmd(plain(authzid="admin")).code == 235     # the name is the authcid, not the authzid
    assert wait_auth(amoat, result="success")["auth_user"] == USER


def test_login_two_rounds(amoat):
    with authed(amoat.ports["submission"], "submission") as c:
        assert c.cmd("AUTH LOGIN").lines == ["334 VXNlcm5hbWU6"]
        assert c.cmd(b64(USER)).lines == ["334 UGFzc3dvcmQ6"]
        assert c.cmd(b64(PASSWORD)).code == 235
    line = wait_auth(amoat, result="success")
    assert line["mechanism"] == "LOGIN" and line["auth_user"] == USER


def test_login_initial_response(amoat):
    with authed(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH LOGIN " + b64(USER)).lines == ["334 UGFzc3dvcmQ6"]
        assert c.cmd(b64(PASSWORD)).code == 235


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_wrong_password_backend_verdict(amoat, abackend, mech):
    with authed(amoat.ports["smtps"]) as c:
        if mech == "PLAIN":
            r = c.cmd("AUTH PLAIN " + plain(password="wrong"))
        else:
            c.cmd("AUTH LOGIN")
            c.cmd(b64(USER))
            r = c.cmd(b64("wrong"))
        assert r.lines == ["535 5.7.8 Error: authentication failed: authentication failure"]
        # not authenticated: submission wants AUTH, and the session goes on
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("RCPT TO:<%s>" % LOCAL).lines == ["530 5.7.0 Authentication required"]
    line = wait_auth(amoat, result="failure")
    assert line["code"] == 535 and line["esc"] == "5.7.8" and line["auth_user"] == USER


def test_cancel(amoat):
    with authed(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd("*").lines == ["501 5.7.0 Authentication aborted"]   # the backend's
        assert c.cmd("AUTH PLAIN " + plain()).code == 235                 # not counted, not stuck
    assert wait_auth(amoat, result="cancelled")["code"] == 501


@pytest.mark.parametrize("answer", ["not base64!", "YWxpY2U", b64("alice\0only-one-nul"), b64("\0\0nouser")])
def test_unreadable_answer(amoat, abackend, answer):
    """An answer moat cannot read a login name from: the backend's exchange is
    cancelled, the client hears 501 5.5.2, and it counts as a failure."""
    with authed(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN").code == 334
        assert c.cmd(answer).lines == ["501 5.5.2 Cannot decode response"]
        c.expect("NOOP", 250)
    line = wait_auth(amoat, result="failure")
    assert line["reason"] == "an answer moat cannot read" and "auth_user" not in line
    # the backend got "*", never the answer
    assert not [cmd for _, cmd in abackend.command_events() if cmd == answer]


def test_unreadable_initial_response(amoat, abackend):
    with authed(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + b64("no nul at all")).lines == ["501 5.5.2 Cannot decode response"]
    wait_auth(amoat, result="failure")
    assert not [cmd for _, cmd in abackend.command_events() if cmd.startswith("AUTH")]


def test_answer_line_bound(amoat):
    """RFC 4954 4: answers of up to 12288 octets pass; a longer line is refused
    (500 5.5.6) and the session goes on."""
    with authed(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN").code == 334
        big = plain(password="x" * 9000)
        assert len(big) + 2 <= 12288
        assert c.cmd(big).lines[0].startswith("535 5.7.8")    # read, passed on, refused by the backend
        assert c.cmd("AUTH PLAIN").code == 334
        assert c.cmd("A" * 12300).lines == ["500 5.5.6 Authentication Exchange line is too long"]
        c.expect("NOOP", 250)
        assert c.cmd("AUTH PLAIN " + plain()).code == 235


def test_refusals(amoat, abackend):
    with smtps(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).lines == ["503 5.5.1 Error: send HELO/EHLO first"]
        c.expect("HELO client.example.org", 250)
        assert c.cmd("AUTH PLAIN " + plain()).lines == ["503 5.5.1 Error: send HELO/EHLO first"]
        c.ehlo()
        assert c.cmd("AUTH CRAM-MD5").lines == ["504 5.5.4 Unrecognized authentication type"]
        assert c.cmd("AUTH").lines == ["501 5.5.4 Syntax: AUTH mechanism [initial-response]"]
        assert c.cmd("AUTH PLAIN a b").lines == ["501 5.5.4 Syntax: AUTH mechanism [initial-response]"]
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("AUTH PLAIN " + plain()).lines == ["503 5.5.1 Error: MAIL transaction in progress"]
        c.expect("RSET", 250)
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
        assert c.cmd("AUTH PLAIN " + plain()).lines == ["503 5.5.1 Error: already authenticated"]
    # nothing of the refused ones reached the backend: the backend's events are read by a
    # thread of their own, so wait for the accepted AUTH's; any refused one would come before it
    abackend.events.wait(lambda e: e[0] == "AUTH" and e[-1] == "ok", what="the backend's AUTH ok")
    assert len([cmd for _, cmd in abackend.command_events() if cmd.startswith("AUTH")]) == 1


def test_backend_without_auth(moat_factory, certs, backend):  # noqa: F811
    """submission_backend does not offer AUTH: 454, said in the log; not the
    client's failure."""
    m = sub_moat(moat_factory, certs)
    with authed(m.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).lines == ["454 4.7.0 Temporary authentication failure"]
    assert wait_auth(m, result="tempfail")["reason"] == "submission_backend does not offer the mechanism"
    warn = m.wait_log(lambda l: l.get("event") == "auth" and l.get("level") == "warning" and "msg" in l)
    assert "does not offer AUTH PLAIN" in warn["msg"]


def test_submission_backend_down(moat_factory, certs, abackend):  # noqa: F811
    from moatlib import free_port
    m = sub_moat(moat_factory, certs, _backend=abackend, submission_backend="127.0.0.1:%d" % free_port())
    with authed(m.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).lines == ["454 4.7.0 Temporary authentication failure"]
        c.expect("NOOP", 250)
    assert wait_auth(m, result="tempfail")["reason"] == "submission_backend unavailable"


def test_submission_backend_is_where_auth_goes(moat_factory, certs, backend, abackend):  # noqa: F811
    """backend has no AUTH; submission_backend has: AUTH and the authenticated
    session's mail go there, the rest to backend."""
    m = sub_moat(moat_factory, certs, _backend=backend, submission_backend="127.0.0.1:%d" % abackend.port)
    with authed(m.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
        assert c.transaction(SENDER, [REMOTE], MSG).code == 250
    assert abackend.wait_stored(1)[0].rcpts == [REMOTE]
    with SMTPClient(m.ports["smtp"]) as c:
        c.ehlo()
        assert c.transaction("someone@example.org", [LOCAL], MSG).code == 250
    assert backend.wait_stored(1)[0].rcpts == [LOCAL]
    assert len(abackend.stored_events()) == 1


# ------------------------------------------------------- credentials never logged

def test_no_credential_in_any_log_line(amoat, abackend):
    """Every way a password goes by, right and wrong: the whole log, raw bytes,
    holds neither the password nor any base64 it travelled in."""
    wrong = "Wr0ng-Pa55word-xyz"
    with authed(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain(password=wrong)).code == 535
        assert c.cmd("AUTH PLAIN").code == 334
        assert c.cmd(plain(password=wrong)).code == 535
        assert c.cmd("AUTH LOGIN").code == 334
        c.cmd(b64(USER))
        assert c.cmd(b64(wrong)).code == 535
        assert c.cmd("AUTH LOGIN " + b64(USER)).code == 334
        assert c.cmd(b64(PASSWORD)).code == 235
        assert c.transaction(SENDER, [LOCAL], MSG).code == 250
    with authed(amoat.ports["submission"], "submission") as c:
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
    amoat.wait_session_end(2)
    log = b"".join(amoat.raw_lines)
    for secret in (PASSWORD, wrong):
        for needle in (secret, b64(secret), plain(password=secret), plain(password=secret, authzid="")):
            assert needle.encode() not in log, "%r is in the log" % needle
    # the name is there, on purpose
    assert b'"auth_user":"alice"' in log
    assert len(auth_lines(amoat)) == 5


# ------------------------------------------------------- what an authenticated session may do

def test_authenticated_relays_unauthenticated_cannot(amoat, abackend):
    with authed(amoat.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
        assert c.transaction(SENDER, [REMOTE], MSG).code == 250
    assert abackend.wait_stored(1)[0].rcpts == [REMOTE]
    with authed(amoat.ports["smtps"]) as c:   # no AUTH: submission wants it
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("RCPT TO:<%s>" % REMOTE).lines == ["530 5.7.0 Authentication required"]
    with SMTPClient(amoat.ports["smtp"]) as c:   # the MX: no open relay
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("RCPT TO:<%s>" % REMOTE).lines == ["554 5.7.1 <%s>: Relay access denied" % REMOTE]
    assert len(abackend.stored_events()) == 1


def test_authenticated_skips_sender_checks(moat_factory, certs, abackend, dns_factory):  # noqa: F811
    """The built-in policy does not check an authenticated client's sender: a
    domain that does not exist and an SPF fail go through."""
    zone = dns_factory({"strict.test": [("TXT", "v=spf1 -all"), ("MX", (10, "mx.strict.test"))],
                        "mx.strict.test": [("A", "192.0.2.1")]})
    m = sub_moat(moat_factory, certs, _backend=abackend, dns_servers=zone.servers)
    with authed(m.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
        assert c.transaction("a@strict.test", [REMOTE], MSG).code == 250
        assert c.transaction("a@no-such-domain.test", [LOCAL], MSG).code == 250
    ds = [l for l in m.decisions() if l.get("stage") == "data"]
    assert [d["spf"] for d in ds][0] == "fail" and all(d["rule_id"] == "authenticated" for d in ds), ds


def test_rule_binds_user_to_sender_domain(moat_factory, certs, abackend, tmp_path):  # noqa: F811
    rules = tmp_path / "site.rules"
    rules.write_text('reject auth-user alice and not sender-domain example.test \\\n'
                     '       "553 5.7.1 <%{sender}>: %{auth_user} may not send as this sender"  id alice-domain\n'
                     "include builtin:default\n")
    m = sub_moat(moat_factory, certs, _backend=abackend, rules=str(rules))
    with authed(m.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
        c.expect("MAIL FROM:<alice@other.example>", 250)
        assert c.cmd("RCPT TO:<%s>" % REMOTE).lines == [
            "553 5.7.1 <alice@other.example>: alice may not send as this sender"]
        c.expect("RSET", 250)
        assert c.transaction("alice@example.test", [REMOTE], MSG).code == 250
    with authed(m.ports["smtps"]) as c:   # another user is not bound
        assert c.cmd("AUTH PLAIN " + plain("bob", "other-secret")).code == 235
        assert c.transaction("bob@other.example", [REMOTE], MSG).code == 250
    d = m.wait_log(lambda l: l.get("rule_id") == "alice-domain")
    assert d["auth_user"] == USER and d["code"] == 553


def test_moat_check_auth_user(moat_factory, certs, tmp_path):  # noqa: F811
    import subprocess
    from moatlib import MOAT_BIN
    rules = tmp_path / "site.rules"
    rules.write_text("reject auth-user alice and not sender-domain example.test\ninclude builtin:default\n")
    m = sub_moat(moat_factory, certs, rules=str(rules), _start=False)

    def check(*extra):
        return subprocess.run([MOAT_BIN, "check", "-c", m.conf_path, "--client", "192.0.2.9", "--from",
                               "alice@other.example", "--rcpt", REMOTE] + list(extra),
                              capture_output=True, text=True, timeout=30)
    assert check().returncode == 1                                   # relay denied
    r = check("--listener", "submission")
    assert r.returncode == 1 and "530 5.7.0 Authentication required" in r.stdout, r.stdout
    r = check("--listener", "submission", "--auth-user", "alice")
    assert r.returncode == 1 and "alice" not in r.stderr and "550 5.7.1" in r.stdout, r.stdout
    assert check("--listener", "submission", "--auth-user", "bob").returncode == 0
    assert check("--listener", "bogus").returncode == 2


# ------------------------------------------------------- the authenticated connection

def test_authenticated_connection_not_pooled(moat_factory, certs, abackend):  # noqa: F811
    """With the pool on, a session that authenticated keeps its connection for
    itself and closes it at its end; the next session gets another (which did
    not authenticate)."""
    m = sub_moat(moat_factory, certs, _backend=abackend, backend_cache_time=30)
    with authed(m.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
        assert c.transaction(SENDER, [LOCAL], MSG).code == 250
        assert c.transaction(SENDER, [LOCAL], MSG).code == 250   # both over it
        c.expect("QUIT", 221)
    first = abackend.wait_stored(2)
    assert first[0].session == first[1].session and first[0].auth_user == USER
    abackend.wait_event(lambda e: e[0] == "CLOSE" and int(e[1]) == first[0].session, what="its close")
    with SMTPClient(m.ports["smtp"]) as c:
        c.ehlo()
        assert c.transaction("x@example.org", [LOCAL], MSG).code == 250
    third = abackend.wait_stored(3)[2]
    assert third.session != first[0].session and third.auth_user is None
    # and that connection is pooled as usual: a fourth session reuses it
    with SMTPClient(m.ports["smtp"]) as c:
        c.ehlo()
        assert c.transaction("x@example.org", [LOCAL], MSG).code == 250
    assert abackend.wait_stored(4)[3].session == third.session


def test_authenticated_connection_lost(moat_factory, certs, abackend):  # noqa: F811
    """The connection that authenticated is lost: the session gets 451, never
    another connection (which would not be authenticated)."""
    m = sub_moat(moat_factory, certs, _backend=abackend)
    with authed(m.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("RCPT TO:<drop-rcpt@example.test>").code == 451
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("RCPT TO:<%s>" % LOCAL).lines == ["451 4.4.1 Error: backend unavailable, try again later"]
    abackend.events.wait_count(lambda e: e[0] == "CONNECT", 2, what="backend connections")
    sessions = {e[1] for e in abackend.events.snapshot() if e[0] == "CONNECT"}
    assert len(sessions) == 2   # the probe and the one that authenticated


# ------------------------------------------------------- the failure limit

def fail_once(port, source):
    """One failed AUTH from source on smtps: the backend's 535, and the reply
    after it: 221 to a QUIT, or the 421 that came first when the failure
    reached the limit."""
    with smtps(port, source=source) as c:
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + plain(password="wrong"))
        assert r.code == 535, r
        return [r, c.cmd("QUIT")]


def first_banner(port, source, kind):
    if kind == "smtps":
        c = smtps(port, source=source)
    else:
        c = SMTPClient(port, source=source)
    with c:
        return c.banner.lines


def test_failure_limit_across_workers(moat_factory, certs, abackend):  # noqa: F811
    """5 failures from an address (whichever worker took them), then 421 4.7.0:
    at once, and for each new connection from it on submission and smtps, not
    on port 25; after auth_fail_window it may try again. Each round uses an
    address of its own (127.0.0.N) until one round had failures on both
    workers (a client's connections land on either)."""
    window = 8
    m = sub_moat(moat_factory, certs, _backend=abackend, workers=2, auth_fail_window=window)
    m.logs.wait_count(lambda l: l.get("event") == "ready", 2)
    for n in range(2, 8):
        source = "127.0.0.%d" % n
        start = len(m.logs.snapshot())
        for i in range(4):
            assert fail_once(m.ports["smtps"], source)[1].code == 221, "blocked too soon"
        last = fail_once(m.ports["smtps"], source)
        assert last[1].lines == [
            "421 4.7.0 %s Error: too many failed authentications from your address, try again later" % HOSTNAME], last
        blocked_at = time.monotonic()
        # the log is read by a thread of its own: the 5th line may lag the 421 the client read
        m.logs.wait_until(lambda items: len([l for l in items[start:] if l.get("event") == "auth" and
                                             l.get("result") == "failure"]) >= 5, what="5 auth failures")
        fails = [l for l in m.logs.snapshot()[start:] if l.get("event") == "auth" and l.get("result") == "failure"]
        assert len(fails) == 5 and all(l["client_ip"] == source for l in fails)
        for kind in ("smtps", "submission"):
            assert first_banner(m.ports[kind], source, kind) == [
                "421 4.7.0 %s Error: too many failed authentications from your address, try again later" % HOSTNAME]
        assert first_banner(m.ports["smtp"], source, "smtp")[0].startswith("220 ")   # the MX is not concerned
        assert first_banner(m.ports["smtps"], "127.0.0.99", "smtps")[0].startswith("220 ")   # nor another address
        d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("code") == 421 and
                       l.get("client_ip") == source, start=start)
        assert d["reason"] == "too many failed authentications from this address", d
        if {l["worker"] for l in fails} == {0, 1}:
            break
    else:
        pytest.fail("six addresses' failures all landed on one worker")
    # the window passes: the address may try again, and succeeds
    deadline = blocked_at + window + 10
    while first_banner(m.ports["smtps"], source, "smtps")[0].startswith("421"):
        assert time.monotonic() < deadline, "still blocked long after auth_fail_window"
        time.sleep(0.2)
    assert time.monotonic() - blocked_at >= window - 1
    with smtps(m.ports["smtps"], source=source) as c:
        c.ehlo()
        assert c.cmd("AUTH PLAIN " + plain()).code == 235


def test_failure_limit_zero_means_none(moat_factory, certs, abackend):  # noqa: F811
    m = sub_moat(moat_factory, certs, _backend=abackend, auth_fail_limit=0)
    for _ in range(7):
        assert fail_once(m.ports["smtps"], "127.0.0.1")[1].code == 221
    assert first_banner(m.ports["smtps"], "127.0.0.1", "smtps")[0].startswith("220 ")


# ---- moat -t asks submission_backend for AUTH --------------------------------

def moat_t(m):
    import subprocess
    from moatlib import MOAT_BIN

    r = subprocess.run([MOAT_BIN, "-t", "-c", m.conf_path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return [l[len(m.conf_path) + 2:] for l in r.stdout.splitlines() if l.startswith(m.conf_path + ": ")]


def auth_warnings(lines):
    return [l for l in lines if l.startswith("warning:") and "AUTH" in l]


def test_t_says_the_backend_offers_auth(amoat, abackend):
    """submission_backend unset: the backend, asked once, offers both."""
    lines = moat_t(amoat)
    assert "submission_backend 127.0.0.1:%d (the backend): auth_plain=1 auth_login=1" % abackend.port in lines, lines
    assert auth_warnings(lines) == [], lines


def test_t_warns_the_backend_offers_no_auth(moat_factory, certs, backend):
    """With submission listeners and a backend that offers no AUTH, every
    AUTH would get 454: moat -t says so (and so does nothing with port 25 alone)."""
    m = sub_moat(moat_factory, certs)
    lines = moat_t(m)
    assert "submission_backend 127.0.0.1:%d (the backend): auth_plain=0 auth_login=0" % backend.port in lines, lines
    assert auth_warnings(lines) == [
        "warning: submission_backend 127.0.0.1:%d (the backend) offers no AUTH PLAIN nor LOGIN: every AUTH on "
        "smtps_listen and submission_listen would get 454 4.7.0 (Postfix: smtpd_sasl_auth_enable = yes; with "
        "smtpd_tls_auth_only = yes, backend_tls)" % backend.port], lines
    assert not [l for l in moat_t(moat_factory()) if "submission_backend" in l or "AUTH" in l]


def test_t_asks_submission_backend(moat_factory, certs, backend, abackend):
    """A submission_backend of its own is asked too: with AUTH, without it,
    down, and with backend_tls = required where it offers no STARTTLS."""
    m = sub_moat(moat_factory, certs, submission_backend="127.0.0.1:%d" % abackend.port)
    lines = moat_t(m)
    assert [l for l in lines if l.startswith("submission_backend")] == [
        "submission_backend 127.0.0.1:%d: auth_plain=1 auth_login=1 smtputf8=0 dsn=0 size=52428800 xforward=0 "
        "xclient=0 starttls=0 tls=none" % abackend.port], lines
    assert auth_warnings(lines) == [], lines

    m = sub_moat(moat_factory, certs, _backend=abackend, submission_backend="127.0.0.1:%d" % backend.port)
    assert auth_warnings(moat_t(m)) == [
        "warning: submission_backend 127.0.0.1:%d offers no AUTH PLAIN nor LOGIN: every AUTH on smtps_listen and "
        "submission_listen would get 454 4.7.0 (Postfix: smtpd_sasl_auth_enable = yes; with smtpd_tls_auth_only "
        "= yes, backend_tls)" % backend.port]

    from moatlib import free_port
    down = free_port()
    m = sub_moat(moat_factory, certs, submission_backend="127.0.0.1:%d" % down)
    assert auth_warnings(moat_t(m)) == [
        "warning: submission_backend 127.0.0.1:%d did not answer: every AUTH on smtps_listen and "
        "submission_listen it would take gets 454 4.7.0 while it does not" % down]

    m = sub_moat(moat_factory, certs, submission_backend="127.0.0.1:%d" % abackend.port, backend_tls="required",
                 backend_tls_ca=certs["ec"][0])
    w = [l for l in moat_t(m) if l.startswith("warning: submission_backend")]
    assert len(w) == 2 and w[0].startswith("warning: submission_backend 127.0.0.1:%d: backend_tls = required and "
                                           % abackend.port), w
    assert w[1] == ("warning: submission_backend 127.0.0.1:%d did not answer: every AUTH on smtps_listen and "
                    "submission_listen it would take gets 454 4.7.0 while it does not" % abackend.port), w
