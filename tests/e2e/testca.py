"""testca - a certificate authority of the test's own, made with the openssl CLI into a temp dir
(never committed keys): a CA, and server certificates it signs for DNS names and IP addresses.

    ca = TestCA(tmp_path / "ca")                 # ca.cert: the CA's PEM, for backend_tls_ca
    crt, key = ca.issue("pf", ["pf.example.test"], ["127.0.0.1"])
"""

import os
import subprocess


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr))
    return r.stdout


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, directory, name="moat test CA"):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=" + name,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        os.chmod(self.key, 0o600)

    def issue(self, stem, dns_names=(), ips=(), days=2):
        """(cert path, key path) of a server certificate for the names and addresses, signed by
        this CA; the cert file holds the certificate then the CA's (a chain)."""
        key = os.path.join(self.dir, stem + ".key")
        csr = os.path.join(self.dir, stem + ".csr")
        crt = os.path.join(self.dir, stem + ".crt")
        chain = os.path.join(self.dir, stem + ".pem")
        ext = os.path.join(self.dir, stem + ".ext")
        san = ["DNS:" + n for n in dns_names] + ["IP:" + a for a in ips]
        cn = (list(dns_names) or list(ips))[0]
        with open(ext, "w") as f:
            f.write("subjectAltName = %s\nextendedKeyUsage = serverAuth\n"
                    "basicConstraints = critical,CA:FALSE\n" % ", ".join(san))
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                 "-out", crt, "-days", str(days), "-extfile", ext)
        with open(chain, "w") as f:
            f.write(open(crt).read() + open(self.cert).read())
        os.chmod(key, 0o644)   # Postfix's smtpd reads it after dropping privileges in these tests
        return chain, key
