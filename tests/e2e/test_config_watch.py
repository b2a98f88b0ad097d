"""config_watch: moat reloads by itself when the files a reload reads change.

The main case is exactly what kubelet does to a mounted ConfigMap: the files
live in a timestamped directory `..2026_12_07_...`, `..data` is a symlink to
it, and the visible names are symlinks through `..data` (moat.conf ->
..data/moat.conf). An update writes a new timestamped directory, makes a
symlink `..data_tmp` to it, renames that over `..data` (atomic) and removes
the old directory. moat must see the new rule in effect after one reload,
refuse a broken new config and keep the old, and reload once per swap.
"""

import os
import shutil
import signal

import pytest

from moatlib import SMTPClient

SPAMMER = "bulk@spammer.example"
RCPT = "bob@example.test"
MSG = b"Subject: watch\r\n\r\nx\r\n"
RULE_V1 = 'reject sender-domain other.example "550 5.7.1 No mail from %{sender_domain}"\n'
RULE_V2 = 'reject sender-domain spammer.example "550 5.7.1 No mail from %{sender_domain}" id watched\n'


class KubeletVolume:
    """A ConfigMap volume laid out and updated the way kubelet's AtomicWriter does."""

    def __init__(self, root):
        self.root = str(root)
        os.makedirs(self.root)
        self.n = 0
        self.current = None

    def write(self, files):
        """A new timestamped dir with files, swapped in atomically through ..data."""
        self.n += 1
        ts = "..2026_12_07_10_%02d_00.%09d" % (self.n, 123456789 + self.n)
        os.mkdir(os.path.join(self.root, ts))
        for name, text in files.items():
            with open(os.path.join(self.root, ts, name), "w") as f:
                f.write(text)
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(ts, tmp)
        os.rename(tmp, os.path.join(self.root, "..data"))
        for name in files:  # the visible names, made once (kubelet adds new keys' the same way)
            link = os.path.join(self.root, name)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", name), link)
        if self.current:
            shutil.rmtree(os.path.join(self.root, self.current))
        self.current = ts

    def path(self, name):
        return os.path.join(self.root, name)


def conf_text(m, vol, **extra):
    cfg = dict(m.config)
    cfg.update(rules=vol.path("moat.rules"), config_watch="yes")
    cfg.update(extra)
    return "".join("%s = %s\n" % (k, v) for k, v in cfg.items() if v is not None)


def start_on_volume(moat_factory, tmp_path, **keys):
    """moat started with -c VOLUME/moat.conf (a symlink through ..data)."""
    m = moat_factory(_start=False, **keys)
    vol = KubeletVolume(tmp_path / "configmap")
    vol.write({"moat.conf": conf_text(m, vol), "moat.rules": RULE_V1})
    m.conf_path = vol.path("moat.conf")
    m.start()
    return m, vol


def send(m, sender):
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % sender, 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        if r.code == 250:
            r = c.data(MSG)
        c.expect("QUIT", 221)
        return r


def is_watch(l):
    return l.get("event") == "config_watch" and "reloading" in l.get("msg", "")


def is_reloaded(l):
    return l.get("event") == "reload" and "configuration reloaded" in l.get("msg", "")


def is_refused(l):
    return l.get("event") == "reload" and "keeping the running configuration" in l.get("msg", "")


def swap_and_check(m, vol, workers):
    assert send(m, SPAMMER).code == 250
    # the new rule, swapped in the way kubelet does it
    vol.write({"moat.conf": conf_text(m, vol, workers=workers), "moat.rules": RULE_V2})
    line = m.wait_log(is_watch, what="config_watch reloading line")
    assert "..data" in line["msg"], line
    m.logs.wait_count(is_reloaded, workers, what="a reload line per worker")
    r = send(m, SPAMMER)
    assert r.code == 550 and "No mail from spammer.example" in r.text, r
    # a broken new config: refused, the running one kept
    vol.write({"moat.conf": conf_text(m, vol, workers=workers, max_recipients="lots"),
               "moat.rules": RULE_V2})
    m.logs.wait_count(is_watch, 2, what="the second config_watch line")
    m.logs.wait_count(is_refused, workers, what="the broken config refused by each worker")
    refused = [l for l in m.logs.snapshot() if is_refused(l)]
    assert all("moat.conf" in l["msg"] and "max_recipients" in l["msg"] for l in refused), refused
    assert send(m, SPAMMER).code == 550
    # one reload per swap: the second swap's events came after all of the first's
    logs = m.logs.snapshot()
    assert len([l for l in logs if is_watch(l)]) == 2, [l for l in logs if l.get("event") in
                                                        ("config_watch", "reload")]
    assert len([l for l in logs if is_reloaded(l)]) == workers
    assert len([l for l in logs if is_refused(l)]) == workers
    assert m.proc.poll() is None


def test_kubelet_configmap_swap_reloads_once(moat_factory, backend, tmp_path):
    m, vol = start_on_volume(moat_factory, tmp_path)
    m.wait_log(lambda l: l.get("event") == "config_watch" and "watching" in l.get("msg", ""))
    swap_and_check(m, vol, 1)


def test_kubelet_configmap_swap_with_workers(moat_factory, backend, tmp_path):
    """workers = 2: the supervisor watches and passes the reload on to each worker."""
    m, vol = start_on_volume(moat_factory, tmp_path, workers=2)
    m.logs.wait_count(lambda l: l.get("event") == "ready", 2, what="both workers ready")
    swap_and_check(m, vol, 2)
    # the watch is the supervisor's: its lines carry no worker number
    assert all("worker" not in l for l in m.logs.snapshot() if is_watch(l))


def test_plain_file_replaced_by_rename(moat_factory, backend, tmp_path):
    """Outside Kubernetes: a rule file saved by an editor (written to a new file, renamed over)."""
    rules = tmp_path / "moat.rules"
    rules.write_text(RULE_V1)
    m = moat_factory(rules=str(rules), config_watch="yes")
    assert send(m, SPAMMER).code == 250
    tmp = tmp_path / "moat.rules.swp"
    tmp.write_text(RULE_V2)
    os.rename(str(tmp), str(rules))
    line = m.wait_log(is_watch)
    assert line["msg"].startswith(str(rules) + " changed"), line
    m.wait_log(is_reloaded)
    assert send(m, SPAMMER).code == 550
    # written in place (IN_CLOSE_WRITE): the rule goes again
    with open(str(rules), "w") as f:
        f.write(RULE_V1)
    m.logs.wait_count(is_reloaded, 2, what="the second reload")
    assert send(m, SPAMMER).code == 250
    assert len([l for l in m.logs.snapshot() if is_watch(l)]) == 2


def test_off_by_default(moat_factory, backend, tmp_path):
    """Without config_watch a swap changes nothing until SIGHUP, which reloads once."""
    m2 = moat_factory(_start=False)
    vol2 = KubeletVolume(tmp_path / "configmap2")
    vol2.write({"moat.conf": conf_text(m2, vol2, config_watch=None), "moat.rules": RULE_V1})
    m2.conf_path = vol2.path("moat.conf")
    m2.start()
    vol2.write({"moat.conf": conf_text(m2, vol2, config_watch=None), "moat.rules": RULE_V2})
    assert send(m2, SPAMMER).code == 250  # not reloaded by itself
    m2.signal(signal.SIGHUP)
    m2.wait_log(is_reloaded)
    assert send(m2, SPAMMER).code == 550
    assert not [l for l in m2.logs.snapshot() if l.get("event") == "config_watch"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_named_by_the_new_config_is_watched(moat_factory, backend, tmp_path, workers):
    """After a reload the set is the new config's: a rule file in another directory
    (the supervisor, with workers = 2, learns it by reading the new config too)."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "site.rules").write_text(RULE_V1)
    m = moat_factory(config_watch="yes", workers=workers)
    m.logs.wait_count(lambda l: l.get("event") == "ready", workers, what="workers ready")
    cfg = dict(m.config)
    cfg["rules"] = str(other / "site.rules")
    m.write_config(cfg)  # a new file renamed over moat.conf
    m.logs.wait_count(is_reloaded, workers, what="the reload naming the other rule file")
    assert send(m, SPAMMER).code == 250
    tmp = other / "site.rules.new"
    tmp.write_text(RULE_V2)
    os.rename(str(tmp), str(other / "site.rules"))
    line = m.logs.wait_count(is_watch, 2, what="the change in the other directory")[1]
    assert line["msg"].startswith(str(other / "site.rules")), line
    m.logs.wait_count(is_reloaded, 2 * workers, what="its reload")
    assert send(m, SPAMMER).code == 550


@pytest.mark.parametrize("workers", [1, 2])
def test_systemd_notify_with_config_watch(moat_factory, backend, tmp_path, monkeypatch, workers):
    """Under Type=notify a reload by config_watch is a reload like SIGHUP's:
    RELOADING=1, then READY=1 once every worker has applied it (the workers'
    reports reach the supervisor through the watch's signal descriptor)."""
    from test_service import NotifySocket, banner, start_notified
    n = NotifySocket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", n.address)
    try:
        m, port, _ = start_notified(moat_factory, tmp_path, workers, config_watch="yes")
        n.messages.wait(lambda msg: msg.get("READY") == "1", what="READY=1")
        seen = len(n.messages.snapshot())
        m.config["hostname"] = "mx.watched.example"
        m.write_config()  # renamed into place: no SIGHUP
        reloading = n.messages.wait(lambda msg: True, what="RELOADING=1", start=seen)
        assert reloading.get("RELOADING") == "1", reloading
        n.messages.wait(lambda msg: msg.get("READY") == "1", what="READY=1 after the reload", start=seen + 1)
        for _ in range(2 * workers):
            assert "mx.watched.example" in banner(port).text
        m.stop()
    finally:
        n.close()
