"""AUTH through moat to a real Postfix whose smtpd authenticates with a real
Dovecot (issue 14, items 3 and 6): a private Postfix (pf_helpers.PfPostfix)
with smtpd_sasl_type = dovecot, and a private Dovecot that only does SASL
(pf_helpers.PfDovecot: passwd-file users, its auth socket in that Postfix's
queue). Postfix's mynetworks leaves out moat's address, so only a session
that authenticated relays through it (permit_sasl_authenticated).

Postfix here has no TLS; smtpd_tls_auth_only = no lets it take AUTH from
moat in plaintext on loopback (with backend_tls, moat would speak TLS to it
and Postfix could require it).

The clients are swaks (--tls-on-connect to smtps_listen, --tls to
submission_listen, --auth PLAIN and LOGIN) and raw sockets."""

import base64
import re
import subprocess

import pytest

from pf_helpers import PF_DOMAIN, PfStack, pf_sasl_main_cf
from tlscerts import self_signed

USER, PASSWORD = "alice", "Dove-Secret-42"
RCPT = "bob@" + PF_DOMAIN
REMOTE = "carol@elsewhere.example"
SENDER = "alice@" + PF_DOMAIN


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("authpf")
    crt, key = self_signed(tmp, "ec", "ec")
    # remote mail is taken and dropped on the machine (discard), so that relaying can be seen
    cf = pf_sasl_main_cf({"default_transport": "discard:relayed by the moat e2e instance, dropped",
                          "relay_transport": "discard:relayed by the moat e2e instance, dropped"})
    st = PfStack(tmp, users=("bob", "alice"), main_cf=cf, sasl_users={USER: PASSWORD},
                 moat_keys={"smtps_listen": "127.0.0.1:0", "submission_listen": "127.0.0.1:0",
                            "tls_cert": crt, "tls_key": key, "backend_cache_time": 30})
    yield st
    st.stop()


def swaks(stack, kind, *args):
    port = stack.moat.ports[kind]
    how = {"smtps": ["--tls-on-connect"], "submission": ["--tls"], "smtp": []}[kind]
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--helo", "client.example.org",
                        "--from", SENDER] + how + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60)
    return r


def queue_id(swaks_out):
    m = re.search(r"<[~-] +250 2\.0\.0 Ok: queued as (\w+)", swaks_out)
    assert m, swaks_out
    return m.group(1)


def test_plain_on_smtps_delivers(stack):
    start = stack.pf.maillog_size()
    r = swaks(stack, "smtps", "--to", RCPT, "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
              "--header", "Subject: plain over smtps")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0 Authentication successful" in r.stdout
    qid = queue_id(r.stdout)
    line = stack.pf.wait_for_log("%s: client=" % qid, start=start)
    assert "sasl_method=PLAIN, sasl_username=alice" in line, line
    msg = stack.pf.wait_for_mail("bob", b"plain over smtps")
    assert b"by mx.test.example (moat) with ESMTPSA (TLSv1.3 cipher " in msg, msg[:800]
    d = stack.moat.wait_log(lambda l: l.get("event") == "decision" and l.get("queue_id") == qid)
    assert d["auth_user"] == USER and d["listener"] == "smtps", d


def test_login_on_submission_delivers(stack):
    start = stack.pf.maillog_size()
    r = swaks(stack, "submission", "--to", RCPT, "--auth", "LOGIN", "--auth-user", USER,
              "--auth-password", PASSWORD, "--header", "Subject: login over submission")
    assert r.returncode == 0, r.stdout + r.stderr
    qid = queue_id(r.stdout)
    assert "sasl_method=LOGIN, sasl_username=alice" in stack.pf.wait_for_log("%s: client=" % qid, start=start)
    stack.pf.wait_for_mail("bob", b"login over submission")


@pytest.mark.parametrize("mech,kind", [("PLAIN", "smtps"), ("LOGIN", "submission")])
def test_wrong_password_postfix_says_535(stack, mech, kind):
    r = swaks(stack, kind, "--to", RCPT, "--auth", mech, "--auth-user", USER, "--auth-password", "not-it",
              "--quit-after", "AUTH")
    assert r.returncode != 0
    # Postfix's own reply, verbatim through moat
    assert re.search(r"<~\* 535 5\.7\.8 Error: authentication failed: \S", r.stdout), r.stdout
    line = stack.moat.wait_log(lambda l: l.get("event") == "auth" and l.get("result") == "failure" and
                               l.get("mechanism") == mech)
    assert line["code"] == 535 and line["esc"] == "5.7.8" and line["auth_user"] == USER


def test_authenticated_relays_through_postfix(stack):
    """An authenticated session relays to another domain: moat lets it, and so
    does Postfix (permit_sasl_authenticated: the connection that authenticated
    carries the mail). Unauthenticated, moat refuses it at port 25."""
    start = stack.pf.maillog_size()
    r = swaks(stack, "smtps", "--to", REMOTE, "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    qid = queue_id(r.stdout)
    assert "sasl_username=alice" in stack.pf.wait_for_log("%s: client=" % qid, start=start)
    stack.pf.wait_for_log(re.compile(r"%s: to=<%s>.*relay=none.*status=sent \(relayed by the moat" %
                                     (qid, re.escape(REMOTE))), start=start)
    r = swaks(stack, "smtp", "--to", REMOTE, "--quit-after", "RCPT")
    assert "554 5.7.1 <%s>: Relay access denied" % REMOTE in r.stdout, r.stdout


def test_authenticated_connection_not_pooled(stack):
    """backend_cache_time = 30: a plain session after an authenticated one gets
    a connection of its own, never the authenticated one (two smtpd sessions
    in Postfix's log; the second without sasl_username)."""
    start = stack.pf.maillog_size()
    r1 = swaks(stack, "smtps", "--to", RCPT, "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
               "--header", "Subject: first, authenticated")
    assert r1.returncode == 0, r1.stdout + r1.stderr
    r2 = swaks(stack, "smtp", "--to", RCPT, "--header", "Subject: second, plain")
    assert r2.returncode == 0, r2.stdout + r2.stderr
    q1, q2 = queue_id(r1.stdout), queue_id(r2.stdout)
    l1 = stack.pf.wait_for_log("%s: client=" % q1, start=start)
    l2 = stack.pf.wait_for_log("%s: client=" % q2, start=start)
    # a message over the authenticated connection would be logged with its sasl_username
    assert "sasl_username=alice" in l1 and "sasl" not in l2, (l1, l2)
    # two smtpd sessions: the authenticated one ended with its moat session, before the next
    stack.pf.wait_for_log(re.compile(r"disconnect from .* auth=1 .*quit=1"), start=start)
    log = stack.pf.maillog_since(start)
    assert len(re.findall(r"smtpd\[\d+\]: connect from ", log)) == 2, log


def test_no_credential_in_moat_log(stack):
    """After all of the above: not the password, not its base64 in any form the
    exchanges carried, in any line of moat's log."""
    log = b"".join(stack.moat.raw_lines)
    assert b"auth_user" in log
    for secret in (PASSWORD, "not-it"):
        for form in (secret, base64.b64encode(secret.encode()).decode(),
                     base64.b64encode(("\0%s\0%s" % (USER, secret)).encode()).decode()):
            assert form.encode() not in log, "%r in moat's log" % form


# ------------------------------------------------------- with XCLIENT

@pytest.fixture(scope="module")
def xstack(tmp_path_factory):
    """The same, and Postfix takes XCLIENT from moat (smtpd_authorized_xclient_hosts)."""
    tmp = tmp_path_factory.mktemp("authpfx")
    crt, key = self_signed(tmp, "ec", "ec")
    cf = pf_sasl_main_cf({"default_transport": "discard:relayed by the moat e2e instance, dropped",
                          "relay_transport": "discard:relayed by the moat e2e instance, dropped",
                          "smtpd_authorized_xclient_hosts": "127.0.0.1"})
    st = PfStack(tmp, users=("bob", "alice"), main_cf=cf, sasl_users={USER: PASSWORD},
                 moat_keys={"smtps_listen": "127.0.0.1:0", "tls_cert": crt, "tls_key": key})
    yield st
    st.stop()


def test_xclient_login_keeps_the_session_authenticated(xstack):
    """On the connection that authenticated, moat's XCLIENT carries LOGIN: Postfix
    logs the real client (127.0.0.2) with the user, and still lets it relay."""
    start = xstack.pf.maillog_size()
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(xstack.moat.ports["smtps"]),
                        "--local-interface", "127.0.0.2", "--tls-on-connect", "--helo", "client.example.org",
                        "--from", SENDER, "--to", REMOTE, "--auth", "PLAIN", "--auth-user", USER,
                        "--auth-password", PASSWORD], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    qid = queue_id(r.stdout)
    line = xstack.pf.wait_for_log("%s: client=" % qid, start=start)
    assert "[127.0.0.2]" in line and "sasl_username=alice" in line, line
    xstack.pf.wait_for_log(re.compile(r"%s: to=<%s>.*status=sent" % (qid, re.escape(REMOTE))), start=start)
