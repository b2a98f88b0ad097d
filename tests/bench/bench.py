#!/usr/bin/python3
"""make bench: what moat costs, measured side by side in one run.

    bench.py --moat BUILD/moat --floor BUILD/bench/floor [--haraka DIR] [--out JSON]
    bench.py --moat BUILD/moat --soak N [--out JSON]

Targets, all on 127.0.0.1, each fed by Postfix's smtp-source and ending at
Postfix's smtp-sink:
  direct  smtp-source -> smtp-sink (the limit)
  floor   smtp-source -> floor (a byte-copying C relay) -> smtp-sink
  moat    smtp-source -> moat, every check on (relay, sender domain, SPF,
          DKIM; DNS from a loopback server, cache warm) -> smtp-sink
  haraka  smtp-source -> Haraka doing the same job (tests/bench/haraka.sh),
          with Nagle on (stock) and off (a preload sets TCP_NODELAY)

Cases: 1, 10 and 50 sessions, many messages per session (smtp-source -d) and
one message per session; DKIM-signed messages RSA-2048 and Ed25519, 4.7 KB
and 1 MB. Per case a warm-up, then rounds in alternating order; medians
with min-max; CPU ms per message of each process (moat, sink, DNS server,
floor, Haraka), peak RSS; ratios moat/direct, moat/floor, moat/Haraka.

Every run is checked: smtp-source must exit 0 (every reply 2xx) and the
sink must count exactly the messages sent. Needs root (smtp-sink drops to
nobody).

Environment: BENCH_ROUNDS (3), BENCH_MSGS (20000 per run for 4.7 KB),
BENCH_BIG_MSGS (300 per run for 1 MB), BENCH_HARAKA_MSGS (1500),
BENCH_CASES (comma-separated case names to run; default all),
BENCH_MOAT_CONF_EXTRA (lines added to moat.conf), BENCH_KEEP=1."""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import dkimsign  # noqa: E402  (the e2e suite's DKIM signer: dkimpy)

PY = "/usr/bin/python3"
TICK = os.sysconf("SC_CLK_TCK")
FROM, RCPT, HELO = "alice@sender.test", "bob@example.test", "mail.sender.test"


def env_int(name, default):
    return int(os.environ.get(name, default))


ROUNDS = env_int("BENCH_ROUNDS", 3)
MSGS = env_int("BENCH_MSGS", 20000)
BIG_MSGS = env_int("BENCH_BIG_MSGS", 300)
HARAKA_MSGS = env_int("BENCH_HARAKA_MSGS", 1500)


def say(*a):
    print(*a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_tcp(port, proc, what, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("bench: %s exited at start-up (%s)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("bench: %s did not listen on %d" % (what, port))


def family(pid):
    """pid and its children (moat's workers under its supervisor)."""
    pids = [pid]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def cpu_s(pid):
    """utime+stime of a live process and its children, seconds."""
    total = 0
    for p in family(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICK


def vm(pid, key):
    """A /proc status figure (KiB) of the process, or of its largest child
    (moat's workers: their pages loaded before the fork are shared, so a
    sum would count them several times)."""
    best = 0
    for p in family(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best


# ------------------------------------------------------------------ messages, zone

WORDS = ("the quarterly report shows steady growth across all regions while costs in logistics "
         "remain under control and the team expects the new warehouse to open in spring after "
         "inspections are complete please review the attached figures before our meeting on "
         "thursday and send any questions to the finance mailbox").split()


def prose(n, seed):
    out = [(w.capitalize() if i % 13 == 0 else w)
           for i, w in ((i, WORDS[(i * 7 + seed) % len(WORDS)]) for i in range(n))]
    return "\r\n".join(textwrap.wrap(" ".join(out) + ".", 72))


def message(size):
    """A realistic multipart message of about size bytes, CRLF lines, no leading dots."""
    text = "Hi Bob,\r\n\r\n" + prose(150, 1) + "\r\n\r\n" + prose(60, 5) + "\r\n\r\nBest regards,\r\nAlice\r\n"
    html = ("<html><body>\r\n<p>Hi Bob,</p>\r\n<p>" + prose(150, 1) + "</p>\r\n<p>" + prose(60, 5)
            + "</p>\r\n</body></html>\r\n")
    filler = ""
    base = 3600
    if size > base:   # a 1 MB message: an attachment of base64-looking lines
        line = ("QmVuY2htYXJrIGF0dGFjaG1lbnQgZGF0YSBmb3IgbW9hdCB0aGUgU01UUCBwcm94eQ" * 2)[:76] + "\r\n"
        filler = ("--b1_5f8a3c\r\nContent-Type: application/pdf; name=\"figures.pdf\"\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n" + line * ((size - base) // len(line)))
    headers = [
        "Received: from laptop.internal (laptop.internal [10.1.2.3])\r\n\tby mail.sender.test (Postfix)"
        " with ESMTPSA id 4RqXz12abcz9sW\r\n\tfor <bob@example.test>; Wed, 25 Nov 2026 09:14:02 +0000 (UTC)",
        "From: Alice Example <alice@sender.test>",
        "To: Bob Example <bob@example.test>",
        "Subject: Q3 figures and the warehouse opening",
        "Date: Wed, 25 Nov 2026 09:14:01 +0000",
        "Message-ID: <20261125091401.4RqXz12abcz9sW@mail.sender.test>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"b1_5f8a3c\"",
    ]
    body = ("--b1_5f8a3c\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text
            + "--b1_5f8a3c\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
            + filler + "--b1_5f8a3c--\r\n")
    msg = ("\r\n".join(headers) + "\r\n\r\n" + body).encode()
    assert not any(l.startswith(b".") for l in msg.split(b"\r\n"))
    return msg


def make_inputs(tmp):
    rsa, ed = dkimsign.rsa_key(), dkimsign.ed25519_key()
    hdrs = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type")
    msgs = {}
    for name, key, size in (("rsa-4k", rsa, 4700), ("ed25519-4k", ed, 4700),
                            ("rsa-1m", rsa, 1 << 20), ("ed25519-1m", ed, 1 << 20)):
        m = message(size)
        sel = "bench-" + key.algo
        signed = dkimsign.sign(m, key, "sender.test", sel, headers=hdrs) + m
        path = os.path.join(tmp, name + ".eml")
        with open(path, "wb") as f:
            f.write(signed.replace(b"\r\n", b"\n"))   # smtp-source -F sends LF files as CRLF
        msgs[name] = (path, len(signed))
    zone = [
        ["sender.test", "MX", [10, "mail.sender.test"]],
        ["sender.test", "A", "127.0.0.1"],
        ["sender.test", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"],
        ["mail.sender.test", "A", "127.0.0.1"],
        ["mail.sender.test", "TXT", "v=spf1 a -all"],
        ["bench-rsa._domainkey.sender.test", "TXT", rsa.txt],
        ["bench-ed25519._domainkey.sender.test", "TXT", ed.txt],
        ["1.0.0.127.in-addr.arpa", "PTR", "mail.sender.test"],
        ["example.test", "MX", [10, "moat.bench.test"]],
        ["moat.bench.test", "A", "127.0.0.1"],
    ]
    with open(os.path.join(tmp, "zone.json"), "w") as f:
        json.dump(zone, f)
    return msgs


# ------------------------------------------------------------------ processes

class Procs:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, argv, **kw):
        out = open(os.path.join(self.tmp, name + ".out"), "wb")
        err = open(os.path.join(self.tmp, name + ".err"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_dns(pr, tmp):
    portf = os.path.join(tmp, "dns.port")
    p = pr.start("dns", [PY, os.path.join(HERE, "benchdns.py"), os.path.join(tmp, "zone.json"), portf,
                         os.path.join(tmp, "dns.stats")])
    for _ in range(200):
        if os.path.exists(portf):
            return p, int(open(portf).read())
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit("bench: the DNS server did not start: " + open(os.path.join(tmp, "dns.err")).read())


class Sink:
    def __init__(self, pr, tmp):
        self.port = free_port()
        self.out = os.path.join(tmp, "sink.out")
        self.proc = pr.start("sink", ["smtp-sink", "-c", "-u", "nobody", "-C", "-F",
                                      "127.0.0.1:%d" % self.port, "1024"])
        wait_tcp(self.port, self.proc, "smtp-sink")

    def count(self):
        """Messages received so far (smtp-sink -c prints a running counter)."""
        with open(self.out, "rb") as f:
            found = re.findall(rb"mesg=(\d+)", f.read())
        return int(found[-1]) if found else 0


def big_lists(tmp):
    """A rule file with two million-entry lists (domains, networks) that every
    message is looked up in, ahead of the default policy."""
    doms = os.path.join(tmp, "million-domains")
    nets = os.path.join(tmp, "million-networks")
    with open(doms, "w") as f:
        f.write("".join("d%d.example\n" % i for i in range(1000000)))
    with open(nets, "w") as f:
        f.write("".join("10.%d.%d.0/24\n" % (i >> 8, i & 255) for i in range(65536)))
        f.write("".join("2001:%x:%x::/48\n" % (0x100 + (i >> 16), i & 0xffff) for i in range(1000000 - 65536)))
    rules = os.path.join(tmp, "lists.rules")
    with open(os.path.join(ROOT, "rules", "default.rules")) as d, open(rules, "w") as f:
        f.write('reject client list:%s "554 5.7.1 blocked"\n' % nets)
        f.write('reject sender-domain list:%s "550 5.7.1 blocked"\n' % doms)
        f.write(d.read())
    return rules


def start_moat(pr, tmp, moat_bin, sink_port, dns_port, name="moat", extra=""):
    conf = os.path.join(tmp, name + ".conf")
    log = os.path.join(tmp, name + ".log")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:0\nrun_as_root = yes\nbackend = 127.0.0.1:%d\n"
                "hostname = moat.bench.test\nlocal_domains = example.test\n"
                "dns_servers = 127.0.0.1:%d\nlog = %s\nmax_connections = 2000\n"
                "max_connections_per_ip = 2000\nmax_message_size = 20000000\n"
                % (sink_port, dns_port, log))
        f.write(extra + "\n" + os.environ.get("BENCH_MOAT_CONF_EXTRA", "") + "\n")
    p = pr.start(name, [moat_bin, "-c", conf])
    for _ in range(600):
        text = ""
        for fn in (log, os.path.join(tmp, name + ".err")):
            if os.path.exists(fn):
                text += open(fn).read()
        if '"event":"ready"' in text:
            for line in text.splitlines():
                if '"event":"listening"' in line:
                    return p, int(json.loads(line)["addr"].rsplit(":", 1)[1])
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit("bench: moat did not start:\n" + open(os.path.join(tmp, name + ".err")).read()[-2000:])


def start_floor(pr, floor_bin, sink_port):
    port = free_port()
    p = pr.start("floor", [floor_bin, str(port), str(sink_port)])
    wait_tcp(port, p, "floor relay")
    return p, port


def start_haraka(pr, tmp, hdir, sink_port, dns_port, nodelay):
    site = os.path.join(tmp, "haraka-%s" % ("nodelay" if nodelay else "stock"))
    port = free_port()
    cmd = subprocess.run(["bash", os.path.join(HERE, "haraka.sh"), "config", hdir, site, str(port),
                          str(sink_port), str(dns_port), "example.test", "1" if nodelay else "0"],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    p = pr.start(os.path.basename(site), ["bash", "-c", "exec " + cmd])
    wait_tcp(port, p, "Haraka", timeout=60)
    return p, port


# ------------------------------------------------------------------ runs

class RunFailed(Exception):
    """A run whose messages were not all accepted and delivered: that target
    is dropped from the case and the failure reported."""


class Run:
    def __init__(self, sink, watch):
        self.sink = sink
        self.watch = watch      # {name: pid} whose CPU is measured

    def once(self, port, n, sessions, per_session, msg):
        before = self.sink.count()
        cpu0 = {k: cpu_s(pid) for k, pid in self.watch.items()}
        t0 = time.monotonic()
        args = ["smtp-source", "-s", str(sessions), "-m", str(n), "-F", msg, "-f", FROM, "-t", RCPT,
                "-M", HELO, "127.0.0.1:%d" % port]
        if per_session:
            args.insert(1, "-d")
        r = subprocess.run(args, capture_output=True, text=True)
        t1 = time.monotonic()
        if r.returncode != 0:
            raise RunFailed("smtp-source exited %d (a reply was not 2xx): %s"
                            % (r.returncode, (r.stdout + r.stderr).strip()[-300:]))
        for _ in range(100):
            got = self.sink.count() - before
            if got >= n:
                break
            time.sleep(0.05)
        if got != n:
            raise RunFailed("sent %d messages, the sink counted %d" % (n, got))
        cpu = {k: (cpu_s(pid) - cpu0[k]) * 1000.0 / n for k, pid in self.watch.items()}
        return n / (t1 - t0), cpu


def med(xs):
    return statistics.median(xs) if xs else None


MAIN = ("direct", "floor", "moat", "haraka", "haraka-nodelay")
CASES = [
    # name, sessions, many per session, message, targets
    ("s1-many", 1, True, "rsa-4k", MAIN),
    ("s10-many", 10, True, "rsa-4k", MAIN + ("moat-1worker", "moat-lists")),
    ("s50-many", 50, True, "rsa-4k", MAIN + ("moat-1worker",)),
    ("s1-one", 1, False, "rsa-4k", MAIN),
    ("s10-one", 10, False, "rsa-4k", MAIN),
    ("s50-one", 50, False, "rsa-4k", MAIN),
    ("s10-many-ed25519", 10, True, "ed25519-4k", MAIN),
    ("s10-many-rsa-1m", 10, True, "rsa-1m", ("direct", "floor", "moat")),
    ("s10-many-ed25519-1m", 10, True, "ed25519-1m", ("direct", "floor", "moat")),
]


def bench(args):
    tmp = tempfile.mkdtemp(prefix="moat-bench.")
    os.chmod(tmp, 0o755)
    pr = Procs(tmp)
    results = {"cases": [], "rounds": ROUNDS}
    try:
        msgs = make_inputs(tmp)
        for path, _ in msgs.values():
            os.chmod(path, 0o644)
        dns, dns_port = start_dns(pr, tmp)
        sink = Sink(pr, tmp)
        moat, moat_port = start_moat(pr, tmp, args.moat, sink.port, dns_port)
        moat1, moat1_port = start_moat(pr, tmp, args.moat, sink.port, dns_port, "moat-1worker", "workers = 1")
        t0 = time.monotonic()
        moatl, moatl_port = start_moat(pr, tmp, args.moat, sink.port, dns_port, "moat-lists",
                                       "rules = " + big_lists(tmp))
        results["lists_load_s"] = round(time.monotonic() - t0, 2)
        floor, floor_port = start_floor(pr, args.floor, sink.port)
        targets = [("direct", sink.port), ("floor", floor_port), ("moat", moat_port),
                   ("moat-1worker", moat1_port), ("moat-lists", moatl_port)]
        watch = {"moat": moat.pid, "sink": sink.proc.pid, "dns": dns.pid, "floor": floor.pid,
                 "moat-1worker": moat1.pid, "moat-lists": moatl.pid}
        if args.haraka:
            for nd in (0, 1):
                hp, hport = start_haraka(pr, tmp, args.haraka, sink.port, dns_port, nd)
                name = "haraka-nodelay" if nd else "haraka"
                targets.append((name, hport))
                watch[name] = hp.pid
        run = Run(sink, watch)
        wanted = set(filter(None, os.environ.get("BENCH_CASES", "").split(",")))
        say("bench: %d rounds; %d msgs per run (1 MB: %d, Haraka: %d); message sizes %s" % (
            ROUNDS, MSGS, BIG_MSGS, HARAKA_MSGS,
            ", ".join("%s %d B" % (k, v[1]) for k, v in msgs.items())))
        all_targets = targets
        for name, sessions, many, mkey, names in CASES:
            if wanted and name not in wanted:
                continue
            targets = [(t, p) for t, p in all_targets if t in names]
            path, size = msgs[mkey]
            big = size > 100000
            rates = {t: [] for t, _ in targets}
            cpu = {t: {} for t, _ in targets}
            failed = {}
            for ti, (t, port) in enumerate(targets):   # warm-up: DNS cache, keys, connections
                n = min(HARAKA_MSGS if t.startswith("haraka") else MSGS, 200 if big else 2000)
                try:
                    run.once(port, max(n // 10, sessions), sessions, many, path)
                except RunFailed as e:
                    failed[t] = str(e)
            for r in range(ROUNDS):
                order = targets if r % 2 == 0 else list(reversed(targets))
                for t, port in order:
                    if t in failed:
                        continue
                    n = BIG_MSGS if big else HARAKA_MSGS if t.startswith("haraka") else MSGS
                    if not many:
                        n = min(n, 10000)    # one connection per message: ports in TIME_WAIT
                    try:
                        rate, c = run.once(port, n, sessions, many, path)
                    except RunFailed as e:
                        failed[t] = str(e)
                        continue
                    rates[t].append(rate)
                    for k, v in c.items():
                        cpu[t].setdefault(k, []).append(v)
            for t in failed:
                rates[t] = []
            if "moat" in failed or "direct" in failed or "floor" in failed:
                raise SystemExit("bench: failed in case %s: %s" % (
                    name, "; ".join("%s: %s" % kv for kv in sorted(failed.items()))))
            row = {"case": name, "sessions": sessions, "messages_per_session": "many" if many else 1,
                   "message": mkey, "message_bytes": size, "targets": {}, "failed": failed}
            targets = [(t, p) for t, p in targets if t not in failed]
            for t, _ in targets:
                row["targets"][t] = {
                    "msgs_per_s": round(med(rates[t]), 1), "min": round(min(rates[t]), 1),
                    "max": round(max(rates[t]), 1),
                    "cpu_ms_per_msg": {k: round(med(v), 4) for k, v in cpu[t].items()
                                       if k in (t, "sink", "dns")},
                }
            m = rates["moat"]
            for t in ("moat-1worker", "moat-lists"):
                if t in rates:
                    row["moat_over_" + t] = round(med([a / b for a, b in zip(m, rates[t])]), 3)
            row["moat_over_direct"] = round(med([a / b for a, b in zip(m, rates["direct"])]), 3)
            row["moat_over_floor"] = round(med([a / b for a, b in zip(m, rates["floor"])]), 3)
            row["floor_over_direct"] = round(med([a / b for a, b in zip(rates["floor"], rates["direct"])]), 3)
            hk = [t for t, _ in targets if t.startswith("haraka")]
            if hk:
                best = max(hk, key=lambda t: med(rates[t]))
                row["haraka_best"] = best
                row["moat_over_haraka"] = round(med(m) / med(rates[best]), 1)
            results["cases"].append(row)
            print_row(row, [t for t, _ in targets])
            write_json(args.out, results)
        results["moat_peak_rss_kib"] = vm(moat.pid, "VmHWM")
        results["moat_1worker_peak_rss_kib"] = vm(moat1.pid, "VmHWM")
        results["moat_lists_peak_rss_kib"] = vm(moatl.pid, "VmHWM")
        for t in ("haraka", "haraka-nodelay"):
            if t in watch:
                results[t + "_peak_rss_kib"] = vm(watch[t], "VmHWM")
        results["floor_peak_rss_kib"] = vm(floor.pid, "VmHWM")
        say("peak RSS: moat %d KiB (largest worker), moat-1worker %d KiB, moat-lists %d KiB, floor %d KiB%s" % (
            results["moat_peak_rss_kib"], results["moat_1worker_peak_rss_kib"],
            results["moat_lists_peak_rss_kib"], results["floor_peak_rss_kib"],
            "".join(", %s %d KiB" % (t, results[t + "_peak_rss_kib"]) for t in ("haraka", "haraka-nodelay")
                    if t + "_peak_rss_kib" in results)))
    finally:
        pr.stop_all()
        if os.path.exists(os.path.join(tmp, "dns.stats")):
            results["dns_queries"] = int(open(os.path.join(tmp, "dns.stats")).read())
        if os.environ.get("BENCH_KEEP") == "1":
            say("bench: temp dir kept: " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    write_json(args.out, results)
    say("bench: JSON in " + args.out)


def write_json(path, results):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.rename(path + ".tmp", path)


def print_row(row, targets):
    t = row["targets"]
    say("\n%s: %d sessions, %s msgs/session, %s (%d B)" % (
        row["case"], row["sessions"], row["messages_per_session"], row["message"], row["message_bytes"]))
    for name in targets:
        x = t[name]
        cpu = ", ".join("%s %.3f" % (k, v) for k, v in sorted(x["cpu_ms_per_msg"].items()))
        say("  %-15s %9.1f msgs/s (%.1f-%.1f)   CPU ms/msg: %s" % (name, x["msgs_per_s"], x["min"], x["max"], cpu))
    extra = "".join("   moat/%s %.3f" % (t, row["moat_over_" + t]) for t in ("moat-1worker", "moat-lists")
                    if "moat_over_" + t in row)
    if "moat_over_haraka" in row:
        extra += "   moat/%s %.1f" % (row["haraka_best"], row["moat_over_haraka"])
    say("  ratios: moat/direct %.3f   moat/floor %.3f   floor/direct %.3f%s" % (
        row["moat_over_direct"], row["moat_over_floor"], row["floor_over_direct"], extra))
    for name, why in sorted(row["failed"].items()):
        say("  %-15s FAILED: %s" % (name, why))


def soak(args):
    """N messages through moat only, 10,000 at a time: RSS after each chunk;
    then SIGTERM: moat must exit 0 without a sanitizer or leak report."""
    tmp = tempfile.mkdtemp(prefix="moat-soak.")
    os.chmod(tmp, 0o755)
    pr = Procs(tmp)
    rows = []
    try:
        msgs = make_inputs(tmp)
        path, size = msgs["rsa-4k"]
        os.chmod(path, 0o644)
        dns, dns_port = start_dns(pr, tmp)
        sink = Sink(pr, tmp)
        moat, moat_port = start_moat(pr, tmp, args.moat, sink.port, dns_port)
        run = Run(sink, {"moat": moat.pid})
        say("soak: %s, %d messages of %d B (DKIM rsa-sha256), 20 sessions" % (args.moat, args.soak, size))
        sent = 0
        while sent < args.soak:
            n = min(10000, args.soak - sent)
            rate, _ = run.once(moat_port, n, 20, True, path)
            sent += n
            rss = vm(moat.pid, "VmRSS")
            rows.append({"messages": sent, "rss_kib": rss, "rate": round(rate, 1)})
            say("soak: %7d messages  RSS %6d KiB  %8.1f msgs/s" % (sent, rss, rate))
        moat.send_signal(signal.SIGTERM)
        rc = moat.wait(60)
        err = open(os.path.join(tmp, "moat.err"), errors="replace").read()
        bad = [l for l in err.splitlines() if "Sanitizer" in l or "runtime error:" in l]
        if rc != 0 or bad:
            say("\n".join(bad[:20]))
            raise SystemExit("soak: moat exited %d with %d sanitizer lines" % (rc, len(bad)))
        say("soak: moat exited 0, no sanitizer or leak report")
    finally:
        pr.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"soak": args.soak, "message_bytes": size, "moat": args.moat, "exit": 0, "rows": rows}, f,
                  indent=1)
    say("soak: JSON in " + args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moat", required=True)
    ap.add_argument("--floor")
    ap.add_argument("--haraka", help="Haraka install dir (tests/bench/haraka.sh install DIR)")
    ap.add_argument("--soak", type=int)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "bench.json"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: must run as root (smtp-sink starts as root and drops to nobody)")
    os.environ["PATH"] += ":/usr/sbin:/sbin"
    if args.soak:
        soak(args)
    else:
        if not args.floor:
            raise SystemExit("bench: --floor is required")
        bench(args)


if __name__ == "__main__":
    main()
