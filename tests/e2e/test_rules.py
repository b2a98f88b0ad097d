"""Rule files end to end: every action at every stage decides what the client
hears and what reaches the backend, each decision line names its rule as
FILE:LINE, monitor mode (per rule and mode = monitor) only logs "would-reject"
lines, relay protection holds under any rule file, forward-confirmed reverse
DNS, lists, SIGHUP reload (atomic, under load, broken file kept out), moat -t.

Clients get their addresses from PROXY v1 headers (proxy_protocol = yes);
DNS is a checkslib.ZoneDNS per test."""

import os
import re
import signal
import subprocess
import threading

import pytest

from checkslib import (RCPT, authres_of, base_zone, checks_moat, connect, no_backend_contact,
                       proxy_v1, simple_message, stored_message, wait_decision)
from moatlib import MOAT_BIN, SMTPClient

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_RULES = os.path.join(REPO, "rules", "default.rules")


def zone():
    z = base_zone()
    z.update({
        # SPF softfail for one domain, nothing for another
        "soft.example": [("A", "192.0.2.40"), ("TXT", "v=spf1 ip4:192.0.2.0/24 ~all")],
        "partner.example": [("A", "192.0.2.41"), ("TXT", "v=spf1 ip4:192.0.2.0/24 -all")],
        "spammer.example": [("A", "192.0.2.42")],
        # 198.51.100.7 has a PTR that resolves back; .8 a PTR that does not
        "7.100.51.198.in-addr.arpa": [("PTR", "mail.good.example")],
        "mail.good.example": [("A", "198.51.100.7")],
        "8.100.51.198.in-addr.arpa": [("PTR", "liar.example")],
        "liar.example": [("A", "192.0.2.99")],
    })
    return z


@pytest.fixture
def zdns(dns_factory):
    return dns_factory(zone())


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def rules_moat(moat_factory, zdns, tmp_path, text, name="site.rules", **keys):
    """A moat with proxy_protocol whose rule file is text followed by the shipped default."""
    with open(DEFAULT_RULES) as f:
        default = f.read()
    path = write(tmp_path / name, text + "\n" + default)
    keys.setdefault("proxy_protocol", "yes")
    return checks_moat(moat_factory, zdns, rules=path, **keys), path


def line_of(path, needle):
    """FILE:LINE of the first line of path that contains needle."""
    with open(path) as f:
        for i, l in enumerate(f, 1):
            if needle in l:
                return "%s:%d" % (path, i)
    raise AssertionError("%r not in %s" % (needle, path))


def decision(moat, stage, pred=lambda l: True, what=None):
    return wait_decision(moat, lambda l: l.get("event") == "decision" and l["stage"] == stage and pred(l),
                         what=what or "%s decision" % stage)


def send_ok(moat, backend, ip, sender, subject, helo="client.example.org", msg=None):
    msg = msg or simple_message(subject)
    with connect(moat, proxy_v1(ip)) as c:
        c.ehlo(helo)
        r = c.transaction(sender, [RCPT], msg)
        assert r.code == 250, r
        return stored_message(backend, r), msg


# ------------------------------------------------------------------ actions by stage

def test_connect_reject_by_cidr_names_rule(moat_factory, zdns, backend, tmp_path):
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'reject client 203.0.113.0/24 "554 5.7.1 Your network is blocked"')
    c = SMTPClient(m.port, read_banner=False)
    c.send(proxy_v1("203.0.113.9"))
    r = c.reply()
    assert r.code == 554 and "Your network is blocked" in r.text, r
    assert c.cmd("QUIT").code == 221  # refused at connect, it waits for QUIT
    c.wait_closed()
    d = decision(m, "connect")
    assert d["action"] == "reject" and d["code"] == 554
    assert d["rule"] == line_of(path, "203.0.113.0/24"), d
    # a client from elsewhere is greeted
    with connect(m, proxy_v1("198.51.100.20")) as c2:
        c2.ehlo()
    no_backend_contact(m, backend)


def test_helo_reject_by_regex_and_delay_reject(moat_factory, zdns, backend, tmp_path):
    rule = 'reject helo /^(localhost|friend)$/ "550 5.7.1 HELO %{helo} is not a name"'
    m, path = rules_moat(moat_factory, zdns, tmp_path, rule)
    with connect(m, proxy_v1("192.0.2.50")) as c:
        r = c.cmd("EHLO friend")
        assert r.code == 550 and "HELO friend is not a name" in r.text, r
        # refused HELO: MAIL still needs one
        assert c.cmd("MAIL FROM:<alice@example.org>").code == 503
        c.ehlo("mail.example.org")
    d = decision(m, "helo")
    assert d["rule"] == line_of(path, "friend") and d["code"] == 550
    # with delay_reject the HELO verdict answers each RCPT (Postfix smtpd_delay_reject)
    m2, _ = rules_moat(moat_factory, zdns, tmp_path, rule, name="delay.rules", delay_reject="yes")
    with connect(m2, proxy_v1("192.0.2.50")) as c:
        c.ehlo("friend")
        c.expect("MAIL FROM:<alice@example.org>", 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        assert r.code == 550 and "HELO friend" in r.text, r
    no_backend_contact(m2, backend)
    # a new HELO is judged anew: the earlier one's refusal no longer answers
    with connect(m2, proxy_v1("192.0.2.50")) as c:
        c.ehlo("friend")
        c.ehlo("mail.example.org")
        assert c.transaction("eve@soft.example", [RCPT], simple_message("helo again")).code == 250


def test_refused_client_costs_no_sender_lookup(moat_factory, zdns, backend, tmp_path):
    """delay_reject (the default): a client refused at connect is greeted and refused at
    each RCPT, with the connect rule's reply; its MAIL runs no check (no DNS query)."""
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'reject client 203.0.113.0/24 "554 5.7.1 Go away" id blocked-net',
                         delay_reject=None)
    with connect(m, proxy_v1("203.0.113.9")) as c:
        c.ehlo()
        before = len(zdns.queries())
        c.expect("MAIL FROM:<x@nxdomain.example>", 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        assert r.lines == ["554 5.7.1 Go away"], r
        c.expect("QUIT", 221)
    m.wait_session_end(1)
    assert not [q for q in zdns.queries()[before:] if "nxdomain.example" in q[0]], zdns.queries()
    [d] = [l for l in m.decisions() if l["action"] == "reject"]
    assert (d["stage"], d["rcpt"], d["rule_id"]) == ("rcpt", RCPT, "blocked-net"), d
    no_backend_contact(m, backend)


def test_tag_and_log_rules_deliver_with_header(moat_factory, zdns, backend, tmp_path):
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'tag spf softfail header "X-Moat-Suspect: spf-softfail %{sender}"\n'
                         'log sender-domain soft.example note "watch %{sender_domain}"\n')
    stored, msg = send_ok(m, backend, "198.51.100.30", "eve@soft.example", "softfail")
    assert b"X-Moat-Suspect: spf-softfail eve@soft.example\r\n" in stored.data
    assert b"spf=softfail smtp.mailfrom=eve@soft.example" in stored.data
    assert stored.data.endswith(msg)
    hits = [l for l in m.logs.snapshot() if l.get("event") == "rule"]
    kinds = {(h["action"], h["rule"]) for h in hits}
    assert ("tag", line_of(path, "X-Moat-Suspect")) in kinds, hits
    assert ("log", line_of(path, "watch")) in kinds, hits
    assert any(h["reason"] == "watch soft.example" for h in hits), hits
    # a sender the rules do not tag: no header
    stored2, _ = send_ok(m, backend, "127.0.0.1", "alice@example.org", "clean")
    assert b"X-Moat-Suspect" not in stored2.data


def test_header_and_size_rules_at_data(moat_factory, zdns, backend, tmp_path):
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'reject header subject /viagra|casino/ "550 5.7.1 Spam subject: %{sender}"\n'
                         'reject size > 20K "552 5.3.4 Too big for this site"\n')
    with connect(m, proxy_v1("127.0.0.1")) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.org>", 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        # a folded Subject is unfolded before matching
        r = c.data(simple_message("cheap\r\n CASINO now"))
        assert r.code == 550 and "Spam subject: alice@example.org" in r.text, r
        d = decision(m, "data")
        assert d["rule"] == line_of(path, "viagra"), d
        c.expect("MAIL FROM:<alice@example.org>", 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        r = c.data(simple_message("big", body=b"x" * 70 + b"\r\n") * 1 + b"y" * 70 * 400 + b"\r\n")
        assert r.code == 552, r
        c.expect("MAIL FROM:<alice@example.org>", 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        r = c.data(simple_message("fine"))
        assert r.code == 250, r
    msgs = backend.wait_stored(1)
    assert len(msgs) == 1 and b"Subject: fine" in msgs[0].data


def test_accept_on_top_skips_later_rules_but_not_relay_protection(moat_factory, zdns, backend,
                                                                   tmp_path):
    # A rule file that forgets the relay rules and accepts a network that is
    # not in trusted_networks: sender checks are skipped for it, relaying is not.
    path = write(tmp_path / "bare.rules", "accept client 198.51.100.0/24 note \"partner net\"\n")
    m = checks_moat(moat_factory, zdns, rules=path, proxy_protocol="yes")
    with connect(m, proxy_v1("198.51.100.9")) as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@nxdomain.example>", 250)   # would be 550 5.1.8 by default
        r = c.cmd("RCPT TO:<victim@elsewhere.example>")
        assert r.code == 554 and r.enhanced()[0] == "5.7.1" and "Relay access denied" in r.text, r
        r = c.cmd("RCPT TO:<a%b@example.test>")
        assert r.code == 553, r
        c.expect("RCPT TO:<%s>" % RCPT, 250)
    d = decision(m, "rcpt", lambda l: l["rcpt"] == "victim@elsewhere.example")
    assert d["rule"] == "built-in relay protection", d
    # mode = monitor does not open the relay either
    m2 = checks_moat(moat_factory, zdns, rules=path, proxy_protocol="yes", mode="monitor")
    with connect(m2, proxy_v1("203.0.113.5")) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.org>", 250)
        assert c.cmd("RCPT TO:<victim@elsewhere.example>").code == 554


def test_lists_of_senders_and_networks(moat_factory, zdns, backend, tmp_path):
    nets = write(tmp_path / "blocked-nets", "# spam sources\n203.0.113.0/24\n2001:db8:bad::/48\n")
    doms = write(tmp_path / "blocked-domains", "spammer.example\n.spam.example\n")
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'reject client list:%s "554 5.7.1 Your network is blocked"\n'
                         'reject sender-domain list:%s "550 5.7.1 Sender %%{sender_domain} is blocked"\n'
                         % (nets, doms))
    with connect(m, proxy_v1("127.0.0.1")) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<bob@spammer.example>")
        assert r.code == 550 and "Sender spammer.example is blocked" in r.text, r
        r = c.cmd("MAIL FROM:<bob@x.spam.example>")
        assert r.code == 550, r
    c = SMTPClient(m.port, read_banner=False)
    c.send(proxy_v1("2001:db8:bad::5"))
    assert c.reply().code == 554
    c.close()
    send_ok(m, backend, "127.0.0.1", "alice@example.org", "not listed")


def test_rdns_forward_confirmed(moat_factory, zdns, backend, tmp_path):
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'reject rdns none "550 5.7.25 Reverse DNS of %{client} does not confirm"\n'
                         'tag rdns .good.example header "X-Rdns: %{rdns}"\n')
    stored, _ = send_ok(m, backend, "198.51.100.7", "bob@spammer.example", "fcrdns")
    assert b"X-Rdns: mail.good.example\r\n" in stored.data
    for ip in ("198.51.100.8", "192.0.2.77"):   # PTR that does not lead back; no PTR
        c = SMTPClient(m.port, read_banner=False)
        c.send(proxy_v1(ip))
        r = c.reply()
        assert r.code == 550 and r.enhanced()[0] == "5.7.25" and ip in r.text, (ip, r)
        c.close()
    d = decision(m, "connect", lambda l: l["client_ip"] == "198.51.100.8")
    assert d["rdns"] == "none", d
    # the PTR and the forward lookups really went to DNS
    names = {q[0] for q in zdns.queries()}
    assert {"8.100.51.198.in-addr.arpa", "liar.example", "mail.good.example"} <= names, names


def test_no_rdns_lookup_unless_a_rule_uses_it(moat_factory, zdns, backend, tmp_path):
    m, _ = rules_moat(moat_factory, zdns, tmp_path, "# nothing about rdns\n")
    send_ok(m, backend, "127.0.0.9", "alice@example.org", "no rdns")
    assert not [q for q in zdns.queries() if q[0].endswith(".in-addr.arpa")]


# ------------------------------------------------------------------ monitor

def test_monitor_rule_logs_would_reject_and_delivers(moat_factory, zdns, backend, tmp_path):
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'reject monitor sender-domain spammer.example "550 5.7.1 No %{sender}"\n')
    send_ok(m, backend, "127.0.0.1", "bob@spammer.example", "monitored")
    d = decision(m, "mail", lambda l: l["action"] == "would-reject")
    assert d["code"] == 550 and d["rule"] == line_of(path, "spammer.example"), d
    assert d["mail_from"] == "bob@spammer.example" and d["client_ip"] == "127.0.0.1"
    assert d["spf"] == "none" and d["sender_domain"] == "pass", d   # check results, as a real one


def test_mode_monitor_logs_what_enforce_would_refuse(moat_factory, zdns, backend, tmp_path):
    """The same transaction in enforce and in monitor mode: monitor delivers it
    and logs a would-reject line with the code, reason, rule and check results
    of the real rejection."""
    real = checks_moat(moat_factory, zdns)
    mon = checks_moat(moat_factory, zdns, mode="monitor")
    with connect(real) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<x@nxdomain.example>")
        assert r.code == 550 and r.enhanced()[0] == "5.1.8", r
    rd = decision(real, "mail")
    with connect(mon) as c:
        c.ehlo()
        r = c.transaction("x@nxdomain.example", [RCPT], simple_message("monitor mode"))
        assert r.code == 250, r
    wd = decision(mon, "mail", lambda l: l["action"] == "would-reject")
    for k in ("code", "reason", "rule", "sender_domain", "spf", "mail_from", "client_ip"):
        assert wd[k] == rd[k], (k, wd, rd)
    assert rd["rule"].startswith("default.rules:")
    assert backend.wait_stored(1)


@pytest.mark.parametrize("how", ["mode = monitor", "monitor rule"])
def test_monitor_relay_refusal_is_logged_once(moat_factory, zdns, backend, tmp_path, how):
    """Issue 13 (5): relay protection refuses in monitor mode too, and that refusal is one
    decision line: the relay rule's would-reject is not logged beside it."""
    if how == "mode = monitor":
        m = checks_moat(moat_factory, zdns, mode="monitor", proxy_protocol="yes")
    else:
        path = write(tmp_path / "mon.rules",
                     'reject monitor relay denied "554 5.7.1 <%{rcpt}>: Relay access denied"\n')
        m = checks_moat(moat_factory, zdns, rules=path, proxy_protocol="yes")
    with connect(m, proxy_v1("203.0.113.5")) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.org>", 250)
        r = c.cmd("RCPT TO:<victim@elsewhere.example>")
        assert r.code == 554 and r.enhanced()[0] == "5.7.1", r
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        c.expect("QUIT", 221)
    m.wait_session_end(1)
    lines = [l for l in m.log_lines() if l.get("rcpt") == "victim@elsewhere.example"]
    assert [(l["action"], l["code"]) for l in lines] == [("reject", 554)], lines
    assert lines[0]["rule"] == "built-in relay protection", lines


def test_rule_id_beside_file_line(moat_factory, zdns, backend, tmp_path):
    """Issue 13 (5): a rule's "id NAME" is logged as rule_id beside rule (FILE:LINE, which
    shifts when the file is edited); the shipped rules have ids; moat's own refusals none."""
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'reject sender-domain spammer.example "550 5.7.1 No %{sender}" id no-spammer\n'
                         'tag sender-domain soft.example header "X-Soft: 1"  id soft-tag\n')
    with connect(m, proxy_v1("203.0.113.5")) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<bob@spammer.example>").code == 550
        assert c.cmd("MAIL FROM:<bob@nxdomain.example>").code == 550
        c.expect("MAIL FROM:<bob@soft.example>", 250)
        assert c.cmd("RCPT TO:<victim@elsewhere.example>").code == 554
        assert c.cmd("RCPT TO:<a@@b>").code == 501
        c.expect("QUIT", 221)
    d = decision(m, "mail", lambda l: l["mail_from"] == "bob@spammer.example")
    assert (d["rule"], d["rule_id"]) == (line_of(path, "spammer.example"), "no-spammer"), d
    d = decision(m, "mail", lambda l: l["mail_from"] == "bob@nxdomain.example")
    assert (d["rule"], d["rule_id"]) == (line_of(path, "sender-check nxdomain"), "sender-nxdomain"), d
    hit = wait_decision(m, lambda l: l.get("event") == "rule" and l["action"] == "tag")
    assert (hit["rule"], hit["rule_id"]) == (line_of(path, "X-Soft"), "soft-tag"), hit
    d = decision(m, "rcpt", lambda l: l["code"] == 554)
    assert (d["rule"], d["rule_id"]) == (line_of(path, "relay denied"), "relay-denied"), d
    d = decision(m, "rcpt", lambda l: l["code"] == 501)
    assert (d["rule"], d["rule_id"]) == ("", ""), d


def test_duplicate_rule_id_is_refused_with_file_line(moat_factory, zdns, tmp_path):
    path = write(tmp_path / "dup.rules", 'log tls  id seen\n\nlog client trusted  id seen\n')
    m = checks_moat(moat_factory, zdns, rules=path, _start=False)
    r = run_t(m.conf_path)
    assert r.returncode == 1, r
    assert r.stderr.startswith('%s:3: id "seen" is already the id of the rule at %s:1' % (path, path)), r


# ------------------------------------------------------------------ moat -t, reload

def run_t(conf):
    return subprocess.run([MOAT_BIN, "-t", "-c", conf], capture_output=True, text=True, timeout=30)


def test_moat_t_reports_rule_errors_with_file_line(moat_factory, zdns, tmp_path):
    lst = write(tmp_path / "nets", "10.0.0.0/8\n10.0.0.300/8\n")
    bad = write(tmp_path / "bad.rules", "# ok\naccept client trusted\nrejct spf fail\n")
    badlist = write(tmp_path / "badlist.rules", "reject client list:%s\n" % lst)
    badcode = write(tmp_path / "badcode.rules", 'reject spf fail "450 4.7.1 not a rejection"\n')
    m = checks_moat(moat_factory, zdns, rules=bad, _start=False)
    r = run_t(m.conf_path)
    assert r.returncode == 1 and r.stderr.startswith(bad + ":3: "), r
    m.config["rules"] = badlist
    m.write_config()
    r = run_t(m.conf_path)
    assert r.returncode == 1 and r.stderr.startswith(lst + ":2: "), r
    m.config["rules"] = badcode
    m.write_config()
    r = run_t(m.conf_path)
    assert r.returncode == 1 and r.stderr.startswith(badcode + ":1: ") and "5xx" in r.stderr, r
    m.config["rules"] = DEFAULT_RULES
    m.write_config()
    r = run_t(m.conf_path)
    assert r.returncode == 0 and "configuration OK" in r.stdout and "rules" in r.stdout, r


def test_sighup_reload_is_atomic_under_load(moat_factory, zdns, backend, tmp_path):
    """Clients run transactions nonstop while the rule file flips between A
    and B (each with a 200,000-entry list, so a load takes a while) and one
    broken file: every reply comes from A or B whole, a session keeps the
    rules it started with, the broken file changes nothing."""
    big = write(tmp_path / "big-list", "".join("d%d.example\n" % i for i in range(200000)))
    a = write(tmp_path / "a.rules", 'reject sender-domain list:%s\n'
              'reject sender-domain spammer.example "550 5.7.1 policy A"\n' % big)
    b = write(tmp_path / "b.rules", 'reject sender-domain list:%s\n'
              'reject sender-domain spammer.example "550 5.7.1 policy B"\n' % big)
    broken = write(tmp_path / "broken.rules", 'reject sender-domain spammer.example "550 5.7.1 policy C"\n'
                   'reject nonsense\n')
    m = checks_moat(moat_factory, zdns, rules=a, check_spf="no", max_connections_per_ip=100)
    stop = threading.Event()
    seen, errors = [], []

    def client():
        try:
            while not stop.is_set():
                with connect(m) as c:
                    c.ehlo()
                    texts = set()
                    for _ in range(5):
                        r = c.cmd("MAIL FROM:<x@spammer.example>")
                        assert r.code == 550, r
                        texts.add(r.text[r.text.index("policy"):])
                    seen.append(texts)
                    c.expect("MAIL FROM:<alice@example.org>", 250)   # still works in between
                    c.expect("RSET", 250)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    reloads = 0
    for i in range(8):
        target = [b, broken, a, b][i % 4]
        m.config["rules"] = target
        m.write_config()
        start = len(m.logs.snapshot())
        m.signal(signal.SIGHUP)
        m.wait_log(lambda l: l.get("event") == "reload", start=start, timeout=60)
        reloads += 1
        n = len(seen)
        m.logs.wait_until(lambda _: len(seen) >= n + 3 or errors, what="sessions after a reload")
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert len(seen) >= 20
    for texts in seen:
        assert len(texts) == 1, texts   # one session, one ruleset
        assert texts <= {"policy A", "policy B"}, texts
    assert {"policy A"} in seen and {"policy B"} in seen
    errs = [l for l in m.log_lines(event="reload") if l.get("level") == "error"]
    assert errs and all("keeping the running configuration" in l["msg"] and "broken.rules:2" in l["msg"]
                        for l in errs), errs
    # the last reload was to b: a new session gets B
    with connect(m) as c:
        c.ehlo()
        assert "policy B" in c.cmd("MAIL FROM:<x@spammer.example>").text


# ------------------------------------------------------------------ moat check

def run_check(conf, *args):
    return subprocess.run([MOAT_BIN, "check", "-c", conf] + list(args), capture_output=True,
                          text=True, timeout=60)


def test_moat_check_explains_and_sends_nothing(moat_factory, zdns, backend, tmp_path):
    import json
    m, path = rules_moat(moat_factory, zdns, tmp_path,
                         'tag spf softfail header "X-Moat-Suspect: spf-softfail"\n', proxy_protocol="no")
    base = ["--client", "203.0.113.1", "--helo", "mail.example.org", "--rcpt", RCPT]
    ok = run_check(m.conf_path, "--from", "eve@soft.example", *base)
    assert ok.returncode == 0, ok
    assert "spf softfail" in ok.stdout and "ACCEPTED" in ok.stdout, ok.stdout
    assert "tag: X-Moat-Suspect: spf-softfail (%s)" % line_of(path, "X-Moat-Suspect") in ok.stdout, ok.stdout
    bad = run_check(m.conf_path, "--from", "x@nxdomain.example", *base)
    assert bad.returncode == 1, bad
    assert "REJECT: 550 5.1.8 <x@nxdomain.example>" in bad.stdout, bad.stdout
    assert line_of(path, "sender-check nxdomain") + " id sender-nxdomain" in bad.stdout, bad.stdout
    js = json.loads(run_check(m.conf_path, "--from", "x@partner.example", "--json", "--client",
                              "192.0.2.60", "--rcpt", RCPT).stdout)
    # partner.example's SPF allows 192.0.2.0/24 only with -all: 192.0.2.60 passes
    assert js["result"] == "accept", js
    js = json.loads(run_check(m.conf_path, "--from", "x@partner.example", "--json", "--client",
                              "203.0.113.1", "--rcpt", RCPT).stdout)
    assert js["result"] == "reject" and js["reply"].startswith("550 5.7.23"), js
    assert js["rule"] == line_of(path, "spf fail") and js["rule_id"] == "spf-fail", js
    assert [s["stage"] for s in js["stages"]] == ["connect", "helo", "mail"], js
    # relaying: refused at RCPT
    r = run_check(m.conf_path, "--from", "alice@example.org", "--client", "127.0.0.1",
                  "--rcpt", "x@elsewhere.example")
    assert r.returncode == 1 and "Relay access denied" in r.stdout, r.stdout
    # with a message: the data stage (a header rule), nothing goes to the backend
    msg = write(tmp_path / "msg.eml", "From: a@example.org\nSubject: hello\n\n.dotted line\nbody\n")
    r = run_check(m.conf_path, "--from", "alice@example.org", "--client", "127.0.0.1",
                  "--rcpt", RCPT, "--message", msg)
    assert r.returncode == 0 and "dkim none" in r.stdout and "data" in r.stdout, r.stdout
    no_backend_contact(m, backend)


def test_reload_of_a_million_entry_list_does_not_hold_sessions(moat_factory, zdns, backend, tmp_path):
    """The reload is read by a thread: a session started right after SIGHUP is
    served to the end while the million-entry list is still loading, and the
    new rules apply once loaded."""
    big = write(tmp_path / "million", "".join("d%d.example\n" % i for i in range(1000000)))
    a = write(tmp_path / "a.rules", 'reject sender-domain spammer.example "550 5.7.1 policy A"\n')
    b = write(tmp_path / "b.rules", 'reject sender-domain list:%s "550 5.7.1 listed"\n'
              'reject sender-domain spammer.example "550 5.7.1 policy B"\n' % big)
    m = checks_moat(moat_factory, zdns, rules=a, check_spf="no")
    m.config["rules"] = b
    m.write_config()
    start = len(m.logs.snapshot())
    m.signal(signal.SIGHUP)
    with connect(m) as c:
        c.ehlo()
        assert "policy A" in c.cmd("MAIL FROM:<x@spammer.example>").text
        c.cmd("QUIT")
    m.wait_session_end(1)
    rl = m.wait_log(lambda l: l.get("event") == "reload", start=start, timeout=60)
    lines = m.logs.snapshot()
    end_i = next(i for i, l in enumerate(lines) if l.get("event") == "session_end" and i >= start)
    assert end_i < lines.index(rl), "the session waited for the reload"
    assert "1000000 list entries" in rl["msg"] or "1000001" in rl["msg"], rl
    with connect(m) as c:
        c.ehlo()
        assert "policy B" in c.cmd("MAIL FROM:<x@spammer.example>").text
        assert "listed" in c.cmd("MAIL FROM:<x@d999999.example>").text
