"""moat in front of Debian's real Exim (exim4-daemon-light 4.96), as docs/deploying.md, "In front
of Exim", sets it up (issue 15, item 7).

A private Exim daemon (exim_helpers.ExExim: its own spool, logs and Maildirs, a free port of
127.0.0.1) whose main section starts with the guide's exim4.conf.localmacros lines and its
dc_local_interfaces, with the guide's ACL file for moat's port, all read from the guide, so the
guide and this test cannot drift apart. moat in front of it, a loopback DNS server for moat's
checks. Each delivered message is read from the Maildir and compared byte for byte; Exim's log
says what reached it.

Needs root, python3-dnslib and the Exim that `make deps` unpacks (see the Makefile: Debian's
exim4 packages conflict with postfix, so it is not installed as a package).
"""

import hashlib
import os
import pathlib
import re
import time

import pytest

from exim_helpers import EXIM_DOMAIN, ExExim, exim_missing
from moatlib import SMTPClient, dotstuff
from pf_helpers import PF_HELO, PfMoat
from test_postfix_backend import pf_dns  # noqa: F401 (fixture)
from tlscerts import TestCA

REPO = pathlib.Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "deploying.md"
MOAT_BIN = os.environ.get("MOAT_BIN") or str(REPO / "build" / "moat")

pytestmark = pytest.mark.skipif(exim_missing() is not None, reason=exim_missing() or "")

SENDER = "alice@sender.test"
BOB, CAROL, UNKNOWN = ("%s@%s" % (u, EXIM_DOMAIN) for u in ("bob", "carol", "nobody"))


def guide_block(first_line):
    """The lines of the guide's code block whose first line matches first_line (a regex),
    without that line."""
    m = re.search(r"```\n(%s[^\n]*)\n(.*?)```" % first_line, GUIDE.read_text(), re.S)
    assert m, "no block starting %r in %s" % (first_line, GUIDE)
    return m.group(2)


def guide_exim():
    """ExExim's arguments from the guide: localmacros, interfaces, files."""
    iface = guide_block(r"# /etc/exim4/update-exim4\.conf\.conf")
    m = re.fullmatch(r"dc_local_interfaces='([^']+)'\n", iface)
    assert m, iface
    macros = guide_block(r"# /etc/exim4/exim4\.conf\.localmacros: Exim behind moat")
    acl = guide_block(r"# /etc/exim4/acl_moat_rcpt")
    assert "/etc/exim4/acl_moat_rcpt" in macros and "smtp_accept_queue_per_connection = 0" in macros, macros
    return {"localmacros": macros, "interfaces": m.group(1), "files": {"acl_moat_rcpt": acl}}


def guide_tls():
    """(the guide's TLS localmacros, its moat.conf TLS keys)."""
    macros = guide_block(r"# /etc/exim4/exim4\.conf\.localmacros on the Exim host")
    keys = dict((k.strip(), v.strip()) for k, _, v in (
        l.partition("=") for l in guide_block(r"# moat\.conf: TLS to Exim").splitlines() if l.strip()))
    assert "MAIN_TLS_ENABLE" in macros and keys.get("backend_tls") == "required", (macros, keys)
    return macros, keys


@pytest.fixture(scope="module")
def exim():
    ex = ExExim(**guide_exim()).start()
    yield ex
    panic = ex.paniclog()
    ex.stop()
    assert not panic, "exim's paniclog:\n" + panic


def start_moat(tmp_path, dns, ex, **keys):
    if not os.access(MOAT_BIN, os.X_OK):
        pytest.fail("moat binary not found: %s (run make, or set MOAT_BIN)" % MOAT_BIN)
    conf = ("listen = 127.0.0.1:0\nrun_as_root = yes\nbackend = 127.0.0.1:%d\nhostname = moat.e2e.test\n"
            "local_domains = %s\ndns_servers = 127.0.0.1:%d\nlog = stderr\nworkers = 1\n"
            % (ex.port, EXIM_DOMAIN, dns.port))
    conf += "".join("%s = %s\n" % kv for kv in keys.items())
    return PfMoat(MOAT_BIN, tmp_path / "moat.conf", conf)


@pytest.fixture
def moat(tmp_path, pf_dns, exim):
    m = start_moat(tmp_path, pf_dns, exim)
    yield m
    assert m.stop() == 0, m.log_tail()


def probe_line(m):
    return m_wait(m, lambda l: '"backend_probe"' in l and '"level":"info"' in l)


def m_wait(m, pred, timeout=15):
    """The first of moat's log lines matching pred (PfMoat's reader thread fills m.lines)."""
    deadline = time.monotonic() + timeout
    while True:
        hits = [l for l in list(m.lines) if pred(l)]
        if hits:
            return hits[0]
        assert time.monotonic() < deadline, "no such moat log line:\n" + m.log_tail()
        time.sleep(0.02)


def message(token, body=b"hello\r\n", extra=b""):
    return (b"From: Alice <%s>\r\nTo: Bob <%s>\r\nSubject: exim %s\r\nMessage-ID: <%s@sender.test>\r\n%s\r\n"
            % (SENDER.encode(), BOB.encode(), token, token, extra)) + body


# Lines a careless proxy breaks: dots (dot-stuffing), a lone dot, a dot and CR LF, trailing
# blanks, a tab, a long line, blank lines, a line that looks like a header or mbox's From.
BODY = (b"Hello Bob,\r\n\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\n. \r\n"
        b"trailing blanks   \r\n\tTab\r\n\r\n\r\n" + b"x" * 900 + b"\r\n"
        b"From the start of a line\r\nSubject: not a header\r\n.\r\n")


def send(m, rcpts, msg, helo=PF_HELO, sender=SENDER):
    """One transaction through moat: {rcpt: reply} and the end-of-data reply (None if no RCPT
    was taken)."""
    with SMTPClient(m.port) as c:
        c.ehlo(helo)
        c.expect("MAIL FROM:<%s>" % sender, 250)
        got = {r: c.cmd("RCPT TO:<%s>" % r) for r in rcpts}
        done = c.data(msg, timeout=60) if any(r.code == 250 for r in got.values()) else None
        c.cmd("QUIT")
    return got, done


def split(data):
    head, sep, body = data.partition(b"\n\n")
    assert sep, data[:500]
    return head, body


def exim_id(reply):
    m = re.search(r"\bid=(\S+)", reply.line)
    assert reply.code == 250 and m, reply
    return m.group(1)


def test_delivered_into_the_maildir_byte_for_byte(moat, exim):
    """Exim's Maildir has the client's message whole (dot-stuffed lines too) under moat's
    Received and Authentication-Results fields and Exim's own; moat's decision line names Exim's
    message id; moat took Exim's STARTTLS (its self-signed certificate, unverified)."""
    start = exim.mainlog_size()
    original = message(b"t1", BODY)
    got, done = send(moat, [BOB], original)
    qid = exim_id(done)
    data = exim.wait_for_mail("bob", b"<t1@sender.test>")
    head, body = split(data)
    assert data.endswith(original.replace(b"\r\n", b"\n")), data[-600:]
    assert body == BODY.replace(b"\r\n", b"\n")
    # Exim's fields, then moat's, then the client's header
    fields = re.findall(rb"^([A-Za-z-]+):", head, re.M)
    assert fields[:6] == [b"Return-path", b"Envelope-to", b"Delivery-date", b"Received",
                          b"Authentication-Results", b"Received"], fields
    assert re.search(rb"Received: from \[127\.0\.0\.1\] \(helo=moat\.e2e\.test\)\n\tby exim\.example\.test"
                     rb" with esmtps +\(TLS1\.[23]\) tls TLS_\S+\n", head), head
    assert re.search(rb"Authentication-Results: moat\.e2e\.test;.*spf=pass", head, re.S), head
    assert re.search(rb"Received: from %s \(\[127\.0\.0\.1\]\)\n\tby moat\.e2e\.test \(moat\) with ESMTP id "
                     % PF_HELO.encode(), head), head
    assert re.search(r"starttls=1 tls=TLSv1\.[23] verified=0", probe_line(moat)), probe_line(moat)
    line = exim.wait_for_log("%s <= %s H=(moat.e2e.test) [127.0.0.1] P=esmtps" % (qid, SENDER), start)
    assert "for %s" % BOB in line, line
    exim.wait_for_log("%s => bob <%s> R=mailboxes T=maildir" % (qid, BOB), start)
    decision = m_wait(moat, lambda l: '"stage":"data"' in l and '"action":"accept"' in l)
    assert '"queue_id":"%s"' % qid in decision, decision


def test_exim_refuses_an_unknown_user_with_its_own_reply(moat, exim):
    """The guide's ACL on moat's port: Exim verifies the recipient at RCPT and its 550 reaches
    the client verbatim; the known recipient of the same transaction is delivered alone."""
    start = exim.mainlog_size()
    got, done = send(moat, [UNKNOWN, BOB], message(b"t2"))
    assert got[UNKNOWN].lines == ["550 Unrouteable address"], got
    assert got[BOB].code == 250 and done.code == 250, (got, done)
    exim.wait_for_log("F=<%s> rejected RCPT <%s>: Unrouteable address" % (SENDER, UNKNOWN), start)
    line = exim.wait_for_log("%s <= %s" % (exim_id(done), SENDER), start)
    assert line.endswith("for " + BOB), line


def test_without_the_guides_acl_exim_takes_unknown_users(tmp_path, pf_dns):
    """Why the guide has the ACL: Debian's acl_check_rcpt accepts 127.0.0.1 (relay_from_hosts)
    before it verifies a recipient, so without the guide's MAIN_ACL_CHECK_RCPT an unknown user
    is taken at RCPT, and Exim bounces it later."""
    args = guide_exim()
    args["localmacros"] = "\n".join(l for l in args["localmacros"].splitlines()
                                    if not l.startswith("MAIN_ACL_CHECK_RCPT"))
    ex = ExExim(**args).start()
    try:
        m = start_moat(tmp_path, pf_dns, ex)
        try:
            got, done = send(m, [UNKNOWN], message(b"t3"))
            assert got[UNKNOWN].code == 250 and done.code == 250, (got, done)
            ex.wait_for_log("** %s: Unrouteable address" % UNKNOWN)
        finally:
            assert m.stop() == 0, m.log_tail()
    finally:
        ex.stop()


def test_moats_refusals_never_reach_exim(moat, exim):
    """A sender domain that does not exist, a relay attempt, and a message moat refuses at its
    end of data: Exim sees none of them as a message; then a good one goes through."""
    start = exim.mainlog_size()
    got, _ = send(moat, [BOB], message(b"t4"), sender="eve@nx.invalid")
    assert got[BOB].code == 550, got
    got, _ = send(moat, ["someone@elsewhere.example"], message(b"t5"))
    assert got["someone@elsewhere.example"].code in (550, 554), got
    got, done = send(moat, [BOB], message(b"t6", b"a NUL \x00 byte\r\n"))
    assert got[BOB].code == 250 and done.code == 550 and done.enhanced()[0] == "5.6.0", done
    got, done = send(moat, [BOB], message(b"t7"))
    qid = exim_id(done)
    exim.wait_for_log("%s <= %s" % (qid, SENDER), start)
    exim.wait_for_mail("bob", b"<t7@sender.test>")
    log = exim.mainlog_since(start)
    assert "nx.invalid" not in log and "elsewhere.example" not in log, log
    assert log.count(" <= ") == 1, log
    assert not [f for f in os.listdir(exim.maildir_new("bob")) if b"<t6@" in open(
        os.path.join(exim.maildir_new("bob"), f), "rb").read()]


def test_neither_xclient_nor_xforward(moat, exim, tmp_path, pf_dns):
    """Exim 4.96 offers neither: moat (xclient = auto) sends neither and warns at start, and
    Exim logs no unknown command. With xclient = yes every RCPT gets 451 4.3.5 and Exim sees no
    transaction."""
    start = exim.mainlog_size()
    assert "xforward=0 xclient=0" in probe_line(moat), probe_line(moat)
    m_wait(moat, lambda l: "offers neither XCLIENT nor XFORWARD" in l)
    got, done = send(moat, [BOB], message(b"t8"))
    exim.wait_for_log("%s <= %s" % (exim_id(done), SENDER), start)
    log = exim.mainlog_since(start)
    assert "unrecognized command" not in log and "syntax error" not in log.lower(), log
    (tmp_path / "yes").mkdir()
    m = start_moat(tmp_path / "yes", pf_dns, exim, xclient="yes")
    try:
        m_wait(m, lambda l: "xclient = yes and the backend offers no XCLIENT" in l)
        start = exim.mainlog_size()
        got, _ = send(m, [BOB], message(b"t9"))
        assert got[BOB].code == 451 and got[BOB].enhanced()[0] == "4.3.5", got
        send(moat, [BOB], message(b"t10"))
        exim.wait_for_log("<= %s" % SENDER, start)
        assert "XCLIENT" not in exim.mainlog_since(start)
        assert exim.mainlog_since(start).count(" <= ") == 1
    finally:
        assert m.stop() == 0, m.log_tail()


def test_pipelined_client(moat, exim):
    """A client pipelining MAIL, three RCPT and DATA in one write gets its replies in order
    (Exim's 550 for the unknown user among them); moat pipelines to Exim in turn, and Exim
    finds no synchronisation error."""
    start = exim.mainlog_size()
    with SMTPClient(moat.port) as c:
        c.ehlo(PF_HELO)
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, BOB, UNKNOWN, CAROL))
        codes = [c.reply().code for _ in range(5)]
        assert codes == [250, 250, 550, 250, 354], codes
        c.send(dotstuff(message(b"t11", BODY)))
        done = c.reply(timeout=60)
        c.expect("QUIT", 221)
    line = exim.wait_for_log("%s <= %s" % (exim_id(done), SENDER), start)
    assert line.endswith("for %s %s" % (BOB, CAROL)), line
    for user in ("bob", "carol"):
        assert split(exim.wait_for_mail(user, b"<t11@sender.test>"))[1] == BODY.replace(b"\r\n", b"\n")
    assert "synchroni" not in exim.mainlog_since(start), exim.mainlog_since(start)


def test_large_message(moat, exim):
    """5 MB of text lines (dot lines among them) arrive whole."""
    lines = [(b"." if i % 7 == 0 else b"") + b"line %06d " % i + b"y" * 90 for i in range(50000)]
    body = b"\r\n".join(lines) + b"\r\n"
    got, done = send(moat, [BOB], message(b"t12", body))
    assert done.code == 250, done
    data = exim.wait_for_mail("bob", b"<t12@sender.test>", timeout=60)
    got_body = split(data)[1]
    assert hashlib.sha256(got_body).hexdigest() == hashlib.sha256(body.replace(b"\r\n", b"\n")).hexdigest()


@pytest.mark.parametrize("guide", [True, False], ids=["guide", "exim-default"])
def test_a_dozen_messages_on_one_backend_connection(tmp_path, pf_dns, guide):
    """moat reuses its backend connection for one client after another. With the guide's
    smtp_accept_queue_per_connection = 0 Exim delivers all 12 at once; with Exim's default (10)
    it only queues the 11th and 12th ("no immediate delivery"), to wait for a queue run."""
    args = guide_exim()
    if not guide:
        args["localmacros"] = args["localmacros"].replace("smtp_accept_queue_per_connection = 0\n", "")
    ex = ExExim(**args).start()
    try:
        m = start_moat(tmp_path, pf_dns, ex, backend_cache_time=60)
        try:
            probe_line(m)
            start = ex.mainlog_size()
            for i in range(12):
                got, done = send(m, [BOB], message(b"d%d" % i))
                assert done.code == 250, done
            if guide:
                for i in range(12):
                    ex.wait_for_mail("bob", b"<d%d@sender.test>" % i)
            else:
                ex.wait_for_log("no immediate delivery: more than 10 messages received in one connection", start)
            log = ex.mainlog_since(start)
            assert log.count("SMTP connection from [127.0.0.1]") == 1, log
            assert ("no immediate delivery" in log) is not guide, log
        finally:
            assert m.stop() == 0, m.log_tail()
    finally:
        ex.stop()


def test_exims_refusal_at_the_end_of_data_reaches_the_client(moat, exim):
    got, done = send(moat, [BOB], message(b"t13", extra=b"X-Exim-Refuse: yes\r\n"))
    assert done.lines == ["550 content refused by Exim"], done


def test_the_guides_tls_blocks(tmp_path, pf_dns):
    """The guide's MAIN_TLS_* lines with a certificate of a test CA for its backend_tls_name, and
    its moat.conf TLS keys (backend_tls = required, the CA): delivered over verified TLS."""
    macros, keys = guide_tls()
    ca = TestCA(tmp_path / "ca")
    crt, key = ca.issue("exim", [keys["backend_tls_name"]])
    args = guide_exim()
    args["localmacros"] += macros
    args["files"].update({"exim.crt": open(crt).read(), "exim.key": open(key).read()})
    ex = ExExim(**args).start()
    try:
        moat_keys = {k: v for k, v in keys.items() if k != "backend"}
        moat_keys["backend_tls_ca"] = ca.cert
        m = start_moat(tmp_path, pf_dns, ex, **moat_keys)
        try:
            assert "starttls=1 tls=TLSv1.3 verified=1" in probe_line(m), probe_line(m)
            got, done = send(m, [BOB], message(b"t14"))
            assert done.code == 250, done
            head = split(ex.wait_for_mail("bob", b"<t14@sender.test>"))[0]
            assert re.search(rb"by exim\.example\.test with esmtps +\(TLS1\.3\) tls TLS_\S+\n", head), head
            ex.wait_for_log(re.compile(r"<= %s .* X=TLS1\.3:\S+ CV=no " % SENDER))
        finally:
            assert m.stop() == 0, m.log_tail()
    finally:
        ex.stop()
