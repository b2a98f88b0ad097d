"""Certificates and keys for the TLS tests, made by the openssl CLI into a
directory of the test's (nothing is committed): self-signed pairs (RSA,
ECDSA), pairs valid only in the past or the future, and a leaf signed by an
intermediate signed by a root."""

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


def fingerprint(crt):
    """SHA-256 of the (first) certificate in a PEM file."""
    with open(crt) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def peer_fingerprint(sslsock):
    return hashlib.sha256(sslsock.getpeercert(binary_form=True)).hexdigest()
