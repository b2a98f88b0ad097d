"""Greylisting (issue 17, item 2): the rule action greylist, with the
in-memory store the workers share. Triplets of client network (/24, /64;
an IPv4-mapped address as IPv4), sender and recipient; 451 4.7.1 until
greylist_delay has passed (2 s here), then accepted; a network that passed
greylist_auto_allow times skips it; the greylisted fact in data rules and
on decision lines; a greylisted recipient never reaches the backend, the
others of its transaction do.

Clients come with a PROXY header from documentation addresses. Time: real
delays, waited for by retrying until the retry passes (each retry is
itself a check that it was refused while too early)."""

import socket
import struct
import time

import pytest

from moatlib import DEFAULT_TIMEOUT, LOCAL_DOMAIN, free_port
from redislib import REDIS_SERVER, Redis
from checkslib import checks_moat, connect, no_backend_contact, proxy_v1, stored_message, wait_decision

DELAY = 2
RCPT = "bob@" + LOCAL_DOMAIN
WHITE = "white@" + LOCAL_DOMAIN
GREY_RULES = ('greylist not rcpt %s note "unknown triplet" id grey\n'
              'tag greylisted passed header "X-Greylist: passed after %%{client}"  id grey-passed\n'
              'include builtin:default\n' % WHITE)


def gmoat(moat_factory, dns, tmp_path, rules=GREY_RULES, **keys):
    path = tmp_path / "grey.rules"
    path.write_text(rules)
    keys.setdefault("rules", str(path))
    keys.setdefault("proxy_protocol", "yes")
    keys.setdefault("check_spf", "no")
    keys.setdefault("check_sender_domain", "no")
    keys.setdefault("greylist_delay", str(DELAY))
    keys.setdefault("greylist_retry_window", "60")
    return checks_moat(moat_factory, dns, **keys)


def attempt(m, ip, sender="alice@example.org", rcpts=(RCPT,), data=True):
    """One transaction from ip: the RCPT replies, and the DATA reply when a
    recipient was accepted (data=True)."""
    with connect(m, proxy=proxy_v1(ip)) as c:
        c.ehlo("client.example.org")
        c.expect("MAIL FROM:<%s>" % sender, 250)
        replies = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
        final = None
        if data and any(r.code == 250 for r in replies):
            final = c.data(b"Subject: greylisting\r\n\r\nhello\r\n")
        c.expect("QUIT", 221)
    return replies, final


def greylisted(r, secs=None):
    assert r.code == 451 and r.enhanced() == ["4.7.1"], r
    assert r.text.startswith("4.7.1 Greylisted, try again in "), r
    if secs is not None:
        assert r.text == "4.7.1 Greylisted, try again in %d seconds" % secs, r


def retry_until_passed(m, ip, first_at, **kw):
    """Retry until the triplet passes: every refused retry says it is too
    early (and comes before the delay); the one that passes comes after."""
    deadline = time.monotonic() + DELAY + DEFAULT_TIMEOUT
    while True:
        replies, final = attempt(m, ip, **kw)
        now = time.monotonic()
        if replies[0].code == 250:
            # the store counts whole seconds of wall-clock time: a delay of 2 s is
            # more than 1 s and at most 2 s of real time
            assert now - first_at > DELAY - 1, "passed %.2f s after the first attempt" % (now - first_at)
            return replies, final
        greylisted(replies[0])
        assert now - first_at < DELAY + 1.5, "still greylisted %.2f s after the first attempt" % (now - first_at)
        assert now < deadline
        time.sleep(0.25)  # a client's pause between retries, not a synchronisation


def grey_decision(m, ip, state, start=0):
    return wait_decision(m, lambda l: l["stage"] == "rcpt" and l.get("client_ip") == ip and
                         l.get("greylist") == state, what="greylist %s of %s" % (state, ip))


# --------------------------------------------------------------- the triplet

def test_first_early_then_passed_and_delivered(moat_factory, dns_factory, backend, tmp_path):
    """First attempt: 451 4.7.1 saying when to retry, the backend never
    asked; too early: 451 again; after greylist_delay: 250 and delivered,
    the data rule on greylisted tags the message, the data line says
    passed."""
    m = gmoat(moat_factory, dns_factory({}), tmp_path)
    ip = "192.0.2.1"
    with no_backend_contact(m, backend) as box:
        first_at = time.monotonic()
        replies, _ = attempt(m, ip)
        greylisted(replies[0], DELAY)
        replies, _ = attempt(m, ip)
        greylisted(replies[0])
        box["sessions"] = 2
    d = grey_decision(m, ip, "first")
    assert (d["action"], d["code"], d["esc"], d["rule_id"]) == ("tempfail", 451, "4.7.1", "grey"), d
    assert d["reason"] == "greylisted (first time): unknown triplet", d
    assert d["rcpt"] == RCPT
    d = grey_decision(m, ip, "early")
    assert d["reason"].startswith("greylisted (too early)"), d
    _, final = retry_until_passed(m, ip, first_at)
    assert final.code == 250, final
    msg = stored_message(backend, final)
    assert b"X-Greylist: passed after 192.0.2.1\r\n" in msg.data, msg.data[:400]
    assert msg.rcpts == [RCPT]
    d = wait_decision(m, lambda l: l["event"] == "decision" and l["stage"] == "data" and l.get("client_ip") == ip)
    assert (d["action"], d["greylist"]) == ("accept", "passed"), d
    # passed: remembered, no delay for the next message of the triplet
    replies, final = attempt(m, ip)
    assert replies[0].code == 250 and final.code == 250


def test_other_recipients_of_the_transaction_unaffected(moat_factory, dns_factory, backend, tmp_path):
    """One recipient greylisted, another not (the rule spares it): the first
    gets 451, the second 250, the message goes to the second alone; the
    backend never hears of the first."""
    m = gmoat(moat_factory, dns_factory({}), tmp_path)
    replies, final = attempt(m, "192.0.2.2", rcpts=(RCPT, WHITE))
    greylisted(replies[0], DELAY)
    assert replies[1].code == 250, replies[1]
    msg = stored_message(backend, final)
    assert msg.rcpts == [WHITE]
    assert b"X-Greylist" not in msg.data
    cmds = [e[2] for e in backend.events.snapshot() if e[0] == "CMD"]
    assert not [c for c in cmds if RCPT in c], cmds
    d = wait_decision(m, lambda l: l["event"] == "decision" and l["stage"] == "data" and l.get("client_ip") == "192.0.2.2")
    assert "greylist" not in d, d   # no greylist rule applied to the recipient delivered


def test_triplet_parts(moat_factory, dns_factory, backend, tmp_path):
    """The network is a /24 (an IPv4-mapped address is the same network);
    another sender, another recipient or another /24 is another triplet;
    the null sender is a sender of its own."""
    m = gmoat(moat_factory, dns_factory({}), tmp_path)
    first_at = time.monotonic()
    greylisted(attempt(m, "192.0.2.10")[0][0], DELAY)
    retry_until_passed(m, "192.0.2.10", first_at)
    # the same /24, written as IPv4 or IPv4-mapped IPv6: passed
    assert attempt(m, "192.0.2.200")[0][0].code == 250
    assert attempt(m, "::ffff:192.0.2.77")[0][0].code == 250
    # the sender's case does not make a new triplet
    assert attempt(m, "192.0.2.11", sender="ALICE@Example.ORG")[0][0].code == 250
    # another /24, another sender, another recipient, the null sender: first time
    greylisted(attempt(m, "192.0.3.10")[0][0], DELAY)
    greylisted(attempt(m, "192.0.2.10", sender="carol@example.org")[0][0], DELAY)
    greylisted(attempt(m, "192.0.2.10", rcpts=("dave@" + LOCAL_DOMAIN,))[0][0], DELAY)
    greylisted(attempt(m, "192.0.2.10", sender="")[0][0], DELAY)
    grey_decision(m, "192.0.2.10", "first")


def test_ipv6_network_is_a_64(moat_factory, dns_factory, backend, tmp_path):
    m = gmoat(moat_factory, dns_factory({}), tmp_path)
    first_at = time.monotonic()
    greylisted(attempt(m, "2001:db8:1:2::1")[0][0], DELAY)
    retry_until_passed(m, "2001:db8:1:2::1", first_at)
    assert attempt(m, "2001:db8:1:2:ffff::9")[0][0].code == 250
    greylisted(attempt(m, "2001:db8:1:3::1")[0][0], DELAY)


def test_auto_allow(moat_factory, dns_factory, backend, tmp_path):
    """A network that passed greylist_auto_allow (2) times skips greylisting
    for new triplets: allowed at once, and said on the data line."""
    m = gmoat(moat_factory, dns_factory({}), tmp_path, greylist_auto_allow="2")
    ip = "198.51.100.7"
    first_at = time.monotonic()
    for r in ("r1", "r2"):
        greylisted(attempt(m, ip, rcpts=("%s@%s" % (r, LOCAL_DOMAIN),))[0][0], DELAY)
    for r in ("r1", "r2"):
        retry_until_passed(m, ip, first_at, rcpts=("%s@%s" % (r, LOCAL_DOMAIN),))
    replies, final = attempt(m, "198.51.100.99", sender="new@example.net", rcpts=("r3@" + LOCAL_DOMAIN,))
    assert replies[0].code == 250 and final.code == 250, (replies, final)
    d = wait_decision(m, lambda l: l["event"] == "decision" and l["stage"] == "data" and l.get("client_ip") == "198.51.100.99")
    assert d["greylist"] == "allowed", d
    # another network has not passed
    greylisted(attempt(m, "198.51.101.7", rcpts=("r3@" + LOCAL_DOMAIN,))[0][0], DELAY)


def test_auto_allow_zero_never(moat_factory, dns_factory, backend, tmp_path):
    m = gmoat(moat_factory, dns_factory({}), tmp_path, greylist_auto_allow="0")
    ip = "198.51.100.8"
    first_at = time.monotonic()
    greylisted(attempt(m, ip)[0][0], DELAY)
    retry_until_passed(m, ip, first_at)
    greylisted(attempt(m, ip, rcpts=("other@" + LOCAL_DOMAIN,))[0][0], DELAY)


# ------------------------------------------------------------------- the rules

def test_only_what_the_rules_choose(moat_factory, dns_factory, backend, tmp_path):
    """A site greylists what its rules say (here: clients without reverse
    DNS); the others are not greylisted and their lines say nothing of it."""
    zone = {"5.2.0.192.in-addr.arpa": [("PTR", "mx.example.org")], "mx.example.org": [("A", "192.0.2.5")]}
    rules = 'greylist rdns none  id grey-nordns\ninclude builtin:default\n'
    m = gmoat(moat_factory, dns_factory(zone), tmp_path, rules=rules)
    replies, final = attempt(m, "192.0.2.5")
    assert replies[0].code == 250 and final.code == 250
    d = wait_decision(m, lambda l: l["event"] == "decision" and l["stage"] == "data" and l.get("client_ip") == "192.0.2.5")
    assert "greylist" not in d
    greylisted(attempt(m, "192.0.2.6")[0][0], DELAY)
    assert grey_decision(m, "192.0.2.6", "first")["rule_id"] == "grey-nordns"


def test_accept_above_spares(moat_factory, dns_factory, backend, tmp_path):
    """An accept above the greylist rule ends the rules first (trusted_networks)."""
    m = gmoat(moat_factory, dns_factory({}), tmp_path, trusted_networks="192.0.2.0/24",
              rules="accept client trusted\n" + GREY_RULES)
    replies, final = attempt(m, "192.0.2.9")
    assert replies[0].code == 250 and final.code == 250


def test_data_stage_greylists_every_recipient(moat_factory, dns_factory, backend, tmp_path):
    """A greylist rule on the header is decided at the end of data, for every
    recipient: one not passed refuses the message (451 4.7.1), which never
    goes to the backend; once retried after the delay it is delivered to
    all. A message the rule does not match goes through at once."""
    rules = 'greylist header Subject /lottery/  id grey-data\ninclude builtin:default\n'
    m = gmoat(moat_factory, dns_factory({}), tmp_path, rules=rules)
    ip, other = "192.0.2.90", "carol@" + LOCAL_DOMAIN

    def send(subject):
        with connect(m, proxy=proxy_v1(ip)) as c:
            c.ehlo("client.example.org")
            c.expect("MAIL FROM:<alice@example.org>", 250)
            c.expect("RCPT TO:<%s>" % RCPT, 250)
            c.expect("RCPT TO:<%s>" % other, 250)
            r = c.data(b"Subject: " + subject + b"\r\n\r\nhello\r\n")
            c.expect("QUIT", 221)
        return r

    assert send(b"minutes").code == 250
    d = wait_decision(m, lambda l: l["event"] == "decision" and l["stage"] == "data" and l.get("client_ip") == ip)
    assert "greylist" not in d, d
    first_at = time.monotonic()
    r = send(b"you won the lottery")
    greylisted(r, DELAY)
    d = wait_decision(m, lambda l: l["event"] == "decision" and l.get("rule_id") == "grey-data")
    assert (d["stage"], d["code"], d["greylist"], d["reason"]) == ("data", 451, "first,first",
                                                                   "greylisted: header Subject /lottery/"), d
    while True:
        r = send(b"you won the lottery")
        if r.code == 250:
            break
        greylisted(r)
        assert time.monotonic() - first_at < DELAY + 1.5
        time.sleep(0.25)  # a client's pause between retries
    assert time.monotonic() - first_at > DELAY - 1
    msg = stored_message(backend, r)
    assert msg.rcpts == [RCPT, other] and b"lottery" in msg.data
    assert len(backend.messages()) == 2   # the refused ones never reached it
    d = wait_decision(m, lambda l: l["event"] == "decision" and l["stage"] == "data" and l.get("code") == 250 and
                      l.get("greylist") == "passed,passed")


def test_monitor(moat_factory, dns_factory, backend, tmp_path):
    """greylist monitor: logged as would-greylist, delivered, no triplet kept."""
    rules = 'greylist monitor not rcpt %s  id grey-mon\ninclude builtin:default\n' % WHITE
    m = gmoat(moat_factory, dns_factory({}), tmp_path, rules=rules)
    replies, final = attempt(m, "192.0.2.30")
    assert replies[0].code == 250 and final.code == 250
    h = wait_decision(m, lambda l: l.get("rule_id") == "grey-mon")
    assert h["action"] == "would-greylist", h


def test_delay_reject_off_and_mail_refusal_first(moat_factory, dns_factory, backend, tmp_path):
    """A sender refused by the rules is refused as such, not greylisted."""
    rules = ('reject sender @spam.example "550 5.7.1 no"\n' + GREY_RULES)
    m = gmoat(moat_factory, dns_factory({}), tmp_path, rules=rules, delay_reject="yes")
    replies, _ = attempt(m, "192.0.2.31", sender="x@spam.example")
    assert replies[0].code == 550, replies


def test_client_gone_while_the_store_answers(moat_factory, dns_factory, backend, tmp_path):
    """Clients that pipeline MAIL and RCPT and reset the connection at once:
    the session waiting for the store ends (its call cancelled, under the
    sanitizers too), the others go on."""
    m = gmoat(moat_factory, dns_factory({}), tmp_path,
              rules=GREY_RULES.replace("include", "ratelimit client 1000/1h recipients\ninclude"))
    for i in range(20):
        c = connect(m, proxy=proxy_v1("192.0.2.%d" % (100 + i)))
        c.send(b"EHLO x.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\n"
               % (RCPT.encode(), WHITE.encode()))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        c.sock.close()
    m.logs.wait_count(lambda l: l.get("event") == "session_end", 20)
    replies, final = attempt(m, "192.0.2.99", rcpts=(RCPT, WHITE))
    greylisted(replies[0], DELAY)
    assert replies[1].code == 250 and final.code == 250


def test_store_down_fails_open(moat_factory, dns_factory, backend, tmp_path):
    """redis names a port nothing listens on: greylisting is skipped (the
    recipient accepted, the data line and the greylisted fact say skipped),
    never a 4xx or 5xx of its own."""
    rules = GREY_RULES + 'tag greylisted skipped header "X-Greylist: skipped"\n'
    m = gmoat(moat_factory, dns_factory({}), tmp_path, rules=rules, redis="127.0.0.1:%d" % free_port(),
              redis_timeout="200")
    for ip in ("192.0.2.50", "192.0.2.50", "2001:db8::50"):
        replies, final = attempt(m, ip)
        assert replies[0].code == 250 and final.code == 250, (replies, final)
        assert b"X-Greylist: skipped\r\n" in stored_message(backend, final).data
        d = wait_decision(m, lambda l: l["event"] == "decision" and l["stage"] == "data" and l.get("client_ip") == ip)
        assert d["greylist"] == "skipped", d


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed (make deps)")
def test_triplet_in_redis(moat_factory, dns_factory, backend, tmp_path):
    """With redis: the triplet and the network's passes are Redis's keys
    (every replica sees them); first, early, passed as in memory."""
    r = Redis(tmp_path).start()
    try:
        m = gmoat(moat_factory, dns_factory({}), tmp_path, redis=r.addr, workers="2")
        ip = "203.0.113.77"
        first_at = time.monotonic()
        greylisted(attempt(m, ip)[0][0], DELAY)
        rc = r.client()
        assert rc.call("EXISTS", "g:203.0.113.0/24|alice@example.org|%s" % RCPT) == 1
        _, final = retry_until_passed(m, ip, first_at)
        assert final.code == 250
        assert rc.call("EXISTS", "ga:203.0.113.0/24") == 1
        d = wait_decision(m, lambda l: l["event"] == "decision" and l["stage"] == "data" and l.get("client_ip") == ip)
        assert d["greylist"] == "passed", d
    finally:
        r.stop()


# ------------------------------------------------------------------ workers

def test_triplet_shared_by_workers(moat_factory, dns_factory, backend, tmp_path):
    """workers = 2: the triplet recorded by one worker is the other's too:
    after the first attempt, every retry says "early" whichever worker took
    it, and the one after the delay passes."""
    m = gmoat(moat_factory, dns_factory({}), tmp_path, workers="2")
    m.logs.wait_count(lambda l: l.get("event") == "ready", 2)
    ip = "203.0.113.5"
    first_at = time.monotonic()
    greylisted(attempt(m, ip)[0][0], DELAY)
    retry_until_passed(m, ip, first_at)
    m.logs.wait_until(lambda items: any(l.get("greylist") == "passed" for l in items), what="passed line")
    lines = [l for l in m.logs.snapshot() if l.get("client_ip") == ip and l.get("greylist")]
    assert [l["greylist"] for l in lines if l["greylist"] == "first"] == ["first"], lines
    workers = {l["worker"] for l in m.logs.snapshot() if l.get("client_ip") == ip and "worker" in l}
    if workers != {0, 1}:
        pytest.skip("every attempt landed on one worker (the kernel's choice): %r" % workers)
