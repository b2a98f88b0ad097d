"""SIGTERM (graceful shutdown) and SIGHUP (config reload)."""

import json
import os
import signal
import time

import pytest

from moatlib import HOSTNAME, ConnectionClosed, SMTPClient, WaitTimeout, dotstuff

SENDER = "alice@example.org"
RCPT = "bob@example.test"


def test_sigterm_lets_transaction_in_flight_finish(backend_factory, moat_factory):
    be = backend_factory(slow=2)
    m = moat_factory(_backend=be, shutdown_grace=10)
    c = SMTPClient(m.port)
    c.ehlo()
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<slow@example.test>\r\nDATA\r\n" % SENDER)
    assert [c.reply().code for _ in range(3)] == [250, 250, 354]
    msg = b"Subject: in flight\r\n\r\nstill delivered\r\n"
    c.send(dotstuff(msg))
    # the backend has the message and is sitting on its reply
    be.wait_event(lambda e: e[0] == "SLOW")
    m.signal(signal.SIGTERM)
    r = c.reply(timeout=15)
    assert r.code == 250, r
    # a client that goes on talking is still answered (it may have been
    # about to QUIT); once it stays quiet outside a transaction, 421 4.3.2
    c.expect("NOOP", 250)
    r = c.reply(timeout=10)
    assert r.lines == ["421 4.3.2 %s Service shutting down" % HOSTNAME], r
    c.wait_closed(5)
    assert m.wait_exit(15) == 0
    [stored] = be.messages()
    assert stored.data.endswith(msg)
    c.close()


def test_sigterm_idle_session_gets_421(moat):
    c = SMTPClient(moat.port)
    c.ehlo()
    moat.signal(signal.SIGTERM)
    r = c.reply(timeout=10)
    assert r.lines == ["421 4.3.2 %s Service shutting down" % HOSTNAME]
    c.wait_closed(5)
    assert moat.wait_exit(10) == 0


def test_sigterm_stops_accepting(backend_factory, moat_factory):
    be = backend_factory(slow=3)
    m = moat_factory(_backend=be, shutdown_grace=10)
    busy = SMTPClient(m.port)
    busy.ehlo()
    busy.send("MAIL FROM:<%s>\r\nRCPT TO:<slow@example.test>\r\nDATA\r\n" % SENDER)
    assert [busy.reply().code for _ in range(3)] == [250, 250, 354]
    busy.send(dotstuff(b"Subject: x\r\n\r\ny\r\n"))
    be.wait_event(lambda e: e[0] == "SLOW")
    idle = SMTPClient(m.port)
    idle.ehlo()
    m.signal(signal.SIGTERM)
    # the idle session hears about the shutdown: moat is now draining
    r = idle.reply(timeout=10)
    assert r.lines == ["421 4.3.2 %s Service shutting down" % HOSTNAME]
    # while it drains, a new client is refused or told 421 and closed
    try:
        late = SMTPClient(m.port, read_banner=False, timeout=5)
    except OSError:
        late = None
    if late is not None:
        got = late.wait_closed(10)
        assert got == b"" or got.startswith(b"421 4.3.2 "), got
        late.close()
    assert busy.reply(timeout=15).code == 250
    assert m.wait_exit(15) == 0
    busy.close()
    idle.close()


def test_sigterm_gives_up_after_grace(backend_factory, moat_factory):
    be = backend_factory(slow=30)
    m = moat_factory(_backend=be, shutdown_grace=1)
    c = SMTPClient(m.port)
    c.ehlo()
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<slow@example.test>\r\nDATA\r\n" % SENDER)
    assert [c.reply().code for _ in range(3)] == [250, 250, 354]
    c.send(dotstuff(b"Subject: stuck\r\n\r\nx\r\n"))
    be.wait_event(lambda e: e[0] == "SLOW")
    t0 = time.monotonic()
    m.signal(signal.SIGTERM)
    assert m.wait_exit(10) == 0
    assert time.monotonic() - t0 < 6, "moat waited past shutdown_grace=1"
    try:
        r = c.reply(timeout=5)
    except (ConnectionClosed, OSError):
        r = None
    assert r is None or 400 <= r.code < 500, r
    c.close()


def _ehlo_size(port):
    with SMTPClient(port) as c:
        for t in c.ehlo().texts:
            if t.upper().startswith("SIZE"):
                return int(t.split()[1])


def _reload(m, **changes):
    cfg = dict(m.config)
    cfg.update({k: str(v) for k, v in changes.items()})
    m.write_config(cfg)
    m.signal(signal.SIGHUP)


def _wait_for(pred, timeout=10, what="condition"):
    """Poll an observable (each poll is a real SMTP exchange) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise WaitTimeout("timed out waiting for " + what)


def test_sighup_reload_applies_to_new_sessions(moat_factory, backend):
    m = moat_factory(max_recipients=2, max_message_size=1000000)
    old = SMTPClient(m.port)
    old.ehlo()
    _reload(m, max_recipients=3, max_message_size=2000000)
    _wait_for(lambda: _ehlo_size(m.port) == 2000000, what="SIZE 2000000 after SIGHUP")
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        for i in range(3):
            c.expect("RCPT TO:<r%d@example.test>" % i, 250)
        assert c.cmd("RCPT TO:<r3@example.test>").code == 452
    # a session that started before the reload keeps its configuration
    old.expect("MAIL FROM:<%s>" % SENDER, 250)
    for i in range(2):
        old.expect("RCPT TO:<o%d@example.test>" % i, 250)
    assert old.cmd("RCPT TO:<o2@example.test>").code == 452
    old.close()
    assert m.proc.poll() is None


def test_sighup_with_bad_config_keeps_running(moat_factory, backend):
    m = moat_factory(max_message_size=1000000)
    good = dict(m.config)
    n = len(m.logs.snapshot())
    bad = dict(good)
    bad["max_message_size"] = "not-a-number"
    m.write_config(bad)
    m.signal(signal.SIGHUP)
    # (the start-up probe's warning about this backend, which offers neither XCLIENT nor
    # XFORWARD, may come after n)
    line = m.wait_log(lambda l: l.get("level") in ("error", "warning", "warn", "crit") and
                      l.get("event") != "backend_probe", what="an error log line about the bad config", start=n)
    assert "moat.conf" in str(line), line
    assert m.proc.poll() is None
    assert _ehlo_size(m.port) == 1000000
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: after bad reload\r\n\r\nx\r\n").code == 250
    backend.wait_stored(1)
    m.write_config(good)


def test_sighup_changes_backend(backend_factory, moat_factory):
    a = backend_factory()
    b = backend_factory()
    m = moat_factory(_backend=a)
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: to a\r\n\r\nx\r\n").code == 250
    a.wait_stored(1)
    _reload(m, backend="127.0.0.1:%d" % b.port, max_message_size=3000000)
    # the SIZE change tells us the reload happened
    _wait_for(lambda: _ehlo_size(m.port) == 3000000, what="reload")
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, [RCPT], b"Subject: to b\r\n\r\nx\r\n").code == 250
    [msg] = b.wait_stored(1)
    assert msg.data.endswith(b"Subject: to b\r\n\r\nx\r\n")
    assert len(a.messages()) == 1


def test_repeated_sighup_under_load(moat_factory, backend):
    """Reloading while sessions run neither breaks them nor leaks (ASan run)."""
    m = moat_factory()
    clients = [SMTPClient(m.port) for _ in range(5)]
    for c in clients:
        c.ehlo()
    for i, c in enumerate(clients):
        m.signal(signal.SIGHUP)
        assert c.transaction(SENDER, ["h%d@example.test" % i], b"Subject: hup\r\n\r\nx\r\n").code == 250
        c.expect("QUIT", 221)
        c.close()
    backend.wait_stored(5)
    assert m.proc.poll() is None


def test_sigterm_several_transactions_in_flight(backend_factory, moat_factory):
    be = backend_factory(slow=1)
    m = moat_factory(_backend=be, shutdown_grace=10)
    clients = []
    for i in range(5):
        c = SMTPClient(m.port)
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<slow+%d@example.test>\r\nDATA\r\n" % (SENDER, i))
        assert [c.reply().code for _ in range(3)] == [250, 250, 354]
        c.send(dotstuff(b"Subject: %d\r\n\r\nx\r\n" % i))
        clients.append(c)
    be.events.wait_count(lambda e: e[0] == "SLOW", 5)
    m.signal(signal.SIGTERM)
    for c in clients:
        assert c.reply(timeout=15).code == 250
        c.close()
    assert m.wait_exit(15) == 0
    msgs = be.messages()
    assert sorted(x.rcpts[0] for x in msgs) == ["slow+%d@example.test" % i for i in range(5)]


def test_sigterm_client_in_the_middle_of_data(moat_factory, backend):
    """A client half way through its message when SIGTERM comes may finish it."""
    m = moat_factory(shutdown_grace=10)
    busy = SMTPClient(m.port)
    busy.ehlo()
    busy.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
    assert [busy.reply().code for _ in range(3)] == [250, 250, 354]
    busy.send(b"Subject: half\r\n\r\nfirst half\r\n")
    idle = SMTPClient(m.port)
    idle.ehlo()
    m.signal(signal.SIGTERM)
    # observable: moat is shutting down once the idle client hears 421
    assert idle.reply(timeout=10).code == 421
    busy.send(dotstuff(b"second half\r\n"))
    r = busy.reply(timeout=15)
    assert r.code == 250, r
    assert m.wait_exit(15) == 0
    [msg] = backend.messages()
    assert msg.data.endswith(b"Subject: half\r\n\r\nfirst half\r\nsecond half\r\n")


# ------------------------------------------------------------ log rotation

def _file_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f.read().splitlines() if l.endswith("}")]


def _wait_file(m, path, pred, n=1, what="log lines"):
    """Poll the log file (an observable) until n lines match."""
    deadline = time.monotonic() + 10
    while True:
        got = [l for l in _file_lines(path) if pred(l)]
        if len(got) >= n:
            return got
        assert m.proc.poll() is None, "moat exited (%r) waiting for %s" % (m.proc.returncode, what)
        assert time.monotonic() < deadline, "%d/%d %s in %s" % (len(got), n, what, path)
        time.sleep(0.02)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigusr1_reopens_the_log_file(moat_factory, backend, tmp_path, workers):
    """logrotate renames the file and sends SIGUSR1: every process (the
    supervisor and each worker) opens the file by its name again, and the
    next lines go to the new file. SIGHUP reopens it too."""
    path = str(tmp_path / "moat.log")
    m = moat_factory(log=path, workers=workers, _start=False)
    m.start(wait_ready=False)
    _wait_file(m, path, lambda l: l.get("event") == "ready", workers, "ready lines")
    port = int(_wait_file(m, path, lambda l: l.get("event") == "listening")[0]["addr"].rsplit(":", 1)[1])
    procs = set(range(workers)) | ({None} if workers > 1 else set())  # None: the supervisor
    for n, sig in enumerate((signal.SIGUSR1, signal.SIGHUP)):
        rotated = "%s.%d" % (path, n + 1)
        os.rename(path, rotated)
        m.signal(sig)
        reopened = _wait_file(m, path, lambda l: l.get("event") == "reopen", len(procs), "reopen lines")
        assert {l.get("worker") for l in reopened} == procs, reopened
        # sessions from now on are logged in the new file only
        for _ in range(20):
            with SMTPClient(port) as c:
                c.ehlo()
                c.expect("QUIT", 221)
        ends = _wait_file(m, path, lambda l: l.get("event") == "session_end", 20, "session_end lines")
        assert workers == 1 or len({l["worker"] for l in ends}) == 2, ends
        old = _file_lines(rotated)
        assert not {l["session"] for l in ends} & {l.get("session") for l in old}
        assert len([l for l in old if l.get("event") == "reopen"]) == n * len(procs)
    m.signal(signal.SIGTERM)
    assert m.wait_exit(10) == 0
    # the last line, the supervisor's (or the one process's), is in the new file
    assert _file_lines(path)[-1].get("event") == "stopped"
    assert m.raw_lines == [], "log = file, yet moat wrote to stderr: %r" % m.raw_lines[:3]
