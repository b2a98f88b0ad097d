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
import select
import ssl
import time

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


def write_until_refused(c, data, quiet=2.0):
    """Write data, reading nothing, until moat stops reading (the socket stays
    unwritable for `quiet` seconds: its receive buffer and ours are full) or
    all of it is written; the bytes written."""
    sock, sent = c.sock, 0
    sock.setblocking(False)
    while sent < len(data):
        _, w, _ = select.select([], [sock], [], quiet)
        if not w:
            break
        try:
            sent += sock.send(data[sent:sent + 16384])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            pass   # retried with the same bytes, as OpenSSL wants
    sock.setblocking(True)
    return sent


def pump(c, data, n, timeout=120):
    """Write the rest of data while reading n bytes of replies, on one thread
    (an SSL object is not for two): the bytes read."""
    sock, sent, got = c.sock, 0, bytearray(c.buf)
    c.buf = b""
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, "%d of %d bytes of replies in %ds" % (len(got), n, timeout)
        r, w, _ = select.select([sock], [sock] if sent < len(data) else [], [], 1)
        if r or getattr(sock, "pending", lambda: 0)():
            try:
                chunk = sock.recv(1 << 20)
                assert chunk, "connection closed after %d of %d bytes" % (len(got), n)
                got += chunk
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
        if w:
            try:
                sent += sock.send(data[sent:sent + 16384])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                pass
    sock.setblocking(True)
    return bytes(got)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_a_client_that_does_not_read_is_not_read(tmoat, tls):
    """A client pipelines ~18 MB of commands and reads none of the replies
    (~100 MB of them): moat must not hold them all. Once what it holds
    unsent passes MOAT_CLIENT_OUTPUT_MAX it reads no more commands (TCP's
    windows then stop the client), and when the client reads, every reply
    comes, complete and in order (under TLS: the SSL_write that blocked is
    retried from the output and nothing overtakes it); a second burst too."""
    if tls:
        c, replies = tls_client(tmoat.port, rcvbuf=4096)
    else:
        c = SMTPClient(tmoat.port, rcvbuf=4096)
        c.ehlo()
        replies = {k: reply_bytes(c, k) for k in KINDS}
    cmds, want = burst(replies, 100_000_000, seed=10)
    assert len(cmds) > 16_000_000
    sent = write_until_refused(c, cmds)
    # kernel buffers on both sides hold at most ~10 MB; moat reading on would take it all
    assert sent < len(cmds) // 2, "moat read %d of %d bytes of commands whose replies nobody took" % (
        sent, len(cmds))
    check_in_order(pump(c, cmds[sent:], sum(map(len, want))), want)
    cmds, want = burst(replies, 300_000, seed=11)
    c.sock.sendall(cmds)
    check_in_order(read_exactly(c, sum(map(len, want))), want)
    c.expect("QUIT", 221)
