"""TLS from moat to the backend (issue 14, item 4): backend_tls = no | opportunistic | required,
backend_tls_ca, backend_tls_name.

Two kinds of backend:
- a scripted one (fakebackend.FakeBackend: Python's ssl, a real handshake with a certificate of
  a test CA made by the openssl CLI), for what a real server does not do on demand: plaintext
  in the same write as its reply to STARTTLS (the CVE-2011-0411 class on moat's backend side),
  plaintext where the TLS handshake belongs, a refused STARTTLS;
- Debian's real Postfix (pf_helpers.PfStack) with its own certificate from the test CA and
  smtpd_tls_security_level = encrypt on the port moat uses: mail only over TLS. Postfix logs
  "TLS connection established" and writes "with ESMTPS" in its Received field.

required without a verified TLS connection is 451 4.7.5 to the client (nothing delivered, the
decision line says why); opportunistic goes on without TLS when the backend offers none, refuses
it, or fails the handshake (then on a new plaintext connection: nothing was sent yet).
"""

import os
import re
import shutil

import pytest

from fakebackend import FakeBackend
from moatlib import SMTPClient
from pf_helpers import PF_DOMAIN, PfStack
from tlscerts import TestCA

SENDER = "alice@example.org"
PF_SENDER = "alice@sender.test"   # the Postfix stack's DNS publishes sender.test
RCPT = "bob@example.test"
MSG = b"Subject: tls\r\nMessage-ID: <tls@example.org>\r\n\r\nhello over TLS\r\n"

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="the openssl CLI makes the test CA")


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("other-ca"), name="not the backend's CA")


@pytest.fixture(scope="module")
def fake_cert(ca):
    return ca.issue("fake", ["fake.test"], ["127.0.0.1"])


@pytest.fixture
def fake_factory():
    made = []

    def make(**kw):
        fb = FakeBackend(**kw)
        made.append(fb)
        return fb

    yield make
    for fb in made:
        fb.stop()


def probed(m):
    """The backend_probe line(s) are in: the probe's connection is over or failed."""
    return m.wait_log(lambda l: l.get("event") == "backend_probe", what="backend_probe")


def one_rcpt(port, rcpt=RCPT, source=None, sender=SENDER):
    """EHLO, MAIL, RCPT: (the client, the RCPT reply)."""
    c = SMTPClient(port, source=source)
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % sender, 250)
    return c, c.cmd("RCPT TO:<%s>" % rcpt)


def deliver(port, message=MSG, source=None, sender=SENDER):
    """A whole transaction that must be accepted: the final reply."""
    c, r = one_rcpt(port, source=source, sender=sender)
    with c:
        assert r.code == 250, r
        final = c.data(message, timeout=30)
        c.expect("QUIT", 221)
    return final


def decision(m, stage, **match):
    return m.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == stage and
                      all(l.get(k) == v for k, v in match.items()), what="%s decision %r" % (stage, match))


# ---- against a backend without TLS ------------------------------------------------------------

def test_required_against_plaintext_backend_is_451_475(moat_factory, backend, ca):
    m = moat_factory(backend_tls="required", backend_tls_ca=ca.cert)
    probe = probed(m)
    assert probe["level"] == "warning" and "offers no STARTTLS" in probe["msg"], probe
    c, r = one_rcpt(m.port)
    with c:
        assert (r.code, r.enhanced()) == (451, ["4.7.5"]), r
        c.expect("QUIT", 221)
    d = decision(m, "rcpt", code=451)
    assert d["esc"] == "4.7.5" and d["reason"] == "backend TLS required and the backend offers no STARTTLS", d
    assert [l for l in m.log_lines(event="tls") if "offers no STARTTLS" in l["msg"]]
    assert backend.messages() == []
    assert "MAIL" not in " ".join(backend.commands()), "nothing of the transaction reached the backend"


def test_opportunistic_against_plaintext_backend_delivers(moat_factory, backend):
    m = moat_factory()                        # backend_tls = opportunistic is the default
    assert "tls=none" in probed(m)["msg"]
    assert deliver(m.port).code == 250
    assert len(backend.wait_stored(1)) == 1
    assert decision(m, "data", code=250)["backend_tls"] == "none"


def test_no_never_starts_tls(moat_factory, fake_factory, fake_cert):
    fb = fake_factory(cert=fake_cert, starttls="ok")
    m = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="no")
    probed(m)
    assert deliver(m.port).code == 250
    conns = fb.conns.snapshot()
    assert all("STARTTLS" not in c.verbs() for c in conns), [c.verbs() for c in conns]
    assert [t for c in conns for t, _ in c.messages] == [False]


# ---- the scripted TLS backend -------------------------------------------------------------------

def test_opportunistic_encrypts_unverified(moat_factory, fake_factory, fake_cert):
    fb = fake_factory(cert=fake_cert, starttls="ok")
    m = moat_factory(backend="127.0.0.1:%d" % fb.port)      # no CA: encryption, unverified
    assert "starttls=1 tls=TLSv1.3 verified=0" in probed(m)["msg"]
    assert deliver(m.port).code == 250
    msgs = [(t, b) for c in fb.conns.snapshot() for t, b in c.messages]
    assert len(msgs) == 1 and msgs[0][0] is True, "the message went under TLS"
    assert decision(m, "data", code=250)["backend_tls"] == "TLSv1.3"


def test_required_verified_and_ehlo_again(moat_factory, fake_factory, fake_cert, ca):
    fb = fake_factory(cert=fake_cert, starttls="ok")
    m = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert,
                     backend_tls_name="fake.test")
    assert "tls=TLSv1.3 verified=1" in probed(m)["msg"]
    start = len(fb.conns.snapshot())
    assert deliver(m.port).code == 250
    c = fb.conns.snapshot()[start]
    # EHLO, STARTTLS, then EHLO again under TLS before anything else (RFC 3207 4.2)
    assert c.verbs()[:4] == ["EHLO", "STARTTLS", "EHLO", "MAIL"], c.verbs()
    assert [t for t, _ in c.commands[:4]] == [False, False, True, True]


def test_backend_tls_name_defaults_to_the_address(moat_factory, fake_factory, fake_cert, ca):
    """No backend_tls_name: the certificate must hold the backend's address (an IP SAN)."""
    fb = fake_factory(cert=fake_cert, starttls="ok")       # fake.test and IP:127.0.0.1
    m = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert)
    assert "verified=1" in probed(m)["msg"]
    assert deliver(m.port).code == 250


def test_backend_tls_name_defaults_to_the_backends_name(moat_factory, fake_factory, fake_cert, ca, dns_factory):
    """backend written as a name, no backend_tls_name: the certificate must hold that name (what a
    certificate names), not the address it resolved to; a name the certificate lacks fails."""
    fb = fake_factory(cert=fake_cert, starttls="ok")       # fake.test and IP:127.0.0.1
    zone = dns_factory()
    zone.zone["fake.test"] = [("A", "127.0.0.1")]
    zone.zone["mx.other.test"] = [("A", "127.0.0.1")]
    m = moat_factory(backend="fake.test:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert,
                     dns_servers=zone.servers)
    probe = probed(m)
    assert "backend fake.test:%d at 127.0.0.1:%d ready" % (fb.port, fb.port) in probe["msg"], probe
    assert "verified=1" in probe["msg"], probe
    assert deliver(m.port).code == 250
    other = moat_factory(backend="mx.other.test:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert,
                         dns_servers=zone.servers)
    probed(other)
    c, r = one_rcpt(other.port)
    with c:
        assert (r.code, r.enhanced()) == (451, ["4.7.5"]), r
    d = decision(other, "rcpt", code=451)
    assert d["reason"] == "backend TLS required and certificate did not verify: hostname mismatch", d


def test_injection_after_starttls_reply_is_discarded(moat_factory, fake_factory, fake_cert, ca):
    """'220 go ahead\\r\\n250 bogus\\r\\n' in one write: the 250 is plaintext that came before TLS.
    It never counts as a reply: EHLO under TLS gets the real EHLO reply, MAIL its own, RCPT its
    own, the end of data the queue id: no reply is one behind."""
    fb = fake_factory(cert=fake_cert, starttls="inject")
    m = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert,
                     backend_tls_name="fake.test")
    probed(m)
    start = len(fb.conns.snapshot())
    c, r = one_rcpt(m.port)
    with c:
        assert r.line == "250 2.1.5 rcpt ok", r
        final = c.data(MSG)
        assert final.line == "250 2.0.0 Ok: queued as FAKE1", final
        c.expect("QUIT", 221)
    conn = fb.conns.snapshot()[start]
    assert conn.verbs()[:5] == ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT"], conn.verbs()
    assert conn.messages and conn.messages[0][0] is True
    assert decision(m, "data", code=250)["queue_id"] == "FAKE1"     # (the log is read up to here)
    assert [l for l in m.log_lines(event="tls")
            if l["msg"] == "the backend sent 11 bytes after its reply to STARTTLS: discarded"], \
        m.log_lines(event="tls")


def test_plaintext_where_tls_belongs_required_is_451(moat_factory, fake_factory, fake_cert, ca):
    fb = fake_factory(cert=fake_cert, starttls="plain_after")
    m = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert)
    probed(m)
    c, r = one_rcpt(m.port)
    with c:
        assert (r.code, r.enhanced()) == (451, ["4.7.5"]), r
    d = decision(m, "rcpt", code=451)
    assert d["reason"].startswith("backend TLS required and TLS handshake failed: "), d
    assert not [b for c in fb.conns.snapshot() for b in c.messages]
    assert all("MAIL" not in c.verbs() for c in fb.conns.snapshot())


def test_plaintext_where_tls_belongs_opportunistic_new_connection(moat_factory, fake_factory, fake_cert):
    """The handshake fails before anything of the transaction went out: a new plaintext
    connection carries it, once (as Postfix's smtp_tls_security_level = may)."""
    fb = fake_factory(cert=fake_cert, starttls="plain_after")
    m = moat_factory(backend="127.0.0.1:%d" % fb.port)
    probed(m)
    start = len(fb.conns.snapshot())
    assert deliver(m.port).code == 250
    conns = fb.conns.snapshot()[start:]
    assert [c.verbs()[:2] for c in conns] == [["EHLO", "STARTTLS"], ["EHLO", "MAIL"]], \
        [c.verbs() for c in conns]
    assert [t for c in conns for t, _ in c.messages] == [False], "one message, in plaintext"
    assert decision(m, "data", code=250)["backend_tls"] == "none"   # (the log is read up to here)
    assert [l for l in m.log_lines(event="tls") if "going on without TLS, on a new connection" in l["msg"]]


def test_starttls_refused(moat_factory, fake_factory, fake_cert, ca):
    fb = fake_factory(cert=fake_cert, starttls="refuse")
    opp = moat_factory(backend="127.0.0.1:%d" % fb.port)
    req = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert)
    probed(opp)
    probed(req)
    assert deliver(opp.port).code == 250           # on in plaintext, on the same connection
    c, r = one_rcpt(req.port)
    with c:
        assert (r.code, r.enhanced()) == (451, ["4.7.5"]), r
    assert decision(req, "rcpt", code=451)["reason"] == \
        "backend TLS required and the backend refused STARTTLS: 454 4.7.0 TLS not available"
    assert [t for c in fb.conns.snapshot() for t, _ in c.messages] == [False]


def test_verify_failures_are_451(moat_factory, fake_factory, fake_cert, ca, other_ca):
    fb = fake_factory(cert=fake_cert, starttls="ok")
    name = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert,
                        backend_tls_name="other.test")
    issuer = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required",
                          backend_tls_ca=other_ca.cert, backend_tls_name="fake.test")
    # the backend sends its CA along (a chain): not one of ours
    for m, why in ((name, "hostname mismatch"), (issuer, "self-signed certificate in certificate chain")):
        probed(m)
        c, r = one_rcpt(m.port)
        with c:
            assert (r.code, r.enhanced()) == (451, ["4.7.5"]), r
        d = decision(m, "rcpt", code=451)
        assert d["reason"] == "backend TLS required and certificate did not verify: " + why, d
    assert not [b for c in fb.conns.snapshot() for b in c.messages]


def test_pooled_connection_stays_tls(moat_factory, fake_factory, fake_cert, ca):
    """A TLS connection kept for the next session is still TLS: no second handshake, no
    plaintext command on it."""
    fb = fake_factory(cert=fake_cert, starttls="ok")
    m = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert,
                     backend_cache_time=30)
    probed(m)
    start = len(fb.conns.snapshot())
    for _ in range(3):
        assert deliver(m.port).code == 250
    conns = fb.conns.snapshot()[start:]
    assert len(conns) == 1, [c.verbs() for c in conns]
    c = conns[0]
    assert c.verbs().count("STARTTLS") == 1 and len(c.messages) == 3
    assert all(t for t, _ in c.commands[2:]), "every command after the handshake under TLS"


def test_session_resumed_on_the_next_connection(moat_factory, fake_factory, fake_cert, ca):
    """backend_cache_time = 0: a connection per session; the second resumes the first's TLS
    session (a ticket), so it skips the certificate exchange."""
    fb = fake_factory(cert=fake_cert, starttls="ok")
    m = moat_factory(backend="127.0.0.1:%d" % fb.port, backend_tls="required", backend_tls_ca=ca.cert)
    probed(m)
    deliver(m.port)
    deliver(m.port)
    lines = m.logs.wait_count(lambda l: l.get("event") == "decision" and l.get("stage") == "data" and
                              l.get("code") == 250, 2, what="two data decision lines")
    assert len(lines) == 2 and all(l["backend_tls"] == "TLSv1.3" for l in lines), lines
    assert lines[1].get("backend_tls_resumed") is True, lines


# ---- a real Postfix that takes mail only over TLS ------------------------------------------------

@pytest.fixture(scope="module")
def pf(tmp_path_factory, ca):
    tmp = tmp_path_factory.mktemp("pf-tls")
    crt, key = ca.issue("pf", ["pf." + PF_DOMAIN], ["127.0.0.1"])
    main_cf = {
        "smtpd_tls_cert_file": crt,
        "smtpd_tls_key_file": key,
        "smtpd_tls_security_level": "encrypt",     # TLS required on the port moat uses
        "smtpd_tls_loglevel": "1",
    }
    s = PfStack(tmp, main_cf=main_cf, moat_keys={
        "backend_tls": "required", "backend_tls_ca": ca.cert, "backend_tls_name": "pf." + PF_DOMAIN})
    yield s
    s.stop()


def pf_deliver(pf, m, message, needle):
    start = pf.pf.maillog_size()
    final = deliver(m.port, message, sender=PF_SENDER)
    assert final.code == 250, final
    qid = re.search(r"queued as ([0-9A-F]+)", final.line).group(1)
    data = pf.pf.wait_for_mail("bob", needle)
    return qid, data, pf.pf.maillog_since(start)


def test_postfix_encrypt_delivers_over_tls(pf):
    m = pf.moat
    assert "tls=TLSv1.3 verified=1" in [l for l in m.log_lines(event="backend_probe")][0]["msg"]
    start = pf.pf.maillog_size()
    qid, data, _ = pf_deliver(pf, m, b"Subject: pf tls\r\nMessage-ID: <pf-tls@example.org>\r\n\r\nover TLS\r\n",
                              b"<pf-tls@example.org>")
    pf.pf.wait_for_log("TLS connection established from", start=start)
    received = data.split(b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n", 1)[0]
    assert re.search(rb"by pf\.example\.test \(Postfix\) with ESMTPS id " + qid.encode(), received), received
    d = decision(m, "data", code=250, queue_id=qid)
    assert d["backend_tls"] == "TLSv1.3", d


def test_postfix_large_message_over_tls_intact(pf):
    """Over 256 KiB: the message is spooled to a file, which under TLS cannot go out with
    sendfile: it is mapped and encrypted from memory. Every byte arrives, dot-stuffing kept."""
    lines = [b"Subject: big\r\nMessage-ID: <big-tls@example.org>\r\n\r\n"]
    for i in range(12000):
        lines.append(b"." * (i % 3) + b"line %06d %s\r\n" % (i, b"x" * (i % 70)))
    body = b"".join(lines)
    assert len(body) > 512 * 1024
    _, data, _ = pf_deliver(pf, pf.moat, body, b"<big-tls@example.org>")
    got = data.replace(b"\r\n", b"\n")
    want = body.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
    assert got.endswith(want), "the body arrived changed"


def test_postfix_wrong_name_or_ca_is_451(pf, other_ca):
    before = pf.maildir_files("bob")
    for keys, why in (({"backend_tls_name": "wrong." + PF_DOMAIN}, "hostname mismatch"),
                      ({"backend_tls_ca": other_ca.cert}, "self-signed certificate in certificate chain")):
        keys = dict({"backend_tls_ca": pf.moat.config["backend_tls_ca"], "backend_tls_name": "pf." + PF_DOMAIN},
                    **keys)
        m = pf.add_moat(backend_tls="required", **keys)
        c, r = one_rcpt(m.port, sender=PF_SENDER)
        with c:
            assert (r.code, r.enhanced()) == (451, ["4.7.5"]), r
        assert decision(m, "rcpt", code=451)["reason"] == \
            "backend TLS required and certificate did not verify: " + why
    assert pf.maildir_files("bob") == before


def test_postfix_opportunistic_without_ca(pf):
    m = pf.add_moat()                       # opportunistic, the default; no CA
    qid, data, _ = pf_deliver(pf, m, b"Subject: opp\r\nMessage-ID: <pf-opp@example.org>\r\n\r\nmay\r\n",
                              b"<pf-opp@example.org>")
    assert b"with ESMTPS id " + qid.encode() in data
    assert decision(m, "data", code=250, queue_id=qid)["backend_tls"] == "TLSv1.3"


def test_postfix_no_tls_is_refused_by_postfix(pf):
    """backend_tls = no against a Postfix that requires TLS: Postfix itself refuses MAIL
    ("530 5.7.0 Must issue a STARTTLS command first"), and that reaches the client."""
    m = pf.add_moat(backend_tls="no")
    c, r = one_rcpt(m.port, sender=PF_SENDER)
    with c:
        assert r.code == 530 and "STARTTLS" in r.line, r
