"""Every check of the registry where an operator looks (issue 16 item 5):
`moat check`'s output, the log's decision lines, /metrics and the man pages.

The rows are read from checks/registry.c (its `&check_X` lines and each
row's `.name`), their facts from the rows' `{"fact", STAGE_...}` tables, so
a check added to the registry without being shown in one of these places
fails here. One moat with every check on: DMARC (the From domain publishes
p=reject, the message is signed by it and its SPF passes, so alignment is
evaluated), three weighted DNS lists (the client on the allowlist) and a
domain list; one message through it, the same transaction through
`moat check`."""

import os
import re
import subprocess

import pytest

import dkimsign
from checkslib import RCPT, authres_of, base_zone, checks_moat, connect, stored_message, wait_decision
from dkimsign import key_name, sign
from test_metrics import free_port, samples, scrape, value

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUTHOR = "author.example"
SENDER = "alice@" + AUTHOR
HELO = "mail." + AUTHOR


def source(*path):
    with open(os.path.join(REPO, *path)) as f:
        return f.read()


def registry_rows():
    """[(check name, [facts])] in the registry's order, from the sources."""
    reg = source("checks", "registry.c")
    body = reg[reg.index("rows[] = {"):]
    body = body[:body.index("};")]
    symbols = re.findall(r"&(check_\w+)", body)
    defs = {}
    for fn in sorted(os.listdir(os.path.join(REPO, "checks"))):
        if not fn.endswith(".c"):
            continue
        text = source("checks", fn)
        for sym, name in re.findall(r"const struct check_def (check_\w+) = \{\s*\.name = \"([\w-]+)\"", text):
            facts = re.findall(r'\{"([\w-]+)", STAGE_\w+, RULE_\w+', text)
            defs[sym] = (name, facts)
    assert symbols and set(symbols) <= set(defs), (symbols, sorted(defs))
    return [defs[s] for s in symbols]


ROWS = registry_rows()
NAMES = [n for n, _ in ROWS]


def test_the_rows_are_read():
    """The source reading above finds the checks issue 16 added."""
    for name in ("dmarc", "dnsbl", "dbl", "authorship", "spf", "dkim"):
        assert name in NAMES, NAMES
    facts = {f for _, fs in ROWS for f in fs}
    for f in ("dmarc", "dmarc-policy", "dnsbl", "dnsbl-score", "dbl", "dbl-score", "list-mail"):
        assert f in facts, sorted(facts)


def zone():
    z = base_zone()
    z[AUTHOR] = [("A", "192.0.2.60"), ("MX", (10, HELO)), ("TXT", "v=spf1 ip4:127.0.0.0/8 -all")]
    z[HELO] = [("A", "127.0.0.1")]
    z["1.0.0.127.in-addr.arpa"] = [("PTR", HELO)]
    z["_dmarc." + AUTHOR] = [("TXT", "v=DMARC1; p=reject")]
    z[key_name("rsa", AUTHOR)] = [("TXT", dkimsign.key("rsa").txt)]
    # the client (127.0.0.1): on the allowlist, not on zen (NXDOMAIN), and bl
    # answers an error code (dnsbl_errors); the HELO name on the domain list,
    # under its threshold (dbl_domains)
    z["1.0.0.127.wl.example"] = [("A", "127.0.0.2")]
    z["1.0.0.127.bl.example"] = [("A", "127.255.255.254")]
    z[HELO + ".dbl.example"] = [("A", "127.0.1.2")]
    return z


def message(subject, extra=b""):
    m = (b"From: Alice <" + SENDER.encode() + b">\r\nTo: " + RCPT.encode() + b"\r\n"
         b"Subject: " + subject.encode() + b"\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
         b"Message-ID: <" + subject.replace(" ", ".").encode() + b"@" + AUTHOR.encode() + b">\r\n"
         + extra + b"\r\nEvery check sees this.\r\n")
    return sign(m, dkimsign.key("rsa"), AUTHOR, "rsa") + m


PLAIN = "every check"
LIST = "every check list"   # list mail: List-Id (the authorship row's list_mail)


@pytest.fixture
def moat(moat_factory, dns_factory):
    port = free_port()
    m = checks_moat(moat_factory, dns_factory(zone()), metrics_listen="127.0.0.1:%d" % port,
                    dnsbl_sites="zen.example*3, bl.example=127.0.0.[2..11]*2, wl.example*-5",
                    dnsbl_threshold="3", dbl_sites="dbl.example", dbl_threshold="2")
    m.metrics_port = port
    m.wait_log(lambda l: l.get("event") == "metrics_listening", what="metrics_listening")
    return m


def send(m, backend, subject, extra=b""):
    with connect(m) as c:
        c.ehlo(HELO)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        r = c.data(message(subject, extra))
        c.expect("QUIT", 221)
    assert r.code == 250, r
    msg = stored_message(backend, r)
    d = wait_decision(m, lambda l: l["stage"] == "data" and l.get("subject") == subject,
                      what="the data decision of %r" % subject)
    return msg, d


def test_decision_lines_and_authentication_results(moat, backend):
    msg, d = send(moat, backend, PLAIN)
    assert d["action"] == "accept", d
    assert (d["dmarc"], d["dmarc_policy"], d["dmarc_domain"]) == ("pass", "reject", AUTHOR), d
    assert d["dkim"] == AUTHOR + ":pass" and d["dkim_aligned"] == "pass", d
    assert (d["dnsbl_score"], d["dnsbl"]) == (-5, "wl.example*-5"), d
    assert d["dnsbl_errors"] == "bl.example 127.255.255.254", d
    assert (d["dbl_score"], d["dbl"], d["dbl_domains"]) == (1, "dbl.example*1", HELO), d
    assert "list_mail" not in d, d
    ar = authres_of(msg)["raw"].replace("\r\n\t", " ")
    assert "dmarc=pass" in ar and "header.from=" + AUTHOR in ar, ar
    _, d = send(moat, backend, LIST, b"List-Id: <people.lists.example>\r\n")
    assert d["list_mail"] == "yes" and d["dmarc"] == "pass", d


def moat_check(moat, tmp_path, subject, extra=b""):
    eml = tmp_path / "m.eml"
    eml.write_bytes(message(subject, extra).replace(b"\r\n", b"\n"))
    r = subprocess.run([moat.bin, "check", "-c", moat.conf_path, "--client", "127.0.0.1", "--helo", HELO,
                        "--from", SENDER, "--rcpt", RCPT, "--message", str(eml)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return r.stdout


def test_moat_check_shows_every_row(moat, tmp_path):
    out = moat_check(moat, tmp_path, PLAIN)
    checks = " ".join(l.strip() for l in out.splitlines() if l.strip().startswith("checks:"))
    for name in NAMES:
        assert re.search(r"(checks: |, )%s\b" % re.escape(name), checks), (name, out)
    assert "dnsbl score -5, threshold 3: wl.example*-5" in out, out
    assert "dbl score 1, threshold 2: dbl.example*1 (%s)" % HELO in out, out
    assert "authorship list-mail no, dkim-aligned pass" in out, out
    assert "dmarc pass (aligned DKIM pass, policy reject of _dmarc.%s, pct 100)" % AUTHOR in out, out
    assert "result   ACCEPTED" in out, out
    out = moat_check(moat, tmp_path, LIST, b"List-Id: <people.lists.example>\r\n")
    assert "authorship list-mail yes" in out, out


def test_metrics_count_every_row(moat, backend):
    """One transaction: each row that ran counts exactly one result (rdns
    runs only when a rule or XCLIENT asks for it: none here)."""
    send(moat, backend, PLAIN)
    s = samples(scrape(moat.metrics_port))
    counted = {}
    for (name, labels), v in s.items():
        if name == "moat_check_results_total":
            counted.setdefault(dict(labels)["check"], {})[dict(labels)["result"]] = v
    assert set(NAMES) <= set(counted), (NAMES, sorted(counted))
    ran = {n: {r: v for r, v in counted[n].items() if v} for n in NAMES}
    assert ran == {"rdns": {}, "dnsbl": {"error": 1}, "sender-check": {"pass": 1}, "spf": {"pass": 1},
                   "dbl": {"clean": 1}, "dkim": {"pass": 1}, "authorship": {"no": 1},
                   "dmarc": {"pass": 1}}, ran
    assert value(s, "moat_dnsbl_errors_total", kind="error_code") == 1, s


# ------------------------------------------------------------------ the man pages

def man(name):
    """A man page as text: troff's minus signs and font escapes undone."""
    t = source("docs", name)
    return re.sub(r"\\f[BIRP]", "", t.replace("\\-", "-").replace("\\(em", " "))


def documented(text, word):
    """word is named where the page defines things: on a .B/.BR/.TP/.IP
    line, or on the line after .TP (a tag line: "dmarc pass | fail | ...")."""
    pat = re.compile(r"(?<![\w-])%s(?![\w-])" % re.escape(word))
    prev = ""
    for line in text.splitlines():
        if (re.match(r"\.(B|BR|RB|BI|IR|TP|IP)\b", line) or prev.startswith(".TP")) and pat.search(line):
            return True
        prev = line
    return False


def test_decision_fields_in_moat_8(moat, backend):
    """Every field of the decision lines a message with every check on
    produces is described in moat(8)'s LOG section."""
    m8 = man("moat.8")
    fields = set()
    for subject, extra in ((PLAIN, b""), (LIST, b"List-Id: <people.lists.example>\r\n")):
        fields |= set(send(moat, backend, subject, extra)[1])
    missing = sorted(f for f in fields if not documented(m8, f))
    assert not missing, missing


def test_rows_in_moat_8_and_metrics_md():
    """Each check's name, the check label of moat_check_results_total, in
    moat(8) and docs/metrics.md."""
    m8, md = man("moat.8"), source("docs", "metrics.md")
    assert not [n for n in NAMES if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(n), m8)], NAMES
    row = [l for l in md.splitlines() if l.startswith("| `moat_check_results_total`")][0]
    assert not [n for n in NAMES if "`%s`" % n not in row], row


def test_facts_in_moat_rules_5():
    """Every fact a check declares is in moat.rules(5): a text fact as its
    %{template}, the others by name."""
    r5 = man("moat.rules.5")
    missing = []
    for _, facts in ROWS:
        for f in facts:
            if not (documented(r5, f) or "%%{%s}" % f.replace("-", "_") in r5):
                missing.append(f)
    assert not missing, missing


def test_config_keys_in_moat_conf_5():
    """Every key of moat.conf (proxy/config.c's table) is in moat.conf(5)."""
    keys = re.findall(r'(?m)^\t\{ "([a-z0-9_]+)",', source("proxy", "config.c"))
    assert "check_dmarc" in keys and "dnsbl_sites" in keys and "dbl_sites" in keys, keys
    c5 = man("moat.conf.5")
    missing = [k for k in keys if not documented(c5, k)]
    assert not missing, missing
