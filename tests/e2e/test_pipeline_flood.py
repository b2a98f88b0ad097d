"""Thousands of pipelined commands whose checks finish in one loop turn
(cached DNS) are answered in order without growing the stack: moat survives
and every reply comes back."""

from moatlib import SMTPClient

N = 3000


def test_pipelined_mail_rset_flood(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        # Warm the DNS cache so that every further MAIL's checks take one loop turn.
        c.expect("MAIL FROM:<alice@example.org>", 250)
        c.expect("RSET", 250)
        c.send(b"MAIL FROM:<alice@example.org>\r\nRSET\r\n" * N)
        for i in range(N):
            assert c.reply().code == 250, i      # MAIL
            assert c.reply().code == 250, i      # RSET
        c.expect("NOOP", 250)
    assert moat.proc.poll() is None
