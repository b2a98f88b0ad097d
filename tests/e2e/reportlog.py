"""Logs for `moat report`: a generator of realistic moat logs (the fields and
their order as proxy/decision.c, the checks' rows and session_log.c write
them) and a reference reading of any moat log (json.loads, the semantics of
moat(8) REPORTING), so that a test knows the truth it checks the report
against.

    truth = reference(lines)           # lines: str, one JSON object each
    n = generate(f, sessions=10000)    # writes bytes to f, returns lines written

Used by tests/e2e/test_report.py and tests/bench/report_bench.py.
"""

import collections
import ipaddress
import json
import math
import random

REFUSE = ("reject", "tempfail")
WOULD = ("would-reject", "would-tempfail")
HOUR_MS = 3600 * 1000


def _domain(addr):
    if addr == "<>":
        return "<>"
    if "@" not in addr:
        return ""
    return addr.rsplit("@", 1)[1].lower()


def network(ip):
    a = ipaddress.ip_address(ip)
    if a.version == 6 and a.ipv4_mapped:
        a = a.ipv4_mapped
    prefix = 24 if a.version == 4 else 48
    return "%s/%d" % (ipaddress.ip_network("%s/%d" % (a, prefix), strict=False).network_address, prefix)


def parse_ts(ts):
    """RFC 3339 as the log writes it -> ms since the epoch (UTC)."""
    import datetime
    d = datetime.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    ms = int(ts[20:23]) if len(ts) > 20 and ts[19] == "." else 0
    return int(d.timestamp()) * 1000 + ms


class Truth:
    """What moat report must find, computed the plain way."""

    def __init__(self):
        self.lines = self.malformed = self.foreign = self.out_of_range = self.other = 0
        self.decisions = self.rule_lines = self.refusals = self.would = 0
        self.by_action = collections.Counter()
        self.by_stage = collections.defaultdict(collections.Counter)
        self.rule_by_action = collections.Counter()
        self.sessions = self.messages = 0
        self.top = collections.defaultdict(collections.Counter)
        self.hour_refusals = collections.Counter()
        self.hour_would = collections.Counter()
        self.hour_reason = collections.defaultdict(collections.Counter)
        self.dns = 0
        self.dns_by_check = collections.Counter()
        self.dns_by_action = collections.Counter()
        self.first = self.last = None


def _focus(t, o, net_of):
    t.top["reasons"][o.get("reason", "")] += 1
    t.top["rules"][(o.get("rule_id", ""), o.get("rule", ""))] += 1
    ip = o.get("client_ip", "")
    if ip:
        t.top["clients"][ip] += 1
        try:
            t.top["client_networks"][net_of(ip)] += 1
        except ValueError:
            pass
    d = _domain(o.get("mail_from", ""))
    if d:
        t.top["sender_domains"][d] += 1
    seen = set()
    for r in o.get("rcpt", "").split(","):
        d = _domain(r)
        if d and d not in seen:
            seen.add(d)
            t.top["rcpt_domains"][d] += 1
    if o.get("helo"):
        t.top["helos"][o["helo"].lower()] += 1


def _dns(t, o, act):
    spf = o.get("spf") == "temperror"
    sd = o.get("sender_domain") == "tempfail"
    rdns = o.get("rdns") == "tempfail"
    dk = ":temperror" in o.get("dkim", "")
    if not (spf or sd or rdns or dk):
        return
    t.dns += 1
    t.dns_by_action[act] += 1
    for name, hit in (("spf", spf), ("sender_domain", sd), ("rdns", rdns), ("dkim", dk)):
        t.dns_by_check[name] += hit
    if (spf or sd) and _domain(o.get("mail_from", "")):
        t.top["dns_names"]["sender " + _domain(o["mail_from"])] += 1
    if rdns:
        t.top["dns_names"]["rdns " + o["client_ip"].lower()] += 1


def reference(lines, since=None, until=None, match=None, focus_all=False):
    """The truth of a log (an iterable of str lines). match(obj) -> bool: a
    filter on decision and rule lines (None: all)."""
    t = Truth()
    nets = {}

    def net_of(ip):
        if ip not in nets:
            nets[ip] = network(ip)
        return nets[ip]

    for line in lines:
        t.lines += 1
        line = line.rstrip("\n")
        try:
            o = json.loads(line)
        except ValueError:
            t.malformed += 1
            continue
        if not isinstance(o, dict):
            t.malformed += 1
            continue
        try:
            ts = parse_ts(o["ts"]) if isinstance(o.get("event"), str) else None
        except (KeyError, TypeError, ValueError):
            ts = None
        if ts is None:
            t.foreign += 1
            continue
        if (since is not None and ts < since) or (until is not None and ts >= until):
            t.out_of_range += 1
            continue
        ev = o["event"]
        if ev in ("decision", "rule"):
            if match and not match(o):
                continue
            t.first = ts if t.first is None else min(t.first, ts)
            t.last = ts if t.last is None else max(t.last, ts)
            act = o.get("action", "")
            if ev == "rule":
                t.rule_lines += 1
                t.rule_by_action[act] += 1
                if focus_all:
                    _focus(t, o, net_of)
                continue
            t.decisions += 1
            t.by_action[act] += 1
            t.by_stage[o.get("stage", "")][act] += 1
            hour = ts // HOUR_MS
            if act in REFUSE:
                t.refusals += 1
                t.hour_refusals[hour] += 1
                t.hour_reason[hour][o.get("reason", "")] += 1
            if act in WOULD:
                t.would += 1
                t.hour_would[hour] += 1
                t.top["would_reasons"][o.get("reason", "")] += 1
                t.top["would_rules"][(o.get("rule_id", ""), o.get("rule", ""))] += 1
                d = _domain(o.get("mail_from", ""))
                if d:
                    t.top["would_sender_domains"][d] += 1
            if focus_all or act in REFUSE:
                _focus(t, o, net_of)
            _dns(t, o, act)
        elif ev == "session_end":
            if match is None:
                t.sessions += 1
                t.messages += o.get("messages", 0)
        else:
            t.other += 1
    return t


# ---------------------------------------------------------------- generator

def _js(s):
    return json.dumps(s, ensure_ascii=False)


class _Gen:
    """One realistic day (or any span) of a busy moat's log."""

    RULES = {
        "sender-nxdomain": ("default.rules:22", "sender domain does not exist", 550, "5.1.8"),
        "spf-fail": ("default.rules:31", "mechanism -all matched", 550, "5.7.23"),
        "unknown-recipient": ("default.rules:13", "unknown recipient", 550, "5.1.1"),
        "relay-denied": ("default.rules:10", "relay denied", 554, "5.7.1"),
        "sender-tempfail": ("default.rules:32", "sender domain lookup failed", 451, "4.4.3"),
        "spf-temperror": ("default.rules:35", "SPF temperror", 451, "4.7.24"),
        "bad-helo": ("/etc/moat/site.rules:12", "HELO names us", 550, "5.7.1"),
        "dynamic-pool": ("/etc/moat/site.rules:20", "dynamic address pool", 554, "5.7.1"),
    }

    def __init__(self, seed, start_ms, hours, clients, zipf):
        self.r = random.Random(seed)
        self.start = start_ms
        self.span = hours * HOUR_MS
        r = self.r
        pool = []
        for i in range(clients):
            if i % 17 == 0:
                pool.append("2001:db8:%x:%x::%x" % (r.randrange(4096), r.randrange(65536), r.randrange(1, 65535)))
            else:
                pool.append("%d.%d.%d.%d" % (r.choice((198, 203, 192, 185, 45, 91)), r.randrange(256),
                                             r.randrange(256), r.randrange(1, 255)))
        self.clients = pool
        weights = [1.0 / (k + 1) ** zipf for k in range(clients)]
        self.cum = list(_accumulate(weights))
        self.domains = ["example.org", "example.net", "mail.example.com", "news.example.info",
                        "shop.example", "bank.example", "пример.испытание", "xn--80akhbyknj4f.example"]
        self.spam_domains = ["nx%d.invalid" % i for i in range(200)]
        self.local = ["alice", "bob", "carol", "dave", "postmaster", "sales", "ops", "hr"]
        self.helos = ["mail.example.org", "mx1.example.net", "[198.51.100.7]", "localhost", "WIN-3F2A1",
                      "mx.test.example", "smtp.example.com", 'we"ird\\helo']
        self.seq = 0
        self._sec, self._prefix = None, ""

    def client(self):
        import bisect
        return self.clients[bisect.bisect_left(self.cum, self.r.random() * self.cum[-1])]

    def ts(self, ms):
        sec = ms // 1000
        if sec != self._sec:
            import datetime
            d = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
            self._sec, self._prefix = sec, d.strftime("%Y-%m-%dT%H:%M:%S")
        return "%s.%03dZ" % (self._prefix, ms % 1000)


def _accumulate(xs):
    s = 0.0
    for x in xs:
        s += x
        yield s


def _line(ts, worker, event, sess, ip, helo, frm, rcpt, stage, action, code, esc, reason, rule, rule_id,
          sd="", spf="", spf_reason=None, dkim="", rdns=None, data=None):
    out = ['{"ts":"%s","level":"info","event":"%s","worker":%d,"session":"%s","client_ip":"%s","helo":%s,'
           '"mail_from":%s,"rcpt":%s,"stage":"%s","action":"%s","code":%d'
           % (ts, event, worker, sess, ip, _js(helo), _js(frm), _js(rcpt), stage, action, code)]
    if esc:
        out.append(',"esc":"%s"' % esc)
    out.append(',"reason":%s,"rule":%s,"rule_id":%s' % (_js(reason), _js(rule), _js(rule_id)))
    if rdns is not None:
        out.append(',"rdns":%s' % _js(rdns))
    out.append(',"sender_domain":"%s","spf":"%s"' % (sd, spf))
    if spf_reason:
        out.append(',"spf_reason":%s' % _js(spf_reason))
    out.append(',"dkim":%s' % _js(dkim))
    if data:
        out.append(',"queue_id":"%s","message_id":%s,"subject":%s,"size":%d,"nrcpt":%d' % data)
    out.append("}\n")
    return "".join(out)


def _session(g, ms):
    """The lines of one session starting at ms."""
    r = g.r
    g.seq += 1
    sess = "%016x" % r.getrandbits(64)
    ip = g.client()
    worker = r.randrange(4)
    helo = r.choice(g.helos)
    out = []
    t = [ms]

    def ts():
        t[0] += r.randrange(1, 40)
        return g.ts(t[0])

    def local():
        return "%s@example.test" % r.choice(g.local)

    kind = r.random()
    good = "%s@%s" % (r.choice(g.local), r.choice(g.domains))
    hour = (ms - g.start) // HOUR_MS % 24
    if 14 <= hour < 16 and r.random() < 0.4:
        # a spam run from one network in the afternoon
        ip = "45.155.205.%d" % r.randrange(2, 250)
        bad = "%s@%s" % (r.choice(("info", "sales", "news")), r.choice(g.spam_domains))
        rid = r.choice(("sender-nxdomain", "sender-nxdomain", "dynamic-pool"))
        where, why, code, esc = g.RULES[rid]
        out.append(_line(ts(), worker, "decision", sess, ip, "ylmf-pc", bad, local(), "rcpt", "reject", code,
                         esc, why, where, rid, "nxdomain" if rid == "sender-nxdomain" else "pass", "none"))
        out.append('{"ts":"%s","level":"info","event":"session_end","worker":%d,"session":"%s","client_ip":"%s",'
                   '"helo":"ylmf-pc","messages":0,"rejected":1,"errors":0}\n' % (ts(), worker, sess, ip))
        return out, 0
    if kind < 0.02:
        # over max_connections: refused at accept, no session
        out.append(_line(ts(), worker, "decision", "", ip, "", "", "", "connect", "reject", 421, "4.7.0",
                         "too many connections", "", ""))
        return out, 0
    if kind < 0.04:
        out.append(_line(ts(), worker, "decision", sess, ip, "", "", "", "connect", "reject", 554, "5.5.1",
                         "pregreet: client talked before the banner", "", ""))
        out.append('{"ts":"%s","level":"info","event":"session_end","worker":%d,"session":"%s","client_ip":"%s",'
                   '"helo":"","messages":0,"rejected":1,"errors":0}\n' % (ts(), worker, sess, ip))
        return out, 0
    delivered = rejected = 0
    if kind < 0.07:
        out.append(_line(ts(), worker, "decision", sess, ip, helo, "", "", "connect", "would-reject", 554, "5.7.1",
                         "dynamic address pool", "/etc/moat/monitor-site.rules:4", "dynamic-pool-monitor",
                         rdns="none"))
    if kind < 0.10 and kind >= 0.07:
        out.append(_line(ts(), worker, "rule", sess, ip, helo, good, "", "mail", "tag", 0, "",
                         "X-Moat-Suspect: spf-softfail", "/etc/moat/site.rules:30", "softfail-tag",
                         "pass", "softfail", "mechanism ~all matched"))
    if kind < 0.45:
        rcpts = [local() for _ in range(r.choice((1, 1, 1, 2, 3)))]
        subject = r.choice(("Invoice 2026-12", "Re: lunch", "Weekly report", "Тема письма", 'Say "hi"\\now'))
        data = ("%X" % r.getrandbits(40), _js("<%x@%s>" % (r.getrandbits(48), good.split("@")[1])), _js(subject),
                r.randrange(800, 200000), len(rcpts))
        out.append(_line(ts(), worker, "decision", sess, ip, helo, good, ",".join(rcpts), "data", "accept", 250,
                         "2.0.0", "250 2.0.0 Ok: queued as %s" % data[0], "", "", "pass", "pass",
                         "mechanism +ip4:198.51.100.0/24 matched", "%s:pass" % good.split("@")[1], data=data))
        delivered = 1
    elif kind < 0.60:
        bad = "%s@%s" % (r.choice(("info", "noreply", "x")), r.choice(g.spam_domains))
        rid = "sender-nxdomain"
        where, why, code, esc = g.RULES[rid]
        for _ in range(r.choice((1, 2))):
            out.append(_line(ts(), worker, "decision", sess, ip, helo, bad, local(), "rcpt", "reject", code, esc,
                             why, where, rid, "nxdomain", "none", "no SPF record at " + bad.split("@")[1]))
            rejected += 1
    elif kind < 0.85:
        rid = r.choice(("spf-fail", "unknown-recipient", "relay-denied", "bad-helo", "dynamic-pool",
                        "spf-fail", "unknown-recipient"))
        where, why, code, esc = g.RULES[rid]
        rc = local() if rid != "relay-denied" else "victim@%s" % r.choice(g.domains)
        spf = "fail" if rid == "spf-fail" else "pass"
        out.append(_line(ts(), worker, "decision", sess, ip, helo, good, rc, "rcpt", "reject", code, esc, why,
                         where, rid, "pass", spf, "mechanism -all matched" if spf == "fail" else None))
        rejected += 1
    elif kind < 0.90:
        rid = r.choice(("sender-tempfail", "spf-temperror"))
        where, why, code, esc = g.RULES[rid]
        out.append(_line(ts(), worker, "decision", sess, ip, helo, good, local(), "rcpt", "tempfail", code, esc,
                         why, where, rid, "tempfail" if rid == "sender-tempfail" else "pass",
                         "temperror" if rid == "spf-temperror" else "none"))
        rejected += 1
    elif kind < 0.95:
        out.append(_line(ts(), worker, "decision", sess, ip, helo, good, local(), "data", "reject", 550, "5.7.1",
                         "backend: 550 5.7.1 Message content rejected", "", "", "pass", "pass",
                         "mechanism +ip4:198.51.100.0/24 matched", "none",
                         data=("", '""', '"offer"', r.randrange(800, 9000), 1)))
        rejected += 1
    else:
        out.append('{"ts":"%s","level":"info","event":"timeout","worker":%d,"session":"%s","client_ip":"%s",'
                   '"msg":"command timeout (300 s)"}\n' % (ts(), worker, sess, ip))
    out.append('{"ts":"%s","level":"info","event":"session_end","worker":%d,"session":"%s","client_ip":"%s",'
               '"helo":%s,"messages":%d,"rejected":%d,"errors":0}\n'
               % (ts(), worker, sess, ip, _js(helo), delivered, rejected))
    return out, delivered


def generate(f, sessions=10000, seed=1, start="2026-12-07T00:00:00.000Z", hours=24, clients=3000, zipf=1.1,
             target_bytes=None):
    """Write a log of `sessions` sessions (or until target_bytes) spread
    evenly over `hours` from `start` to the binary file f; returns the
    number of lines."""
    g = _Gen(seed, parse_ts(start), hours, clients, zipf)
    n = 0
    written = 0
    header = ('{"ts":"%s","level":"info","event":"listening","addr":"0.0.0.0:25","proxy_protocol":false}\n'
              '{"ts":"%s","level":"info","event":"ready","worker":0,"msg":"moat 0.1.0 ready"}\n'
              % (g.ts(g.start), g.ts(g.start)))
    f.write(header.encode())
    n += 2
    total = sessions if target_bytes is None else 1 << 62
    step = g.span / (sessions if target_bytes is None else max(1, target_bytes // 770))
    i = 0
    buf = []
    while i < total:
        # busier by day than by night: a warp of the even spread
        u = (i * step % g.span) / g.span
        u = (u - 0.6 / (2 * math.pi) * math.sin(2 * math.pi * (u - 0.58))) % 1.0  # densest at 14:00
        lines, _ = _session(g, g.start + int(u * g.span))
        buf.extend(lines)
        n += len(lines)
        i += 1
        if len(buf) >= 4096:
            data = "".join(buf).encode()
            f.write(data)
            written += len(data)
            buf = []
            if target_bytes is not None and written >= target_bytes:
                break
    if buf:
        f.write("".join(buf).encode())
    return n
