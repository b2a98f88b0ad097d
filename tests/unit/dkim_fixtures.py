#!/usr/bin/python3
"""dkim_fixtures.py - messages signed by an independent signer for test_dkim.

    /usr/bin/python3 tests/unit/dkim_fixtures.py OUTDIR

Fresh keys are made on every run (RSA-2048 with openssl(1), Ed25519 with
PyNaCl) and every message is signed by dkimpy (python3-dkim), never by
libopendkim, so a bug shared by signer and verifier cannot hide itself.

Writes into OUTDIR:
  keys.txt   one line per published key: "<selector>._domainkey.<domain> <TXT value>"
  *.msg      messages in SMTP wire form: CRLF lines, dot-stuffed, no final "."

Which verdict each message must get is the business of test_dkim.c, not of
this script.
"""
import base64
import os
import subprocess
import sys

import dkim
import nacl.signing

DOMAIN = b"example.org"

BASE_HEADERS = (
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: moat dkim test,\r\n"
    b"\tfolded onto a second line  \r\n"
    b"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <%s@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
)

BASE_BODY = (
    b"Hello Bob,\r\n"
    b"\r\n"
    b"this message is   signed.  Trailing blanks follow:   \r\n"
    b"\tand a tab-led line.\r\n"
    b"\r\n"
    b"-- \r\n"
    b"Alice\r\n"
    b"\r\n"
    b"\r\n"
)

# Lines that SMTP dot-stuffs: a lone ".", and lines starting with dots.
DOT_BODY = (
    b"Lines that start with a dot:\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b".leading dot\r\n"
    b"end\r\n"
)


def rsa_key(outdir, name):
    """Returns (private PEM in PKCS#1, TXT value)."""
    path = os.path.join(outdir, name + ".pem")
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", path, "2048"],
                   check=True, stderr=subprocess.DEVNULL)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    with open(path, "rb") as f:
        pem = f.read()
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def ed25519_key():
    """Returns (private seed in base64, TXT value) as RFC 8463 publishes it."""
    sk = nacl.signing.SigningKey.generate()
    seed = base64.b64encode(bytes(sk))
    pub = base64.b64encode(bytes(sk.verify_key)).decode()
    return seed, "v=DKIM1; k=ed25519; p=" + pub


def message(msgid, body=BASE_BODY):
    return BASE_HEADERS % msgid + b"\r\n" + body


def sign(msg, selector, key, canon=(b"relaxed", b"relaxed"), alg=b"rsa-sha256", length=False,
         identity=None):
    sig = dkim.sign(msg, selector, DOMAIN, key, canonicalize=canon,
                    signature_algorithm=alg, length=length, identity=identity)
    return sig + msg


def stuff(msg):
    """SMTP dot-stuffing (RFC 5321 4.5.2) of a CRLF message."""
    lines = msg.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: dkim_fixtures.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    rsa, rsa_txt = rsa_key(out, "rsa2048")
    other, other_txt = rsa_key(out, "other")   # published under "wrongkey"
    unpub, _ = rsa_key(out, "unpublished")     # never published
    ed, ed_txt = ed25519_key()

    keys = {
        "rsa2048": rsa_txt,
        "ed": ed_txt,
        "wrongkey": other_txt,
        "sha1": rsa_txt,
    }
    msgs = {}
    m = message(b"rr")
    msgs["rr_rsa"] = sign(m, b"rsa2048", rsa)
    msgs["ss_rsa"] = sign(message(b"ss"), b"rsa2048", rsa, canon=(b"simple", b"simple"))
    msgs["rr_rsa_l"] = sign(message(b"rrl"), b"rsa2048", rsa, length=True)
    msgs["ss_rsa_l"] = sign(message(b"ssl"), b"rsa2048", rsa, canon=(b"simple", b"simple"),
                            length=True)
    # Text after the l= count is not covered: the library still passes it.
    msgs["rr_rsa_l_appended"] = msgs["rr_rsa_l"] + b"Appended after signing.\r\n"
    # A body shorter than l= cannot verify.
    msgs["rr_rsa_l_short"] = msgs["rr_rsa_l"][:-len(b"Alice\r\n\r\n\r\n")] + b"\r\n"
    msgs["ed25519"] = sign(message(b"ed"), b"ed", ed, alg=b"ed25519-sha256")
    msgs["ed25519_ss"] = sign(message(b"edss"), b"ed", ed, canon=(b"simple", b"simple"),
                              alg=b"ed25519-sha256")
    msgs["ed25519_tampered"] = msgs["ed25519"].replace(b"Hello Bob", b"Hello Eve")
    msgs["body_tampered"] = msgs["rr_rsa"].replace(b"Hello Bob", b"Hello Eve")
    msgs["header_tampered"] = msgs["rr_rsa"].replace(b"Subject: moat dkim test",
                                                     b"Subject: moat dkim TEST")
    msgs["nokey"] = sign(message(b"nokey"), b"missing", unpub)
    msgs["revoked"] = sign(message(b"revoked"), b"revoked", unpub)
    msgs["servfail"] = sign(message(b"servfail"), b"servfail", unpub)
    msgs["multi"] = sign(message(b"multi"), b"multi", rsa)
    # Two signatures: the outer one by a key that is not the published one.
    two = sign(message(b"two"), b"rsa2048", rsa)
    msgs["two_sigs"] = sign(two, b"wrongkey", unpub)
    msgs["unsigned"] = message(b"unsigned")
    msgs["dotstuff"] = sign(message(b"dot", BASE_BODY + DOT_BODY), b"rsa2048", rsa)
    msgs["sha1"] = sign(message(b"sha1"), b"sha1", rsa, alg=b"rsa-sha1")
    # A signature without bh= next to a good one.
    good = sign(message(b"malformed"), b"rsa2048", rsa)
    sig = good.split(b"DKIM-Signature:", 2)[1].split(b"\r\nFrom:")[0]
    nobh = b"DKIM-Signature:" + b";".join(t for t in sig.split(b";")
                                           if not t.strip().startswith(b"bh=")) + b"\r\n"
    msgs["malformed"] = nobh + message(b"malformed")
    msgs["malformed_plus_good"] = nobh + good
    # More signatures than DKIM_MAX_SIGS (8): ten good ones (i= differs, so
    # do the b= values).
    many = message(b"many")
    for i in range(10):
        many = sign(many, b"rsa2048", rsa, identity=b"signer%d@example.org" % i)
    msgs["many_sigs"] = many

    with open(os.path.join(out, "keys.txt"), "w") as f:
        for sel, txt in keys.items():
            f.write("%s._domainkey.%s %s\n" % (sel, DOMAIN.decode(), txt))
    for name, msg in msgs.items():
        with open(os.path.join(out, name + ".msg"), "wb") as f:
            f.write(stuff(msg))
    for name in ("rsa2048", "other", "unpublished"):
        os.unlink(os.path.join(out, name + ".pem"))


if __name__ == "__main__":
    main()
