"""`include builtin:default` (issue 13, item 7): a site's rule file extends the
policy compiled into moat without a copy of rules/default.rules, whose copy
drifts from the binary on upgrade. The included rules behave as the built-in
policy does and are named default.rules:LINE, the lines of rules/default.rules;
an unknown name is an error with FILE:LINE; including it twice is like any
include (its rules twice).

Clients get their addresses from PROXY v1 headers; DNS is a ZoneDNS per test
(test_rules.zone)."""

import re

from checkslib import RCPT, checks_moat, connect, proxy_v1, simple_message
from test_rules import DEFAULT_RULES, decision, line_of, run_t, write, zdns  # noqa: F401 (fixture)

SITE_RULE = 'reject sender-domain spammer.example "550 5.7.1 Sender domain blocked" note "site rule"'
COUNTS = re.compile(r": (\d+) rules \(connect (\d+), helo (\d+), mail (\d+), rcpt (\d+), data (\d+)\)")


def counts(r):
    m = COUNTS.search(r.stdout)
    assert r.returncode == 0 and m, r
    return [int(x) for x in m.groups()]


def default_line(needle):
    """default.rules:LINE of the first line of rules/default.rules holding needle."""
    return "default.rules:" + line_of(DEFAULT_RULES, needle).rsplit(":", 1)[1]


def test_site_file_is_default_plus_its_rule(moat_factory, zdns, backend, tmp_path):
    site = write(tmp_path / "site.rules", SITE_RULE + "\ninclude builtin:default\n")
    m = checks_moat(moat_factory, zdns, rules=site, proxy_protocol="yes")
    # moat -t: the built-in policy's rules and the site's one
    builtin = checks_moat(moat_factory, zdns, rules=None, _start=False)
    want = counts(run_t(builtin.conf_path))
    want[0] += 1
    want[3] += 1
    assert counts(run_t(m.conf_path)) == want
    # the site rule decides for its sender
    with connect(m, proxy_v1("127.0.0.1")) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<x@spammer.example>")
        assert r.code == 550 and "Sender domain blocked" in r.text, r
        # the built-in rules decide the rest, named by their line in default.rules
        r = c.cmd("MAIL FROM:<x@nxdomain.example>")
        assert r.code == 550 and r.enhanced()[0] == "5.1.8", r
        c.expect("MAIL FROM:<alice@example.org>", 250)
        r = c.cmd("RCPT TO:<victim@elsewhere.example>")
        assert r.code == 554 and "Relay access denied" in r.text, r
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        assert c.data(simple_message("extends the default")).code == 250
    assert decision(m, "mail", lambda l: "spammer" in l["mail_from"])["rule"] == line_of(site, "spammer")
    assert decision(m, "mail", lambda l: "nxdomain" in l["mail_from"])["rule"] == \
        default_line("sender-check nxdomain")
    assert decision(m, "rcpt", lambda l: l["rcpt"] == "victim@elsewhere.example")["rule"] == \
        default_line("reject  relay denied")
    backend.wait_stored(1)


def test_unknown_builtin_is_an_error_with_file_line(moat_factory, zdns, tmp_path):
    bad = write(tmp_path / "bad.rules", "# site\ninclude builtin:defualt\n")
    m = checks_moat(moat_factory, zdns, rules=bad, _start=False, _expect_rc=None)
    r = run_t(m.conf_path)
    assert r.returncode == 1 and r.stderr.startswith(bad + ":2: unknown built-in rules"), r
    m.start(wait_ready=False)
    assert m.wait_exit() == 1
    assert bad + ":2: unknown built-in rules" in m.stderr_text()


def test_included_twice_like_any_include(moat_factory, zdns, tmp_path):
    twice = write(tmp_path / "twice.rules", "include builtin:default\ninclude builtin:default\n")
    once = write(tmp_path / "once.rules", "include builtin:default\n")
    m = checks_moat(moat_factory, zdns, rules=twice, _start=False)
    doubled = counts(run_t(m.conf_path))
    m.config["rules"] = once
    m.write_config()
    assert doubled == [2 * n for n in counts(run_t(m.conf_path))]
    # a cycle through a file that includes the built-in policy is refused as any cycle
    loop = tmp_path / "loop.rules"
    write(loop, 'include builtin:default\ninclude "loop.rules"\n')
    m.config["rules"] = str(loop)
    m.write_config()
    r = run_t(m.conf_path)
    assert r.returncode == 1 and "%s:2: include cycle" % loop in r.stderr, r
