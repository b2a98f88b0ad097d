"""Shared helpers for the end-to-end tests of moat's checks (sender domain,
SPF, DKIM, Authentication-Results, DNS isolation).

    ZoneDNS       a loopback authoritative DNS server (dnslib, UDP + TCP) whose
                  zone each test writes: A, AAAA, MX (null MX too), TXT (several
                  strings), SPF (type 99), PTR, CNAME (followed like an
                  authoritative server does). Per name or per domain it can
                  answer SERVFAIL, never answer (the query is read and dropped),
                  or hold its answers until the test sets an Event; it can
                  truncate long UDP answers (udp_max: TC, retry over TCP) and
                  play a server without EDNS (FORMERR). Every query it receives
                  is recorded, so tests can wait for one.
    SilentDNS     a "nameserver" that reads every query and never answers.
    dns_factory   (conftest.py) fixture: dns_factory(zone) -> a started ZoneDNS
    checks_moat   moat_factory wrapper pointing moat at a ZoneDNS
    proxy_v1/v2   PROXY protocol headers for a client address
    authres_of    moat's Authentication-Results field of a delivered message,
                  parsed: {"authserv_id", "spf", "spf_prop", "dkim": [...]}
    no_backend_contact   assert a block of SMTP made moat open no backend
                  connection (besides its start-up probe)

Synchronisation is on observable events only (queries seen by the DNS
server, log lines, backend events, replies).
"""

import ipaddress
import re
import socket
import struct
import threading
import time
from contextlib import contextmanager

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSError, DNSLabel, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer

from moatlib import (DEFAULT_TIMEOUT, HOSTNAME, LOCAL_DOMAIN, SMTPClient, Watched,
                     prepended_fields)

RCPT = "bob@" + LOCAL_DOMAIN

# The records every checks test needs: a sender domain with an SPF policy
# that passes loopback clients, the local domain, reverse DNS of loopback.
SPF_LOOPBACK = "v=spf1 ip4:127.0.0.0/8 -all"


def base_zone():
    return {
        "example.org": [("A", "192.0.2.10"), ("MX", (10, "mail.example.org")),
                        ("TXT", SPF_LOOPBACK)],
        "mail.example.org": [("A", "192.0.2.10")],
        "example.test": [("A", "192.0.2.20"), ("MX", (10, HOSTNAME))],
        HOSTNAME: [("A", "127.0.0.1")],
        "1.0.0.127.in-addr.arpa": [("PTR", "localhost")],
        "localhost": [("A", "127.0.0.1")],
    }


# ------------------------------------------------------------------ DNS server

def _norm(name):
    """A name as text, lower case, no trailing dot; a DNSLabel's raw label
    bytes are kept as they are (str(DNSLabel) would escape a space as \\032)."""
    if isinstance(name, DNSLabel):
        return b".".join(name.label).decode("latin-1").lower()
    return str(name).rstrip(".").lower()


def _txt_strings(value):
    """TXT/SPF data as a list of byte strings of at most 255 bytes each.
    A str is one string (split at 255 bytes if longer, as a zone file
    would have to); a list is taken string by string; [] is a TXT record
    without any string (illegal, but the RFC 7208 suite has one)."""
    def b(v):
        if isinstance(v, bytes):
            return v
        try:
            return str(v).encode("latin-1")   # YAML "\xEF" means the byte 0xEF
        except UnicodeEncodeError:
            return str(v).encode("utf-8")
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in items:
        v = b(v)
        if not v:
            out.append(b"")
        while v:
            out.append(v[:255])
            v = v[255:]
    return out


def make_rdata(rtype, value):
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(str(ipaddress.IPv6Address(value)))
    if rtype == "MX":
        pref, host = value
        return MX(DNSLabel(host if host not in ("", ".") else "."), int(pref))
    if rtype in ("TXT", "SPF"):
        return TXT(_txt_strings(value))
    if rtype == "PTR":
        return PTR(DNSLabel(value))
    if rtype == "CNAME":
        return CNAME(DNSLabel(value))
    raise ValueError("record type %r not supported" % rtype)


class ZoneResolver:
    """zone: {name: [entry, ...]}; an entry is (TYPE, value) or one of the
    markers "TIMEOUT" (RFC 7208 suite semantics: a query for a type with no
    record listed before the marker is never answered), ("SERVFAIL", TYPE or
    None) and ("DROP", TYPE or None) (None: every type), and ("HOLD", ev):
    every answer for the name waits until the threading.Event ev is set."""

    def __init__(self, zone, servfail_domains=(), drop_domains=()):
        self.zone = {}
        self.ttl = 300   # of every answer record; a test may change it
        self.set_zone(zone)
        self.servfail_domains = {_norm(d) for d in servfail_domains}
        self.drop_domains = {_norm(d) for d in drop_domains}
        self.queries = Watched()   # (qname, qtype, time.monotonic())
        self.tcp_queries = []      # (qname, qtype) that came over TCP
        self.formerr_edns = False  # answer FORMERR to queries with EDNS (OPT)
        self.formerr_sent = 0

    def set_zone(self, zone):
        z = {}
        for name, entries in (zone or {}).items():
            z.setdefault(_norm(name), []).extend(entries)
        self.zone = z

    def _under(self, qname, domains):
        return any(qname == d or qname.endswith("." + d) for d in domains)

    def _lookup(self, qname, qtype):
        """(rcode, [(owner, TYPE, value)], drop)"""
        answers = []
        seen = set()
        name = qname
        while True:
            if self._under(name, self.drop_domains):
                return None, [], True
            if self._under(name, self.servfail_domains):
                return RCODE.SERVFAIL, [], False
            entries = self.zone.get(name)
            if entries is None:
                # the rcode is about the last name of a CNAME chain (RFC 6604)
                return RCODE.NXDOMAIN, answers, False
            got_type = False
            cname = None
            for e in entries:
                if e == "TIMEOUT":
                    if not got_type:
                        return None, [], True
                    break
                kind, val = e
                if kind == "DROP" and val in (None, qtype):
                    return None, [], True
                if kind == "SERVFAIL" and val in (None, qtype):
                    return RCODE.SERVFAIL, [], False
                if kind in ("DROP", "SERVFAIL", "HOLD"):
                    continue
                if kind == qtype:
                    got_type = True
                    answers.append((name, kind, val))
                elif kind == "CNAME" and qtype != "CNAME" and cname is None:
                    cname = val
            if cname is None or got_type:
                return RCODE.NOERROR, answers, False
            answers.append((name, "CNAME", cname))
            seen.add(name)
            name = _norm(cname)
            if name in seen:           # a CNAME loop: the chain so far
                return RCODE.NOERROR, answers, False

    def resolve(self, request, handler):
        qname = _norm(request.q.qname)
        qtype = QTYPE.get(request.q.qtype, str(request.q.qtype))
        self.queries.append((qname, qtype, time.monotonic()))
        if getattr(handler, "protocol", "") == "tcp":
            self.tcp_queries.append((qname, qtype))
        # ("HOLD", threading.Event): the answer waits until the test releases
        # it (each query has its own thread)
        for e in self.zone.get(qname, ()):
            if e != "TIMEOUT" and e[0] == "HOLD":
                e[1].wait(30)
        if self.formerr_edns and any(rr.rtype == QTYPE.OPT for rr in request.ar):
            reply = request.reply()
            reply.header.rcode = RCODE.FORMERR   # an old server that knows no EDNS
            self.formerr_sent += 1
            return reply
        rcode, answers, drop = self._lookup(qname, qtype)
        if drop:
            raise DNSError("dropped on purpose: %s %s" % (qname, qtype))
        reply = request.reply()
        reply.header.rcode = rcode
        for owner, kind, val in answers:
            owner_label = request.q.qname if owner == qname else DNSLabel(owner)
            reply.add_answer(RR(owner_label, getattr(QTYPE, kind), rdata=make_rdata(kind, val), ttl=self.ttl))
        return reply


class _QuietLogger(DNSLogger):
    def __init__(self):
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data",
                         prefix=False, logf=lambda *_: None)

    def log_error(self, handler, e):
        pass


class _TruncatingHandler(DNSHandler):
    """UDP answers longer than the server's udp_max go out as a real server
    sends them: header and question, TC set, no records (RFC 2181 9)."""

    def get_reply(self, data):
        rdata = super().get_reply(data)
        limit = getattr(self.server, "udp_max", None)
        if self.protocol == "udp" and limit and len(rdata) > limit:
            req = DNSRecord.parse(data)
            t = req.reply()
            t.header.tc = 1
            rdata = t.pack()
            self.server.resolver.truncated.append(_norm(req.q.qname))
        return rdata


class ZoneDNS:
    def __init__(self, zone=None, servfail_domains=(), drop_domains=(), tcp=True, udp_max=None):
        self.resolver = ZoneResolver(base_zone() if zone is None else zone,
                                     servfail_domains, drop_domains)
        self.resolver.truncated = []
        # UDP and TCP on one port number: the kernel picks the UDP one, and a
        # TCP socket of some other test may hold that number; then pick again
        # (with TCP missing, a truncated answer fails the whole lookup).
        for _ in range(50):
            self.udp = DNSServer(self.resolver, address="127.0.0.1", port=0, logger=_QuietLogger(),
                                 handler=_TruncatingHandler)
            self.udp.server.udp_max = udp_max
            self.port = self.udp.server.server_address[1]
            self.tcp = None
            if not tcp:
                break
            try:
                self.tcp = DNSServer(self.resolver, address="127.0.0.1", port=self.port, tcp=True,
                                     logger=_QuietLogger())
                break
            except OSError:
                self.udp.server.server_close()
        else:
            raise RuntimeError("no port free for both UDP and TCP")

    def start(self):
        # a short poll interval: stop() (socketserver.shutdown) returns at once
        for s in (self.udp, self.tcp):
            if s:
                s.thread = threading.Thread(target=s.server.serve_forever, kwargs={"poll_interval": 0.05},
                                            daemon=True)
                s.thread.start()
        return self

    def stop(self):
        for s in (self.udp, self.tcp):
            if s:
                s.server.shutdown()
                s.server.server_close()

    @property
    def servers(self):
        return "127.0.0.1:%d" % self.port

    @property
    def zone(self):
        return self.resolver.zone

    def add(self, name, rtype, value):
        self.resolver.zone.setdefault(_norm(name), []).append((rtype, value))

    def queries(self):
        return self.resolver.queries.snapshot()

    def wait_query(self, pred, n=1, timeout=DEFAULT_TIMEOUT, what="DNS queries"):
        """Wait until n queries (qname, qtype, t) satisfy pred; return them."""
        return self.resolver.queries.wait_count(lambda q: pred(q[0], q[1]), n, timeout, what=what)


class SilentDNS:
    """A UDP "nameserver" that reads every query and never answers (so its
    socket buffer never fills and no ICMP error ever comes back)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = Watched()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, _peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            self.queries.append((data, time.monotonic()))

    @property
    def servers(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def checks_moat(moat_factory, dns, **keys):
    """A moat whose checks ask dns (a ZoneDNS or SilentDNS). The checks' tests read a
    sender's verdict where it is made, at MAIL: delay_reject = no unless a test says
    otherwise (the default, yes, moves it to each RCPT: test_checks_sender.py's
    delay_reject tests)."""
    keys.setdefault("dns_servers", dns.servers)
    keys.setdefault("delay_reject", "no")
    return moat_factory(**keys)


# -------------------------------------------------------------- PROXY headers

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(src, sport=40000, dport=25):
    ip = ipaddress.ip_address(src)
    if ip.version == 6:
        return ("PROXY TCP6 %s ::1 %d %d\r\n" % (ip, sport, dport)).encode()
    return ("PROXY TCP4 %s 127.0.0.1 %d %d\r\n" % (ip, sport, dport)).encode()


def proxy_v2(src, sport=40000, dport=25):
    ip = ipaddress.ip_address(src)
    if ip.version == 6:
        fam = 0x21
        addrs = ip.packed + ipaddress.IPv6Address("::1").packed + struct.pack("!HH", sport, dport)
    else:
        fam = 0x11
        addrs = ip.packed + ipaddress.IPv4Address("127.0.0.1").packed + struct.pack("!HH", sport, dport)
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(addrs)) + addrs


def connect(moat, proxy=None, timeout=DEFAULT_TIMEOUT):
    """An SMTPClient past the banner; proxy: bytes of a PROXY header to send first."""
    if proxy is None:
        c = SMTPClient(moat.port, timeout=timeout)
    else:
        c = SMTPClient(moat.port, timeout=timeout, read_banner=False)
        c.send(proxy)
        c.banner = c.reply()
    assert c.banner.code == 220, c.banner
    return c


# ------------------------------------------------------ Authentication-Results

QUEUED = re.compile(r"queued as (\d+)")


def stored_message(backend, reply):
    """The backend's message that a 250 end-of-data reply names."""
    m = QUEUED.search(reply.line)
    assert reply.code == 250 and m, "not delivered: %r" % reply
    n = int(m.group(1))
    backend.wait_event(lambda e: e[0] == "STORED" and int(e[1]) == n, what="STORED %d" % n)
    for msg in backend.messages():
        if msg.n == n:
            return msg
    raise AssertionError("backend has no message %d" % n)


def unfold(field):
    return re.sub(rb"\r\n[ \t]", b" ", field).rstrip(b"\r\n").decode("utf-8", "replace")


def _split_resinfo(s):
    """Split an A-R value at the ";" that are outside quoted strings and
    comments (RFC 8601 / RFC 5322 lexical rules); comments are dropped,
    quoted strings kept with their quotes. An unclosed comment or quote
    swallows the rest, as it would in any RFC 5322 parser."""
    parts, cur, depth, quoted, i = [], [], 0, False, 0
    while i < len(s):
        ch = s[i]
        if quoted:
            cur.append(ch)
            if ch == "\\" and i + 1 < len(s):
                cur.append(s[i + 1])
                i += 1
            elif ch == '"':
                quoted = False
        elif depth:
            if ch == "\\":
                i += 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
        elif ch == "(":
            depth = 1
            cur.append(" ")
        elif ch == '"':
            quoted = True
            cur.append(ch)
        elif ch == ";":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _tokens(s):
    """White-space separated tokens; a quoted string stays one token."""
    return re.findall(r'(?:[^\s"]|"(?:[^"\\]|\\.)*")+', s)


def _unquote(v):
    return re.sub(r'"((?:[^"\\]|\\.)*)"', lambda m: re.sub(r"\\(.)", r"\1", m.group(1)), v)


def parse_authres(field):
    """Parse one Authentication-Results field (bytes, as on the wire) the way
    a downstream consumer would: {"authserv_id", "spf", "spf_prop", "dkim":
    [{"result", "header.d", ...}], "methods": [...], "raw"}. Property values
    are unquoted."""
    text = unfold(field)
    name, _, value = text.partition(":")
    assert name.strip().lower() == "authentication-results", field
    parts = [p.strip() for p in _split_resinfo(value)]
    idtoks = _tokens(parts[0])
    res = {"authserv_id": _unquote(idtoks[0]) if idtoks else "", "raw": text, "spf": None,
           "spf_prop": {}, "dkim": [], "methods": []}
    for p in parts[1:]:
        toks = _tokens(p)
        if not toks:
            continue
        method, _, result = toks[0].partition("=")
        props = {}
        for t in toks[1:]:
            k, _, v = t.partition("=")
            props[k] = _unquote(v)
        res["methods"].append(method)
        if method == "spf":
            res["spf"] = result
            res["spf_prop"] = props
        elif method == "dkim":
            d = dict(props)
            d["result"] = result
            res["dkim"].append(d)
    return res


def moat_fields(msg, original):
    """The header fields moat prepended to original (bytes, with CRLFs)."""
    return prepended_fields(msg.data, original)


def authres_of(msg, original=None):
    """moat's own Authentication-Results of a delivered message, parsed.
    With original, also checks that the message is moat's prefix + original."""
    if original is not None:
        fields = moat_fields(msg, original)
    else:
        fields, cur = [], None
        for line in msg.data.split(b"\r\n"):
            if line == b"":
                break
            if line[:1] in (b" ", b"\t") and cur is not None:
                fields[-1] += line + b"\r\n"
            else:
                fields.append(line + b"\r\n")
                cur = True
    ours = [f for f in fields if f.lower().startswith(b"authentication-results:")
            and parse_authres(f)["authserv_id"].lower() == HOSTNAME]
    assert len(ours) == 1, "expected exactly one Authentication-Results by %s, got %r" % (
        HOSTNAME, ours or fields[:5])
    return parse_authres(ours[0])


# ------------------------------------------------------------------ backend

@contextmanager
def no_backend_contact(moat, backend, timeout=DEFAULT_TIMEOUT):
    """The block's SMTP must not make moat open a backend connection or send
    the backend anything. moat's start-up probe (one connection) is waited
    for first and not counted, nor is anything before the block. The
    caller must end its sessions inside the block (QUIT and/or close); the
    check waits for their session_end lines (box["sessions"], default 1)."""
    moat.wait_log(lambda l: l.get("event") == "backend_probe", what="backend_probe line")
    # the probe's CONNECT may still be on its way through the backend's
    # stdout reader: wait for it, then for its CLOSE
    backend.wait_event(lambda e: e[0] == "CONNECT", what="the probe's CONNECT")
    backend.wait_all_closed()
    events_before = len(backend.events.snapshot())
    ends_before = len(moat.log_lines(event="session_end"))
    box = {}
    yield box
    n_sessions = box.get("sessions", 1)
    moat.wait_session_end(ends_before + n_sessions, timeout=timeout)
    new = backend.events.snapshot()[events_before:]
    assert not [e for e in new if e[0] == "CONNECT"], (
        "moat opened a backend connection for a refused transaction: %r" % new)
    cmds = [e[2] for e in new if e[0] == "CMD" and e[2].upper().startswith(("MAIL", "RCPT", "DATA"))]
    assert not cmds, "the backend got %r" % cmds


def wait_decision(moat, pred, what="decision line", timeout=DEFAULT_TIMEOUT):
    return moat.wait_log(lambda l: "action" in l and "stage" in l and pred(l), timeout=timeout, what=what)


def simple_message(subject="test", body=b"Hello.\r\n", extra=b""):
    return (b"From: alice@example.org\r\nTo: bob@example.test\r\nSubject: " + subject.encode()
            + b"\r\nMessage-ID: <" + subject.replace(" ", ".").encode() + b"@example.org>\r\n"
            + extra + b"\r\n" + body)
