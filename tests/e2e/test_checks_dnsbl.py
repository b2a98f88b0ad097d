"""DNS lists, weighted as postscreen's postscreen_dnsbl_sites (issue 16 item 3):
dnsbl_sites at connect (the client's address, reversed; IPv6 in nibbles),
dbl_sites at MAIL (the HELO and sender domains), on the loopback DNS server.

Clients come with a PROXY header from documentation addresses (192.0.2.x,
2001:db8::), never trusted. Every test has its own DNS server, so nothing is
cached between tests."""

import ipaddress
import subprocess
import time

import pytest

from moatlib import DEFAULT_TIMEOUT, SMTPClient
from checkslib import (RCPT, SilentDNS, base_zone, checks_moat, connect, no_backend_contact, proxy_v1,
                       simple_message, stored_message, wait_decision)

SITES = "zen.example*3, bl.example=127.0.0.[2..11]*2, wl.example*-5"


def rev(ip):
    a = ipaddress.ip_address(ip)
    if a.version == 4:
        return ".".join(reversed(ip.split(".")))
    return ".".join(reversed(a.exploded.replace(":", "")))


def listed(zone, ip, site, *answers):
    zone[rev(ip) + "." + site] = [("A", a) for a in answers]


def metrics(m):
    """{(name, labels): value} of moat's /metrics (metrics_listen)."""
    from test_metrics import samples, scrape
    addr = m.wait_log(lambda l: l.get("event") == "metrics_listening", what="metrics_listening")["addr"]
    return samples(scrape(int(addr.rsplit(":", 1)[1])))


def metric(s, name, **labels):
    return s.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def zone():
    return base_zone()


def dmoat(moat_factory, dns, **keys):
    keys.setdefault("dnsbl_sites", SITES)
    keys.setdefault("dnsbl_threshold", "3")
    keys.setdefault("proxy_protocol", "yes")
    keys.setdefault("check_spf", "no")
    keys.setdefault("check_sender_domain", "no")
    keys.setdefault("delay_reject", "yes")  # the default; checks_moat turns it off
    return checks_moat(moat_factory, dns, **keys)


def connect_decision(m, ip):
    return wait_decision(m, lambda l: l["stage"] in ("connect", "rcpt") and l.get("client_ip") == ip,
                         what="decision for %s" % ip)


def refused_at_rcpt(m, ip, helo="client.example.org"):
    """delay_reject (the default): the banner is 220, each RCPT is refused."""
    with connect(m, proxy=proxy_v1(ip)) as c:
        c.ehlo(helo)
        c.expect("MAIL FROM:<alice@example.org>", 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        c.expect("QUIT", 221)
    return r


def delivered(m, backend, ip, helo="client.example.org", sender="alice@example.org"):
    with connect(m, proxy=proxy_v1(ip)) as c:
        c.ehlo(helo)
        c.expect("MAIL FROM:<%s>" % sender, 250)
        c.expect("RCPT TO:<%s>" % RCPT, 250)
        stored_message(backend, c.data(simple_message("dnsbl %s" % ip)))
        c.expect("QUIT", 221)


def rcpt_reject(m, ip):
    return wait_decision(m, lambda l: l["stage"] == "rcpt" and l["action"] == "reject" and l.get("client_ip") == ip,
                         what="rcpt refusal of %s" % ip)


# ------------------------------------------------------------- weights and threshold

def test_weights_sum_over_threshold(moat_factory, dns_factory, backend, zone):
    """zen (3) alone reaches 3; bl (2) alone does not; both make 5."""
    listed(zone, "192.0.2.1", "zen.example", "127.0.0.2")
    listed(zone, "192.0.2.2", "bl.example", "127.0.0.3")
    listed(zone, "192.0.2.3", "zen.example", "127.0.0.4")
    listed(zone, "192.0.2.3", "bl.example", "127.0.0.11")
    dns = dns_factory(zone)
    m = dmoat(moat_factory, dns)
    with no_backend_contact(m, backend):
        r = refused_at_rcpt(m, "192.0.2.1")
    assert r.code == 554 and r.enhanced() == ["5.7.1"], r
    assert "blocked using zen.example" in r.text, r
    d = rcpt_reject(m, "192.0.2.1")
    assert (d["rule_id"], d["dnsbl_score"], d["dnsbl"]) == ("dnsbl", 3, "zen.example*3"), d
    delivered(m, backend, "192.0.2.2")
    d = wait_decision(m, lambda l: l["stage"] == "data" and l.get("client_ip") == "192.0.2.2")
    assert (d["action"], d["dnsbl_score"], d["dnsbl"]) == ("accept", 2, "bl.example*2"), d
    r = refused_at_rcpt(m, "192.0.2.3")
    assert r.code == 554 and "zen.example, bl.example" in r.text, r
    assert rcpt_reject(m, "192.0.2.3")["dnsbl_score"] == 5


def test_allowlist_negative_weight(moat_factory, dns_factory, backend, zone):
    """zen*3 + bl*2 - wl*5 = 0: delivered; the allowlist is a fact rules can test."""
    for site in ("zen.example", "bl.example", "wl.example"):
        listed(zone, "192.0.2.4", site, "127.0.0.2")
    m = dmoat(moat_factory, dns_factory(zone))
    delivered(m, backend, "192.0.2.4")
    d = wait_decision(m, lambda l: l["stage"] == "data" and l.get("client_ip") == "192.0.2.4")
    assert d["action"] == "accept" and d["dnsbl_score"] == 0, d
    assert d["dnsbl"] == "zen.example*3 bl.example*2 wl.example*-5", d


def test_filter(moat_factory, dns_factory, backend, zone):
    """bl.example=127.0.0.[2..11]: 127.0.0.12 and 127.0.0.1 are not listings; the
    threshold 2 makes bl alone enough."""
    listed(zone, "192.0.2.5", "bl.example", "127.0.0.12", "127.0.0.1")
    listed(zone, "192.0.2.6", "bl.example", "127.0.0.12", "127.0.0.10")
    m = dmoat(moat_factory, dns_factory(zone), dnsbl_threshold="2")
    delivered(m, backend, "192.0.2.5")
    d = wait_decision(m, lambda l: l["stage"] == "data" and l.get("client_ip") == "192.0.2.5")
    assert d["dnsbl_score"] == 0 and "dnsbl" not in d and "dnsbl_errors" not in d, d
    assert refused_at_rcpt(m, "192.0.2.6").code == 554


@pytest.mark.parametrize("answer", ["127.255.255.254", "127.255.255.252", "192.0.2.99"],
                         ids=["spamhaus-public-resolver", "spamhaus-over-limit", "outside-127"])
def test_error_answers_are_not_listings(moat_factory, dns_factory, backend, zone, answer):
    listed(zone, "192.0.2.7", "zen.example", answer)
    m = dmoat(moat_factory, dns_factory(zone), dnsbl_sites="zen.example", dnsbl_threshold="1",
              metrics_listen="127.0.0.1:0")
    delivered(m, backend, "192.0.2.7")
    d = wait_decision(m, lambda l: l["stage"] == "data" and l.get("client_ip") == "192.0.2.7")
    assert d["action"] == "accept" and d["dnsbl_score"] == 0, d
    assert d["dnsbl_errors"] == "zen.example " + answer, d
    s = metrics(m)
    kind = "not_loopback" if answer.startswith("192.") else "error_code"
    assert metric(s, "moat_dnsbl_errors_total", kind=kind) == 1, s
    assert metric(s, "moat_check_results_total", check="dnsbl", result="error") == 1
    assert metric(s, "moat_check_results_total", check="dnsbl", result="listed") == 0


def test_reply_sites_off(moat_factory, dns_factory, backend, zone):
    """dnsbl_reply_sites = no: the reply does not name the list (a zone may hold a
    key, Spamhaus DQS); the log does."""
    listed(zone, "192.0.2.8", "key123.zen.example", "127.0.0.2")
    m = dmoat(moat_factory, dns_factory(zone), dnsbl_sites="key123.zen.example", dnsbl_threshold="1",
              dnsbl_reply_sites="no")
    r = refused_at_rcpt(m, "192.0.2.8")
    assert r.code == 554 and "key123" not in r.text and "a DNS blocklist" in r.text, r
    assert rcpt_reject(m, "192.0.2.8")["dnsbl"] == "key123.zen.example*1"


def test_refused_at_connect_without_delay_reject(moat_factory, dns_factory, zone):
    listed(zone, "192.0.2.9", "zen.example", "127.0.0.2")
    m = dmoat(moat_factory, dns_factory(zone), delay_reject="no")
    c = SMTPClient(m.port, read_banner=False)
    c.send(proxy_v1("192.0.2.9"))
    r = c.reply()
    assert r.code == 554 and "blocked using zen.example" in r.text, r
    c.close()
    d = wait_decision(m, lambda l: l["stage"] == "connect" and l.get("client_ip") == "192.0.2.9")
    assert d["action"] == "reject" and d["rule_id"] == "dnsbl", d


def test_ipv6_nibbles(moat_factory, dns_factory, backend, zone):
    ip = "2001:db8::1:2"
    listed(zone, ip, "zen.example", "127.0.0.2")
    dns = dns_factory(zone)
    m = dmoat(moat_factory, dns)
    assert refused_at_rcpt(m, ip).code == 554
    want = "2.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example"
    assert want in [q[0] for q in dns.queries()]


def test_monitor_mode(moat_factory, dns_factory, backend, zone):
    listed(zone, "192.0.2.10", "zen.example", "127.0.0.2")
    m = dmoat(moat_factory, dns_factory(zone), mode="monitor")
    delivered(m, backend, "192.0.2.10")
    w = m.wait_log(lambda l: l.get("action") == "would-reject" and l.get("rule_id") == "dnsbl",
                   what="would-reject dnsbl")
    assert w.get("client_ip", "192.0.2.10") == "192.0.2.10", w


def test_cache_by_ttl(moat_factory, dns_factory, backend, zone):
    """A second connection from the same address asks nothing: dns.c's cache."""
    listed(zone, "192.0.2.11", "zen.example", "127.0.0.2")
    dns = dns_factory(zone)
    m = dmoat(moat_factory, dns, workers="1")
    assert refused_at_rcpt(m, "192.0.2.11").code == 554
    rcpt_reject(m, "192.0.2.11")
    n = len([q for q in dns.queries() if q[0].startswith("11.2.0.192.")])
    assert n == 3  # one per zone
    assert refused_at_rcpt(m, "192.0.2.11").code == 554
    m.logs.wait_count(lambda l: l.get("stage") == "rcpt" and l.get("client_ip") == "192.0.2.11", 2,
                      DEFAULT_TIMEOUT, what="the second refusal")
    assert len([q for q in dns.queries() if q[0].startswith("11.2.0.192.")]) == n


def test_silent_list_costs_its_deadline(moat_factory, dns_factory, backend, zone):
    """A list that never answers costs dnsbl_timeout, counts as an error, and
    another session is served meanwhile."""
    listed(zone, "192.0.2.12", "zen.example", "127.0.0.2")
    zone["12.2.0.192.slow.example"] = ["TIMEOUT"]
    zone["13.2.0.192.slow.example"] = ["TIMEOUT"]
    dns = dns_factory(zone)
    m = dmoat(moat_factory, dns, dnsbl_sites="zen.example*3 slow.example*3", dnsbl_timeout="800",
              dns_timeout="5000", workers="1", metrics_listen="127.0.0.1:0")
    slow = SMTPClient(m.port, read_banner=False)
    t0 = time.monotonic()
    slow.send(proxy_v1("192.0.2.12"))
    dns.wait_query(lambda q, t: q == "12.2.0.192.slow.example")
    # meanwhile another session (no listing at all) is greeted and delivers
    t1 = time.monotonic()
    with connect(m, proxy=proxy_v1("192.0.2.20")) as c:
        other = time.monotonic() - t1
        c.expect("QUIT", 221)
    banner = slow.reply()
    waited = time.monotonic() - t0
    assert banner.code == 220, banner
    print("silent list: session waited %.3f s (dnsbl_timeout 0.8 s), other session greeted in %.3f s"
          % (waited, other))
    assert 0.75 <= waited < 2.0, waited
    assert other < 0.7, other
    slow.send(b"EHLO x.example\r\n")
    slow.reply()
    slow.send(b"MAIL FROM:<a@example.org>\r\n")
    slow.reply()
    slow.send(("RCPT TO:<%s>\r\n" % RCPT).encode())
    r = slow.reply()
    assert r.code == 554 and "zen.example" in r.text, r
    slow.close()
    d = rcpt_reject(m, "192.0.2.12")
    assert d["dnsbl_score"] == 3 and d["dnsbl_errors"] == "slow.example timeout", d
    s = metrics(m)
    assert metric(s, "moat_dnsbl_errors_total", kind="timeout") == 1, s
    assert metric(s, "moat_check_results_total", check="dnsbl", result="listed") == 1
    assert metric(s, "moat_check_results_total", check="dnsbl", result="clean") == 1


def test_dbl_sender_and_helo(moat_factory, dns_factory, backend, zone):
    zone["spammy.example"] = [("A", "192.0.2.50")]
    zone["spammy.example.dbl.example"] = [("A", "127.0.1.2")]
    zone["bad-helo.example.dbl.example"] = [("A", "127.0.1.2")]
    zone["error.example.dbl.example"] = [("A", "127.0.1.255"), ("A", "127.255.255.254")]
    dns = dns_factory(zone)
    m = dmoat(moat_factory, dns, dnsbl_sites="", dbl_sites="dbl.example=127.0.1.[2..99]")
    with connect(m, proxy=proxy_v1("192.0.2.30")) as c:
        c.ehlo("mail.good.example")
        c.expect("MAIL FROM:<alice@spammy.example>", 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        assert r.code == 554 and "domain spammy.example blocked using dbl.example" in r.text, r
        c.expect("RSET", 250)
        c.ehlo("bad-helo.example")
        c.expect("MAIL FROM:<alice@example.org>", 250)
        r = c.cmd("RCPT TO:<%s>" % RCPT)
        assert r.code == 554 and "domain bad-helo.example blocked" in r.text, r
        c.expect("QUIT", 221)
    d = wait_decision(m, lambda l: l["stage"] == "rcpt" and l.get("mail_from") == "alice@example.org")
    assert (d["rule_id"], d["dbl_score"], d["dbl_domains"]) == ("dbl", 1, "bad-helo.example"), d
    delivered(m, backend, "192.0.2.31", helo="error.example", sender="alice@example.org")
    d = wait_decision(m, lambda l: l["stage"] == "data" and l.get("client_ip") == "192.0.2.31")
    assert d["action"] == "accept" and d["dbl_score"] == 0, d
    # 127.0.1.255 (DBL: "IP queries prohibited") is outside the filter; 127.255.255.254 an error
    assert d["dbl_errors"] == "dbl.example 127.255.255.254", d


def test_rules_can_test_the_facts(moat_factory, dns_factory, backend, zone, tmp_path):
    listed(zone, "192.0.2.40", "wl.example", "127.0.0.2")
    listed(zone, "192.0.2.41", "bl.example", "127.0.0.2")
    rules = tmp_path / "r.rules"
    rules.write_text('accept dnsbl wl.example\n'
                     'tag dnsbl-score > 0 header "X-Score: %{dnsbl_score} %{dnsbl}"\n'
                     'include builtin:default\n')
    m = dmoat(moat_factory, dns_factory(zone), rules=str(rules))
    delivered(m, backend, "192.0.2.40")
    delivered(m, backend, "192.0.2.41")
    msgs = [x for x in backend.messages()]
    assert any(b"X-Score: 2 bl.example" in x.data for x in msgs), [x.data[:300] for x in msgs]


def test_moat_check_output(moat_factory, dns_factory, zone):
    listed(zone, "192.0.2.60", "zen.example", "127.0.0.2")
    listed(zone, "192.0.2.60", "wl.example", "127.0.0.2")
    listed(zone, "192.0.2.60", "bl.example", "127.0.0.255")
    listed(zone, "192.0.2.61", "zen.example", "127.0.0.2")
    zone["spammy.example.dbl.example"] = [("A", "127.0.1.2")]
    m = dmoat(moat_factory, dns_factory(zone), dnsbl_threshold="1", dbl_sites="dbl.example")

    def check(client, sender):
        return subprocess.run([m.bin, "check", "-c", m.conf_path, "--client", client, "--helo",
                               "mail.example.org", "--from", sender, "--rcpt", RCPT],
                              capture_output=True, text=True, timeout=60)
    r = check("192.0.2.60", "a@example.org")
    assert r.returncode == 0, r
    assert "dnsbl score -2, threshold 1: zen.example*3 wl.example*-5\n" in r.stdout, r.stdout
    assert "dbl score 0, threshold 1: not listed" in r.stdout, r.stdout
    r = check("192.0.2.60", "a@spammy.example")
    assert r.returncode == 1, r
    assert "dbl score 1, threshold 1: dbl.example*1 (spammy.example)" in r.stdout, r.stdout
    assert "REJECT: 554 5.7.1 Service unavailable; domain spammy.example blocked using dbl.example" in r.stdout
    r = check("192.0.2.61", "a@example.org")
    assert r.returncode == 1, r
    assert "dnsbl score 3, threshold 1: zen.example*3" in r.stdout, r.stdout
    assert "id dnsbl (DNSBL score 3 (zen.example))" in r.stdout, r.stdout
