"""moat report (issue 15, item 1): its numbers against logs whose truth the
test knows.

- moat's own log, made for real: moat with a rule file in front of the
  recording backend, clients from known addresses (PROXY headers), a DNS
  server that fails for one sender domain; the report's totals, top lists,
  monitor and DNS sections against what the clients did, and the "was mail
  from X to Y refused today, and why" query.
- a generated log of a busy day (reportlog.py) with its truth computed by a
  plain reading (json.loads): exact totals, per hour, top lists within
  their stated bound; plain, gzip, standard input and several files give
  one answer; --since/--until; each filter and the sessions' lines it
  prints; a skewed distribution of clients over many more keys than
  counters; malformed and foreign lines; unreadable input.
- the HTML page opened in headless Chromium: a screenshot that is not
  blank, the charts in the rendered DOM.
"""

import gzip
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import reportlog
from checkslib import ZoneDNS, base_zone, connect, proxy_v1, simple_message
from moatlib import MOAT_BIN

HOUR_MS = 3600 * 1000


def report(*args, stdin=None, timeout=120):
    return subprocess.run([MOAT_BIN, "report", *[str(a) for a in args]], input=stdin, capture_output=True,
                          timeout=timeout)


def report_json(*args, **kw):
    r = report("--json", *args, **kw)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def hour_of(label):
    """"2026-12-07T21:00Z" -> hours since the epoch."""
    return reportlog.parse_ts(label[:13] + ":00:00.000Z") // HOUR_MS


def rule_key(item):
    return (item["rule_id"], item["rule"])


def check_top(lst, truth, rules=False):
    """A top list of the report against the true counts: each count an
    upper bound over by at most its error, every error within the stated
    bound (at most counted/1024), and no key missing that beats the last
    one shown."""
    counted = sum(truth.values())
    assert lst["counted"] == counted
    bound = lst["max_error"]
    assert bound <= counted // 1024
    if lst["exact"]:
        assert bound == 0
    keys = []
    for it in lst["items"]:
        k = rule_key(it) if rules else it["key"]
        keys.append(k)
        assert it["count"] - it["error"] <= truth[k] <= it["count"], (k, it, truth[k])
        assert it["error"] <= bound
        if lst["exact"]:
            assert it["count"] == truth[k] and it["error"] == 0
    if len(keys) < 10:
        assert set(keys) == set(truth), (keys, truth)
    else:
        last = lst["items"][-1]["count"]
        assert all(k in keys for k, v in truth.items() if v > last)
    return keys


def check_summary(j, t):
    """Everything of a JSON summary that is exact, against a Truth."""
    assert j["input"]["lines"] == t.lines
    assert j["input"]["malformed"] == t.malformed
    assert j["input"]["foreign"] == t.foreign
    assert j["input"]["out_of_range"] == t.out_of_range
    assert j["decisions"]["total"] == t.decisions
    assert j["decisions"]["by_action"] == dict(t.by_action)
    assert j["decisions"]["by_stage"] == {s: dict(c) for s, c in t.by_stage.items()}
    assert j["refusals"] == t.refusals
    assert j["rule_lines"]["total"] == t.rule_lines
    assert j["rule_lines"]["by_action"] == dict(t.rule_by_action)
    assert j["monitor"]["would_refusals"] == t.would
    assert j["dns_tempfail"]["decisions"] == t.dns
    assert j["dns_tempfail"]["by_check"] == {k: t.dns_by_check[k] for k in ("spf", "sender_domain", "rdns", "dkim")}
    assert j["dns_tempfail"]["by_action"] == dict(t.dns_by_action)
    # per hour: the refusals and would-be refusals exact; by reason exact
    # when the report says so
    ph = j["per_hour"]
    hours = {hour_of(h["hour"]): h for h in ph["hours"]}
    assert {h: v["refusals"] for h, v in hours.items() if v["refusals"]} == dict(t.hour_refusals)
    assert {h: v["would"] for h, v in hours.items() if v["would"]} == dict(t.hour_would)
    for h, v in hours.items():
        assert sum(v["by_reason"]) + v["other"] == v["refusals"]
        if ph["exact_split"]:
            for reason, n in zip(ph["reasons"], v["by_reason"]):
                assert n == t.hour_reason[h][reason]
    for name in ("reasons", "clients", "client_networks", "sender_domains", "rcpt_domains", "helos"):
        check_top(j["top"][name], t.top[name])
    check_top(j["top"]["rules"], t.top["rules"], rules=True)
    check_top(j["monitor"]["reasons"], t.top["would_reasons"])
    check_top(j["monitor"]["rules"], t.top["would_rules"], rules=True)
    check_top(j["monitor"]["sender_domains"], t.top["would_sender_domains"])
    check_top(j["dns_tempfail"]["names"], t.top["dns_names"])


# ------------------------------------------------------------- moat's own log

SITE_RULES = """\
include builtin:default
reject helo bad.example "550 5.7.1 HELO refused" note "HELO names a blocked host" id bad-helo
reject monitor helo watched.example "554 5.7.1 watched" note "watched HELO" id watch-helo
"""

# (client, helo, sender, recipient, what happens), each its own session
TRAFFIC = (
    [("192.0.2.10", "mail.example.org", "alice@example.org", "bob@example.test", "accept")] * 4
    + [("198.51.100.7", "mx.other.example", "alice@example.org", "bob@example.test", "spf-fail")] * 3
    + [("203.0.113.5", "spam.example", "x@nx.invalid", "carol@example.test", "sender-nxdomain")] * 2
    + [("192.0.2.20", "bad.example", "alice@example.org", "bob@example.test", "bad-helo")] * 2
    + [("2001:db8:1::5", "v6.example", "y@slow.example", "bob@example.test", "sender-tempfail")]
    + [("192.0.2.30", "watched.example", "alice@example.org", "dave@example.test", "watch")]
)


@pytest.fixture
def real_log(moat_factory, backend, tmp_path):
    """moat's log after TRAFFIC went through it, and the rule file's path."""
    zone = base_zone()
    zone["example.org"] = [("A", "192.0.2.10"), ("MX", (10, "mail.example.org")),
                           ("TXT", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all")]
    dns = ZoneDNS(zone, servfail_domains=("slow.example",)).start()
    rules = tmp_path / "site.rules"
    rules.write_text(SITE_RULES)
    m = moat_factory(dns_servers=dns.servers, proxy_protocol="yes", rules=str(rules))
    try:
        for i, (ip, helo, frm, rcpt, _) in enumerate(TRAFFIC):
            with connect(m, proxy=proxy_v1(ip, sport=40000 + i)) as c:
                c.ehlo(helo)
                c.expect("MAIL FROM:<%s>" % frm, 250)
                r = c.cmd("RCPT TO:<%s>" % rcpt)
                if r.code == 250:
                    c.data(simple_message())
                c.cmd("QUIT")
        m.wait_session_end(len(TRAFFIC))
    finally:
        dns.stop()
    log = tmp_path / "moat.log"
    log.write_bytes(b"".join(m.raw_lines))
    return log, rules


def test_real_log_numbers(real_log):
    log, rules = real_log
    lines = log.read_text(encoding="utf-8").splitlines()
    j = report_json(log)
    t = reportlog.reference(lines)
    check_summary(j, t)
    # and what the clients did, by construction
    assert j["decisions"]["by_action"]["accept"] == 5
    assert j["refusals"] == 8
    assert j["decisions"]["by_action"]["reject"] == 7
    assert j["decisions"]["by_action"]["tempfail"] == 1
    assert j["monitor"]["would_refusals"] == 1
    assert [(i["rule_id"], i["count"]) for i in j["monitor"]["rules"]["items"]] == [("watch-helo", 1)]
    assert j["monitor"]["rules"]["items"][0]["rule"] == "%s:3" % rules
    rules_top = {i["rule_id"]: i for i in j["top"]["rules"]["items"]}
    assert rules_top["spf-fail"]["count"] == 3
    assert rules_top["spf-fail"]["rule"].startswith("default.rules:")
    assert rules_top["sender-nxdomain"]["count"] == 2
    assert rules_top["bad-helo"]["count"] == 2
    assert rules_top["bad-helo"]["rule"] == "%s:2" % rules
    assert rules_top["sender-tempfail"]["count"] == 1
    reasons = {i["key"]: i["count"] for i in j["top"]["reasons"]["items"]}
    assert reasons["sender domain does not exist"] == 2
    assert reasons["HELO names a blocked host"] == 2
    nets = {i["key"]: i["count"] for i in j["top"]["client_networks"]["items"]}
    assert nets == {"198.51.100.0/24": 3, "203.0.113.0/24": 2, "192.0.2.0/24": 2, "2001:db8:1::/48": 1}
    assert {i["key"]: i["count"] for i in j["top"]["sender_domains"]["items"]} == \
        {"example.org": 5, "nx.invalid": 2, "slow.example": 1}
    assert j["dns_tempfail"]["by_check"]["sender_domain"] == 1
    assert [i["key"] for i in j["dns_tempfail"]["names"]["items"]] == ["sender slow.example"]
    assert j["sessions"]["ended"] == len(TRAFFIC)
    assert j["sessions"]["messages"] == 5
    assert all(it["error"] == 0 for lst in j["top"].values() if isinstance(lst, dict) for it in lst["items"])


def test_why_was_it_refused(real_log):
    """moat report --sender X --rcpt Y --since today: the matching sessions'
    decisions, in order, with the reason and the rule."""
    log, rules = real_log
    r = report("--sender", "x@nx.invalid", "--rcpt", "carol@example.test", "--since", "today", log)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    blocks = [b for b in out.split("\n\n") if b.startswith("session ")]
    assert len(blocks) == 2
    for b in blocks:
        assert "client 203.0.113.5" in b.splitlines()[0]
        assert re.search(r"rcpt +reject +550 5\.1\.8 +from x@nx\.invalid +to carol@example\.test: "
                         r"sender domain does not exist +\[rule sender-nxdomain default\.rules:\d+\]", b), b
        assert re.search(r" end +0 delivered, 1 rejected", b), b
    assert "Refusals (reject, tempfail): 2," in out
    # the same as JSON: exactly those sessions' log lines, in order
    r = report("--json", "--sender", "x@nx.invalid", "--rcpt", "carol@example.test", log)
    got = r.stdout.decode().splitlines()
    objs = [json.loads(l) for l in log.read_text().splitlines()]
    ids = {o["session"] for o in objs if o.get("mail_from") == "x@nx.invalid" and o.get("event") == "decision"}
    assert len(ids) == 2
    want = [json.dumps(o) for o in objs if o.get("session") in ids]
    assert [json.dumps(json.loads(l)) for l in got] == want
    # a session that passed, asked about: its accept, and exit 0; none: exit 1
    r = report("--sender", "alice@example.org", "--rcpt", "dave@example.test", "--since", "today", log)
    assert r.returncode == 0
    assert "would-reject" in r.stdout.decode() and re.search(r"data +accept +250", r.stdout.decode())
    r = report("--sender", "nobody@example.org", "--since", "today", log)
    assert r.returncode == 1
    assert "filter: lines matched (decision and rule lines): 0, in sessions: 0" in r.stdout.decode()
    r = report("--sender", "x@nx.invalid", "--until", "2000-01-01", log)
    assert r.returncode == 1


# ---------------------------------------------------------- a generated day

@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """A generated day of a busy moat (about 20,000 sessions), with its truth."""
    d = tmp_path_factory.mktemp("report")
    path = d / "moat.log"
    with open(path, "wb") as f:
        reportlog.generate(f, sessions=20000, seed=7)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return path, lines, reportlog.reference(lines)


def test_generated_day(day):
    path, lines, t = day
    j = report_json(path)
    check_summary(j, t)
    assert t.refusals > 5000 and t.would > 300 and t.dns > 300 and t.rule_lines > 300
    assert j["sessions"]["ended"] == sum(1 for l in lines if '"event":"session_end"' in l)
    assert j["per_hour"]["exact_split"] is True
    assert len(j["per_hour"]["hours"]) == 24
    assert j["input"]["bytes"] == os.path.getsize(path)


def test_gzip_stdin_and_several_files(day, tmp_path):
    path, lines, t = day
    whole = report_json(path)
    third = len(lines) // 3
    parts = [lines[:third], lines[third:2 * third], lines[2 * third:]]
    a, b, c = tmp_path / "a.log", tmp_path / "b.log.1.gz", tmp_path / "c"
    a.write_text("".join(parts[0]), encoding="utf-8")
    with gzip.open(b, "wt", encoding="utf-8") as f:
        f.write("".join(parts[1]))
    # c: gzip as logrotate's delaycompress and cat leave it, two members
    with open(c, "wb") as f:
        half = len(parts[2]) // 2
        f.write(gzip.compress("".join(parts[2][:half]).encode()))
        f.write(gzip.compress("".join(parts[2][half:]).encode()))

    def same(j):
        for k in ("input",):
            assert j[k]["lines"] == whole[k]["lines"] and j[k]["bytes"] == whole[k]["bytes"]
        for k in whole:
            if k != "input":
                assert j[k] == whole[k], k

    same(report_json(a, b, c))
    same(report_json("-", stdin=gzip.compress(path.read_bytes())))
    same(report_json(stdin=path.read_bytes()))
    same(report_json(a, "-", c, stdin=b.read_bytes()))
    # a file whose last line has no newline is a line of its own
    (tmp_path / "d").write_text("".join(parts[0]).rstrip("\n"), encoding="utf-8")
    assert report_json(tmp_path / "d", tmp_path / "d")["input"]["lines"] == 2 * len(parts[0])


def test_since_until(day):
    path, lines, whole = day
    since = reportlog.parse_ts("2026-12-07T06:00:00.000Z")
    until = reportlog.parse_ts("2026-12-07T09:31:00.000Z")
    j = report_json("--since", "2026-12-07T06", "--until", "2026-12-07T09:30", path)
    t = reportlog.reference(lines, since=since, until=until)
    check_summary(j, t)
    assert t.out_of_range > 0 and t.decisions > 0
    assert {h["hour"][11:13] for h in j["per_hour"]["hours"]} == {"06", "07", "08", "09"}
    assert j["period"]["since"] == "2026-12-07T06:00:00.000Z"
    assert j["period"]["until"] == "2026-12-07T09:31:00.000Z"
    # a zone is taken: 07:00+01:00 is 06:00Z
    z = report_json("--since", "2026-12-07T07:00+01:00", "--until", "2026-12-07T09:30", path)
    assert z["decisions"] == j["decisions"] and z["per_hour"] == j["per_hour"]
    # dates: a whole day; the day after: nothing
    assert report_json("--since", "2026-12-07", "--until", "2026-12-07", path)["decisions"]["total"] == \
        whole.decisions
    assert report_json("--since", "2026-12-08", path)["decisions"]["total"] == 0


FILTERS = [
    (("--client", "192.0.0.0/8"), lambda o: o.get("client_ip", "").startswith("192.")),
    (("--client", "2001:db8::/32"), lambda o: o.get("client_ip", "").startswith("2001:db8:")),
    (("--sender", "@example.org"), lambda o: o.get("mail_from", "").lower().endswith("@example.org")),
    (("--rcpt", "postmaster@example.test"), lambda o: "postmaster@example.test" in o.get("rcpt", "").split(",")),
    (("--action", "tempfail,would-reject"), lambda o: o.get("action") in ("tempfail", "would-reject")),
    (("--rule", "spf-fail"), lambda o: o.get("rule_id") == "spf-fail"),
    (("--rule", "site.rules:12"), lambda o: o.get("rule", "").endswith("/site.rules:12")),
    (("--sender", "@example.org", "--rcpt", "@example.test", "--action", "reject"),
     lambda o: o.get("mail_from", "").endswith("@example.org") and o.get("action") == "reject"
     and any(r.endswith("@example.test") for r in o.get("rcpt", "").split(","))),
]


@pytest.mark.parametrize("args,match", FILTERS, ids=[" ".join(a) for a, _ in FILTERS])
def test_filters(day, args, match):
    path, lines, _ = day
    objs = [json.loads(l) for l in lines]
    focus_all = "--action" in args
    t = reportlog.reference(lines, match=match, focus_all=focus_all)
    j = report_json("--summary", *args, path)
    check_summary_filtered(j, t)
    # the sessions' lines: every line of each session with a matching line
    # (decision or rule), each session's lines together and in order
    hit = [o for o in objs if o["event"] in ("decision", "rule") and match(o)]
    ids = {o["session"] for o in hit if o["session"]}
    r = report("--json", *args, path)
    assert r.returncode == 0
    got = [json.loads(l) for l in r.stdout.decode().splitlines()]
    by_session = {}
    for o in got:
        by_session.setdefault(o["session"], []).append(o)
    assert set(by_session) - {""} == ids
    of_session = {}
    for o in objs:
        if o.get("session") in ids:
            of_session.setdefault(o["session"], []).append(o)
    for sid in ids:
        assert by_session[sid] == of_session[sid]
    assert by_session.get("", []) == [o for o in hit if not o["session"]]
    assert j["matched"] == {"lines": t.decisions + t.rule_lines}
    text = report(*args, path).stdout.decode()
    assert "filter: lines matched (decision and rule lines): %s, in sessions: %s" % (
        format(t.decisions + t.rule_lines, ","), format(len(ids), ",")) in text


def check_summary_filtered(j, t):
    assert j["decisions"]["total"] == t.decisions
    assert j["decisions"]["by_action"] == dict(t.by_action)
    assert j["decisions"]["by_stage"] == {s: dict(c) for s, c in t.by_stage.items()}
    assert j["refusals"] == t.refusals
    for name in ("reasons", "clients", "client_networks", "sender_domains", "rcpt_domains", "helos"):
        check_top(j["top"][name], t.top[name])
    check_top(j["top"]["rules"], t.top["rules"], rules=True)


def test_session_filter_and_text(day):
    path, lines, _ = day
    objs = [json.loads(l) for l in lines]
    sess = next(o["session"] for o in objs if o.get("event") == "rule")
    want = [o for o in objs if o.get("session") == sess]
    r = report("--session", sess + ".1", path)  # as the Received field names it
    out = r.stdout.decode()
    block = out.split("\n\n")[0].splitlines()
    assert block[0].startswith("session %s  client %s" % (sess, want[0]["client_ip"]))
    assert len(block) == 1 + len(want)
    for line, o in zip(block[1:], want):
        assert line.startswith("  " + o["ts"])
    assert re.search(r"tag +from \S+: X-Moat-Suspect: spf-softfail +\[rule softfail-tag /etc/moat/site.rules:30\]",
                     out)


def test_skewed_clients(tmp_path):
    """Far more clients than counters: ten heavy hitters (5,000 refusals
    down to 2,300) in a tail of 30,000 clients of one to three refusals
    each, shuffled. The top list is approximate, says so with its bound,
    and holds the true top ten in order, each count within the bound."""
    import random
    rnd = random.Random(5)
    clients = []
    for i in range(10):
        clients += ["198.51.%d.%d" % (100 + i, 7 + i)] * (5000 - 300 * i)
    for i in range(30000):
        clients += ["10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)] * rnd.randint(1, 3)
    rnd.shuffle(clients)
    path = tmp_path / "skew.log"
    t0 = reportlog.parse_ts("2026-12-07T10:00:00.000Z")
    with open(path, "w", encoding="utf-8") as f:
        for n, ip in enumerate(clients):
            ts = "2026-12-07T10:%02d:%02d.%03dZ" % (n // 60000 % 60, n // 1000 % 60, n % 1000)
            f.write(reportlog._line(ts, 0, "decision", "%016x" % n, ip, "h.example", "a@b.example",
                                    "c@example.test", "rcpt", "reject", 550, "5.7.1", "dynamic", "x.rules:1", "dyn"))
    assert reportlog.parse_ts("2026-12-07T10:00:00.000Z") == t0
    lines = path.read_text(encoding="utf-8").splitlines()
    t = reportlog.reference(lines)
    j = report_json("--top", "10", path)
    top = j["top"]["clients"]
    assert len(t.top["clients"]) == 30010
    assert top["exact"] is False and 0 < top["max_error"] <= top["counted"] // 1024
    keys = check_top(top, t.top["clients"])
    assert keys == ["198.51.%d.%d" % (100 + i, 7 + i) for i in range(10)]
    # /24s: the ten heavy networks, then the tail's networks of 256 clients
    check_top(j["top"]["client_networks"], t.top["client_networks"])
    text = report("--top", "10", path).stdout.decode()
    assert "Top clients (%s refusals counted; approximate: a count is at most %s over)" % (
        format(top["counted"], ","), format(top["max_error"], ",")) in text
    assert "Totals are exact" in text and "1024 counters per list" in text


def test_malformed_and_foreign_lines(day, tmp_path):
    path, lines, t = day
    junk = [
        "not json at all\n", "{\"ts\":\"2026-12-07T01:00:00.000Z\",\"event\":\"decision\"\n",
        "\x00\x01\x02\n", "{\"foo\":1}\n", "[1,2,3]\n", "{\"ts\":\"yesterday\",\"event\":\"decision\"}\n",
        "{\"ts\":\"2026-12-07T01:00:00.000Z\",\"event\":\"decision\",\"reason\":\"\\x\"}\n", "\n",
        "{\"ts\":\"2026-12-07T01:00:00.000Z\",\"event\":\"decision\",\"action\":\"reject\",\"reason\":\"" +
        "y" * 100000 + "\"}\n",
    ]
    mixed = tmp_path / "mixed.log"
    with open(mixed, "wb") as f:
        for i, l in enumerate(lines):
            f.write(l.encode())
            if i % 1000 == 0:
                for x in junk:
                    f.write(x.encode("utf-8", "surrogateescape"))
                f.write(b"{\"event\":\"x\",\"reason\":\"\xff\xfe latin-1 \xe9\"}\n")
    j = report_json(mixed)
    rounds = (len(lines) + 999) // 1000
    assert j["input"]["lines"] == t.lines + rounds * (len(junk) + 1)
    # not JSON, cut, controls, an array, a bad escape, empty, too long, not UTF-8
    assert j["input"]["malformed"] == rounds * 8
    # JSON, but without ts and event, or with a ts that is not one
    assert j["input"]["foreign"] == rounds * 2
    for k in ("decisions", "refusals", "top", "per_hour", "monitor", "dns_tempfail"):
        assert j[k] == report_json(path)[k], k


def test_syslog_lines(day, tmp_path):
    path, lines, t = day
    syslog = tmp_path / "mail.log"
    syslog.write_text("".join("Dec  7 %02d:00:00 mx moat[4242]: %s" % (i % 24, l) for i, l in enumerate(lines)),
                      encoding="utf-8")
    j = report_json(syslog)
    assert j["decisions"] == report_json(path)["decisions"]


def test_bad_input_and_usage(day, tmp_path):
    path, lines, t = day
    r = report(tmp_path / "missing.log", path)
    assert r.returncode == 2
    assert b"missing.log: No such file or directory" in r.stderr
    assert b"Decisions: %s" % format(t.decisions, ",").encode() in r.stdout  # the rest is still read
    cut = tmp_path / "cut.gz"
    data = gzip.compress(path.read_bytes())
    cut.write_bytes(data[:len(data) // 2])
    r = report("--json", cut)
    assert r.returncode == 2
    assert b"cut.gz: unexpected end of gzip data (cut short?), after line" in r.stderr
    assert 0 < json.loads(r.stdout)["input"]["lines"] < len(lines)
    for args, msg in ((["--since", "2026-13-01"], b"--since 2026-13-01: not a date or time"),
                      (["--since", "2026-12-08", "--until", "2026-12-07"], b"is not before --until"),
                      (["--action", "refused"], b"--action refused: not an action"),
                      (["--client", "example.org"], b"--client example.org: not an address or a network"),
                      (["--top", "0"], b"--top 0: a number from 1 to 100"),
                      (["--bogus"], b"unrecognized option")):
        r = report(*args, path)
        assert r.returncode == 2, args
        assert msg in r.stderr, r.stderr
    r = report("--html", tmp_path / "no" / "such" / "dir.html", path)
    assert r.returncode == 2 and b"dir.html: No such file or directory" in r.stderr
    assert report("--help").returncode == 0


# ------------------------------------------------------------------ the page

def png_pixels(data):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG,
    decoded with zlib alone (no PIL on the machine)."""
    import struct
    import zlib
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = ihdr[:4]
    assert depth == 8 and ctype in (2, 6) and ihdr[6] == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def chromium(*args, timeout=120):
    exe = shutil.which("chromium")
    if not exe:
        pytest.skip("chromium is not installed (make deps installs Debian's chromium)")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           *args], capture_output=True, timeout=timeout)


def test_html_page_in_chromium(day, tmp_path):
    path, lines, t = day
    page = tmp_path / "report.html"
    r = report("--html", page, path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    html = page.read_text(encoding="utf-8")
    # one self-contained page: nothing fetched, no script
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=|@import|url\(|<link""", html, re.I)
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    profile = tmp_path / "profile"
    shot = tmp_path / "shot.png"
    r = chromium("--user-data-dir=%s" % profile, "--screenshot=%s" % shot, "--window-size=1100,1400",
                 page.as_uri())
    assert shot.exists(), r.stderr.decode()[-2000:]
    w, h, rows = png_pixels(shot.read_bytes())
    assert (w, h) == (1100, 1400)
    pixels = [p for row in rows for p in row]
    white = sum(1 for p in pixels if p == (255, 255, 255))
    assert white < 0.95 * len(pixels), "the screenshot is (almost) blank"
    colours = set(pixels)
    assert len(colours) > 50
    # the charts' colours are on screen: the first reason's blue, the "other" grey
    assert (0x4e, 0x79, 0xa7) in colours and (0xba, 0xb0, 0xac) in colours
    r = chromium("--user-data-dir=%s" % profile, "--dump-dom", page.as_uri())
    dom = r.stdout.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="chart-hours"' in dom
    chart = dom[dom.index('id="chart-hours"'):dom.index("</svg>", dom.index('id="chart-hours"'))]
    j = report_json(path)
    nonzero = sum(1 for hr in j["per_hour"]["hours"] for n in hr["by_reason"] + [hr["other"]] if n)
    assert chart.count('<rect class="bar"') == nonzero
    assert 'id="chart-would-hours"' in dom
    for name in ("reasons", "rules", "clients", "client_networks", "sender_domains", "rcpt_domains", "helos"):
        fig = dom[dom.index('id="fig-%s"' % name):]
        fig = fig[:fig.index("</figure>")]
        assert fig.count('<rect class="bar"') == len(j["top"][name]["items"]), name
    top_reason = j["top"]["reasons"]["items"][0]
    assert ">%s</text>" % top_reason["key"] in dom
    assert "%s (%.1f %%)" % (format(top_reason["count"], ","), 100.0 * top_reason["count"] / j["refusals"]) in dom
    assert 'id="monitor"' in dom and 'id="dns"' in dom
    assert "Totals are exact" in dom
