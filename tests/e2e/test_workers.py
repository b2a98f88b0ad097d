"""workers = N: a supervisor and N worker processes, each with its own event
loop and SO_REUSEPORT socket on the same address. Connections are spread
over the workers, a SIGHUP reloads every worker, a worker that dies is
restarted while the others serve, SIGTERM stops them all and the supervisor
exits 0."""

import os
import signal
import threading

from checkslib import RCPT, simple_message, stored_message
from moatlib import SMTPClient


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
