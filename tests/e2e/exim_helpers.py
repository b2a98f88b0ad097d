"""exim_helpers - a private Exim daemon (Debian's exim4-daemon-light, 4.96) as moat's backend,
for test_exim_backend.py.

Debian's exim4 packages cannot be installed beside postfix (both provide mail-transport-agent),
so `make deps` unpacks exim4-daemon-light's binary into /opt/moat-e2e/exim4 (MOAT_EXIM overrides
the path) and makes the Debian-exim user it looks up at run time; no system Exim exists.

The daemon runs in the foreground (`exim -bdf -C FILE`, a child of the test, stopped by its
pid) with its own spool, logs, pid file and Maildirs in one temp dir, listening on a free port of
127.0.0.1 only. -C as root keeps root (Debian's TRUSTED_CONFIG_LIST only matters to other
callers); Exim re-executes itself for each delivery as Debian-exim with the same -C, which drops
root, so the config says deliver_drop_privilege and the Maildirs belong to Debian-exim. Nothing
leaves the machine: the only router accepts the test's users of example.test, and there is no
queue runner (a message Exim did not deliver at once stays queued).

Its main section starts with the guide's lines (docs/deploying.md: exim4.conf.localmacros and
dc_local_interfaces, with /etc/exim4/ and port 10025 made the instance's), then what Debian's
exim4.conf.template would put around them: acl_smtp_rcpt = MAIN_ACL_CHECK_RCPT, Debian's
acl_check_rcpt in short (relay_from_hosts, which Debian always gives 127.0.0.1, is accepted
before any recipient is verified), the TLS files of MAIN_TLS_ENABLE (without it Exim 4.96 still
offers STARTTLS, with a self-signed certificate of its own). Exim looks up no host name
(Debian's host_lookup = * would ask the machine's resolver).
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from pf_helpers import pf_free_port, pf_wait_tcp

EXIM_BIN = os.environ.get("MOAT_EXIM") or "/opt/moat-e2e/exim4/usr/sbin/exim4"
EXIM_USER = "Debian-exim"
EXIM_DOMAIN = "example.test"
EXIM_GUIDE_PORT = "10025"          # the port the guide gives Exim; the instance's replaces it
EXIM_GUIDE_DIR = "/etc/exim4/"     # the guide's files; the instance's dir replaces it

EXIM_CONF = """\
# the guide's lines
{head}
# the instance
exim_path = {bin}
spool_directory = {d}/spool
log_file_path = {d}/log/%slog
pid_file_path = {d}/exim.pid
primary_hostname = exim.{domain}
qualify_domain = {domain}
domainlist local_domains = {domain}
domainlist relay_to_domains =
hostlist relay_from_hosts = <; 127.0.0.1 ; ::1
local_interfaces = {interfaces}
keep_environment =
deliver_drop_privilege = true
log_selector = +smtp_connection +received_recipients +smtp_protocol_error +smtp_syntax_error \\
               +tls_cipher +tls_certificate_verified
# as Debian's exim4.conf.template
.ifndef MAIN_ACL_CHECK_RCPT
MAIN_ACL_CHECK_RCPT = acl_check_rcpt
.endif
acl_smtp_rcpt = MAIN_ACL_CHECK_RCPT
acl_smtp_data = acl_check_data
.ifdef MAIN_TLS_ENABLE
tls_advertise_hosts = *
tls_certificate = MAIN_TLS_CERTIFICATE
tls_privatekey = MAIN_TLS_PRIVATEKEY
.endif

begin acl

acl_check_rcpt:
  accept  hosts = :
  accept  hosts = +relay_from_hosts
          control = submission/sender_retain
  require message = relay not permitted
          domains = +local_domains : +relay_to_domains
  require verify = recipient
  accept

acl_check_data:
  deny    condition = ${{if def:h_X-Exim-Refuse:}}
          message = content refused by Exim
  accept

begin routers

mailboxes:
  driver = accept
  domains = +local_domains
  local_parts = {users}
  transport = maildir

begin transports

maildir:
  driver = appendfile
  directory = {d}/mail/${{local_part_data}}
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add

begin retry

* * F,1h,15m
"""


def exim_missing():
    """Why this machine cannot run the private Exim, or None."""
    if os.geteuid() != 0:
        return "a private Exim daemon needs root"
    if not os.access(EXIM_BIN, os.X_OK):
        return "%s not found: `make deps` (as root) unpacks exim4-daemon-light there" % EXIM_BIN
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        return "no %s user: `make deps` (as root) makes it" % EXIM_USER
    return None


class ExExim:
    """A private Exim daemon delivering users@example.test into Maildirs.

    localmacros: the guide's exim4.conf.localmacros lines; interfaces: its dc_local_interfaces
    value; files: {name: text} written into the instance's dir (the guide's /etc/exim4/ files).
    """

    def __init__(self, users=("bob", "carol"), localmacros="", interfaces="127.0.0.1." + EXIM_GUIDE_PORT,
                 files=None):
        self.users = list(users)
        self.localmacros, self.interfaces, self.files = localmacros, interfaces, dict(files or {})
        self.dir = self.proc = self.port = None

    def _local(self, text):
        return text.replace(EXIM_GUIDE_DIR, self.dir + "/").replace(EXIM_GUIDE_PORT, str(self.port))

    def start(self):
        # Not pytest's tmp_path (mode 0700): the delivery processes run as Debian-exim.
        self.dir = tempfile.mkdtemp(prefix="moat-exim-", dir="/tmp")
        try:
            self._configure_and_start()
        except BaseException:
            self.stop()
            raise
        return self

    def _configure_and_start(self):
        os.chmod(self.dir, 0o755)
        ex = pwd.getpwnam(EXIM_USER)
        for sub in ("spool", "log", "mail"):
            os.mkdir(os.path.join(self.dir, sub), 0o750)
            os.chown(os.path.join(self.dir, sub), ex.pw_uid, ex.pw_gid)
        self.port = pf_free_port()
        for name, text in self.files.items():
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(self._local(text))
            os.chown(path, 0, ex.pw_gid)   # as Debian ships exim.key: root:Debian-exim 0640
            os.chmod(path, 0o640)
        self.conf = os.path.join(self.dir, "exim.conf")
        with open(self.conf, "w") as f:
            f.write(EXIM_CONF.format(head=self._local(self.localmacros), bin=EXIM_BIN, d=self.dir,
                                     domain=EXIM_DOMAIN, interfaces=self._local(self.interfaces),
                                     users=" : ".join(self.users)))
        r = subprocess.run([EXIM_BIN, "-C", self.conf, "-bV"], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("exim -bV rejects the config: %s%s" % (r.stdout[-2000:], r.stderr))
        self.proc = subprocess.Popen([EXIM_BIN, "-C", self.conf, "-bdf"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not pf_wait_tcp(self.port, time.monotonic() + 20, alive=lambda: self.proc.poll() is None):
            raise RuntimeError("exim not accepting on 127.0.0.1:%d (exit %s)\n%s"
                               % (self.port, self.proc.poll(), self.log_tail()))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.dir and not os.environ.get("EXIM_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # logs
    def _log(self, name):
        try:
            with open(os.path.join(self.dir, "log", name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mainlog_size(self):
        return len(self._log("mainlog").encode())

    def mainlog_since(self, start=0):
        return self._log("mainlog").encode()[start:].decode("utf-8", "replace")

    def paniclog(self):
        return self._log("paniclog")

    def log_tail(self, n=30):
        lines = self._log("mainlog").splitlines()[-n:]
        panic = self.paniclog()
        return "--- exim mainlog (last %d lines):\n%s%s" % (
            n, "\n".join(lines), ("\n--- paniclog:\n" + panic) if panic else "")

    def wait_for_log(self, needle, start=0, timeout=15.0):
        """The first mainlog line from byte offset start on containing needle (a str, or a
        compiled regex); a bounded poll (delivery processes write it after the reply)."""
        match = needle.search if hasattr(needle, "search") else (lambda line: needle in line)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.mainlog_since(start).split("\n")[:-1]:
                if match(line):
                    return line
            if time.monotonic() >= deadline:
                raise AssertionError("%r not in exim's mainlog after %.0f s\n%s"
                                     % (getattr(needle, "pattern", needle), timeout, self.log_tail()))
            time.sleep(0.05)

    # mailboxes
    def maildir_new(self, user):
        return os.path.join(self.dir, "mail", user, "new")

    def wait_for_mail(self, user, needle, timeout=15.0):
        """The bytes of the message in user's Maildir new/ containing needle (appendfile writes
        in tmp/ and renames into new/, so a file there is whole)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                names = sorted(os.listdir(self.maildir_new(user)))
            except FileNotFoundError:
                names = []
            for name in names:
                with open(os.path.join(self.maildir_new(user), name), "rb") as f:
                    data = f.read()
                if needle in data:
                    return data
            if time.monotonic() >= deadline:
                raise AssertionError("no message containing %r for %s after %.0f s\n%s"
                                     % (needle, user, timeout, self.log_tail()))
            time.sleep(0.05)

    def mail_count(self, user):
        try:
            return len(os.listdir(self.maildir_new(user)))
        except FileNotFoundError:
            return 0
