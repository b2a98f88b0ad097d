"""SMTP smuggling, end to end, in front of three backends.

Every case is one client session through moat: EHLO, MAIL, RCPT, DATA, a message that
tries to make the backend see an end of data early and then a second transaction
(MAIL FROM:<smuggled@...>, RCPT TO:<alice@example.test>, RCPT TO:<victim@remote.example>,
DATA, a message From: evil@...), the real CRLF.CRLF, QUIT. moat must pass exactly one
message on (none where the message holds a NUL byte: "550 5.6.0"), with the would-be
commands inside it as data, with no bare CR or LF, without the forged
Authentication-Results field that claims moat's hostname, and with moat's own.

The cases:

  test_end_of_data_variant   every malformed end-of-data sequence of the public
      research tools (VARIANTS, each with its source), sent in one write, with every
      byte of the trick in a write of its own, and with the trick's dot at message
      byte 64 KiB, 128 KiB and 256 KiB (moat's memory spool limit) and +-1, +-2, the
      client's writes split at that edge. The header carries a short forged
      Authentication-Results field too. A variant with a NUL byte must get "550 5.6.0"
      and deliver nothing; "\\x00\\r\\n.\\r\\n" holds the real end of data, so there the
      client sends nothing after it (what follows a real end is the client's own next
      command, not smuggling).
  test_authres_carrier       issue 11: a forged Authentication-Results field whose last
      byte before CRLF is a "." at message byte 65536, 131072 or 262144 (-2..+2; -2 puts
      the edge between the field's CR and LF), followed by the smuggled commands. The
      field is either one long line from the top of the header ("long", the issue's
      carrier: the smuggled MAIL follows at once) or a short field after ~1 KB filler
      fields and before an "X-After-Forged:" field ("padded": a bare LF or a cut there
      shows in Postfix's Maildir too, where for "long" Postfix's own empty line after the
      header looks the same, so only the recording backend sees it); the message either
      stays in moat's memory spool (< 256 KiB) or is padded past it to spill into a file.

Message offsets are 0-based byte offsets into the message (the bytes after the 354,
before dot-stuffing; none of the lines before the trick start with a dot, so they equal
wire offsets): "dot at 65536" is the 65,537th byte, the first one past a 64 KiB window.

Each case runs against three backends (the module-scoped `harness` fixture):

  recording  tests/e2e/backend.py: exact bytes of the command stream and of every message.
  postfix    Debian's Postfix (pf_helpers.PfPostfix) with smtpd_forbid_bare_newline = no,
             the lenient setting under which a bare LF ends a line and "<LF>.<LF>" ends
             the data: anything that moat lets through shows as a second message, a
             smuggled RCPT in the maillog, or a wrong Maildir file. Skipped when not root
             or Postfix is missing.
  postfix-tls  the same Postfix offering STARTTLS and taking mail only over TLS
             (smtpd_tls_security_level = encrypt, a certificate from a test CA), moat
             with backend_tls = required verifying it: the guarantees hold on the TLS
             leg too, where a message from a spool file is encrypted from memory instead
             of going out by sendfile. Each session's disconnect line must show starttls=1.

One moat per backend for the whole module (workers 1, backend_cache_time 0: one backend
connection per client session). Every wait is a bounded poll on something observable.
"""

import json
import os
import re
import subprocess
import uuid

import pytest

from checkslib import parse_authres
from conftest import base_config, require_moat
from moatlib import (HOSTNAME, LOCAL_DOMAIN, Backend, Message, Moat, SMTPClient,
                     has_bare_cr_or_lf, prepended_fields)
from pf_helpers import PF_DOMAIN, PF_POSTFIX, PfStack
from test_smuggling import expected_content
from tlscerts import TestCA

SPOOL_MEM_MAX = 256 * 1024   # MOAT_SPOOL_MEM_MAX, proxy/limits.h
PF_SBIN = os.path.dirname(PF_POSTFIX)   # postconf, postqueue
EDGES = (64 * 1024, 128 * 1024, 256 * 1024)
NEAR = (-2, -1, 0, 1, 2)

RCPT = "bob@" + LOCAL_DOMAIN
assert PF_DOMAIN == LOCAL_DOMAIN
# What must never reach a backend as a command (nor Postfix's log): the smuggled
# transaction's sender and recipients, and the smuggled message's author.
SMUGGLED_NEEDLES = ("smuggled@", "victim@", "evil@", "alice@")

# ------------------------------------------------------------------ end-of-data variants
#
# The malformed end-of-data sequences of the public SMTP smuggling research, each named
# after where it comes from:
#   secc    SEC Consult, The-Login/SMTP-Smuggling-Tools, smtp_smuggling_scanner.py: the lists
#           inbound_eod_sequences and outbound_eod_sequences
#   smug    Hanno Boeck, hannob/smtpsmug: its tests (lflf, crcr, crlf, lfcr, lfcrlf, crlflf,
#           crcrlf, crlfcr, nullbefore, nullafter; the tool's "nullafter" string repeats
#           "nullbefore" by mistake, the name means "\r\n.\x00\r\n")
#   suuhm   suuhm/smtp_smuggling_checker.py: the 11 payload strings of its README and the
#           default of smtp_smuggler_poc.py ("\r\n.\n")
#   moat    moat's own: tests/e2e/test_smuggling.py and issue 11's list (bare CR/LF and NUL
#           next to a correct-looking sequence)
# A variant is what the client sends between "...text" and "MAIL FROM:<smuggled@...>".
VARIANTS = {
    "lf.lf": b"\n.\n",                 # secc in+out, smug lflf, suuhm
    "lf.cr": b"\n.\r",                 # secc in+out, smug lfcr
    "cr.lf": b"\r.\n",                 # secc in+out, smug crlf
    "cr.cr": b"\r.\r",                 # secc in+out, smug crcr
    "lf.crlf": b"\n.\r\n",             # secc in+out, smug lfcrlf, suuhm (Exchange Online: Postfix)
    "cr.crlf": b"\r.\r\n",             # secc in+out, smug crcrlf, suuhm
    "crlf.crcrlf": b"\r\n.\r\r\n",     # secc out, moat
    "crcrlf.crcrlf": b"\r\r\n.\r\r\n",  # secc out
    "crlf.lf": b"\r\n.\n",             # smug crlflf, suuhm poc default
    "crlf.cr": b"\r\n.\r",             # smug crlfcr, suuhm
    "crlf.nul.crlf": b"\r\n\x00.\r\n",  # secc in+out, smug nullbefore, suuhm
    "crlf.dotnul.crlf": b"\r\n.\x00\r\n",  # smug nullafter, suuhm
    "crlf.nul.cr": b"\r\n\x00.\r",     # suuhm
    "crlf.nul.lf": b"\r\n\x00.\n",     # suuhm
    "crlf.dot": b"\r\n.",              # suuhm ("\r\n." then the smuggled MAIL on the dot's line)
    "lflf.crlf": b"\n\n.\r\n",         # suuhm
    "crlf.lfcrlf": b"\r\n.\n\r\n",     # moat (test_smuggling.py)
    "lfcr.crlf": b"\n\r.\r\n",         # moat
    "crlfcr.crlf": b"\r\n\r.\r\n",     # moat
    "crlf.sp.crlf": b"\r\n. \r\n",     # moat
    "nul.crlf.crlf": b"\x00\r\n.\r\n",  # moat (issue 11: NUL before a correct sequence)
    "crnullf.crlf": b"\r\x00\n.\r\n",  # moat (issue 11: NUL between CR and LF)
}


def has_nul(b):
    return b"\x00" in b


# ------------------------------------------------------------------------ messages

SMUGGLED_FROM = "smuggled@sender.example"
SMUGGLED_LOCAL = "alice@" + LOCAL_DOMAIN
SMUGGLED_REMOTE = "victim@remote.example"
FORGED_HEAD = b"Authentication-Results: " + HOSTNAME.encode() + b"; spf=pass smtp.mailfrom=x; x="


def smuggled(token):
    """The second transaction: commands, then a message (ending in CRLF; the client's real
    end of data follows)."""
    return (b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
            b"From: <evil@attacker.example>\r\nTo: <%s>\r\nSubject: smuggled %s\r\n"
            b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
            b"Message-ID: <smuggled.%s@attacker.example>\r\n\r\nsmuggled text %s\r\n"
            % (SMUGGLED_FROM.encode(), SMUGGLED_LOCAL.encode(), SMUGGLED_REMOTE.encode(),
               SMUGGLED_LOCAL.encode(), token, token, token))


def top_fields(token, sender):
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: smuggling suite %s\r\n"
            b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@sender.example>\r\n"
            % (sender.encode(), RCPT.encode(), token, token))


def text_filler(n):
    """Exactly n (>= 1) bytes of body text: 100-byte CRLF lines, then 1..100 bytes of a
    last line without its line end (the trick follows mid-line)."""
    assert n >= 1, n
    full, last = divmod(n - 1, 100)
    lines = [b"pad %06d " % i + b"x" * 87 + b"\r\n" for i in range(full)]
    return b"".join(lines) + b"t" * (last + 1)


def field_filler(n):
    """Exactly n bytes of header fields "X-Pad-NNNN: vvv...CRLF", 15 to 1000 bytes each."""
    assert n == 0 or n >= 15, n
    out, i = [], 0
    while n:
        size = min(1000, n)
        if 0 < n - size < 15:
            size = n - 15
        out.append(b"X-Pad-%04d: " % i + b"v" * (size - 14) + b"\r\n")
        n -= size
        i += 1
    return b"".join(out)


def body_padding(total, have):
    """CRLF body lines that take a message of `have` bytes past `total` bytes."""
    n = max(0, total - have)
    return b"".join(b"spill %06d " % i + b"y" * 86 + b"\r\n" for i in range(n // 100 + 1))


class Case:
    """One client message: `data` is what the client sends after the 354 up to (not
    including) its final ".\\r\\n"; `chunks` how it is written; `expected` the message the
    backend must get after moat's own fields (None: nothing must be delivered)."""

    def __init__(self, token, data, forged, chunks, expected, nul):
        self.token, self.data, self.forged = token, data, forged
        self.chunks, self.expected, self.nul = chunks, expected, nul


def eod_case(sender, variant, mode):
    """mode: "one-write", "bytewise" (each byte of the trick in a write of its own), or
    (edge, k): the variant's dot at message byte edge + k, the writes split at edge.

    A variant that holds the real CRLF.CRLF ("\\x00\\r\\n.\\r\\n") ends the message there: what
    a client sends after it is its own next command, not smuggled data, so the client sends
    nothing after it (moat must find that end and refuse the message for its NUL)."""
    token = uuid.uuid4().hex[:16].encode()
    forged = FORGED_HEAD + b"forged.\r\n"
    head = top_fields(token, sender) + forged + b"\r\n"
    if isinstance(mode, tuple):
        edge, k = mode
        text = text_filler(edge + k - variant.index(b".") - len(head))
    else:
        text = b"carrier text before the trick"
    tail = b"" if variant.endswith(b"\r\n.\r\n") else smuggled(token) + b".\r\n"
    stream = head + text + variant + tail          # everything the client sends after 354
    at = len(head) + len(text)
    if mode == "one-write":
        chunks = [stream]
    elif mode == "bytewise":
        chunks = [stream[:at]] + [bytes([c]) for c in variant] + ([tail] if tail else [])
    else:
        edge, k = mode
        assert stream[edge + k:edge + k + 1] == b"." and stream.index(variant, at) == at
        chunks = [stream[:edge], stream[edge:]]
    data = stream[:-3]                             # the message: without the final ".\r\n"
    expected = None if has_nul(variant) else expected_content(data.replace(forged, b"", 1))
    return Case(token, data, forged, chunks, expected, has_nul(variant))


def authres_case(sender, shape, edge, k, spill):
    """Issue 11's carrier: the forged field ends in "." CRLF with the dot at message byte
    edge + k, and the smuggled transaction follows it."""
    token = uuid.uuid4().hex[:16].encode()
    dot = edge + k
    top = top_fields(token, sender)
    if shape == "long":
        forged = FORGED_HEAD + b"a" * (dot - len(top) - len(FORGED_HEAD)) + b".\r\n"
        after = b""
    else:
        forged = FORGED_HEAD + b"a" * 8 + b".\r\n"
        top += field_filler(dot - len(top) - (len(forged) - 3))
        after = b"X-After-Forged: kept %s\r\n" % token
    data = top + forged + after + smuggled(token)
    assert data[dot:dot + 3] == b".\r\n"
    assert data[dot + 3:].startswith(after + b"MAIL FROM:<smuggled@")
    if spill:
        data += body_padding(SPOOL_MEM_MAX + 40000, len(data))
        assert len(data) > SPOOL_MEM_MAX
    else:
        assert len(data) + 3 < SPOOL_MEM_MAX
    chunks = [data[:edge], data[edge:] + b".\r\n"]
    return Case(token, data, forged, chunks, data.replace(forged, b"", 1), False)


# ------------------------------------------------------------------------ the session

ONE_221 = re.compile(rb"(?:221-[^\r\n]*\r\n)*221 [^\r\n]*\r\n")


def run_session(port, sender, case, problems):
    """The client side; returns the reply to the end of data. Every departure from "one
    final reply, then 221 for QUIT, then the connection closes" goes into problems."""
    with SMTPClient(port, timeout=30) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % sender, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        c.expect("DATA", 354)
        for chunk in case.chunks:
            c.send(chunk)
        final = c.reply(timeout=60)
        c.send(b"QUIT\r\n")
        try:
            rest = c.wait_closed(timeout=30)
        except AssertionError as e:
            rest = None
            problems.append("the connection did not close after QUIT: %s" % e)
    if case.nul:
        if not (final.code == 550 and final.enhanced()[0] == "5.6.0"
                and "NUL" in final.text):
            problems.append("end of data: expected 550 5.6.0 (Message contains NUL characters), "
                            "got %r" % final)
    elif final.code != 250:
        problems.append("end of data: expected 250, got %r" % final)
    if rest is not None and not ONE_221.fullmatch(rest):
        problems.append("after the final reply the client got %r, expected only the 221 for QUIT"
                        % rest[:300])
    return final


def common_suffix(a, b):
    """The length of the longest common suffix of a and b (binary search, for long messages)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:] == b[len(b) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def check_moat_authres(fields, sender, problems, where):
    """Exactly one Authentication-Results with moat's authserv-id among fields (bytes with
    CRLFs), and it is moat's own: spf of the real sender."""
    ours = []
    for f in fields:
        if f.lower().startswith(b"authentication-results"):
            ar = parse_authres(f)
            if ar["authserv_id"].lower() == HOSTNAME:
                ours.append(ar)
    if len(ours) != 1:
        problems.append("%s: %d Authentication-Results claiming %s, expected only moat's: %r"
                        % (where, len(ours), HOSTNAME, [a["raw"][:120] for a in ours]))
    elif ours[0]["spf_prop"].get("smtp.mailfrom") != sender:
        problems.append("%s: the Authentication-Results claiming %s is not moat's: %r"
                        % (where, HOSTNAME, ours[0]["raw"][:200]))


# ------------------------------------------------------------------------ harnesses

class RecordingHarness:
    """moat in front of tests/e2e/backend.py."""
    name = "recording"
    sender = "attacker@example.org"

    def __init__(self, tmp, dns):
        require_moat()
        self.backend = Backend(os.path.join(tmp, "backend"))
        wd = os.path.join(tmp, "moat")
        os.mkdir(wd)
        self.moat = Moat(base_config(wd, "127.0.0.1:%d" % self.backend.port, dns), wd).start()
        self.moat.wait_log(lambda l: l.get("event") == "backend_probe", what="backend_probe line")
        self.backend.wait_event(lambda e: e[0] == "CONNECT", what="the probe's CONNECT")
        self.backend.wait_all_closed()
        self.sessions = 0

    def stop(self):
        try:
            return stop_moat(self.moat)
        finally:
            self.backend.stop()

    def run(self, case):
        problems = []
        start = len(self.backend.events.snapshot())
        final = run_session(self.moat.port, self.sender, case, problems)
        self.sessions += 1
        self.moat.wait_session_end(self.sessions)

        def closed(items):
            new = items[start:]
            opened = {e[1] for e in new if e[0] == "CONNECT"}
            return opened and opened <= {e[1] for e in new if e[0] == "CLOSE"}
        self.backend.events.wait_until(closed, what="this session's backend connection closed")
        new = self.backend.events.snapshot()[start:]
        cmds = [e[2] for e in new if e[0] == "CMD"]
        bad = [c for c in cmds if any(n in c.lower() for n in SMUGGLED_NEEDLES)]
        if bad:
            problems.append("smuggled commands reached the backend: %r" % bad)
        stored = [int(e[1]) for e in new if e[0] == "STORED"]
        want = 0 if case.nul else 1
        if len(stored) != want:
            problems.append("the backend stored %d messages, expected %d (its commands: %r)"
                            % (len(stored), want, [c[:60] for c in cmds]))
        if stored and not case.nul:
            # Only this message's file: backend.messages() would read the whole store.
            with open(os.path.join(self.backend.store, "%d.json" % stored[0]), "rb") as f:
                m = Message(json.load(f))
            self.check_message(m, case, problems)
        return final, problems

    def check_message(self, m, case, problems):
        if b"MAIL FROM:<%s>" % SMUGGLED_FROM.encode() not in m.data:
            problems.append("the smuggled commands are not in the delivered message as data")
        if has_bare_cr_or_lf(m.raw):
            i = re.search(rb"\r(?!\n)|(?<!\r)\n", m.raw).start()
            problems.append("bare CR/LF reached the backend at wire byte %d: %r"
                            % (i, m.raw[max(0, i - 40):i + 40]))
        if not m.raw.endswith(b"\r\n.\r\n") or m.raw.count(b"\r\n.\r\n") != 1:
            problems.append("the wire data holds another end of data before its last line")
        if case.forged in m.data:
            problems.append("the forged Authentication-Results field reached the backend")
        try:
            fields = prepended_fields(m.data, case.expected)
        except AssertionError:
            i = common_suffix(m.data, case.expected)
            problems.append(
                "the message is not moat's fields + the client's message without the forged "
                "field: they differ %d bytes before the end (delivered %d bytes, expected %d + "
                "moat's fields); delivered there: %r, expected: %r" % (
                    i, len(m.data), len(case.expected), m.data[-i - 40:len(m.data) - i + 40],
                    case.expected[-i - 40:len(case.expected) - i + 40]))
            fields = []
            for line in m.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
                if line[:1] in (b" ", b"\t") and fields:
                    fields[-1] += line + b"\r\n"
                else:
                    fields.append(line + b"\r\n")
        check_moat_authres(fields, self.sender, problems, "delivered message")


class PostfixHarness(PfStack):
    """moat in front of a private Postfix (pf_helpers.PfStack) with
    smtpd_forbid_bare_newline = no; with tls, Postfix takes mail only over TLS
    (smtpd_tls_security_level = encrypt, its certificate from a test CA) and moat
    speaks TLS to it (backend_tls = required, verified): the message crosses the
    backend leg encrypted, from memory or from a spool file."""
    name = "postfix"
    sender = "attacker@sender.test"
    users = ("bob", "alice")

    def __init__(self, tmp, tls=False):
        r = subprocess.run([PF_SBIN + "/postconf", "-d", "smtpd_forbid_bare_newline"],
                           capture_output=True, text=True, timeout=30)
        # Postfix before 3.5.23/3.6.13/3.7.9/3.8.4 has no such parameter and is lenient anyway.
        known = r.returncode == 0 and r.stdout.startswith("smtpd_forbid_bare_newline =")
        extra = {"smtpd_forbid_bare_newline": "no"} if known else {}
        moat_keys = None
        self.tls = tls
        if tls:
            self.name = "postfix-tls"
            ca = TestCA(os.path.join(tmp, "ca"))
            crt, key = ca.issue("pf", ["pf." + PF_DOMAIN], ["127.0.0.1"])
            extra.update({"smtpd_tls_cert_file": crt, "smtpd_tls_key_file": key,
                          "smtpd_tls_security_level": "encrypt"})
            moat_keys = {"backend_tls": "required", "backend_tls_ca": ca.cert,
                         "backend_tls_name": "pf." + PF_DOMAIN}
        super().__init__(tmp, users=self.users, main_cf=extra, moat_keys=moat_keys)
        if extra:
            got = subprocess.run(
                [PF_SBIN + "/postconf", "-c", self.pf.etc, "-h", "smtpd_forbid_bare_newline"],
                capture_output=True, text=True, timeout=30).stdout.strip()
            if got != "no":
                self.stop()
                raise AssertionError(got)
        self.sessions = 0

    def run(self, case):
        problems = []
        start = self.pf.maillog_size()
        before = {u: self.maildir_files(u) for u in self.users}
        final = run_session(self.moat.port, self.sender, case, problems)
        self.sessions += 1
        self.moat.wait_session_end(self.sessions)
        # Postfix's own count of the session's commands, logged when it ends (moat relays
        # MAIL as it comes: every case's Postfix session has one).
        disc = self.pf.wait_for_log(re.compile(r"disconnect from .* mail="), timeout=30,
                                    start=start, poll=0.01)
        counts = dict(re.findall(r" ([a-z]+)=(\d+(?:/\d+)?)", disc))
        accepted = int(counts.get("data", "0").split("/")[0])   # DATA commands that succeeded
        if "unknown" in counts or counts.get("quit") != "1":
            problems.append("Postfix's session did not end with QUIT after SMTP commands only: %s"
                            % disc.strip())
        if self.tls and counts.get("starttls") != "1":
            problems.append("Postfix's session was not under TLS: %s"
                            % disc.strip())
        if case.nul:
            if accepted:
                problems.append("Postfix accepted a message in a NUL case: %s" % disc.strip())
        elif ((counts.get("mail"), counts.get("rcpt"), counts.get("data")) != ("1", "1", "1")
              or "/" in counts.get("commands", "/")):
            problems.append("Postfix's session was not one MAIL, one RCPT, one DATA, all "
                            "successful: %s" % disc.strip())
        qids = re.findall(r"\b([0-9A-F]{6,}): client=", self.pf.maillog_since(start))
        if not case.nul and len(qids) != 1:
            problems.append("Postfix opened %d queue files in the session, expected 1" % len(qids))
        if accepted:
            # Everything Postfix accepted is delivered (or bounced) and gone from the queue
            # before the Maildirs, the log and the queue are looked at.
            for qid in qids:
                try:
                    self.pf.wait_for_log("%s: removed" % qid, timeout=15, start=start, poll=0.01)
                except AssertionError:
                    problems.append("queue file %s was not removed within 15 s" % qid)
        log = self.pf.maillog_since(start)
        bad = [l for l in log.splitlines() if any(n in l for n in SMUGGLED_NEEDLES)]
        if bad:
            problems.append("smuggled addresses in Postfix's log:\n  " + "\n  ".join(bad[:8]))
        left = self.queue()
        if left:
            problems.append("messages left in Postfix's queue: %r" % left[:3])
        new = {u: sorted(self.maildir_files(u) - before[u]) for u in self.users}
        want = {"bob": 0 if case.nul else 1, "alice": 0}
        if {u: len(v) for u, v in new.items()} != want:
            problems.append("new Maildir files %r, expected %r" % (
                {u: len(v) for u, v in new.items()}, want))
        if not case.nul:
            sent = re.findall(r"to=<%s>, relay=virtual.*status=sent" % re.escape(RCPT), log)
            if len(sent) != 1:
                problems.append("Postfix logged %d deliveries to %s, expected 1"
                                % (len(sent), RCPT))
            mine = []
            for n in new["bob"]:
                with open(os.path.join(self.pf.maildir("bob"), "new", n), "rb") as f:
                    data = f.read()
                if case.token in data:
                    mine.append(data)
            if len(mine) == 1:
                self.check_message(mine[0], case, problems)
            else:
                problems.append("%d Maildir files carry this case's token" % len(mine))
        return final, problems

    def check_message(self, data, case, problems):
        """data: the Maildir file (LF line ends: Postfix stores lines without their CR)."""
        if b"MAIL FROM:<%s>" % SMUGGLED_FROM.encode() not in data:
            problems.append("the smuggled commands are not in the delivered message as data")
        if b"\r" in data:
            i = data.index(b"\r")
            problems.append("a bare CR reached Postfix: %r" % data[max(0, i - 40):i + 40])
        if case.forged.replace(b"\r\n", b"\n") in data:
            problems.append("the forged Authentication-Results field reached Postfix")
        head = data.split(b"\n\n", 1)[0]
        fields = []
        for line in head.split(b"\n"):
            if line[:1] in (b" ", b"\t") and fields:
                fields[-1] += line + b"\r\n"
            else:
                fields.append(line + b"\r\n")
        check_moat_authres(fields, self.sender, problems, "Maildir file")
        expected = postfix_form(case.expected)
        if not data.endswith(expected):
            i = common_suffix(data, expected)
            problems.append(
                "the Maildir file does not end with the client's message without the forged "
                "field: they differ %d bytes before the end; delivered there: %r, expected: %r" % (
                    i, data[-i - 40:len(data) - i + 40], expected[-i - 40:len(expected) - i + 40]))


def postfix_header(line):
    """Postfix's is_header(): a name of printable non-blank characters other than ":",
    optional blanks, then ":"."""
    return re.match(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:", line) is not None


def postfix_form(message):
    """The message (CRLF lines) as Postfix stores it in a Maildir file: LF line ends, and an
    empty line inserted where a line that is no header field ends the header section (as
    the carrier's "MAIL FROM:<...>" line does)."""
    lines = message.split(b"\r\n")
    for i, line in enumerate(lines):
        if line == b"":
            break
        if i and line[:1] in (b" ", b"\t"):
            continue
        if not postfix_header(line):
            lines.insert(i, b"")
            break
    return b"\n".join(lines)


def stop_moat(moat):
    """SIGTERM; moat must exit 0 without a sanitizer report (as conftest's moat_factory)."""
    rc = moat.stop()
    san = moat.sanitizer_errors()
    assert rc == 0 and not san, "moat exited %r; sanitizer: %r\n%s" % (
        rc, san[:5], moat.stderr_text()[-3000:])


@pytest.fixture(scope="module", params=["recording", "postfix", "postfix-tls"])
def harness(request, tmp_path_factory, dns):
    tmp = str(tmp_path_factory.mktemp("smuggling-" + request.param))
    h = (RecordingHarness(tmp, dns) if request.param == "recording"
         else PostfixHarness(tmp, tls=request.param == "postfix-tls"))
    yield h
    h.stop()


def verdict(problems, case, harness):
    assert not problems, "%s backend, %d-byte message:\n- %s" % (
        harness.name, len(case.data), "\n- ".join(problems))


# ------------------------------------------------------------------------ the tests

EOD_MODES = [("one-write", "one-write"), ("bytewise", "bytewise")] + [
    ("dot@%d%+d" % (e, k), (e, k)) for e in EDGES for k in NEAR]


@pytest.mark.parametrize("mode", [m for _, m in EOD_MODES], ids=[i for i, _ in EOD_MODES])
@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_end_of_data_variant(harness, variant, mode):
    case = eod_case(harness.sender, variant, mode)
    _, problems = harness.run(case)
    verdict(problems, case, harness)


AUTHRES_CASES = []
for _shape in ("long", "padded"):
    for _edge in EDGES:
        for _k in NEAR:
            for _spill in ((False, True) if _edge < SPOOL_MEM_MAX else (True,)):
                AUTHRES_CASES.append(pytest.param(
                    _shape, _edge, _k, _spill,
                    id="%s-dot@%d%+d%s-%s" % (_shape, _edge, _k, "(CR|LF)" if _k == -2 else "",
                                             "spill" if _spill else "memory")))


@pytest.mark.parametrize("shape,edge,k,spill", AUTHRES_CASES)
def test_authres_carrier(harness, shape, edge, k, spill):
    case = authres_case(harness.sender, shape, edge, k, spill)
    _, problems = harness.run(case)
    verdict(problems, case, harness)
