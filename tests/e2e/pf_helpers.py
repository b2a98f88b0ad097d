"""pf_helpers - a private Postfix instance, a loopback DNS server and a moat process, for
test_postfix_backend.py (Debian's real Postfix smtpd as moat's backend); PfStack, the three
together for the suites that share them (test_smuggling_suite.py, test_console.py).

Nothing here touches the system's own Postfix: the instance has its own config_directory,
queue_directory, data_directory and mailboxes in one temp dir, listens on a free high port on
127.0.0.1 only, runs no chroot, and sends nothing off the machine (no DNS, default_transport =
error). It is started with `postfix -c DIR start` and stopped with `postfix -c DIR stop`.
Every wait below is a bounded poll against a deadline, never a fixed sleep.
"""

import json
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

PF_POSTFIX = "/usr/sbin/postfix"
PF_DOMAIN = "example.test"          # the domain Postfix delivers (virtual mailbox domain)
PF_SENDER_DOMAIN = "sender.test"    # the sender's domain, published by PfDns
PF_HELO = "mail.sender.test"


def pf_free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pf_wait_tcp(port, deadline, alive=lambda: True):
    """Poll until 127.0.0.1:port accepts a connection; False at the deadline."""
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# --- DNS -------------------------------------------------------------------------------------

def pf_default_zone():
    """Records that make mail from alice@sender.test via 127.0.0.1 pass SPF/DMARC/FCrDNS."""
    return [
        (PF_SENDER_DOMAIN, "MX", (10, PF_HELO)),
        (PF_SENDER_DOMAIN, "A", "127.0.0.1"),
        (PF_SENDER_DOMAIN, "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
        (PF_HELO, "A", "127.0.0.1"),
        (PF_HELO, "TXT", "v=spf1 a -all"),
        ("_dmarc." + PF_SENDER_DOMAIN, "TXT", "v=DMARC1; p=reject"),
        ("1.0.0.127.in-addr.arpa", "PTR", PF_HELO),
        (PF_DOMAIN, "MX", (10, "pf." + PF_DOMAIN)),
        ("pf." + PF_DOMAIN, "A", "127.0.0.1"),
    ]


class PfDns:
    """An authoritative-style DNS server on 127.0.0.1 (UDP and TCP, one port), in threads.
    Names outside the zone get NXDOMAIN at once, so moat never waits on a timeout and never
    asks the machine's resolver."""

    def __init__(self, zone=None):
        from dnslib import A, MX, PTR, QTYPE, RCODE, RR, TXT
        from dnslib.server import DNSLogger, DNSServer

        self.records, self.names, self.queries = {}, set(), []
        for name, rtype, value in zone or pf_default_zone():
            if rtype == "A":
                rdata = A(value)
            elif rtype == "MX":
                rdata = MX(value[1], value[0])
            elif rtype == "PTR":
                rdata = PTR(value)
            elif rtype == "TXT":
                rdata = TXT([value[i:i + 255] for i in range(0, len(value), 255)])
            else:
                raise ValueError(rtype)
            qt = getattr(QTYPE, rtype)
            self.records.setdefault((name, qt), []).append(RR(name, qt, rdata=rdata, ttl=300))
            labels = name.split(".")
            self.names.update(".".join(labels[i:]) for i in range(len(labels)))
        outer = self

        class Resolver:
            def resolve(self, request, handler):
                name = str(request.q.qname).lower().rstrip(".")
                outer.queries.append((name, QTYPE[request.q.qtype]))
                reply = request.reply()
                rrs = outer.records.get((name, request.q.qtype))
                if rrs:
                    for rr in rrs:
                        reply.add_answer(rr)
                elif name not in outer.names:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply

        quiet = DNSLogger("-request,-reply,-truncated,-error")
        for _ in range(50):
            self.udp = DNSServer(Resolver(), port=0, address="127.0.0.1", logger=quiet)
            self.port = self.udp.server.server_address[1]
            try:
                self.tcp = DNSServer(Resolver(), port=self.port, address="127.0.0.1", tcp=True,
                                     logger=quiet)
                break
            except OSError:
                self.udp.server.server_close()
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        self.udp.start_thread()
        self.tcp.start_thread()

    def stop(self):
        for srv in (self.udp, self.tcp):
            srv.stop()
            srv.server.server_close()


# --- Postfix ---------------------------------------------------------------------------------

# Only the services this test needs; every one with chroot = n (column 5), so nothing has to be
# copied into a chroot jail. postlog lets maillog_file work without a syslog daemon.
PF_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
tlsmgr     unix  - - n 1000? 1 tlsmgr
"""


class PfPostfix:
    """A private Postfix instance whose smtpd delivers PF_DOMAIN into Maildirs.

    Delivery is by the virtual(8) agent: virtual_mailbox_domains = example.test and
    virtual_mailbox_maps lists the mailboxes ("user@example.test" -> "example.test/user/",
    the trailing slash meaning Maildir), owned by the static uid/gid of "nobody".
    mydestination stays empty: Postfix refuses a domain listed both there and in
    virtual_mailbox_domains, and local(8) would need real Unix accounts. Unknown recipients
    are refused by smtpd itself (smtpd_reject_unlisted_recipient, default yes) with
    "550 5.1.1 <x@example.test>: Recipient address rejected: User unknown in virtual
    mailbox table".
    """

    def __init__(self, users=("bob",), main_cf=None, domain=PF_DOMAIN):
        self.users = list(users)
        self.main_cf_extra = dict(main_cf or {})   # extra/overriding main.cf parameters
        self.domain = domain                       # the virtual mailbox domain
        self.port = None
        self.dir = None

    # paths
    @property
    def etc(self):
        return os.path.join(self.dir, "etc")

    @property
    def maillog_path(self):
        return os.path.join(self.dir, "maillog")

    def maildir(self, user):
        return os.path.join(self.dir, "mail", self.domain, user)

    def _run(self, *args, check=True):
        r = subprocess.run([PF_POSTFIX, "-c", self.etc, *args], capture_output=True, text=True,
                           timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("postfix %s failed (%d): %s%s\n%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr, self.maillog_tail()))
        return r

    def start(self):
        # Not pytest's tmp_path: its parents are mode 0700, and the delivery agent runs as
        # "nobody", which must reach the mailbox directory. Short paths also keep the
        # UNIX-domain sockets under queue_directory/private within the 108-byte limit.
        self.dir = tempfile.mkdtemp(prefix="moat-pf-", dir="/tmp")
        try:
            self._configure_and_start()
        except BaseException:
            self.stop()   # a half-started instance must not outlive the test (PF_KEEP keeps the dir)
            raise
        return self

    def _configure_and_start(self):
        os.chmod(self.dir, 0o755)
        for sub in ("etc", "spool", "data", "mail"):
            os.mkdir(os.path.join(self.dir, sub), 0o755)
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(os.path.join(self.dir, "data"), pf.pw_uid, pf.pw_gid)  # master.lock lives here
        os.chown(os.path.join(self.dir, "mail"), nobody.pw_uid, nobody.pw_gid)
        self.port = pf_free_port()
        boxes = ", ".join("%s@%s=%s/%s/" % (u, self.domain, self.domain, u) for u in self.users)
        main_cf = {
            "compatibility_level": "3.6",
            "queue_directory": os.path.join(self.dir, "spool"),
            "data_directory": os.path.join(self.dir, "data"),
            "meta_directory": "/etc/postfix",          # postfix-files, dynamicmaps.cf
            "myhostname": "pf." + self.domain,
            "mydomain": self.domain,
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": os.path.join(self.dir, "mail"),
            "virtual_mailbox_maps": "inline:{ %s }" % boxes,
            "virtual_uid_maps": "static:%d" % nobody.pw_uid,
            "virtual_gid_maps": "static:%d" % nobody.pw_gid,
            "maillog_file": self.maillog_path,
            "maillog_file_prefixes": self.dir,
            # Nothing leaves the machine: no DNS, no outbound SMTP (a bounce fails at once).
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "default_transport": "error:no outbound mail from the moat e2e instance",
            "relay_transport": "error:no outbound mail from the moat e2e instance",
            "notify_classes": "",
            "biff": "no",
            "smtpd_banner": "$myhostname ESMTP Postfix (moat e2e)",
        }
        main_cf.update(self.main_cf_extra)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("".join("%s = %s\n" % kv for kv in main_cf.items()))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(PF_MASTER_CF.format(port=self.port))
        self._run("check")
        self._run("start")
        if not pf_wait_tcp(self.port, time.monotonic() + 20):
            raise RuntimeError("postfix smtpd not accepting on 127.0.0.1:%d\n%s"
                               % (self.port, self.maillog_tail()))

    def master_pid(self):
        try:
            with open(os.path.join(self.dir, "spool", "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, keep=False):
        if not self.dir:
            return
        if self.master_pid():
            self._run("stop", check=False)   # waits for the master to terminate
        pid = self.master_pid()
        if pid:                           # stop did not finish: end only this instance's master
            os.kill(pid, signal.SIGKILL)
        if not keep and not os.environ.get("PF_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def maillog_tail(self, n=30):
        try:
            with open(self.maillog_path, errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return "(no maillog)"
        return "--- postfix maillog (last %d lines):\n%s" % (n, "".join(lines[-n:]))

    def wait_for_mail(self, user, needle, timeout=30.0):
        """Bytes of the first message in user's Maildir new/ that contains needle.

        Postfix's queue is asynchronous: smtpd answers 250 once the message is safely in the
        queue (incoming -> active), and qmgr hands it to virtual(8) some time later. So the
        mailbox is polled until the file shows up, bounded by a deadline. virtual(8) writes
        in tmp/ and renames into new/, so a file seen in new/ is complete.
        """
        new = os.path.join(self.maildir(user), "new")
        deadline = time.monotonic() + timeout
        while True:
            try:
                names = sorted(os.listdir(new))
            except FileNotFoundError:
                names = []
            for name in names:
                with open(os.path.join(new, name), "rb") as f:
                    data = f.read()
                if needle in data:
                    return data
            if time.monotonic() >= deadline:
                raise AssertionError("no message containing %r in %s after %.0f s\n%s"
                                     % (needle, new, timeout, self.maillog_tail()))
            time.sleep(0.05)

    def maillog_size(self):
        """The maillog's length in bytes now: a start for wait_for_log and maillog_since."""
        try:
            return os.path.getsize(self.maillog_path)
        except FileNotFoundError:
            return 0

    def maillog_since(self, start):
        """The maillog's text from byte offset start on."""
        try:
            with open(self.maillog_path, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle, timeout=10.0, start=0, poll=0.05):
        """The first whole maillog line containing needle (a str, or a compiled regex that
        searches the line) (postlogd writes asynchronously: bounded poll, every poll seconds),
        looking only from byte offset start (maillog_size()) on."""
        match = needle.search if hasattr(needle, "search") else (lambda line: needle in line)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.maillog_path, "rb") as f:
                    f.seek(start)
                    for line in f.read().decode("utf-8", "replace").split("\n")[:-1]:
                        if match(line):
                            return line + "\n"
            except FileNotFoundError:
                pass
            if time.monotonic() >= deadline:
                raise AssertionError("%r not in the postfix maillog after %.0f s\n%s"
                                     % (getattr(needle, "pattern", needle), timeout,
                                        self.maillog_tail()))
            time.sleep(poll)


# --- Dovecot (SASL for Postfix) -----------------------------------------------------------------

PF_DOVECOT = "/usr/sbin/dovecot"

PF_DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = none
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {socket} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""


class PfDovecot:
    """A private Dovecot that only authenticates (protocols = none: no IMAP, no POP, no
    listening port), for a PfPostfix's smtpd (smtpd_sasl_type = dovecot, smtpd_sasl_path =
    private/auth): users from a passwd-file with plain passwords, its auth socket in that
    Postfix's queue_directory/private. Its own base_dir, state and log in a temp dir; run in the
    foreground (dovecot -F) as a child, stopped by its pid. The system's Dovecot is never
    touched."""

    def __init__(self, users):
        self.users = dict(users)
        self.dir = None
        self.proc = None

    def start(self, pf):
        self.dir = tempfile.mkdtemp(prefix="moat-dovecot-", dir="/tmp")
        os.chmod(self.dir, 0o755)  # the auth process runs as dovecot and reads the users file
        for sub in ("run", "state"):
            os.mkdir(os.path.join(self.dir, sub), 0o755)
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write("".join("%s:{PLAIN}%s\n" % kv for kv in self.users.items()))
        self.socket = os.path.join(pf.dir, "spool", "private", "auth")
        conf = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(PF_DOVECOT_CONF.format(d=self.dir, socket=self.socket))
        self.proc = subprocess.Popen([PF_DOVECOT, "-F", "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.poll() is not None else ""
                self.stop()
                raise RuntimeError("dovecot did not make %s: %s %s" % (self.socket, err, self.log()))
            time.sleep(0.05)
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.dir and not os.environ.get("PF_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def pf_sasl_main_cf(extra=None):
    """main.cf for a PfPostfix whose smtpd authenticates with a PfDovecot: mynetworks without
    127.0.0.1 (moat's address), so that only an authenticated session relays through it."""
    cf = {
        "mynetworks": "192.0.2.0/24",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": "private/auth",
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject_unauth_destination",
        "smtpd_tls_auth_only": "no",
    }
    cf.update(extra or {})
    return cf


# --- moat ------------------------------------------------------------------------------------

class PfMoat:
    """moat in the foreground (`moat -c FILE`), logging JSON to stderr. A thread drains
    stderr into self.lines (so the pipe never fills) and a queue used to find the
    {"event":"listening","addr":...} line."""

    def __init__(self, moat_bin, conf_path, conf_text):
        with open(conf_path, "w") as f:
            f.write(conf_text)
        self.lines = []
        self._q = queue.Queue()
        self.proc = subprocess.Popen([moat_bin, "-c", str(conf_path)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.host, self.port = self._wait_listening(time.monotonic() + 15)

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def _wait_listening(self, deadline):
        addr = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict) and ev.get("event") == "listening" and not addr:
                addr = ev["addr"]
            if isinstance(ev, dict) and ev.get("event") == "ready" and addr:
                host, _, port = addr.rpartition(":")
                return host.strip("[]"), int(port)
        self.stop()
        raise RuntimeError("moat did not log listening+ready (exit %s); stderr:\n%s"
                           % (self.proc.returncode, self.log_tail()))

    def log_tail(self, n=30):
        return "\n".join(self.lines[-n:])

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode


# --- moat in front of Postfix, as the suites share it -------------------------------------------

class PfStack:
    """PfDns, a PfPostfix and moat (moatlib.Moat on conftest.base_config, JSON log) in front of
    it, for a module of tests (test_smuggling_suite.py, test_console.py). Skips the test when
    not root, or Postfix or dnslib is missing. moat_keys override moat's config; add_moat()
    starts another moat (other keys) in front of the same Postfix. sasl_users ({user:
    password}): a PfDovecot for the Postfix's SASL (main_cf: pf_sasl_main_cf())."""

    def __init__(self, tmp, users=("bob",), main_cf=None, zone=None, domain=PF_DOMAIN,
                 moat_keys=None, sasl_users=None):
        import pytest
        from conftest import require_moat

        require_moat()
        if os.geteuid() != 0:
            pytest.skip("a private Postfix instance needs root")
        if not (os.path.exists(PF_POSTFIX)
                and shutil.which("smtpd", path="/usr/lib/postfix/sbin")):
            pytest.skip("postfix is not installed")
        pytest.importorskip("dnslib")
        self.tmp, self.domain, self.users = str(tmp), domain, tuple(users)
        self.dns = self.pf = self.moat = self.dovecot = None
        self.moats = []
        if sasl_users and not os.path.exists(PF_DOVECOT):
            pytest.skip("dovecot-core is not installed")
        try:
            self.dns = PfDns(zone)
            self.pf = PfPostfix(users=users, main_cf=main_cf, domain=domain).start()
            if sasl_users:  # before moat: Postfix's smtpd asks Dovecot at every connection, the probe's too
                self.dovecot = PfDovecot(sasl_users).start(self.pf)
            self.moat = self.add_moat(**(moat_keys or {}))
        except BaseException:
            self.stop()
            raise

    def add_moat(self, **keys):
        from types import SimpleNamespace
        from conftest import base_config
        from moatlib import Moat

        wd = os.path.join(self.tmp, "moat%d" % len(self.moats))
        os.mkdir(wd)
        cfg = base_config(wd, "127.0.0.1:%d" % self.pf.port,
                          SimpleNamespace(servers="127.0.0.1:%d" % self.dns.port))
        cfg["local_domains"] = self.domain
        cfg.update({k: str(v) for k, v in keys.items()})
        start = self.pf.maillog_size()
        m = Moat(cfg, wd).start()
        self.moats.append(m)
        m.wait_log(lambda l: l.get("event") == "backend_probe", what="backend_probe line")
        # The probe's Postfix session is over before a test takes its log offset. Only a
        # session without mail is the probe's: an earlier moat's pooled connection may close
        # in between (ehlo=2 starttls=1 xclient=1 mail=1 ... quit=1); a probe refused
        # at STARTTLS ends "ehlo=1 starttls=0/1 commands=1/2".
        self.pf.wait_for_log(re.compile(r"disconnect from \S+ ehlo=[\d/]+ (starttls=[\d/]+ )?(quit=1 )?commands=[\d/]+\s*$"),
                             timeout=30, start=start)
        return m

    def stop(self):
        """SIGTERM to every moat, which must exit 0 without a sanitizer report (as conftest's
        moat_factory); then Postfix and the DNS server."""
        problems = []
        try:
            for m in self.moats:
                rc = m.stop()
                san = m.sanitizer_errors()
                if rc != 0 or san:
                    problems.append("moat exited %r; sanitizer: %r\n%s" % (
                        rc, san[:5], m.stderr_text()[-3000:]))
        finally:
            if self.pf:
                self.pf.stop()
            if self.dovecot:
                self.dovecot.stop()
            if self.dns:
                self.dns.stop()
        assert not problems, "\n".join(problems)

    def maildir_files(self, user):
        d = os.path.join(self.pf.maildir(user), "new")
        try:
            return set(os.listdir(d))
        except FileNotFoundError:
            return set()

    def queue(self):
        r = subprocess.run([os.path.dirname(PF_POSTFIX) + "/postqueue", "-c", self.pf.etc, "-j"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, "postqueue -j failed: %s" % r.stderr
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
