"""Rate limits (issue 17, item 3): the rule action ratelimit, with the
in-memory store the workers share. Messages per client address, per sender
domain and per authenticated user, recipients per client; fixed windows
aligned to the epoch; exact at N (N accepted, the next refused with 451
4.7.1 and the window's reset time); a refused attempt, a transaction not
delivered and a recipient the backend refused do not count; workers share
the count.

Windows are an hour or a day: the tests' counts never cross a boundary
unless the test runs across one (then the reset time it reads is the next
boundary, which it accepts)."""

import datetime
import re
import time

import pytest

from moatlib import LOCAL_DOMAIN, free_port
from redislib import REDIS_SERVER, Redis
from checkslib import checks_moat, connect, no_backend_contact, proxy_v1, stored_message, wait_decision
from test_auth import USER, PASSWORD, abackend, authed, plain  # noqa: F401 - the abackend fixture
from test_submission import certs, sub_moat  # noqa: F401 - the certs fixture

RCPT = "bob@" + LOCAL_DOMAIN
MSG = b"Subject: rate\r\n\r\nhello\r\n"


def rmoat(moat_factory, dns, tmp_path, rules, **keys):
    path = tmp_path / "rate.rules"
    path.write_text(rules + "include builtin:default\n")
    keys.setdefault("rules", str(path))
    keys.setdefault("proxy_protocol", "yes")
    keys.setdefault("check_spf", "no")
    keys.setdefault("check_sender_domain", "no")
    keys.setdefault("delay_reject", "yes")  # the default (checks_moat turns it off)
    return checks_moat(moat_factory, dns, **keys)


def send(m, ip, sender="alice@example.org", rcpts=(RCPT,), quit_before_data=False):
    """One transaction: (RCPT replies, final reply or None)."""
    with connect(m, proxy=proxy_v1(ip)) as c:
        c.ehlo("client.example.org")
        mail = c.cmd("MAIL FROM:<%s>" % sender)
        if mail.code != 250:
            c.expect("QUIT", 221)
            return [mail], None
        replies = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
        final = None
        if not quit_before_data and any(r.code == 250 for r in replies):
            final = c.data(MSG)
        c.expect("QUIT", 221)
    return replies, final


def resets(window):
    """The window's possible reset times as the reply words them: now's,
    and the next one (a test running across a boundary)."""
    now = int(time.time())
    out = set()
    for t in (now, now + 30):
        r = t - t % window + window
        dt = datetime.datetime.fromtimestamp(r, datetime.timezone.utc)
        same_day = dt.date() == datetime.datetime.fromtimestamp(t, datetime.timezone.utc).date()
        out.add(dt.strftime("%H:%M:%S UTC") if same_day else dt.strftime("%Y-%m-%d %H:%M:%S UTC"))
    return out


def limited(r, what, window):
    assert r.code == 451 and r.enhanced() == ["4.7.1"], r
    m = re.fullmatch(r"4\.7\.1 Rate limit of (.*) reached, try again after (.*)", r.text)
    assert m and m.group(1) == what, r
    assert m.group(2) in resets(window), (r, resets(window))


# -------------------------------------------------------- per client address

def test_messages_per_client_exact(moat_factory, dns_factory, backend, tmp_path):
    """ratelimit client 3/1h: three messages delivered, the fourth refused
    at its RCPT (delay_reject) with the reset time, never reaching the
    backend; another client is not concerned."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit client 3/1h  id per-client\n")
    for i in range(3):
        replies, final = send(m, "192.0.2.1")
        assert replies[0].code == 250 and final.code == 250, (i, replies, final)
    with no_backend_contact(m, backend):
        replies, _ = send(m, "192.0.2.1")
    limited(replies[0], "3 messages per hour for 192.0.2.1", 3600)
    d = wait_decision(m, lambda l: l.get("rule_id") == "per-client" and l["stage"] == "rcpt")
    assert (d["action"], d["code"], d["esc"]) == ("tempfail", 451, "4.7.1"), d
    assert d["reason"] == "rate limit: 3 messages per hour per client (192.0.2.1)", d
    assert len(backend.messages()) == 3
    replies, final = send(m, "192.0.2.2")
    assert final.code == 250
    # refused attempts do not count up: still refused, still 3 delivered
    replies, _ = send(m, "192.0.2.1")
    assert replies[0].code == 451


def test_first_rcpt_refused_by_rules(moat_factory, dns_factory, backend, tmp_path):
    """With delay_reject the message is counted with its first RCPT's calls,
    even when the rules refuse that recipient: counted once for the
    transaction (its second recipient accepted, the message delivered, the
    next one refused), and given back when no recipient is accepted."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit client 1/1h  id per-client\n")
    replies, final = send(m, "192.0.2.50", rcpts=("x@elsewhere.example", RCPT))
    assert replies[0].code == 554 and replies[1].code == 250 and final.code == 250, (replies, final)
    replies, _ = send(m, "192.0.2.50")
    limited(replies[0], "1 message per hour for 192.0.2.50", 3600)
    replies, _ = send(m, "192.0.2.51", rcpts=("x@elsewhere.example",))
    assert replies[0].code == 554, replies
    assert send(m, "192.0.2.51")[1].code == 250


def test_refused_attempt_does_not_count(moat_factory, dns_factory, backend, tmp_path):
    """Two limits on one MAIL: the client's refuses, and the sender domain's
    count gets its one back (else the domain's second message, from another
    client, would be refused)."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path,
              "ratelimit client 1/1h\nratelimit sender-domain 2/1h  id per-domain\n")
    assert send(m, "192.0.2.40", sender="a@example.net")[1].code == 250
    for _ in range(3):
        replies, _ = send(m, "192.0.2.40", sender="a@example.net")
        limited(replies[0], "1 message per hour for 192.0.2.40", 3600)
    # in memory a give-back is counted when it is asked for, before the
    # refusal goes out (with Redis a retry could outrun it)
    assert send(m, "192.0.2.41", sender="b@example.net")[1].code == 250
    replies, _ = send(m, "192.0.2.42", sender="c@example.net")
    limited(replies[0], "2 messages per hour for example.net", 3600)


def test_refused_at_mail_without_delay_reject(moat_factory, dns_factory, backend, tmp_path):
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit client 1/1d\n", delay_reject="no")
    assert send(m, "192.0.2.3")[1].code == 250
    replies, _ = send(m, "192.0.2.3")
    limited(replies[0], "1 message per day for 192.0.2.3", 86400)


def test_not_delivered_does_not_count(moat_factory, dns_factory, backend, tmp_path):
    """A transaction that ends before DATA, and one the backend refuses at
    its end, give their message back: still exactly 2 delivered."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit client 2/1h\n")
    ip = "192.0.2.4"
    assert send(m, ip)[1].code == 250
    for _ in range(3):
        replies, final = send(m, ip, quit_before_data=True)
        assert replies[0].code == 250 and final is None
    replies, final = send(m, ip, rcpts=("reject-data@" + LOCAL_DOMAIN,))
    assert final.code == 554, final
    # the give-backs are not waited for: the next message may race them
    deadline = time.monotonic() + 10
    while True:
        replies, final = send(m, ip)
        if final is not None:
            break
        assert time.monotonic() < deadline, replies
        time.sleep(0.1)
    assert final.code == 250
    replies, _ = send(m, ip)
    limited(replies[0], "2 messages per hour for 192.0.2.4", 3600)
    assert len([x for x in backend.messages() if x.rcpts == [RCPT]]) == 2


def test_recipients_per_client(moat_factory, dns_factory, backend, tmp_path):
    """ratelimit client 5/1h recipients: 3 + 2 accepted, the sixth refused;
    a recipient the backend refuses does not count."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit client 5/1h recipients\n")
    ip = "192.0.2.5"
    rc = ["r%d@%s" % (i, LOCAL_DOMAIN) for i in range(8)]
    replies, final = send(m, ip, rcpts=rc[:3] + ["unknown@" + LOCAL_DOMAIN])
    assert [r.code for r in replies] == [250, 250, 250, 550] and final.code == 250
    replies, final = send(m, ip, rcpts=rc[3:6])
    assert [r.code for r in replies[:2]] == [250, 250], replies
    limited(replies[2], "5 recipients per hour for 192.0.2.5", 3600)
    msg = stored_message(backend, final)
    assert msg.rcpts == rc[3:5]


def test_refused_recipient_gives_back_only_its_own(moat_factory, dns_factory, backend, tmp_path):
    """A recipient the limit does not concern, refused by the backend, gives
    nothing back: the one before it, accepted, still counts."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path,
              "ratelimit client 2/1h recipients not rcpt unknown@%s\n" % LOCAL_DOMAIN)
    ip = "192.0.2.45"
    replies, final = send(m, ip, rcpts=("r0@" + LOCAL_DOMAIN, "unknown@" + LOCAL_DOMAIN))
    assert [r.code for r in replies] == [250, 550] and final.code == 250, replies
    replies, _ = send(m, ip, rcpts=("r1@" + LOCAL_DOMAIN, "r2@" + LOCAL_DOMAIN))
    assert replies[0].code == 250, replies
    limited(replies[1], "2 recipients per hour for %s" % ip, 3600)


# ------------------------------------------------------ per sender domain

def test_messages_per_sender_domain(moat_factory, dns_factory, backend, tmp_path):
    """ratelimit sender-domain 2/1h: counted across clients and users of a
    domain; another domain and the null sender are not concerned."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit sender-domain 2/1h\n")
    assert send(m, "192.0.2.6", sender="a@example.org")[1].code == 250
    assert send(m, "198.51.100.6", sender="b@EXAMPLE.org")[1].code == 250
    replies, _ = send(m, "203.0.113.6", sender="c@example.org")
    limited(replies[0], "2 messages per hour for example.org", 3600)
    assert send(m, "192.0.2.6", sender="a@example.net")[1].code == 250
    for _ in range(3):
        assert send(m, "192.0.2.6", sender="")[1].code == 250


# ------------------------------------------------------ per authenticated user

def test_messages_per_auth_user(moat_factory, certs, abackend, tmp_path):  # noqa: F811
    """ratelimit auth-user 2/1h above the default policy (whose accept
    authenticated would end the rules first): alice's third message is
    refused, bob's are not; unauthenticated clients are not counted."""
    rules = tmp_path / "auth.rules"
    rules.write_text("ratelimit auth-user 2/1h  id per-user\ninclude builtin:default\n")
    m = sub_moat(moat_factory, certs, _backend=abackend, rules=str(rules))
    for i in range(2):
        with authed(m.ports["smtps"]) as c:
            assert c.cmd("AUTH PLAIN " + plain()).code == 235
            assert c.transaction("alice@example.test", ["carol@elsewhere.example"], MSG).code == 250
    with authed(m.ports["submission"], how="submission") as c:
        assert c.cmd("AUTH PLAIN " + plain()).code == 235
        c.expect("MAIL FROM:<alice@example.test>", 250)
        r = c.cmd("RCPT TO:<carol@elsewhere.example>")
    limited(r, "2 messages per hour for %s" % USER, 3600)
    d = wait_decision(m, lambda l: l.get("rule_id") == "per-user")
    assert d["auth_user"] == USER and d["code"] == 451, d
    with authed(m.ports["smtps"]) as c:
        assert c.cmd("AUTH PLAIN " + plain("bob", "other-secret")).code == 235
        assert c.transaction("bob@example.test", ["carol@elsewhere.example"], MSG).code == 250


# ------------------------------------------------------------------ workers

def test_count_shared_by_workers(moat_factory, dns_factory, backend, tmp_path):
    """workers = 2: 4 of 7 messages from one client are delivered, whichever
    worker took each connection."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit client 4/1h\n", workers="2")
    m.logs.wait_count(lambda l: l.get("event") == "ready", 2)
    finals = [send(m, "192.0.2.8") for _ in range(7)]
    delivered = [f for r, f in finals if f is not None and f.code == 250]
    refused = [r[0] for r, f in finals if r[0].code == 451]
    assert len(delivered) == 4 and len(refused) == 3, finals
    assert all(r[0].code == 250 for r, f in finals[:4])
    m.logs.wait_count(lambda l: l.get("event") == "session_end" and l.get("client_ip") == "192.0.2.8", 7)
    workers = {l["worker"] for l in m.logs.snapshot() if l.get("client_ip") == "192.0.2.8" and "worker" in l}
    if workers != {0, 1}:
        pytest.skip("every connection landed on one worker (the kernel's choice): %r" % workers)


def test_store_down_counts_per_process(moat_factory, dns_factory, backend, tmp_path):
    """redis names a port nothing listens on: the limit still holds, counted
    by this moat alone (fail open), and its refusal says so."""
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit client 2/1h  id down\n",
              redis="127.0.0.1:%d" % free_port(), redis_timeout="200")
    for _ in range(2):
        assert send(m, "192.0.2.60")[1].code == 250
    replies, _ = send(m, "192.0.2.60")
    limited(replies[0], "2 messages per hour for 192.0.2.60", 3600)
    d = wait_decision(m, lambda l: l.get("rule_id") == "down")
    assert d["reason"] == "rate limit: 2 messages per hour per client (192.0.2.60), counted by this moat alone", d


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed (make deps)")
def test_count_in_redis(moat_factory, dns_factory, backend, tmp_path):
    """With redis: the count is Redis's key (every replica adds to it), exact
    at N across the workers."""
    r = Redis(tmp_path).start()
    try:
        m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit client 3/1h  id redis\n", redis=r.addr,
                  workers="2")
        finals = [send(m, "192.0.2.70") for _ in range(5)]
        assert [f.code if f else rs[0].code for rs, f in finals] == [250, 250, 250, 451, 451], finals
        limited(finals[3][0][0], "3 messages per hour for 192.0.2.70", 3600)
        assert r.client().call("EXISTS", "r:m:c:3/3600:192.0.2.70") == 1
        d = wait_decision(m, lambda l: l.get("rule_id") == "redis")
        assert "counted by this moat alone" not in d["reason"], d
    finally:
        r.stop()


def test_monitor_counts_nothing(moat_factory, dns_factory, backend, tmp_path):
    m = rmoat(moat_factory, dns_factory({}), tmp_path, "ratelimit monitor client 1/1h  id mon\n")
    for _ in range(3):
        assert send(m, "192.0.2.9")[1].code == 250
    h = wait_decision(m, lambda l: l.get("rule_id") == "mon")
    assert h["action"] == "would-ratelimit", h
