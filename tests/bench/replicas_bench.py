#!/usr/bin/python3
"""Two moat replicas behind HAProxy against one (issue 17 item 5/6: the
two-replica figures of docs/scaling.md), all on 127.0.0.1.

Targets, each fed by Postfix's smtp-source and ending at smtp-sink, every
moat with bench.py's configuration (every check on, a JSON log line per
message), `workers = W`, one redis-server shared by all, greylisting on for
every message (its triplet passed before the runs, greylist_auto_allow 0 so
every message takes the passed path) and two rate limits never reached
(messages per client, messages per sender domain):

  one-plain    smtp-source -> moat without redis and the rules (the cost of both)
  one          smtp-source -> moat (one replica, directly)
  one-haproxy  smtp-source -> HAProxy (send-proxy-v2) -> moat (HAProxy's cost)
  two          smtp-source -> HAProxy round robin (send-proxy-v2) -> two moats

Cases: 10 sessions with one message each (a connection per message: what
round robin spreads) and 10 sessions of many messages, for W = 1 and 2.
A warm-up run per target, then ROUNDS rounds, each target once per round,
the order reversed every other round. Reported: messages/s (median, min-max),
CPU ms per message of the moats, HAProxy, Redis and the client, Redis
commands per message, and the load average before the case.

    /usr/bin/python3 tests/bench/replicas_bench.py --moat build/moat [--msgs 4000] [--rounds 3]
"""

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (its processes, sink, DNS, moat configuration, runs)
from bench import FROM, HELO, RCPT  # noqa: E402

RULES = ("greylist not rcpt nobody@example.test id grey\n"
         "ratelimit client 1000000000/1h id per-client\n"
         "ratelimit sender-domain 1000000000/1h id per-domain\n"
         "include builtin:default\n")


def haproxy(pr, tmp, name, servers):
    port = bench.free_port()
    cfg = os.path.join(tmp, name + ".cfg")
    lines = ["global", "    maxconn 4000", "defaults", "    mode tcp", "    timeout connect 1s",
             "    timeout client 60s", "    timeout server 60s",
             "frontend f", "    bind 127.0.0.1:%d" % port, "    default_backend b",
             "backend b", "    balance roundrobin"]
    lines += ["    server s%d 127.0.0.1:%d send-proxy-v2" % (i, p) for i, p in enumerate(servers)]
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = pr.start(name, ["haproxy", "-db", "-f", cfg])
    bench.wait_tcp(port, p, "haproxy")
    return p, port


def pass_triplet(port, timeout=30):
    """The bench's triplet (127.0.0.0/24, FROM, RCPT) greylisted once, then
    retried until it passes (greylist_delay 1)."""
    import smtplib
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with smtplib.SMTP("127.0.0.1", port, local_hostname=HELO) as s:
            s.ehlo(HELO)
            s.mail(FROM)
            code, _ = s.rcpt(RCPT)
            s.rset()
        if code == 250:
            return
        time.sleep(0.3)   # a client's pause between retries
    raise SystemExit("bench: the triplet never passed")


def start(args, pr, tmp, sink, dns_port, workers):
    """{target: port}, {process: pid}, redis port."""
    rp, rport = bench.start_redis(pr, tmp)
    rules = os.path.join(tmp, "replicas.rules")
    with open(rules, "w") as f:
        f.write(RULES)
    store = ("workers = %d\nredis = 127.0.0.1:%d\nrules = %s\ngreylist_delay = 1\n"
             "greylist_auto_allow = 0\n" % (workers, rport, rules))
    ports, watch = {}, {"redis": rp.pid}

    def moat(name, extra):
        p, port = bench.start_moat(pr, tmp, args.moat, sink.port, dns_port, "%s-w%d" % (name, workers), extra)
        watch[name] = p.pid
        return port

    ports["one-plain"] = moat("one-plain", "workers = %d" % workers)
    ports["one"] = moat("one", store)
    behind = [moat(n, store + "proxy_protocol = yes\n") for n in ("one-behind", "two-a", "two-b")]
    p, ports["one-haproxy"] = haproxy(pr, tmp, "haproxy-one-w%d" % workers, behind[:1])
    watch["haproxy-one"] = p.pid
    p, ports["two"] = haproxy(pr, tmp, "haproxy-two-w%d" % workers, behind[1:])
    watch["haproxy-two"] = p.pid
    pass_triplet(ports["one"])
    return ports, watch, rport


def cpu_of(target, cpu):
    moats = {"one-plain": ["one-plain"], "one": ["one"], "one-haproxy": ["one-behind"], "two": ["two-a", "two-b"]}
    hap = {"one-haproxy": "haproxy-one", "two": "haproxy-two"}.get(target)
    out = {"moat": sum(cpu[m] for m in moats[target]), "client": cpu["client"]}
    if hap:
        out["haproxy"] = cpu[hap]
    if target != "one-plain":
        out["redis"] = cpu["redis"]
        out["redis_cmds"] = cpu["redis_cmds"]
        out["redis_calls"] = cpu["redis_calls"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moat", required=True)
    ap.add_argument("--msgs", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="moat-replicas-bench-")
    msgs = bench.make_inputs(tmp)
    path = msgs["rsa-4k"][0]
    targets = ("one-plain", "one", "one-haproxy", "two")
    print("moat %s, %d messages per run (rsa-4k), %d rounds, %d CPUs" % (args.moat, args.msgs, args.rounds,
                                                                      os.cpu_count()))
    try:
        for workers in map(int, args.workers.split(",")):
            wtmp = os.path.join(tmp, "w%d" % workers)   # each W its own processes and files
            os.makedirs(wtmp)
            shutil.copy(os.path.join(tmp, "zone.json"), wtmp)
            pr = bench.Procs(wtmp)
            try:
                sink = bench.Sink(pr, wtmp)
                _, dns_port = bench.start_dns(pr, wtmp)
                ports, watch, rport = start(args, pr, wtmp, sink, dns_port, workers)
                watch["sink"] = sink.proc.pid
                run = bench.Run(sink, watch)
                for cname, many in (("s10-one", False), ("s10-many", True)):
                    load = os.getloadavg()
                    rates = {t: [] for t in targets}
                    cpus = {t: [] for t in targets}
                    for t in targets:   # warm-up
                        run.once(ports[t], args.msgs // 4, 10, many, path, redis=rport)
                    for r in range(args.rounds):
                        for t in (targets if r % 2 == 0 else reversed(targets)):
                            rate, cpu = run.once(ports[t], args.msgs, 10, many, path, redis=rport)
                            rates[t].append(rate)
                            cpus[t].append(cpu_of(t, cpu))
                    print("\n== workers %d, %s (load average before: %.2f %.2f %.2f; after: %.2f %.2f %.2f)"
                          % ((workers, cname) + load + os.getloadavg()))
                    for t in targets:
                        xs = rates[t]
                        c = {k: statistics.median(x[k] for x in cpus[t]) for k in cpus[t][0]}
                        print("  %-12s %7.0f msgs/s (%.0f-%.0f)  x%.2f of one   CPU ms/msg: %s" % (
                            t, statistics.median(xs), min(xs), max(xs),
                            statistics.median(xs) / statistics.median(rates["one"]),
                            ", ".join("%s %.3f" % (k, v) for k, v in c.items() if not k.startswith("redis_"))
                            + ("; Redis calls (EVALSHA)/msg %.2f (commands %.2f)" % (c["redis_calls"], c["redis_cmds"])
                               if "redis_cmds" in c else "")))
                    sys.stdout.flush()
            finally:
                pr.stop_all()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
