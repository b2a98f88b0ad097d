"""The logrotate snippet (docs/logrotate/moat), run by the real logrotate
against a moat writing its log file under load: the file is renamed, its
postrotate (systemctl kill --signal=USR1, here a stand-in that checks its
arguments) makes every process open the name again; no line is lost or
written twice, the next lines land in the new file, and the file renamed
earlier is compressed only at the next rotation, when nothing writes to it."""

import gzip
import json
import os
import shutil
import signal
import stat
import subprocess
import threading

import pytest

from moatlib import REPO, SMTPClient
from test_signals import _file_lines, _wait_file

SNIPPET = os.path.join(REPO, "docs", "logrotate", "moat")
SHIPPED_PATH = "/var/log/moat/moat.log"
SYSTEMCTL = """#!/bin/sh
printf '%s\\n' "$*" >> "$SYSTEMCTL_CALLS"
[ "$*" = "kill --kill-whom=main --signal=USR1 moat.service" ] || exit 1
exec kill -USR1 "$MOAT_PID"
"""

pytestmark = pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate not installed (make deps)")


def lines_of(path):
    """Every line of a log file (gzip or not): each must be a whole JSON object."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    assert text.endswith("\n"), "a line cut short at the end of %s" % path
    return [json.loads(l) for l in text.splitlines()]


class Traffic:
    """Sessions one after another until stopped; counts those that ended with 221."""

    def __init__(self, port):
        self.port, self.done, self.stop = port, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            with SMTPClient(self.port) as c:
                c.ehlo()
                c.expect("QUIT", 221)
            self.done += 1

    def finish(self):
        self.stop.set()
        self.thread.join(30)
        return self.done


def test_logrotate_renames_signals_and_loses_nothing(moat_factory, backend, tmp_path, monkeypatch):
    log = str(tmp_path / "moat.log")
    with open(SNIPPET) as f:
        snippet = f.read()
    assert snippet.count(SHIPPED_PATH + " {") == 1
    conf = tmp_path / "logrotate.conf"
    conf.write_text(snippet.replace(SHIPPED_PATH + " {", log + " {"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "systemctl").write_text(SYSTEMCTL)
    os.chmod(bindir / "systemctl", stat.S_IRWXU)
    calls = tmp_path / "systemctl.calls"
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    monkeypatch.setenv("SYSTEMCTL_CALLS", str(calls))

    m = moat_factory(log=log, workers=2, _start=False)
    m.start(wait_ready=False)
    _wait_file(m, log, lambda l: l.get("event") == "ready", 2, "ready lines")
    port = int(_wait_file(m, log, lambda l: l.get("event") == "listening")[0]["addr"].rsplit(":", 1)[1])
    monkeypatch.setenv("MOAT_PID", str(m.proc.pid))
    traffic = Traffic(port)
    reopens = 0
    for rotation in (1, 2):
        _wait_file(m, log, lambda l: l.get("event") == "session_end", 20, "sessions before rotating")
        r = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r
        assert calls.read_text().splitlines() == \
            ["kill --kill-whom=main --signal=USR1 moat.service"] * rotation
        # the supervisor and both workers open the name again
        reopens += 3
        _wait_file(m, log, lambda l: l.get("event") == "reopen", 3, "reopen lines")
    # the sessions after the last reopen are in the new file only
    _wait_file(m, log, lambda l: l.get("event") == "session_end", 20, "sessions after the rotation")
    sessions = traffic.finish()
    m.signal(signal.SIGTERM)
    assert m.wait_exit(15) == 0

    # moat.log (the last), moat.log.1 (renamed at the 2nd rotation, not
    # compressed yet: delaycompress), moat.log.2.gz (the first)
    files = sorted(os.listdir(tmp_path))
    assert {"moat.log", "moat.log.1", "moat.log.2.gz"} <= set(files), files
    assert not [f for f in files if f.startswith("moat.log") and f not in
                ("moat.log", "moat.log.1", "moat.log.2.gz")], files
    every = {}
    for name in ("moat.log.2.gz", "moat.log.1", "moat.log"):
        every[name] = lines_of(str(tmp_path / name))
    ends = [l["session"] for name in every for l in every[name] if l.get("event") == "session_end"]
    assert len(ends) == sessions, "%d sessions, %d session_end lines" % (sessions, len(ends))
    assert len(set(ends)) == len(ends), "a session's end written twice"
    assert sum(1 for name in every for l in every[name] if l.get("event") == "reopen") == reopens
    # each file but the first starts with what moat wrote after a reopen,
    # the first holds the start, the last the stop
    assert [l for l in every["moat.log.2.gz"] if l.get("event") == "ready"]
    assert every["moat.log"][-1].get("event") == "stopped"
    assert not [l for l in every["moat.log"] if l.get("event") in ("ready", "listening")]


def test_the_man_page_shows_the_shipped_snippet():
    """moat(8)'s Log rotation example is the file make install puts in
    /etc/logrotate.d (its comments aside)."""
    with open(os.path.join(REPO, "docs", "moat.8")) as f:
        man = f.read()
    example = man[man.index(SHIPPED_PATH + " {"):]
    example = example[:example.index("\n.RE")].replace("\\-", "-")
    with open(SNIPPET) as f:
        shipped = "\n".join(l for l in f.read().splitlines() if not l.startswith("#"))
    norm = lambda t: [l.strip() for l in t.strip().splitlines()]  # noqa: E731
    assert norm(example) == norm(shipped)
