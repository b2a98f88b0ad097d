"""DMARC (RFC 7489) end to end: policy records on the loopback DNS server,
messages signed by an independent DKIM signer (dkimpy), SPF from the
envelope, and moat's verdict compared with the RFC's rules written plainly
here (expected()) and with an independent implementation's: authheaders
(Debian python3-authheaders, its check_dmarc fed the same records).

The matrix: SPF pass aligned exactly, aligned by organizational domain only,
unaligned, and not passing (softfail) x DKIM none, pass aligned exactly, by
organizational domain only, unaligned, and failing x aspf/adkim relaxed and
strict x a From at the organizational domain, at a subdomain that has no
record (the organizational domain's applies, with sp) and at a subdomain
with a record of its own (its p applies, sp is ignored) x p none, quarantine,
reject x sp absent or different x pct 100 and 0. Then temperror (SERVFAIL,
no answer) at _dmarc, permerror cases, the From rules of RFC 7489 6.6.1, pct
sampling with a key, the lookup that starts while the body arrives, the
built-in policy and check_dmarc = no.

The organizational domain comes from the public suffix list: the domains
live under co.uk, so that the list (not "the last two labels") must be read.

authheaders deviations, checked separately: it applies sp to a record
found at the From domain itself (RFC 7489 6.3: sp is for subdomains found
through the organizational domain) and has no pct."""

import functools
import struct

import pytest

from authres.core import DKIMAuthenticationResult, SPFAuthenticationResult
import authheaders
import authheaders.dmarc_lookup

# authheaders reads the whole public suffix list on every call of
# get_org_domain (several per message): the same function, its answers kept
authheaders.get_org_domain = authheaders.dmarc_lookup.get_org_domain = \
    functools.lru_cache(maxsize=None)(authheaders.dmarc_lookup.get_org_domain)

import dkimsign  # noqa: E402
from checkslib import (RCPT, authres_of, base_zone, checks_moat, connect, stored_message,
                       wait_decision)
from dkimsign import dkimpy_verifies, key_name, sign

SUFFIX = "co.uk"            # a public suffix of two labels
UNRELATED = "elsewhere.example"
SPF_PASS = "v=spf1 ip4:127.0.0.0/8 -all"
SPF_SOFT = "v=spf1 ~all"
RULES_DMARC = None          # filled from rules/default.rules (the built-in DMARC rules)


def builtin_dmarc_rules():
    """The built-in policy's DMARC rules, as rules/default.rules has them."""
    import os
    here = os.path.dirname(__file__)
    text = open(os.path.join(here, "..", "..", "rules", "default.rules")).read()
    start = text.index("reject  dmarc fail")
    return text[start:]


# ------------------------------------------------------------------ the zone

POLICIES = ["none", "quarantine", "reject"]


def variant_name(p, sp, pct, mode):
    # no '-': authheaders reads a From domain as [a-z0-9.]+ only
    return "%s%s%s%s" % (p, sp or "nosp", pct, mode)


def org_of(variant):
    return "%s.%s" % (variant, SUFFIX)


def record(p, sp, pct, mode):
    r = "v=DMARC1; p=%s" % p
    if sp:
        r += "; sp=%s" % sp
    if pct != 100:
        r += "; pct=%d" % pct
    if mode == "s":
        r += "; adkim=s; aspf=s"
    return r


def other_policy(p):
    return {"none": "reject", "quarantine": "none", "reject": "none"}[p]


def add_domain(z, name, spf):
    z[name] = [("A", "192.0.2.60"), ("MX", (10, "mx." + name)), ("TXT", spf)]
    z[key_name("rsa", name)] = [("TXT", dkimsign.key("rsa").txt)]


def variant_zone(z, p, sp, pct, mode):
    """One policy variant: its organizational domain (record), a subdomain
    without a record, a subdomain with its own record, their SPF and DKIM
    keys."""
    org = org_of(variant_name(p, sp, pct, mode))
    z["_dmarc." + org] = [("TXT", record(p, sp, pct, mode))]
    own = "own." + org
    # the subdomain's own record: p is the variant's, sp set to something else
    z["_dmarc." + own] = [("TXT", record(p, other_policy(p), pct, mode))]
    for name in (org, "sub." + org, own, "mail." + org, "bounce.sub." + org, "soft." + org,
                 "soft.sub." + org, "soft.own." + org):
        add_domain(z, name, SPF_SOFT if name.startswith("soft.") else SPF_PASS)
    # soft.X: the same names as X for DKIM but SPF softfail (from the From domain itself)
    return org


def zone_for(variants):
    z = base_zone()
    add_domain(z, UNRELATED, SPF_PASS)
    for v in variants:
        variant_zone(z, *v)
    return z


# ------------------------------------------------------------ message cases

# (name, envelope domain (fmt with F = From domain, O = org domain), SPF
# expected, SPF identifier aligned relaxed, strict)
SPF_CASES = [
    ("spf-exact", "{F}", "pass"),
    ("spf-org", "{M}", "pass"),        # another name under the same organizational domain
    ("spf-unaligned", UNRELATED, "pass"),
    ("spf-soft", "soft.{F}", "softfail"),  # not a pass (its own policy ~all)
]
# (name, d= (fmt), whether the signature verifies)
DKIM_CASES = [
    ("dkim-none", None, None),
    ("dkim-exact", "{F}", True),
    ("dkim-org", "{M}", True),
    ("dkim-unaligned", UNRELATED, True),
    ("dkim-fail", "{F}", False),
]
FROM_KINDS = ["org", "sub", "own"]


def from_domain(org, kind):
    return {"org": org, "sub": "sub." + org, "own": "own." + org}[kind]


def other_name(org, f):
    """A name under the same organizational domain as f, not f itself."""
    return "mail." + org if f != "mail." + org else org


def message(f, subject, msgid):
    return (b"From: Someone <someone@" + f.encode() + b">\r\nTo: bob@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
            b"Message-ID: <" + msgid.encode() + b">\r\n\r\nA message about DMARC.\r\n")


def build(f, org, spf_case, dkim_case, n):
    m = other_name(org, f)
    env_domain = spf_case[1].format(F=f, M=m)
    subject = "%s %s %s" % (f, spf_case[0], dkim_case[0])
    msg = message(f, subject, "dmarc-%d@%s" % (n, f))
    d = dkim_case[1].format(F=f, M=m) if dkim_case[1] else None
    if d:
        sig = sign(msg, dkimsign.key("rsa"), d, "rsa")
        msg = sig + msg
        if dkim_case[2] is False:
            msg = msg.replace(b"A message about DMARC.", b"A message about DMARC, changed.")
    return "someone@" + env_domain, msg, d


# ------------------------------------------------------------ the RFC, plainly

def org_domain(name):
    """The organizational domain of names in this zone: one label under co.uk
    (the list's rule), or the last two labels (its default rule "*")."""
    labels = name.split(".")
    if name.endswith("." + SUFFIX):
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def aligned(ident, f, strict):
    if strict:
        return ident == f
    return org_domain(ident) == org_domain(f)


def expected(f, kind, p, sp, pct, mode, spf_res, spf_dom, dkim_ok, dkim_d):
    """(dmarc result, policy for this message): RFC 7489 6.6, 6.6.3, 6.6.4."""
    strict = mode == "s"
    ok = (spf_res == "pass" and aligned(spf_dom, f, strict)) or \
         (dkim_ok is True and aligned(dkim_d, f, strict))
    if kind == "sub":
        published = sp or p          # found through the organizational domain
    else:
        published = p                # the From domain's own record: p (sp is for subdomains)
    if ok:
        return "pass", published
    pol = published
    if pct == 0:                     # every message left out of the sample: one step down
        pol = {"reject": "quarantine", "quarantine": "none", "none": "none"}[pol]
    return "fail", pol


def authheaders_verdict(msg, zone, spf_res, mail_from, dkim_ok, dkim_d):
    """authheaders' DMARC result and policy for the same message and records."""
    def dnsfunc(name):
        entries = zone.get(name.rstrip(".").lower())
        if not entries:
            return None
        txts = [v for k, v in entries if k == "TXT"]
        return txts[0] if txts else None
    spf = SPFAuthenticationResult(result=spf_res, smtp_mailfrom=mail_from)
    dk = None
    if dkim_d:
        dk = DKIMAuthenticationResult(result="pass" if dkim_ok else "fail", header_d=dkim_d)
    r = authheaders.check_dmarc(msg, spf_result=spf, dkim_result=dk, dnsfunc=dnsfunc)
    return r.result, getattr(r, "policy", None)


# ------------------------------------------------------------------ helpers

def send(moat, mail_from, msg):
    with connect(moat) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % mail_from, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        r = c.data(msg)
        c.expect("QUIT", 221)
    return r


def data_line(moat, subject):
    return wait_decision(moat, lambda l: l["stage"] == "data" and l.get("subject") == subject,
                         what="data decision of %r" % subject)


def quarantine_tag(m):
    head = m.data.split(b"\r\n\r\n", 1)[0]
    return [l for l in head.split(b"\r\n") if l.lower().startswith(b"x-moat-quarantine:")]


@pytest.fixture
def rules_file(tmp_path):
    p = tmp_path / "dmarc.rules"
    p.write_text(builtin_dmarc_rules())
    return p


# ------------------------------------------------------------------ the matrix

VARIANTS = [(p, sp, pct, mode) for p in POLICIES for sp in (None, "other") for pct in (100, 0)
            for mode in ("r", "s")]


@pytest.mark.parametrize("variant", VARIANTS, ids=[variant_name(*v) for v in VARIANTS])
def test_matrix(dns_factory, moat_factory, backend, rules_file, variant):
    p, sp, pct, mode = variant
    sp = other_policy(p) if sp else None
    v = (p, sp, pct, mode)
    z = zone_for([v])
    dns = dns_factory(z)
    # only the DMARC rules (the built-in ones): an SPF softfail or a failing
    # signature must reach DMARC, not be refused for itself
    moat = checks_moat(moat_factory, dns, rules=rules_file)
    org = org_of(variant_name(*v))
    bad, n, counts = [], 0, {}
    for kind in FROM_KINDS:
        f = from_domain(org, kind)
        for sc in SPF_CASES:
            for dc in DKIM_CASES:
                n += 1
                mail_from, msg, d = build(f, org, sc, dc, n)
                subject = "%s %s %s" % (f, sc[0], dc[0])
                if d:
                    assert dkimpy_verifies(msg, {k: dict(e)["TXT"] for k, e in z.items()
                                                 if "_domainkey" in k}) is dc[2], subject
                spf_dom = mail_from.split("@")[1]
                want = expected(f, kind, p, sp, pct, mode, sc[2], spf_dom, dc[2], d)
                r = send(moat, mail_from, msg)
                line = data_line(moat, subject)
                got = (line.get("dmarc"), line.get("dmarc_policy"))
                if want[0] == "fail" and want[1] == "reject":
                    disp_ok = r.code == 550 and r.enhanced() == ["5.7.1"] and f in r.line
                else:
                    disp_ok = r.code == 250
                    if disp_ok:
                        m = stored_message(backend, r)
                        ar = authres_of(m)
                        tagged = bool(quarantine_tag(m))
                        disp_ok = (tagged == (want == ("fail", "quarantine"))
                                   and "dmarc=%s" % want[0] in ar["raw"]
                                   and "header.from=%s" % f in ar["raw"])
                # the independent verdict: result always; policy where
                # authheaders follows the RFC (it has no pct, and applies
                # sp to a record found at the From domain: the "own"
                # subdomain's record always has one)
                ah = authheaders_verdict(msg, z, sc[2], mail_from, dc[2], d)
                ah_ok = ah[0] == want[0]
                if pct == 100 and (kind == "sub" or (kind == "org" and not sp)):
                    ah_ok = ah_ok and ah[1] == want[1]
                counts[want] = counts.get(want, 0) + 1
                if got != want or not disp_ok or not ah_ok:
                    bad.append((subject, "moat", got, "rfc", want, "authheaders", ah, "reply", r.line,
                                "disposition ok", disp_ok))
    assert not bad, "\n".join(map(repr, bad))
    assert n == len(FROM_KINDS) * len(SPF_CASES) * len(DKIM_CASES)
    # the matrix reaches both results for every variant
    assert any(k[0] == "pass" for k in counts) and any(k[0] == "fail" for k in counts), counts


def test_authheaders_sp_deviation():
    """The one place authheaders is not compared on policy: a record at the
    From domain itself with sp set. RFC 7489 6.3 says sp is for subdomains
    (found through the organizational domain); authheaders applies it."""
    z = zone_for([("reject", "none", 100, "r")])
    org = org_of(variant_name("reject", "none", 100, "r"))
    mail_from, msg, d = build(org, org, SPF_CASES[2], DKIM_CASES[0], 1)
    assert authheaders_verdict(msg, z, "pass", mail_from, None, None) == ("fail", "none")
    assert expected(org, "org", "reject", "none", 100, "r", "pass", UNRELATED, None, None) == ("fail", "reject")


# ------------------------------------------------------- temperror, permerror

def one(dns_factory, moat_factory, zone_extra, from_dom="t.co.uk", **keys):
    z = base_zone()
    add_domain(z, from_dom, SPF_PASS)
    add_domain(z, UNRELATED, SPF_PASS)
    z.update(zone_extra)
    dns = dns_factory(z)
    return checks_moat(moat_factory, dns, **keys), dns


@pytest.mark.parametrize("how", ["SERVFAIL", "DROP"])
@pytest.mark.parametrize("where", ["from", "org"])
def test_temperror(dns_factory, moat_factory, backend, how, where):
    """A failing _dmarc lookup (SERVFAIL, or no answer at all) is temperror;
    the message is delivered with dmarc=temperror. Where: the From domain's
    record, or the organizational domain's (the From domain has none)."""
    f = "t.co.uk" if where == "from" else "sub.t.co.uk"
    extra = {"_dmarc.t.co.uk": [(how, "TXT")]}
    if where == "org":
        add_domain(extra, f, SPF_PASS)
    moat, _dns = one(dns_factory, moat_factory, extra, dns_timeout=300, dns_tries=1)
    msg = message(f, "temperror %s %s" % (how, where), "t@x")
    r = send(moat, "a@" + UNRELATED, msg)
    assert r.code == 250, r
    m = stored_message(backend, r)
    assert "dmarc=temperror header.from=%s" % f in authres_of(m)["raw"].replace("\r\n\t", " ")
    line = data_line(moat, "temperror %s %s" % (how, where))
    assert line["dmarc"] == "temperror" and "dmarc_policy" not in line, line


@pytest.mark.parametrize("records,result", [
    (["v=DMARC1; p=bogus"], "permerror"),
    (["v=DMARC1; rua=mailto:x@t.co.uk"], "permerror"),   # no p=
    (["v=DMARC1; p=reject", "v=DMARC1; p=none"], "permerror"),  # several records
    (["v=spf1 -all", "not dmarc"], "none"),              # TXT records, none of them DMARC's
    (["p=reject; v=DMARC1"], "none"),                    # v= must come first (RFC 7489 6.6.3)
    ([], "none"),
], ids=["bad-p", "no-p", "several", "not-dmarc", "v-not-first", "no-record"])
def test_record_errors(dns_factory, moat_factory, backend, records, result):
    extra = {"_dmarc.t.co.uk": [("TXT", r) for r in records]} if records else {}
    moat, _dns = one(dns_factory, moat_factory, extra)
    subject = "record %s" % result
    r = send(moat, "a@" + UNRELATED, message("t.co.uk", subject, "r@x"))
    assert r.code == 250, r
    ar = authres_of(stored_message(backend, r))["raw"].replace("\r\n\t", " ")
    assert "dmarc=%s" % result in ar, ar
    line = data_line(moat, subject)
    assert line["dmarc"] == result, line
    if result == "permerror":
        assert line["dmarc_reason"], line


def raw_message(head, subject):
    return (head + b"To: bob@example.test\r\nSubject: " + subject.encode() +
            b"\r\nMessage-ID: <f@x>\r\n\r\nBody.\r\n")


@pytest.mark.parametrize("head,reason", [
    (b"", "no From field"),
    (b"From: a@t.co.uk\r\nFrom: b@t.co.uk\r\n", "several From fields"),
    (b"From: a@a.test, b@b.test, c@c.test, d@d.test, e@e.test\r\n", "From addresses in too many domains"),
    (b"From: undisclosed-recipients:;\r\n", "From field without a usable address"),
    (b"From: someone\r\n", "From field without a usable address"),
    (b"From: a@[192.0.2.1]\r\n", "From field without a usable address"),
], ids=["missing", "two-fields", "five-domains", "empty-group", "no-at", "literal"])
def test_from_rules(dns_factory, moat_factory, backend, head, reason):
    """RFC 7489 6.6.1: no author domain to evaluate (or more than moat
    evaluates) -> permerror, named in the log; the message goes on (the
    rules may refuse it: dmarc permerror)."""
    extra = {"_dmarc.t.co.uk": [("TXT", "v=DMARC1; p=reject")]}
    moat, _dns = one(dns_factory, moat_factory, extra)
    subject = "from " + reason
    r = send(moat, "a@" + UNRELATED, raw_message(head, subject))
    assert r.code == 250, r
    line = data_line(moat, subject)
    assert line["dmarc"] == "permerror" and line["dmarc_reason"] == reason, line


def test_from_same_domain_twice_and_group(dns_factory, moat_factory, backend):
    """Several addresses of one domain, a display name with '@' and ',' in
    quotes, a comment, a group: one author domain, evaluated."""
    extra = {"_dmarc.t.co.uk": [("TXT", "v=DMARC1; p=reject")]}
    moat, _dns = one(dns_factory, moat_factory, extra)
    head = (b'From: "Evil, x@' + UNRELATED.encode() + b'" <a@t.co.uk> (c@' + UNRELATED.encode() +
            b'), team: b@T.CO.UK., c@t.co.uk;\r\n')
    r = send(moat, "a@" + UNRELATED, raw_message(head, "group"))
    assert r.code == 550 and r.enhanced() == ["5.7.1"] and "t.co.uk" in r.line, r
    line = data_line(moat, "group")
    assert line["dmarc"] == "fail" and line["dmarc_policy"] == "reject", line


@pytest.mark.parametrize("order", ["reject-first", "reject-last"])
def test_several_author_domains(dns_factory, moat_factory, backend, rules_file, order):
    """A From naming addresses in several domains: each is evaluated and the
    strictest policy among the failing ones applies (RFC 7489 6.6.1), so a
    second address cannot carry a p=reject domain's forgery through."""
    extra = {"_dmarc.t.co.uk": [("TXT", "v=DMARC1; p=reject")],
             "_dmarc.q.co.uk": [("TXT", "v=DMARC1; p=quarantine")]}
    add_domain(extra, "q.co.uk", SPF_PASS)
    moat, _dns = one(dns_factory, moat_factory, extra, rules=rules_file)
    addrs = ["a@t.co.uk", "b@q.co.uk", "c@" + UNRELATED]
    if order == "reject-last":
        addrs.reverse()
    subject = "authors " + order
    head = b"From: " + ", ".join(addrs).encode() + b"\r\n"
    # SPF passes for q.co.uk: q.co.uk passes, elsewhere.example has no policy, t.co.uk fails
    r = send(moat, "x@q.co.uk", raw_message(head, subject))
    line = data_line(moat, subject)
    assert r.code == 550 and r.enhanced() == ["5.7.1"] and "t.co.uk publishes a reject" in r.line, (r, {k: v for k, v in line.items() if "dmarc" in k or k == "spf"})
    assert line["dmarc"] == "fail" and line["dmarc_policy"] == "reject", line
    assert line["dmarc_domain"] == "t.co.uk", line
    # without the p=reject address: the quarantine one decides
    subject = "authors two " + order
    head = b"From: b@q.co.uk, c@" + UNRELATED.encode() + b"\r\n"
    r = send(moat, "x@" + UNRELATED, raw_message(head, subject))
    assert r.code == 250, r
    assert quarantine_tag(stored_message(backend, r)), r
    line = data_line(moat, subject)
    assert line["dmarc"] == "fail" and line["dmarc_policy"] == "quarantine", line


# ------------------------------------------------------------------ pct sampling

def siphash24(key, data):
    """SipHash-2-4 (the reference algorithm), for the test's own draws."""
    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & 0xFFFFFFFFFFFFFFFF
    k0, k1 = struct.unpack("<QQ", key)
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573
    M = 0xFFFFFFFFFFFFFFFF

    def rnd(v0, v1, v2, v3):
        v0 = (v0 + v1) & M; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        v2 = (v2 + v3) & M; v3 = rotl(v3, 16); v3 ^= v2
        v0 = (v0 + v3) & M; v3 = rotl(v3, 21); v3 ^= v0
        v2 = (v2 + v1) & M; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
        return v0, v1, v2, v3
    n = len(data)
    tail = data[n - n % 8:] + b"\0" * (7 - n % 8) + bytes([n & 0xFF])
    for i in range(0, n - n % 8, 8):
        m, = struct.unpack("<Q", data[i:i + 8])
        v3 ^= m
        v0, v1, v2, v3 = rnd(*rnd(v0, v1, v2, v3))
        v0 ^= m
    m, = struct.unpack("<Q", tail)
    v3 ^= m
    v0, v1, v2, v3 = rnd(*rnd(v0, v1, v2, v3))
    v0 ^= m
    v2 ^= 0xFF
    for _ in range(4):
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def test_siphash_reference_vector():
    """The test's SipHash-2-4 against the paper's vector (key 00..0f, 15 bytes 00..0e)."""
    assert siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


def test_pct_sampling_is_keyed_and_deterministic(dns_factory, moat_factory, backend, rules_file):
    """pct=50 with dmarc_sample_key: the draw is SipHash-2-4 under the key
    (its bytes, zero-padded to 16) of the Message-ID value, modulo 100;
    applied when below pct, else reject becomes quarantine."""
    key = "moat-test-key"
    extra = {"_dmarc.t.co.uk": [("TXT", "v=DMARC1; p=reject; pct=50")]}
    moat, _dns = one(dns_factory, moat_factory, extra, rules=rules_file, dmarc_sample_key=key)
    k = key.encode().ljust(16, b"\0")
    ins, outs = [], []
    i = 0
    while len(ins) < 3 or len(outs) < 3:
        mid = "<pct-%d@t.co.uk>" % i
        (ins if siphash24(k, mid.encode()) % 100 < 50 else outs).append(mid)
        i += 1
    for mid in ins[:3] + outs[:3]:
        subject = "pct " + mid
        msg = (b"From: a@t.co.uk\r\nSubject: " + subject.encode() + b"\r\nMessage-ID: " + mid.encode()
               + b"\r\n\r\nBody.\r\n")
        r = send(moat, "a@" + UNRELATED, msg)
        line = data_line(moat, subject)
        if mid in ins:
            assert r.code == 550 and line["dmarc_policy"] == "reject", (mid, r, line)
        else:
            assert r.code == 250 and line["dmarc_policy"] == "quarantine", (mid, r, line)
            assert quarantine_tag(stored_message(backend, r)), mid


# --------------------------------------------------- lookups while the body arrives

def test_policy_lookup_starts_before_end_of_data(dns_factory, moat_factory, backend):
    """The _dmarc query (and the organizational domain's) goes out when the
    From field has arrived, before the end of data."""
    extra = {"_dmarc.t.co.uk": [("TXT", "v=DMARC1; p=none")]}
    add_domain(extra, "sub.t.co.uk", SPF_PASS)
    moat, dns = one(dns_factory, moat_factory, extra)
    with connect(moat) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@%s>" % UNRELATED, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        c.expect("DATA", 354)
        c.send(b"From: x@sub.t.co.uk\r\nSubject: early\r\nMessage-ID: <e@x>\r\n\r\nfirst part\r\n")
        dns.wait_query(lambda n, t: n == "_dmarc.sub.t.co.uk" and t == "TXT")
        dns.wait_query(lambda n, t: n == "_dmarc.t.co.uk" and t == "TXT")
        c.send(b"second part\r\n.\r\n")
        r = c.reply()
        assert r.code == 250, r
        c.expect("QUIT", 221)
    line = data_line(moat, "early")
    assert line["dmarc"] == "fail" and line["dmarc_policy"] == "none", line


# ------------------------------------------------------- built-in policy, switch

def test_builtin_policy_rejects_and_quarantines(dns_factory, moat_factory, backend):
    """No rules in moat.conf: the built-in policy refuses a p=reject failure
    with 550 5.7.1 naming the domain, tags a p=quarantine one, passes the
    aligned one with dmarc=pass."""
    extra = {"_dmarc.rej.co.uk": [("TXT", "v=DMARC1; p=reject")],
             "_dmarc.qua.co.uk": [("TXT", "v=DMARC1; p=quarantine")]}
    add_domain(extra, "rej.co.uk", SPF_PASS)
    add_domain(extra, "qua.co.uk", SPF_PASS)
    moat, _dns = one(dns_factory, moat_factory, extra)
    r = send(moat, "a@" + UNRELATED, message("rej.co.uk", "builtin reject", "b1@x"))
    assert r.code == 550 and r.enhanced() == ["5.7.1"], r
    assert "rej.co.uk publishes a reject policy" in r.line, r
    line = data_line(moat, "builtin reject")
    assert line["action"] == "reject" and line["dmarc"] == "fail" and line["dmarc_policy"] == "reject", line
    assert not [m for m in backend.messages() if b"builtin reject" in m.data]

    r = send(moat, "a@" + UNRELATED, message("qua.co.uk", "builtin quarantine", "b2@x"))
    assert r.code == 250, r
    m = stored_message(backend, r)
    assert quarantine_tag(m) == [b"X-Moat-Quarantine: dmarc (qua.co.uk publishes a quarantine policy)"], m.data
    ar = authres_of(m)["raw"].replace("\r\n\t", " ")
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=qua.co.uk" in ar, ar

    r = send(moat, "a@rej.co.uk", message("rej.co.uk", "builtin pass", "b3@x"))
    assert r.code == 250, r
    m = stored_message(backend, r)
    assert not quarantine_tag(m)
    ar = authres_of(m)["raw"].replace("\r\n\t", " ")
    assert "dmarc=pass (p=reject dis=none) header.from=rej.co.uk" in ar, ar


def test_check_dmarc_no(dns_factory, moat_factory, backend):
    """check_dmarc = no: no _dmarc lookup, no dmarc= result, a p=reject
    forgery goes through."""
    extra = {"_dmarc.rej.co.uk": [("TXT", "v=DMARC1; p=reject")]}
    add_domain(extra, "rej.co.uk", SPF_PASS)
    moat, dns = one(dns_factory, moat_factory, extra, check_dmarc="no")
    r = send(moat, "a@" + UNRELATED, message("rej.co.uk", "off", "o@x"))
    assert r.code == 250, r
    m = stored_message(backend, r)
    assert "dmarc=" not in authres_of(m)["raw"]
    line = data_line(moat, "off")
    assert line.get("dmarc", "") == ""
    assert not [q for q in dns.queries() if q[0].startswith("_dmarc.")]


def test_moat_check_shows_dmarc(dns_factory, moat_factory, backend, tmp_path):
    """moat check --message: the data stage names the DMARC result, the
    policy and where it was found; a p=reject failure is the REJECT."""
    import subprocess
    extra = {"_dmarc.rej.co.uk": [("TXT", "v=DMARC1; p=reject; sp=quarantine")]}
    add_domain(extra, "rej.co.uk", SPF_PASS)
    moat, _dns = one(dns_factory, moat_factory, extra)
    msg = tmp_path / "msg.eml"
    msg.write_bytes(b"From: a@sub.rej.co.uk\nSubject: check\nMessage-ID: <c@x>\n\nbody\n")
    r = subprocess.run([moat.bin, "check", "-c", moat.conf_path, "--client", "127.0.0.1", "--from",
                        "a@" + UNRELATED, "--rcpt", RCPT, "--message", str(msg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    assert ("dmarc fail (no aligned SPF or DKIM pass, policy quarantine of _dmarc.rej.co.uk sp, pct 100)"
            in r.stdout), r.stdout
    assert "tag: X-Moat-Quarantine: dmarc (sub.rej.co.uk publishes a quarantine policy)" in r.stdout, r.stdout
    msg.write_bytes(b"From: a@rej.co.uk\nSubject: check\n\nbody\n")
    r = subprocess.run([moat.bin, "check", "-c", moat.conf_path, "--client", "127.0.0.1", "--from",
                        "a@" + UNRELATED, "--rcpt", RCPT, "--message", str(msg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "REJECT: 550 5.7.1 DMARC: rej.co.uk publishes a reject policy" in r.stdout, \
        r.stdout


def test_metrics_count_dmarc_results(dns_factory, moat_factory, backend):
    """moat_check_results_total counts DMARC's results like every check's."""
    from test_metrics import metrics_moat, samples, scrape, value
    extra = {"_dmarc.rej.co.uk": [("TXT", "v=DMARC1; p=reject")]}
    add_domain(extra, "rej.co.uk", SPF_PASS)
    z = base_zone()
    add_domain(z, UNRELATED, SPF_PASS)
    z.update(extra)
    moat = metrics_moat(moat_factory, dns_servers=dns_factory(z).servers, delay_reject="no")
    assert send(moat, "a@" + UNRELATED, message("rej.co.uk", "metrics fail", "m1@x")).code == 550
    assert send(moat, "a@rej.co.uk", message("rej.co.uk", "metrics pass", "m2@x")).code == 250
    assert send(moat, "a@rej.co.uk", message(UNRELATED, "metrics none", "m3@x")).code == 250
    data_line(moat, "metrics none")
    s = samples(scrape(moat.metrics_port))
    for result in ("fail", "pass", "none"):
        assert value(s, "moat_check_results_total", check="dmarc", result=result) == 1, result
