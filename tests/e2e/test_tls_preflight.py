"""`moat -t` and a start check tls_cert and tls_key (issue 14, item 1): a
pair that cannot be read (by the user moat runs as, too: a reload reads it
as that user), a key that does not fit its certificate, a certificate
expired or not valid yet, an encrypted key, two pairs of one key type are
errors "FILE: message" and a start refuses to serve; a key file anyone may
read is a warning."""

import os
import shutil

import pytest

from conftest import require_moat
from moatlib import SMTPClient, Watched, run_moat_t
from test_preflight import NOBODY, refused, site  # noqa: F401 (site: a fixture)
from tlscerts import dated, openssl, self_signed


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs")
    return {"rsa": self_signed(d, "rsa", "rsa"), "ec": self_signed(d, "ec", "ec"),
            "ec2": self_signed(d, "ec2", "ec"),
            "expired": dated(d, "expired", "20200101000000Z", "20200102000000Z"),
            "future": dated(d, "future", "20990101000000Z", "20991231000000Z")}


def refused_tls(moat_factory, message, **keys):
    """moat -t prints message alone (as a config error) and fails; a start logs it and exits 1."""
    require_moat()
    m = moat_factory(_start=False, _expect_rc=1, **keys)
    r = run_moat_t(m.conf_path)
    assert r.returncode == 1, r
    assert r.stderr.decode().startswith(message), (r.stderr, message)
    m.start(wait_ready=False)
    assert m.wait_exit() == 1, m.stderr_text()
    errors = [l["msg"] for l in m.logs.snapshot() if l.get("level") == "error"]
    assert len(errors) == 1 and errors[0].startswith(message), m.stderr_text()
    assert not [l for l in m.logs.snapshot() if l.get("event") in ("listening", "ready")]
    return errors[0]


def test_missing_files(moat_factory, pairs, tmp_path):
    crt, key = pairs["ec"]
    gone = str(tmp_path / "gone.pem")
    refused_tls(moat_factory, "%s: cannot open: No such file or directory" % gone, tls_cert=gone, tls_key=key)
    refused_tls(moat_factory, "%s: cannot open: No such file or directory" % gone, tls_cert=crt, tls_key=gone)


def test_key_does_not_fit(moat_factory, pairs):
    crt = pairs["ec"][0]
    for key in (pairs["ec2"][1], pairs["rsa"][1]):   # another key of the same type; of another type
        refused_tls(moat_factory, "%s: the key does not match the certificate in %s: " % (key, crt),
                    tls_cert=crt, tls_key=key)
    # by position: the second key goes with the second certificate
    refused_tls(moat_factory, "%s: the key does not match the certificate in %s" % (pairs["ec2"][1], pairs["rsa"][0]),
                tls_cert="%s, %s" % (pairs["ec"][0], pairs["rsa"][0]),
                tls_key="%s, %s" % (pairs["ec"][1], pairs["ec2"][1]))


def test_expired_and_not_yet_valid(moat_factory, pairs):
    crt, key = pairs["expired"]
    refused_tls(moat_factory, "%s: the certificate has expired (not after 2020-01-02 00:00:00 UTC)" % crt,
                tls_cert=crt, tls_key=key)
    crt, key = pairs["future"]
    refused_tls(moat_factory, "%s: the certificate is not valid yet (not before 2099-01-01 00:00:00 UTC)" % crt,
                tls_cert=crt, tls_key=key)


def test_not_pem_encrypted_same_type(moat_factory, pairs, tmp_path):
    crt, key = pairs["ec"]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    refused_tls(moat_factory, "%s: no certificate in it (PEM: -----BEGIN CERTIFICATE-----)" % junk,
                tls_cert=str(junk), tls_key=key)
    refused_tls(moat_factory, "%s: no private key in it" % crt, tls_cert=crt, tls_key=crt)
    enc = str(tmp_path / "enc.key")
    openssl("pkey", "-in", key, "-out", enc, "-aes256", "-passout", "pass:secret")
    refused_tls(moat_factory, "%s: the key is encrypted: moat takes no passphrase" % enc, tls_cert=crt, tls_key=enc)
    refused_tls(moat_factory, "%s: its key is of the same type as %s's (id-ecPublicKey)" % (pairs["ec2"][0], crt),
                tls_cert="%s,%s" % (crt, pairs["ec2"][0]), tls_key="%s,%s" % (key, pairs["ec2"][1]))


def test_files_go_in_pairs(moat_factory, pairs):
    m = moat_factory(_start=False, tls_cert="%s, %s" % (pairs["ec"][0], pairs["rsa"][0]), tls_key=pairs["ec"][1])
    r = run_moat_t(m.conf_path)
    assert r.returncode == 1
    assert r.stderr.decode().startswith("%s:" % m.conf_path), r.stderr
    assert "tls_cert names 2 files and tls_key 1: they go in pairs" in r.stderr.decode(), r.stderr
    m = moat_factory(_start=False, tls_cert="a, b, c", tls_key="a, b, c")
    r = run_moat_t(m.conf_path)
    assert r.returncode == 1 and b"tls_cert: more than 2 files" in r.stderr, r.stderr


def test_world_readable_key_warns(moat_factory, pairs, tmp_path):
    crt = pairs["ec"][0]
    key = str(tmp_path / "open.key")
    shutil.copy(pairs["ec"][1], key)
    os.chmod(key, 0o644)
    m = moat_factory(_start=False, tls_cert=crt, tls_key=key)
    r = run_moat_t(m.conf_path)
    assert r.returncode == 0, r
    assert r.stderr.decode() == "%s: warning: the private key is world-readable (chmod o-r %s)\n" % (key, key)
    m.start()
    warn = m.wait_log(lambda l: l.get("event") == "tls" and l.get("level") == "warning")
    assert warn["msg"] == r.stderr.decode().rstrip("\n")
    os.chmod(key, 0o640)
    r = run_moat_t(m.conf_path)
    assert r.returncode == 0 and r.stderr == b"", r


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to check as another user)")
def test_pair_the_run_user_cannot_read(site, pairs):  # noqa: F811
    m = site()
    crt, key = (os.path.join(m.workdir, "server.crt"), os.path.join(m.workdir, "server.key"))
    shutil.copy(pairs["ec"][0], crt)
    shutil.copy(pairs["ec"][1], key)
    os.chmod(key, 0o600)              # root's: a start (as root) reads it, a reload (as nobody) could not
    m.config.update(tls_cert=crt, tls_key=key)
    m.write_config()
    refused(m, "tls_key %s: not readable by user nobody (a reload reads it as that user): Permission denied"
            % key)
    os.chown(key, 0, NOBODY.pw_gid)   # root:nogroup 0640, as a site would give it to moat's group
    os.chmod(key, 0o640)
    r = run_moat_t(m.conf_path)
    assert r.returncode == 0 and r.stderr == b"", r
    m.logs, m.raw_lines, m.noise = Watched(), [], []
    m.start()
    with SMTPClient(m.port) as c:
        assert "STARTTLS" in c.ehlo().texts
