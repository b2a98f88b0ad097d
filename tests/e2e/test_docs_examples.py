"""The rule examples of the docs are rules moat takes and do what the text
around them says (issue 13, item 8: the README exempted a partner by sender
domain and SPF softfail while moat.rules(5) says never to exempt by sender
domain alone; moat.rules(5) showed a policy that was no longer the default).

Every rule example in README.md and moat.rules(5) is read out of the file
as a user would copy it (roff escapes undone, /etc/moat/ paths pointed at a
temporary directory holding the lists it names) and given to moat -t; the
README's site file then runs in front of a backend with clients from a
partner network, from elsewhere and from a blocked network (PROXY headers);
moat.rules(5)'s "THE DEFAULT POLICY" must be rules/default.rules."""

import os
import re
import resource
import shutil
import signal
import subprocess

import pytest

from checkslib import RCPT, base_zone, checks_moat, connect, proxy_v1, simple_message, stored_message
from moatlib import MOAT_BIN, SMTPClient, free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(REPO, "README.md")
RULES_MAN = os.path.join(REPO, "docs", "moat.rules.5")
DEFAULT_RULES = os.path.join(REPO, "rules", "default.rules")
ACTIONS = ("accept", "reject", "tempfail", "tag", "log", "include")

PARTNER_NET_CLIENT = "198.51.100.7"     # the README's partner network, 198.51.100.0/24
OUTSIDER = "203.0.113.9"
BLOCKED = "192.0.2.66"                   # put on the blocked-nets list below


def is_rules(lines):
    """A block of rules: every line that is not a continuation starts with an action."""
    heads = [l for l in lines if l.strip() and not l.startswith((" ", "\t"))]
    return bool(heads) and all(l.split()[0] in ACTIONS for l in heads)


def readme_examples():
    text = open(README, encoding="utf-8").read()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)
    return [b for b in blocks if is_rules(b.splitlines())]


def unroff(line):
    return line.replace("\\-", "-").replace("\\e", "\\").replace("\\(dq", '"')


def man_examples():
    """The .nf ... .fi blocks of moat.rules(5) that are rules, by the section they are in."""
    out, section, block = [], "", None
    for raw in open(RULES_MAN, encoding="utf-8").read().splitlines():
        if raw.startswith((".SH", ".SS")):
            section = raw.split(None, 1)[1].strip('"') if " " in raw else ""
        if raw.startswith(".nf"):
            block = []
        elif raw.startswith(".fi"):
            if block is not None and is_rules(block):
                out.append((section, "\n".join(block) + "\n"))
            block = None
        elif block is not None and not raw.startswith("."):
            block.append(unroff(raw))
    return out


def site_dir(tmp_path, text):
    """The example with /etc/moat/ moved to tmp_path, and the files it names there."""
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    for name in set(re.findall(r"/etc/moat/([\w.-]+)", text)):
        p = etc / name
        if name.endswith(".rules"):
            p.write_text(open(DEFAULT_RULES).read())
        elif name == "blocked-nets":
            p.write_text("# networks we refuse\n%s\n" % BLOCKED)
        else:
            p.write_text("# empty\n")
    path = tmp_path / "site.rules"
    path.write_text(text.replace("/etc/moat/", str(etc) + "/"))
    return str(path)


def test_docs_have_rule_examples():
    """The extraction finds what it is meant to check (a renamed heading would hide them)."""
    assert len(readme_examples()) >= 1
    sections = [s for s, _ in man_examples()]
    assert "THE DEFAULT POLICY" in sections and len(sections) >= 6, sections


EXAMPLES = ([("README.md", t) for t in readme_examples()]
            + [("moat.rules(5) " + s, t) for s, t in man_examples()])


@pytest.mark.parametrize("where,text", EXAMPLES,
                         ids=["%d-%s" % (i, w.split()[-1]) for i, (w, _) in enumerate(EXAMPLES)])
def test_rule_example_loads(tmp_path, where, text):
    rules = site_dir(tmp_path, text)
    conf = tmp_path / "moat.conf"
    conf.write_text("listen = 127.0.0.1:0\nbackend = 127.0.0.1:25\nhostname = mx.test.example\n"
                    "local_domains = example.test\nrun_as_root = yes\nspool_dir = %s\nrules = %s\n"
                    % (tmp_path, rules))
    r = subprocess.run([MOAT_BIN, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "%s: %s\n%s" % (where, r.stderr, text)


def strip_rule(line):
    """A rule of default.rules as moat.rules(5) shows it: without its note and id."""
    line = re.sub(r'\s+note\s+"[^"]*"', "", line)
    line = re.sub(r"\s+id\s+[\w.-]+", "", line)
    return " ".join(line.split())


def logical_rules(text):
    rules, cur = [], ""
    for line in text.splitlines():
        line = line.split("#", 1)[0] if not line.lstrip().startswith('"') else line
        if not line.strip():
            continue
        cur += " " + line.strip().rstrip("\\")
        if not line.rstrip().endswith("\\"):
            rules.append(strip_rule(cur))
            cur = ""
    return rules


def test_man_default_policy_is_default_rules():
    shown = [t for s, t in man_examples() if s == "THE DEFAULT POLICY"][0]
    assert logical_rules(shown) == logical_rules(open(DEFAULT_RULES).read())


def zone():
    z = base_zone()
    z.update({
        # the partner's SPF lists its own servers, softly, not the relays it also sends through
        "partner.example": [("A", "192.0.2.41"), ("TXT", "v=spf1 ip4:192.0.2.0/24 ~all")],
        "hard.example": [("A", "192.0.2.40"), ("TXT", "v=spf1 ip4:192.0.2.0/24 -all")],
    })
    return z


@pytest.fixture
def readme_moat(moat_factory, dns_factory, tmp_path):
    [text] = [t for t in readme_examples() if "include" in t]
    rules = site_dir(tmp_path, text)
    return checks_moat(moat_factory, dns_factory(zone()), rules=rules, proxy_protocol="yes",
                       delay_reject="yes")


def attempt(m, client, sender, message=None):
    """MAIL and RCPT from client; the RCPT's reply, and the delivery's if it passed."""
    c = connect(m, proxy_v1(client))
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % sender, 250)
    r = c.cmd("RCPT TO:<%s>" % RCPT)
    done = c.data(message or simple_message(sender)) if r.code == 250 else None
    c.cmd("QUIT")
    c.close()
    return r, done


TAG = b"X-Moat-Suspect: spf-softfail"


def test_readme_exempts_the_partner_by_network(readme_moat, backend):
    """From the partner's relays: no SPF refusal, no softfail tag."""
    r, done = attempt(readme_moat, PARTNER_NET_CLIENT, "news@hard.example")
    assert r.code == 250 and done.code == 250, (r, done)
    r, done = attempt(readme_moat, PARTNER_NET_CLIENT, "news@partner.example")
    assert r.code == 250 and done.code == 250, (r, done)
    assert TAG not in stored_message(backend, done).data


def test_readme_does_not_exempt_by_sender_domain(readme_moat, backend):
    """Anyone may write the partner's domain: from elsewhere its softfail is tagged
    (the README's old "accept sender-domain partner.example and spf softfail" waved
    it through), and an SPF fail is refused."""
    r, done = attempt(readme_moat, OUTSIDER, "news@partner.example")
    assert r.code == 250 and done.code == 250, (r, done)
    assert TAG in stored_message(backend, done).data
    r, _ = attempt(readme_moat, OUTSIDER, "news@hard.example")
    assert r.code == 550 and r.enhanced()[0] == "5.7.23", r


def test_readme_blocks_the_listed_network(readme_moat, backend):
    r, _ = attempt(readme_moat, BLOCKED, "news@example.org")
    assert r.lines == ["554 5.7.1 Your network is blocked"], r


# --- docs/deploying.md (issue 15, item 7) -----------------------------------------------------
# Its moat.conf blocks pass moat -t; its Postfix blocks are postfix.md's (which
# test_postfix_guide.py runs); its Exim blocks run in test_exim_backend.py; its haproxy.cfg
# passes haproxy -c and runs in front of moat; its moat report commands run.

DEPLOYING = os.path.join(REPO, "docs", "deploying.md")
POSTFIX_GUIDE = os.path.join(REPO, "docs", "postfix.md")


def md_blocks(path):
    return re.findall(r"^```[a-z]*\n(.*?)^```", open(path, encoding="utf-8").read(), re.S | re.M)


def deploying_block(first_line):
    [block] = [b for b in md_blocks(DEPLOYING) if b.startswith(first_line)]
    return block


def deploying_moat_confs():
    return [b for b in md_blocks(DEPLOYING) if b.startswith("# moat.conf")]


def test_deploying_has_its_blocks():
    """The extraction finds what it is meant to check (a renamed heading would hide them)."""
    firsts = [b.splitlines()[0] for b in deploying_moat_confs()]
    for want in ("in front of Postfix", "in front of Exim", "TLS to Exim", "behind HAProxy", "first week"):
        assert [f for f in firsts if want in f], (want, firsts)


@pytest.fixture
def tls_files(tmp_path):
    from tlscerts import TestCA, self_signed
    ca = TestCA(tmp_path / "ca")
    crt, key = self_signed(tmp_path, "moat")
    return {"/etc/moat/backend-ca.pem": ca.cert, "/etc/moat/tls/fullchain.pem": crt, "/etc/moat/tls/privkey.pem": key}


@pytest.mark.parametrize("text", deploying_moat_confs(), ids=lambda t: t.splitlines()[0][2:].replace(" ", "-"))
def test_deploying_moat_conf_passes_moat_t(tmp_path, tls_files, text):
    """As a user copies it, with the files it names made and the log in tmp_path; moat -t only
    reads (it binds nothing, and a backend it cannot reach is a warning)."""
    for path, real in tls_files.items():
        text = text.replace(path, real)
    text = text.replace("/var/log/moat/", str(tmp_path) + "/").replace("/var/lib/moat/", str(tmp_path) + "/")
    if "hostname" not in text:
        text += "hostname = mx.example.com\n"
    conf = tmp_path / "moat.conf"
    conf.write_text(text + "run_as_root = yes\nspool_dir = %s\n" % tmp_path)
    r = subprocess.run([MOAT_BIN, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "configuration OK" in r.stdout, "%s%s\n%s" % (r.stdout, r.stderr, text)


def test_deploying_postfix_blocks_are_postfix_md_s():
    """The master.cf and main.cf blocks of deploying.md are postfix.md's, which
    test_postfix_guide.py gives a real Postfix."""
    ours = [b for b in md_blocks(DEPLOYING) if "smtpd" in b and "moat.conf" not in b]
    theirs = md_blocks(POSTFIX_GUIDE)
    assert len(ours) == 2 and all(b in theirs for b in ours), ours
    conf = deploying_block("# moat.conf in front of Postfix")
    assert conf.split("\n", 1)[1] in theirs, conf


HAPROXY_CFG = "# /etc/haproxy/haproxy.cfg"


def haproxy():
    path = shutil.which("haproxy")
    if not path:
        pytest.skip("haproxy is not installed")
    return path


def test_deploying_haproxy_cfg_is_valid(tmp_path):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(deploying_block(HAPROXY_CFG))
    r = subprocess.run([haproxy(), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_deploying_haproxy_in_front_of_moat(moat_factory, backend, tmp_path):
    """The guide's haproxy.cfg and moat.conf's proxy_protocol, the addresses made loopback ones
    and the checks every 200 ms: HAProxy's health check (the PROXY header, then moat's banner and
    EHLO) finds moat up, and a client's message goes through with the client's address, not
    HAProxy's, in moat's log and Received field."""
    keys = dict(l.split(" = ", 1) for l in deploying_block("# moat.conf behind HAProxy").splitlines()[1:])
    assert keys["proxy_protocol"].strip() == "yes", keys
    m = moat_factory(proxy_protocol="yes")
    front = free_port()
    text = deploying_block(HAPROXY_CFG)
    text = text.replace("bind :25", "bind 127.0.0.1:%d" % front).replace("inter 10s", "inter 200ms")
    text = re.sub(r"192\.0\.2\.1[12]:25", "127.0.0.1:%d" % m.port, text)
    # HAProxy wants two descriptors per connection and refuses to start without them: on a
    # machine whose hard limit is lower than the guide's maxconn needs, a maxconn that fits
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    maxconn = int(re.search(r"maxconn (\d+)", text).group(1))
    if hard != resource.RLIM_INFINITY and hard < 2 * maxconn + 100:
        text = text.replace("maxconn %d" % maxconn, "maxconn %d" % ((hard - 100) // 2))
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    hp = subprocess.Popen([haproxy(), "-db", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        check = m.wait_log(lambda l: l.get("event") == "session_end" and l.get("helo") == "lb.example.com",
                           what="a health check's session")
        assert check["client_ip"] == "127.0.0.1", check
        with SMTPClient(front, source="127.0.0.2") as c:
            assert c.banner.code == 220, c.banner
            c.ehlo()
            r = c.transaction("alice@example.org", [RCPT], simple_message("through haproxy"))
            assert r.code == 250, r
            c.expect("QUIT", 221)
        end = m.wait_log(lambda l: l.get("event") == "session_end" and l.get("client_ip") == "127.0.0.2")
        assert end["client_ip"] == "127.0.0.2", end
        [msg] = backend.wait_stored(1)
        assert b"[127.0.0.2]" in msg.data.split(b"Subject:")[0], msg.data[:600]
    finally:
        hp.send_signal(signal.SIGTERM)
        try:
            hp.wait(10)
        except subprocess.TimeoutExpired:
            hp.kill()
            hp.wait()


def test_deploying_moat_report_commands_run(tmp_path):
    """Each `moat report` line of the guide, its log files a generated day of moat's log:
    exit 0 (something matched) or 1 (nothing did), never a usage error."""
    import reportlog
    log = tmp_path / "moat.log"
    with open(log, "wb") as f:
        reportlog.generate(f, sessions=2000)
    cmds = [l for b in md_blocks(DEPLOYING) for l in b.splitlines() if l.startswith("moat report")]
    assert len(cmds) >= 3, cmds
    for cmd in cmds:
        args = [a for a in cmd.split()[2:] if not a.startswith("/var/log/moat/")]
        r = subprocess.run([MOAT_BIN, "report", *args, str(log)], capture_output=True, text=True, timeout=60)
        assert r.returncode in (0, 1) and not r.stderr.strip(), (cmd, r.returncode, r.stderr)
