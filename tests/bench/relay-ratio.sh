#!/usr/bin/env bash
# relay-ratio.sh MOAT_BIN - throughput of smtp-source -> moat -> smtp-sink against
# smtp-source -> smtp-sink on the same machine, in paired, alternating rounds.
#
# Called by `make bench`. Needs root (smtp-sink drops to nobody). Everything runs on
# 127.0.0.1: the sink, moat, and a small DNS server (python3-dnslib) that answers for
# the sender's domain, so moat's SPF/DKIM/DNS checks stay on loopback. See README.md.
#
# Tunables (environment): BENCH_MSGS (10000), BENCH_SESSIONS (20), BENCH_ROUNDS (15),
# BENCH_BUDGET (seconds for the timed rounds, 150), BENCH_DKIM (1 = DKIM-sign the
# message), BENCH_OUT (JSON path), BENCH_MOAT_CONF_EXTRA (lines appended to moat's
# config), BENCH_KEEP (1 = keep the temp dir).
set -euo pipefail

MOAT=${1:-}
if [ -z "$MOAT" ] || [ ! -x "$MOAT" ]; then
	echo "usage: $0 MOAT_BIN   (moat binary not found or not executable: '${MOAT}')" >&2
	exit 2
fi
MOAT=$(cd "$(dirname "$MOAT")" && pwd)/$(basename "$MOAT")
PY=/usr/bin/python3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${BENCH_OUT:-$ROOT/build/bench/relay-ratio.json}
MSGS=${BENCH_MSGS:-10000}
SESSIONS=${BENCH_SESSIONS:-20}
ROUNDS=${BENCH_ROUNDS:-15}
BUDGET=${BENCH_BUDGET:-150}
DKIM=${BENCH_DKIM:-1}
WARM_MSGS=$(( MSGS / 5 > 0 ? MSGS / 5 : 1 ))
FROM=alice@sender.test
RCPT=bob@example.test
HELO=mail.sender.test
START_NS=$(date +%s%N)

say() { printf '%s\n' "$*"; }
die() {
	say "relay-ratio: FAIL: $*" >&2
	for f in source.out moat.stderr moat.log dns.err sink.err; do
		[ -s "$T/$f" ] || continue
		say "--- last lines of $f:" >&2
		tail -n 15 "$T/$f" | tr '\r' '\n' | tail -n 15 >&2
	done
	FAILED=1
	exit 1
}

[ "$(id -u)" = 0 ] || { say "relay-ratio: must run as root (smtp-sink starts as root and drops to -u nobody)" >&2; exit 2; }

# --- packages: smtp-source/smtp-sink come with postfix; the DNS server and DKIM signer with python3.
need=()
command -v smtp-source >/dev/null 2>&1 && command -v smtp-sink >/dev/null 2>&1 || need+=(postfix)
$PY -c 'import dnslib' 2>/dev/null || need+=(python3-dnslib)
[ "$DKIM" != 1 ] || $PY -c 'import dkim' 2>/dev/null || need+=(python3-dkim)
if [ ${#need[@]} -gt 0 ]; then
	say "relay-ratio: installing ${need[*]}"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin

T=$(mktemp -d /tmp/moat-bench.XXXXXX)
chmod 755 "$T"
FAILED=0
MOAT_PID= SINK_PID= DNS_PID=

stop_pid() { # stop_pid PID: TERM, wait up to 5 s, then KILL; only our own children
	local pid=$1 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	stop_pid "$MOAT_PID"; stop_pid "$SINK_PID"; stop_pid "$DNS_PID"
	if [ "$FAILED" = 1 ] || [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "relay-ratio: temp dir kept: $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_tcp() { # wait_tcp PORT PID: until something accepts on 127.0.0.1:PORT
	local i
	for i in $(seq 100); do
		kill -0 "$2" 2>/dev/null || return 1
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
cpu_ticks() { # utime+stime of a live process, in clock ticks
	local s
	s=$(<"/proc/$1/stat") || { echo 0; return; }
	s=${s##*) }
	set -- $s
	echo $(( ${12} + ${13} ))
}
sink_count() { # messages the sink has received so far (smtp-sink -c counter)
	tr '\r' '\n' <"$T/sink.out" 2>/dev/null | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1 | grep . || echo 0
}

# --- 1. the message (~4 KB, multipart, realistic headers, optionally DKIM-signed) and the DNS zone
$PY - "$T" "$DKIM" <<'PYEOF' || die "could not generate the message"
import json, os, subprocess, sys, textwrap
tmp, want_dkim = sys.argv[1], sys.argv[2] == "1"
words = ("the quarterly report shows steady growth across all regions while costs in logistics "
         "remain under control and the team expects the new warehouse to open in spring after "
         "inspections are complete please review the attached figures before our meeting on "
         "thursday and send any questions to the finance mailbox").split()
def prose(n, seed):
    out = []
    for i in range(n):
        w = words[(i * 7 + seed) % len(words)]
        out.append(w.capitalize() if i % 13 == 0 else w)
    return "\n".join(textwrap.wrap(" ".join(out) + ".", 72))
text = "Hi Bob,\n\n" + prose(150, 1) + "\n\n" + prose(60, 5) + "\n\nBest regards,\nAlice\n"
html = ("<html><head><meta charset=\"utf-8\"></head><body>\n<p>Hi Bob,</p>\n<p>"
        + prose(150, 1).replace("\n", "\n") + "</p>\n<p>" + prose(60, 5)
        + "</p>\n<p>Best regards,<br>Alice</p>\n</body></html>\n")
headers = [
    "Received: from laptop.internal (laptop.internal [10.1.2.3])\n\tby mail.sender.test (Postfix) with ESMTPSA id 4RqXz12abcz9sW\n\tfor <bob@example.test>; Wed, 25 Nov 2026 09:14:02 +0000 (UTC)",
    "From: Alice Example <alice@sender.test>",
    "To: Bob Example <bob@example.test>",
    "Subject: Q3 figures and the warehouse opening",
    "Date: Wed, 25 Nov 2026 09:14:01 +0000",
    "Message-ID: <20261125091401.4RqXz12abcz9sW@mail.sender.test>",
    "MIME-Version: 1.0",
    "Content-Type: multipart/alternative; boundary=\"b1_5f8a3c\"",
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
    "Content-Language: en-US",
]
body = ("This is a multi-part message in MIME format.\n\n--b1_5f8a3c\n"
        "Content-Type: text/plain; charset=utf-8; format=flowed\nContent-Transfer-Encoding: 7bit\n\n"
        + text + "\n--b1_5f8a3c\nContent-Type: text/html; charset=utf-8\n"
        "Content-Transfer-Encoding: 7bit\n\n" + html + "\n--b1_5f8a3c--\n")
msg = ("\n".join(headers) + "\n\n" + body).encode()
assert not any(l.startswith(b".") for l in msg.split(b"\n")), "a line starts with a dot"
zone = [
    ["sender.test", "MX", [10, "mail.sender.test"]],
    ["sender.test", "A", "127.0.0.1"],
    ["sender.test", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"],
    ["mail.sender.test", "A", "127.0.0.1"],
    ["mail.sender.test", "TXT", "v=spf1 a -all"],
    ["_dmarc.sender.test", "TXT", "v=DMARC1; p=reject"],
    ["1.0.0.127.in-addr.arpa", "PTR", "mail.sender.test"],
    ["example.test", "MX", [10, "moat.bench.test"]],
    ["moat.bench.test", "A", "127.0.0.1"],
]
if want_dkim:
    import base64, dkim
    key = os.path.join(tmp, "dkim.key")
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", key, "2048"], check=True,
                   stderr=subprocess.DEVNULL)
    pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    crlf = msg.replace(b"\n", b"\r\n")
    sig = dkim.sign(crlf, b"bench", b"sender.test", open(key, "rb").read(),
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id",
                                     b"mime-version", b"content-type"])
    msg = sig.replace(b"\r\n", b"\n") + msg
    zone.append(["bench._domainkey.sender.test", "TXT",
                 "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()])
open(os.path.join(tmp, "msg.eml"), "wb").write(msg)
json.dump(zone, open(os.path.join(tmp, "zone.json"), "w"))
PYEOF
MSG_BYTES=$(stat -c %s "$T/msg.eml")

# --- 2. the DNS server moat is pointed at (UDP and TCP on one loopback port; NXDOMAIN for the rest)
cat >"$T/dns.py" <<'PYEOF'
import json, signal, sys, threading
from dnslib import A, MX, PTR, QTYPE, RCODE, RR, TXT, DNSLabel
from dnslib.server import DNSLogger, DNSServer
zone_file, port_file, stats_file = sys.argv[1:4]
records, names = {}, set()
for name, rtype, value in json.load(open(zone_file)):
    if rtype == "A": rdata = A(value)
    elif rtype == "MX": rdata = MX(value[1], value[0])
    elif rtype == "PTR": rdata = PTR(value)
    elif rtype == "TXT": rdata = TXT([value[i:i + 255] for i in range(0, len(value), 255)])
    else: raise SystemExit("unknown type " + rtype)
    records.setdefault((name, getattr(QTYPE, rtype)), []).append(RR(name, getattr(QTYPE, rtype), rdata=rdata, ttl=3600))
    labels = name.split(".")
    names.update(".".join(labels[i:]) for i in range(len(labels)))
queries = [0]
class Zone:
    def resolve(self, request, handler):
        queries[0] += 1
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        rrs = records.get((name, request.q.qtype))
        if rrs:
            for rr in rrs: reply.add_answer(rr)
        elif name not in names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply
quiet = DNSLogger("-request,-reply,-truncated,-error")
for attempt in range(50):
    udp = DNSServer(Zone(), port=0, address="127.0.0.1", logger=quiet)
    port = udp.server.server_address[1]
    try:
        tcp = DNSServer(Zone(), port=port, address="127.0.0.1", tcp=True, logger=quiet)
        break
    except OSError:
        udp.server.server_close()
else:
    raise SystemExit("no free port for UDP and TCP")
udp.start_thread(); tcp.start_thread()
def stop(*_):
    open(stats_file, "w").write("%d\n" % queries[0])
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(port_file + ".tmp", "w").write("%d\n" % port)
import os; os.rename(port_file + ".tmp", port_file)
threading.Event().wait()
PYEOF
$PY "$T/dns.py" "$T/zone.json" "$T/dns.port" "$T/dns.stats" 2>"$T/dns.err" &
DNS_PID=$!
for i in $(seq 100); do [ -s "$T/dns.port" ] && break; kill -0 "$DNS_PID" 2>/dev/null || break; sleep 0.1; done
[ -s "$T/dns.port" ] || die "DNS server did not start"
DNS_PORT=$(<"$T/dns.port")

# --- 3. the sink (root, drops to nobody; -c keeps a running message counter used to verify delivery)
SINK_PORT=$(free_port)
smtp-sink -c -u nobody -C -F "127.0.0.1:$SINK_PORT" 1024 >"$T/sink.out" 2>"$T/sink.err" &
SINK_PID=$!
wait_tcp "$SINK_PORT" "$SINK_PID" || die "smtp-sink did not start on 127.0.0.1:$SINK_PORT"

# --- 4. moat
cat >"$T/moat.conf" <<EOF
listen = 127.0.0.1:0
run_as_root = yes
backend = 127.0.0.1:$SINK_PORT
hostname = moat.bench.test
local_domains = example.test
dns_servers = 127.0.0.1:$DNS_PORT
log = $T/moat.log
max_connections = 1000
max_connections_per_ip = 1000
EOF
[ -z "${BENCH_MOAT_CONF_EXTRA:-}" ] || printf '%s\n' "$BENCH_MOAT_CONF_EXTRA" >>"$T/moat.conf"
"$MOAT" -c "$T/moat.conf" >"$T/moat.stdout" 2>"$T/moat.stderr" &
MOAT_PID=$!
# The "listening"/"ready" events go to stderr (and possibly to the log file): look in both.
MOAT_ADDR=
for i in $(seq 100); do
	kill -0 "$MOAT_PID" 2>/dev/null || die "moat exited at start-up"
	if grep -Eqs '"event" *: *"ready"' "$T/moat.stderr" "$T/moat.log"; then
		MOAT_ADDR=$( { grep -hEs '"event" *: *"listening"' "$T/moat.stderr" "$T/moat.log" || true; } |
			head -n 1 | sed -nE 's/.*"addr" *: *"([^"]*)".*/\1/p')
		break
	fi
	sleep 0.1
done
[ -n "$MOAT_ADDR" ] || die "moat did not log listening+ready within 10 s"
MOAT_PORT=${MOAT_ADDR##*:}

# --- 5. runs
RUN_RATE= RUN_SECS=
run_once() { # run_once LABEL PORT COUNT: sets RUN_SECS and RUN_RATE; dies on any rejection
	local label=$1 port=$2 n=$3 t0 t1 before after i
	before=$(sink_count)
	t0=$(date +%s%N)
	if ! smtp-source -d -s "$SESSIONS" -m "$n" -F "$T/msg.eml" -f "$FROM" -t "$RCPT" -M "$HELO" \
		"127.0.0.1:$port" >"$T/source.out" 2>&1; then
		die "smtp-source ($label) exited non-zero: a reply was not 2xx (rejection, tempfail or lost connection)"
	fi
	t1=$(date +%s%N)
	for i in $(seq 50); do after=$(sink_count); [ "$after" -ge $((before + n)) ] && break; sleep 0.05; done
	[ "$after" -eq $((before + n)) ] ||
		die "$label: smtp-source sent $n messages but the sink received $((after - before))"
	RUN_SECS=$($PY -c "print('%.4f' % (($t1 - $t0) / 1e9))")
	RUN_RATE=$($PY -c "print('%.1f' % ($n * 1e9 / ($t1 - $t0)))")
}

# --- soak mode (make soak): BENCH_SOAK messages through moat only, in chunks of
# 10,000; moat's RSS after each chunk; then SIGTERM, and moat must exit 0 with no
# sanitizer or leak report in its stderr (run it with an ASan/LSan build).
if [ -n "${BENCH_SOAK:-}" ]; then
	say "soak: $(basename "$MOAT") ($MOAT), $BENCH_SOAK messages of $MSG_BYTES bytes (DKIM $([ "$DKIM" = 1 ] && echo signed || echo unsigned)), $SESSIONS sessions"
	rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$MOAT_PID/status"; }
	sent=0 chunk=10000 rows=""
	while [ "$sent" -lt "$BENCH_SOAK" ]; do
		n=$(( BENCH_SOAK - sent < chunk ? BENCH_SOAK - sent : chunk ))
		run_once soak "$MOAT_PORT" "$n"
		sent=$(( sent + n ))
		r=$(rss)
		say "$(printf 'soak: %7d messages  RSS %6d KiB  %8s msgs/s' "$sent" "$r" "$RUN_RATE")"
		rows="$rows${rows:+,}{\"messages\":$sent,\"rss_kib\":$r,\"rate\":$RUN_RATE}"
	done
	kill -TERM "$MOAT_PID"
	rc=0; wait "$MOAT_PID" || rc=$?
	MOAT_PID=
	[ "$rc" = 0 ] || die "moat exited $rc after the soak"
	if grep -Eq 'LeakSanitizer|AddressSanitizer|runtime error:' "$T/moat.stderr"; then
		grep -E -A12 'LeakSanitizer|AddressSanitizer|runtime error:' "$T/moat.stderr" | head -60 >&2
		die "sanitizer report after the soak"
	fi
	mkdir -p "$(dirname "$OUT")"
	printf '{"soak":%d,"message_bytes":%d,"sessions":%d,"dkim":%s,"moat":"%s","exit":0,"sanitizer_reports":0,"rows":[%s]}\n' \
		"$BENCH_SOAK" "$MSG_BYTES" "$SESSIONS" "$([ "$DKIM" = 1 ] && echo true || echo false)" "$MOAT" "$rows" >"$OUT"
	say "soak: moat exited 0, no sanitizer or leak report; JSON: $OUT"
	exit 0
fi

LOAD0=$(cut -d' ' -f1 /proc/loadavg)
$PY -c "import sys; sys.exit(0 if $LOAD0 < 0.5 else 1)" ||
	say "relay-ratio: WARNING: load average is $LOAD0 before the bench: other work on these 2 CPUs skews every figure"
say "relay-ratio: $(basename "$MOAT") on 127.0.0.1:$MOAT_PORT -> smtp-sink 127.0.0.1:$SINK_PORT; DNS 127.0.0.1:$DNS_PORT"
say "relay-ratio: message $MSG_BYTES bytes (DKIM $([ "$DKIM" = 1 ] && echo signed || echo unsigned)), $MSGS messages per run, $SESSIONS sessions (smtp-source -d)"
run_once warm-up-direct "$SINK_PORT" "$WARM_MSGS"; wd=$RUN_SECS
run_once warm-up-moat "$MOAT_PORT" "$WARM_MSGS"; wm=$RUN_SECS
say "warm-up ($WARM_MSGS msgs): direct ${wd}s, moat ${wm}s"
# Fit the rounds into the budget, from the warm-up's pace (at least 3 rounds).
fit=$($PY -c "print(max(3, int($BUDGET / (($wd + $wm) * $MSGS / $WARM_MSGS + 0.5))))")
[ "$fit" -ge "$ROUNDS" ] || { say "relay-ratio: $ROUNDS rounds would not fit in ${BUDGET}s: running $fit"; ROUNDS=$fit; }

TICK=$(getconf CLK_TCK)
: >"$T/rounds.tsv"
cpu_moat=0 cpu_sink_direct=0 cpu_sink_moat=0 cpu_dns=0
printf '%-6s %12s %12s %8s\n' round direct/s moat/s ratio
for r in $(seq "$ROUNDS"); do
	# Alternate the order (direct first in odd rounds, moat first in even ones) so a drift in
	# the machine's speed does not favour one side.
	if [ $((r % 2)) = 1 ]; then order="direct moat"; else order="moat direct"; fi
	for side in $order; do
		s0=$(cpu_ticks "$SINK_PID"); m0=$(cpu_ticks "$MOAT_PID"); d0=$(cpu_ticks "$DNS_PID")
		if [ "$side" = direct ]; then run_once "round $r direct" "$SINK_PORT" "$MSGS"; rd=$RUN_RATE
		else run_once "round $r moat" "$MOAT_PORT" "$MSGS"; rm_=$RUN_RATE; fi
		s1=$(cpu_ticks "$SINK_PID"); m1=$(cpu_ticks "$MOAT_PID"); d1=$(cpu_ticks "$DNS_PID")
		if [ "$side" = direct ]; then
			cpu_sink_direct=$((cpu_sink_direct + s1 - s0))
		else
			cpu_sink_moat=$((cpu_sink_moat + s1 - s0)); cpu_moat=$((cpu_moat + m1 - m0)); cpu_dns=$((cpu_dns + d1 - d0))
		fi
	done
	printf '%s\t%s\t%s\n' "$r" "$rd" "$rm_" >>"$T/rounds.tsv"
	printf '%-6s %12.0f %12.0f %8.3f\n' "$r" "$rd" "$rm_" "$($PY -c "print($rm_ / $rd)")"
done
HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$MOAT_PID/status" 2>/dev/null || true)
RSS=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$MOAT_PID/status" 2>/dev/null || true)
kill -0 "$MOAT_PID" 2>/dev/null || die "moat died during the bench"
stop_pid "$DNS_PID"; DNS_PID=
DNS_QUERIES=$(cat "$T/dns.stats" 2>/dev/null || echo -1)
LOG_BYTES=$( { stat -c %s "$T/moat.log" 2>/dev/null || echo 0; } | head -n 1)
END_NS=$(date +%s%N)

mkdir -p "$(dirname "$OUT")"
$PY - "$T/rounds.tsv" "$OUT" <<PYEOF
import json, os, platform, statistics, subprocess, sys, time
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l.strip()]
direct = [float(r[1]) for r in rows]
moat = [float(r[2]) for r in rows]
ratio = [m / d for d, m in zip(direct, moat)]
def summary(xs, nd=1):
    return {"per_round": [round(x, nd) for x in xs], "median": round(statistics.median(xs), nd),
            "min": round(min(xs), nd), "max": round(max(xs), nd)}
rounds, msgs, tick = len(rows), $MSGS, $TICK
per_k = lambda ticks: round(ticks / tick / (rounds * msgs) * 1000, 4)
hwm = "$HWM"
try:
    pf = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True).stdout.strip()
except OSError:
    pf = None
out = {
    "bench": "relay-ratio",
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "host": {"nproc": os.cpu_count(), "kernel": platform.release(), "postfix_tools": pf},
    "moat_bin": "$MOAT",
    "messages_per_run": msgs, "sessions": $SESSIONS, "message_bytes": $MSG_BYTES,
    "dkim_signed": "$DKIM" == "1", "rounds": rounds, "warmup_messages": $WARM_MSGS,
    "msgs_per_s": {"direct": summary(direct), "moat": summary(moat)},
    "ratio_moat_over_direct": summary(ratio, 3),
    "cpu_s_per_1000_msgs": {
        "moat": per_k($cpu_moat),
        "sink_via_moat": per_k($cpu_sink_moat),
        "sink_direct": per_k($cpu_sink_direct),
        "dns_server_via_moat": per_k($cpu_dns),
        "clock_ticks_per_s": tick,
    },
    "moat_peak_rss_kib": int(hwm) if hwm else None,
    "moat_rss_at_end_kib": int("$RSS") if "$RSS" else None,
    "dns_queries_total": $DNS_QUERIES,
    "moat_log_bytes_per_msg": round($LOG_BYTES / ((rounds * msgs) + 2 * $WARM_MSGS), 1),
    "loadavg_1min_at_start": $LOAD0,
    "loadavg_1min_at_end": float(open("/proc/loadavg").read().split()[0]),
    "total_seconds": round(($END_NS - $START_NS) / 1e9, 1),
}
json.dump(out, open(sys.argv[2], "w"), indent=2)
c = out["cpu_s_per_1000_msgs"]
print()
print("msgs/s      median     min–max")
print("direct   %9.0f   %6.0f–%.0f" % (statistics.median(direct), min(direct), max(direct)))
print("moat     %9.0f   %6.0f–%.0f" % (statistics.median(moat), min(moat), max(moat)))
print("ratio moat/direct (paired per round): median %.3f, min–max %.3f–%.3f" %
      (statistics.median(ratio), min(ratio), max(ratio)))
print("CPU s per 1000 msgs: moat %.4f, sink %.4f via moat / %.4f direct, DNS server %.4f"
      % (c["moat"], c["sink_via_moat"], c["sink_direct"], c["dns_server_via_moat"]))
print("moat peak RSS (VmHWM): %s KiB; DNS queries answered in all: %d" % (hwm or "n/a", $DNS_QUERIES))
print("summary: %s (%.0f s in all)" % (sys.argv[2], out["total_seconds"]))
PYEOF
