"""local_recipients: unknown users of a local domain are refused by moat
itself (550 5.1.1), before the backend is ever contacted."""

from moatlib import SMTPClient, run_moat_t

SENDER = "alice@example.org"


def write_table(tmp_path, lines):
    p = tmp_path / "recipients"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def rcpt_code(moat, rcpt):
    with SMTPClient(moat.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        return c.cmd("RCPT TO:<%s>" % rcpt)


def test_known_unknown_plus_and_catch_all(moat_factory, backend, tmp_path):
    table = write_table(tmp_path, ["# staff", "Bob@Example.Test", "carol@example.test  # sales",
                                   "@other.example"])
    m = moat_factory(local_domains="example.test, other.example", local_recipients=table)
    assert rcpt_code(m, "bob@example.test").code == 250          # case-insensitive
    assert rcpt_code(m, "carol+news@example.test").code == 250   # user+tag
    assert rcpt_code(m, "anyone@other.example").code == 250      # catch-all
    r = rcpt_code(m, "mallory@example.test")
    assert (r.code, r.enhanced()[0]) == (550, "5.1.1"), r
    assert "User unknown" in r.text
    # Refused by moat, not by the backend: the only backend sessions are
    # the accepted transactions' (none for mallory).
    rcpts = [cmd for cmd in backend.commands() if cmd.upper().startswith("RCPT")]
    assert not any("mallory" in cmd for cmd in rcpts), rcpts
    d = m.wait_log(lambda l: l.get("event") == "decision" and l.get("rcpt") == "mallory@example.test")
    assert d["code"] == 550 and d["reason"] == "unknown recipient", d


def test_table_does_not_open_relay(moat_factory, backend, tmp_path):
    """An address listed for a foreign domain does not make it local."""
    table = write_table(tmp_path, ["someone@elsewhere.example"])
    m = moat_factory(local_domains="example.test", local_recipients=table)
    r = rcpt_code(m, "someone@elsewhere.example")
    assert (r.code, r.enhanced()[0]) == (554, "5.7.1"), r


def test_bad_table_line_is_reported(tmp_path):
    table = write_table(tmp_path, ["ok@example.test", "not an address"])
    conf = tmp_path / "moat.conf"
    conf.write_text("local_domains = example.test\nlocal_recipients = %s\n" % table)
    res = run_moat_t(str(conf))
    assert res.returncode != 0
    assert ("%s:2:" % table).encode() in res.stderr, res.stderr
