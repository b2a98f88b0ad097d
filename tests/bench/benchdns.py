#!/usr/bin/python3
"""The benchmark's DNS server: a zone from a JSON file on one loopback port,
UDP and TCP; NXDOMAIN for names outside it. A separate process, so that its
CPU time is measured apart (what moat's cache saves shows there).

    benchdns.py ZONE.json PORTFILE STATSFILE

ZONE.json: [[name, type, value], ...] with A, AAAA, MX [pref, host], PTR, TXT.
Writes the port to PORTFILE once serving; on SIGTERM writes the number of
queries answered to STATSFILE and exits."""

import json
import os
import signal
import sys
import threading

from dnslib import AAAA, A, MX, PTR, QTYPE, RCODE, RR, TXT
from dnslib.server import DNSLogger, DNSServer


def load(path):
    records, names = {}, set()
    for name, rtype, value in json.load(open(path)):
        if rtype == "A":
            rdata = A(value)
        elif rtype == "AAAA":
            rdata = AAAA(value)
        elif rtype == "MX":
            rdata = MX(value[1], value[0])
        elif rtype == "PTR":
            rdata = PTR(value)
        elif rtype == "TXT":
            rdata = TXT([value[i:i + 255].encode() for i in range(0, len(value), 255)])
        else:
            raise SystemExit("unknown type " + rtype)
        qt = getattr(QTYPE, rtype)
        records.setdefault((name.lower(), qt), []).append(RR(name, qt, rdata=rdata, ttl=3600))
        labels = name.lower().split(".")
        names.update(".".join(labels[i:]) for i in range(len(labels)))
    return records, names


def main():
    zone_file, port_file, stats_file = sys.argv[1:4]
    records, names = load(zone_file)
    queries = [0]

    class Zone:
        def resolve(self, request, handler):
            queries[0] += 1
            reply = request.reply()
            name = str(request.q.qname).lower().rstrip(".")
            rrs = records.get((name, request.q.qtype))
            if rrs:
                for rr in rrs:
                    reply.add_answer(rr)
            elif name not in names:
                reply.header.rcode = RCODE.NXDOMAIN
            return reply

    quiet = DNSLogger("-request,-reply,-truncated,-error")
    for _ in range(50):
        udp = DNSServer(Zone(), port=0, address="127.0.0.1", logger=quiet)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(Zone(), port=port, address="127.0.0.1", tcp=True, logger=quiet)
            break
        except OSError:
            udp.server.server_close()
    else:
        raise SystemExit("no free port for UDP and TCP")
    udp.start_thread()
    tcp.start_thread()

    def stop(*_):
        with open(stats_file, "w") as f:
            f.write("%d\n" % queries[0])
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(port_file + ".tmp", port_file)
    threading.Event().wait()


if __name__ == "__main__":
    main()
