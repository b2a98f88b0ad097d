"""Who may send where: local_domains, trusted_networks and relay tricks."""

import pytest

from moatlib import SMTPClient

SENDER = "alice@example.org"


def rcpt_reply(moat, rcpt):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        return c.cmd("RCPT TO:<%s>" % rcpt)


def test_local_domain_is_case_insensitive(moat, backend):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, ["Bob@EXAMPLE.Test"], b"Subject: case\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == ["Bob@EXAMPLE.Test"], "the address must reach the backend as sent"


def test_subdomain_entry(moat_factory, backend):
    m = moat_factory(local_domains="example.test, .sub.example")
    assert rcpt_reply(m, "a@x.sub.example").code == 250
    assert rcpt_reply(m, "a@deep.x.sub.example").code == 250
    assert 500 <= rcpt_reply(m, "a@notsub.example").code < 600


def test_several_local_domains(moat_factory, backend):
    m = moat_factory(local_domains="example.test, other.example")
    assert rcpt_reply(m, "a@other.example").code == 250
    assert rcpt_reply(m, "a@example.test").code == 250
    assert 500 <= rcpt_reply(m, "a@third.example").code < 600


def test_postmaster_without_domain(moat, backend):
    """RFC 5321 4.5.1: <Postmaster> must be accepted."""
    with SMTPClient(moat.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, ["Postmaster"], b"Subject: pm\r\n\r\nx\r\n").code == 250
    [m] = backend.wait_stored(1)
    assert m.rcpts == ["Postmaster"]


@pytest.mark.parametrize("rcpt", [
    "victim%elsewhere.example@example.test",
    "elsewhere.example!victim@example.test",
    "@example.test:victim@elsewhere.example",
    "@hop.example,@example.test:victim@elsewhere.example",
    '"victim@elsewhere.example"@example.test',
    "victim@elsewhere.example",
    "victim@[192.0.2.1]",
    "victim@elsewhere.example.",   # the root's dot: still not ours
])
def test_relay_tricks_refused(moat, backend, rcpt):
    r = rcpt_reply(moat, rcpt)
    assert 500 <= r.code < 600, "%s -> %r" % (rcpt, r)
    moat.wait_session_end(1)
    assert not [x for x in backend.commands() if x.upper().startswith("RCPT")], backend.commands()


def test_trusted_network_may_relay(moat_factory, backend):
    m = moat_factory(trusted_networks="127.0.0.0/8")
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction(SENDER, ["someone@elsewhere.example"], b"Subject: out\r\n\r\nx\r\n").code == 250
    [msg] = backend.wait_stored(1)
    assert msg.rcpts == ["someone@elsewhere.example"]


def test_untrusted_network_may_not_relay(moat_factory, backend):
    m = moat_factory(trusted_networks="10.0.0.0/8, 2001:db8::/32")
    r = rcpt_reply(m, "someone@elsewhere.example")
    assert r.code == 554 and r.enhanced() == ["5.7.1"], r
