"""The default policy decided with evidence (issue 16 item 2): a corpus of
legitimate mail that breaks naive checks and of forgeries, sent through
moat's built-in rules with messages signed by an independent signer
(dkimpy), keys, SPF and DMARC records on the loopback DNS server, and the
client's address given by a PROXY header (a list server, a forwarder, an
attacker). Every legitimate message is delivered, every forgery refused.

The same corpus under rules/strict.rules (today's strictness kept for those
who want it) refuses the list mail and the forwarded mail too.

Legitimate:
  list-footer     Mailman-style list: the author's signature broken by a
                  footer added after signing, List-Id, the list's envelope
  list-subject    a list subject tag ("[dev] ...") and List-Post
  forwarder       a plain forwarder (trusted_forwarders) relaying from its
                  own address: SPF fail for the author's envelope, DKIM intact
                  (the author publishes p=reject: DMARC passes on DKIM)
  disclaimer      a forwarder (trusted_forwarders) that adds a disclaimer:
                  the author's signature broken, the author publishes p=none
  disclaimer-resigned  an untrusted forwarder that adds a disclaimer and
                  signs with its own domain: a signature passes
  p-none          a domain with p=none whose mail goes out through an ESP
                  (unaligned envelope, no signature): DMARC fail, policy none
Forgeries:
  unaligned-envelope  From of a p=reject domain, envelope at the attacker's
                  domain (SPF pass, unaligned), no signature -> DMARC 550
  unaligned-signed    the same, signed by the attacker's own domain
  replayed-body   a signed message of a domain without DMARC replayed with a
                  changed body: its own aligned signature fails, no List-Id,
                  the attacker's envelope -> DKIM 550
  spf-forged      the p=reject domain's envelope from an address its SPF
                  does not list, not a trusted forwarder -> SPF 550
  forwarder-no-dkim   through a trusted forwarder, From and envelope of the
                  p=reject domain, no signature: the forwarder is spared SPF
                  fail, DMARC still refuses"""

import os
import re

import pytest

import dkimsign
from checkslib import RCPT, base_zone, checks_moat, connect, proxy_v1, stored_message, wait_decision
from dkimsign import key_name, sign

AUTHOR = "author.example"        # no DMARC record
BANK = "bank.example"            # p=reject
NEWS = "news.example"            # p=none
LIST = "lists.example"           # the list server's domain
FWD = "fwd.example"              # a forwarder's domain
ESP = "esp.example"              # a bulk mail provider
EVIL = "spammy.example"          # the attacker's domain

AUTHOR_IP = "192.0.2.25"         # the authors' own servers
LIST_IP = "198.51.100.20"
FWD_IP = "198.51.100.7"          # in trusted_forwarders
FWD_NET = "198.51.100.0/29"
OTHER_FWD_IP = "203.0.113.40"    # a forwarder nobody configured
ESP_IP = "203.0.113.60"
EVIL_IP = "203.0.113.66"


def zone():
    z = base_zone()
    rsa = dkimsign.key("rsa").txt
    for d in (AUTHOR, BANK, NEWS):
        z[d] = [("A", AUTHOR_IP), ("MX", (10, "mx." + d)), ("TXT", "v=spf1 ip4:%s -all" % AUTHOR_IP)]
        z[key_name("s1", d)] = [("TXT", rsa)]
    z["_dmarc." + BANK] = [("TXT", "v=DMARC1; p=reject")]
    z["_dmarc." + NEWS] = [("TXT", "v=DMARC1; p=none")]
    for d, ip in ((LIST, LIST_IP), (FWD, OTHER_FWD_IP), (ESP, ESP_IP), (EVIL, EVIL_IP)):
        z[d] = [("A", ip), ("MX", (10, "mx." + d)), ("TXT", "v=spf1 ip4:%s -all" % ip)]
        z[key_name("s1", d)] = [("TXT", rsa)]
    # forward-confirmed reverse DNS for every client (strict.rules asks)
    for ip, host in ((LIST_IP, "mx." + LIST), (FWD_IP, "relay." + FWD), (OTHER_FWD_IP, "mx." + FWD),
                     (ESP_IP, "mx." + ESP), (EVIL_IP, "mx." + EVIL)):
        z[".".join(reversed(ip.split("."))) + ".in-addr.arpa"] = [("PTR", host)]
        z[host] = [("A", ip)]
    return z


def message(author, subject, body=b"Hello from the author.\r\nSecond line.\r\n", extra=b""):
    mid = re.sub(r"[^a-z0-9]", "-", subject.lower())
    return (b"From: Someone <someone@" + author.encode() + b">\r\nTo: bob@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\nDate: Tue, 08 Dec 2026 01:00:00 +0000\r\n"
            b"Message-ID: <" + mid.encode() + b"@" + author.encode() + b">\r\n" + extra + b"\r\n" + body)


def signed_by(msg, domain):
    return sign(msg, dkimsign.key("rsa"), domain, "s1") + msg


def list_footer():
    m = signed_by(message(AUTHOR, "list footer"), AUTHOR)
    head, body = m.split(b"\r\n\r\n", 1)
    head += b"\r\nList-Id: Developers <dev.lists.example>\r\nList-Post: <mailto:dev@lists.example>"
    return head + b"\r\n\r\n" + body + b"_______________________________________________\r\ndev mailing list\r\n"


def list_subject():
    m = signed_by(message(AUTHOR, "list subject"), AUTHOR)
    m = m.replace(b"Subject: list subject", b"Subject: [dev] list subject")
    head, body = m.split(b"\r\n\r\n", 1)
    return head + b"\r\nList-Post: <mailto:dev@lists.example>\r\n\r\n" + body


def disclaimer(author, subject):
    m = signed_by(message(author, subject), author)
    return m + b"--\r\nThis message was forwarded; the forwarder takes no responsibility.\r\n"


def disclaimer_resigned():
    m = disclaimer(AUTHOR, "disclaimer resigned")
    return sign(m, dkimsign.key("rsa"), FWD, "s1") + m


def replayed_body():
    m = signed_by(message(AUTHOR, "replayed"), AUTHOR)
    return m.replace(b"Hello from the author.", b"Buy cheap watches now.")


# (name, client address, envelope sender, message, expected code and enhanced status)
LEGIT = [
    ("list-footer", LIST_IP, "dev-bounces@" + LIST, list_footer),
    ("list-subject", LIST_IP, "dev-bounces@" + LIST, list_subject),
    ("forwarder", FWD_IP, "someone@" + BANK, lambda: signed_by(message(BANK, "forwarded"), BANK)),
    ("disclaimer", FWD_IP, "someone@" + NEWS, lambda: disclaimer(NEWS, "disclaimer")),
    ("disclaimer-resigned", OTHER_FWD_IP, "srs0=x@" + FWD, disclaimer_resigned),
    ("p-none", ESP_IP, "bounce-123@" + ESP, lambda: message(NEWS, "p none")),
]
FORGED = [
    ("unaligned-envelope", EVIL_IP, "x@" + EVIL, lambda: message(BANK, "unaligned envelope"), 550, "5.7.1"),
    ("unaligned-signed", EVIL_IP, "x@" + EVIL, lambda: signed_by(message(BANK, "unaligned signed"), EVIL),
     550, "5.7.1"),
    ("replayed-body", EVIL_IP, "x@" + EVIL, replayed_body, 550, "5.7.20"),
    ("spf-forged", EVIL_IP, "ceo@" + BANK, lambda: message(BANK, "spf forged"), 550, "5.7.23"),
    ("forwarder-no-dkim", FWD_IP, "ceo@" + BANK, lambda: message(BANK, "forwarder no dkim"), 550, "5.7.1"),
]


@pytest.fixture
def zdns(dns_factory):
    return dns_factory(zone())


def corpus_moat(moat_factory, zdns, rules=None):
    keys = {"proxy_protocol": "yes", "trusted_forwarders": FWD_NET}
    if rules:
        keys["rules"] = rules
    return checks_moat(moat_factory, zdns, **keys)


def send(moat, src, mail_from, msg):
    """The reply that decided: MAIL's if it refused, else the end of data's."""
    with connect(moat, proxy=proxy_v1(src)) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s>" % mail_from)
        if r.code == 250:
            c.expect("RCPT TO:<%s>" % RCPT, 250)
            r = c.data(msg)
        c.expect("QUIT", 221)
    return r


@pytest.fixture
def cmoat(moat_factory, zdns, backend):
    return corpus_moat(moat_factory, zdns)


@pytest.mark.parametrize("name,src,mail_from,make", LEGIT, ids=[c[0] for c in LEGIT])
def test_legitimate_delivered(cmoat, backend, name, src, mail_from, make):
    msg = make()
    r = send(cmoat, src, mail_from, msg)
    assert r.code == 250, (name, r)
    m = stored_message(backend, r)
    assert m.data.endswith(msg.split(b"\r\n\r\n", 1)[1]), name


@pytest.mark.parametrize("name,src,mail_from,make,code,esc", FORGED, ids=[c[0] for c in FORGED])
def test_forgery_refused(cmoat, backend, name, src, mail_from, make, code, esc):
    r = send(cmoat, src, mail_from, make())
    assert (r.code, r.enhanced()) == (code, [esc]), (name, r)
    cmoat.wait_session_end(1)
    assert not backend.messages(), "a forgery was delivered"


def test_the_legitimate_break_naive_checks(cmoat, backend):
    """The legitimate corpus is not trivially clean: each one has a failing
    signature, SPF fail or a DMARC fail (what today's or a naive policy
    refuses), as the decision lines show."""
    seen = {}
    for name, src, mail_from, make in LEGIT:
        r = send(cmoat, src, mail_from, make())
        assert r.code == 250, (name, r)
        subject = make().split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
        d = wait_decision(cmoat, lambda l, s=subject: l["stage"] == "data" and l.get("subject") == s,
                          what="data decision of %r" % subject)
        seen[name] = d
    assert "fail" in seen["list-footer"]["dkim"] and seen["list-footer"].get("list_mail") == "yes"
    assert "fail" in seen["list-subject"]["dkim"] and seen["list-subject"].get("list_mail") == "yes"
    assert seen["forwarder"]["spf"] == "fail" and seen["forwarder"]["dmarc"] == "pass"
    assert seen["disclaimer"]["spf"] == "fail" and seen["disclaimer"]["dkim"] == NEWS + ":fail"
    assert seen["disclaimer-resigned"]["dkim"] in (AUTHOR + ":fail," + FWD + ":pass",
                                                   FWD + ":pass," + AUTHOR + ":fail")
    assert seen["p-none"]["dmarc"] == "fail" and seen["p-none"]["dmarc_policy"] == "none"


STRICT_REFUSED = {"list-footer": (550, "5.7.20"), "list-subject": (550, "5.7.20"),
                  "forwarder": (550, "5.7.23"), "disclaimer": (550, "5.7.23")}


def test_strict_rules_keep_todays_strictness(moat_factory, zdns, backend):
    """rules/strict.rules: any failing signature without a passing one is
    refused, list mail included, and a trusted forwarder gets no SPF
    exemption; the forgeries stay refused."""
    strict = os.path.join(os.path.dirname(__file__), "..", "..", "rules", "strict.rules")
    m = corpus_moat(moat_factory, zdns, rules=os.path.abspath(strict))
    for name, src, mail_from, make in LEGIT:
        r = send(m, src, mail_from, make())
        want = STRICT_REFUSED.get(name)
        if want:
            assert (r.code, r.enhanced()) == (want[0], [want[1]]), (name, r)
        else:
            assert r.code == 250, (name, r)
    for name, src, mail_from, make, code, esc in FORGED:
        r = send(m, src, mail_from, make())
        assert r.code == code, (name, r)
