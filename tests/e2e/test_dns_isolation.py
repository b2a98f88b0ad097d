"""DNS isolation: a sender domain whose nameserver never answers must not
slow down anyone else. While N sessions wait for lookups in a black-holed
domain (every query under it is read and dropped), M deliveries for other
domains - each needing fresh lookups of its own - complete at full speed,
far inside the DNS timeout; the waiting sessions then end with 451 4.4.3
(sender domain) once dns_timeout * dns_tries has passed. The same holds for
DKIM key lookups at the end of data."""

import select
import threading
import time

import pytest

import dkimsign
from checkslib import (RCPT, authres_of, base_zone, checks_moat, connect,
                       simple_message, stored_message)
from dkimsign import key_name, signed

DNS_TIMEOUT_MS = 4000
N_SLOW = 10
M_GOOD = 20
BLACKHOLE = "blackhole.example"


def zone():
    z = base_zone()
    for i in range(M_GOOD):
        d = "good%d.example" % i
        z[d] = [("MX", (10, "mx.%s" % d)), ("TXT", "v=spf1 ip4:127.0.0.0/8 -all")]
        z["mx." + d] = [("A", "192.0.2.70")]
        z[key_name("k", d)] = [("TXT", dkimsign.key("ed25519").txt)]
    return z


@pytest.fixture
def zdns(dns_factory):
    return dns_factory(zone(), drop_domains=[BLACKHOLE])


@pytest.fixture
def imoat(moat_factory, zdns, backend):
    return checks_moat(moat_factory, zdns, dns_timeout=DNS_TIMEOUT_MS, dns_tries=1,
                       max_connections_per_ip=200, max_connections=500)


def has_data(sock):
    r, _w, _x = select.select([sock], [], [], 0)
    return bool(r)


def run_parallel(fn, n):
    """fn(i) in n threads at once; returns (results, errors, seconds)."""
    results, errors = [None] * n, []
    go = threading.Barrier(n + 1)

    def worker(i):
        try:
            go.wait()
            results[i] = fn(i)
        except BaseException as e:   # reported by the caller
            errors.append((i, e))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    go.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(60)
    return results, errors, time.monotonic() - t0


def test_blackholed_sender_domain_does_not_slow_others(imoat, zdns, backend):
    budget = DNS_TIMEOUT_MS / 1000.0
    # N sessions stuck in MAIL, each on its own name in the black hole
    slow = []
    for i in range(N_SLOW):
        c = connect(imoat, timeout=budget + 10)
        c.ehlo()
        c.send("MAIL FROM:<user@s%d.%s>\r\n" % (i, BLACKHOLE))
        slow.append((c, time.monotonic()))
    zdns.wait_query(lambda n, t: n.endswith("." + BLACKHOLE) and t == "MX", N_SLOW,
                    what="the MX queries of the stuck sessions")

    def good(i):
        msg = simple_message("good %d" % i)
        t0 = time.monotonic()
        with connect(imoat) as c:
            c.ehlo()
            c.expect("MAIL FROM:<user@good%d.example>" % i, 250)
            c.expect("RCPT TO:<%s>" % RCPT, 250)
            r = c.data(msg)
            assert r.code == 250, r
            c.expect("QUIT", 221)
        return time.monotonic() - t0

    times, errors, took = run_parallel(good, M_GOOD)
    stuck_now = [not has_data(c.sock) for c, _t in slow]
    assert not errors, errors
    print("\n%d good deliveries in %.3f s (slowest %.3f s) beside %d sessions stuck in DNS (timeout %.1f s)" % (
        M_GOOD, took, max(times), N_SLOW, budget))
    assert len(backend.wait_stored(M_GOOD)) == M_GOOD
    # every good domain was really looked up (nothing came from a cache)
    asked = {n for n, t, _ in zdns.queries() if t == "MX"}
    assert all("good%d.example" % i in asked for i in range(M_GOOD)), asked
    # full speed: all M deliveries, side by side, in a quarter of the timeout
    assert took < budget / 4, "good deliveries took %.2f s (max single %.2f s) with DNS timeout %.1f s" % (
        took, max(times), budget)
    assert all(stuck_now), "a black-holed session was answered before its DNS timeout"

    # the stuck ones end with 451 4.4.3, after the timeout and not much later
    for c, t0 in slow:
        r = c.reply(timeout=budget + 10)
        waited = time.monotonic() - t0
        assert r.code == 451 and r.enhanced() == ["4.4.3"], r
        assert budget * 0.9 <= waited < budget + 3, waited
        c.expect("QUIT", 221)
        c.close()
    # the log is read by a thread: wait for the lines, then look at them
    is_tf = lambda l: "action" in l and l.get("stage") == "mail" and l.get("code") == 451
    imoat.logs.wait_count(is_tf, N_SLOW, 10, what="mail-stage 451 decision lines")
    tf = [l for l in imoat.decisions() if is_tf(l)]
    assert len(tf) == N_SLOW and all(l["sender_domain"] == "tempfail" for l in tf), tf


def test_blackholed_dkim_key_does_not_slow_others(imoat, zdns, backend):
    """N messages whose DKIM key lives in the black hole wait at the end of
    data; M signed messages with reachable keys pass at full speed; the
    stuck ones are then delivered with dkim=temperror (not refused)."""
    budget = DNS_TIMEOUT_MS / 1000.0
    ed = dkimsign.key("ed25519")
    slow = []
    for i in range(N_SLOW):
        plain = simple_message("stuck %d" % i)
        msg = signed(plain, ed, "s%d.%s" % (i, BLACKHOLE), "k")
        c = connect(imoat, timeout=budget + 10)
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.org>", 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        c.expect("DATA", 354)
        c.send(msg + b".\r\n")
        slow.append((c, time.monotonic(), msg))
    zdns.wait_query(lambda n, t: n.endswith("." + BLACKHOLE) and "_domainkey" in n, N_SLOW,
                    what="the key queries of the stuck messages")

    def good(i):
        plain = simple_message("good signed %d" % i)
        msg = signed(plain, ed, "good%d.example" % i, "k")
        with connect(imoat) as c:
            c.ehlo()
            c.expect("MAIL FROM:<user@good%d.example>" % i, 250)
            c.expect("RCPT TO:<%s>" % RCPT, 250)
            r = c.data(msg)
            st = stored_message(backend, r)
            c.expect("QUIT", 221)
        ar = authres_of(st, msg)
        assert [s["result"] for s in ar["dkim"]] == ["pass"], ar

    _r, errors, took = run_parallel(good, M_GOOD)
    stuck_now = [not has_data(c.sock) for c, _t, _m in slow]
    assert not errors, errors
    print("\n%d signed deliveries in %.3f s beside %d messages waiting for keys (timeout %.1f s)" % (
        M_GOOD, took, N_SLOW, budget))
    assert took < budget / 4, "good deliveries took %.2f s with DNS timeout %.1f s" % (took, budget)
    assert all(stuck_now), "a message with a black-holed key was answered before the DNS timeout"

    for c, t0, msg in slow:
        r = c.reply(timeout=budget + 10)
        waited = time.monotonic() - t0
        st = stored_message(backend, r)
        assert budget * 0.9 <= waited < budget + 3, waited
        ar = authres_of(st, msg)
        assert [s["result"] for s in ar["dkim"]] == ["temperror"], ar
        c.close()


def test_many_sessions_one_query(moat_factory, dns_factory, backend):
    """Sessions asking for the same sender domain at once share one lookup
    (coalesced in flight, or answered from the cache): the nameserver sees
    one MX query, and every session gets its answer when it comes."""
    ev = threading.Event()
    z = zone()
    z["shared.example"] = [("HOLD", ev), ("MX", (10, "mx.good0.example"))]
    zd = dns_factory(z)
    m = checks_moat(moat_factory, zd, check_spf="no", dns_timeout=10000, dns_tries=1)
    clients = []
    try:
        for i in range(8):
            c = connect(m)
            c.ehlo()
            c.send("MAIL FROM:<u%d@shared.example>\r\n" % i)
            clients.append(c)
        zd.wait_query(lambda n, t: n == "shared.example" and t == "MX")
        ev.set()
        assert [c.reply().code for c in clients] == [250] * 8
    finally:
        ev.set()
        for c in clients:
            c.close()
    assert [q[:2] for q in zd.queries() if q[0] == "shared.example"] == [("shared.example", "MX")]
