"""moat as a systemd service (Type=notify): READY=1 to $NOTIFY_SOCKET only
once every worker serves, RELOADING=1 and READY=1 around a SIGHUP reload,
STOPPING=1 at SIGTERM. The service manager here is a Python unix datagram
socket, as systemd's is (a path, or an abstract name written "@name")."""

import os
import signal
import socket
import threading

import pytest

from moatlib import REPO, SMTPClient, Watched, free_port
from test_preflight import site  # noqa: F401 (fixture)
from test_signals import _file_lines, _wait_file


class NotifySocket:
    """What systemd listens on: each datagram is a state message, parsed
    into a dict ("READY=1\\nSTATUS=..." -> {"READY": "1", "STATUS": ...})."""

    def __init__(self, tmp_path, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "moat-test-notify-%d-%d" % (os.getpid(), id(self))
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = str(tmp_path / "notify.sock")
            self.sock.bind(self.address)
        self.messages = Watched()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                break
            self.messages.append(dict(l.split("=", 1) for l in data.decode().split("\n") if l))
        self.messages.close()

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def notify(tmp_path, monkeypatch):
    made = []

    def make(abstract=False):
        n = NotifySocket(tmp_path, abstract)
        made.append(n)
        monkeypatch.setenv("NOTIFY_SOCKET", n.address)
        return n

    yield make
    for n in made:
        n.close()


def banner(port):
    """The greeting of one new connection, asked for once (no retry)."""
    with SMTPClient(port) as c:
        c.expect("QUIT", 221)
        return c.banner


def start_notified(moat_factory, tmp_path, workers, **keys):
    port = free_port()
    log = str(tmp_path / "moat.log")
    m = moat_factory(log=log, workers=workers, listen="127.0.0.1:%d" % port, _start=False, **keys)
    m.start(wait_ready=False)
    return m, port, log


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
@pytest.mark.parametrize("workers", [1, 2])
def test_ready_only_once_every_worker_serves(moat_factory, backend, notify, tmp_path, workers, abstract):
    n = notify(abstract)
    m, port, log = start_notified(moat_factory, tmp_path, workers)
    first = n.messages.wait(lambda msg: True, what="a notification")
    assert first.get("READY") == "1", "the first notification must be READY=1: %r" % first
    # At READY=1, and not later: every worker has logged that it serves
    # (the log file is read now: the lines were written before the
    # notification was sent), and a new connection gets the banner at once.
    ready = [l for l in _file_lines(log) if l.get("event") == "ready"]
    assert sorted(l.get("worker", 0) for l in ready) == list(range(workers)), ready
    r = banner(port)
    assert r.code == 220, r
    assert len(n.messages.snapshot()) == 1, "READY=1 once: %r" % n.messages.snapshot()
    m.signal(signal.SIGTERM)
    stopping = n.messages.wait(lambda msg: "STOPPING" in msg, what="STOPPING=1", start=1)
    assert stopping["STOPPING"] == "1"
    assert m.wait_exit(10) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_reloading_then_ready_around_sighup(moat_factory, backend, notify, tmp_path, workers):
    """SIGHUP: RELOADING=1 (with MONOTONIC_USEC, as systemd asks), then
    READY=1 only when every worker has applied the new configuration: a
    connection made right after READY=1 gets the new banner."""
    n = notify()
    m, port, log = start_notified(moat_factory, tmp_path, workers)
    n.messages.wait(lambda msg: msg.get("READY") == "1", what="READY=1")
    assert "mx.reloaded.example" not in banner(port).text
    for round_ in range(2):
        m.config["hostname"] = "mx%d.reloaded.example" % round_
        m.write_config()
        seen = len(n.messages.snapshot())
        m.signal(signal.SIGHUP)
        reloading = n.messages.wait(lambda msg: True, what="RELOADING=1", start=seen)
        assert reloading.get("RELOADING") == "1", reloading
        assert int(reloading["MONOTONIC_USEC"]) > 0
        n.messages.wait(lambda msg: msg.get("READY") == "1", what="READY=1 after the reload", start=seen + 1)
        done = [l for l in _file_lines(log) if l.get("event") == "reload"
                and "configuration reloaded" in l.get("msg", "")]
        assert len(done) == workers * (round_ + 1), done
        # every worker has the new name: each of these connections is one
        for _ in range(2 * workers):
            assert "mx%d.reloaded.example" % round_ in banner(port).text
    m.stop()


def test_a_failed_reload_is_over_too(moat_factory, backend, notify, tmp_path):
    """A reload that keeps the running configuration (a broken file) ends
    with READY=1 as well: the service is still up."""
    n = notify()
    m, port, log = start_notified(moat_factory, tmp_path, 2)
    n.messages.wait(lambda msg: msg.get("READY") == "1", what="READY=1")
    m.config["max_recipients"] = "lots"
    m.write_config()
    m.signal(signal.SIGHUP)
    n.messages.wait(lambda msg: msg.get("RELOADING") == "1", what="RELOADING=1", start=1)
    n.messages.wait(lambda msg: msg.get("READY") == "1", what="READY=1", start=2)
    failed = [l for l in _file_lines(log) if l.get("event") == "reload" and l.get("level") == "error"]
    assert len(failed) == 2, failed
    assert banner(port).code == 220
    m.stop()


def test_no_manager_listening_costs_nothing(moat_factory, backend, monkeypatch, tmp_path):
    """$NOTIFY_SOCKET naming nothing: one warning, and moat serves."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-here.sock"))
    m = moat_factory()
    w = m.wait_log(lambda l: l.get("event") == "notify", what="the notify warning")
    assert w["level"] == "warning" and "nobody-here.sock" in w["msg"]
    assert banner(m.port).code == 220
    m.signal(signal.SIGHUP)
    m.wait_log(lambda l: l.get("event") == "reload", what="the reload")
    assert len(m.log_lines(event="notify")) == 1


# ---------------------------------------------------------------- the unit's user

UNIT = os.path.join(REPO, "docs", "systemd", "moat.service")


def unit_settings(path=UNIT):
    """The [Service] keys of the unit (the last value of each)."""
    keys, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                keys[k] = v
    return keys


def low_port():
    """A port below 1024 that nothing on 127.0.0.1 listens on (only root, or
    CAP_NET_BIND_SERVICE, binds it)."""
    for port in range(599, 1024, 7):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    pytest.skip("no free port below 1024")


def caps(pid):
    with open("/proc/%d/status" % pid) as f:
        return {l.split(":")[0]: int(l.split()[1], 16) for l in f if l.startswith("Cap")}


def as_unit_user(cap):
    """setpriv as systemd starts the unit: its User= (nobody stands in for
    moat, which this machine need not have), no other groups, no new
    privileges, the bounding set and ambient capabilities it names."""
    unit = unit_settings()
    assert unit["User"] == "moat" and unit["NoNewPrivileges"] == "yes"
    assert unit["AmbientCapabilities"] == unit["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    if not cap:
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    name = cap.lower().replace("cap_", "")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--no-new-privs",
            "--bounding-set=-all,+" + name, "--inh-caps=-all,+" + name, "--ambient-caps=+" + name,
            "--"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to start moat as another user)")
@pytest.mark.parametrize("workers", [1, 2])
def test_unit_user_binds_a_low_port_then_drops_the_capability(site, backend, notify, workers):
    """As the unit runs it: not root, port < 1024 bound thanks to the ambient
    CAP_NET_BIND_SERVICE; once bound, moat holds no capability at all (in
    every process); READY=1 comes and mail goes through."""
    n = notify(abstract=True)  # no file permissions to give nobody
    port = low_port()
    m = site(listen="127.0.0.1:%d" % port, user=None, workers=str(workers))
    m.prefix = as_unit_user(unit_settings()["AmbientCapabilities"])
    m.start()
    n.messages.wait(lambda msg: msg.get("READY") == "1", what="READY=1")
    drops = m.wait_log(lambda l: l.get("event") == "privileges", what="the capability drop")
    assert "capabilities 0x400 dropped" in drops["msg"], drops  # 0x400: 1 << CAP_NET_BIND_SERVICE
    procs = [m.proc.pid] + [int(p) for p in open("/proc/%d/task/%d/children" % (m.proc.pid, m.proc.pid))
                            .read().split()]
    assert len(procs) == (1 if workers == 1 else 1 + workers), procs
    for pid in procs:
        c = caps(pid)
        assert (c["CapInh"], c["CapPrm"], c["CapEff"], c["CapAmb"]) == (0, 0, 0, 0), (pid, c)
    with SMTPClient(port) as c:
        c.ehlo()
        assert c.transaction("alice@example.org", ["bob@example.test"], b"Subject: t\r\n\r\nhi\r\n").code == 250
    backend.wait_stored(1)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to start moat as another user)")
def test_without_the_capability_a_low_port_is_refused(site):
    """The control: the same start without the ambient capability cannot bind."""
    port = low_port()
    m = site(listen="127.0.0.1:%d" % port, user=None)
    m.prefix = as_unit_user(None)
    m.start(wait_ready=False)
    assert m.wait_exit() != 0
    assert "Permission denied" in m.stderr_text()
