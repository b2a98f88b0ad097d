"""Replies under TLS go out at once (proxy/bevpush.c tls_push: SSL_write
while the TLS bufferevent's output is empty, else queued behind it): a
pipelining client gets every reply, complete and in order, in one large
burst, and when it does not read for a while (its receive window and moat's
send buffer full: the SSL_write that blocks is retried by libevent from the
output, and every reply after it must queue behind it, none overtaking), and
again once the queue has drained (writing at once resumes).

The bursts are random mixes of commands with different replies (EHLO's
lines, NOOP, HELP, VRFY); the client compares the bytes it reads with the
concatenation of those replies in the order sent, so a reply lost, doubled
or moved is caught at the first reply that differs."""

import random
import ssl

import pytest

from moatlib import HOSTNAME, SMTPClient

from test_tls import certs, client_ctx, tmoat  # noqa: F401  (fixtures)

KINDS = ("EHLO burst.example", "NOOP", "HELP", "VRFY postmaster")
MARKER = "MAIL FROM:<%s@>"   # refused, with a decision line naming it


def reply_bytes(c, line):
    c.send(line + "\r\n")
    return "".join(l + "\r\n" for l in c.reply().lines).encode()


def tls_client(port, rcvbuf=None):
    """After STARTTLS, the handshake and a new EHLO; with each kind's reply
    as moat words it (asked one at a time)."""
    c = SMTPClient(port, rcvbuf=rcvbuf)
    c.ehlo()
    c.expect("STARTTLS", 220)
    c.sock = client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
    c.ehlo()
    return c, {k: reply_bytes(c, k) for k in KINDS + (MARKER % "sample",)}


def burst(replies, nbytes, seed):
    """Commands (one write) and the replies they must get, in order: random
    kinds until the replies reach nbytes."""
    rng = random.Random(seed)
    cmds, want, size = [], [], 0
    while size < nbytes:
        k = KINDS[rng.randrange(len(KINDS))]
        cmds.append(k + "\r\n")
        want.append(replies[k])
        size += len(replies[k])
    return "".join(cmds).encode(), want


def read_exactly(c, n):
    got = bytearray(c.buf)
    c.buf = b""
    c.sock.settimeout(60)
    while len(got) < n:
        chunk = c.sock.recv(1 << 20)
        assert chunk, "connection closed after %d of %d bytes" % (len(got), n)
        got += chunk
    return bytes(got)


def check_in_order(got, want):
    expected = b"".join(want)
    if got[:len(expected)] == expected:
        assert got == expected, "%d bytes more than the replies: %r" % (len(got) - len(expected), got[len(expected):][:200])
        return
    pos = 0
    for i, w in enumerate(want):
        if got[pos:pos + len(w)] != w:
            raise AssertionError("reply %d of %d (at byte %d) is %r, expected %r" % (
                i + 1, len(want), pos, got[pos:pos + len(w)][:120], w[:120]))
        pos += len(w)


def test_pipelined_burst_over_tls_in_order(tmoat):
    """~600 KB of replies to one write of commands, read as they come."""
    c, replies = tls_client(tmoat.port)
    cmds, want = burst(replies, 600_000, seed=1)
    c.send(cmds)
    check_in_order(read_exactly(c, sum(map(len, want))), want)
    c.expect("QUIT", 221)


def test_tls_replies_queue_behind_a_blocked_write(tmoat):
    """The client's receive buffer is small and it reads nothing until moat
    has answered every command: ~6 MB of replies cannot all fit in its
    window and moat's send buffer (tcp_wmem at most 4 MB), so an SSL_write
    blocked and the replies after it were queued. They must come complete
    and in order; so must a second burst once the queue has drained."""
    c, replies = tls_client(tmoat.port, rcvbuf=4096)
    for round_, size in enumerate((6_000_000, 300_000)):
        cmds, want = burst(replies, size, seed=10 + round_)
        marker = "burst-%d" % round_
        c.send(cmds + (MARKER % marker + "\r\n").encode())
        want.append(replies[MARKER % "sample"])
        # moat logs the marker's refusal after it answered every command before it
        tmoat.wait_log(lambda l: l.get("event") == "decision" and l.get("mail_from") == marker + "@",
                       timeout=120, what="the marker's decision line")
        check_in_order(read_exactly(c, sum(map(len, want))), want)
    c.expect("QUIT", 221)
