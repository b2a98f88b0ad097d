"""workers = N: a supervisor and N worker processes, each with its own event
loop and SO_REUSEPORT socket on the same address. Connections are spread
over the workers, a SIGHUP reloads every worker, a worker that dies is
restarted while the others serve, SIGTERM stops them all and the supervisor
exits 0."""

import os
import re
import signal
import threading

import pytest

from checkslib import RCPT, simple_message, stored_message
from moatlib import ConnectionClosed, SMTPClient


def deliver(m, backend, subject):
    with SMTPClient(m.port) as c:
        c.ehlo()
        r = c.transaction("alice@example.org", [RCPT], simple_message(subject))
        assert r.code == 250, r
        return stored_message(backend, r)


def ready_pids(m, n):
    lines = m.logs.wait_count(lambda l: l.get("event") == "ready", n, what="%d ready lines" % n)
    return [int(l["msg"].split("pid ")[1].split(",")[0]) for l in lines]


def test_two_workers_share_the_load_reload_and_restart(moat_factory, backend):
    m = moat_factory(workers=2, max_connections_per_ip=200, check_spf="no", check_sender_domain="no",
                     check_dkim="no")
    pids = ready_pids(m, 2)
    assert len(set(pids)) == 2 and m.proc.pid not in pids
    assert len(m.log_lines(event="listening")) == 1
    # 60 sessions at once: both workers serve some
    errors = []

    def one(k):
        try:
            deliver(m, backend, "w%d" % k)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    ends = m.wait_session_end(60)
    workers = {l["worker"] for l in ends}
    assert workers == {0, 1}, workers
    # SIGHUP to the supervisor reloads both workers
    start = len(m.logs.snapshot())
    m.signal(signal.SIGHUP)
    m.logs.wait_count(lambda l: l.get("event") == "reload", 2, what="two reload lines")
    # a worker killed: restarted; meanwhile and after, mail goes through
    os.kill(pids[0], signal.SIGKILL)
    m.wait_log(lambda l: l.get("event") == "workers" and "restarting" in l.get("msg", ""), start=start)
    new = ready_pids(m, 3)
    assert len(set(new)) == 3
    for k in range(10):
        deliver(m, backend, "after restart %d" % k)
    # SIGTERM: the supervisor exits 0 (checked by the fixture) after its workers


def test_worker_restarted_after_a_reload_serves_the_reloaded_config(moat_factory, backend):
    """The supervisor never loads the config: a worker it restarts after a
    SIGHUP loads the files as they are, as its siblings did, and does not
    serve the start-up config."""
    m = moat_factory(workers=2, max_connections_per_ip=200)
    pids = ready_pids(m, 2)
    m.write_config(dict(m.config, hostname="reloaded.moat.test"))
    start = len(m.logs.snapshot())
    m.signal(signal.SIGHUP)
    m.logs.wait_count(lambda l: l.get("event") == "reload", 2, what="two reload lines")
    os.kill(pids[0], signal.SIGKILL)
    m.wait_log(lambda l: l.get("event") == "workers" and "restarting" in l.get("msg", ""), start=start)
    ready_pids(m, 3)     # its ready line comes after it loaded the files
    # 30 connections: SO_REUSEPORT gives both workers some (1 in 2^30 that it does not)
    banners = []
    for _ in range(30):
        with SMTPClient(m.port) as c:
            banners.append(c.banner.line)
    assert all("reloaded.moat.test" in b for b in banners), [b for b in banners if "reloaded" not in b][:3]
    ends = m.wait_session_end(30)
    assert {l["worker"] for l in ends} == {0, 1}


# ---------------------------------------------------------------- session ids

RECEIVED_ID = re.compile(rb"\(moat\) with E?SMTP\S* id ([0-9a-f]{16})\.(\d+);")


def _sessions(m, backend, n, every_delivers=10, threads=8):
    """n sessions from `threads` clients at once: most EHLO and QUIT, every
    `every_delivers`-th delivers a message; returns the end-of-data replies."""
    replies, errors, lock = [], [], threading.Lock()
    todo = iter(range(n))

    def client():
        while True:
            with lock:
                k = next(todo, None)
            if k is None:
                return
            try:
                with SMTPClient(m.port) as c:
                    assert c.banner.code == 220, c.banner
                    c.ehlo()
                    if k % every_delivers == 0:
                        r = c.transaction("alice@example.org", [RCPT], simple_message("id %d" % k))
                        assert r.code == 250, r
                        with lock:
                            replies.append(r)
                    c.expect("QUIT", 221)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(e)

    ts = [threading.Thread(target=client) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    return replies


@pytest.mark.parametrize("workers", [2, 4])
def test_session_ids_unique_across_workers(moat_factory, backend, workers):
    """2,000 sessions over 2 and 4 workers: every session id is distinct (in
    the log and in the Received fields the backend got), and every line of a
    session, decisions and the others (timeouts, removed
    Authentication-Results fields), names the worker that served it."""
    n = 2000
    m = moat_factory(workers=workers, max_connections_per_ip=1000, command_timeout=1,
                     check_spf="no", check_sender_domain="no", check_dkim="no")
    ready_pids(m, workers)
    replies = _sessions(m, backend, n)
    # lines of other kinds: a forged Authentication-Results field removed,
    # clients that say nothing until their command timeout
    with SMTPClient(m.port) as c:
        c.ehlo()
        forged = b"Authentication-Results: mx.test.example; spf=pass\r\n" + simple_message("forged")
        assert c.transaction("alice@example.org", [RCPT], forged).code == 250
    idle = [SMTPClient(m.port) for _ in range(4)]
    for c in idle:
        c.wait_closed(10)
        c.close()
    ends = m.wait_session_end(n + 5, timeout=60)
    ids = [l["session"] for l in ends]
    dup = len(ids) - len(set(ids))
    assert dup == 0, "%d of %d session ids appear more than once" % (dup, len(ids))
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids), ids[:3]
    served = {l["session"]: l.get("worker") for l in ends}
    assert set(served.values()) == set(range(workers)), "not every worker served: %r" % set(served.values())
    # every line of a session carries the worker that served it
    kinds = set()
    for line in m.logs.snapshot():
        sid = line.get("session") or next((i for i in re.findall(r"\b[0-9a-f]{16}\b", line.get("msg", ""))
                                           if i in served), None)
        if not sid:
            continue
        kinds.add(line.get("event"))
        assert "worker" in line, "a line of session %s without worker: %r" % (sid, line)
        assert line["worker"] == served[sid], (line, served[sid])
    assert {"decision", "session_end", "timeout", "authres"} <= kinds, kinds
    # the Received ids the backend got: one session each, as logged
    msgs = backend.wait_stored(len(replies) + 1, timeout=30)
    got = []
    for msg in msgs:
        r = RECEIVED_ID.search(msg.data)
        assert r, msg.data[:400]
        got.append(r.group(1).decode())
    assert len(set(got)) == len(got), "%d Received ids repeat" % (len(got) - len(set(got)))
    assert set(got) <= set(served), set(got) - set(served)


def test_dead_worker_gives_back_its_connections(moat_factory, backend):
    """A worker killed with connections open: the supervisor gives its
    connections back before restarting it, so the per-address limit counts
    exactly the connections that are still open."""
    limit = 20
    m = moat_factory(workers=2, max_connections_per_ip=limit)
    pids = ready_pids(m, 2)
    held = [SMTPClient(m.port) for _ in range(limit)]
    assert all(c.banner.code == 220 for c in held), [c.banner for c in held]
    over = SMTPClient(m.port, read_banner=False)
    assert over.readline().startswith(b"421 4.7.0"), "the limit is not reached"
    over.close()
    start = len(m.logs.snapshot())
    os.kill(pids[0], signal.SIGKILL)
    m.wait_log(lambda l: l.get("event") == "workers" and "restarting" in l.get("msg", ""), start=start)
    ready_pids(m, 3)
    alive = []
    for c in held:
        try:
            c.expect("NOOP", 250)
            alive.append(c)
        except (ConnectionClosed, OSError):
            c.close()
    assert 0 < len(alive) < limit, "both workers must have held some: %d alive" % len(alive)
    # exactly the dead worker's share is free again
    for k in range(limit - len(alive)):
        c = SMTPClient(m.port)
        assert c.banner.code == 220, "%d alive, new connection %d: %r" % (len(alive), k + 1, c.banner)
        alive.append(c)
    over = SMTPClient(m.port, read_banner=False)
    assert over.readline().startswith(b"421 4.7.0")
    over.close()
    for c in alive:
        c.close()
