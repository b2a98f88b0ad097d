"""One policy across replicas (issue 17 item 5): two moat replicas behind a
real HAProxy (send-proxy-v2) share greylisting and rate limits in one real
redis-server, all on loopback.

- A triplet greylisted through replica A (its forced frontend) is too early,
  then passed, through replica B, and delivered once; the same from B to A;
  auto-allow counts the passes of both replicas.
- A rate limit counts across both replicas exactly: attempts alternating
  A/B from several threads at once, exactly N accepted and delivered, the
  rest refused 451 4.7.1 with the window's reset time by whichever replica
  they reached; messages per client, recipients per client, messages per
  sender domain; Redis's count is the accepted count.
- The fault run: 1,000 transactions through HAProxy's round robin with
  greylisting and a rate limit on, Redis killed and started again (empty)
  in the middle. Policy of the run (stated): every transaction ends with
  250 at the client, possibly after 4xx replies it retried (a real MTA's
  behaviour); the only 4xx allowed are greylisting's, and only for the
  marked triplets after Redis came back empty; no 5xx, nothing lost, nothing
  twice: each subject at the backend exactly once.

Clients connect from distinct loopback addresses (127.0.0.x): HAProxy
passes the real TCP peer in PROXY v2, which is what the replicas count."""

import re
import threading
import time

import pytest

from checkslib import base_zone
from moatlib import DEFAULT_TIMEOUT, SMTPClient, WaitTimeout, free_port
from replicas import HAProxy, RedisServer, Traffic, replicas, wait_sessions
from test_metrics import samples, scrape

SENDER = "alice@example.org"
DOMAIN = "example.test"
DELAY = 2                     # greylist_delay: the store counts whole seconds


def zone():
    z = base_zone()
    z["example.org"] = [("A", "192.0.2.10"), ("MX", (10, "mail.example.org")),
                        ("TXT", "v=spf1 ip4:127.0.0.0/24 -all")]
    z["limited.example"] = [("A", "192.0.2.11"), ("MX", (10, "mail.limited.example")),
                            ("TXT", "v=spf1 ip4:127.0.0.0/24 -all")]
    return z


class Shared:
    """Redis, two replicas using it (each with its own metrics port) and
    HAProxy in front of them."""

    def __init__(self, moat_factory, dns_factory, backend, tmp_path, rules, **keys):
        self.backend = backend
        self.redis = RedisServer(tmp_path).start()
        self.dns = dns_factory(zone())
        path = tmp_path / "shared.rules"
        path.write_text(rules)
        self.mports = [free_port(), free_port()]
        self.a, self.b = replicas(moat_factory, 2, per=[{"metrics_listen": "127.0.0.1:%d" % p}
                                                        for p in self.mports],
                                  dns_servers=self.dns.servers, delay_reject="no", rules=str(path),
                                  redis=self.redis.addr, **keys)
        for m in (self.a, self.b):   # each worker's connection answers before the first client
            m.logs.wait_count(lambda l: l.get("event") == "redis" and l["level"] == "info",
                              int(m.config.get("workers", 1)), what="Redis up in every worker")
        self.haproxy = HAProxy(tmp_path, {"a": self.a.port, "b": self.b.port}, inter_ms=100)
        self.haproxy.start([self.a, self.b])
        self.port = {"a": self.haproxy.port_of["a"], "b": self.haproxy.port_of["b"], "rr": self.haproxy.port}

    def stop(self):
        self.haproxy.stop()
        self.redis.stop()

    def attempt(self, via, source, sender, rcpts, subject):
        """One session through frontend via: the RCPT replies, and the DATA
        reply when one was accepted (else None)."""
        with SMTPClient(self.port[via], source=source) as c:
            assert c.banner.code == 220, c.banner
            c.ehlo("client.example.org")
            r = c.cmd("MAIL FROM:<%s>" % sender)
            if r.code != 250:
                c.expect("QUIT", 221)
                return r, [], None
            got = [c.cmd("RCPT TO:<%s>" % x) for x in rcpts]
            final = None
            if any(g.code == 250 for g in got):
                final = c.data(message(sender, subject))
            c.expect("QUIT", 221)
        return r, got, final

    def delivered(self, prefix):
        return [m for m in self.backend.messages() if subject_of(m).startswith(prefix)]


def message(sender, subject):
    return ("From: %s\r\nTo: someone@%s\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nHello.\r\n"
            % (sender, DOMAIN, subject, subject.replace(" ", "."))).encode()


def subject_of(m):
    return m.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode()


def greylisted(r):
    assert r.code == 451 and r.text.startswith("4.7.1 Greylisted, try again in "), r


def redis_now(redis):
    return int(redis.cmd("TIME")[0])


def fresh_window(redis, window, margin=30):
    """Redis's clock, at least margin seconds before the current fixed
    window ends (else: waits for the next one, so one run sees one window)."""
    now = redis_now(redis)
    left = window - now % window
    if left < margin:
        time.sleep(left + 1)   # the clock, not a synchronisation: rarely taken
        now = redis_now(redis)
    return now


# ---------------------------------------------------------------- greylisting

@pytest.fixture
def grey(moat_factory, dns_factory, backend, tmp_path):
    s = Shared(moat_factory, dns_factory, backend, tmp_path,
               'greylist not rcpt white@%s note "unknown triplet" id grey\ninclude builtin:default\n' % DOMAIN,
               greylist_delay=str(DELAY), greylist_retry_window="60", greylist_auto_allow="2")
    yield s
    s.stop()


def retry_until_passed(s, via, source, rcpt, subject, first_at):
    """Retries through via until the triplet passes: each refused retry is
    too early (the other replica's first attempt is in the store: a replica
    with a store of its own would say first time) and comes before the
    delay; the passing one after it. Returns the DATA reply."""
    m = s.a if via == "a" else s.b
    while True:
        mark = len(m.logs.snapshot())
        _, [r], final = s.attempt(via, source, SENDER, [rcpt], subject)
        now = time.monotonic()
        if r.code == 250:
            assert now - first_at > DELAY - 1, "passed %.2f s after the first attempt" % (now - first_at)
            return final
        greylisted(r)
        d = m.wait_log(lambda l: l.get("stage") == "rcpt" and l.get("rcpt") == rcpt, start=mark,
                       what="the retry's decision on %s" % via)
        assert d.get("greylist") == "early", d
        assert now - first_at < DELAY + 3, "still greylisted %.2f s after the first attempt" % (now - first_at)
        time.sleep(0.2)   # a client's pause between retries, not a synchronisation


def test_a_triplet_greylisted_on_one_replica_passes_on_the_other(grey):
    """Triplet 1 first through A, retried through B; triplet 2 first through
    B, retried through A (both waits run together). Each is delivered once.
    Then the network has passed twice, once on each replica: with
    greylist_auto_allow 2 a new triplet is allowed at once, on either."""
    s = grey
    src = "127.0.0.2"
    t1, t2 = "one@" + DOMAIN, "two@" + DOMAIN
    first_at = time.monotonic()
    for via, rcpt in (("a", t1), ("b", t2)):
        _, [r], final = s.attempt(via, src, SENDER, [rcpt], "never")
        greylisted(r)
        assert final is None
        m = s.a if via == "a" else s.b
        d = m.wait_log(lambda l: l.get("stage") == "rcpt" and l.get("rcpt") == rcpt, what="first attempt")
        assert (d["greylist"], d["client_ip"]) == ("first", src), d
    assert s.backend.messages() == []
    results = {}

    def retry(via, rcpt, subject):
        results[subject] = retry_until_passed(s, via, src, rcpt, subject, first_at)
    threads = [threading.Thread(target=retry, args=("b", t1, "grey a to b")),
               threading.Thread(target=retry, args=("a", t2, "grey b to a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DELAY + DEFAULT_TIMEOUT)
    assert sorted(results) == ["grey a to b", "grey b to a"], results
    assert all(r.code == 250 for r in results.values()), results
    stored = s.backend.wait_stored(2)
    assert sorted(subject_of(m) for m in stored) == ["grey a to b", "grey b to a"]   # once each
    assert [m.rcpts for m in stored] == [[t2], [t1]] or [m.rcpts for m in stored] == [[t1], [t2]], stored
    for m, subject in ((s.b, "grey a to b"), (s.a, "grey b to a")):
        d = m.wait_log(lambda l: l.get("stage") == "data" and l.get("subject") == subject, what=subject)
        assert (d["action"], d["greylist"]) == ("accept", "passed"), d
    assert s.redis.cmd("GET", "g:127.0.0.0/24|%s|%s" % (SENDER, t1)) == "p"
    assert s.redis.cmd("GET", "ga:127.0.0.0/24") == "2"   # a pass on each replica

    # auto-allow: both passes counted together, a third triplet is not greylisted on either
    for via, m in (("a", s.a), ("b", s.b)):
        rcpt = "three-%s@%s" % (via, DOMAIN)
        subject = "allowed via %s" % via
        _, [r], final = s.attempt(via, src, SENDER, [rcpt], subject)
        assert r.code == 250 and final.code == 250, (r, final)
        d = m.wait_log(lambda l: l.get("stage") == "data" and l.get("subject") == subject, what=subject)
        assert d["greylist"] == "allowed", d
    assert len(s.backend.wait_stored(4)) == 4


# ---------------------------------------------------------------- rate limits

LIMIT = 10
MSG_CLIENT, RCPT_CLIENT, DOMAIN_CLIENTS = "127.0.0.5", "127.0.0.6", ("127.0.0.7", "127.0.0.8", "127.0.0.9")
LIMIT_RULES = ("ratelimit client %d/1h client %s\n"
               "ratelimit client %d/1h recipients client %s\n"
               "ratelimit sender-domain %d/1h sender-domain limited.example\n"
               "include builtin:default\n" % (LIMIT, MSG_CLIENT, LIMIT, RCPT_CLIENT, LIMIT))


@pytest.fixture
def limits(moat_factory, dns_factory, backend, tmp_path):
    s = Shared(moat_factory, dns_factory, backend, tmp_path, LIMIT_RULES, workers="2")
    yield s
    s.stop()


def limited(r, unit, subject, reset_at):
    """451 4.7.1 with the window's reset time (Redis's clock)."""
    hms = time.strftime("%H:%M:%S", time.gmtime(reset_at))
    assert r.code == 451 and r.enhanced() == ["4.7.1"], r
    assert re.fullmatch(r"4\.7\.1 Rate limit of %d %s per hour for %s reached, try again after (\S+ )?%s UTC"
                        % (LIMIT, unit, re.escape(subject), hms), r.text), (r, hms)


def race(n, threads, one):
    """one(k) for k in range(n), by `threads` threads at once; the results in order."""
    out = [None] * n
    it = iter(range(n))
    lock = threading.Lock()
    errors = []

    def work():
        while True:
            with lock:
                k = next(it, None)
            if k is None:
                return
            try:
                out[k] = one(k)
            except Exception as e:   # reported below
                errors.append(e)
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    if errors:
        raise errors[0]
    return out


def wait_redis(redis, key, field, want, timeout=DEFAULT_TIMEOUT):
    """The key's count reaches want (give-backs are not waited for by moat)."""
    deadline = time.monotonic() + timeout
    while True:
        got = redis.cmd("HGET", key, field)
        if got == str(want):
            return
        if time.monotonic() > deadline:
            raise WaitTimeout("redis %s %s is %r, expected %d" % (key, field, got, want))
        time.sleep(0.05)


def test_a_messages_limit_counts_across_replicas_exactly(limits):
    s = limits
    reset_at = fresh_window(s.redis, 3600) // 3600 * 3600 + 3600
    n = 2 * LIMIT + 6
    out = race(n, 4, lambda k: s.attempt("ab"[k % 2], MSG_CLIENT, SENDER, ["m%d@%s" % (k, DOMAIN)],
                                         "msg limit %d" % k))
    accepted = [k for k, (mail, rc, final) in enumerate(out) if mail.code == 250]
    assert len(accepted) == LIMIT, [(k, o[0]) for k, o in enumerate(out)]
    for k, (mail, rc, final) in enumerate(out):
        if mail.code == 250:
            assert final.code == 250, (k, final)
        else:
            limited(mail, "messages", MSG_CLIENT, reset_at)
    assert {k % 2 for k in accepted} == {0, 1}, accepted   # both replicas accepted some
    refused = [k for k in range(n) if k not in accepted]
    assert {k % 2 for k in refused} == {0, 1}, refused   # both replicas refused some
    stored = s.backend.wait_stored(LIMIT)
    assert sorted(subject_of(m) for m in stored) == sorted("msg limit %d" % k for k in accepted)
    wait_redis(s.redis, "r:m:c:%d/3600:%s" % (LIMIT, MSG_CLIENT), "n", LIMIT)


def test_a_recipients_limit_counts_across_replicas_exactly(limits):
    s = limits
    reset_at = fresh_window(s.redis, 3600) // 3600 * 3600 + 3600
    n = 8
    out = race(n, 4, lambda k: s.attempt("ab"[k % 2], RCPT_CLIENT, SENDER,
                                         ["r%d-%d@%s" % (k, i, DOMAIN) for i in range(3)], "rcpt limit %d" % k))
    ok = 0
    for k, (mail, rcpts, final) in enumerate(out):
        assert mail.code == 250, mail
        for r in rcpts:
            if r.code == 250:
                ok += 1
            else:
                limited(r, "recipients", RCPT_CLIENT, reset_at)
        assert (final is not None and final.code == 250) == any(r.code == 250 for r in rcpts), (k, final)
    assert ok == LIMIT, out
    with_rcpts = [k for k, o in enumerate(out) if o[2] is not None]
    stored = s.backend.wait_stored(len(with_rcpts))
    assert sorted(subject_of(m) for m in stored) == sorted("rcpt limit %d" % k for k in with_rcpts)
    assert sum(len(m.rcpts) for m in stored) == LIMIT
    assert {k % 2 for k in with_rcpts} == {0, 1}
    wait_redis(s.redis, "r:r:c:%d/3600:%s" % (LIMIT, RCPT_CLIENT), "n", LIMIT)


def test_a_sender_domain_limit_counts_across_replicas_exactly(limits):
    """Three clients, one sender domain, both replicas: one count."""
    s = limits
    reset_at = fresh_window(s.redis, 3600) // 3600 * 3600 + 3600
    n = 2 * LIMIT + 4
    out = race(n, 6, lambda k: s.attempt("ab"[k % 2], DOMAIN_CLIENTS[k % 3], "carol@limited.example",
                                         ["d%d@%s" % (k, DOMAIN)], "domain limit %d" % k))
    accepted = [k for k, o in enumerate(out) if o[0].code == 250]
    assert len(accepted) == LIMIT, [o[0] for o in out]
    for k, (mail, rc, final) in enumerate(out):
        if mail.code == 250:
            assert final.code == 250, (k, final)
        else:
            limited(mail, "messages", "limited.example", reset_at)
    stored = s.backend.wait_stored(LIMIT)
    assert sorted(subject_of(m) for m in stored) == sorted("domain limit %d" % k for k in accepted)
    wait_redis(s.redis, "r:m:d:%d/3600:limited.example" % LIMIT, "n", LIMIT)


# ------------------------------------------------------------- the fault run

RUN, KILL_AT, START_AT, WORKERS = 1000, 300, 600, 2
MARKED = 4                    # triplets greylisted: every 10th transaction goes to one
AFTER = "after@" + DOMAIN     # greylisted too, asked only after the run


def marked(k):
    return k % 10 == 0


def rcpt_of(k):
    return "g%d@%s" % (k // 10 % MARKED, DOMAIN) if marked(k) else "bob@" + DOMAIN


def redis_metrics(port):
    s = samples(scrape(port))
    return {(name[len("moat_redis_"):] + "".join("{%s}" % v for _, v in labels)): int(v)
            for (name, labels), v in s.items() if name.startswith("moat_redis_")}


def test_a_run_of_1000_with_redis_killed_and_restarted_in_the_middle(moat_factory, dns_factory, backend,
                                                                      tmp_path):
    """Greylisting on for the marked triplets (passed before the run), a
    rate limit the run never reaches (every message asks the store), two
    workers per replica, 8 clients through HAProxy's round robin; Redis
    killed at transaction 300 and started again, empty, at 600. While Redis
    is up the marked triplets are looked up (passed), while it is down they
    are skipped (fail open), and once a replica is back on the empty Redis
    they are greylisted again: the client retries those 451s until they
    pass. Nothing else may be refused, nothing lost or delivered twice; each
    worker logs Redis lost and back once; after the run both replicas share
    greylisting again."""
    rules = "".join("greylist rcpt %s id grey%d\n" % (r, i) for i, r in enumerate(
        [rcpt_of(10 * i) for i in range(MARKED)] + [AFTER])) + \
        "ratelimit client 100000/1h id big\ninclude builtin:default\n"
    s = Shared(moat_factory, dns_factory, backend, tmp_path, rules, workers=str(WORKERS),
               greylist_delay="1", greylist_retry_window="600", greylist_auto_allow="0")
    src = "127.0.0.2"
    try:
        # the marked triplets pass before the run (first attempt, then retries)
        first_at = time.monotonic()
        for i in range(MARKED):
            greylisted(s.attempt("rr", src, SENDER, [rcpt_of(10 * i)], "never")[1][0])
        for i in range(MARKED):
            while s.attempt("rr", src, SENDER, [rcpt_of(10 * i)], "pre-pass %d" % i)[1][0].code != 250:
                assert time.monotonic() - first_at < 10, "the marked triplets never passed"
                time.sleep(0.2)   # a client's pause between retries
        s.backend.wait_stored(MARKED)
        marks = [len(m.logs.snapshot()) for m in (s.a, s.b)]
        before = [redis_metrics(p) for p in s.mports]
        t = Traffic(s.port["rr"], RUN, concurrency=8, source=src, sender=SENDER, rcpt=rcpt_of,
                    prefix="fault run", retry_4xx=0.25)
        when = {}

        def fault(name, do):
            def run():   # when it began and when it was done (Redis gone; Redis answering again)
                when[name] = time.monotonic()
                do()
                when[name + " done"] = time.monotonic()
            return run
        t0 = time.monotonic()
        replies = t.run(at={KILL_AT: fault("kill", s.redis.kill), START_AT: fault("start", s.redis.start)})
        duration = time.monotonic() - t0
        assert s.redis.starts == 2

        bad = {x: c for x, c in replies.items() if c != 250}
        assert not bad and len(replies) == RUN, bad
        for subject, got in t.retried.items():   # greylisting's 451s only, for marked triplets
            k = int(subject.split()[-1])
            assert marked(k) and all(x.startswith("451 4.7.1 Greylisted") for x in got), (subject, got)
        stored = s.backend.wait_stored(MARKED + RUN)
        subjects = sorted(subject_of(m) for m in stored if subject_of(m).startswith("fault run"))
        assert subjects == t.accepted() == sorted("fault run %d" % k for k in range(RUN))   # once each
        sessions = wait_sessions([s.a, s.b], 2 * MARKED + RUN + sum(map(len, t.retried.values())))

        # greylisting asked while Redis was up, skipped while down, greylisted again after
        states = {}
        for m, mark in zip((s.a, s.b), marks):
            for l in m.logs.snapshot()[mark:]:
                if l.get("greylist") and l.get("stage") in ("rcpt", "data"):
                    states[l["greylist"]] = states.get(l["greylist"], 0) + 1
        assert states.get("passed", 0) > 0 and states.get("skipped", 0) > 0, states

        # each worker: Redis lost once, back once
        for m, mark in zip((s.a, s.b), marks):
            lost = lambda l: l.get("event") == "redis" and l["level"] == "warning"
            back = lambda l: l.get("event") == "redis" and l["level"] == "info"
            m.logs.wait_count(back, 2 * WORKERS, timeout=30, what="Redis back in every worker")
            lines = [l for l in m.logs.snapshot() if l.get("event") == "redis"]
            for w in {l["worker"] for l in lines}:
                assert [l["level"] for l in lines if l["worker"] == w] == ["info", "warning", "info"], lines
            assert len({l["worker"] for l in lines}) == WORKERS, lines
            assert len([l for l in lines if lost(l)]) == WORKERS, lines
        # back in use by both: a new triplet, first on a, too early on b (the
        # replicas reconnect with backoff: in a loaded run they may have come
        # back only after its last transaction, so this is asked afterwards)
        for via, m, state in (("a", s.a, "first"), ("b", s.b, "early")):
            mark = len(m.logs.snapshot())
            greylisted(s.attempt(via, src, SENDER, [AFTER], "never")[1][0])
            d = m.wait_log(lambda l: l.get("stage") == "rcpt" and l.get("rcpt") == AFTER, start=mark,
                           what="the decision after the run")
            assert d["greylist"] == state, d
        after = [redis_metrics(p) for p in s.mports]
        for b, a in zip(before, after):
            assert a["state_changes_total{down}"] - b.get("state_changes_total{down}", 0) == WORKERS, (b, a)
            assert a["state_changes_total{up}"] - b["state_changes_total{up}"] == WORKERS, (b, a)
            assert a["up"] == 1

        # the figures (shown with -s, kept in the report)
        down = [x for x, (start, end) in t.times.items() if when["kill done"] <= start and end <= when["start"]]
        print("\nfault run: %d transactions in %.2f s (%.0f/s), 8 clients, 2 replicas x %d workers; "
              "Redis down %.2f s (killed to ready again), %d transactions wholly within it; greylisting: %s; "
              "%d transactions retried (%d 451s)" % (RUN, duration, RUN / duration, WORKERS,
                                                     when["start done"] - when["kill"], len(down),
                             states, len(t.retried), sum(map(len, t.retried.values()))))
        for name, b, a in zip("ab", before, after):
            print("replica %s /metrics during the run: %s" % (name, {k: a[k] - b.get(k, 0) for k in sorted(a)
                                                                   if a[k] != b.get(k, 0)}))
        for name, m in (("a", s.a), ("b", s.b)):
            for l in m.logs.snapshot():
                if l.get("event") == "redis":
                    print("replica %s worker %s %s: %s" % (name, l["worker"], l["level"], l["msg"]))
        print("sessions: a %d, b %d" % tuple(map(len, sessions)))
    finally:
        s.stop()
