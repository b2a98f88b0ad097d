"""`moat replay` (issue 16 item 4): moat with record_dir records each
transaction (envelope, client, HELO, the verdicts, the DNS answers its
checks used; the message with record_messages = yes); `moat replay`
judges the records again offline, by the current rules and the recorded
answers, and with --expect says which verdicts differ.

The traffic is a "day" of mixed mail through a real moat on the loopback
DNS server, in front of the recording backend: delivered, refused by SPF,
by a DNS list, by relaying, by a site rule at MAIL and at the data stage,
a temporary failure, several recipients, DKIM-signed mail, with and
without record_messages. Then the DNS server is stopped (and replay points
at its dead port), so any lookup replay made on the network would time out
and show as a difference."""

import os
import subprocess

import pytest

import dkimsign
from checkslib import RCPT, connect, proxy_v1, simple_message
from moatlib import MOAT_BIN, SMTPClient
from test_preflight import site  # noqa: F401 (fixture)

SITE_SENDER = 'reject sender-domain spammer.example "550 5.7.1 Sender domain blocked" id site-sender\n'
SITE_SUBJECT = 'reject header subject /lottery/ "550 5.7.1 No lotteries" id site-subject\n'
RULES = SITE_SENDER + SITE_SUBJECT + "include builtin:default\n"

KEY = dkimsign.key("rsa")


def zone():
    from checkslib import base_zone
    z = base_zone()
    z["example.org"] = [("A", "192.0.2.10"), ("MX", (10, "mail.example.org")),
                        ("TXT", "v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.0/8 -all")]
    z["spf-fail.test"] = [("A", "192.0.2.30"), ("TXT", "v=spf1 -all")]
    z["spammer.example"] = [("A", "192.0.2.40"), ("TXT", "v=spf1 ip4:192.0.2.0/24 -all")]
    z["66.2.0.192.zen.example"] = [("A", "127.0.0.2")]
    z[dkimsign.key_name("sel", "example.org")] = [("TXT", KEY.txt)]
    return z


def send(m, ip, sender, rcpts, subject=None, signed=False):
    """One transaction from ip; the client's replies: [RCPT codes], DATA's final code or None."""
    with connect(m, proxy=proxy_v1(ip)) as c:
        c.ehlo("client.example.org")
        c.expect("MAIL FROM:<%s>" % sender, 250)
        codes = [c.cmd("RCPT TO:<%s>" % r).code for r in rcpts]
        final = None
        if 250 in codes:
            msg = simple_message(subject or "hello")
            if signed:
                msg = dkimsign.signed(msg, KEY, "example.org", "sel")
            final = c.data(msg).code
        c.expect("QUIT", 221)
    return codes, final


# (name, client, sender, recipients, subject, signed): the day's traffic
TRAFFIC = [
    ("plain", "192.0.2.1", "alice@example.org", [RCPT], "hello", False),
    ("two-rcpts", "192.0.2.2", "alice@example.org", [RCPT, "carol@elsewhere.example"], "meeting", False),
    ("signed", "192.0.2.3", "alice@example.org", [RCPT], "signed", True),
    ("lottery", "192.0.2.4", "alice@example.org", [RCPT], "lottery win", False),
    ("invoice", "192.0.2.5", "alice@example.org", [RCPT], "invoice 42", False),
    ("spf-fail", "192.0.2.6", "bob@spf-fail.test", [RCPT], None, False),
    ("dnsbl", "192.0.2.66", "alice@example.org", [RCPT], None, False),
    ("relay", "192.0.2.7", "alice@example.org", ["dave@elsewhere.example"], None, False),
    ("site-sender", "192.0.2.8", "eve@spammer.example", [RCPT], None, False),
    ("tempfail", "192.0.2.9", "frank@broken.test", [RCPT], None, False),
    ("unknown-rcpt", "192.0.2.10", "alice@example.org", ["nobody@example.test"], None, False),
]
# with record_messages = no
TRAFFIC_NO_MESSAGES = [
    ("invoice-nomsg", "192.0.2.11", "alice@example.org", [RCPT], "invoice 43", False),
    ("plain-nomsg", "192.0.2.12", "alice@example.org", [RCPT, RCPT.replace("bob", "bob2")], "hi", False),
]


def record_names(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".rec"))


def which(d, f):
    """The traffic name of record f: by its client address."""
    client = [l.split()[1] for l in open(os.path.join(d, f), "rb").read().split(b"\n")
              if l.startswith(b"client ")][0].decode()
    return {t[1]: t[0] for t in TRAFFIC + TRAFFIC_NO_MESSAGES}[client]


def replay(conf, *args):
    return subprocess.run([MOAT_BIN, "replay", "-c", conf] + list(args), capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def day(moat_factory, dns_factory, backend, tmp_path):
    """A recorded day: {name: (rcpt codes, final code)}, the record dir, moat's config."""
    rules = tmp_path / "site.rules"
    rules.write_text(RULES)
    rec = tmp_path / "records"  # made by moat
    users = tmp_path / "users"
    users.write_text("bob@example.test\nbob2@example.test\n")
    dns = dns_factory(zone(), servfail_domains=("broken.test",))
    keys = dict(dns_servers=dns.servers, rules=str(rules), proxy_protocol="yes", record_dir=str(rec),
                dnsbl_sites="zen.example", dnsbl_threshold="1", record_messages="yes",
                local_recipients=str(users))
    live = {}
    m = moat_factory(**keys)
    for name, ip, sender, rcpts, subject, sig in TRAFFIC:
        live[name] = send(m, ip, sender, rcpts, subject, sig)
    m.stop()
    keys["record_messages"] = "no"
    m = moat_factory(**keys)
    for name, ip, sender, rcpts, subject, sig in TRAFFIC_NO_MESSAGES:
        live[name] = send(m, ip, sender, rcpts, subject, sig)
    m.stop()
    dns.stop()  # replay has no DNS server to ask: its port is dead
    return live, str(rec), m.conf_path, rules


def test_live_traffic_is_what_it_should_be(day):
    live, rec, _conf, _rules = day
    assert live["plain"] == ([250], 250)
    assert live["two-rcpts"] == ([250, 554], 250)
    assert live["signed"] == ([250], 250)
    assert live["lottery"] == ([250], 550)
    assert live["spf-fail"] == ([550], None)
    assert live["dnsbl"] == ([554], None)
    assert live["relay"] == ([554], None)
    assert live["site-sender"] == ([550], None)
    assert live["tempfail"] == ([451], None)
    assert live["unknown-rcpt"] == ([550], None)
    assert live["invoice-nomsg"] == ([250], 250)
    names = record_names(rec)
    assert sorted(which(rec, f) for f in names) == sorted(t[0] for t in TRAFFIC + TRAFFIC_NO_MESSAGES)
    st = os.stat(rec)
    assert st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o750
    for f in names:
        assert os.stat(os.path.join(rec, f)).st_mode & 0o777 == 0o640
        body = open(os.path.join(rec, f), "rb").read()
        questions = [tuple(l.split()[1:5:3]) for l in body.split(b"\n") if l.startswith(b"dns ")]
        assert questions and len(questions) == len(set(questions)), (f, questions)  # each question once
        assert (b"\nmessage " in body) == (which(rec, f) in ("plain", "two-rcpts", "signed", "lottery", "invoice"))


def test_unchanged_rules_replay_as_live(day):
    live, rec, conf, _rules = day
    r = replay(conf, rec)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert len(lines) == len(TRAFFIC) + len(TRAFFIC_NO_MESSAGES)
    got = {which(rec, l.split()[0]): l.split() for l in lines}
    # each verdict is what the client heard live: accept, or the refusal's code
    for name, (codes, final) in live.items():
        refused = final if final and final != 250 else (codes[0] if 250 not in codes else None)
        if refused:
            assert got[name][1] in ("reject", "tempfail") and got[name][2] == str(refused), (name, got[name])
        else:
            assert got[name][1] == "accept", (name, got[name])
    assert got["lottery"][5] == "rule=site-subject"
    assert got["site-sender"][5] == "rule=site-sender"
    assert got["dnsbl"][4] == "connect"
    assert got["two-rcpts"][6] == "rcpts=1/2"
    assert got["unknown-rcpt"][4:6] == ["rcpt", "rule=unknown-recipient"]
    # DKIM and the data stage were judged again from the recorded message and key
    assert "data re-run" in [l for l in lines if which(rec, l.split()[0]) == "signed"][0]
    assert "data reused: no message recorded" in [l for l in lines if which(rec, l.split()[0]) == "invoice-nomsg"][0]
    assert "not recorded" not in r.stdout
    # the recorded verdicts: no difference
    r = replay(conf, "--expect", "recorded", rec)
    assert r.returncode == 0 and r.stdout == "", r
    assert "13 transaction(s) replayed, 0 differ" in r.stderr
    # an earlier output as the expected verdicts
    exp = os.path.join(os.path.dirname(rec), "expected")
    open(exp, "w").write(replay(conf, rec).stdout)
    r = replay(conf, "--expect", exp, rec)
    assert r.returncode == 0 and r.stdout == "", r


def differing(rec, r):
    assert r.returncode == 1, r
    plus = [l[2:] for l in r.stdout.splitlines() if l.startswith("+ ")]
    assert len(plus) * 2 == len([l for l in r.stdout.splitlines() if not l.startswith("  ")]), r.stdout
    return sorted(which(rec, l.split()[0]) for l in plus)


def test_changed_data_rule_shows_exactly_the_affected(day):
    live, rec, conf, rules = day
    rules.write_text(SITE_SENDER + SITE_SUBJECT.replace("/lottery/", "/lottery|invoice/") +
                     "include builtin:default\n")
    r = replay(conf, "--expect", "recorded", rec)
    # invoice 43 came without record_messages: its data stage is not judged again
    assert differing(rec, r) == ["invoice"]
    assert "rule=site-subject" in [l for l in r.stdout.splitlines() if l.startswith("+ ")][0]


def test_changed_mail_rule_shows_exactly_the_affected(day):
    live, rec, conf, rules = day
    rules.write_text(SITE_SENDER.replace("spammer.example", "spf-fail.test") + SITE_SUBJECT +
                     "include builtin:default\n")
    r = replay(conf, "--expect", "recorded", rec)
    # spammer.example now passes the site rule (and SPF): accepted; spf-fail.test's
    # refusal is now the site rule's (the same code, another rule)
    assert differing(rec, r) == ["site-sender", "spf-fail"]


def test_a_check_not_run_at_record_time_says_not_recorded(day, tmp_path):
    live, rec, conf, rules = day
    text = open(conf).read().replace("dnsbl_sites = zen.example", "dnsbl_sites = zen.example, bl.example")
    conf2 = str(tmp_path / "moat2.conf")
    open(conf2, "w").write(text)
    r = replay(conf2, rec)
    assert "not recorded: " in r.stdout and "bl.example" in r.stdout, r
    # the DNS lists' temperror decides nothing here: no difference, and none explained
    r = replay(conf2, "--expect", "recorded", rec)
    assert r.returncode == 0 and r.stdout == "", r
    # a check turned off: the transactions it decided differ, and the line under each says why
    text = open(conf).read().replace("dnsbl_sites = zen.example", "dnsbl_sites = ")
    open(conf2, "w").write(text)
    r = replay(conf2, "--expect", "recorded", rec)
    assert differing(rec, r) == ["dnsbl"]
    assert "  connect checks then: rdns (not run), dnsbl score 1, threshold 1: zen.example*1\n" in r.stdout, r.stdout
    assert "  connect checks now:  rdns (not run), dnsbl (not run)\n" in r.stdout, r.stdout
    # its sender was never checked at the time (refused before): what MAIL asks now was not recorded
    assert "tempfail 451 4.4.3 mail rule=sender-tempfail rcpts=0/1 # not recorded: example.org/15" in r.stdout


def test_bad_records_are_named_and_exit_2(day, tmp_path):
    live, rec, conf, _rules = day
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "1-x-1.rec").write_text("moat-record 1\nclient 192.0.2.1 smtp 0 -\nrcpt a@b 999 - - -\n")
    (bad / "2-x-1.rec").write_text("not a record\n")
    r = replay(conf, str(bad), rec)
    assert r.returncode == 2, r
    assert "1-x-1.rec: line 3: bad reply code" in r.stderr and "2-x-1.rec: line 1: not a moat record" in r.stderr
    assert len(r.stdout.splitlines()) == 13  # the good ones are still replayed
    assert replay(conf).returncode == 2  # no directory


def test_refused_at_connect_is_a_record(moat_factory, dns_factory, tmp_path):
    """Without delay_reject a DNS list refuses at connect: no MAIL, one record."""
    dns = dns_factory(zone())
    rec = tmp_path / "records"
    m = moat_factory(dns_servers=dns.servers, proxy_protocol="yes", record_dir=str(rec), delay_reject="no",
                     dnsbl_sites="zen.example", dnsbl_threshold="1")
    c = SMTPClient(m.port, read_banner=False)
    c.send(proxy_v1("192.0.2.66"))
    assert c.reply().code == 554
    c.close()
    m.wait_log(lambda l: l.get("event") == "decision" and l.get("stage") == "connect")
    m.stop()
    dns.stop()
    [f] = record_names(str(rec))
    text = open(rec / f).read()
    assert "\nstage connect 554 5.7.1 " in text and "\nmail " not in text
    r = replay(m.conf_path, "--expect", "recorded", str(rec))
    assert r.returncode == 0, r
    r = replay(m.conf_path, str(rec))
    assert r.stdout.split()[1:5] == ["reject", "554", "5.7.1", "connect"], r


def test_a_record_that_cannot_be_written_costs_no_mail(moat_factory, backend, tmp_path):
    rec = tmp_path / "records"
    m = moat_factory(record_dir=str(rec))
    assert rec.is_dir()
    rec.rmdir()
    rec.write_text("not a directory")  # every record's write fails from now on
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction("alice@example.org", [RCPT], simple_message("kept")).code == 250
        assert c.transaction("alice@example.org", [RCPT], simple_message("kept too")).code == 250
    backend.wait_stored(2)
    lines = m.logs.wait_count(lambda l: l.get("event") == "record", 2, what="record warnings")
    assert "not recorded" in lines[0]["msg"] and "(1 so far)" in lines[0]["msg"]
    assert "(2 so far)" in lines[1]["msg"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_record_dir_is_made_by_the_run_user(site, backend):  # noqa: F811
    import pwd
    nobody = pwd.getpwnam("nobody")
    m = site()
    var = os.path.join(os.path.dirname(m.conf_path), "var")
    os.mkdir(var)
    os.chown(var, nobody.pw_uid, nobody.pw_gid)
    m.config["record_dir"] = os.path.join(var, "records")
    m.write_config()
    m.start()
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction("alice@example.org", [RCPT], simple_message("as nobody")).code == 250
    backend.wait_stored(1)
    m.stop()
    st = os.stat(m.config["record_dir"])
    assert (st.st_uid, st.st_mode & 0o777) == (nobody.pw_uid, 0o750)
    [f] = record_names(m.config["record_dir"])
    st = os.stat(os.path.join(m.config["record_dir"], f))
    assert (st.st_uid, st.st_mode & 0o777) == (nobody.pw_uid, 0o640)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_record_dir_the_run_user_cannot_make_is_refused(site):  # noqa: F811
    m = site()
    m.config["record_dir"] = os.path.join(os.path.dirname(m.conf_path), "records")  # a root-owned parent
    m.write_config()
    r = subprocess.run([MOAT_BIN, "-t", "-c", m.conf_path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "record_dir %s: user nobody cannot write a file there" % m.config["record_dir"] \
        in r.stderr, r


def test_json(day):
    import json
    live, rec, conf, rules = day
    r = replay(conf, "--json", rec)
    assert r.returncode == 0, r
    objs = {which(rec, o["id"]): o for o in map(json.loads, r.stdout.splitlines())}
    assert len(objs) == 13
    assert objs["lottery"]["result"] == "reject" and objs["lottery"]["code"] == 550
    assert objs["lottery"]["rule"] == "site-subject" and objs["lottery"]["reason"]
    assert objs["plain"]["result"] == "accept" and objs["plain"]["code"] == 0 and objs["plain"]["note"] == "data re-run"
    assert (objs["two-rcpts"]["rcpts_accepted"], objs["two-rcpts"]["rcpts"]) == (1, 2)
    rules.write_text(SITE_SENDER + SITE_SUBJECT.replace("/lottery/", "/lottery|invoice/") +
                     "include builtin:default\n")
    r = replay(conf, "--json", "--expect", "recorded", rec)
    assert r.returncode == 1, r
    [d] = map(json.loads, r.stdout.splitlines())
    assert which(rec, d["now"]["id"]) == "invoice" and d["now"]["rule"] == "site-subject"
    assert d["expected"].split()[1] == "accept"


def test_greylisting_and_rate_limits_replay_as_the_rules_decided(moat_factory, dns_factory, backend, tmp_path):
    """Greylisting and rate limits answer from shared state a record does not
    hold: a record keeps the rules' verdict at every stage, so a transaction
    greylisted at RCPT, one over a limit at MAIL and one greylisted at the
    end of data replay without a difference (before the fix the MAIL and
    data records held the limits' 451 and replay reported them)."""
    rules = tmp_path / "site.rules"
    rules.write_text('ratelimit sender-domain 1/1h id one-per-domain\n'
                     'greylist sender-domain grey.example id grey-rcpt\n'
                     'greylist header subject /grey at data/ id grey-data\n'
                     'include builtin:default\n')
    rec = tmp_path / "records"
    z = zone()
    for d in ("limited.example", "grey.example", "late.example"):
        z[d] = [("A", "192.0.2.50"), ("TXT", "v=spf1 ip4:192.0.2.0/24 -all")]
    dns = dns_factory(z)
    m = moat_factory(dns_servers=dns.servers, rules=str(rules), proxy_protocol="yes", record_dir=str(rec),
                     record_messages="yes", greylist_delay="300")
    assert send(m, "192.0.2.51", "a@limited.example", [RCPT]) == ([250], 250)
    # the domain's second message: over the limit (decided at MAIL, answered at RCPT: delay_reject)
    assert send(m, "192.0.2.52", "b@limited.example", [RCPT]) == ([451], None)
    assert send(m, "192.0.2.53", "c@grey.example", [RCPT]) == ([451], None)
    assert send(m, "192.0.2.54", "d@late.example", [RCPT], "grey at data") == ([250], 451)
    m.stop()
    dns.stop()
    assert len(record_names(rec)) == 4
    r = replay(m.conf_path, "--expect", "recorded", str(rec))
    assert r.returncode == 0 and r.stdout == "", r.stdout
    lines = replay(m.conf_path, str(rec)).stdout.splitlines()
    assert len(lines) == 4 and all(l.split()[1] == "accept" for l in lines), lines
