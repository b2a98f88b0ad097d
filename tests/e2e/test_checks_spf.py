"""SPF (RFC 7208) at MAIL, end to end: the MAIL FROM identity (the HELO
identity for <>), evaluated for the real client address (the PROXY header's
when proxy_protocol = yes). fail -> 550 5.7.23 SPF: <explanation>; temperror
-> 451 4.7.24; pass, softfail, neutral, none and permerror go on and show
in Authentication-Results and in the decision log. The RFC 7208 limits
(10 DNS-querying terms, 2 void lookups) give permerror.

The sender-domain check stays on (every sender domain here exists) so the
two checks are exercised together, as in production."""

import pytest

from checkslib import (RCPT, authres_of, base_zone, checks_moat, connect,
                       no_backend_contact, proxy_v1, proxy_v2, simple_message,
                       stored_message, wait_decision)
from moatlib import HOSTNAME

A_ADDR = ("A", "192.0.2.40")


def zone():
    z = base_zone()

    def dom(name, *spf, a=True):
        z[name] = ([A_ADDR] if a else []) + [("TXT", t) for t in spf]

    dom("spf-pass.example", "v=spf1 ip4:127.0.0.1 -all")
    dom("spf-fail.example", "v=spf1 ip4:192.0.2.99 -all exp=why.spf-fail.example")
    z["why.spf-fail.example"] = [("TXT", "Not authorised: %{i} for %{s} (see %{d})")]
    dom("spf-fail-noexp.example", "v=spf1 ip4:192.0.2.99 -all")
    dom("spf-fail-badexp.example", "v=spf1 -all exp=why.spf-fail-badexp.example")
    z["why.spf-fail-badexp.example"] = [("TXT", "bad\r\n250 2.0.0 injected")]
    dom("spf-softfail.example", "v=spf1 ip4:192.0.2.99 ~all")
    dom("spf-neutral.example", "v=spf1 ip4:192.0.2.99 ?all")
    dom("spf-none.example", "some other text record")
    dom("spf-permerror.example", "v=spf1 ip4:192.0.2.99 frobnicate -all")
    dom("spf-two-records.example", "v=spf1 -all", "v=spf1 +all")
    z["spf-temperror.example"] = [A_ADDR, ("SERVFAIL", "TXT")]
    dom("spf-include-temperror.example", "v=spf1 include:broken.example -all")
    z["broken.example"] = [A_ADDR, ("SERVFAIL", "TXT")]
    dom("spf-include-pass.example", "v=spf1 include:spf-pass.example -all")
    # identities for the null sender
    dom("helo-pass.example", "v=spf1 ip4:127.0.0.1 -all")
    dom("helo-fail.example", "v=spf1 -all")
    # addresses from the PROXY header
    dom("spf-proxy.example", "v=spf1 ip4:192.0.2.55 ip6:2001:db8::55 -all")
    # processing limits: 10 DNS-querying terms, 2 void lookups
    for i in range(1, 12):
        z["l%d.limit.example" % i] = [("A", "192.0.2.%d" % (200 + i))]
    terms = " ".join("a:l%d.limit.example" % i for i in range(1, 11))
    dom("ten-terms.example", "v=spf1 %s -all" % terms)                          # 10: fail
    dom("eleven-terms.example", "v=spf1 %s a:l11.limit.example -all" % terms)   # 11: permerror
    dom("ten-terms-pass.example", "v=spf1 %s ip4:127.0.0.1 -all" % terms)
    dom("eleven-terms-pass.example", "v=spf1 %s a:l11.limit.example ip4:127.0.0.1 -all" % terms)
    dom("two-voids.example", "v=spf1 a:v1.void.example a:v2.void.example ip4:127.0.0.1 -all")
    dom("three-voids.example",
        "v=spf1 a:v1.void.example a:v2.void.example a:v3.void.example ip4:127.0.0.1 -all")
    return z


@pytest.fixture
def zdns(dns_factory):
    return dns_factory(zone())


@pytest.fixture
def smoat(moat_factory, zdns, backend):
    return checks_moat(moat_factory, zdns)


def deliver(moat, backend, sender, helo="client.example.org", proxy=None, subject=None):
    msg = simple_message(subject or ("spf " + (sender or "null")))
    with connect(moat, proxy=proxy) as c:
        c.expect("EHLO " + helo, 250)
        c.expect("MAIL FROM:<%s>" % sender, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        r = c.data(msg)
        m = stored_message(backend, r)
        c.expect("QUIT", 221)
    return m, authres_of(m, msg)


def data_decision(moat, sender):
    return wait_decision(moat, lambda l: l["stage"] == "data" and l["mail_from"] == sender)


def refused_at_mail(moat, backend, sender, helo="client.example.org", proxy=None):
    with no_backend_contact(moat, backend):
        with connect(moat, proxy=proxy) as c:
            c.expect("EHLO " + helo, 250)
            r = c.cmd("MAIL FROM:<%s>" % sender)
            c.expect("QUIT", 221)
    return r


# ----------------------------------------------------------------- results

def test_pass(smoat, backend):
    m, ar = deliver(smoat, backend, "alice@spf-pass.example")
    assert ar["authserv_id"] == HOSTNAME
    assert ar["spf"] == "pass", ar
    assert ar["spf_prop"] == {"smtp.mailfrom": "alice@spf-pass.example"}, ar
    d = data_decision(smoat, "alice@spf-pass.example")
    assert d["spf"] == "pass" and d["sender_domain"] == "pass", d


def test_pass_through_include(smoat, backend):
    _m, ar = deliver(smoat, backend, "alice@spf-include-pass.example")
    assert ar["spf"] == "pass", ar


def test_fail_with_exp_explanation(smoat, backend):
    r = refused_at_mail(smoat, backend, "alice@spf-fail.example")
    assert r.code == 550 and r.enhanced() == ["5.7.23"], r
    assert r.lines == ["550 5.7.23 SPF: Not authorised: 127.0.0.1 for alice@spf-fail.example "
                       "(see spf-fail.example)"], r
    d = wait_decision(smoat, lambda l: l["stage"] == "mail")
    assert (d["action"], d["code"], d["spf"]) == ("reject", 550, "fail"), d


def test_fail_default_explanation(smoat, backend):
    r = refused_at_mail(smoat, backend, "alice@spf-fail-noexp.example")
    assert r.code == 550 and r.enhanced() == ["5.7.23"], r
    assert r.text.startswith("5.7.23 SPF: "), r
    # moat's default names the domain and the client address
    assert "spf-fail-noexp.example" in r.text and "127.0.0.1" in r.text, r


def test_fail_explanation_with_line_break_not_sent(smoat, backend):
    """A domain's exp= text with CR LF in it must not become extra reply
    lines (SMTP reply injection): the default explanation is used."""
    r = refused_at_mail(smoat, backend, "alice@spf-fail-badexp.example")
    assert len(r.lines) == 1 and r.code == 550 and r.enhanced() == ["5.7.23"], r
    assert "injected" not in r.line, r


@pytest.mark.parametrize("domain,result", [
    ("spf-softfail.example", "softfail"),
    ("spf-neutral.example", "neutral"),
    ("spf-none.example", "none"),
    ("spf-permerror.example", "permerror"),
    ("spf-two-records.example", "permerror"),
])
def test_results_that_go_on(smoat, backend, domain, result):
    sender = "alice@" + domain
    _m, ar = deliver(smoat, backend, sender)
    assert ar["spf"] == result, ar
    assert ar["spf_prop"].get("smtp.mailfrom") == sender, ar
    d = data_decision(smoat, sender)
    assert d["action"] == "accept" and d["spf"] == result, d
    if result == "permerror":
        assert d.get("spf_reason"), d


@pytest.mark.parametrize("domain,result,reason", [
    ("spf-pass.example", "pass", "mechanism +ip4:127.0.0.1 matched"),
    ("spf-include-pass.example", "pass", "mechanism +include:spf-pass.example matched"),
    ("spf-softfail.example", "softfail", "mechanism ~all matched"),
    ("spf-neutral.example", "neutral", "mechanism ?all matched"),
])
def test_reason_names_the_mechanism(smoat, backend, domain, result, reason):
    """Issue 13 (5): spf_reason names the term of the record that decided, as published."""
    sender = "alice@" + domain
    deliver(smoat, backend, sender)
    d = data_decision(smoat, sender)
    assert (d["spf"], d["spf_reason"]) == (result, reason), d


def test_fail_reason_names_the_mechanism(smoat, backend):
    """The refusal's decision line: the default rule's note is the SPF reason."""
    r = refused_at_mail(smoat, backend, "alice@spf-fail-noexp.example")
    assert r.code == 550, r
    d = wait_decision(smoat, lambda l: l["stage"] in ("mail", "rcpt") and l["action"] == "reject")
    assert (d["spf"], d["spf_reason"], d["reason"]) == ("fail", "mechanism -all matched",
                                                        "mechanism -all matched"), d


@pytest.mark.parametrize("domain", ["spf-temperror.example", "spf-include-temperror.example"])
def test_temperror(smoat, backend, domain):
    r = refused_at_mail(smoat, backend, "alice@" + domain)
    assert r.code == 451 and r.enhanced() == ["4.7.24"], r
    d = wait_decision(smoat, lambda l: l["stage"] == "mail")
    assert (d["action"], d["code"], d["spf"]) == ("tempfail", 451, "temperror"), d


# --------------------------------------------------------------- identities

def test_helo_identity_for_null_sender_fail(smoat, backend):
    r = refused_at_mail(smoat, backend, "", helo="helo-fail.example")
    assert r.code == 550 and r.enhanced() == ["5.7.23"], r


def test_helo_identity_for_null_sender_pass(smoat, backend):
    m, ar = deliver(smoat, backend, "", helo="helo-pass.example")
    assert m.mail_from == ""
    assert ar["spf"] == "pass", ar
    assert ar["spf_prop"] == {"smtp.helo": "helo-pass.example"}, ar


def test_helo_policy_not_used_for_real_sender(smoat, backend):
    _m, ar = deliver(smoat, backend, "alice@spf-pass.example", helo="helo-fail.example")
    assert ar["spf"] == "pass" and ar["spf_prop"] == {"smtp.mailfrom": "alice@spf-pass.example"}, ar


# ---------------------------------------------------------- PROXY protocol

@pytest.fixture
def pmoat(moat_factory, zdns, backend):
    return checks_moat(moat_factory, zdns, proxy_protocol="yes")


@pytest.mark.parametrize("header", [proxy_v1("192.0.2.55"), proxy_v2("192.0.2.55"),
                                    proxy_v1("2001:db8::55"), proxy_v2("2001:db8::55")],
                         ids=["v1-ip4", "v2-ip4", "v1-ip6", "v2-ip6"])
def test_proxy_address_is_evaluated_pass(pmoat, backend, header):
    _m, ar = deliver(pmoat, backend, "alice@spf-proxy.example", proxy=header)
    assert ar["spf"] == "pass", ar


@pytest.mark.parametrize("src", ["192.0.2.56", "2001:db8::56"])
def test_proxy_address_is_evaluated_fail(pmoat, backend, src):
    """The TCP peer (127.0.0.1) would not pass either; the record lists the
    PROXY source's neighbour only, so the explanation shows which address
    was evaluated."""
    r = refused_at_mail(pmoat, backend, "alice@spf-proxy.example", proxy=proxy_v1(src))
    assert r.code == 550 and r.enhanced() == ["5.7.23"], r
    assert src in r.text and "127.0.0.1" not in r.text, r


def test_proxy_loopback_peer_not_used(pmoat, backend):
    """spf-pass.example allows 127.0.0.1, the TCP peer; the PROXY source
    192.0.2.56 is what counts: fail."""
    r = refused_at_mail(pmoat, backend, "alice@spf-pass.example", proxy=proxy_v2("192.0.2.56"))
    assert r.code == 550 and r.enhanced() == ["5.7.23"], r


# ------------------------------------------------------------------- limits

def test_ten_lookups_allowed(smoat, backend):
    r = refused_at_mail(smoat, backend, "alice@ten-terms.example")
    assert r.code == 550 and r.enhanced() == ["5.7.23"], r     # evaluated to -all: fail
    _m, ar = deliver(smoat, backend, "alice@ten-terms-pass.example")
    assert ar["spf"] == "pass", ar


@pytest.mark.parametrize("domain", ["eleven-terms.example", "eleven-terms-pass.example"])
def test_eleventh_lookup_is_permerror(smoat, backend, domain):
    sender = "alice@" + domain
    _m, ar = deliver(smoat, backend, sender)
    assert ar["spf"] == "permerror", ar
    d = data_decision(smoat, sender)
    assert d["spf"] == "permerror", d


def test_two_void_lookups_allowed(smoat, backend):
    _m, ar = deliver(smoat, backend, "alice@two-voids.example")
    assert ar["spf"] == "pass", ar


def test_third_void_lookup_is_permerror(smoat, backend):
    sender = "alice@three-voids.example"
    _m, ar = deliver(smoat, backend, sender)
    assert ar["spf"] == "permerror", ar
    assert data_decision(smoat, sender)["spf"] == "permerror"


# ----------------------------------------------------- delay_reject, trusted

def test_delay_reject_spf_fail_at_rcpt(moat_factory, zdns, backend):
    m = checks_moat(moat_factory, zdns, delay_reject="yes")
    with no_backend_contact(m, backend):
        with connect(m) as c:
            c.ehlo()
            c.expect("MAIL FROM:<alice@spf-fail.example>", 250)
            r = c.cmd("RCPT TO:<%s>" % RCPT)
            assert r.code == 550 and r.enhanced() == ["5.7.23"], r
            assert "Not authorised: 127.0.0.1" in r.text, r
            c.expect("QUIT", 221)


def test_delay_reject_spf_temperror_at_rcpt(moat_factory, zdns, backend):
    m = checks_moat(moat_factory, zdns, delay_reject="yes")
    with connect(m) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@spf-temperror.example>", 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        assert r.code == 451 and r.enhanced() == ["4.7.24"], r


def test_trusted_client_spf_fail_delivered(moat_factory, zdns, backend):
    m = checks_moat(moat_factory, zdns, trusted_networks="127.0.0.1")
    _msg, ar = deliver(m, backend, "alice@spf-fail.example")
    assert ar["spf"] == "fail", ar


def test_check_spf_off(moat_factory, zdns, backend):
    m = checks_moat(moat_factory, zdns, check_spf="no")
    msg = simple_message("spf off")
    with connect(m) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@spf-fail.example>", 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        st = stored_message(backend, c.data(msg))
    ar = authres_of(st, msg)
    assert ar["spf"] is None, ar
    assert not [q for q in zdns.queries() if q[0] == "spf-fail.example" and q[1] == "TXT"]


def test_trusted_network_is_matched_against_proxy_address(moat_factory, zdns, backend):
    """Behind a proxy every TCP peer is the proxy (127.0.0.1 here): trust
    must follow the PROXY source, or everyone would be trusted."""
    m = checks_moat(moat_factory, zdns, proxy_protocol="yes", trusted_networks="127.0.0.0/8 192.0.2.0/24")
    # a trusted PROXY source: not refused, result recorded
    _msg, ar = deliver(m, backend, "alice@spf-proxy.example", proxy=proxy_v1("192.0.2.56"))
    assert ar["spf"] == "fail", ar
    # an untrusted PROXY source from the same (trusted) TCP peer: refused
    r = refused_at_mail(m, backend, "alice@spf-proxy.example", proxy=proxy_v2("203.0.113.9"))
    assert r.code == 550 and r.enhanced() == ["5.7.23"], r


# ------------------------------------------------------------ reply limits

def test_long_explanation_fits_a_reply_line(moat_factory, dns_factory, backend):
    """RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF,
    whatever the length of the domain's exp= text."""
    z = zone()
    z["long-exp.example"] = [A_ADDR, ("TXT", "v=spf1 -all exp=why.long-exp.example")]
    # 500 characters: within what moat keeps of an explanation (511), but
    # "550 5.7.23 SPF: " in front makes it too long for one line
    z["why.long-exp.example"] = [("TXT", ["Long explanation " + "x" * 233, "y" * 250])]
    m = checks_moat(moat_factory, dns_factory(z))
    with connect(m) as c:
        c.ehlo()
        c.send("MAIL FROM:<alice@long-exp.example>\r\n")
        r = c.reply()
    assert r.code == 550 and r.enhanced() == ["5.7.23"], r
    assert "Long explanation" in r.text, r
    assert all(len(l) + 2 <= 512 for l in r.raw_lines), [len(l) + 2 for l in r.raw_lines]


def test_truncated_answer_retried_over_tcp(moat_factory, dns_factory, backend):
    """An SPF record among many TXT records: the UDP answer is truncated
    (TC) and the lookup must go on over TCP."""
    z = zone()
    z["big-txt.example"] = [A_ADDR] + [("TXT", "filler record %d %s" % (i, "f" * 200)) for i in range(12)] + [
        ("TXT", "v=spf1 ip4:127.0.0.1 -all")]
    zd = dns_factory(z, udp_max=512)
    m = checks_moat(moat_factory, zd)
    _msg, ar = deliver(m, backend, "alice@big-txt.example")
    assert ar["spf"] == "pass", ar
    assert "big-txt.example" in zd.resolver.truncated
    assert ("big-txt.example", "TXT") in zd.resolver.tcp_queries
