"""moat in front of Debian's real Postfix smtpd.

A private Postfix instance (its own config, queue and data directories and Maildirs under one
temp dir, smtpd on a free port of 127.0.0.1, no chroot; see pf_helpers.PfPostfix) is moat's
backend. Mail for example.test sent through moat must land in the Maildir with its body byte
for byte, and Postfix's own "550 5.1.1" for an unknown recipient must reach the client
through moat unchanged.

Self-contained: its fixtures (all named pf_*) start the DNS server, Postfix and moat; they
rely on nothing from conftest.py. Needs root (Postfix's master runs as root) and the postfix
and python3-dnslib packages.
"""

import os
import pathlib
import shutil
import smtplib
import uuid

import pytest

from pf_helpers import PF_DOMAIN, PF_HELO, PF_POSTFIX, PfDns, PfMoat, PfPostfix

PF_MOAT_BIN = os.environ.get("MOAT_BIN") or str(
    pathlib.Path(__file__).resolve().parents[2] / "build" / "moat")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix instance needs root"),
    pytest.mark.skipif(not os.path.exists(PF_POSTFIX), reason="postfix is not installed"),
    pytest.mark.skipif(not shutil.which("smtpd", path="/usr/lib/postfix/sbin"),
                       reason="postfix daemons not found"),
]

SENDER = "alice@sender.test"
RCPT = "bob@" + PF_DOMAIN
UNKNOWN = "nobody@" + PF_DOMAIN


@pytest.fixture(scope="module")
def pf_dns():
    pytest.importorskip("dnslib")
    dns = PfDns()
    yield dns
    dns.stop()


@pytest.fixture(scope="module")
def pf_postfix():
    pf = PfPostfix(users=("bob",)).start()
    yield pf
    pf.stop()


@pytest.fixture
def pf_moat(tmp_path, pf_postfix, pf_dns):
    if not os.access(PF_MOAT_BIN, os.X_OK):
        pytest.fail("moat binary not found: %s (run make, or set MOAT_BIN)" % PF_MOAT_BIN)
    conf = (
        "listen = 127.0.0.1:0\n"
        "run_as_root = yes\n"
        "backend = 127.0.0.1:%d\n"
        "hostname = moat.e2e.test\n"
        "local_domains = %s\n"
        "dns_servers = 127.0.0.1:%d\n"
        "log = stderr\n" % (pf_postfix.port, PF_DOMAIN, pf_dns.port)
    )
    moat = PfMoat(PF_MOAT_BIN, tmp_path / "moat.conf", conf)
    yield moat
    rc = moat.stop()
    assert rc == 0, "moat exited with %s on SIGTERM; stderr:\n%s" % (rc, moat.log_tail())


def pf_message(token, body):
    """A plain RFC 5322 message (CRLF line ends) whose Message-ID carries token."""
    head = (
        "From: Alice <%s>\r\n"
        "To: Bob <%s>\r\n"
        "Subject: e2e %s\r\n"
        "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <%s@sender.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        % (SENDER, RCPT, token, token)
    )
    return (head + "\r\n" + body).encode()


# Lines that a careless proxy breaks: leading dots (dot-stuffing), a lone dot, trailing
# blanks, a tab, a 900-byte line, blank lines, and a last line that looks like a header.
PF_BODY = (
    "Hello Bob,\r\n"
    "\r\n"
    ".a line that starts with a dot\r\n"
    "..two dots\r\n"
    ".\tdot then tab\r\n"
    "trailing blanks   \r\n"
    "\r\n"
    "\r\n"
    + "x" * 900 + "\r\n"
    "From the start of a line (mbox would quote this)\r\n"
    "Subject: not a header\r\n"
)


def pf_split(data):
    head, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    assert sep, "delivered message has no header/body separator"
    return head, body


def test_message_delivered_through_moat_into_postfix_maildir(pf_moat, pf_postfix):
    token = uuid.uuid4().hex
    with smtplib.SMTP(pf_moat.host, pf_moat.port, local_hostname=PF_HELO, timeout=30) as s:
        code, banner = s.ehlo()
        assert code == 250, banner
        refused = s.sendmail(SENDER, [RCPT], pf_message(token, PF_BODY))
        assert refused == {}

    data = pf_postfix.wait_for_mail("bob", token.encode())
    head, body = pf_split(data)
    assert body == PF_BODY.replace("\r\n", "\n").encode(), "body changed on the way"
    # Envelope and headers as Postfix saw them.
    assert b"Return-Path: <%s>" % SENDER.encode() in head
    assert b"Delivered-To: %s" % RCPT.encode() in head
    assert b"Message-ID: <%s@sender.test>" % token.encode() in head
    assert b"Subject: e2e %s" % token.encode() in head
    # Postfix's Received line names the EHLO it got: moat's hostname, so moat relayed it.
    assert b"Received: from moat.e2e.test (" in head, head
    # Postfix's own account: smtpd took it from a loopback client (moat) and virtual(8)
    # delivered it; found through the queue id that cleanup logged with the Message-ID.
    qline = pf_postfix.wait_for_log("message-id=<%s@sender.test>" % token)
    qid = qline.split(": message-id=")[0].rsplit(" ", 1)[1]
    pf_postfix.wait_for_log("%s: client=unknown[127.0.0.1]" % qid)
    line = pf_postfix.wait_for_log("%s: to=<%s>, relay=virtual" % (qid, RCPT))
    assert "status=sent (delivered to maildir)" in line, line


def test_unknown_recipient_gets_postfix_550_through_moat(pf_moat, pf_postfix):
    with smtplib.SMTP(pf_moat.host, pf_moat.port, local_hostname=PF_HELO, timeout=30) as s:
        s.ehlo()
        code, msg = s.mail(SENDER)
        assert code == 250, msg
        code, msg = s.rcpt(UNKNOWN)
        assert code == 550, msg
        assert msg.startswith(b"5.1.1 <%s>" % UNKNOWN.encode()), msg
        assert b"User unknown in virtual mailbox table" in msg, msg
        s.rset()
    # The reply is Postfix's own: its smtpd logged the reject.
    pf_postfix.wait_for_log("NOQUEUE: reject: RCPT from")
    pf_postfix.wait_for_log("to=<%s>" % UNKNOWN)


def test_mixed_recipients_only_the_known_one_delivered(pf_moat, pf_postfix):
    token = uuid.uuid4().hex
    with smtplib.SMTP(pf_moat.host, pf_moat.port, local_hostname=PF_HELO, timeout=30) as s:
        s.ehlo()
        refused = s.sendmail(SENDER, [UNKNOWN, RCPT], pf_message(token, "short body\r\n"))
    assert list(refused) == [UNKNOWN]
    assert refused[UNKNOWN][0] == 550 and refused[UNKNOWN][1].startswith(b"5.1.1"), refused
    data = pf_postfix.wait_for_mail("bob", token.encode())
    assert pf_split(data)[1] == b"short body\n"
