"""proxy_protocol = yes: every connection starts with a PROXY v1 or v2 header;
moat then uses the address in it (logs, per-IP limit)."""

import ipaddress
import socket
import struct

import pytest

from moatlib import HOSTNAME, SMTPClient

SENDER = "alice@example.org"
RCPT = "bob@example.test"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst="127.0.0.1", sport=40000, dport=25):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src, dst="127.0.0.1", sport=40000, dport=25, command=0x1, tlvs=b""):
    if ":" in src:
        fam = 0x21  # AF_INET6, STREAM
        addrs = (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
                 + struct.pack("!HH", sport, dport))
    else:
        fam = 0x11  # AF_INET, STREAM
        addrs = (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
                 + struct.pack("!HH", sport, dport))
    if command == 0x0:
        fam, addrs = 0x00, b""
    body = addrs + tlvs
    return V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(body)) + body


@pytest.fixture
def pmoat(moat_factory):
    return moat_factory(proxy_protocol="yes")


def proxied(moat, header, **kw):
    c = SMTPClient(moat.port, read_banner=False, **kw)
    c.send(header)
    c.banner = c.reply()
    assert c.banner.code == 220, c.banner
    return c


def deliver(c, tag):
    c.ehlo()
    r = c.transaction(SENDER, [RCPT], b"Subject: %s\r\n\r\nx\r\n" % tag.encode())
    assert r.code == 250, r
    c.expect("QUIT", 221)
    c.close()


def client_ips(moat):
    return {l.get("client_ip") for l in moat.logs.snapshot() if "session" in l and "client_ip" in l}


@pytest.mark.parametrize("header,ip", [
    (v1("203.0.113.7"), "203.0.113.7"),
    (v1("2001:db8::7", dst="2001:db8::1"), "2001:db8::7"),
    (v2("198.51.100.9"), "198.51.100.9"),
    (v2("2001:db8::9", dst="2001:db8::1"), "2001:db8::9"),
    (v2("198.51.100.10", tlvs=b"\x04\x00\x03abc"), "198.51.100.10"),  # a TLV (NOOP type) is skipped
], ids=["v1-tcp4", "v1-tcp6", "v2-tcp4", "v2-tcp6", "v2-tlv"])
def test_real_client_ip_logged(pmoat, backend, header, ip):
    c = proxied(pmoat, header)
    deliver(c, ip)
    [end] = pmoat.wait_session_end(1)
    assert end["client_ip"] == ip, end
    decisions = [l for l in pmoat.decisions() if l.get("session") == end["session"]]
    assert decisions and all(l["client_ip"] == ip for l in decisions), decisions
    assert "127.0.0.1" not in client_ips(pmoat)
    [m] = backend.wait_stored(1)
    assert ip.encode() in m.data[:m.data.index(b"Subject:")], "Received: does not show %s" % ip


def test_v2_local_uses_socket_address(pmoat, backend):
    c = proxied(pmoat, v2("0.0.0.0", command=0x0))
    deliver(c, "local")
    [end] = pmoat.wait_session_end(1)
    assert end["client_ip"] == "127.0.0.1"


def test_v1_unknown_uses_socket_address(pmoat, backend):
    c = proxied(pmoat, b"PROXY UNKNOWN\r\n")
    deliver(c, "unknown")
    [end] = pmoat.wait_session_end(1)
    assert end["client_ip"] == "127.0.0.1"


def test_header_and_smtp_in_one_write(pmoat, backend):
    c = SMTPClient(pmoat.port, read_banner=False)
    c.send(v2("198.51.100.20") + b"EHLO c.example.org\r\n")
    assert c.reply().code == 220
    assert c.reply().code == 250
    deliver_rest = c.transaction(SENDER, [RCPT], b"Subject: one write\r\n\r\nx\r\n")
    assert deliver_rest.code == 250


def test_header_byte_by_byte(pmoat, backend):
    c = SMTPClient(pmoat.port, read_banner=False)
    for b in v2("198.51.100.21"):
        c.send(bytes([b]))
    assert c.reply().code == 220
    deliver(c, "bytewise")
    [end] = pmoat.wait_session_end(1)
    assert end["client_ip"] == "198.51.100.21"


@pytest.mark.parametrize("garbage", [
    b"EHLO client.example.org\r\n",
    b"PROXY TCP4 garbage\r\n",
    b"PROXY TCP4 203.0.113.7 127.0.0.1 99999 25\r\n",
    b"PROXY TCP4 203.0.113.7\r\n",
    V2_SIG + b"\x11\x11\x00\x0c" + b"\x00" * 12,          # version 1 in a v2 header
    V2_SIG + b"\x21\x31\x00\x6c" + b"\x00" * 108,         # AF_UNIX: refused
    V2_SIG + b"\x21\x11\x00\x04" + b"\x00" * 4,           # address block too short
    V2_SIG + b"\x21\x11\xff\xff" + b"\x00" * 100,        # length over MOAT_PROXY_HEADER_MAX
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,  # a TLS ClientHello
    b"PROXY TCP4 2001:db8::1 127.0.0.1 1000 25\r\n",      # family and address disagree
    b"PROXY TCP4 203.0.113.7 127.0.0.1 1000 25\n",         # LF only
    b"PROXY TCP4 " + b"1" * 200,                           # over 107 bytes, no CRLF
    b"PROXY TCP4 203.0.113.007 127.0.0.1 1000 25\r\n",     # leading zeros
], ids=["smtp", "v1-garbage", "v1-bad-port", "v1-short", "v2-version", "v2-unix", "v2-short",
        "v2-too-long", "tls", "v1-family", "v1-lf", "v1-too-long", "v1-octal"])
def test_bad_header_closes_without_banner(pmoat, backend, garbage):
    c = SMTPClient(pmoat.port, read_banner=False)
    c.send(garbage)
    # refused at once, not by the 10 s header timeout
    got = c.wait_closed(5)
    assert not got.startswith(b"220"), "moat sent a banner to a connection without a valid PROXY header: %r" % got
    c.close()
    # still serving
    c2 = proxied(pmoat, v1("203.0.113.8"))
    c2.close()
    assert backend.messages() == []


def test_missing_header_no_banner_before_it(pmoat):
    """moat must wait for the header and not speak first."""
    c = SMTPClient(pmoat.port, read_banner=False)
    c.send(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n")
    got = c.wait_closed(15)
    assert b"250" not in got and b"354" not in got, got


def test_per_ip_limit_uses_proxy_address(moat_factory, backend):
    m = moat_factory(proxy_protocol="yes", max_connections_per_ip=1, max_connections=100)
    a = proxied(m, v1("203.0.113.7"))
    b = SMTPClient(m.port, read_banner=False)
    b.send(v2("203.0.113.7"))
    r = b.reply()
    assert r.lines == ["421 4.7.0 %s Error: too many connections from your address" % HOSTNAME]
    assert b.cmd("QUIT").code == 221
    b.wait_closed(5)
    # other real addresses get in although every TCP connection comes from 127.0.0.1
    c = proxied(m, v1("198.51.100.9"))
    d = proxied(m, v2("2001:db8::5", dst="2001:db8::1"))
    deliver(c, "c")
    deliver(d, "d")
    a.close()


def test_per_ip_slot_freed_after_proxied_session(moat_factory, backend):
    m = moat_factory(proxy_protocol="yes", max_connections_per_ip=1, max_connections=100)
    for i in range(3):
        # each try is a real exchange; moat may still be tearing the last session down
        for _ in range(50):
            c = SMTPClient(m.port, read_banner=False)
            c.send(v1("203.0.113.50"))
            r = c.reply()
            if r.code == 220:
                break
            assert r.code == 421, r
            c.close()
        assert r.code == 220, "per-IP slot of 203.0.113.50 never freed"
        deliver(c, "round%d" % i)
    backend.wait_stored(3)


def test_no_header_at_all_times_out(pmoat):
    """A client that sends nothing is closed (MOAT_PROXY_TIMEOUT, 10 s) without a banner."""
    c = SMTPClient(pmoat.port, read_banner=False)
    got = c.wait_closed(20)
    assert got == b"", got
