"""Two moat replicas behind a real HAProxy (send-proxy-v2, round robin), all
on loopback, with a real redis-server beside them (tests/e2e/replicas.py,
issue 17 item 5's harness): load balancing, the client's address, a replica
lost and back. The shared policy (greylisting, rate limits, the fault run
with Redis killed and restarted) is test_replicas_shared.py's.

The client connects from 127.0.0.2, HAProxy from 127.0.0.1; the sender
domain's SPF passes 127.0.0.2 only, so a delivered message with spf=pass
shows moat judged the client's address from the PROXY header, not
HAProxy's. The backend offers no XCLIENT: the address reaches it only in
the fields moat adds."""

import pytest

from checkslib import authres_of, base_zone
from moatlib import SMTPClient
from replicas import HAProxy, RedisServer, kill, replicas, restart, wait_checked, wait_sessions

CLIENT = "127.0.0.2"
OTHER = "127.0.0.3"
SENDER = "alice@example.org"
RCPT = "bob@example.test"


def zone():
    z = base_zone()
    z["example.org"] = [("A", "192.0.2.10"), ("MX", (10, "mail.example.org")),
                        ("TXT", "v=spf1 ip4:%s -all" % CLIENT)]
    return z


class Cluster:
    def __init__(self, moat_factory, dns_factory, backend, tmp_path, **keys):
        self.moat_factory = moat_factory
        self.backend = backend
        self.dns = dns_factory(zone())
        self.a, self.b = replicas(moat_factory, 2, dns_servers=self.dns.servers, delay_reject="no", **keys)
        self.haproxy = HAProxy(tmp_path, {"a": self.a.port, "b": self.b.port}, inter_ms=100)
        self.haproxy.start([self.a, self.b])

    def send(self, subject, port=None, source=CLIENT):
        """One session, one message: the final reply, or the first refusal."""
        with SMTPClient(port or self.haproxy.port, source=source) as c:
            assert c.banner.code == 220, c.banner
            c.ehlo("client.example.org")
            r = c.cmd("MAIL FROM:<%s>" % SENDER)
            if r.code == 250:
                r = c.cmd("RCPT TO:<%s>" % RCPT)
            if r.code == 250:
                r = c.data(message(subject))
            c.expect("QUIT", 221)
        return r


def message(subject):
    return (b"From: " + SENDER.encode() + b"\r\nTo: " + RCPT.encode() + b"\r\nSubject: " + subject.encode()
            + b"\r\nMessage-ID: <" + subject.replace(" ", ".").encode() + b"@example.org>\r\n\r\nHello.\r\n")


@pytest.fixture
def cluster(moat_factory, dns_factory, backend, tmp_path):
    c = Cluster(moat_factory, dns_factory, backend, tmp_path)
    yield c
    c.haproxy.stop()


def subjects_of(m):
    return {l.get("subject") for l in m.decisions() if l["stage"] == "data" and l["action"] == "accept"}


def test_round_robin_reaches_the_backend_through_both_replicas(cluster):
    n = 8
    for i in range(n):
        r = cluster.send("round robin %d" % i)
        assert r.code == 250, r
    stored = cluster.backend.wait_stored(n)
    assert sorted(m.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for m in stored) == \
        sorted("round robin %d" % i for i in range(n))
    a, b = wait_sessions([cluster.a, cluster.b], n)
    # round robin: consecutive connections alternate (health checks take no turn)
    assert (len(a), len(b)) == (n // 2, n // 2), (a, b, cluster.haproxy.output())
    assert all(s["client_ip"] == CLIENT for s in a + b), a + b


def test_the_client_address_is_the_clients_not_haproxys(cluster):
    """Through each forced frontend: the session lands on that replica, which
    logs the client's address, writes it into Received, and judges SPF by it
    (pass for 127.0.0.2; 127.0.0.3 fails and is refused)."""
    for name, m in (("a", cluster.a), ("b", cluster.b)):
        subject = "address via %s" % name
        r = cluster.send(subject, port=cluster.haproxy.port_of[name])
        assert r.code == 250, r
        d = m.wait_log(lambda l: l.get("stage") == "data" and l.get("subject") == subject,
                       what="the data decision on %s" % name)
        assert (d["client_ip"], d["spf"], d["action"]) == (CLIENT, "pass", "accept"), d
        [msg] = [x for x in cluster.backend.wait_stored(1 if name == "a" else 2)
                 if b"Subject: " + subject.encode() in x.data]
        head = msg.data.split(b"Subject:")[0]
        assert b"[%s]" % CLIENT.encode() in head and b"[127.0.0.1]" not in head, head
        ar = authres_of(msg)
        assert ar["spf"] == "pass", ar
    r = cluster.send("from elsewhere", source=OTHER)
    assert r.code == 550 and "SPF" in r.text, r
    a, b = wait_sessions([cluster.a, cluster.b], 3)
    assert sorted(s["client_ip"] for s in a + b) == [CLIENT, CLIENT, OTHER], a + b
    [refused] = [l for m in (cluster.a, cluster.b) for l in m.decisions() if l.get("client_ip") == OTHER]
    assert (refused["action"], refused["spf"]) == ("reject", "fail"), refused


def test_a_replica_killed_mid_run_loses_nothing(cluster):
    """Replica a is killed (SIGKILL) between two sessions while a session on b
    is open: HAProxy sends the next connections to b (a refused connection is
    redispatched at once, then the checks take a out), b's open session
    finishes, and every message a client got 250 for is at the backend,
    once. Then a comes back on its port and takes its turns again."""
    n, killed_at = 30, 9
    got250 = []
    held = SMTPClient(cluster.haproxy.port_of["b"], source=CLIENT)
    held.ehlo("held.example.org")
    mark = len(cluster.haproxy.lines.snapshot())
    for i in range(n):
        if i == killed_at:
            # between two sessions: a has logged the end of its last one
            wait_sessions([cluster.a, cluster.b], killed_at)
            kill(cluster.a)
        subject = "run %d" % i
        r = cluster.send(subject)
        assert r.code == 250, (i, r)
        got250.append(subject)
    r = held.transaction(SENDER, [RCPT], message("held on b"))
    assert r.code == 250, r
    got250.append("held on b")
    held.expect("QUIT", 221)
    held.close()
    cluster.haproxy.server_down("a", start=mark)
    stored = cluster.backend.wait_stored(len(got250))
    subjects = [m.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for m in stored]
    assert sorted(subjects) == sorted(got250), subjects   # none lost, none twice
    a, b = wait_sessions([cluster.a, cluster.b], len(got250))
    assert len(a) <= (killed_at + 1) // 2 and len(a) + len(b) == len(got250), (len(a), len(b))
    on_b = subjects_of(cluster.b)
    assert {"run %d" % i for i in range(killed_at, n)} <= on_b, on_b
    print("killed after %d sessions: a served %d, b %d; %d client 250s, %d at the backend"
          % (killed_at, len(a), len(b), len(got250), len(stored)))

    # a restarted on its port: HAProxy's checks bring it back
    mark = len(cluster.haproxy.lines.snapshot())
    a2 = restart(cluster.moat_factory, cluster.a)
    assert a2.port == cluster.a.port
    wait_checked(a2)
    cluster.haproxy.server_up("a", start=mark)
    for i in range(4):
        assert cluster.send("after %d" % i).code == 250
    a2s, b2s = wait_sessions([a2, cluster.b], 4 + len(b))
    print(cluster.haproxy.output())   # shown when the test fails
    assert len(a2s) >= 1 and len(a2s) + len(b2s) - len(b) == 4, (len(a2s), len(b2s), len(b))


def test_redis_killed_and_restarted_on_its_port(tmp_path):
    """The store of issue 17: a real redis-server without persistence; after
    a SIGKILL it comes back on the same port, empty."""
    r = RedisServer(tmp_path).start()
    try:
        assert r.cmd("SET", "greylist:test", "1") == "OK"
        assert r.cmd("GET", "greylist:test") == "1"
        port = r.port
        r.kill()
        with pytest.raises(OSError):
            r.cmd("PING")
        r.start()
        assert (r.port, r.starts) == (port, 2)
        assert r.cmd("GET", "greylist:test") is None
        assert r.cmd("DBSIZE") == 0
    finally:
        r.stop()
