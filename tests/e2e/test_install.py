"""make install: the systemd unit (checked by systemd-analyze verify), its
sysusers.d file (systemd-sysusers makes the user) and the logrotate
snippet, each where its tool reads it, with the install's paths; make
uninstall takes them away again."""

import os
import shutil
import subprocess

import pytest

from moatlib import REPO, clean_make_env

# The build make image uses too (PREFIX=/usr): built once for both.
BUILD = "build/image"


def make(*args, **kw):
    r = subprocess.run(["make", "--no-print-directory", "-C", REPO, "BUILD=" + BUILD] + list(args),
                       capture_output=True, text=True, timeout=600, env=clean_make_env(), **kw)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("destdir")
    make("PREFIX=/usr", "DESTDIR=%s" % d, "install")
    return d


def test_files_land_where_their_tools_read_them(root):
    for path in ("usr/sbin/moat", "usr/lib/systemd/system/moat.service", "usr/lib/sysusers.d/moat.conf",
                 "etc/logrotate.d/moat", "etc/moat/moat.conf", "usr/share/man/man8/moat.8"):
        assert os.path.isfile(root / path), path
    unit = (root / "usr/lib/systemd/system/moat.service").read_text()
    assert "ExecStart=/usr/sbin/moat -c /etc/moat/moat.conf\n" in unit


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed (make deps)")
def test_unit_verifies(root, tmp_path):
    """systemd-analyze verify, offline: every key known and valid, the
    commands executable, the man pages of Documentation= found. Only the
    binary's path is moved into DESTDIR; nothing may be reported."""
    unit = (root / "usr/lib/systemd/system/moat.service").read_text()
    moved = tmp_path / "moat.service"
    moved.write_text(unit.replace("=/usr/sbin/moat ", "=%s/usr/sbin/moat " % root))
    env = dict(os.environ, MANPATH=str(root / "usr/share/man"))
    r = subprocess.run(["systemd-analyze", "verify", str(moved)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
    # and it does complain about a mistake (the check is not blind)
    moved.write_text(unit.replace("Type=notify", "Type=notify-when-ready"))
    r = subprocess.run(["systemd-analyze", "verify", str(moved)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert "notify-when-ready" in r.stderr, r


def test_unit_paths_follow_the_prefix(tmp_path):
    """PREFIX=/opt/moat: the unit names that install's binary and config."""
    out = tmp_path / "b"
    r = subprocess.run(["make", "--no-print-directory", "-C", REPO, "BUILD=%s" % out, "PREFIX=/opt/moat",
                        "%s/systemd/moat.service" % out], capture_output=True, text=True, timeout=120,
                       env=clean_make_env())
    assert r.returncode == 0, r
    unit = (out / "systemd/moat.service").read_text()
    assert "ExecStart=/opt/moat/sbin/moat -c /opt/moat/etc/moat/moat.conf\n" in unit
    assert "/usr/sbin/moat" not in unit and "/etc/moat/" not in unit.replace("/opt/moat/etc/moat/", "")


@pytest.mark.skipif(not shutil.which("systemd-sysusers"), reason="systemd-sysusers not installed")
def test_sysusers_makes_the_unit_user(root, tmp_path):
    img = tmp_path / "root"
    (img / "etc").mkdir(parents=True)
    r = subprocess.run(["systemd-sysusers", "--root=%s" % img, str(root / "usr/lib/sysusers.d/moat.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    [user] = [l.split(":") for l in (img / "etc/passwd").read_text().splitlines() if l.startswith("moat:")]
    assert user[6] in ("/usr/sbin/nologin", "/sbin/nologin"), user
    assert 0 < int(user[2]) < 1000, "a system user: %r" % user
    unit = (root / "usr/lib/systemd/system/moat.service").read_text()
    assert "\nUser=moat\n" in unit and "\nGroup=moat\n" in unit


def test_uninstall_keeps_changed_config(root):
    with open(root / "etc/logrotate.d/moat", "a") as f:
        f.write("# local change\n")
    r = make("PREFIX=/usr", "DESTDIR=%s" % root, "uninstall")
    assert "logrotate.d/moat differs" in r.stdout
    left = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    assert left == ["etc/logrotate.d/moat"], left
