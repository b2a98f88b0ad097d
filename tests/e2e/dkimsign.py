"""DKIM signing for the end-to-end tests, with an independent implementation
(dkimpy, Debian python3-dkim): keys (RSA-2048, Ed25519), their DNS TXT
records, signatures, and a check with dkimpy's own verifier so that a test
never blames moat for a signature that was wrong to begin with."""

import base64
import functools
import re

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


class Key:
    def __init__(self, algo, private, txt):
        self.algo = algo          # "rsa" or "ed25519"
        self.private = private    # what dkim.sign wants
        self.txt = txt            # the DNS TXT record text

    @property
    def sig_algo(self):
        return b"rsa-sha256" if self.algo == "rsa" else b"ed25519-sha256"


@functools.lru_cache(maxsize=None)
def rsa_key(bits=2048, tag=0):
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    der = k.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    return Key("rsa", pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())


@functools.lru_cache(maxsize=None)
def ed25519_key(tag=0):
    k = ed25519.Ed25519PrivateKey.generate()
    seed = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                           serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # dkimpy takes an Ed25519 private key as the base64 of its 32-byte seed
    return Key("ed25519", base64.b64encode(seed), "v=DKIM1; k=ed25519; p=" + base64.b64encode(pub).decode())


def key(algo, tag=0):
    return rsa_key(2048, tag) if algo == "rsa" else ed25519_key(tag)


def sign(message, key, domain, selector, canon="relaxed/relaxed", length=False,
         headers=(b"from", b"to", b"subject", b"date", b"message-id"), algo=None):
    """The DKIM-Signature field (bytes, CRLF-terminated, folded) for message."""
    h, b = canon.split("/")
    sig = dkim.sign(message, selector.encode(), domain.encode(), key.private,
                    canonicalize=(h.encode(), b.encode()),
                    signature_algorithm=algo or key.sig_algo,
                    include_headers=list(headers), length=length)
    assert sig.startswith(b"DKIM-Signature:") and sig.endswith(b"\r\n"), sig
    return sig


def signed(message, key, domain, selector, **kw):
    return sign(message, key, domain, selector, **kw) + message


def b_tag(sig_field):
    """The b= value of a DKIM-Signature field, white space removed."""
    text = re.sub(rb"\s+", b"", sig_field.split(b":", 1)[1])
    m = re.search(rb"(?:^|;)b=([^;]*)", text)
    return m.group(1).decode()


def dkimpy_verifies(message, records):
    """dkimpy's verdict on message, with records {name: txt} as the DNS."""
    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        txt = records.get(n.rstrip(".").lower())
        return txt.encode() if txt is not None else None
    return dkim.verify(message, dnsfunc=dnsfunc)


def key_name(selector, domain):
    return "%s._domainkey.%s" % (selector, domain)
