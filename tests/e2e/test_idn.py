"""Internationalised mail end to end (RFC 6531 SMTPUTF8, IDNA2008, RFC 8616):
Russian local parts and domains through moat to a backend that offers
SMTPUTF8, with a DNS server on loopback that holds only A-labels (a query
for a U-label in raw UTF-8 finds nothing, as on the internet).

- the sender-domain check and SPF look up the A-label of a U-label domain
  (SPF pass and fail from a TXT record under the A-label);
- DKIM: a message signed by dkimpy with d= in A-labels passes (key under
  the A-label); one with d= in U-labels (RFC 8616 5 allows it) is reported
  as neutral, not verifiable by libopendkim, and delivered;
- relaying: local_domains in U-labels reached with A-labels and the other
  way round, and local_recipients the same;
- the address passes to the backend as the client wrote it; the decision
  line holds it as readable UTF-8 (JSON parsed, strings compared), invalid
  bytes as U+FFFD, never raw; Authentication-Results names it in UTF-8;
- a domain IDNA2008 refuses gets 501 5.1.7 (sender) / 5.1.3 (recipient),
  and the session goes on; so does a recipient domain IDNA2003 would read
  as another name ("straße.de").

Every test has its own DNS server so that nothing is cached between tests."""

import json

import pytest

import dkimsign
from checkslib import (authres_of, base_zone, checks_moat, connect, stored_message,
                       wait_decision)
from dkimsign import b_tag, key_name, sign
from moatlib import LOCAL_DOMAIN


def alabel(domain):
    """The A-label form, by Python's own codec (an implementation independent
    of moat's libidn2; for these Cyrillic names IDNA2003 and IDNA2008 agree)."""
    return domain.encode("idna").decode()


SENDER_DOMAIN = "пример.test"            # MX, A, SPF passing loopback
FAIL_DOMAIN = "испытание.test"           # A, SPF failing loopback
DKIM_DOMAIN = "подпись.test"             # DKIM keys
LOCAL_U = "почта.test"                   # a local domain written in U-labels
LOCAL_A = "адресат.test"                 # a local domain written in A-labels
SENDER = "отправитель@" + SENDER_DOMAIN
RCPT = "получатель@" + alabel(LOCAL_U)   # U-label local part, A-label domain

SPF_LOOPBACK = "v=spf1 ip4:127.0.0.0/8 -all"


def zone():
    z = base_zone()
    rsa = dkimsign.key("rsa")
    z.update({
        alabel(SENDER_DOMAIN): [("A", "192.0.2.60"), ("MX", (10, "mail." + alabel(SENDER_DOMAIN))),
                                ("TXT", SPF_LOOPBACK)],
        "mail." + alabel(SENDER_DOMAIN): [("A", "192.0.2.60")],
        alabel(FAIL_DOMAIN): [("A", "192.0.2.61"), ("TXT", "v=spf1 ip4:192.0.2.0/24 -all")],
        alabel(DKIM_DOMAIN): [("A", "192.0.2.62"), ("TXT", SPF_LOOPBACK)],
        key_name("sel", alabel(DKIM_DOMAIN)): [("TXT", rsa.txt)],
        alabel(LOCAL_U): [("A", "192.0.2.63")],
        alabel(LOCAL_A): [("A", "192.0.2.64")],
    })
    return z


@pytest.fixture
def zdns(dns_factory):
    return dns_factory(zone())


@pytest.fixture
def ubackend(backend_factory):
    return backend_factory(ehlo_ext="SMTPUTF8")


def idn_moat(moat_factory, zdns, ubackend, **keys):
    keys.setdefault("local_domains", "%s, %s" % (LOCAL_DOMAIN, alabel(LOCAL_U)))
    m = checks_moat(moat_factory, zdns, _backend=ubackend, **keys)
    # moat offers SMTPUTF8 once its probe has seen the backend offer it
    m.wait_log(lambda l: l.get("event") == "backend_probe" and "smtputf8=1" in l.get("msg", ""),
               what="the probe's backend_probe line")
    return m


def message(subject="Привет", sender=SENDER, extra=b""):
    return ("From: Отправитель <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@%s>\r\n"
            % (sender, RCPT, subject, abs(hash(subject)), SENDER_DOMAIN)).encode() + extra + \
        "\r\nТекст письма.\r\n".encode()


def send(moat, sender, rcpt, msg, params=" SMTPUTF8"):
    """One transaction; returns the MAIL, RCPT and end-of-data replies
    (None for what was not sent)."""
    with connect(moat) as c:
        c.ehlo()
        rm = c.cmd("MAIL FROM:<%s>%s" % (sender, params))
        rr = c.cmd("RCPT TO:<%s>" % rcpt) if rm.code == 250 else None
        rd = c.data(msg) if rr is not None and rr.code == 250 else None
        c.cmd("QUIT")
    return rm, rr, rd


def utf8_queries(zdns):
    """Queries whose name is not ASCII: a U-label went to DNS raw."""
    return [q for q in zdns.queries() if any(ord(ch) > 0x7f for ch in q[0])]


def raw_log_is_utf8(moat):
    for line in moat.raw_lines:
        line.decode("utf-8")   # strict: raises on invalid UTF-8


# ------------------------------------------------------- sender domain, SPF

def test_sender_domain_u_label_found_under_its_a_label(moat_factory, zdns, ubackend):
    """A U-label sender domain passes the sender-domain check when DNS has its
    A-label; the backend gets the address as the client wrote it (UTF-8); the
    decision line holds it as readable UTF-8. An A-label sender passes too,
    and a U-label domain DNS does not have is still refused with 5.1.8."""
    m = idn_moat(moat_factory, zdns, ubackend, check_spf="no")
    msg = message("проверка домена")
    rm, rr, rd = send(m, SENDER, RCPT, msg)
    assert rm.code == 250 and rr.code == 250 and rd.code == 250, (rm, rr, rd)
    got = stored_message(ubackend, rd)
    assert got.mail_from == SENDER and got.rcpts == [RCPT]
    assert got.data.endswith(msg)
    zdns.wait_query(lambda n, t: n == alabel(SENDER_DOMAIN) and t == "MX")
    assert not utf8_queries(zdns), utf8_queries(zdns)
    d = wait_decision(m, lambda l: l["stage"] == "data")
    assert d["mail_from"] == SENDER and d["rcpt"] == RCPT and d["sender_domain"] == "pass", d
    # the same domain in A-labels
    rm, rr, rd = send(m, "ivan@" + alabel(SENDER_DOMAIN), RCPT, message("a-label"))
    assert rd is not None and rd.code == 250, (rm, rr, rd)
    # a U-label domain that does not exist
    rm, _, _ = send(m, "ivan@несуществующий.test", RCPT, b"")
    assert rm.code == 550 and rm.enhanced() == ["5.1.8"], rm
    zdns.wait_query(lambda n, t: n == alabel("несуществующий.test"))
    raw_log_is_utf8(m)


def test_spf_pass_for_a_u_label_domain(moat_factory, zdns, ubackend):
    """SPF evaluates the A-label's TXT record (RFC 8616 4) and passes;
    Authentication-Results names the sender as the client wrote it, in UTF-8
    (the message came with SMTPUTF8)."""
    m = idn_moat(moat_factory, zdns, ubackend)
    msg = message("spf pass")
    rm, rr, rd = send(m, SENDER, RCPT, msg)
    assert rd is not None and rd.code == 250, (rm, rr, rd)
    got = stored_message(ubackend, rd)
    ar = authres_of(got, msg)
    assert ar["spf"] == "pass", ar
    assert ar["spf_prop"] == {"smtp.mailfrom": SENDER}, ar
    # unquoted, as RFC 8601 allows an address (RFC 6532: UTF-8 in it)
    assert ("smtp.mailfrom=" + SENDER).encode() in got.data
    zdns.wait_query(lambda n, t: n == alabel(SENDER_DOMAIN) and t == "TXT")
    assert not utf8_queries(zdns), utf8_queries(zdns)
    d = wait_decision(m, lambda l: l["stage"] == "data")
    assert d["spf"] == "pass" and d["mail_from"] == SENDER, d


def test_spf_fail_for_a_u_label_domain(moat_factory, zdns, ubackend):
    """The A-label's SPF record does not allow the client: spf fail, refused
    by the default policy with 5.7.23 and the domain in A-labels (a reply is
    ASCII); nothing reaches the backend."""
    m = idn_moat(moat_factory, zdns, ubackend)
    sender = "отправитель@" + FAIL_DOMAIN
    rm, rr, rd = send(m, sender, RCPT, message("spf fail", sender=sender))
    assert rm.code == 550 and rm.enhanced() == ["5.7.23"], rm
    assert alabel(FAIL_DOMAIN) in rm.text, rm
    d = wait_decision(m, lambda l: l["stage"] == "mail")
    assert d["spf"] == "fail" and d["mail_from"] == sender and d["sender_domain"] == "pass", d
    assert not ubackend.messages()
    assert not utf8_queries(zdns), utf8_queries(zdns)


def test_authres_mailfrom_utf8_local_part(moat_factory, zdns, ubackend):
    """A UTF-8 local part at an ASCII domain (SPF pass): smtp.mailfrom is the
    address in UTF-8, not "??????" (RFC 8616, RFC 6532: the message came
    with SMTPUTF8); the backend gets it as the client wrote it."""
    m = idn_moat(moat_factory, zdns, ubackend)
    sender = "отправитель@example.org"
    msg = message("a-r", sender=sender)
    rm, rr, rd = send(m, sender, RCPT, msg)
    assert rd is not None and rd.code == 250, (rm, rr, rd)
    got = stored_message(ubackend, rd)
    assert got.mail_from == sender
    ar = authres_of(got, msg)
    assert ar["spf"] == "pass" and ar["spf_prop"] == {"smtp.mailfrom": sender}, ar
    assert b"?" not in [f for f in got.data.split(b"\r\n\r\n")[0].split(b"\r\n")
                        if f.startswith(b"\tspf=")][0]


# --------------------------------------------------------------------- DKIM

def dkim_records():
    """Key records as dkimpy's verifier looks them up: it asks for the name
    as written in d=, so the U-label form gets the same record."""
    k = dkimsign.key("rsa").txt
    return {key_name("sel", alabel(DKIM_DOMAIN)): k, key_name("sel", DKIM_DOMAIN): k}


def test_dkim_a_label_signer_verified(moat_factory, zdns, ubackend):
    """A message with a Russian header (SMTPUTF8), signed by dkimpy with d=
    the IDN in A-labels, the key under the A-label: dkim=pass, and
    Authentication-Results names the sender in UTF-8 and d= as signed."""
    m = idn_moat(moat_factory, zdns, ubackend)
    d = alabel(DKIM_DOMAIN)
    sender = "отправитель@" + DKIM_DOMAIN
    plain = message("подпись a-label", sender=sender)
    sig = sign(plain, dkimsign.key("rsa"), d, "sel")
    msg = sig + plain
    assert dkimsign.dkimpy_verifies(msg, dkim_records())   # the signature is sound
    rm, rr, rd = send(m, sender, RCPT, msg)
    assert rd is not None and rd.code == 250, (rm, rr, rd)
    got = stored_message(ubackend, rd)
    ar = authres_of(got, msg)
    assert ar["dkim"] == [{"result": "pass", "header.d": d, "header.s": "sel",
                           "header.b": b_tag(sig)[:8]}], ar
    assert ar["spf"] == "pass" and ar["spf_prop"] == {"smtp.mailfrom": sender}, ar
    zdns.wait_query(lambda n, t: n == key_name("sel", d) and t == "TXT")
    assert not utf8_queries(zdns), utf8_queries(zdns)
    line = wait_decision(m, lambda l: l["stage"] == "data")
    assert line["dkim"] == "%s:pass" % d and line["mail_from"] == sender, line


def test_dkim_u_label_signer_neutral_not_refused(moat_factory, zdns, ubackend):
    """d= in U-labels, as RFC 8616 5 recommends for an SMTPUTF8 message and
    dkimpy signs it: libopendkim 2.11 refuses any non-ASCII byte in a
    signature's tags, so moat cannot verify it. It says so (dkim=neutral,
    the reason, d= and s= as signed), never "fail": the message is delivered,
    and no name goes to DNS in raw UTF-8."""
    m = idn_moat(moat_factory, zdns, ubackend)
    sender = "отправитель@" + DKIM_DOMAIN
    plain = message("подпись u-label", sender=sender)
    msg = sign(plain, dkimsign.key("rsa"), DKIM_DOMAIN, "sel") + plain
    assert dkimsign.dkimpy_verifies(msg, dkim_records())   # the signature is sound
    rm, rr, rd = send(m, sender, RCPT, msg)
    assert rd is not None and rd.code == 250, (rm, rr, rd)
    got = stored_message(ubackend, rd)
    ar = authres_of(got, msg)
    [r] = ar["dkim"]
    assert r["result"] == "neutral" and r["header.d"] == DKIM_DOMAIN and r["header.s"] == "sel", ar
    assert "RFC 8616" in ar["raw"], ar
    assert not utf8_queries(zdns), utf8_queries(zdns)
    line = wait_decision(m, lambda l: l["stage"] == "data")
    assert line["dkim"] == "%s:neutral" % DKIM_DOMAIN, line


# ------------------------------------------------------------------ relaying

@pytest.mark.parametrize("conf,rcpt", [
    (LOCAL_U, "получатель@" + LOCAL_U),           # configured in U-labels, written in U-labels
    (LOCAL_U, "получатель@" + alabel(LOCAL_U)),   # ... written in A-labels
    (LOCAL_U, "user@" + LOCAL_U.upper()),         # ... in capitals
    (alabel(LOCAL_A), "получатель@" + LOCAL_A),   # configured in A-labels, written in U-labels
    (alabel(LOCAL_A), "user@" + LOCAL_A.upper()), # ... in capitals
], ids=["u-u", "u-a", "u-caps", "a-u", "a-caps"])
def test_relay_local_domain_in_either_form(moat_factory, zdns, ubackend, conf, rcpt):
    """local_domains in U-labels or A-labels; a recipient in either form is
    local and delivered, as the client wrote it. A recipient at a foreign IDN
    is still refused (relay access denied)."""
    m = idn_moat(moat_factory, zdns, ubackend, check_spf="no", check_sender_domain="no",
                 local_domains="%s, %s" % (LOCAL_DOMAIN, conf))
    msg = message("relay")
    rm, rr, rd = send(m, SENDER, rcpt, msg)
    assert rr is not None and rr.code == 250, (rm, rr)
    assert rd.code == 250, rd
    got = stored_message(ubackend, rd)
    assert got.rcpts == [rcpt]
    d = wait_decision(m, lambda l: l["stage"] == "data")
    assert d["rcpt"] == rcpt, d
    _, rr, _ = send(m, SENDER, "получатель@чужой.test", b"")
    assert rr.code == 554 and rr.enhanced() == ["5.7.1"], rr


def test_local_recipients_in_either_form(moat_factory, zdns, ubackend, tmp_path):
    """local_recipients written with U-labels and with A-labels: known users
    in either form pass, an unknown one gets 550 5.1.1."""
    table = tmp_path / "recipients"
    table.write_text("получатель@%s\nivan@%s\n" % (LOCAL_U, alabel(LOCAL_A)), encoding="utf-8")
    m = idn_moat(moat_factory, zdns, ubackend, check_spf="no", check_sender_domain="no",
                 local_recipients=str(table),
                 local_domains="%s, %s" % (alabel(LOCAL_U), alabel(LOCAL_A)))
    for rcpt in ("получатель@" + alabel(LOCAL_U), "получатель@" + LOCAL_U, "ivan@" + LOCAL_A):
        _, rr, rd = send(m, SENDER, rcpt, message("table " + rcpt))
        assert rr.code == 250 and rd.code == 250, (rcpt, rr, rd)
    _, rr, _ = send(m, SENDER, "незнакомец@" + LOCAL_U, b"")
    assert rr.code == 550 and rr.enhanced() == ["5.1.1"], rr


def test_rules_see_a_labels(moat_factory, zdns, ubackend, tmp_path):
    """Rules and lists name IDNs in A-labels and match whatever form the
    client wrote: a blocklisted domain cannot slip past written in U-labels
    (or in capitals), neither as sender-domain (a list) nor as sender @domain."""
    (tmp_path / "blocked.list").write_text(alabel(SENDER_DOMAIN) + "\n")
    rules = tmp_path / "idn.rules"
    rules.write_text('reject sender-domain list:blocked.list "550 5.7.1 <%%{sender}>: blocked domain"\n'
                     'reject sender @%s "550 5.7.1 <%%{sender}>: blocked sender"\n' % alabel(FAIL_DOMAIN))
    m = idn_moat(moat_factory, zdns, ubackend, check_spf="no", check_sender_domain="no",
                 rules=str(rules))
    for sender, why in ((SENDER, "blocked domain"), ("Иван@" + SENDER_DOMAIN.upper(), "blocked domain"),
                        ("ivan@" + FAIL_DOMAIN, "blocked sender")):
        rm, _, _ = send(m, sender, RCPT, b"")
        assert rm.code == 550 and why in rm.text, (sender, rm)
    rm, rr, rd = send(m, "ivan@" + DKIM_DOMAIN, RCPT, message("not blocked"))
    assert rd is not None and rd.code == 250, (rm, rr, rd)


# ------------------------------------------------------- invalid IDNA, SMTPUTF8

@pytest.mark.parametrize("domain", ["xn--zz.test", "☃.test", "aمثال.test"],
                         ids=["broken-a-label", "disallowed", "bidi"])
def test_invalid_idna_refused_as_syntax(moat_factory, zdns, ubackend, domain):
    """A domain IDNA2008 refuses is a malformed address: 501 5.1.7 at MAIL,
    501 5.1.3 at RCPT (no DNS lookup, no backend); the session goes on and
    the next transaction is delivered."""
    m = idn_moat(moat_factory, zdns, ubackend, check_spf="no")
    with connect(m) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<ivan@%s> SMTPUTF8" % domain)
        assert r.code == 501 and r.enhanced() == ["5.1.7"], r
        assert "internationalized domain name" in r.text, r
        c.expect("MAIL FROM:<%s> SMTPUTF8" % SENDER, 250)
        r = c.cmd("RCPT TO:<user@%s>" % domain)
        assert r.code == 501 and r.enhanced() == ["5.1.3"], r
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        assert c.data(message("after a bad domain")).code == 250
        c.expect("QUIT", 221)
    assert not [q for q in zdns.queries() if domain.split(".")[0] in q[0]]
    assert len(ubackend.messages()) == 1


def test_ambiguous_recipient_domain_refused(moat_factory, zdns, ubackend):
    """IDNA2008 reads "straße.de" as xn--strae-oqa.de, IDNA2003 (and Postfix
    with ICU before 76) as strasse.de, someone else's domain: as a recipient
    it is refused (501 5.1.3), so no backend can take a domain moat judged
    local for another. Its A-label is one domain and is delivered; as a
    sender it passes (IDNA2008, RFC 8616)."""
    m = idn_moat(moat_factory, zdns, ubackend, check_spf="no", check_sender_domain="no",
                 local_domains="straße.de")
    with connect(m) as c:
        c.ehlo()
        c.expect("MAIL FROM:<groß@straße.de> SMTPUTF8", 250)
        r = c.cmd("RCPT TO:<user@straße.de>")
        assert r.code == 501 and r.enhanced() == ["5.1.3"] and "ambiguous" in r.text, r
        c.expect("RCPT TO:<user@xn--strae-oqa.de>", 250)
        assert c.data(message("ß")).code == 250
        c.expect("QUIT", 221)
    [got] = ubackend.messages()
    assert got.mail_from == "groß@straße.de" and got.rcpts == ["user@xn--strae-oqa.de"]


def test_utf8_address_without_smtputf8_refused(moat_factory, zdns, ubackend):
    """Without the SMTPUTF8 parameter a UTF-8 address is refused as before
    (553 5.6.7); with it the same address is delivered."""
    m = idn_moat(moat_factory, zdns, ubackend)
    rm, _, _ = send(m, SENDER, RCPT, b"", params="")
    assert rm.code == 553 and rm.enhanced() == ["5.6.7"], rm
    rm, rr, rd = send(m, SENDER, RCPT, message("with SMTPUTF8"))
    assert rd is not None and rd.code == 250, (rm, rr, rd)


# ----------------------------------------------------------------------- log

def test_log_utf8_readable_invalid_bytes_replaced(moat_factory, zdns, ubackend):
    """The JSON log writes UTF-8 as UTF-8 (no "\\u00d0\\u00be" mojibake) and a
    byte that is not UTF-8 as U+FFFD: every raw line is valid UTF-8 and
    parses to the strings the client sent."""
    m = idn_moat(moat_factory, zdns, ubackend, check_spf="no", check_sender_domain="no")
    with connect(m) as c:
        c.send(b"EHLO \xd0\xba\xd0\xbb\xd0\xb8\xd0\xb5\xd0\xbd\xd1\x82\xff\xc3.test\r\n")
        assert c.reply().code == 250
        c.expect("MAIL FROM:<%s> SMTPUTF8" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        assert c.data(message("журнал")).code == 250
        c.expect("QUIT", 221)
    d = wait_decision(m, lambda l: l["stage"] == "data")
    assert d["mail_from"] == SENDER and d["rcpt"] == RCPT, d
    assert d["helo"] == "клиент\ufffd\ufffd.test", d
    raw_log_is_utf8(m)
    raw = [ln for ln in m.raw_lines if SENDER.encode() in ln]
    assert raw, "the sender is not in the log as UTF-8"
    assert all(b"\\u00d0" not in ln for ln in m.raw_lines)
    for ln in raw:
        assert json.loads(ln.decode("utf-8"))["mail_from"] == SENDER
