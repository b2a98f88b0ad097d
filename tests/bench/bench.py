#!/usr/bin/python3
"""make bench: what moat costs, measured side by side in one run.

    bench.py --moat BUILD/moat --floor BUILD/bench/floor [--floortls BUILD/bench/floortls
             --tlsgen BUILD/bench/tlsgen] [--haraka DIR] [--out JSON]
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
floor, Haraka, the client), peak RSS; ratios moat/direct, moat/floor,
moat/Haraka.

The TLS cases (tls-*: 1 and 10 sessions, many messages per session and one
each) feed every target with tlsgen (smtp-source speaks no TLS): moat-tls
(moat with tls_cert/tls_key, STARTTLS), moat (plain), floortls (the floor
terminating STARTTLS), floor (plain), haraka-tls-nodelay (Haraka's tls
plugin); one message per session also with resumed TLS sessions (-resume:
tickets). One key and cipher for all: ECDSA P-256, TLS 1.3
TLS_AES_128_GCM_SHA256, made with the openssl CLI into build/bench/tls.
tls-handshake measures openssl s_server's CPU per session under openssl
s_time -new and -reuse: the yardstick of moat's added CPU per STARTTLS
session (moat-tls minus moat, one message per session), printed at the end.
A moat without STARTTLS ('unknown key "tls_cert"') runs the rest, its TLS
targets listed as not run.

Every run is checked: smtp-source and tlsgen must exit 0 (every reply as
expected) and the sink must count exactly the messages sent. Needs root
(smtp-sink drops to nobody).

Environment: BENCH_ROUNDS (3), BENCH_MSGS (20000 per run for 4.7 KB),
BENCH_BIG_MSGS (300 per run for 1 MB), BENCH_HARAKA_MSGS (1500),
BENCH_TLS_ONE_MSGS (4000 per TLS run of one message per session),
BENCH_TLS_SECONDS (5 per s_time run), BENCH_TLS_HARAKA_STOCK=1 (stock Haraka
in the TLS cases too), BENCH_QUICK=1 (a smoke test: one round of small runs),
BENCH_CASES (comma-separated case names to run, tls-handshake among them;
default all), BENCH_MOAT_CONF_EXTRA (lines added to moat.conf), BENCH_KEEP=1."""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import smtplib
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


QUICK = os.environ.get("BENCH_QUICK") == "1"   # a smoke test: every case, small runs, one round
ROUNDS = env_int("BENCH_ROUNDS", 1 if QUICK else 3)
MSGS = env_int("BENCH_MSGS", 1000 if QUICK else 20000)
BIG_MSGS = env_int("BENCH_BIG_MSGS", 20 if QUICK else 300)
HARAKA_MSGS = env_int("BENCH_HARAKA_MSGS", 100 if QUICK else 1500)
TLS_ONE_MSGS = env_int("BENCH_TLS_ONE_MSGS", 300 if QUICK else 4000)
TLS_SECONDS = env_int("BENCH_TLS_SECONDS", 1 if QUICK else 5)


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
        ["_dmarc.sender.test", "TXT", "v=DMARC1; p=reject"],
        ["bench-rsa._domainkey.sender.test", "TXT", rsa.txt],
        ["bench-ed25519._domainkey.sender.test", "TXT", ed.txt],
        ["1.0.0.127.in-addr.arpa", "PTR", "mail.sender.test"],
        ["example.test", "MX", [10, "moat.bench.test"]],
        ["moat.bench.test", "A", "127.0.0.1"],
        # moat-dnsbl's lists: the client is on the allowlist, not on the others (NXDOMAIN)
        ["1.0.0.127.wl.bench.test", "A", "127.0.0.2"],
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


def start_redis(pr, tmp):
    """redis-server on a free loopback port, its own directory, no
    persistence (the store of moat-redis; its CPU is measured like the DNS
    server's)."""
    port = free_port()
    d = os.path.join(tmp, "redis")
    os.makedirs(d)
    p = pr.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                           "--save", "", "--appendonly", "no", "--daemonize", "no"])
    wait_tcp(port, p, "redis-server")
    return p, port


def redis_info(port, section):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section.encode()))
        f = s.makefile("rb")
        n = int(f.readline()[1:])
        return f.read(n + 2).decode()


def redis_commands(port):
    """(commands the server has processed so far (INFO stats), the scripts
    it ran: moat's calls, one round trip each (INFO commandstats)); the
    first counts the INFO commands this function sent."""
    total = int(re.search(r"total_commands_processed:(\d+)", redis_info(port, "stats")).group(1))
    calls = sum(int(n) for n in re.findall(r"cmdstat_evalsha?:calls=(\d+)", redis_info(port, "commandstats")))
    return total, calls


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


def moat_conf(tmp, name, sink_port, dns_port, extra=""):
    """Writes TMP/NAME.conf (the log: TMP/NAME.log) and returns its path."""
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:0\nrun_as_root = yes\nbackend = 127.0.0.1:%d\n"
                "hostname = moat.bench.test\nlocal_domains = example.test\n"
                "dns_servers = 127.0.0.1:%d\nlog = %s\nmax_connections = 2000\n"
                "max_connections_per_ip = 2000\nmax_message_size = 20000000\n"
                % (sink_port, dns_port, os.path.join(tmp, name + ".log")))
        f.write(extra + "\n" + os.environ.get("BENCH_MOAT_CONF_EXTRA", "") + "\n")
    return conf


def start_moat(pr, tmp, moat_bin, sink_port, dns_port, name="moat", extra="", prefix=()):
    conf = moat_conf(tmp, name, sink_port, dns_port, extra)
    log = os.path.join(tmp, name + ".log")
    p = pr.start(name, list(prefix) + [moat_bin, "-c", conf])
    for _ in range(1200 if prefix else 600):
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


def start_floor(pr, floor_bin, sink_port, tls=None):
    """The byte-copying floor; with tls (cert, key) the one terminating STARTTLS."""
    port = free_port()
    name = "floortls" if tls else "floor"
    p = pr.start(name, [floor_bin, str(port), str(sink_port)] + (list(tls) + [TLS_SUITE] if tls else []))
    wait_tcp(port, p, name + " relay")
    return p, port


def start_haraka(pr, tmp, hdir, sink_port, dns_port, nodelay, tls=None):
    site = os.path.join(tmp, "haraka-%s%s" % ("tls-" if tls else "", "nodelay" if nodelay else "stock"))
    port = free_port()
    cmd = subprocess.run(["bash", os.path.join(HERE, "haraka.sh"), "config", hdir, site, str(port),
                          str(sink_port), str(dns_port), "example.test", "1" if nodelay else "0"]
                         + (list(tls) if tls else []),
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    p = pr.start(os.path.basename(site), ["bash", "-c", "exec " + cmd])
    wait_tcp(port, p, "Haraka", timeout=60)
    return p, port


# ------------------------------------------------------------------ TLS

TLS_SUITE = "TLS_AES_128_GCM_SHA256"


def make_tls():
    """An ECDSA P-256 key and a self-signed certificate for every TLS server
    of the bench, made now into build/bench/tls (never committed)."""
    d = os.path.join(ROOT, "build", "bench", "tls")
    os.makedirs(d, exist_ok=True)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    old = os.umask(0o077)
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "7", "-subj", "/CN=moat.bench.test",
                        "-addext", "subjectAltName=DNS:moat.bench.test"], check=True, capture_output=True)
    finally:
        os.umask(old)
    os.chmod(cert, 0o644)
    return cert, key


def warm_greylist(port):
    """The bench's triplet (127.0.0.0/24, FROM, RCPT) greylisted once, then
    retried until it passes (greylist_delay = 1): every message of the runs
    finds it passed. The seconds it took."""
    t0 = time.monotonic()
    while True:
        with smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=10) as c:
            c.ehlo()
            c.mail(FROM)
            code, text = c.rcpt(RCPT)
            if code == 250:
                c.data(b"Subject: warm-up\r\n\r\nthe triplet passes\r\n")
                return round(time.monotonic() - t0, 2)
            if code != 451 or b"Greylisted" not in text or time.monotonic() - t0 > 30:
                raise SystemExit("bench: moat-limits: the warm-up's RCPT got %d %s" % (code, text.decode()))
        time.sleep(0.25)   # a client's pause between retries


def moat_takes(tmp, moat_bin, conf, key):
    """None when this moat takes conf (moat -t), else why not: a moat that
    does not know key yet ('unknown key')."""
    r = subprocess.run([moat_bin, "-t", "-c", conf], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if r.returncode == 0:
        return None
    if 'unknown key "' + key in out:
        return "this moat has no %s (%s)" % (key, out.splitlines()[-1])
    raise SystemExit("bench: moat -t refuses the configuration: " + out)


def moat_has_tls(tmp, moat_bin, conf):
    """None when this moat takes the configuration conf with tls_cert and
    tls_key (moat -t), else why not (a moat without STARTTLS: 'unknown key')."""
    r = subprocess.run([moat_bin, "-t", "-c", conf], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if r.returncode == 0:
        return None
    if 'unknown key "tls_' in out:
        return "this moat has no STARTTLS (%s)" % out.splitlines()[-1]
    raise SystemExit("bench: moat -t refuses the TLS configuration: " + out)


def handshake_cost(pr, tmp, cert, key):
    """openssl s_server's CPU per TLS session under openssl s_time, with the
    bench's key and cipher suite: -new (a full handshake each, the yardstick
    of moat's added cost) and -reuse (resumed with a ticket; s_time reads a
    3-byte page with -www, else it never sees the TLS 1.3 tickets)."""
    d = os.path.join(tmp, "s_server")
    os.makedirs(d)
    with open(os.path.join(d, "t"), "w") as f:
        f.write("ok\n")
    port = free_port()
    p = pr.start("s_server", ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", cert,
                              "-key", key, "-ciphersuites", TLS_SUITE, "-WWW", "-quiet"], cwd=d)
    wait_tcp(port, p, "openssl s_server")
    out = {"new": [], "reuse": []}
    for r in range(ROUNDS):
        for mode in ("new", "reuse"):
            argv = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-" + mode, "-tls1_3",
                    "-ciphersuites", TLS_SUITE, "-time", str(TLS_SECONDS)]
            if mode == "reuse":
                argv += ["-www", "/t"]
            c0, t0 = cpu_s(p.pid), time.monotonic()
            s = subprocess.run(argv, capture_output=True, text=True)
            t1, c1 = time.monotonic(), cpu_s(p.pid)
            found = re.findall(r"(\d+) connections in [\d.]+s;", s.stdout)
            if s.returncode != 0 or not found:
                raise SystemExit("bench: openssl s_time -%s failed: %s" % (mode, (s.stdout + s.stderr)[-500:]))
            n = int(found[-1])
            out[mode].append({"sessions_per_s": n / (t1 - t0), "cpu_ms": (c1 - c0) * 1000.0 / n,
                              "sessions": n, "resumed": sum(l.count("r") for l in s.stdout.splitlines()
                                                            if l and not l.strip("*r"))})
    p.send_signal(signal.SIGTERM)
    res = {}
    for mode, runs in out.items():
        res[mode] = {"sessions_per_s": round(med([x["sessions_per_s"] for x in runs]), 1),
                     "server_cpu_ms_per_session": round(med([x["cpu_ms"] for x in runs]), 4),
                     "min": round(min(x["cpu_ms"] for x in runs), 4), "max": round(max(x["cpu_ms"] for x in runs), 4),
                     "resumed": sum(x["resumed"] for x in runs), "sessions": sum(x["sessions"] for x in runs)}
    say("\ntls-handshake: openssl s_server under openssl s_time (%s, ECDSA P-256), %d s per run" % (
        TLS_SUITE, TLS_SECONDS))
    for mode in ("new", "reuse"):
        x = res[mode]
        say("  s_time -%-6s %9.1f sessions/s   server CPU ms/session: %.3f (%.3f-%.3f)   resumed %d/%d" % (
            mode, x["sessions_per_s"], x["server_cpu_ms_per_session"], x["min"], x["max"], x["resumed"],
            x["sessions"]))
    return res


# ------------------------------------------------------------------ runs

class RunFailed(Exception):
    """A run whose messages were not all accepted and delivered: that target
    is dropped from the case and the failure reported."""


def client_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Run:
    def __init__(self, sink, watch, tlsgen=None):
        self.sink = sink
        self.watch = watch      # {name: pid} whose CPU is measured
        self.tlsgen = tlsgen
        self.counts = {}        # tlsgen's counts of the last run

    def once(self, port, n, sessions, per_session, msg, gen=None, redis=None):
        """n messages to port; gen None: by smtp-source, else by tlsgen with
        these flags ([] plain, ["-S"] STARTTLS, ["-S", "-R"] resuming); redis:
        the port of the store whose commands per message are counted too."""
        cmds0, calls0 = redis_commands(redis) if redis else (0, 0)
        before = self.sink.count()
        cpu0 = {k: cpu_s(pid) for k, pid in self.watch.items()}
        client0 = client_cpu()
        t0 = time.monotonic()
        tool = "smtp-source" if gen is None else self.tlsgen
        args = [tool] + (gen or []) + ["-s", str(sessions), "-m", str(n), "-F", msg, "-f", FROM, "-t", RCPT,
                                       "-M", HELO, "127.0.0.1:%d" % port]
        if per_session:
            args.insert(1, "-d")
        r = subprocess.run(args, capture_output=True, text=True)
        t1 = time.monotonic()
        client = client_cpu() - client0
        if r.returncode != 0:
            raise RunFailed("%s exited %d (a reply was not as expected): %s"
                            % (os.path.basename(tool), r.returncode, (r.stdout + r.stderr).strip()[-300:]))
        if gen is not None:
            self.counts = dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)
        for _ in range(100):
            got = self.sink.count() - before
            if got >= n:
                break
            time.sleep(0.05)
        if got != n:
            raise RunFailed("sent %d messages, the sink counted %d" % (n, got))
        cpu = {k: (cpu_s(pid) - cpu0[k]) * 1000.0 / n for k, pid in self.watch.items()}
        cpu["client"] = client * 1000.0 / n
        if redis:
            cmds, calls = redis_commands(redis)
            cpu["redis_cmds"] = (cmds - cmds0 - 2) / n   # less the first two INFO
            cpu["redis_calls"] = (calls - calls0) / n
        return n / (t1 - t0), cpu


def med(xs):
    return statistics.median(xs) if xs else None


MAIN = ("direct", "floor", "moat", "haraka", "haraka-nodelay")
MAIN_RATIOS = (("moat", "direct"), ("moat", "floor"), ("floor", "direct"), ("moat", "moat-1worker"),
               ("moat", "moat-lists"), ("moat", "moat-nodmarc"), ("moat-dnsbl", "moat"),
               ("moat-dnsbl", "moat-nodmarc"), ("moat-dnsbl", "moat-base"), ("moat-nodmarc", "moat-base"),
               ("moat-redis", "moat"), ("moat-limits", "moat"))
# Issue 16's cost (DMARC and three weighted DNS lists, cache warm), side by
# side: moat-dnsbl (DMARC on, the lists) against moat-nodmarc (the same build
# without either: the checks as they were before) and, with BENCH_MOAT_BASE,
# moat-base (a build from before them, its defaults). Target: >= 0.95.
ISSUE16 = ("moat-base", "moat-nodmarc", "moat", "moat-dnsbl")
# Issue 17's cost: moat-redis is moat with `redis =` a redis-server on
# loopback (started by the bench, no persistence, its CPU and the commands
# it processed per message reported) and the lines of BENCH_REDIS_CONF (the
# greylisting and rate limit settings the case measures, e.g. a rule file
# that greylists every message with its triplets passed beforehand): a
# scaffold until the features land. A moat without `redis` skips these cases.
# Target: moat-redis / moat >= 0.90.
REDIS_CONF = os.environ.get("BENCH_REDIS_CONF", "").replace("\\n", "\n")
REDIS = ("moat", "moat-redis")
# Issue 17, item 6: moat-limits is moat with Redis (the same redis-server),
# greylisting every message (its triplet passed in the warm-up, through
# moat-limits itself) and two rate limits high enough never to refuse (per
# client: messages at MAIL, recipients at RCPT): 3 calls a message, 2 round
# trips. Against moat without them; target >= 0.90.
LIMITS_RULES = ('greylist  not rcpt nobody@bench.invalid  note "every message"  id bench-grey\n'
                "ratelimit client 1000000000/1h  id bench-client\n"
                "ratelimit client 1000000000/1h recipients  id bench-rcpts\n"
                "include builtin:default\n")
LIMITS = ("moat", "moat-limits")
# The TLS cases: every target fed by tlsgen, with STARTTLS when "tls" is in
# its name, resuming sessions with tickets when it ends in "-resume".
# Stock Haraka (Nagle on) is left out: with TLS it ran at 10.5 msgs/s against
# 94.5 with TCP_NODELAY at one session, 68 against 121 at ten one each (a run of
# 2026-12-07), and would take minutes a run; BENCH_TLS_HARAKA_STOCK=1 adds it.
TLS = ("moat-tls", "moat", "floortls", "floor", "haraka-tls-nodelay") + (
    ("haraka-tls",) if os.environ.get("BENCH_TLS_HARAKA_STOCK") == "1" else ())
TLS_ONE = TLS + ("moat-tls-resume", "floortls-resume")
TLS_RATIOS = (("moat-tls", "floortls"), ("moat-tls", "moat"), ("floortls", "floor"), ("moat", "floor"))
CASES = [
    # name, sessions, many per session, message, targets
    ("s1-many", 1, True, "rsa-4k", MAIN + ("moat-nodmarc", "moat-dnsbl")),
    ("s10-many", 10, True, "rsa-4k", MAIN + ("moat-1worker", "moat-lists", "moat-nodmarc", "moat-dnsbl")),
    ("s50-many", 50, True, "rsa-4k", MAIN + ("moat-1worker",)),
    ("s1-one", 1, False, "rsa-4k", MAIN),
    ("s10-one", 10, False, "rsa-4k", MAIN + ("moat-dnsbl",)),
    ("s50-one", 50, False, "rsa-4k", MAIN),
    ("s10-many-ed25519", 10, True, "ed25519-4k", MAIN),
    ("s10-many-rsa-1m", 10, True, "rsa-1m", ("direct", "floor", "moat")),
    ("s10-many-ed25519-1m", 10, True, "ed25519-1m", ("direct", "floor", "moat")),
    ("dmarc-dnsbl-s1-many", 1, True, "rsa-4k", ISSUE16),
    ("dmarc-dnsbl-s10-many", 10, True, "rsa-4k", ISSUE16),
    ("dmarc-dnsbl-s10-one", 10, False, "rsa-4k", ISSUE16),
    ("redis-s10-many", 10, True, "rsa-4k", REDIS),
    ("redis-s10-one", 10, False, "rsa-4k", REDIS),
    ("limits-s10-many", 10, True, "rsa-4k", LIMITS),
    ("limits-s10-one", 10, False, "rsa-4k", LIMITS),
    ("tls-s1-many", 1, True, "rsa-4k", TLS),
    ("tls-s10-many", 10, True, "rsa-4k", TLS),
    ("tls-s1-one", 1, False, "rsa-4k", TLS_ONE),
    ("tls-s10-one", 10, False, "rsa-4k", TLS_ONE),
]
HANDSHAKE = "tls-handshake"   # openssl s_server under s_time: the yardstick
# A failure of these stops the bench (moat lost or refused mail, or the
# references are broken); Haraka's and the variants' are reported.
MUST_PASS = {"direct", "floor", "moat", "floortls", "floortls-resume", "moat-tls", "moat-tls-resume",
             "moat-nodmarc", "moat-dnsbl", "moat-base"}


def tls_case(name):
    return name.startswith("tls-")


def proc_of(target):
    """The process a target's messages go through ("-resume" is a client mode)."""
    return target[:-len("-resume")] if target.endswith("-resume") else target


def gen_of(target, tls):
    if not tls:
        return None
    return (["-S"] if "tls" in target else []) + (["-R"] if target.endswith("-resume") else [])


def msgs_for(target, many, big, tls):
    n = BIG_MSGS if big else HARAKA_MSGS if target.startswith("haraka") else MSGS
    if not many:   # one connection per message: ports in TIME_WAIT, and TLS handshakes are slow
        n = min(n, TLS_ONE_MSGS if tls else 10000)
    return n


def selected_cases():
    wanted = set(filter(None, os.environ.get("BENCH_CASES", "").split(",")))
    unknown = wanted - {c[0] for c in CASES} - {HANDSHAKE}
    if unknown:
        raise SystemExit("bench: unknown BENCH_CASES %s (known: %s)" % (
            ",".join(sorted(unknown)), ",".join([c[0] for c in CASES] + [HANDSHAKE])))
    return [c for c in CASES if not wanted or c[0] in wanted], not wanted or HANDSHAKE in wanted


DNSBL_CONF = ("dnsbl_sites = zen.bench.test*3, bl.bench.test=127.0.0.[2..11]*2, wl.bench.test*-5\n"
              "dnsbl_threshold = 3")


def start_targets(args, pr, tmp, sink, dns_port, needed, results, tls):
    """Start what the selected cases need: {target: port}, {process: pid},
    {target: why it does not run}. tls: (cert, key) for the TLS servers."""
    ports, watch, skipped = {"direct": sink.port}, {"sink": sink.proc.pid}, {}

    def moat(name, extra="", binary=None):
        p, ports[name] = start_moat(pr, tmp, binary or args.moat, sink.port, dns_port, name, extra)
        watch[name] = p.pid

    if "moat" in needed:
        moat("moat")
    if "moat-1worker" in needed:
        moat("moat-1worker", "workers = 1")
    if "moat-nodmarc" in needed:   # DMARC's cost: the same moat without it
        moat("moat-nodmarc", "check_dmarc = no")
    if "moat-dnsbl" in needed:   # three weighted DNS lists (cache warm after the first connection)
        moat("moat-dnsbl", DNSBL_CONF)
    if "moat-redis" in needed or "moat-limits" in needed:   # issue 17: the shared store on loopback
        rp, run_redis = start_redis(pr, tmp)
        watch["redis"] = rp.pid
        ports["redis"] = run_redis
    if "moat-redis" in needed:   # (see REDIS)
        extra = "redis = 127.0.0.1:%d\n%s" % (ports["redis"], REDIS_CONF)
        why = moat_takes(tmp, args.moat, moat_conf(tmp, "moat-redis", sink.port, dns_port, extra), "redis")
        if why:
            skipped["moat-redis"] = why
        else:
            moat("moat-redis", extra)
    if "moat-limits" in needed:   # (see LIMITS)
        rules = os.path.join(tmp, "limits.rules")
        with open(rules, "w") as f:
            f.write(LIMITS_RULES)
        extra = ("redis = 127.0.0.1:%d\nrules = %s\ngreylist_delay = 1\ngreylist_retry_window = 3600"
                 % (ports["redis"], rules))
        why = moat_takes(tmp, args.moat, moat_conf(tmp, "moat-limits", sink.port, dns_port, extra), "redis")
        if why:
            skipped["moat-limits"] = why
        else:
            moat("moat-limits", extra)
            results["limits_warm_s"] = warm_greylist(ports["moat-limits"])
    if "moat-base" in needed:   # another build (BENCH_MOAT_BASE), its defaults: the figures to keep
        if args.moat_base:
            moat("moat-base", binary=args.moat_base)
        else:
            skipped["moat-base"] = "no --moat-base (BENCH_MOAT_BASE=path of another build's moat)"
    if "moat-lists" in needed:
        t0 = time.monotonic()
        moat("moat-lists", "rules = " + big_lists(tmp))
        results["lists_load_s"] = round(time.monotonic() - t0, 2)
    if "moat-tls" in needed:
        extra = "tls_cert = %s\ntls_key = %s" % tls
        why = moat_has_tls(tmp, args.moat, moat_conf(tmp, "moat-tls", sink.port, dns_port, extra))
        if why:
            skipped["moat-tls"] = why
        else:
            moat("moat-tls", extra)
    if "floor" in needed:
        p, ports["floor"] = start_floor(pr, args.floor, sink.port)
        watch["floor"] = p.pid
    if "floortls" in needed:
        if not args.floortls:
            raise SystemExit("bench: the TLS cases need --floortls and --tlsgen")
        p, ports["floortls"] = start_floor(pr, args.floortls, sink.port, tls)
        watch["floortls"] = p.pid
    for name, nodelay, cert in (("haraka", 0, None), ("haraka-nodelay", 1, None),
                                ("haraka-tls", 0, tls), ("haraka-tls-nodelay", 1, tls)):
        if name not in needed:
            continue
        if not args.haraka:
            skipped[name] = "no Haraka (BENCH_HARAKA=0)"
            continue
        p, ports[name] = start_haraka(pr, tmp, args.haraka, sink.port, dns_port, nodelay, cert)
        watch[name] = p.pid
    for t in ("moat-tls", "floortls"):
        if t in ports:
            ports[t + "-resume"] = ports[t]
        elif t in skipped:
            skipped[t + "-resume"] = skipped[t]
    return ports, watch, skipped


def run_case(run, case, ports, msgs):
    """Warm-up, then ROUNDS rounds of every target of the case in alternating
    order: {target: [msgs/s]}, {target: {process: [CPU ms/msg]}}, {target:
    why it failed}, {target: tlsgen's counts of its last run}."""
    name, sessions, many, mkey, names = case
    tls = tls_case(name)
    targets = [t for t in names if t in ports]
    path, size = msgs[mkey]
    big = size > 100000
    rates, cpu, failed, counts = {t: [] for t in targets}, {t: {} for t in targets}, {}, {}
    for t in targets:   # warm-up: DNS cache, keys, connections
        n = min(msgs_for(t, many, big, tls), 200 if big else 2000)
        try:
            run.once(ports[t], max(n // 10, sessions), sessions, many, path, gen_of(t, tls))
        except RunFailed as e:
            failed[t] = str(e)
    for r in range(ROUNDS):
        for t in targets if r % 2 == 0 else list(reversed(targets)):
            if t in failed:
                continue
            try:
                rate, c = run.once(ports[t], msgs_for(t, many, big, tls), sessions, many, path, gen_of(t, tls),
                                   redis=ports.get("redis") if t in ("moat-redis", "moat-limits") else None)
            except RunFailed as e:
                failed[t] = str(e)
                continue
            if tls:
                counts[t] = run.counts
            rates[t].append(rate)
            for k, v in c.items():
                cpu[t].setdefault(k, []).append(v)
    return rates, cpu, failed, counts


def case_row(case, size, rates, cpu, failed, counts, skipped):
    name, sessions, many, mkey, names = case
    tls = tls_case(name)
    row = {"case": name, "sessions": sessions, "messages_per_session": "many" if many else 1,
           "message": mkey, "message_bytes": size, "targets": {}, "failed": failed,
           "not_run": {t: why for t, why in skipped.items() if t in names}}
    for t in rates:
        if t in failed:
            continue
        row["targets"][t] = {
            "msgs_per_s": round(med(rates[t]), 1), "min": round(min(rates[t]), 1),
            "max": round(max(rates[t]), 1),
            "cpu_ms_per_msg": {k: round(med(v), 4) for k, v in cpu[t].items()
                               if k in (proc_of(t), "sink", "dns", "client", "redis")},
        }
        if "redis_cmds" in cpu[t]:   # not CPU: the store's commands per message
            row["targets"][t]["redis_commands_per_msg"] = round(med(cpu[t]["redis_cmds"]), 2)
            row["targets"][t]["redis_calls_per_msg"] = round(med(cpu[t]["redis_calls"]), 2)
        if t in counts:
            row["targets"][t]["tls"] = {k: int(counts[t].get(k, 0)) for k in ("connections", "handshakes",
                                                                              "resumed")}
    ok = row["targets"]
    for a, b in TLS_RATIOS if tls else MAIN_RATIOS:
        if a in ok and b in ok:
            row["%s_over_%s" % (a, b)] = round(med([x / y for x, y in zip(rates[a], rates[b])]), 3)
    lead = "moat-tls" if tls else "moat"
    hk = [t for t in ok if t.startswith("haraka")]
    if hk and lead in ok:
        best = max(hk, key=lambda t: ok[t]["msgs_per_s"])
        row["haraka_best"] = best
        row["%s_over_haraka" % lead] = round(ok[lead]["msgs_per_s"] / ok[best]["msgs_per_s"], 1)
    return row


def bench(args):
    tmp = tempfile.mkdtemp(prefix="moat-bench.")
    os.chmod(tmp, 0o755)
    pr = Procs(tmp)
    results = {"cases": [], "rounds": ROUNDS}
    cases, handshake = selected_cases()
    needed = {t for c in cases for t in c[4]}
    try:
        msgs = make_inputs(tmp)
        for path, _ in msgs.values():
            os.chmod(path, 0o644)
        dns, dns_port = start_dns(pr, tmp)
        sink = Sink(pr, tmp)
        tls = make_tls() if handshake or any(tls_case(c[0]) for c in cases) else None
        ports, watch, skipped = start_targets(args, pr, tmp, sink, dns_port, needed, results, tls)
        watch["dns"] = dns.pid
        if any(tls_case(c[0]) for c in cases) and not args.tlsgen:
            raise SystemExit("bench: the TLS cases need --tlsgen")
        run = Run(sink, watch, args.tlsgen)
        say("bench: %d rounds; %d msgs per run (1 MB: %d, Haraka: %d, TLS one per session: %d); message sizes %s"
            % (ROUNDS, MSGS, BIG_MSGS, HARAKA_MSGS, TLS_ONE_MSGS,
               ", ".join("%s %d B" % (k, v[1]) for k, v in msgs.items())))
        for t, why in sorted(skipped.items()):
            say("bench: %s not run: %s" % (t, why))
        if handshake:
            results["tls_handshake"] = handshake_cost(pr, tmp, *tls)
        for case in cases:
            need = {"redis-": "moat-redis", "limits-": "moat-limits"}.get(case[0].split("-")[0] + "-")
            if need and need not in ports:
                say("\n%s: not run: %s" % (case[0], skipped.get(need, "no " + need)))
                continue
            rates, cpu, failed, counts = run_case(run, case, ports, msgs)
            bad = sorted(t for t in failed if t in MUST_PASS)
            if bad:
                raise SystemExit("bench: failed in case %s: %s" % (
                    case[0], "; ".join("%s: %s" % (t, failed[t]) for t in bad)))
            row = case_row(case, msgs[case[3]][1], rates, cpu, failed, counts, skipped)
            results["cases"].append(row)
            print_row(row)
            write_json(args.out, results)
        tls_summary(results)
        rss = {t: vm(pid, "VmHWM") for t, pid in watch.items() if t not in ("sink", "dns")}
        for t, kib in rss.items():
            results[t.replace("-", "_") + "_peak_rss_kib"] = kib
        say("peak RSS: " + ", ".join("%s %d KiB" % (t, kib) for t, kib in rss.items())
            + " (moat: its largest worker)")
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


def tls_summary(results):
    """The TLS targets: moat's added CPU per STARTTLS session against
    s_server's per handshake, and moat with TLS against Haraka with TLS."""
    hs = results.get("tls_handshake")
    rows = [r for r in results["cases"] if tls_case(r["case"])]
    if not rows:
        return
    summary = {}
    say("\nTLS summary (%s, ECDSA P-256)" % TLS_SUITE)
    if hs:
        say("  openssl s_server per session: %.3f ms CPU new (s_time -new), %.3f ms resumed (s_time -reuse)"
            % (hs["new"]["server_cpu_ms_per_session"], hs["reuse"]["server_cpu_ms_per_session"]))
    else:
        say("  (no s_server yardstick: tls-handshake was not selected)")
    for row in rows:
        t = row["targets"]

        def cpu(target):
            return t[target]["cpu_ms_per_msg"].get(proc_of(target)) if target in t else None

        if row["messages_per_session"] == 1:
            for lead, plain in (("moat-tls", "moat"), ("floortls", "floor")):
                for target, mode in ((lead, "new"), (lead + "-resume", "reuse")):
                    if cpu(target) is None or cpu(plain) is None:
                        continue
                    added = cpu(target) - cpu(plain)
                    key = "%s_%s_added_cpu_ms" % (row["case"], target)
                    summary[key] = round(added, 4)
                    line = "  %s: %s adds %.3f ms CPU per session over %s" % (row["case"], target, added, plain)
                    if hs:
                        ratio = added / hs[mode]["server_cpu_ms_per_session"]
                        summary[key.replace("_cpu_ms", "_over_s_server")] = round(ratio, 2)
                        line += " = %.2f x s_server %s%s" % (
                            ratio, mode, " (target <= 1.2)" if target == "moat-tls" else "")
                    if "tls" in t.get(target, {}):
                        c = t[target]["tls"]
                        line += "; %d of %d handshakes resumed" % (c["resumed"], c["handshakes"])
                    say(line)
        if "moat-tls_over_haraka" in row:
            say("  %s: moat-tls / %s %.1f (target >= 15)" % (row["case"], row["haraka_best"],
                                                             row["moat-tls_over_haraka"]))
    for why in sorted({w for r in rows for w in r["not_run"].values()}):
        say("  not run: " + why)
    results["tls_summary"] = summary


def write_json(path, results):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.rename(path + ".tmp", path)


def print_row(row):
    t = row["targets"]
    say("\n%s: %d sessions, %s msgs/session, %s (%d B)" % (
        row["case"], row["sessions"], row["messages_per_session"], row["message"], row["message_bytes"]))
    for name, x in t.items():
        cpu = ", ".join("%s %.3f" % (k, v) for k, v in sorted(x["cpu_ms_per_msg"].items()))
        extra = ""
        if name.endswith("-resume") and "tls" in x:
            extra = "   resumed %d/%d" % (x["tls"]["resumed"], x["tls"]["handshakes"])
        if "redis_commands_per_msg" in x:
            extra += "   redis commands/msg %.2f" % x["redis_commands_per_msg"]
        if "redis_calls_per_msg" in x:
            extra += ", calls (EVALSHA)/msg %.2f" % x["redis_calls_per_msg"]
        say("  %-18s %9.1f msgs/s (%.1f-%.1f)   CPU ms/msg: %s%s" % (
            name, x["msgs_per_s"], x["min"], x["max"], cpu, extra))
    ratios = ["%s/%s %.3f" % (k.split("_over_")[0], k.split("_over_")[1], v) for k, v in row.items()
              if "_over_" in k and not k.endswith("_over_haraka")]
    ratios += ["%s/%s %.1f" % (k.split("_over_")[0], row["haraka_best"], v) for k, v in row.items()
               if k.endswith("_over_haraka")]
    say("  ratios: " + "   ".join(ratios))
    for t, prefix in (("moat-redis", "redis-"), ("moat-limits", "limits-")):
        if row["case"].startswith(prefix) and t + "_over_moat" in row:
            k = row[t + "_over_moat"]
            say("  %s / moat: %.3f (issue 17: >= 0.90)%s" % (t, k, "" if k >= 0.90 else "  BELOW"))
    for base in ("moat-base", "moat-nodmarc"):
        k = "moat-dnsbl_over_" + base
        if row["case"].startswith("dmarc-dnsbl-") and k in row:
            say("  DMARC + three DNS lists over %s: %.3f (issue 16: >= 0.95)%s" % (
                base, row[k], "" if row[k] >= 0.95 else "  BELOW"))
    for name, why in sorted(row["failed"].items()):
        say("  %-18s FAILED: %s" % (name, why))
    for name, why in sorted(row["not_run"].items()):
        say("  %-18s not run: %s" % (name, why))


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


# ------------------------------------------------------------------ instructions

CG_MSGS = env_int("BENCH_CG_MSGS", 2000)       # measured messages per shape
CG_WARM = env_int("BENCH_CG_WARM", 200)        # before the counters are zeroed


def callgrind_now(what, pid, port):
    """callgrind_control -z or -d on pid; a connection to port wakes moat's
    loop so that valgrind reads the command at once, not at the next message."""
    c = subprocess.Popen(["callgrind_control", what, str(pid)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    while c.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            pass
        try:
            c.wait(0.2)
        except subprocess.TimeoutExpired:
            pass
    if c.returncode != 0:
        raise SystemExit("bench: callgrind_control %s %d failed" % (what, pid))


def callgrind_totals(out_prefix, before):
    """Ir of the newest dump of out_prefix.* not in before."""
    d, base = os.path.split(out_prefix)
    new = sorted((os.path.getmtime(os.path.join(d, f)), f) for f in os.listdir(d)
                 if f.startswith(base) and f not in before)
    if not new:
        raise SystemExit("bench: no callgrind dump for " + out_prefix)
    with open(os.path.join(d, new[-1][1])) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise SystemExit("bench: no totals in " + new[-1][1])


def callgrind(args):
    """Instructions per message (callgrind) of the moat targets of issue 16's
    cases, each with workers = 1: the figures the machine's noise does not
    move. Per target and shape: CG_WARM messages, counters zeroed, CG_MSGS
    messages, a dump; Ir / messages."""
    tmp = tempfile.mkdtemp(prefix="moat-cg.")
    os.chmod(tmp, 0o755)
    pr = Procs(tmp)
    targets = [("moat-nodmarc", args.moat, "check_dmarc = no"), ("moat", args.moat, ""),
               ("moat-dnsbl", args.moat, DNSBL_CONF)]
    if args.moat_base:
        targets.insert(0, ("moat-base", args.moat_base, ""))
    shapes = [("s10-many", 10, True), ("s10-one", 10, False)]
    results = {"callgrind": {}, "messages": CG_MSGS, "warm_up": CG_WARM}
    try:
        msgs = make_inputs(tmp)
        path, size = msgs["rsa-4k"]
        os.chmod(path, 0o644)
        dns, dns_port = start_dns(pr, tmp)
        sink = Sink(pr, tmp)
        for name, binary, extra in targets:
            out = os.path.join(tmp, "cg." + name)
            p, port = start_moat(pr, tmp, binary, sink.port, dns_port, name, extra + "\nworkers = 1",
                                 prefix=["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % out])
            run = Run(sink, {name: p.pid})
            for shape, sessions, many in shapes:
                run.once(port, CG_WARM, sessions, many, path)
                callgrind_now("-z", p.pid, port)
                before = set(os.listdir(tmp))
                run.once(port, CG_MSGS, sessions, many, path)
                callgrind_now("-d", p.pid, port)
                ir = callgrind_totals(out, before)
                results["callgrind"].setdefault(shape, {})[name] = round(ir / CG_MSGS)
                say("callgrind %-9s %-13s %8.1f k instructions per message" % (shape, name, ir / CG_MSGS / 1000))
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        for shape, row in results["callgrind"].items():
            for base in ("moat-base", "moat-nodmarc"):
                if base in row and "moat-dnsbl" in row:
                    say("callgrind %s: moat-dnsbl / %s = %.3f in moat's instructions per message"
                        % (shape, base, row["moat-dnsbl"] / row[base]))
    finally:
        pr.stop_all()
        if os.environ.get("BENCH_KEEP") == "1":
            say("bench: temp dir kept: " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    write_json(args.out, results)
    say("bench: JSON in " + args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moat", required=True)
    ap.add_argument("--floor")
    ap.add_argument("--floortls", help="the floor relay with STARTTLS (tests/bench/floortls.c)")
    ap.add_argument("--tlsgen", help="the TLS-capable load generator (tests/bench/tlsgen.c)")
    ap.add_argument("--haraka", help="Haraka install dir (tests/bench/haraka.sh install DIR)")
    ap.add_argument("--moat-base", help="another build's moat, run as target moat-base with its defaults "
                                        "(the dmarc-dnsbl-* cases: the figures before DMARC and the lists)")
    ap.add_argument("--soak", type=int)
    ap.add_argument("--callgrind", action="store_true",
                    help="instructions per message of moat(-base, -nodmarc, -dnsbl) under callgrind")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "bench.json"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: must run as root (smtp-sink starts as root and drops to nobody)")
    os.environ["PATH"] += ":/usr/sbin:/sbin"
    if args.soak:
        soak(args)
    elif args.callgrind:
        callgrind(args)
    else:
        if not args.floor:
            raise SystemExit("bench: --floor is required")
        bench(args)


if __name__ == "__main__":
    main()
