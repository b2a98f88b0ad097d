"""docs/postfix.md, the Postfix side of a deployment (issue 13, item 8; issue 14, items 4 and
5), against Debian's real Postfix (pf_helpers.PfPostfix, as test_postfix_backend.py and the
smuggling suite use).

The guide's main.cf lines are read from the guide itself and given to the private Postfix
instance, so the guide and this test cannot drift apart. With them, Postfix offers XCLIENT to
moat and logs the real client of each message as client= (its restrictions judge that client);
with moat's xclient = no it falls back to XFORWARD (orig_client=, logging only); without them it
logs moat's address only, and moat sends neither (nothing is refused). The guide's TLS blocks
(master.cf's -o lines for moat's port, moat.conf's backend_tls keys) run too, with a certificate
of a test CA for the guide's backend_tls_name.

The client connects from 127.0.0.2, moat reaches Postfix from 127.0.0.1, so the two are told
apart on one host. Needs root and the postfix and python3-dnslib packages.
"""

import os
import pathlib
import re
import shutil
import time

import pytest

from moatlib import SMTPClient
from pf_helpers import PF_DOMAIN, PF_HELO, PF_POSTFIX, PfMoat, PfPostfix
from test_postfix_backend import pf_dns  # noqa: F401 (fixture)
from tlscerts import TestCA

REPO = pathlib.Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "postfix.md"
MOAT_BIN = os.environ.get("MOAT_BIN") or str(REPO / "build" / "moat")
CLIENT = "127.0.0.2"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix instance needs root"),
    pytest.mark.skipif(not os.path.exists(PF_POSTFIX), reason="postfix is not installed"),
    pytest.mark.skipif(not shutil.which("smtpd", path="/usr/lib/postfix/sbin"),
                       reason="postfix daemons not found"),
]


def guide_block(first_line):
    """The lines of the guide's code block that starts with first_line (a regex)."""
    m = re.search(r"```\n(%s[^\n]*)\n(.*?)```" % first_line, GUIDE.read_text(), re.S)
    assert m, "no block starting %r in %s" % (first_line, GUIDE)
    return [l.strip() for l in m.group(2).splitlines() if l.strip() and not l.strip().startswith("#")]


def guide_main_cf():
    """The parameters of the guide's main.cf block ("# /etc/postfix/main.cf..." first)."""
    params = {}
    for line in guide_block(r"# /etc/postfix/main\.cf"):
        key, _, value = line.partition("=")
        params[key.strip()] = value.strip()
    assert "smtpd_authorized_xclient_hosts" in params and "smtpd_authorized_xforward_hosts" in params, params
    return params


def guide_tls():
    """(the -o parameters of the guide's master.cf TLS block, its moat.conf TLS keys)."""
    master = {}
    for line in guide_block(r"# master\.cf on the Postfix host"):
        if line.startswith("-o "):
            key, _, value = line[3:].partition("=")
            master[key] = value
    moat = {}
    for line in guide_block(r"# moat\.conf: TLS to Postfix"):
        key, _, value = line.partition("=")
        moat[key.strip()] = value.strip()
    assert master.get("smtpd_tls_security_level") == "encrypt", master
    assert moat.get("backend_tls") == "required" and "backend_tls_ca" in moat and "backend_tls_name" in moat, moat
    return master, moat


def run(tmp_path, dns, main_cf, moat_keys=None):
    """One message from CLIENT through moat into a Postfix with main_cf: (Postfix's
    maillog lines of that message's smtpd session, moat's backend_probe line, the
    delivered message)."""
    pf = PfPostfix(users=("bob",), main_cf=main_cf).start()
    moat = None
    try:
        conf = ("listen = 127.0.0.1:0\nrun_as_root = yes\nbackend = 127.0.0.1:%d\n"
                "hostname = moat.e2e.test\nlocal_domains = %s\ndns_servers = 127.0.0.1:%d\n"
                "log = stderr\nbackend_cache_time = 0\nworkers = 1\n" % (pf.port, PF_DOMAIN, dns.port))
        conf += "".join("%s = %s\n" % kv for kv in (moat_keys or {}).items())
        moat = PfMoat(MOAT_BIN, tmp_path / "moat.conf", conf)
        deadline = time.monotonic() + 10
        while not [l for l in moat.lines if '"backend_probe"' in l]:
            assert time.monotonic() < deadline, moat.log_tail()
            time.sleep(0.02)                  # a bounded poll of moat's log
        probe = [l for l in moat.lines if '"backend_probe"' in l][0]
        start = pf.maillog_size()
        with SMTPClient(moat.port, source=CLIENT) as c:
            c.ehlo(PF_HELO)
            r = c.transaction("alice@sender.test", ["bob@" + PF_DOMAIN],
                              b"Subject: guide\r\nMessage-ID: <guide@sender.test>\r\n\r\nhello\r\n")
            c.expect("QUIT", 221)
        qid = re.search(r"queued as ([0-9A-F]+)", r.line)
        assert r.code == 250 and qid, r
        pf.wait_for_log(re.compile(r"disconnect from .* data=1"), start=start, timeout=30)
        pf.wait_for_log("%s: removed" % qid.group(1), start=start, timeout=30)
        log = pf.maillog_since(start)
        data = pf.wait_for_mail("bob", b"<guide@sender.test>")
        lines = [l for l in log.splitlines() if qid.group(1) + ": client=" in l or "disconnect from" in l
                 or "TLS connection established" in l]
        return lines, probe, data
    finally:
        if moat:
            assert moat.stop() == 0, moat.log_tail()
        pf.stop()


def test_postfix_with_the_guides_lines_judges_the_real_client(tmp_path, pf_dns):
    lines, probe, _ = run(tmp_path, pf_dns, guide_main_cf())
    assert "xforward=1 xclient=1" in probe, probe
    client = [l for l in lines if ": client=" in l]
    assert len(client) == 1 and client[0].endswith("client=unknown[%s]" % CLIENT), lines
    assert [l for l in lines if "disconnect from unknown[%s] ehlo=2 xclient=0/1 mail=1 rcpt=1 data=1 quit=1"
            % CLIENT in l], lines


def test_xforward_is_the_fallback(tmp_path, pf_dns):
    lines, probe, _ = run(tmp_path, pf_dns, guide_main_cf(), {"xclient": "no"})
    client = [l for l in lines if ": client=" in l]
    assert len(client) == 1 and client[0].endswith(
        "client=unknown[127.0.0.1], orig_client=unknown[%s]" % CLIENT), lines
    assert [l for l in lines if "disconnect from" in l and " xforward=1 " in l and "xclient" not in l], lines


def test_postfix_without_them_logs_moat_as_the_client(tmp_path, pf_dns):
    lines, probe, _ = run(tmp_path, pf_dns, {})
    assert "xforward=0 xclient=0" in probe, probe
    client = [l for l in lines if ": client=" in l]
    assert len(client) == 1 and client[0].endswith("client=unknown[127.0.0.1]"), lines
    assert CLIENT not in "\n".join(lines)
    assert not [l for l in lines if "xforward=" in l or "xclient=" in l], \
        "moat sent XFORWARD or XCLIENT unasked: %r" % lines


def test_the_guides_tls_blocks(tmp_path, pf_dns):
    """master.cf's -o lines for moat's port (TLS required) and moat.conf's backend_tls keys, with
    a certificate of a test CA for the guide's backend_tls_name: delivered over verified TLS, and
    XCLIENT over it."""
    master, keys = guide_tls()
    ca = TestCA(tmp_path / "ca")
    crt, key = ca.issue("pf", [keys["backend_tls_name"]])
    main_cf = dict(guide_main_cf(), smtpd_tls_cert_file=crt, smtpd_tls_key_file=key, smtpd_tls_loglevel="1",
                   **master)
    moat_keys = {k: v for k, v in keys.items() if k != "backend"}
    moat_keys["backend_tls_ca"] = ca.cert
    lines, probe, data = run(tmp_path, pf_dns, main_cf, moat_keys)
    assert "xclient=1 starttls=1 tls=TLSv1.3 verified=1" in probe, probe
    assert [l for l in lines if "TLS connection established from" in l], lines
    assert [l for l in lines if l.endswith("client=unknown[%s]" % CLIENT)], lines
    assert re.search(rb"by pf\.example\.test \(Postfix\) with ESMTPS id", data), data[:800]
