"""Early DATA (backend_early_data): moat sends DATA to the backend with the
client's end of data, while the data-stage checks run, and sends the message
after the 354 only if they pass. A refused message then costs the backend
connection (only closing it abandons a DATA), never a delivery; with
backend_early_data = no the DATA goes only after the checks, and the same
connection carries on."""

import os

import pytest

from checkslib import RCPT, base_zone, checks_moat, connect, simple_message, stored_message, wait_decision

DEFAULT_RULES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "rules", "default.rules")
RULE = 'reject header subject /casino/ "550 5.7.1 Spam subject"\n'


@pytest.fixture
def zdns(dns_factory):
    return dns_factory(base_zone())


def header_moat(moat_factory, zdns, tmp_path, **keys):
    path = tmp_path / "site.rules"
    path.write_text(RULE + 'include "%s"\n' % DEFAULT_RULES)
    return checks_moat(moat_factory, zdns, rules=str(path), **keys)


def backend_sessions_with(backend, verb):
    return sorted({sid for sid, cmd in backend.command_events() if cmd.split(" ", 1)[0].upper() == verb})


def refuse_then_deliver(m, backend):
    """One client session: a message the data rules refuse, then a clean one."""
    with connect(m) as c:
        c.ehlo()
        r = c.transaction("alice@example.org", [RCPT], simple_message("cheap casino"))
        assert r.code == 550 and "Spam subject" in r.text, r
        d = wait_decision(m, lambda l: l.get("event") == "decision" and l["stage"] == "data",
                          what="data decision")
        assert d["action"] == "reject", d
        ok = c.transaction("alice@example.org", [RCPT], simple_message("fine"))
        stored = stored_message(backend, ok)
        c.cmd("QUIT")
    assert b"Subject: fine" in stored.data
    assert [msg.n for msg in backend.messages()] == [stored.n], "the refused message was stored"
    return stored


def test_refused_message_abandons_the_early_data(moat_factory, zdns, backend, tmp_path):
    m = header_moat(moat_factory, zdns, tmp_path)
    stored = refuse_then_deliver(m, backend)
    # the backend was asked for DATA on the connection of the refused message
    # (before the verdict), got no message and no dot on it, and moat closed it
    [first, second] = backend_sessions_with(backend, "MAIL")
    assert backend_sessions_with(backend, "DATA") == [first, second]
    backend.wait_event(lambda e: e[0] == "CLOSE" and int(e[1]) == first, what="CLOSE of the first")
    ends = [int(e[1]) for e in backend.events.snapshot() if e[0] == "DATAEND"]
    assert ends == [second], "end of data seen on %r" % ends
    assert stored.session == second


def test_without_early_data_refused_message_never_sends_data(moat_factory, zdns, backend, tmp_path):
    m = header_moat(moat_factory, zdns, tmp_path, backend_early_data="no")
    stored = refuse_then_deliver(m, backend)
    # DATA only for the delivered message, and one backend connection for
    # both transactions (RSET in between)
    [only] = backend_sessions_with(backend, "MAIL")
    assert backend_sessions_with(backend, "DATA") == [only]
    assert "RSET" in [cmd.upper() for cmd in backend.commands(only)]
    assert stored.session == only
