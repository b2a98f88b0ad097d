"""make image: the OCI image, built offline by buildah from scratch. Running
containers is not possible here (crun cannot set its cgroups), so the image
is tested from its root file system (buildah from + buildah mount): what it
holds (moat, exactly the libraries ldd names and the loader, /etc/moat, a
user of its own, nothing else: no shell), its config (a numeric non-root
user, the entrypoint, OCI labels), and moat run from it with chroot as the
image's user: moat -t passes, user lookups work without an NSS module, and
a message goes through it to a backend on loopback."""

import json
import os
import re
import shutil
import smtplib
import ssl
import subprocess

import pytest

from conftest import base_config
from moatlib import REPO, clean_make_env, SMTPClient, Moat, free_port
from tlscerts import self_signed

IMAGE_BUILD = os.path.join(REPO, "build", "image")
UID = 65532


def version():
    with open(os.path.join(REPO, "proxy", "version.h")) as f:
        return re.search(r'#define MOAT_VERSION "([^"]+)"', f.read()).group(1)


@pytest.fixture(scope="module")
def buildah(tmp_path_factory):
    """buildah with a store of the test's own (vfs: no overlay mount needed)."""
    if not shutil.which("buildah"):
        pytest.skip("buildah not installed (make deps installs it)")
    if os.geteuid() != 0:
        pytest.skip("buildah mount needs root (CI runs the suite as root)")
    d = tmp_path_factory.mktemp("buildah")
    cmd = ["buildah", "--root", str(d / "root"), "--runroot", str(d / "run"), "--storage-driver", "vfs"]
    probe = subprocess.run(cmd + ["from", "scratch"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("buildah cannot run here: %s" % probe.stderr.strip()[-300:])
    subprocess.run(cmd + ["rm", probe.stdout.strip()], capture_output=True, timeout=60)
    yield cmd
    subprocess.run(cmd + ["rm", "--all"], capture_output=True, timeout=120)
    subprocess.run(cmd + ["rmi", "--all", "--force"], capture_output=True, timeout=120)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def image(buildah):
    r = subprocess.run(["make", "--no-print-directory", "-C", REPO, "image", "BUILDAH=" + " ".join(buildah)],
                       capture_output=True, text=True, timeout=900, env=clean_make_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ref = "moat:%s" % version()
    m = re.search(r"^image %s: (\d+) KiB unpacked" % re.escape(ref), r.stdout, re.M)
    assert m, r.stdout
    print("\nimage %s: %s KiB unpacked" % (ref, m.group(1)))
    return ref, int(m.group(1))


@pytest.fixture(scope="module")
def root(buildah, image):
    ctr = subprocess.run(buildah + ["from", image[0]], capture_output=True, text=True, check=True,
                         timeout=120).stdout.strip()
    path = subprocess.run(buildah + ["mount", ctr], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()
    yield path
    subprocess.run(buildah + ["umount", ctr], capture_output=True, timeout=60)
    subprocess.run(buildah + ["rm", ctr], capture_output=True, timeout=60)


def in_image(root, *argv, **kw):
    """A command of the image run as its user, with chroot."""
    return subprocess.run(["chroot", "--userspec=%d:%d" % (UID, UID), root] + list(argv),
                          capture_output=True, text=True, timeout=60, **kw)


def needed_libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] == "=>" and f[2].startswith("/"):
            libs.add(f[2])
        elif f and f[0].startswith("/"):
            libs.add(f[0])  # the loader
    return libs


def test_holds_moat_its_libraries_and_config_only(root):
    files = set()
    for d, dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            assert os.path.isfile(p) and not os.path.islink(p), p
            files.add("/" + os.path.relpath(p, root))
    rules = {"/usr/share/moat/rules/" + n for n in os.listdir(os.path.join(REPO, "rules")) if n.endswith(".rules")}
    libs = needed_libraries(os.path.join(IMAGE_BUILD, "moat"))
    assert files == {"/usr/sbin/moat", "/etc/moat/moat.conf", "/etc/passwd", "/etc/group",
                     "/etc/nsswitch.conf", "/usr/share/publicsuffix/public_suffix_list.dat"} | rules | libs
    with open(os.path.join(REPO, "docs", "moat.conf.example")) as f, \
            open(os.path.join(root, "etc/moat/moat.conf")) as g:
        assert f.read() == g.read()
    assert os.stat(os.path.join(root, "tmp")).st_mode & 0o7777 == 0o1777


def test_image_config(buildah, image):
    info = json.loads(subprocess.run(buildah + ["inspect", "--type", "image", image[0]], capture_output=True,
                                     text=True, check=True, timeout=60).stdout)
    config = info["OCIv1"]["config"]
    assert config["User"] == "%d:%d" % (UID, UID), "numeric, so that runAsNonRoot can check it"
    assert config["Entrypoint"] == ["/usr/sbin/moat"]
    assert not config.get("Cmd")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "moat"
    assert labels["org.opencontainers.image.version"] == version()
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])
    assert image[1] < 32 * 1024, "the image grew: %d KiB" % image[1]


def test_no_shell(root):
    r = in_image(root, "/bin/sh", "-c", "true")
    assert r.returncode == 127 and "No such file" in r.stderr, r
    for shell in ("bin/sh", "bin/bash", "bin/busybox", "usr/bin/apt", "usr/bin/dpkg"):
        assert not os.path.lexists(os.path.join(root, shell)), shell


def test_moat_t_as_the_image_user(root):
    r = in_image(root, "/usr/sbin/moat", "-t")
    assert r.returncode == 0, r
    assert "/etc/moat/moat.conf: configuration OK" in r.stdout


def test_user_lookup_without_nss_modules(root, tmp_path):
    """moat names its user from /etc/passwd (glibc's built-in files lookup):
    the image's user is "moat", not a bare uid."""
    conf = os.path.join(root, "etc/moat/unwritable-spool.conf")
    with open(conf, "w") as f:
        f.write("spool_dir = /etc\n")
    try:
        r = in_image(root, "/usr/sbin/moat", "-t", "-c", "/etc/moat/unwritable-spool.conf")
    finally:
        os.unlink(conf)
    assert r.returncode == 1 and "spool_dir /etc: user moat cannot write a file there" in r.stderr, r


def test_a_message_goes_through_the_image(root, backend, dns):
    """moat from the image's root, as its user, listening on loopback, in
    front of tests/e2e/backend.py outside the chroot; a large message
    spills to the image's /tmp."""
    cfg = base_config(os.path.join(root, "tmp"), "127.0.0.1:%d" % backend.port, dns)
    cfg.update(listen="127.0.0.1:%d" % free_port(), spool_dir="/tmp", workers="2")
    del cfg["run_as_root"]
    m = Moat(cfg, os.path.join(root, "etc/moat"), bin_path="/usr/sbin/moat", conf_name="e2e.conf")
    m.conf_path = "/etc/moat/e2e.conf"  # as the chroot sees it
    m.prefix = ["chroot", "--userspec=%d:%d" % (UID, UID), root]
    try:
        m.start()
        big = b"Subject: through the image\r\n\r\n" + (b"z" * 998 + b"\r\n") * 400  # > 256 KiB
        with SMTPClient(m.port) as c:
            c.ehlo()
            r = c.transaction("alice@example.org", ["bob@example.test"], big)
            assert r.code == 250, r
        [msg] = backend.wait_stored(1)
        assert msg.mail_from == "alice@example.org" and msg.rcpts == ["bob@example.test"]
        assert msg.data.endswith(big)
        assert m.stop() == 0, m.stderr_text()[-2000:]
    finally:
        m.kill()
        os.unlink(os.path.join(root, "etc/moat/e2e.conf"))


def test_starttls_through_the_image(root, backend, dns):
    """STARTTLS with the image's OpenSSL (nothing it needs is loaded from
    outside the image): a certificate in /etc/moat, a client with smtplib."""
    tls = os.path.join(root, "etc/moat/tls")
    os.makedirs(tls)
    crt, key = self_signed(tls, "mx")
    os.chown(key, UID, UID)
    cfg = base_config(os.path.join(root, "tmp"), "127.0.0.1:%d" % backend.port, dns)
    cfg.update(listen="127.0.0.1:%d" % free_port(), spool_dir="/tmp", tls_cert="/etc/moat/tls/mx.crt",
               tls_key="/etc/moat/tls/mx.key")
    del cfg["run_as_root"]
    m = Moat(cfg, os.path.join(root, "etc/moat"), bin_path="/usr/sbin/moat", conf_name="tls.conf")
    m.conf_path = "/etc/moat/tls.conf"
    m.prefix = ["chroot", "--userspec=%d:%d" % (UID, UID), root]
    try:
        m.start()
        ctx = ssl.create_default_context(cafile=crt)
        ctx.check_hostname = False  # the certificate is checked; its name is not 127.0.0.1
        with smtplib.SMTP("127.0.0.1", m.port, timeout=10) as c:
            assert c.starttls(context=ctx)[0] == 220
            c.sendmail("alice@example.org", ["bob@example.test"], b"Subject: tls\r\n\r\nsealed\r\n")
        [msg] = backend.wait_stored(1)
        assert msg.data.endswith(b"sealed\r\n")
        t = m.wait_log(lambda l: l.get("event") == "tls", what="the tls line")
        assert t["tls_version"] in ("TLSv1.2", "TLSv1.3"), t
        assert m.stop() == 0, m.stderr_text()[-2000:]
    finally:
        m.kill()
        os.unlink(os.path.join(root, "etc/moat/tls.conf"))
        shutil.rmtree(tls)
