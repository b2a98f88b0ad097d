"""DKIM (RFC 6376, RFC 8463) at the end of data, through SMTP, with
signatures made by an independent signer (dkimpy) and keys served by a DNS
server on loopback. Signatures present, none passing and at least one failing
-> 550 5.7.20 and nothing delivered; otherwise the message is delivered with
one dkim= result per signature in moat's Authentication-Results (header.d,
header.s, header.b = the first 8 characters of b=), or dkim=none.

moat's documented choices (checks/dkim.c, RFC 6376 6.1.2 + RFC 8601 2.7.1):
a key that does not exist (NXDOMAIN/NODATA) and a revoked key (p=) are
"permerror" (nothing could be verified) -> delivered; a key lookup that fails
temporarily is "temperror" -> delivered. The default policy (issue 16)
refuses a failing signature only when it is the From domain's own, none
passes, and the message is not list mail; test_policy_corpus.py has the
corpus."""

import re

import pytest

import dkimsign
from checkslib import (RCPT, authres_of, base_zone, checks_moat, connect,
                       stored_message, wait_decision)
from dkimsign import b_tag, dkimpy_verifies, key_name, sign, signed

DOMAIN = "dkim.example"
OTHER = "other-dkim.example"
SENDER = "alice@example.org"


def body_lines(n=5):
    return b"".join(b"Line %d of a signed message.\r\n" % i for i in range(n))


def message(subject="signed", body=None, extra=b""):
    return (b"From: Alice <alice@" + DOMAIN.encode() + b">\r\nTo: bob@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
            b"Message-ID: <" + subject.replace(" ", "-").encode() + b"@dkim.example>\r\n" + extra
            + b"\r\n" + (body if body is not None else body_lines()))


def zone():
    z = base_zone()
    rsa, ed = dkimsign.key("rsa"), dkimsign.key("ed25519")
    z[DOMAIN] = [("A", "192.0.2.50"), ("MX", (10, "mail." + DOMAIN))]
    z[OTHER] = [("A", "192.0.2.51")]
    z[key_name("rsa", DOMAIN)] = [("TXT", rsa.txt)]
    z[key_name("ed", DOMAIN)] = [("TXT", ed.txt)]
    z[key_name("rsa", OTHER)] = [("TXT", dkimsign.key("rsa", tag=1).txt)]   # not the signing key
    z[key_name("revoked", DOMAIN)] = [("TXT", "v=DKIM1; k=rsa; p=")]
    z[key_name("testing", DOMAIN)] = [("TXT", rsa.txt.replace("v=DKIM1;", "v=DKIM1; t=y;"))]
    z[key_name("tempfail", DOMAIN)] = [("SERVFAIL", "TXT")]
    z[key_name("silent", DOMAIN)] = [("DROP", "TXT")]
    return z


def dns_records():
    """The key records as dkimpy's verifier would see them."""
    return {n: dict(e)["TXT"] for n, e in zone().items() if "_domainkey" in n and
            isinstance(e[0], tuple) and e[0][0] == "TXT"}


@pytest.fixture
def zdns(dns_factory):
    return dns_factory(zone())


@pytest.fixture
def dmoat(moat_factory, zdns, backend):
    return checks_moat(moat_factory, zdns)


def send(moat, msg):
    """One transaction; returns the end-of-data reply."""
    with connect(moat) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        r = c.data(msg)
        c.expect("QUIT", 221)
    return r


def delivered(moat, backend, msg):
    r = send(moat, msg)
    assert r.code == 250, r
    m = stored_message(backend, r)
    return m, authres_of(m, msg)


def refused(moat, backend, msg):
    r = send(moat, msg)
    assert r.code == 550 and r.enhanced() == ["5.7.20"], r
    moat.wait_session_end(1)
    assert not backend.messages(), "a refused message was delivered"
    assert not [x for x in backend.commands() if x.upper() == "DATA"], "the backend got DATA"
    return r


def data_decision(moat):
    return wait_decision(moat, lambda l: l["stage"] == "data")


def key_for(selector):
    return dkimsign.key("ed25519" if selector == "ed" else "rsa")


# ------------------------------------------------------------------- valid

@pytest.mark.parametrize("length", [False, True], ids=["no-l", "l"])
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
@pytest.mark.parametrize("selector", ["rsa", "ed"], ids=["rsa2048", "ed25519"])
def test_valid_signature_passes(dmoat, backend, selector, canon, length):
    plain = message("valid %s %s %s" % (selector, canon.replace("/", "-"), length))
    sig = sign(plain, key_for(selector), DOMAIN, selector, canon=canon, length=length)
    msg = sig + plain
    assert dkimpy_verifies(msg, dns_records())
    m, ar = delivered(dmoat, backend, msg)
    assert ar["dkim"] == [{"result": "pass", "header.d": DOMAIN, "header.s": selector,
                           "header.b": b_tag(sig)[:8]}], ar
    d = data_decision(dmoat)
    assert d["dkim"] == "%s:pass" % DOMAIN, d


@pytest.mark.parametrize("selector", ["rsa", "ed"], ids=["rsa2048", "ed25519"])
def test_l_tag_covers_only_signed_body(dmoat, backend, selector):
    """With l= the text appended after signing is not covered: still pass.
    Without l= the same append breaks the body hash: refused."""
    plain = message("l tag " + selector)
    extra = b"Appended by a mailing list.\r\n"
    with_l = sign(plain, key_for(selector), DOMAIN, selector, length=True) + plain + extra
    _m, ar = delivered(dmoat, backend, with_l)
    assert [s["result"] for s in ar["dkim"]] == ["pass"], ar


@pytest.mark.parametrize("selector", ["rsa", "ed"], ids=["rsa2048", "ed25519"])
def test_appended_text_without_l_fails(dmoat, backend, selector):
    plain = message("no l tag " + selector)
    msg = sign(plain, key_for(selector), DOMAIN, selector) + plain + b"Appended.\r\n"
    assert not dkimpy_verifies(msg, dns_records())
    refused(dmoat, backend, msg)


def test_relaxed_tolerates_whitespace_changes(dmoat, backend):
    """relaxed/relaxed: header case and white space, trailing blanks of body
    lines and trailing empty lines may change in transit."""
    plain = message("relaxed ws")
    sig = sign(plain, key_for("rsa"), DOMAIN, "rsa", canon="relaxed/relaxed")
    changed = (plain.replace(b"Subject: relaxed ws", b"SUBJECT:   relaxed \t ws")
               .replace(b"Line 1 of a signed message.", b"Line  1 of a signed message.  \t")
               + b"\r\n\r\n")
    msg = sig + changed
    assert dkimpy_verifies(msg, dns_records())
    _m, ar = delivered(dmoat, backend, msg)
    assert [s["result"] for s in ar["dkim"]] == ["pass"], ar


def test_simple_does_not_tolerate_whitespace_changes(dmoat, backend):
    plain = message("simple ws")
    sig = sign(plain, key_for("rsa"), DOMAIN, "rsa", canon="simple/simple")
    msg = sig + plain.replace(b"Line 1 of a signed message.", b"Line  1 of a signed message.")
    assert not dkimpy_verifies(msg, dns_records())
    refused(dmoat, backend, msg)


def test_dot_stuffed_lines_verify(dmoat, backend):
    """Body lines starting with "." travel dot-stuffed; moat must verify the
    unstuffed message."""
    body = b".leading dot\r\n..two dots\r\n.\r\nnormal\r\n. space after dot\r\n"
    plain = message("dots", body=body)
    for canon, sel in (("relaxed/relaxed", "rsa"), ("simple/simple", "ed")):
        msg = signed(plain, key_for(sel), DOMAIN, sel, canon=canon)
        _m, ar = delivered(dmoat, backend, msg)
        assert [s["result"] for s in ar["dkim"]] == ["pass"], (canon, ar)


def test_large_signed_message_verifies(dmoat, backend):
    """Over 256 KiB the message is spooled to a file: DKIM reads it there."""
    body = b"".join(b"%06d %s\r\n" % (i, b"x" * 90) for i in range(4000))   # ~ 390 KB
    plain = message("large", body=body)
    msg = signed(plain, key_for("ed"), DOMAIN, "ed")
    _m, ar = delivered(dmoat, backend, msg)
    assert [s["result"] for s in ar["dkim"]] == ["pass"], ar


def test_unsigned_is_none(dmoat, backend):
    _m, ar = delivered(dmoat, backend, message("unsigned"))
    assert ar["dkim"] == [{"result": "none"}], ar
    assert "dkim=none" in ar["raw"] and "header.d" not in ar["raw"], ar
    assert data_decision(dmoat)["dkim"] == "none"


# ------------------------------------------------------------------ failing

@pytest.mark.parametrize("selector", ["rsa", "ed"], ids=["rsa2048", "ed25519"])
def test_body_tampered_refused(dmoat, backend, selector):
    plain = message("body tampered " + selector)
    msg = signed(plain, key_for(selector), DOMAIN, selector).replace(b"Line 2 of", b"Line 9 of")
    assert not dkimpy_verifies(msg, dns_records())
    r = refused(dmoat, backend, msg)
    d = wait_decision(dmoat, lambda l: l["stage"] == "data" and l["code"] == 550)
    assert d["action"] == "reject" and d["dkim"] == "%s:fail" % DOMAIN, (d, r)


@pytest.mark.parametrize("selector", ["rsa", "ed"], ids=["rsa2048", "ed25519"])
def test_header_tampered_refused(dmoat, backend, selector):
    plain = message("header tampered " + selector)
    msg = signed(plain, key_for(selector), DOMAIN, selector).replace(
        b"Subject: header tampered", b"Subject: HEADER TAMPERED")
    assert not dkimpy_verifies(msg, dns_records())
    refused(dmoat, backend, msg)


def test_added_from_field_breaks_oversigned_signature(dmoat, backend):
    """h= naming From twice (oversigning, RFC 6376 8.15) makes an added
    From: field (display spoofing) break the signature: refused."""
    plain = message("extra from")
    sig = sign(plain, key_for("rsa"), DOMAIN, "rsa",
               headers=(b"from", b"from", b"to", b"subject", b"date", b"message-id"))
    assert dkimpy_verifies(sig + plain, dns_records())
    msg = b"From: Mallory <m@evil.example>\r\n" + sig + plain
    refused(dmoat, backend, msg)


@pytest.mark.parametrize("selector,reason", [("nokey", "no key"), ("revoked", "key revoked")],
                         ids=["missing", "revoked"])
def test_key_missing_or_revoked_is_permerror(dmoat, backend, selector, reason):
    """No key record (NXDOMAIN) or a revoked one (p=): RFC 6376 6.1.2
    PERMFAIL, reported as RFC 8601 2.7.1 permerror (nothing was verified,
    so nothing failed): delivered, dkim=permerror. Was fail -> 550."""
    plain = message("key " + selector)
    msg = signed(plain, key_for("rsa"), DOMAIN, selector)
    _m, ar = delivered(dmoat, backend, msg)
    assert [(s["result"], s["header.s"]) for s in ar["dkim"]] == [("permerror", selector)], ar
    d = data_decision(dmoat)
    assert d["dkim"] == "%s:permerror" % DOMAIN, d


def test_garbage_b_is_permerror(dmoat, backend):
    """b= that is not base64 cannot be verified at all: permerror, delivered."""
    plain = message("garbage b")
    sig = sign(plain, key_for("rsa"), DOMAIN, "rsa")
    assert sig.rstrip().endswith(b_tag(sig)[-8:].encode())   # b= is the last tag
    msg = re.sub(rb"([;\s]b=)[^;]*$", rb"\1!!not*base64!!\r\n", sig) + plain
    assert b"!!not*base64!!" in msg
    _m, ar = delivered(dmoat, backend, msg)
    assert [s["result"] for s in ar["dkim"]] == ["permerror"], ar


def test_testing_key_bad_signature_not_refused(dmoat, backend):
    """RFC 6376 3.6.1 t=y: a failing signature of a domain in testing mode
    must not be treated unlike unsigned mail: delivered, and no pass."""
    plain = message("testing")
    msg = signed(plain, key_for("rsa"), DOMAIN, "testing").replace(b"Line 2 of", b"Line 9 of")
    _m, ar = delivered(dmoat, backend, msg)
    [s] = ar["dkim"]
    assert s["result"] not in ("pass", "fail") and s["header.s"] == "testing", ar


def test_testing_key_good_signature_passes(dmoat, backend):
    plain = message("testing good")
    _m, ar = delivered(dmoat, backend, signed(plain, key_for("rsa"), DOMAIN, "testing"))
    assert [s["result"] for s in ar["dkim"]] == ["pass"], ar


def test_wrong_key_refused(dmoat, backend):
    """The From domain's own signature fails (the key is another): refused."""
    plain = message("wrong key").replace(b"@" + DOMAIN.encode() + b">", b"@" + OTHER.encode() + b">")
    msg = signed(plain, key_for("rsa"), OTHER, "rsa")   # OTHER publishes another key
    refused(dmoat, backend, msg)


def test_wrong_key_of_another_domain_delivered(dmoat, backend):
    """A failing signature of a domain that is not the From domain's: not a
    forgery of the author (RFC 6376 6.3), delivered with dkim=fail. Was 550."""
    plain = message("wrong key other")
    msg = signed(plain, key_for("rsa"), OTHER, "rsa")
    _m, ar = delivered(dmoat, backend, msg)
    assert [(s["header.d"], s["result"]) for s in ar["dkim"]] == [(OTHER, "fail")], ar


def test_two_signatures_one_bad(dmoat, backend):
    plain = message("two sigs")
    good = sign(plain, key_for("ed"), DOMAIN, "ed")
    bad = sign(plain, key_for("rsa"), OTHER, "rsa")
    msg = bad + good + plain
    _m, ar = delivered(dmoat, backend, msg)
    got = sorted((s["header.d"], s["header.s"], s["result"], s["header.b"]) for s in ar["dkim"])
    assert got == sorted([(DOMAIN, "ed", "pass", b_tag(good)[:8]),
                          (OTHER, "rsa", "fail", b_tag(bad)[:8])]), ar
    d = data_decision(dmoat)
    assert sorted(d["dkim"].split(",")) == sorted(["%s:pass" % DOMAIN, "%s:fail" % OTHER]), d


def test_three_signatures_each_body_hash_on_its_own(dmoat, backend):
    """Three signatures over one body: two relaxed/relaxed ones (sharing one
    body hash in moat) and a simple/simple one. Trailing blanks added to a
    body line in transit break only the simple one."""
    plain = message("three sigs")
    r1 = sign(plain, key_for("rsa"), DOMAIN, "rsa", canon="relaxed/relaxed")
    r2 = sign(plain, key_for("ed"), DOMAIN, "ed", canon="relaxed/relaxed")
    s3 = sign(plain, key_for("rsa"), DOMAIN, "rsa", canon="simple/simple")
    changed = plain.replace(b"Line 1 of a signed message.", b"Line 1 of a signed message.  ")
    assert changed != plain
    for body, simple_result in ((plain, "pass"), (changed, "fail")):
        _m, ar = delivered(dmoat, backend, r1 + r2 + s3 + body)
        got = {s["header.b"]: s["result"] for s in ar["dkim"]}
        assert got == {b_tag(r1)[:8]: "pass", b_tag(r2)[:8]: "pass", b_tag(s3)[:8]: simple_result}, ar


def test_two_signatures_both_bad_refused(dmoat, backend):
    plain = message("two bad sigs")
    msg = (sign(plain, key_for("rsa"), OTHER, "rsa") + sign(plain, key_for("rsa"), DOMAIN, "rsa")
           + plain).replace(b"Line 2 of", b"Line 9 of")
    refused(dmoat, backend, msg)


def test_key_servfail_is_temperror_not_refused(dmoat, backend):
    plain = message("tempfail key")
    msg = signed(plain, key_for("rsa"), DOMAIN, "tempfail")
    m, ar = delivered(dmoat, backend, msg)
    assert [s["result"] for s in ar["dkim"]] == ["temperror"], ar
    assert data_decision(dmoat)["dkim"] == "%s:temperror" % DOMAIN


def test_key_timeout_is_temperror_not_refused(moat_factory, zdns, backend):
    m = checks_moat(moat_factory, zdns, dns_timeout=200, dns_tries=1)
    plain = message("silent key")
    msg = signed(plain, key_for("rsa"), DOMAIN, "silent")
    _m, ar = delivered(m, backend, msg)
    assert [s["result"] for s in ar["dkim"]] == ["temperror"], ar


def test_temperror_and_fail_is_refused(dmoat, backend):
    """One signature fails, the other's key is temporarily unavailable: none
    passes and the From domain's own fails -> 550 (moat's rule as documented)."""
    plain = message("temp and fail")
    msg = (sign(plain, key_for("rsa"), DOMAIN, "tempfail") + sign(plain, key_for("rsa"), DOMAIN, "rsa")
           + plain).replace(b"Line 2 of", b"Line 9 of")
    refused(dmoat, backend, msg)


def test_rsa_sha1_not_a_pass(dmoat, backend):
    """RFC 8301: rsa-sha1 signatures are not valid; moat does not refuse
    them either (no "fail"): delivered, and not as pass."""
    plain = message("sha1")
    msg = signed(plain, key_for("rsa"), DOMAIN, "rsa", algo=b"rsa-sha1")
    _m, ar = delivered(dmoat, backend, msg)
    [s] = ar["dkim"]
    assert s["result"] != "pass" and s["header.d"] == DOMAIN, ar


# ------------------------------------------------------- trusted, disabled

def test_trusted_client_not_refused(moat_factory, zdns, backend):
    m = checks_moat(moat_factory, zdns, trusted_networks="127.0.0.0/8")
    plain = message("trusted tampered")
    msg = signed(plain, key_for("rsa"), DOMAIN, "rsa").replace(b"Line 2 of", b"Line 9 of")
    _m, ar = delivered(m, backend, msg)
    assert [s["result"] for s in ar["dkim"]] == ["fail"], ar


def test_check_dkim_off(moat_factory, zdns, backend):
    m = checks_moat(moat_factory, zdns, check_dkim="no")
    plain = message("dkim off")
    msg = signed(plain, key_for("rsa"), DOMAIN, "rsa").replace(b"Line 2 of", b"Line 9 of")
    _m, ar = delivered(m, backend, msg)
    assert "dkim" not in ar["methods"], ar
    assert not [q for q in zdns.queries() if "_domainkey" in q[0]]


# ------------------------------------------------------ several transactions

def test_results_per_transaction(dmoat, backend):
    """One session, three messages: the results of one never leak into the
    next; a refused message leaves the session (and the backend connection)
    clean for the next one."""
    good = signed(message("first"), key_for("ed"), DOMAIN, "ed")
    bad = signed(message("second"), key_for("rsa"), DOMAIN, "rsa").replace(b"Line 2 of", b"Line 9 of")
    plain = message("third")
    with connect(dmoat) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<first@example.test>", 250)
        m1 = stored_message(backend, c.data(good))
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<second@example.test>", 250)
        r = c.data(bad)
        assert r.code == 550 and r.enhanced() == ["5.7.20"], r
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<third@example.test>", 250)
        m3 = stored_message(backend, c.data(plain))
        c.expect("QUIT", 221)
    assert [s["result"] for s in authres_of(m1, good)["dkim"]] == ["pass"]
    assert authres_of(m3, plain)["dkim"] == [{"result": "none"}]
    assert [m.rcpts for m in backend.messages()] == [["first@example.test"], ["third@example.test"]]
