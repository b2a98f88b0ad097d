"""Authentication-Results (RFC 8601): every delivered message gets moat's
field (authserv-id = hostname) with the SPF and DKIM results; incoming
fields that claim that authserv-id (in any letter case, after comments,
folded, quoted) are removed - those in the first 64 KiB of the header -
and every other field, those of other authserv-ids included, reaches the
backend byte for byte."""

import pytest

import dkimsign
from checkslib import (RCPT, authres_of, base_zone, checks_moat, connect,
                       moat_fields, parse_authres, stored_message, unfold, wait_decision)
from dkimsign import b_tag, key_name, signed
from moatlib import HOSTNAME, dotstuff

SENDER = "alice@example.org"


def zone():
    z = base_zone()
    z["softfail.example"] = [("A", "192.0.2.60"), ("TXT", "v=spf1 ip4:192.0.2.99 ~all")]
    z["nospf.example"] = [("A", "192.0.2.61")]
    z["helo.example"] = [("A", "192.0.2.62"), ("TXT", "v=spf1 ip4:127.0.0.1 -all")]
    z["dkim.example"] = [("A", "192.0.2.63")]
    z[key_name("s1", "dkim.example")] = [("TXT", dkimsign.key("ed25519").txt)]
    return z


@pytest.fixture
def zdns(dns_factory):
    return dns_factory(zone())


@pytest.fixture
def amoat(moat_factory, zdns, backend):
    return checks_moat(moat_factory, zdns)


def deliver(moat, backend, msg, sender=SENDER, helo="client.example.org"):
    with connect(moat) as c:
        c.expect("EHLO " + helo, 250)
        c.expect("MAIL FROM:<%s>" % sender, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        r = c.data(msg)
        m = stored_message(backend, r)
        c.expect("QUIT", 221)
    return m


def relayed_without(m, original, removed):
    """m = moat's fields + original with the fields in removed (bytes, each
    present once in original) cut out, byte for byte."""
    expected = original
    for f in removed:
        assert expected.count(f) == 1, f
        expected = expected.replace(f, b"", 1)
    fields = moat_fields(m, expected)
    assert m.raw == dotstuff(m.data)
    return fields


def head(*fields, body=b"Body.\r\n"):
    return b"".join(fields) + b"Subject: authres\r\nFrom: a@example.org\r\n\r\n" + body


# ------------------------------------------------------------------ presence

def test_present_on_every_delivered_message(amoat, backend):
    cases = [("alice@example.org", "client.example.org", "pass", "smtp.mailfrom", "alice@example.org"),
             ("bob@softfail.example", "client.example.org", "softfail", "smtp.mailfrom",
              "bob@softfail.example"),
             ("carol@nospf.example", "client.example.org", "none", "smtp.mailfrom", "carol@nospf.example"),
             ("", "helo.example", "pass", "smtp.helo", "helo.example")]
    with connect(amoat) as c:
        for i, (sender, helo, res, prop, val) in enumerate(cases):
            msg = head(body=b"message %d\r\n" % i)
            c.expect("EHLO " + helo, 250)
            c.expect("MAIL FROM:<%s>" % sender, 250)
            c.expect("RCPT TO:<%s>" % RCPT, 250)
            m = stored_message(backend, c.data(msg))
            fields = moat_fields(m, msg)
            # ours first, then Received
            assert [f.split(b":")[0].lower() for f in fields] == [b"authentication-results", b"received"], fields
            ar = parse_authres(fields[0])
            assert ar["authserv_id"] == HOSTNAME
            assert (ar["spf"], ar["spf_prop"]) == (res, {prop: val}), ar
            assert ar["dkim"] == [{"result": "none"}], ar


def test_format(amoat, backend):
    msg = head()
    m = deliver(amoat, backend, msg)
    f = moat_fields(m, msg)[0]
    assert unfold(f) == ("Authentication-Results: %s; spf=pass smtp.mailfrom=alice@example.org; "
                         "dkim=none; dmarc=none header.from=example.org" % HOSTNAME), f
    # folded lines are CRLF + white space, each line short
    assert all(len(l) <= 78 for l in f.split(b"\r\n")), f


def test_content_matches_spf_and_dkim(amoat, backend):
    plain = b"From: a@dkim.example\r\nTo: bob@example.test\r\nSubject: both\r\n\r\nsigned body\r\n"
    msg = signed(plain, dkimsign.key("ed25519"), "dkim.example", "s1")
    m = deliver(amoat, backend, msg, sender="bob@softfail.example")
    ar = authres_of(m, msg)
    assert ar["spf"] == "softfail" and ar["spf_prop"] == {"smtp.mailfrom": "bob@softfail.example"}, ar
    assert ar["dkim"] == [{"result": "pass", "header.d": "dkim.example", "header.s": "s1",
                           "header.b": b_tag(msg.split(b"\r\nFrom:")[0])[:8]}], ar
    d = wait_decision(amoat, lambda l: l["stage"] == "data" and l["mail_from"] == "bob@softfail.example")
    assert (d["spf"], d["dkim"]) == ("softfail", "dkim.example:pass"), d


# ------------------------------------------------------------ forged: removed

FORGED = {
    "plain": b"Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=x@evil.example\r\n",
    "upper-case": b"Authentication-Results: MX.TEST.EXAMPLE; dkim=pass header.d=evil.example\r\n",
    "field-name-case": b"authentication-results: Mx.Test.Example; spf=pass\r\n",
    "comment-before-id": b"Authentication-Results: (trust me) mx.test.example; spf=pass\r\n",
    "nested-comment": b"Authentication-Results: (a (b) c) mx.test.example; spf=pass\r\n",
    "folded": b"Authentication-Results:\r\n mx.test.example;\r\n\tspf=pass smtp.mailfrom=x@evil.example\r\n",
    "folded-after-comment": b"Authentication-Results: (x)\r\n\t mx.test.example ; dkim=pass\r\n",
    "version": b"Authentication-Results: mx.test.example 1; spf=pass\r\n",
    "no-space": b"Authentication-Results:mx.test.example;spf=pass\r\n",
    "quoted-id": b"Authentication-Results: \"mx.test.example\"; spf=pass\r\n",
    "blank-before-colon": b"Authentication-Results : mx.test.example; spf=pass\r\n",
    "none": b"Authentication-Results: mx.test.example; none\r\n",
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_removed(amoat, backend, name):
    forged = FORGED[name]
    msg = head(b"Received: from a by b; Thu, 26 Nov 2026 10:00:00 +0000\r\n", forged,
               b"X-After: kept\r\n")
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, [forged])
    ar = authres_of(m)
    assert ar["spf"] == "pass" and ar["spf_prop"] == {"smtp.mailfrom": SENDER}, ar


def test_forged_at_top_middle_and_bottom_removed(amoat, backend):
    f1 = b"Authentication-Results: mx.test.example; spf=pass (one)\r\n"
    f2 = b"Authentication-Results: MX.test.example; dkim=pass (two)\r\n"
    f3 = b"Authentication-Results:\r\n\tmx.test.example; arc=pass (three)\r\n"
    msg = f1 + b"Subject: several\r\n" + f2 + b"From: a@example.org\r\n" + f3 + b"\r\nbody\r\n"
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, [f1, f2, f3])


def test_many_forged_removed(amoat, backend):
    forged = [b"Authentication-Results: mx.test.example; spf=pass (%d)\r\n" % i for i in range(40)]
    msg = head(*forged)
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, forged)


def test_forged_after_many_fields_removed(amoat, backend):
    """700 short fields (about 12 KiB), then a forged field: still well
    inside the first 64 KiB of the header, so it must go."""
    filler = [b"X-F%d: %d\r\n" % (i, i) for i in range(700)]
    forged = b"Authentication-Results: mx.test.example; spf=pass (late)\r\n"
    msg = head(*(filler + [forged]))
    assert msg.index(forged) < 64 * 1024
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, [forged])


def test_forged_after_40k_of_header_removed(amoat, backend):
    filler = [b"X-Long-%d: %s\r\n" % (i, b"v" * 900) for i in range(45)]
    forged = b"Authentication-Results: mx.test.example; spf=pass (deep)\r\n"
    msg = head(*(filler + [forged]))
    assert 40 * 1024 < msg.index(forged) < 60 * 1024
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, [forged])


def test_forged_in_large_spooled_message_removed(amoat, backend):
    forged = b"Authentication-Results: mx.test.example; spf=pass (large)\r\n"
    body = b"".join(b"%06d %s\r\n" % (i, b"y" * 100) for i in range(3000))   # ~ 320 KB
    msg = head(forged, body=body)
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, [forged])


# ------------------------------------------------------------------ kept

KEPT = {
    "other-id": b"Authentication-Results: other.example; spf=fail smtp.mailfrom=x@y.example\r\n",
    "longer-id": b"Authentication-Results: mx.test.example.evil.example; spf=pass\r\n",
    "prefixed-id": b"Authentication-Results: evil-mx.test.example; spf=pass\r\n",
    "shorter-id": b"Authentication-Results: test.example; spf=pass\r\n",
    "id-in-comment-only": b"Authentication-Results: other.example (not mx.test.example); spf=pass\r\n",
    "folded-other": b"Authentication-Results: other.example;\r\n\tdkim=pass header.d=x.example\r\n",
    "other-field-name": b"Authentication-Results-Original: mx.test.example; spf=pass\r\n",
    "arc": b"ARC-Authentication-Results: i=1; mx.test.example; spf=pass\r\n",
    "x-field": b"X-Authentication-Results: mx.test.example; spf=pass\r\n",
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_other_fields_kept_byte_for_byte(amoat, backend, name):
    msg = head(KEPT[name], b"X-After:   odd  spacing \t\r\n")
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, [])
    authres_of(m, msg)


def test_authres_like_text_in_body_kept(amoat, backend):
    msg = head(body=b"Authentication-Results: mx.test.example; spf=pass\r\n\r\n"
                    b"Authentication-Results: mx.test.example; dkim=pass\r\n")
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, [])


def test_forged_removed_others_kept_together(amoat, backend):
    ours = b"Authentication-Results: mx.test.example; spf=pass\r\n"
    theirs = b"Authentication-Results: relay.other.example; spf=pass smtp.mailfrom=a@example.org\r\n"
    msg = head(theirs, ours)
    m = deliver(amoat, backend, msg)
    relayed_without(m, msg, [ours])
    assert theirs in m.data


def test_trusted_client_forged_still_removed(moat_factory, zdns, backend):
    """Trust exempts from refusals, not from the authserv-id rule."""
    m = checks_moat(moat_factory, zdns, trusted_networks="127.0.0.0/8")
    forged = b"Authentication-Results: mx.test.example; spf=pass\r\n"
    msg = head(forged)
    st = deliver(m, backend, msg)
    relayed_without(st, msg, [forged])


# ------------------------------------------ client text inside our own field

@pytest.mark.parametrize("local", ['"a;dkim=pass"', '"a;dkim=pass;x"', '"a(b"', '"a)b"', '"a\\"b;c"'],
                         ids=["semicolon", "semicolons", "open-paren", "close-paren", "escaped-quote"])
def test_sender_local_part_cannot_forge_results(amoat, backend, local):
    """A quoted local part is the sender's own text: inside moat's field it
    must stay one property value (RFC 8601 2.2: a quoted-string local-part),
    never end the resinfo (";") or open a comment that hides the rest."""
    sender = local + "@example.org"
    msg = head()
    m = deliver(amoat, backend, msg, sender=sender)
    ar = authres_of(m, msg)
    assert ar["methods"] == ["spf", "dkim", "dmarc"], ar
    assert ar["spf"] == "pass" and ar["dkim"] == [{"result": "none"}], ar
    assert set(ar["spf_prop"]) == {"smtp.mailfrom"}, ar
    assert ar["spf_prop"]["smtp.mailfrom"].endswith("example.org"), ar


@pytest.mark.parametrize("helo", ["x;dkim=pass.example", "x(y.example"], ids=["semicolon", "paren"])
def test_helo_cannot_forge_results(amoat, backend, helo):
    msg = head()
    m = deliver(amoat, backend, msg, sender="", helo=helo)
    ar = authres_of(m, msg)
    assert ar["methods"] == ["spf", "dkim", "dmarc"], ar
    assert ar["dkim"] == [{"result": "none"}], ar
