"""STARTTLS inbound (RFC 3207; issue 14, items 1 and 6): tls_cert and tls_key,
the STARTTLS command and its refusals, the session starting over after the
handshake, plaintext pipelined after STARTTLS never executed (the
CVE-2011-0411 class), TLS 1.2 and 1.3 only, no renegotiation, a handshake
that stalls cut by command_timeout, two pairs (RSA and ECDSA), the chain in
the cert file, resumption by tickets (across workers too), the reload of the
pair on SIGHUP, and what the message, the log and the rules see.

Real clients: openssl s_client, swaks, Python's ssl and smtplib, raw
sockets. Certificates are made by the openssl CLI per test run (tlscerts.py)."""

import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import warnings

import pytest

from moatlib import HOSTNAME, SMTPClient, ConnectionClosed, assert_relayed
from tlscerts import chain, fingerprint, peer_fingerprint, self_signed

SENDER = "alice@example.org"
RCPT = "bob@example.test"
MSG = b"Subject: over TLS\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    rsa = self_signed(d, "rsa", "rsa")
    ec = self_signed(d, "ec", "ec")
    return {"dir": str(d), "rsa": rsa, "ec": ec}


def tls_moat(moat_factory, pairs, **keys):
    return moat_factory(tls_cert=", ".join(c for c, _ in pairs), tls_key=", ".join(k for _, k in pairs), **keys)


@pytest.fixture
def tmoat(moat_factory, certs):
    """moat with one ECDSA pair."""
    return tls_moat(moat_factory, [certs["ec"]])


def client_ctx(version=None, ciphers=None, cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if version:
        with warnings.catch_warnings():  # TLSv1 and 1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def starttls(port, ctx=None, session=None):
    """An SMTPClient after EHLO, STARTTLS and the handshake (no EHLO after it)."""
    c = SMTPClient(port)
    assert "STARTTLS" in c.ehlo().texts
    r = c.cmd("STARTTLS")
    assert r.lines == ["220 2.0.0 Ready to start TLS"]
    assert c.buf == b""
    c.sock = (ctx or client_ctx()).wrap_socket(c.sock, server_hostname=HOSTNAME, session=session)
    return c


def tls_line(moat, start=0, **match):
    return moat.wait_log(lambda l: l.get("event") == "tls" and all(l.get(k) == v for k, v in match.items()),
                         start=start, what="tls line %r" % match)


def s_client(port, *args, stdin="EHLO client.example.org\nQUIT\n"):
    return subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % port,
                           "-crlf", "-ign_eof", "-servername", HOSTNAME] + list(args),
                          input=stdin, capture_output=True, text=True, timeout=30)


# ------------------------------------------------------------ the command

def test_s_client_starttls(tmoat):
    r = s_client(tmoat.port, "-brief")
    assert r.returncode == 0, r.stderr
    assert "Protocol version: TLSv1.3" in r.stderr, r.stderr
    assert "Ciphersuite: TLS_AES_256_GCM_SHA384" in r.stderr
    # the EHLO after the handshake: no STARTTLS any more
    after = r.stdout[r.stdout.index("250-" + HOSTNAME):]
    assert "250-PIPELINING" in after and "STARTTLS" not in after, r.stdout
    assert "221 2.0.0 Bye" in after
    line = tls_line(tmoat, level="info")
    assert line["tls_version"] == "TLSv1.3" and line["tls_cipher"] == "TLS_AES_256_GCM_SHA384"
    assert line["resumed"] is False


def test_starttls_offered_only_when_configured(moat, tmoat):
    with SMTPClient(moat.port) as c:
        assert "STARTTLS" not in c.ehlo().texts
        assert c.cmd("STARTTLS").lines == ["502 5.5.1 Error: command not implemented"]
    with SMTPClient(tmoat.port) as c:
        texts = c.ehlo().texts
        assert texts[1:4] == ["PIPELINING", "SIZE 10240000", "STARTTLS"], texts
        assert c.cmd("HELO client.example.org").code == 250   # HELO: no extensions, STARTTLS still works
        assert c.cmd("STARTTLS").code == 220


def test_starttls_refusals(tmoat):
    with SMTPClient(tmoat.port) as c:
        c.ehlo()
        assert c.cmd("STARTTLS now").lines == ["501 5.5.4 Syntax: STARTTLS takes no arguments"]
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert c.cmd("STARTTLS").lines == ["503 5.5.1 Error: MAIL transaction in progress"]
        c.expect("RSET", 250)
        assert c.cmd("STARTTLS").code == 220
    with starttls(tmoat.port) as c:
        r = c.ehlo()
        assert "STARTTLS" not in r.texts, r.lines
        assert c.cmd("STARTTLS").lines == ["554 5.5.1 Error: TLS already active"]
        # still usable: the refusal is a protocol error, not the end
        c.expect("NOOP", 250)


def test_session_starts_over(tmoat, backend):
    """RFC 3207 4.2: after the handshake the HELO is forgotten: MAIL needs a new EHLO."""
    with starttls(tmoat.port) as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER).lines == ["503 5.5.1 Error: send HELO/EHLO first"]
        c.ehlo("after.example.org")
        assert c.transaction(SENDER, [RCPT], MSG).code == 250
    backend.wait_stored(1)
    d = tmoat.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == "data")
    assert d["helo"] == "after.example.org"


def test_smtplib_starttls_then_ehlo(tmoat, backend):
    with smtplib.SMTP("127.0.0.1", tmoat.port, timeout=10) as s:
        s.ehlo("client.example.org")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=client_ctx())
        assert code == 220
        s.ehlo("client.example.org")
        assert not s.has_extn("starttls")
        assert s.sock.version() == "TLSv1.3"
        s.sendmail(SENDER, [RCPT], MSG)
    assert len(backend.wait_stored(1)) == 1


# -------------------------------------------------- plaintext after STARTTLS

@pytest.mark.parametrize("tail", [b"MAIL FROM:<x@y.example>\r\n", b"RSET\r\n",
                                  b"MAIL FROM:<x@y.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"])
def test_plaintext_after_starttls_never_executed(tmoat, backend, tail):
    """STARTTLS and commands after it in one packet: the commands are dropped
    before the handshake and never answered; the first reply under TLS is
    the one to the first command sent under TLS."""
    c = SMTPClient(tmoat.port)
    c.ehlo()
    c.send(b"STARTTLS\r\n" + tail)
    assert c.reply().lines == ["220 2.0.0 Ready to start TLS"]
    assert c.buf == b"", "more than the 220 before the handshake: %r" % c.buf
    c.sock = client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
    assert c.cmd("NOOP").lines == ["250 2.0.0 OK"], "a reply to the dropped commands came first"
    # no transaction was opened and the HELO is gone
    assert c.cmd("MAIL FROM:<a@b.example>").lines == ["503 5.5.1 Error: send HELO/EHLO first"]
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.close()
    tmoat.wait_session_end()
    warn = tls_line(tmoat, level="warning")
    assert warn["msg"] == "%d bytes sent after STARTTLS before the handshake discarded" % len(tail)
    assert not [d for d in tmoat.decisions() if "x@y.example" in d.get("mail_from", "")]
    assert backend.stored_events() == []


def test_plaintext_after_the_220_breaks_the_handshake(tmoat):
    """Bytes the client sends after the 220 are the handshake's: plaintext there
    is no TLS record, the handshake fails, nothing is executed."""
    c = SMTPClient(tmoat.port)
    c.ehlo()
    assert c.cmd("STARTTLS").code == 220
    c.send(b"MAIL FROM:<x@y.example>\r\n")
    assert c.wait_closed() == b""
    line = tls_line(tmoat, level="warning")
    assert line["msg"] == "TLS handshake failed" and line["reason"] == "wrong version number", line
    assert not [d for d in tmoat.decisions() if "x@y.example" in d.get("mail_from", "")]


# --------------------------------------------------------- the handshake

@pytest.mark.parametrize("partial", [b"", b"\x16\x03\x01\x02\x00\x01"])
def test_stalled_handshake_cut_by_command_timeout(moat_factory, certs, partial):
    m = tls_moat(moat_factory, [certs["ec"]], command_timeout=2)
    c = SMTPClient(m.port)
    c.ehlo()
    assert c.cmd("STARTTLS").code == 220
    c.send(partial)
    assert c.wait_closed(timeout=10) == b"", "no plaintext reply after the 220"
    line = tls_line(m, level="warning")
    assert line["msg"] == "TLS handshake not complete in time (command_timeout)", line
    m.wait_session_end()


@pytest.mark.parametrize("version,flag", [(ssl.TLSVersion.TLSv1_1, "-tls1_1"), (ssl.TLSVersion.TLSv1, "-tls1")],
                         ids=["TLSv1.1", "TLSv1.0"])
def test_old_protocols_refused(tmoat, version, flag):
    """The client offers only the old version (its own floor lowered by
    SECLEVEL=0); moat refuses: "unsupported protocol"."""
    ctx = client_ctx(version, ciphers="DEFAULT@SECLEVEL=0")
    c = SMTPClient(tmoat.port)
    c.ehlo()
    assert c.cmd("STARTTLS").code == 220
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(c.sock, server_hostname=HOSTNAME)
    c.close()
    line = tls_line(tmoat, level="warning")
    assert line["reason"] == "unsupported protocol", line
    r = s_client(tmoat.port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
    assert r.returncode != 0 and "CONNECTED" in r.stdout
    assert "alert protocol version" in r.stderr, r.stderr
    tmoat.wait_session_end(2)


def test_tls12_works(tmoat):
    with starttls(tmoat.port, client_ctx(ssl.TLSVersion.TLSv1_2)) as c:
        assert c.sock.version() == "TLSv1.2"
        c.ehlo()
    line = tls_line(tmoat, level="info")
    assert line["tls_version"] == "TLSv1.2" and line["tls_cipher"] == "ECDHE-ECDSA-AES256-GCM-SHA384"


def test_no_renegotiation(tmoat):
    """TLS 1.2 (1.3 has none): s_client's R asks for a renegotiation; moat
    refuses it (no_renegotiation) and the session ends, logged."""
    p = subprocess.Popen(["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % tmoat.port,
                          "-crlf", "-tls1_2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(30, p.kill)
    watchdog.start()
    try:
        p.stdin.write("EHLO client.example.org\n")
        p.stdin.flush()
        for line in p.stdout:         # until our EHLO under TLS is answered
            if line.startswith("250-PIPELINING"):
                break
        p.stdin.write("R\n")         # s_client's command: renegotiate
        p.stdin.flush()
        out, err = p.communicate()    # ends when moat closes the connection
    finally:
        watchdog.cancel()
    assert "RENEGOTIATING" in err, err
    assert "no renegotiation" in err, err
    line = tls_line(tmoat, level="warning")
    assert line["msg"] == "TLS error", line
    tmoat.wait_session_end()


def test_two_pairs_rsa_and_ecdsa(moat_factory, certs):
    m = tls_moat(moat_factory, [certs["rsa"], certs["ec"]])
    for ciphers, pair in (("ECDHE-ECDSA-AES128-GCM-SHA256", "ec"), ("ECDHE-RSA-AES128-GCM-SHA256", "rsa")):
        with starttls(m.port, client_ctx(ssl.TLSVersion.TLSv1_2, ciphers)) as c:
            assert peer_fingerprint(c.sock) == fingerprint(certs[pair][0]), pair
    # TLS 1.3: the signature algorithms choose
    for sigalgs, kind in (("ECDSA+SHA256", "ECDSA"), ("RSA-PSS+SHA256", "RSA-PSS")):
        r = s_client(m.port, "-brief", "-sigalgs", sigalgs)
        assert r.returncode == 0 and "Protocol version: TLSv1.3" in r.stderr, r.stderr
        assert "Signature type: %s" % kind in r.stderr, r.stderr


def test_chain_in_the_cert_file(moat_factory, tmp_path):
    """The cert file holds the leaf and its intermediate: a client that trusts
    only the root verifies the server."""
    root, full, key = chain(tmp_path, "leaf")
    m = moat_factory(tls_cert=full, tls_key=key)
    with starttls(m.port, client_ctx(cafile=root)) as c:
        c.ehlo()


# ------------------------------------------------------------ resumption

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["TLSv1.3", "TLSv1.2"])
def test_resumption_by_ticket(tmoat, version):
    ctx = client_ctx(version)
    with starttls(tmoat.port, ctx) as c:
        c.ehlo()                      # the ticket comes with the first reply under TLS 1.3
        session = c.sock.session
        assert session.has_ticket
        assert not c.sock.session_reused
    with starttls(tmoat.port, ctx, session) as c:
        c.ehlo()
        assert c.sock.session_reused
    # the log is read by a thread of the test's: wait for both lines
    lines = tmoat.logs.wait_count(lambda l: l.get("event") == "tls" and l.get("level") == "info", 2)
    assert [l["resumed"] for l in lines] == [False, True]


def test_resumption_across_workers(moat_factory, certs):
    """Every worker has the run's ticket keys: a ticket one worker issued
    resumes on another."""
    m = tls_moat(moat_factory, [certs["ec"]], workers=2)
    ctx = client_ctx()
    with starttls(m.port, ctx) as c:
        c.ehlo()
        session = c.sock.session
    first = tls_line(m, level="info")
    for _ in range(64):               # SO_REUSEPORT spreads connections by their ports
        n = len(m.logs.snapshot())
        with starttls(m.port, ctx, session) as c:
            c.ehlo()
            reused = c.sock.session_reused
        line = tls_line(m, start=n, level="info")
        assert reused and line["resumed"] is True, line
        if line["worker"] != first["worker"]:
            break
    else:
        pytest.fail("64 connections all went to worker %d" % first["worker"])


# ---------------------------------------------------------------- reload

def test_reload_replaces_the_pair(moat_factory, certs, tmp_path):
    d = tmp_path / "live"
    d.mkdir()
    crt, key = str(d / "server.crt"), str(d / "server.key")
    shutil.copy(certs["ec"][0], crt)
    shutil.copy(certs["ec"][1], key)
    m = moat_factory(tls_cert=crt, tls_key=key)
    old = starttls(m.port)            # a session under TLS across the reloads
    assert peer_fingerprint(old.sock) == fingerprint(certs["ec"][0])
    new_crt, new_key = self_signed(tmp_path, "new", "ec")
    shutil.copy(new_crt, crt)
    shutil.copy(new_key, key)
    n = len(m.logs.snapshot())
    m.signal(signal.SIGHUP)
    m.wait_log(lambda l: l.get("event") == "reload" and l.get("level") == "info", start=n)
    with starttls(m.port) as c:
        assert peer_fingerprint(c.sock) == fingerprint(new_crt)
    # a bad new pair (a key of another certificate): logged, the running one kept
    shutil.copy(certs["rsa"][1], key)
    n = len(m.logs.snapshot())
    m.signal(signal.SIGHUP)
    err = m.wait_log(lambda l: l.get("event") == "reload" and l.get("level") == "error", start=n)
    assert err["msg"].startswith("%s: the key does not match the certificate in %s" % (key, crt)), err
    assert err["msg"].endswith("; keeping the running configuration")
    with starttls(m.port) as c:
        assert peer_fingerprint(c.sock) == fingerprint(new_crt)
    # the session from before both reloads kept its TLS
    old.ehlo()
    old.expect("NOOP", 250)
    old.close()


# ------------------------------------------------- the message, log, rules

def test_swaks_tls_received_and_decisions(tmoat, backend):
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % tmoat.port, "--tls", "--ehlo", "swaks.example.org",
                        "--from", SENDER, "--to", RCPT, "--header", "Subject: swaks over TLS",
                        "--body", "hello over TLS"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "TLS started" in r.stdout or "STARTTLS" in r.stdout, r.stdout
    m = backend.wait_stored(1)[0]
    received = m.data.split(b"\r\n\r\n", 1)[0].decode()
    assert ("by %s (moat) with ESMTPS (TLSv1.3 cipher TLS_AES_256_GCM_SHA384) id " % HOSTNAME) in received, received
    tmoat.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == "data")
    data = [d for d in tmoat.decisions() if d["stage"] == "data"]
    assert data and all(d["tls_version"] == "TLSv1.3" and d["tls_cipher"] == "TLS_AES_256_GCM_SHA384"
                        for d in data), data


def test_plaintext_unchanged(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], MSG).code == 250
    m = backend.wait_stored(1)[0]
    assert b" with ESMTP id " in assert_relayed(m, MSG)[-1]
    moat.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == "data")
    assert not [d for d in moat.decisions() if "tls_version" in d or "tls_cipher" in d]


def test_rules_see_tls(moat_factory, certs, backend, tmp_path):
    rules = tmp_path / "tls.rules"
    rules.write_text('reject not tls "530 5.7.0 Must issue a STARTTLS command first"\n'
                     'tag tls header "X-TLS: %{client}"\n'
                     'include builtin:default\n')
    m = tls_moat(moat_factory, [certs["ec"]], rules=str(rules), delay_reject="no")
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<%s>" % SENDER).lines == ["530 5.7.0 Must issue a STARTTLS command first"]
    with starttls(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], MSG).code == 250
    msg = backend.wait_stored(1)[0]
    assert b"X-TLS: 127.0.0.1\r\n" in msg.data
    r = subprocess.run([m.bin, "check", "-c", m.conf_path, "--client", "192.0.2.1", "--from", SENDER,
                        "--rcpt", RCPT], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "530 5.7.0" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([m.bin, "check", "-c", m.conf_path, "--client", "192.0.2.1", "--from", SENDER,
                        "--rcpt", RCPT, "--tls"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "X-TLS: 192.0.2.1" in r.stdout, r.stdout + r.stderr


def test_big_message_and_pipelining_over_tls(tmoat, backend):
    body = b"".join(b"line %07d of a message larger than every buffer on the way\r\n" % i for i in range(20000))
    msg = b"Subject: big\r\n\r\n" + body
    with starttls(tmoat.port) as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        assert [c.reply().code for _ in range(3)] == [250, 250, 354]
        c.send(msg + b".\r\n")
        assert c.reply(timeout=30).code == 250
    m = backend.wait_stored(1)[0]
    assert_relayed(m, msg)


@pytest.mark.parametrize("lines", [1000, 1100, 1500, 3000])
def test_message_pipelined_past_the_input_bound(moat_factory, certs, backend, lines):
    """The client writes its whole transaction at once while moat waits for the
    backend's RCPT reply: the input stops at its bound (64 KiB) in the middle of
    a TLS record whose rest OpenSSL holds; once moat takes the input, that rest
    is read without waiting for the socket (the client has nothing more to send).
    libevent 2.1 alone waited for data_timeout."""
    m = tls_moat(moat_factory, [certs["ec"]], data_timeout=20)
    body = b"".join(b"line %07d of a message larger than every buffer on the way\r\n" % i for i in range(lines))
    msg = b"Subject: pipelined\r\n\r\n" + body
    with starttls(m.port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n%s.\r\nQUIT\r\n" % (SENDER.encode(), RCPT.encode(), msg))
        assert [c.reply(timeout=5).code for _ in range(5)] == [250, 250, 354, 250, 221]
    assert_relayed(backend.wait_stored(1)[0], msg)


def test_sigterm_drains_a_tls_session(tmoat):
    """An idle session under TLS gets its 421 over TLS when moat stops."""
    c = starttls(tmoat.port)
    c.ehlo()
    tmoat.signal(signal.SIGTERM)
    r = c.reply(timeout=10)
    assert r.lines == ["421 4.3.2 %s Service shutting down" % HOSTNAME]
    with pytest.raises((ConnectionClosed, ssl.SSLError, OSError)):
        c.reply(timeout=10)
    assert tmoat.wait_exit() == 0
