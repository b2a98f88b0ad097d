"""What greylisting and rate limits cost in Redis (issue 17, item 6): the
store calls of a message, counted on a real redis-server with INFO
commandstats, as docs/scaling.md states them.

Every store call is one EVALSHA (EVAL only after NOSCRIPT: the first calls
of a connection before Redis has the script), so EVALSHA calls are the
calls moat made. Per message: one for each messages limit that applies,
and per recipient one for its greylist triplet and one for each recipients
limit; a give-back (a transaction not delivered, a recipient the backend
refused) is one more, not waited for. Round trips: with delay_reject (the
default) the messages counts go with the first RCPT's calls (one round trip
for a message of one recipient), without it they go at MAIL.

The triplets are made passed beforehand, in Redis, as the bench's "all
triplets already passed" (greylist_auto_allow = 0: each recipient asks its
triplet, the worst case; with auto allow the call is the same, the script
shorter)."""

import re
import time

import pytest

from moatlib import DEFAULT_TIMEOUT, LOCAL_DOMAIN
from redislib import REDIS_SERVER, Redis
from checkslib import checks_moat, connect, proxy_v1

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed (make deps)")

CLIENT = "192.0.2.77"
SENDER = "alice@example.org"
RCPTS = ["bob@" + LOCAL_DOMAIN, "carol@" + LOCAL_DOMAIN]
RULES = ("greylist  not rcpt nobody@example.invalid  id grey\n"
         "ratelimit client 1000000/1h  id per-client\n"
         "ratelimit sender-domain 1000000/1h  id per-domain\n"
         "ratelimit client 1000000/1h recipients  id rcpts\n"
         "include builtin:default\n")
N = 20


def cmdstats(r):
    """{command: calls} from INFO commandstats."""
    out = {}
    for line in r.call("INFO", "commandstats").splitlines():
        m = re.match(r"cmdstat_([a-z|]+):calls=(\d+),", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def delta(before, after):
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def cost_moat(moat_factory, dns_factory, tmp_path, redis, **conf):
    path = tmp_path / "cost.rules"
    path.write_text(RULES)
    return checks_moat(moat_factory, dns_factory({}), rules=str(path), proxy_protocol="yes", check_spf="no",
                       check_sender_domain="no", redis=redis.addr, workers="1", greylist_auto_allow="0", **conf)


def send(m, rcpts=RCPTS, rset=False):
    with connect(m, proxy=proxy_v1(CLIENT)) as c:
        c.ehlo("client.example.org")
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        if rset:
            c.expect("RSET", 250)
        else:
            for rcpt in rcpts:
                c.expect("RCPT TO:<%s>" % rcpt, 250)
            assert c.data(b"Subject: cost\r\n\r\nhello\r\n").code == 250
        c.expect("QUIT", 221)


@pytest.fixture
def passed(tmp_path):
    """A redis-server where every triplet of the test has passed."""
    r = Redis(tmp_path).start()
    c = r.client()
    for rcpt in RCPTS:
        assert c.call("SET", "g:192.0.2.0/24|%s|%s" % (SENDER, rcpt.lower()), "p", "EX", "3600") == "OK"
    yield r, c
    r.stop()


@pytest.mark.parametrize("delay_reject", ["yes", "no"])
def test_calls_per_message(moat_factory, dns_factory, backend, tmp_path, passed, delay_reject):
    """N messages of 2 recipients, 2 messages limits, 1 recipients limit:
    2 + 2 x (1 + 1) = 6 EVALSHA a message, nothing else."""
    r, c = passed
    m = cost_moat(moat_factory, dns_factory, tmp_path, r, delay_reject=delay_reject)
    send(m)  # the connection made, the scripts loaded (EVAL after NOSCRIPT)
    before = cmdstats(c)
    for _ in range(N):
        send(m)
    d = delta(before, cmdstats(c))
    d.pop("info", None)
    assert d.get("evalsha") == 6 * N, d
    assert "eval" not in d, d
    # inside the scripts: TIME each; a passed triplet is GET + EXPIRE; a count HMGET + HSET
    assert d["time"] == 6 * N and d["get"] == 2 * N and d["expire"] == 2 * N, d
    assert d["hmget"] == 4 * N and d["hset"] == 4 * N, d
    # a counter's expiry is set when it enters its window, not at each count:
    # at most once for each of the 3 keys (if the test runs across an hour)
    assert d.get("expireat", 0) <= 3, d
    assert c.call("GET", "g:192.0.2.0/24|%s|%s" % (SENDER, RCPTS[0].lower())) == "p"


def rsets(moat_factory, dns_factory, tmp_path, passed, delay_reject):
    """A moat, warmed up; then N transactions ended by RSET after MAIL."""
    m = cost_moat(moat_factory, dns_factory, tmp_path, passed[0], delay_reject=delay_reject)
    send(m)
    before = cmdstats(passed[1])
    for _ in range(N):
        send(m, rset=True)
    return m, before


def test_mail_counted_with_first_rcpt(moat_factory, dns_factory, backend, tmp_path, passed):
    """With delay_reject (the default) the MAIL's counts go to Redis with the
    first RCPT's calls (one round trip a message): a transaction ended
    before any RCPT (MAIL then RSET) costs no call at all."""
    c = passed[1]
    m, before = rsets(moat_factory, dns_factory, tmp_path, passed, "yes")
    send(m)  # then one message: its 6 calls, all waited for
    m.logs.wait_count(lambda l: l.get("event") == "session_end", N + 2)
    assert delta(before, cmdstats(c)).get("evalsha") == 6, delta(before, cmdstats(c))


def test_give_back_is_one_call(moat_factory, dns_factory, backend, tmp_path, passed):
    """delay_reject = no: MAIL is answered after its counts; a transaction not
    delivered (MAIL then RSET) gives each back: 2 calls a messages limit."""
    c = passed[1]
    m, before = rsets(moat_factory, dns_factory, tmp_path, passed, "no")
    m.logs.wait_count(lambda l: l.get("event") == "session_end", N + 1)
    # the give-backs are not waited for: the last may still be on its way to Redis
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    d = delta(before, cmdstats(c))
    while d.get("evalsha", 0) < 4 * N and time.monotonic() < deadline:
        d = delta(before, cmdstats(c))
    assert d.get("evalsha") == 4 * N, d


@pytest.mark.parametrize("delay_reject", ["yes", "no"])
def test_rcpt_calls_sent_together(moat_factory, dns_factory, backend, tmp_path, passed, delay_reject):
    """At RCPT the triplet and the recipients limit go to Redis together (one
    round trip, not two): a recipient greylisted for the first time has been
    counted too, and its count is given back (3 calls: the triplet, the
    count, the give-back), so the recipients limit's count is unchanged."""
    r, c = passed
    m = cost_moat(moat_factory, dns_factory, tmp_path, r, delay_reject=delay_reject)
    send(m)
    key = "r:r:c:1000000/3600:%s" % CLIENT
    n0 = int(c.call("HGET", key, "n"))
    before = cmdstats(c)
    with connect(m, proxy=proxy_v1(CLIENT)) as conn:
        conn.ehlo("client.example.org")
        conn.expect("MAIL FROM:<%s>" % SENDER, 250)
        assert conn.cmd("RCPT TO:<dave@%s>" % LOCAL_DOMAIN).code == 451
        conn.expect("QUIT", 221)
    m.logs.wait_count(lambda l: l.get("event") == "session_end", 2)
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    d = delta(before, cmdstats(c))
    while d.get("evalsha", 0) < 2 + 3 + 2 and time.monotonic() < deadline:
        d = delta(before, cmdstats(c))
    # MAIL: 2 counts (sent with the RCPT's); RCPT: triplet + count + give-back; the transaction ends
    # undelivered: the 2 messages counts given back
    assert d.get("evalsha") == 2 + 3 + 2, d
    assert int(c.call("HGET", key, "n")) == n0
