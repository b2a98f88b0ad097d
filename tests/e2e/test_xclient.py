"""XCLIENT (issue 14, item 5): xclient = auto | yes | no. When the backend offers XCLIENT
(Postfix's smtpd_authorized_xclient_hosts), moat tells it the real client (ADDR PORT NAME HELO
PROTO), takes its new greeting and says EHLO again with the client's HELO; Postfix then logs the
real client and applies its own client restrictions to it. Else XFORWARD (its log only).

The real Postfix here (pf_helpers.PfStack) takes mail only over TLS from moat (TLS required, a
certificate of a test CA), authorizes XCLIENT from 127.0.0.0/8, and has a check_client_access
rule that refuses one real client address, 127.0.0.2: clients connect to moat from 127.0.0.2,
.3, .4 (moat itself reaches Postfix from 127.0.0.1), so Postfix's log and refusal can only come
from XCLIENT. 127.0.0.1 has a forward-confirmed name in the stack's DNS (mail.sender.test): XCLIENT
NAME carries it.
"""

import re
import shutil

import pytest

from moatlib import SMTPClient
from pf_helpers import PF_DOMAIN, PF_HELO, PfStack
from tlscerts import TestCA

SENDER = "alice@sender.test"
RCPT = "bob@" + PF_DOMAIN
REFUSED = "127.0.0.2"
HELO = "client.helo.test"

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="the openssl CLI makes the test CA")


@pytest.fixture(scope="module")
def pf(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pf-xclient")
    ca = TestCA(tmp / "ca")
    crt, key = ca.issue("pf", ["pf." + PF_DOMAIN])
    main_cf = {
        "smtpd_tls_cert_file": crt,
        "smtpd_tls_key_file": key,
        "smtpd_tls_security_level": "encrypt",
        "smtpd_tls_loglevel": "1",
        "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
        "smtpd_authorized_xforward_hosts": "127.0.0.0/8",
        "smtpd_client_restrictions":
            "check_client_access inline:{ {%s=REJECT real client refused by postfix} }" % REFUSED,
    }
    s = PfStack(tmp, main_cf=main_cf, moat_keys={
        "backend_tls": "required", "backend_tls_ca": ca.cert, "backend_tls_name": "pf." + PF_DOMAIN})
    s.ca = ca
    yield s
    s.stop()


def send(m, source, tag):
    """A transaction from source: (RCPT reply, final reply or None). A refused one ends with
    RSET (the backend connection may then serve the next session)."""
    with SMTPClient(m.port, source=source) as c:
        c.ehlo(HELO)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        final = None
        if r.code == 250:
            final = c.data(b"Subject: %s\r\nMessage-ID: <%s@sender.test>\r\n\r\nhi\r\n" % (tag, tag), timeout=30)
        else:
            c.expect("RSET", 250)
        c.expect("QUIT", 221)
    return r, final


def qid_of(final):
    return re.search(r"queued as ([0-9A-F]+)", final.line).group(1)


def test_probe_says_xclient(pf):
    probe = pf.moat.log_lines(event="backend_probe")[0]
    assert "xclient=1" in probe["msg"] and "tls=TLSv1.3" in probe["msg"], probe


def test_postfix_logs_the_real_client(pf):
    start = pf.pf.maillog_size()
    r, final = send(pf.moat, "127.0.0.3", b"xc-real")
    assert final is not None and final.code == 250, (r, final)
    qid = qid_of(final)
    line = pf.pf.wait_for_log("%s: client=" % qid, start=start)
    assert line.rstrip().endswith("%s: client=unknown[127.0.0.3]" % qid), line
    data = pf.pf.wait_for_mail("bob", b"<xc-real@sender.test>")
    # Postfix's Received field: the client's HELO and address, over TLS from moat
    assert re.search(rb"Received: from %s \(unknown \[127\.0\.0\.3\]\)" % HELO.encode(), data), data[:600]
    assert b"with ESMTPS id " + qid.encode() in data


def test_postfix_refuses_the_real_client(pf):
    """check_client_access sees 127.0.0.2 through XCLIENT: its refusal reaches the client."""
    before = pf.maildir_files("bob")
    start = pf.pf.maillog_size()
    r, final = send(pf.moat, REFUSED, b"xc-refused")
    assert final is None
    assert r.code == 554 and r.line == \
        "554 5.7.1 <unknown[%s]>: Client host rejected: real client refused by postfix" % REFUSED, r
    pf.pf.wait_for_log(re.compile(r"NOQUEUE: reject: RCPT from unknown\[%s\]: 554 5\.7\.1 .*helo=<%s>"
                                  % (re.escape(REFUSED), re.escape(HELO))), start=start)
    d = pf.moat.wait_log(lambda l: l.get("event") == "decision" and l.get("client_ip") == REFUSED and
                         l.get("stage") == "rcpt")
    assert d["code"] == 554 and d["reason"].startswith("backend: 554 5.7.1"), d
    assert pf.maildir_files("bob") == before


def test_name_is_the_forward_confirmed_one(pf):
    """127.0.0.1 has PTR mail.sender.test, whose A is 127.0.0.1: XCLIENT NAME carries it
    (moat looks it up because the backend takes it, though no rule tests rdns)."""
    start = pf.pf.maillog_size()
    r, final = send(pf.moat, "127.0.0.1", b"xc-name")
    qid = qid_of(final)
    line = pf.pf.wait_for_log("%s: client=" % qid, start=start)
    assert line.rstrip().endswith("client=%s[127.0.0.1]" % PF_HELO), line


def test_pooled_connection_gets_xclient_per_client(pf):
    """One Postfix connection kept between sessions serves three clients in turn: XCLIENT (after
    RSET) each time, so each is judged and logged as itself, never as the one before."""
    m = pf.add_moat(backend_tls="required", backend_tls_ca=pf.ca.cert, backend_tls_name="pf." + PF_DOMAIN,
                    backend_cache_time=30)
    start = pf.pf.maillog_size()
    r3, f3 = send(m, "127.0.0.3", b"xc-pool-3")
    r2, f2 = send(m, REFUSED, b"xc-pool-2")
    r4, f4 = send(m, "127.0.0.4", b"xc-pool-4")
    assert f3.code == 250 and f4.code == 250, (r3, f3, r4, f4)
    assert r2.code == 554 and "<unknown[%s]>" % REFUSED in r2.line, r2
    for qid, addr in ((qid_of(f3), "127.0.0.3"), (qid_of(f4), "127.0.0.4")):
        line = pf.pf.wait_for_log("%s: client=" % qid, start=start)
        assert line.rstrip().endswith("client=unknown[%s]" % addr), line
    log = pf.pf.maillog_since(start)
    assert log.count("connect from unknown[127.0.0.1]") - log.count("disconnect from") <= 1
    assert log.count("TLS connection established") == 1, log   # one connection for the three


def test_xclient_no_sends_xforward(pf):
    m = pf.add_moat(backend_tls="required", backend_tls_ca=pf.ca.cert, backend_tls_name="pf." + PF_DOMAIN,
                    xclient="no")
    start = pf.pf.maillog_size()
    r, final = send(m, REFUSED, b"xc-no")
    # Postfix's client restrictions see moat (127.0.0.1): the refused address gets through
    assert final is not None and final.code == 250, (r, final)
    line = pf.pf.wait_for_log("%s: client=" % qid_of(final), start=start)
    assert line.rstrip().endswith("client=unknown[127.0.0.1], orig_client=unknown[%s]" % REFUSED), line
    bye = pf.pf.wait_for_log(re.compile(r"disconnect from unknown\[127\.0\.0\.1\] .*xforward=1"), start=start)
    assert "xclient=" not in bye, bye


def test_xclient_yes_without_xclient_is_451(moat_factory, backend):
    """xclient = yes and the backend does not offer XCLIENT: refused (451 4.3.5), never sent on
    with the client judged as moat; the start-up probe and moat -t say so."""
    m = moat_factory(xclient="yes")
    m.wait_log(lambda l: l.get("event") == "backend_probe" and l["level"] == "warning" and
               l["msg"] == "xclient = yes and the backend offers no XCLIENT: every RCPT gets 451 4.3.5 until it does")
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.org>", 250)
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert (r.code, r.enhanced()) == (451, ["4.3.5"]), r
    d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("code") == 451)
    assert d["reason"] == "xclient = yes and the backend offers no XCLIENT", d
    assert "MAIL" not in " ".join(backend.commands())


def test_neither_xclient_nor_xforward_warns(moat_factory, backend):
    """The recording backend offers neither: a warning at start, and moat -t says so."""
    import subprocess
    from moatlib import MOAT_BIN

    m = moat_factory()
    w = m.wait_log(lambda l: l.get("event") == "backend_probe" and l["level"] == "warning")
    assert w["msg"].startswith("the backend offers neither XCLIENT nor XFORWARD"), w
    r = subprocess.run([MOAT_BIN, "-t", "-c", m.conf_path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert "%s: backend 127.0.0.1:%d: smtputf8=0 dsn=0 size=52428800 xforward=0 xclient=0 starttls=0 tls=none" % (
        m.conf_path, backend.port) in lines, lines
    assert [l for l in lines if l.startswith(m.conf_path + ": warning: the backend offers neither XCLIENT "
                                             "nor XFORWARD")], lines


def test_t_warns_when_the_backend_is_down(moat_factory):
    import subprocess
    from moatlib import MOAT_BIN

    m = moat_factory(_backend=None, _start=False)
    r = subprocess.run([MOAT_BIN, "-t", "-c", m.conf_path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert "configuration OK" in r.stdout
    assert re.search(r": warning: backend 127\.0\.0\.1:\d+ not reachable \(Connection refused\): moat starts "
                     r"without it", r.stdout), r.stdout


def test_t_reports_the_backends_tls_and_xclient(pf):
    import subprocess
    from moatlib import MOAT_BIN

    r = subprocess.run([MOAT_BIN, "-t", "-c", pf.moat.conf_path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert re.search(r": backend 127\.0\.0\.1:\d+: smtputf8=1 dsn=1 size=\d+ xforward=1 xclient=1 starttls=1 "
                     r"tls=TLSv1\.3 verified=1\n", r.stdout), r.stdout
    assert "warning" not in r.stdout, r.stdout
