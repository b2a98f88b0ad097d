"""Privilege drop: started as root, moat binds, then becomes `user` (and
may chroot); it refuses to stay root unless run_as_root = yes."""

import os
import pwd

import pytest

from moatlib import SMTPClient
from test_preflight import site  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line")


def test_refuses_to_stay_root(moat_factory):
    m = moat_factory(run_as_root=None, _start=False, _expect_rc=None)
    m.start(wait_ready=False)
    rc = m.wait_exit()
    assert rc != 0
    assert "refusing to run as root" in m.stderr_text()


def test_unknown_user(moat_factory):
    m = moat_factory(run_as_root=None, user="no-such-user-moat", _start=False, _expect_rc=None)
    m.start(wait_ready=False)
    assert m.wait_exit() != 0
    assert "no-such-user-moat does not exist" in m.stderr_text()


def test_drops_to_user_and_still_delivers(site, backend):
    # site (test_preflight.py): files nobody can read, a spool_dir nobody can write
    nobody = pwd.getpwnam("nobody").pw_uid
    m = site().start()
    assert uid_of(m.proc.pid) == [nobody] * 4, "real, effective, saved and fs uid"
    m.wait_log(lambda l: l.get("event") == "privileges" and "running as nobody" in l.get("msg", ""))
    big = b"Subject: after the drop\r\n\r\n" + (b"y" * 998 + b"\r\n") * 400  # > 256 KiB: spills
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction("alice@example.org", ["bob@example.test"], big).code == 250
    [msg] = backend.wait_stored(1)
    assert msg.data.endswith(big)
