"""docs/postfix.md, the Postfix side of a deployment (issue 13, item 8), against Debian's
real Postfix (pf_helpers.PfPostfix, as test_postfix_backend.py and the smuggling suite use).

The guide's main.cf lines are read from the guide itself and given to the private Postfix
instance, so the guide and this test cannot drift apart. With them, Postfix offers XFORWARD
to moat and logs the real client of each message as orig_client=; without them it logs
moat's address only, and moat sends no XFORWARD (nothing is refused): what the guide says.

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


def guide_main_cf():
    """The parameters of the guide's main.cf block ("# /etc/postfix/main.cf..." first)."""
    m = re.search(r"```\n# /etc/postfix/main\.cf[^\n]*\n(.*?)```", GUIDE.read_text(), re.S)
    assert m, "no main.cf block in %s" % GUIDE
    params = {}
    for line in m.group(1).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            params[key.strip()] = value.strip()
    assert "smtpd_authorized_xforward_hosts" in params, params
    return params


def run(tmp_path, dns, main_cf):
    """One message from CLIENT through moat into a Postfix with main_cf: (Postfix's
    maillog lines of that message's smtpd session, moat's backend_probe line)."""
    pf = PfPostfix(users=("bob",), main_cf=main_cf).start()
    moat = None
    try:
        conf = ("listen = 127.0.0.1:0\nrun_as_root = yes\nbackend = 127.0.0.1:%d\n"
                "hostname = moat.e2e.test\nlocal_domains = %s\ndns_servers = 127.0.0.1:%d\n"
                "log = stderr\nbackend_cache_time = 0\n" % (pf.port, PF_DOMAIN, dns.port))
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
        return [l for l in log.splitlines() if qid.group(1) + ": client=" in l or "disconnect from" in l], probe
    finally:
        if moat:
            assert moat.stop() == 0, moat.log_tail()
        pf.stop()


def test_postfix_with_the_guides_lines_logs_the_real_client(tmp_path, pf_dns):
    lines, probe = run(tmp_path, pf_dns, guide_main_cf())
    assert "xforward=1" in probe, probe
    client = [l for l in lines if ": client=" in l]
    assert len(client) == 1 and client[0].endswith(
        "client=unknown[127.0.0.1], orig_client=unknown[%s]" % CLIENT), lines
    assert [l for l in lines if "disconnect from" in l and " xforward=1 " in l], lines


def test_postfix_without_them_logs_moat_as_the_client(tmp_path, pf_dns):
    lines, probe = run(tmp_path, pf_dns, {})
    assert "xforward=0" in probe, probe
    client = [l for l in lines if ": client=" in l]
    assert len(client) == 1 and client[0].endswith("client=unknown[127.0.0.1]"), lines
    assert CLIENT not in "\n".join(lines)
    assert not [l for l in lines if "xforward=" in l], "moat sent XFORWARD unasked: %r" % lines
