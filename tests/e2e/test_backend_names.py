"""backend (and submission_backend) by DNS name and as a list: the name
resolved through moat's own resolver (c-ares, the loopback DNS server here),
A and AAAA, asked again by TTL, each address tried in turn; a list tried in
order (failover); NXDOMAIN and SERVFAIL; a reload that changes the backend;
moat -t. Two recording backends listen on 127.0.0.2 and 127.0.0.3 with the
same port, so that the name alone says which one gets the mail."""

import signal
import threading
import time

import pytest

from moatlib import SMTPClient, free_port, run_moat_t

SENDER = "alice@example.org"
RCPT = "bob@example.test"
NAME = "mta.mail.svc.cluster.local"
A_IP, B_IP = "127.0.0.2", "127.0.0.3"
# moat asks a name again after its TTL, at the soonest MOAT_BACKEND_TTL_MIN
# (5 s) after the answer; the tests' answers say 6
TTL = 6


def message(tag):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nbody %s\r\n" % (SENDER, RCPT, tag, tag)).encode()


def send(m, tag):
    with SMTPClient(m.port) as c:
        c.ehlo()
        r = c.transaction(SENDER, [RCPT], message(tag))
        assert r.code == 250, r
        c.cmd("QUIT")


def subjects(stored):
    """The subjects of a backend's messages (or of a list of them), in order."""
    msgs = stored.messages() if hasattr(stored, "messages") else stored
    return [m.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in msgs]


@pytest.fixture
def pair(backend_factory):
    """Two backends with one port: A on 127.0.0.2, B on 127.0.0.3."""
    for _ in range(20):
        a = backend_factory(host=A_IP)
        try:
            b = backend_factory(host=B_IP, port=a.port)
            return a, b
        except Exception:
            a.stop()
    raise RuntimeError("no port free on both 127.0.0.2 and 127.0.0.3")


@pytest.fixture
def zone(dns_factory):
    d = dns_factory()
    d.resolver.ttl = TTL
    return d


def dns_log(m, pred, start=0, what="backend_dns line"):
    return m.wait_log(lambda l: l.get("event") == "backend_dns" and pred(l.get("msg", "")), start=start,
                      what=what)


def test_name_moves_between_backends_after_its_ttl(pair, zone, moat_factory):
    """The name points at A, then at B: after the TTL the next transactions
    go to B, pooled connections to A included (backend_cache_time), and
    none is lost or duplicated."""
    a, b = pair
    zone.zone[NAME] = [("A", A_IP)]
    m = moat_factory(backend="%s:%d" % (NAME, a.port), dns_servers=zone.servers, backend_cache_time=60)
    send(m, "one")
    send(m, "two")
    a.wait_stored(2)
    dns_log(m, lambda t: "has the address 127.0.0.2" in t)
    zone.zone[NAME] = [("A", B_IP)]
    commands_a = len(a.commands())
    # asked again when the TTL runs out (the name is in use), without a transaction
    dns_log(m, lambda t: "has the address 127.0.0.3 (was: 127.0.0.2)" in t, what="the new address")
    for tag in ("three", "four", "five"):
        send(m, tag)
    b.wait_stored(3)
    assert subjects(a) == ["one", "two"]
    assert subjects(b) == ["three", "four", "five"]
    # the connection A had in the pool served nothing after the move (QUIT at most)
    assert [c for c in a.commands()[commands_a:] if c.upper() != "QUIT"] == []


def test_each_address_of_a_name_in_turn(pair, zone, moat_factory):
    """The name's first address refuses connections: the next one takes the
    mail, and the refusal is logged once, not per message."""
    a, b = pair
    a.stop()  # nothing listens on 127.0.0.2 any more
    zone.zone[NAME] = [("A", A_IP), ("A", B_IP)]
    m = moat_factory(backend="%s:%d" % (NAME, b.port), dns_servers=zone.servers)
    for tag in ("one", "two", "three"):
        send(m, tag)
    b.wait_stored(3)
    assert subjects(b) == ["one", "two", "three"]
    m.wait_log(lambda l: l.get("event") == "backend" and "127.0.0.2" in l.get("msg", ""))
    m.wait_session_end(3)
    down = [l for l in m.log_lines(event="backend") if "does not answer" in l["msg"]]
    assert len(down) == 1, down
    assert "%s:%d at 127.0.0.2:%d does not answer (Connection refused): trying the next" % (
        NAME, b.port, b.port) in down[0]["msg"]


def test_ipv6_address_of_a_name(backend_factory, zone, moat_factory):
    """AAAA: the name's IPv6 address is used when it has no IPv4 one."""
    try:
        b = backend_factory(host="::1")
    except Exception:
        pytest.skip("no IPv6 loopback")
    zone.zone[NAME] = [("AAAA", "::1")]
    m = moat_factory(backend="%s:%d" % (NAME, b.port), dns_servers=zone.servers)
    send(m, "six")
    assert subjects(b.wait_stored(1)) == ["six"]


def test_list_fails_over_in_order(backend_factory, moat_factory):
    """backend = first, second: the first that answers takes each message;
    when the first is back, new connections go to it again."""
    first_port = free_port()
    second = backend_factory()
    m = moat_factory(backend="127.0.0.1:%d, 127.0.0.1:%d" % (first_port, second.port))
    send(m, "one")
    send(m, "two")
    assert subjects(second.wait_stored(2)) == ["one", "two"]
    first = backend_factory(port=first_port)
    send(m, "three")
    assert subjects(first.wait_stored(1)) == ["three"]
    m.wait_log(lambda l: l.get("event") == "backend" and "answers again" in l.get("msg", ""))
    assert len(second.messages()) == 2
    down = [l for l in m.log_lines(event="backend") if "does not answer" in l["msg"]]
    assert len(down) == 1, down


def test_list_of_names_fails_over_to_the_second(pair, zone, moat_factory):
    """A list of names: the first has no address (NXDOMAIN), the second's
    backend refuses connections on its first address, the third address
    answers."""
    a, b = pair
    zone.zone["mx2.test.example"] = [("A", A_IP), ("A", B_IP)]
    a.stop()
    m = moat_factory(backend="mx1.test.example:%d, mx2.test.example:%d" % (b.port, b.port),
                     dns_servers=zone.servers)
    send(m, "seven")
    assert subjects(b.wait_stored(1)) == ["seven"]


def test_nxdomain_451_then_the_name_appears(pair, zone, moat_factory):
    """A name that does not exist: 451 4.4.3 at RCPT, logged once however
    many sessions; when the name appears, mail flows (asked again every
    MOAT_BACKEND_DNS_RETRY seconds while needed)."""
    a, _b = pair
    m = moat_factory(backend="%s:%d" % (NAME, a.port), dns_servers=zone.servers)
    for _ in range(3):
        with SMTPClient(m.port) as c:
            c.ehlo()
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            r = c.cmd("RCPT TO:<%s>" % RCPT)
            assert (r.code, r.enhanced()[0]) == (451, "4.4.3"), r
            assert "backend address not known" in r.text
            c.cmd("QUIT")
    m.wait_session_end(3)
    none = [l for l in m.log_lines(event="backend_dns") if "has no address" in l["msg"]]
    assert len(none) == 1, none
    assert "NXDOMAIN" in none[0]["msg"]
    rcpt = [d for d in m.decisions() if d.get("stage") == "rcpt"]
    assert rcpt and all("no address for backend %s:%d (NXDOMAIN" % (NAME, a.port) in d.get("reason", "")
                        for d in rcpt), rcpt
    zone.zone[NAME] = [("A", A_IP)]
    deadline = time.monotonic() + 30
    while True:  # each attempt is a real transaction; moat asks DNS again at most every 5 s
        with SMTPClient(m.port) as c:
            c.ehlo()
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            r = c.cmd("RCPT TO:<%s>" % RCPT)
            if r.code == 250:
                assert c.data(message("late")).code == 250
                break
            assert (r.code, r.enhanced()[0]) == (451, "4.4.3"), r
            assert time.monotonic() < deadline, "the name never took effect"
            zone.wait_query(lambda q, t: q == NAME and t == "A",
                            n=len([q for q in zone.queries() if q[0] == NAME and q[1] == "A"]) + 1)
    assert subjects(a.wait_stored(1)) == ["late"]


def test_servfail_keeps_the_last_answer(pair, zone, moat_factory):
    """DNS fails after a good answer: the last addresses are kept (logged
    once), mail goes on to them."""
    a, _b = pair
    zone.zone[NAME] = [("A", A_IP)]
    m = moat_factory(backend="%s:%d" % (NAME, a.port), dns_servers=zone.servers)
    send(m, "one")
    a.wait_stored(1)
    zone.zone[NAME] = [("SERVFAIL", None)]
    dns_log(m, lambda t: "keeping its last addresses (127.0.0.2)" in t, what="DNS failing, addresses kept")
    send(m, "two")
    assert subjects(a.wait_stored(2)) == ["one", "two"]


def test_nxdomain_after_a_good_answer_drops_it(pair, zone, moat_factory):
    """NXDOMAIN is DNS answering, not failing: the name's old addresses are
    not kept (they may be someone else's now); RCPT gets 451 4.4.3."""
    a, _b = pair
    zone.zone[NAME] = [("A", A_IP)]
    m = moat_factory(backend="%s:%d" % (NAME, a.port), dns_servers=zone.servers)
    send(m, "one")
    a.wait_stored(1)
    del zone.zone[NAME]
    dns_log(m, lambda t: "has no address (NXDOMAIN" in t, what="the name gone")
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 451, "4.4.3")
    assert subjects(a) == ["one"]


def test_servfail_from_the_start_is_451(pair, zone, moat_factory):
    a, _b = pair
    zone.zone[NAME] = [("SERVFAIL", None)]
    m = moat_factory(backend="%s:%d" % (NAME, a.port), dns_servers=zone.servers)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 451, "4.4.3")
    dns_log(m, lambda t: "has no address (DNS fails" in t)


def test_resolving_holds_up_no_other_session(pair, zone, moat_factory):
    """While the backend's name is being looked up (the DNS server holds its
    answer), other sessions are served: the lookup is c-ares on the loop,
    not a blocking call."""
    a, _b = pair
    held = threading.Event()
    zone.zone[NAME] = [("HOLD", held), ("A", A_IP)]
    m = moat_factory(backend="%s:%d" % (NAME, a.port), dns_servers=zone.servers, dns_timeout=20000,
                     dns_tries=1)
    waiting = SMTPClient(m.port)
    waiting.ehlo()
    waiting.expect("MAIL FROM:<%s>" % SENDER, 250)
    waiting.send("RCPT TO:<%s>\r\n" % RCPT)
    zone.wait_query(lambda q, t: q == NAME)
    try:
        for _ in range(3):
            with SMTPClient(m.port, timeout=3) as other:
                other.ehlo()
                other.expect("MAIL FROM:<%s>" % SENDER, 250)
                other.expect("NOOP", 250)
                other.cmd("QUIT")
    finally:
        held.set()
    assert waiting.reply().code == 250
    assert waiting.data(message("held")).code == 250
    waiting.close()
    assert subjects(a.wait_stored(1)) == ["held"]


def test_reload_moves_the_backend_to_a_name(pair, zone, moat_factory):
    """SIGHUP with backend changed from an address to a name: the next
    transactions go where the name points; the pooled connection to the old
    backend is not used again."""
    a, b = pair
    zone.zone[NAME] = [("A", B_IP)]
    m = moat_factory(backend="%s:%d" % (A_IP, a.port), dns_servers=zone.servers, backend_cache_time=60)
    send(m, "one")
    a.wait_stored(1)
    n = len(m.logs.snapshot())
    m.config["backend"] = "%s:%d" % (NAME, b.port)
    m.write_config()
    m.signal(signal.SIGHUP)
    m.wait_log(lambda l: l.get("event") == "reload" and "reloaded" in l.get("msg", ""), start=n)
    send(m, "two")
    assert subjects(b.wait_stored(1)) == ["two"]
    assert subjects(a) == ["one"]


def test_moat_t_names_and_lists(pair, zone, moat_factory):
    """moat -t asks every backend of the list, a name through moat's own
    resolver: one line each; a name that does not exist is an error."""
    a, b = pair
    zone.zone[NAME] = [("A", A_IP)]
    closed = free_port()
    m = moat_factory(_start=False, backend="%s:%d, 127.0.0.1:%d" % (NAME, a.port, closed),
                     dns_servers=zone.servers)
    p = run_moat_t(m.conf_path)
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr)
    assert ": backend %s:%d at 127.0.0.2:%d: smtputf8=" % (NAME, a.port, a.port) in out, out
    assert ": warning: backend 127.0.0.1:%d not reachable (Connection refused): moat starts without it, " \
           "and says 451 4.4.1 to every RCPT while no backend of the list answers" % closed in out, out
    m.config["backend"] = "nosuch.test.example:%d, %s:%d" % (a.port, NAME, a.port)
    m.write_config()
    p = run_moat_t(m.conf_path)
    out = p.stdout.decode()
    assert p.returncode == 1, (out, p.stderr)
    assert ": error: backend nosuch.test.example:%d has no address (NXDOMAIN: no such name)" % a.port in out, out
    assert ": backend %s:%d at 127.0.0.2:%d: smtputf8=" % (NAME, a.port, a.port) in out, out
    # DNS failing is not the config's mistake: a warning
    zone.zone["nosuch.test.example"] = [("SERVFAIL", None)]
    p = run_moat_t(m.conf_path)
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr)
    assert ": warning: backend nosuch.test.example:%d has no address (DNS fails" % a.port in out, out


def test_bad_backend_names_are_config_errors(moat_factory):
    m = moat_factory(_start=False, backend="mta:25")
    p = run_moat_t(m.conf_path)
    assert p.returncode == 1
    assert "backend: \"mta:25\" is a name of one label: write it in full" in p.stderr.decode()


def test_submission_backend_by_name_and_list(pair, zone, moat_factory, tmp_path):
    """submission_backend takes the same syntax: a list whose first backend
    refuses connections and whose second is a name; AUTH and the
    authenticated mail go there, not to backend."""
    import base64
    from test_submission import smtps
    from tlscerts import self_signed
    a, b = pair
    b.stop()
    b = type(a)(str(tmp_path / "auth-backend"), host=B_IP, port=a.port, auth="alice:secret")
    try:
        zone.zone["submit.test.example"] = [("A", B_IP)]
        crt, key = self_signed(tmp_path, "ec", "ec")
        m = moat_factory(backend="%s:%d" % (A_IP, a.port), dns_servers=zone.servers,
                         submission_backend="127.0.0.1:%d, submit.test.example:%d" % (free_port(), a.port),
                         smtps_listen="127.0.0.1:0", tls_cert=crt, tls_key=key)
        c = smtps(m.ports["smtps"])
        c.ehlo()
        plain = base64.b64encode(b"\0alice\0secret").decode()
        c.expect("AUTH PLAIN " + plain, 235)
        r = c.transaction(SENDER, [RCPT], message("submitted"))
        assert r.code == 250, r
        c.cmd("QUIT")
        c.close()
        got = b.wait_stored(1)
        assert subjects(got) == ["submitted"] and got[0].auth_user == "alice"
        assert a.messages() == []
    finally:
        b.stop()
