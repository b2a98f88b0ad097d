"""The listeners of submission (issue 14, items 2 and 6): smtps_listen (RFC
8314, implicit TLS: the handshake at accept, the session under TLS from its
first byte) and submission_listen (STARTTLS required: 530 5.7.0 before it),
what each offers (AUTH only there, only under TLS; never on listen), that
both need tls_cert and tls_key, that the listener is logged and known to the
rules, the PROXY protocol before the ClientHello (a real HAProxy too), the
limits at accept and per address, a handshake that stalls, workers, and a
restart without downtime. AUTH itself: test_auth.py and test_auth_postfix.py.

Real clients: openssl s_client, swaks --tls-on-connect and --tls, Python ssl,
raw sockets."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from moatlib import HOSTNAME, ConnectionClosed, SMTPClient, free_port, run_moat_t
from test_proxy_protocol import v1, v2
from test_tls import client_ctx, s_client, starttls
from tlscerts import self_signed

SENDER = "alice@example.org"
RCPT = "bob@example.test"
MSG = b"Subject: submitted\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    return {"ec": self_signed(d, "ec", "ec")}


def sub_moat(moat_factory, certs, **keys):
    """moat on listen, smtps_listen and submission_listen, one ECDSA pair."""
    crt, key = certs["ec"]
    cfg = {"smtps_listen": "127.0.0.1:0", "submission_listen": "127.0.0.1:0", "tls_cert": crt, "tls_key": key}
    cfg.update(keys)
    return moat_factory(**cfg)


@pytest.fixture
def smoat(moat_factory, certs):
    return sub_moat(moat_factory, certs)


def smtps(port, ctx=None, source=None):
    """An SMTPClient on smtps_listen: the handshake first, then the banner."""
    c = SMTPClient(port, read_banner=False, source=source)
    c.sock = (ctx or client_ctx()).wrap_socket(c.sock, server_hostname=HOSTNAME)
    c.banner = c.reply()
    return c


def swaks(*args, timeout=30):
    return subprocess.run(["swaks", "--server", "127.0.0.1", "--helo", "client.example.org"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def rules_file(tmp_path, text):
    p = tmp_path / "site.rules"
    p.write_text(text)
    return str(p)


# ------------------------------------------------------- the listeners

def test_listening_lines_name_the_listener(smoat):
    lines = smoat.log_lines(event="listening")
    assert [l["listener"] for l in lines] == ["smtp", "smtps", "submission"], lines
    assert set(smoat.ports) == {"smtp", "smtps", "submission"}
    assert len(set(smoat.ports.values())) == 3


@pytest.mark.parametrize("key", ["smtps_listen", "submission_listen"])
def test_tls_listeners_need_a_certificate(moat_factory, tmp_path, key):
    """moat -t and a start refuse them without tls_cert and tls_key, naming the key."""
    m = moat_factory(_start=False, **{key: "127.0.0.1:0"})
    r = run_moat_t(m.conf_path)
    assert r.returncode == 1
    why = "implicit TLS" if key == "smtps_listen" else "STARTTLS is required there"
    assert r.stderr.decode().strip().endswith(": %s needs tls_cert and tls_key (%s)" % (key, why)), r.stderr
    m.expect_rc = 1
    m.start(wait_ready=False)
    assert m.wait_exit() == 1
    err = [l for l in m.logs.snapshot() if l.get("level") == "error"]
    assert err and "%s needs tls_cert and tls_key" % key in err[0]["msg"], m.stderr_text()
    assert not m.log_lines(event="listening")


def test_one_address_one_listener(moat_factory, certs, tmp_path):
    crt, key = certs["ec"]
    port = free_port()
    m = moat_factory(_start=False, listen="127.0.0.1:%d" % port, smtps_listen="127.0.0.1:%d" % port,
                     tls_cert=crt, tls_key=key)
    r = run_moat_t(m.conf_path)
    assert r.returncode == 1
    assert ("smtps_listen: \"127.0.0.1:%d\" is in listen already" % port) in r.stderr.decode(), r.stderr


# ------------------------------------------------------- implicit TLS

def test_s_client_on_smtps(smoat):
    """RFC 8314: TLS from the first byte; the banner comes under TLS; EHLO offers
    AUTH, never STARTTLS."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % smoat.ports["smtps"], "-crlf",
                        "-ign_eof", "-servername", HOSTNAME, "-brief"],
                       input="EHLO client.example.org\nQUIT\n", capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "Protocol version: TLSv1.3" in r.stderr, r.stderr
    assert r.stdout.startswith("220 %s ESMTP moat" % HOSTNAME), r.stdout
    assert "250-AUTH PLAIN LOGIN" in r.stdout and "STARTTLS" not in r.stdout, r.stdout
    assert "221 2.0.0 Bye" in r.stdout
    line = smoat.wait_log(lambda l: l.get("event") == "tls" and l.get("level") == "info")
    assert line["listener"] == "smtps" and line["tls_version"] == "TLSv1.3"
    # the handshake came first: the session's banner after it, its checks after it
    assert line["session"] == smoat.wait_session_end()[0]["session"]


def test_smtps_plaintext_client_gets_no_banner(smoat):
    """A client that speaks plaintext to smtps_listen is talking to a TLS server:
    the handshake fails, nothing is executed, one line says why."""
    c = SMTPClient(smoat.ports["smtps"], read_banner=False)
    c.send(b"EHLO client.example.org\r\nMAIL FROM:<x@y.example>\r\n")
    assert b"220" not in c.wait_closed()
    line = smoat.wait_log(lambda l: l.get("event") == "tls" and l.get("level") == "warning")
    assert line["msg"] == "TLS handshake failed", line
    assert not smoat.decisions()


def test_swaks_tls_on_connect_delivers(moat_factory, certs, backend, tmp_path):
    """A site that lets smtps clients send without AUTH (a rule of its own):
    Received says ESMTPS (RFC 3848), without the A of AUTH."""
    m = sub_moat(moat_factory, certs, rules=rules_file(tmp_path, "accept listener smtps\ninclude builtin:default\n"))
    r = swaks("--port", m.ports["smtps"], "--tls-on-connect", "--from", SENDER, "--to", RCPT)
    assert r.returncode == 0, r.stdout + r.stderr
    msg = backend.wait_stored(1)[0]
    assert b"with ESMTPS (TLSv1.3 cipher TLS_AES_256_GCM_SHA384) id " in msg.data, msg.data[:600]
    assert b"ESMTPSA" not in msg.data
    d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == "data")
    assert d["listener"] == "smtps" and d["tls_version"] == "TLSv1.3" and "auth_user" not in d, d


def test_submission_needs_auth_by_default(smoat, backend):
    """The built-in policy: submission is for clients that authenticate."""
    with smtps(smoat.ports["smtps"]) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)   # delay_reject: the refusal answers the RCPT
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        assert r.lines == ["530 5.7.0 Authentication required"], r
    d = smoat.wait_log(lambda l: l.get("event") == "decision" and l.get("code") == 530)
    assert d["listener"] == "smtps" and d["rule_id"] == "submission-auth-required", d
    assert backend.stored_events() == []


@pytest.mark.parametrize("partial", [b"", b"\x16\x03\x01\x02\x00\x01"])
def test_smtps_stalled_handshake_cut(moat_factory, certs, partial):
    """A client that does not finish the handshake is cut by command_timeout."""
    m = sub_moat(moat_factory, certs, command_timeout=2)
    c = SMTPClient(m.ports["smtps"], read_banner=False, timeout=15)
    start = time.monotonic()
    c.send(partial)
    assert c.wait_closed(timeout=15) == b""
    took = time.monotonic() - start
    assert 1.5 < took < 10, took
    line = m.wait_log(lambda l: l.get("event") == "tls" and l.get("level") == "warning")
    assert line["msg"] == "TLS handshake not complete in time (command_timeout)", line


# ------------------------------------------------------- submission: STARTTLS required

def test_submission_530_before_starttls(smoat):
    with SMTPClient(smoat.ports["submission"]) as c:
        texts = c.ehlo().texts
        assert "STARTTLS" in texts and not [t for t in texts if t.startswith("AUTH")], texts
        for cmd in ("MAIL FROM:<%s>" % SENDER, "RCPT TO:<%s>" % RCPT, "DATA", "AUTH PLAIN AGEAYg==", "VRFY bob"):
            assert c.cmd(cmd).lines == ["530 5.7.0 Must issue a STARTTLS command first"], cmd
        for cmd, code in (("NOOP", 250), ("RSET", 250), ("HELP", 214), ("HELO client.example.org", 250)):
            c.expect(cmd, code)
        assert c.cmd("STARTTLS").code == 220
    with starttls(smoat.ports["submission"]) as c:
        texts = c.ehlo().texts
        assert "AUTH PLAIN LOGIN" in texts and "STARTTLS" not in texts, texts
        c.expect("MAIL FROM:<%s>" % SENDER, 250)


def test_s_client_starttls_on_submission(smoat):
    r = s_client(smoat.ports["submission"], "-brief")
    assert r.returncode == 0, r.stderr
    after = r.stdout[r.stdout.index("250-" + HOSTNAME):]
    assert "250-AUTH PLAIN LOGIN" in after and "STARTTLS" not in after, r.stdout


def test_no_auth_on_port_25(smoat):
    """Port 25 is the MX: no AUTH, in plaintext or under TLS (502)."""
    with SMTPClient(smoat.ports["smtp"]) as c:
        assert not [t for t in c.ehlo().texts if t.startswith("AUTH")]
        assert c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==").lines == ["502 5.5.1 Error: command not implemented"]
    with starttls(smoat.ports["smtp"]) as c:
        assert not [t for t in c.ehlo().texts if t.startswith("AUTH")]
        assert c.cmd("AUTH LOGIN").lines == ["502 5.5.1 Error: command not implemented"]
        c.expect("MAIL FROM:<%s>" % SENDER, 250)


# ------------------------------------------------------- PROXY protocol before the ClientHello

def client_hello_first(ctx):
    """A TLS client on memory BIOs: its ClientHello, and the object to go on with."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=HOSTNAME)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, inc, out


def bio_session(sock, obj, inc, out, lines):
    """Finish the handshake and speak lines over a socket, memory BIOs between; the replies."""
    def pump_out():
        data = out.read()
        if data:
            sock.sendall(data)

    def pump_in():
        data = sock.recv(65536)
        if not data:
            raise ConnectionClosed("closed")
        inc.write(data)

    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump_out()
            pump_in()
    pump_out()
    got = b""
    for line in [None] + list(lines):
        if line is not None:
            obj.write(line.encode() + b"\r\n")
            pump_out()
        while True:
            try:
                got += obj.read(65536)
            except ssl.SSLWantReadError:
                pump_in()
                continue
            if got.endswith(b"\r\n") and not got.split(b"\r\n")[-2][3:4] == b"-":
                break
    return got.decode()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_header_then_client_hello_in_one_packet(moat_factory, certs, version):
    """HAProxy sends its header, then the client's bytes: the ClientHello may
    arrive in the same packet. moat reads the header and not one byte more;
    OpenSSL gets the whole ClientHello."""
    m = sub_moat(moat_factory, certs, proxy_protocol="yes")
    port = m.ports["smtps"]
    header = (v1 if version == "v1" else v2)("198.51.100.20", dport=port)
    obj, inc, out = client_hello_first(client_ctx())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(header + out.read())
        got = bio_session(s, obj, inc, out, ["EHLO client.example.org", "QUIT"])
    assert got.startswith("220 %s ESMTP moat" % HOSTNAME), got
    assert "250-AUTH PLAIN LOGIN" in got and "221 2.0.0 Bye" in got, got
    end = m.wait_session_end()[0]
    assert end["client_ip"] == "198.51.100.20", end


def test_haproxy_in_front_of_smtps(moat_factory, certs, tmp_path):
    """A real HAProxy (mode tcp, send-proxy-v2) in front of smtps_listen: the
    client's TLS goes through it to moat, which sees the client's address."""
    haproxy = shutil.which("haproxy")
    if not haproxy:
        pytest.skip("haproxy is not installed")
    m = sub_moat(moat_factory, certs, proxy_protocol="yes")
    front = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n"
                   "  timeout server 30s\nlisten smtps\n  bind 127.0.0.1:%d\n  server moat 127.0.0.1:%d send-proxy-v2\n"
                   % (front, m.ports["smtps"]))
    hp = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", front), timeout=1).close()
                break
            except OSError:
                assert hp.poll() is None and time.monotonic() < deadline, hp.stdout.read() if hp.poll() else ""
                time.sleep(0.05)
        start = len(m.logs.snapshot())
        r = swaks("--port", front, "--tls-on-connect", "--quit-after", "EHLO")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "AUTH PLAIN LOGIN" in r.stdout
        end = m.wait_log(lambda l: l.get("event") == "tls" and l.get("level") == "info", start=start)
        assert end["client_ip"] == "127.0.0.1" and end["listener"] == "smtps"
    finally:
        hp.send_signal(signal.SIGTERM)
        try:
            hp.wait(10)
        except subprocess.TimeoutExpired:
            hp.kill()
            hp.wait()


# ------------------------------------------------------- limits, workers, restart

def test_smtps_over_the_per_address_limit_closed_before_the_handshake(moat_factory, certs):
    m = sub_moat(moat_factory, certs, max_connections_per_ip=1)
    first = smtps(m.ports["smtps"])
    assert first.banner.code == 220
    c = SMTPClient(m.ports["smtps"], read_banner=False)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
    d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("code") == 421)
    assert d["listener"] == "smtps" and d["reason"] == "too many connections from this address", d
    first.close()


def test_smtps_over_max_connections_closed(moat_factory, certs):
    m = sub_moat(moat_factory, certs, max_connections=1)
    first = smtps(m.ports["smtps"])
    assert first.banner.code == 220
    c = SMTPClient(m.ports["smtps"], read_banner=False)
    assert c.wait_closed() == b""
    d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("code") == 421)
    assert d["listener"] == "smtps" and d["reason"] == "too many connections (closed before the TLS handshake)", d
    first.close()


def test_submission_over_the_limit_refused_and_lingers(moat_factory, certs):
    """On submission_listen (plaintext until STARTTLS) a refusal at connect is a 421
    and the connection lingers, as on port 25."""
    m = sub_moat(moat_factory, certs, max_connections_per_ip=1)
    first = SMTPClient(m.ports["submission"])
    c = SMTPClient(m.ports["submission"])
    assert c.banner.lines == ["421 4.7.0 %s Error: too many connections from your address" % HOSTNAME]
    assert c.cmd("EHLO x.example").lines == ["503 5.5.1 Error: this connection was refused, send QUIT"]
    c.expect("QUIT", 221)
    first.close()
    d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("code") == 421)
    assert d["listener"] == "submission", d


def test_workers_serve_every_listener(moat_factory, certs):
    m = sub_moat(moat_factory, certs, workers=2)
    m.logs.wait_count(lambda l: l.get("event") == "ready", 2)
    assert len(m.log_lines(event="listening")) == 3   # one line per address, whatever the workers
    for _ in range(12):
        with smtps(m.ports["smtps"]) as c:
            assert "AUTH PLAIN LOGIN" in c.ehlo().texts
        with starttls(m.ports["submission"]) as c:
            assert "AUTH PLAIN LOGIN" in c.ehlo().texts
    ends = m.wait_session_end(24)
    assert {l["worker"] for l in ends} == {0, 1}, "one worker served everything"


def test_restart_without_downtime_on_every_listener(moat_factory, certs, backend, tmp_path):
    """A new moat starts on the same three ports (SO_REUSEPORT) and the old one
    drains: clients of smtps and submission all the while, none refused."""
    rules = rules_file(tmp_path, "accept not listener smtp\ninclude builtin:default\n")
    old = sub_moat(moat_factory, certs, rules=rules, max_connections_per_ip=1000)
    stop, errors, done = threading.Event(), [], []

    def client(kind):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                c = smtps(old.ports["smtps"]) if kind == "smtps" else starttls(old.ports["submission"])
                with c:
                    c.ehlo()
                    assert c.transaction(SENDER, [RCPT], b"Subject: %s %d\r\n\r\nx\r\n" % (kind.encode(), i)).code == 250
                    c.expect("QUIT", 221)
                done.append(kind)
            except Exception as e:  # noqa: BLE001 - every failure is the test's finding
                errors.append("%s %d: %r" % (kind, i, e))

    threads = [threading.Thread(target=client, args=(k,)) for k in ("smtps", "submission", "smtps", "submission")]
    for t in threads:
        t.start()
    try:
        old.logs.wait_until(lambda ls: len(done) >= 20, timeout=30, what="sessions on the old moat")
        new = sub_moat(moat_factory, certs, rules=rules, max_connections_per_ip=1000,
                       listen="127.0.0.1:%d" % old.ports["smtp"], smtps_listen="127.0.0.1:%d" % old.ports["smtps"],
                       submission_listen="127.0.0.1:%d" % old.ports["submission"])
        new.logs.wait_until(lambda ls: len(new.log_lines(event="session_end")) >= 10, timeout=30,
                            what="sessions on the new moat")
        old.signal(signal.SIGTERM)
        assert old.wait_exit(20) == 0
        n = len(new.log_lines(event="session_end"))
        new.logs.wait_until(lambda ls: len(new.log_lines(event="session_end")) >= n + 10, timeout=30,
                            what="sessions after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:5]
    assert len(backend.wait_stored(len(done), timeout=30)) == len(done)
