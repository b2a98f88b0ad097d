"""Certificates and keys for the TLS tests, made by the openssl CLI into a
directory of the test's (nothing is committed): self-signed pairs (RSA,
ECDSA), pairs valid only in the past or the future, a leaf signed by an
intermediate signed by a root, and a CA of the test's own that signs server
certificates for DNS names and IP addresses (TestCA: the backend's side)."""

import hashlib
import os
import ssl
import subprocess

from moatlib import HOSTNAME

KEY_ARGS = {
    "rsa": ["-newkey", "rsa:2048"],
    "ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
}


def openssl(*args, cwd=None):
    args = [str(a) for a in args]
    r = subprocess.run(["openssl"] + args, capture_output=True, text=True, cwd=cwd, timeout=60)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr)
    return r.stdout


def _paths(d, name):
    return os.path.join(str(d), name + ".crt"), os.path.join(str(d), name + ".key")


def self_signed(d, name, kind="rsa", cn=HOSTNAME, days=30):
    """(cert, key) paths of a new self-signed pair; the key is 0600."""
    crt, key = _paths(d, name)
    openssl("req", "-x509", *KEY_ARGS[kind], "-nodes", "-keyout", key, "-out", crt, "-days", days,
            "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn)
    os.chmod(key, 0o600)
    return crt, key


def dated(d, name, start, end, kind="ec", cn=HOSTNAME):
    """A self-signed pair valid from start to end ("YYYYMMDDHHMMSSZ"): openssl ca takes
    explicit dates, req -x509 does not."""
    crt, key = _paths(d, name)
    cadir = os.path.join(str(d), name + ".ca")
    os.makedirs(cadir)
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("01\n")
    cnf = os.path.join(cadir, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\n"
                "default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n" % (cadir, cadir, cadir))
    csr = os.path.join(cadir, "req.csr")
    openssl("req", "-new", *KEY_ARGS[kind], "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    openssl("ca", "-batch", "-selfsign", "-config", cnf, "-keyfile", key, "-in", csr, "-out", crt,
            "-startdate", start, "-enddate", end, "-notext")
    os.chmod(key, 0o600)
    return crt, key


def chain(d, name, cn=HOSTNAME):
    """root -> intermediate -> leaf: (root cert, leaf+intermediate file, leaf key)."""
    d = str(d)
    root_crt, root_key = _paths(d, name + "-root")
    openssl("req", "-x509", *KEY_ARGS["ec"], "-nodes", "-keyout", root_key, "-out", root_crt, "-days", 30,
            "-subj", "/CN=moat test root", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ca_ext = os.path.join(d, name + "-ca.ext")
    with open(ca_ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    leaf_ext = os.path.join(d, name + "-leaf.ext")
    with open(leaf_ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:%s\n" % cn)
    mid_crt, mid_key = _paths(d, name + "-mid")
    openssl("req", "-new", *KEY_ARGS["ec"], "-nodes", "-keyout", mid_key, "-out", mid_crt + ".csr",
            "-subj", "/CN=moat test intermediate")
    openssl("x509", "-req", "-in", mid_crt + ".csr", "-CA", root_crt, "-CAkey", root_key, "-CAcreateserial",
            "-days", 30, "-extfile", ca_ext, "-out", mid_crt)
    leaf_crt, leaf_key = _paths(d, name)
    openssl("req", "-new", *KEY_ARGS["ec"], "-nodes", "-keyout", leaf_key, "-out", leaf_crt + ".csr",
            "-subj", "/CN=" + cn)
    openssl("x509", "-req", "-in", leaf_crt + ".csr", "-CA", mid_crt, "-CAkey", mid_key, "-CAcreateserial",
            "-days", 30, "-extfile", leaf_ext, "-out", leaf_crt)
    full = os.path.join(d, name + "-chain.crt")
    with open(full, "w") as out:
        for p in (leaf_crt, mid_crt):
            with open(p) as f:
                out.write(f.read())
    os.chmod(leaf_key, 0o600)
    return root_crt, full, leaf_key


class TestCA:
    """A CA of the test's own, and the server certificates it signs:

        ca = TestCA(tmp_path / "ca")              # ca.cert: the CA's PEM (backend_tls_ca)
        crt, key = ca.issue("pf", ["pf.example.test"], ["127.0.0.1"])
    """
    __test__ = False  # not a pytest class

    def __init__(self, directory, name="moat test CA"):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        openssl("req", "-x509", *KEY_ARGS["ec"], "-nodes", "-keyout", self.key, "-out", self.cert, "-days", 2,
                "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        os.chmod(self.key, 0o600)

    def issue(self, stem, dns_names=(), ips=(), days=2):
        """(cert path, key path) of a server certificate for the names and addresses, signed by
        this CA; the cert file holds the certificate then the CA's (a chain). The key is 0644:
        Postfix's smtpd reads it after dropping privileges in these tests."""
        key = os.path.join(self.dir, stem + ".key")
        csr = os.path.join(self.dir, stem + ".csr")
        crt = os.path.join(self.dir, stem + ".crt")
        full = os.path.join(self.dir, stem + ".pem")
        ext = os.path.join(self.dir, stem + ".ext")
        san = ["DNS:" + n for n in dns_names] + ["IP:" + a for a in ips]
        with open(ext, "w") as f:
            f.write("subjectAltName = %s\nextendedKeyUsage = serverAuth\nbasicConstraints = critical,CA:FALSE\n"
                    % ", ".join(san))
        openssl("req", "-new", *KEY_ARGS["ec"], "-nodes", "-keyout", key, "-out", csr,
                "-subj", "/CN=" + (list(dns_names) or list(ips))[0])
        openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                "-out", crt, "-days", days, "-extfile", ext)
        with open(full, "w") as out:
            for p in (crt, self.cert):
                with open(p) as f:
                    out.write(f.read())
        os.chmod(key, 0o644)
        return full, key


def fingerprint(crt):
    """SHA-256 of the (first) certificate in a PEM file."""
    with open(crt) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def peer_fingerprint(sslsock):
    return hashlib.sha256(sslsock.getpeercert(binary_form=True)).hexdigest()
