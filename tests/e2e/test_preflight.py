"""`moat -t` and a start check what a start needs (issue 13, item 6), as the
user moat runs as: spool_dir takes a spill file (else every message over
256 KiB gets 451), the log is usable (log = syslog with nothing on /dev/log
logged nothing), and the files a reload reads (the config, the rule files
and lists, local_recipients) can be read after privileges drop. Each defect
is an error naming the path and the user, from `moat -t` and from a start,
and a start refuses to serve.

The tests run as root and use the unprivileged user "nobody"; their files
live in a directory of their own under /tmp that nobody can reach (pytest's
tmp_path is root-only, so a config there would itself be unreadable)."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import base_config, require_moat
from moatlib import MOAT_BIN, Moat, Watched

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to check as another user)")

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def site(dns, backend):
    """make(**keys) -> a Moat (not started) running as nobody, in an open directory, whose
    spool_dir nobody may write; keys override the config (None drops a key)."""
    require_moat()
    made, dirs = [], []

    def make(**keys):
        wd = tempfile.mkdtemp(prefix="moat-preflight-", dir="/tmp")
        dirs.append(wd)
        os.chmod(wd, 0o755)
        cfg = base_config(wd, "127.0.0.1:%d" % backend.port, dns)
        os.chown(cfg["spool_dir"], NOBODY.pw_uid, NOBODY.pw_gid)
        cfg.pop("run_as_root")
        cfg["user"] = "nobody"
        for k, v in keys.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        m = Moat(cfg, wd)
        made.append(m)
        return m

    yield make
    for m in made:
        if m.proc and m.proc.poll() is None:
            assert m.stop() == 0, m.stderr_text()[-2000:]
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def moat_t(m):
    return subprocess.run([MOAT_BIN, "-t", "-c", m.conf_path], capture_output=True, text=True, timeout=30)


def refused(m, message):
    """moat -t and a start both fail with message (after "CONFIG: ")."""
    r = moat_t(m)
    assert r.returncode == 1 and r.stderr == "%s: %s\n" % (m.conf_path, message), r
    m.logs, m.raw_lines, m.noise = Watched(), [], []
    m.start(wait_ready=False)
    assert m.wait_exit() == 1, m.stderr_text()
    errors = [l["msg"] for l in m.logs.snapshot() if l.get("level") == "error"]
    assert errors == ["%s: %s" % (m.conf_path, message)], m.stderr_text()
    assert not [l for l in m.logs.snapshot() if l.get("event") in ("listening", "ready")]


def root_only_dir(parent, name):
    d = os.path.join(parent, name)
    os.mkdir(d, 0o700)
    return d


def test_spool_dir_not_writable_by_the_run_user(site):
    m = site()
    spool = root_only_dir(m.workdir, "rootspool")
    m.config["spool_dir"] = spool
    m.write_config()
    refused(m, "spool_dir %s: user nobody cannot write a file there: Permission denied" % spool)


def test_spool_dir_missing(site):
    m = site()
    m.config["spool_dir"] = os.path.join(m.workdir, "no-such-dir")
    m.write_config()
    refused(m, "spool_dir %s: user nobody cannot write a file there: No such file or directory"
            % m.config["spool_dir"])


def test_spool_dir_not_a_directory(site):
    m = site()
    f = os.path.join(m.workdir, "a-file")
    open(f, "w").close()
    m.config["spool_dir"] = f
    m.write_config()
    refused(m, "spool_dir %s: user nobody cannot write a file there: Not a directory" % f)


@pytest.mark.skipif(os.path.exists("/dev/log"), reason="a syslog daemon listens on /dev/log here")
def test_log_syslog_without_a_syslog_daemon(site):
    m = site(log="syslog")
    refused(m, "log = syslog: no syslog daemon listens on /dev/log (No such file or directory): "
               "start one, or set log = stderr or a file")


def test_log_file_the_run_user_cannot_create_or_write(site):
    m = site()
    logs = root_only_dir(m.workdir, "logs")
    os.chmod(logs, 0o755)                      # nobody may look in, not create
    m.config["log"] = os.path.join(logs, "moat.log")
    m.write_config()
    refused(m, "log %s/moat.log: user nobody cannot create it in %s: Permission denied" % (logs, logs))
    with open(m.config["log"], "w"):
        pass                                  # root's, 0644: nobody cannot write it
    refused(m, "log %s/moat.log: not writable by user nobody: Permission denied" % logs)


def test_files_a_reload_reads(site):
    m = site()
    secret = root_only_dir(m.workdir, "secret")
    lst = os.path.join(secret, "nets")
    with open(lst, "w") as f:
        f.write("192.0.2.0/24\n")
    rules = os.path.join(m.workdir, "site.rules")
    with open(rules, "w") as f:
        f.write('reject client list:%s "554 5.7.1 blocked"\n' % lst)
    m.config["rules"] = rules
    m.write_config()
    refused(m, "rule file or list %s: not readable by user nobody (a reload reads it as that user): "
               "Permission denied" % lst)
    os.chmod(rules, 0o600)
    refused(m, "rules %s: not readable by user nobody (a reload reads it as that user): "
               "Permission denied" % rules)
    os.chmod(rules, 0o644)
    os.rename(lst, os.path.join(m.workdir, "nets"))
    with open(rules, "w") as f:
        f.write('reject client list:nets "554 5.7.1 blocked"\n')
    users = os.path.join(secret, "users")
    with open(users, "w") as f:
        f.write("bob@example.test\n")
    m.config["local_recipients"] = users
    m.write_config()
    refused(m, "local_recipients %s: not readable by user nobody (a reload reads it as that user): "
               "Permission denied" % users)
    m.config.pop("local_recipients")
    m.write_config()
    os.chmod(m.conf_path, 0o600)
    refused(m, "config %s: not readable by user nobody (a reload reads it as that user): "
               "Permission denied" % m.conf_path)


def test_a_sound_site_starts_and_its_log_is_the_run_users(site, backend):
    m = site()
    logs = os.path.join(m.workdir, "logs")
    os.mkdir(logs, 0o755)
    os.chown(logs, NOBODY.pw_uid, NOBODY.pw_gid)
    log = os.path.join(logs, "moat.log")
    m.config["log"] = log
    m.write_config()
    r = moat_t(m)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r
    assert not os.path.exists(log), "moat -t makes no file"
    m.start(wait_ready=False)
    deadline = time.monotonic() + 10
    while not (os.path.exists(log) and '"event":"ready"' in open(log).read()):
        assert m.proc.poll() is None, m.stderr_text()
        assert time.monotonic() < deadline, "no ready line in %s" % log
        time.sleep(0.05)                      # a bounded poll of the log file
    assert os.stat(log).st_uid == NOBODY.pw_uid, "the log file is the run user's"


def test_public_suffix_list_missing(site):
    """DMARC's public suffix list is read at start: a missing file stops
    moat -t and the start; with check_dmarc = no it is not needed."""
    m = site(public_suffix_list="/nonexistent/public_suffix_list.dat")
    refused(m, "public_suffix_list /nonexistent/public_suffix_list.dat: not readable by user nobody "
               "(a reload reads it as that user): No such file or directory")
    m.config["check_dmarc"] = "no"
    m.write_config()
    assert moat_t(m).returncode == 0
