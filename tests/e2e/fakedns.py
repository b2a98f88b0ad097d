"""A small authoritative DNS server on loopback (dnslib) so that moat's DNS
checks (SPF, DNSBL, PTR, sender domain) answer at once and the same way on
every machine. Every name not in the zone is NXDOMAIN (so DNSBL queries say
"not listed"); a name in the zone without a record of the asked type is NODATA.
"""

import threading

from dnslib import A, MX, PTR, QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

SPF_ORG = "v=spf1 ip4:127.0.0.0/8 ip4:203.0.113.0/24 ip4:198.51.100.0/24 ?all"

DEFAULT_ZONE = {
    # sender domains used by the tests
    ("example.org", "A"): [A("192.0.2.10")],
    ("example.org", "MX"): [MX("mail.example.org", 10)],
    ("example.org", "TXT"): [TXT(SPF_ORG)],
    ("mail.example.org", "A"): [A("192.0.2.10")],
    ("example.net", "A"): [A("192.0.2.11")],
    ("example.net", "MX"): [MX("mail.example.net", 10)],
    ("mail.example.net", "A"): [A("192.0.2.11")],
    # the local domain
    ("example.test", "A"): [A("192.0.2.20")],
    ("example.test", "MX"): [MX("mx.test.example", 10)],
    ("mx.test.example", "A"): [A("127.0.0.1")],
    # loopback clients have forward-confirmed reverse DNS
    ("1.0.0.127.in-addr.arpa", "PTR"): [PTR("localhost")],
    ("2.0.0.127.in-addr.arpa", "PTR"): [PTR("localhost")],
    ("localhost", "A"): [A("127.0.0.1"), A("127.0.0.2")],
}


class ZoneResolver(BaseResolver):
    def __init__(self, zone):
        self.zone = zone
        self.names = {n for (n, _t) in zone}
        self.queries = []

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname, qtype))
        if qname not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rd in self.zone.get((qname, qtype), []):
            reply.add_answer(RR(request.q.qname, getattr(QTYPE, qtype), rdata=rd, ttl=60))
        return reply


class FakeDNS:
    def __init__(self, zone=None):
        self.resolver = ZoneResolver(dict(zone or DEFAULT_ZONE))
        logger = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False, logf=lambda *_: None)
        self.udp = DNSServer(self.resolver, address="127.0.0.1", port=0, logger=logger)
        self.port = self.udp.server.server_address[1]
        # TCP on the same port, for truncated answers (best effort).
        try:
            self.tcp = DNSServer(self.resolver, address="127.0.0.1", port=self.port, tcp=True, logger=logger)
        except OSError:
            self.tcp = None

    def start(self):
        self.udp.start_thread()
        if self.tcp:
            self.tcp.start_thread()
        return self

    def stop(self):
        for s in (self.udp, self.tcp):
            if s:
                s.server.shutdown()
                s.server.server_close()

    @property
    def servers(self):
        return "127.0.0.1:%d" % self.port


if __name__ == "__main__":
    import sys
    d = FakeDNS().start()
    print("READY", d.port, flush=True)
    threading.Event().wait() if len(sys.argv) < 2 else None
