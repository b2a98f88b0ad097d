"""Helpers for moat's end-to-end tests: process wrappers for moat and the
recording backend, a raw SMTP client, and assertions on relayed messages.

No sleeps are used for synchronisation: every wait is on something observable
(a log line, a backend event, a socket reply, a process exit) with a deadline.
"""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
BACKEND_PY = os.path.join(HERE, "backend.py")
MOAT_BIN = os.environ.get("MOAT_BIN") or os.path.join(REPO, "build", "moat")
HOSTNAME = "mx.test.example"
LOCAL_DOMAIN = "example.test"
DEFAULT_TIMEOUT = 10.0

ASAN_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                 "AddressSanitizer:DEADLYSIGNAL")


class WaitTimeout(AssertionError):
    pass


class Watched:
    """A list of items appended by a reader thread, with a condition to wait on."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()
        self.eof = False

    def append(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.items)

    def wait(self, pred, timeout=DEFAULT_TIMEOUT, start=0, what="item"):
        """Wait for the first item (index >= start) for which pred is true."""
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.items):
                    if pred(self.items[i]):
                        return self.items[i]
                    i += 1
                if self.eof:
                    raise WaitTimeout("stream ended while waiting for %s" % what)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout("timed out after %.1fs waiting for %s" % (timeout, what))
                self.cond.wait(left)

    def wait_eof(self, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def wait_until(self, cond, timeout=DEFAULT_TIMEOUT, what="condition"):
        """Wait until cond(list of all items) is true."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not cond(self.items):
                if self.eof:
                    raise WaitTimeout("stream ended while waiting for %s" % what)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout("timed out after %.1fs waiting for %s" % (timeout, what))
                self.cond.wait(left)

    def wait_count(self, pred, n, timeout=DEFAULT_TIMEOUT, what="items"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [x for x in self.items if pred(x)]
                if len(got) >= n:
                    return got
                if self.eof:
                    raise WaitTimeout("stream ended with %d/%d %s" % (len(got), n, what))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout("timed out after %.1fs with %d/%d %s" % (timeout, len(got), n, what))
                self.cond.wait(left)


# --------------------------------------------------------------------- backend

class Message:
    def __init__(self, rec):
        self.rec = rec
        self.n = rec["n"]
        self.session = rec["session"]
        self.helo = rec.get("helo")
        self.mail_from = rec["mail_from"]
        self.mail_params = rec["mail_params"]
        self.rcpts = rec["rcpts"]
        self.rcpt_params = rec["rcpt_params"]
        self.auth_user = rec.get("auth_user")
        self.raw = base64.b64decode(rec["raw_b64"])
        self.data = base64.b64decode(rec["data_b64"])

    def __repr__(self):
        return "<Message n=%d session=%d from=%r rcpts=%r %d bytes>" % (
            self.n, self.session, self.mail_from, self.rcpts, len(self.data))


class Backend:
    def __init__(self, store, ehlo_ext="", slow=None, eml=False, port=0, auth="", host="127.0.0.1"):
        self.store = str(store)
        self.host = host
        os.makedirs(self.store, exist_ok=True)
        args = [PY, BACKEND_PY, "--host", host, "--port", str(port), "--store", self.store]
        if ehlo_ext:
            args += ["--ehlo-ext", ehlo_ext]
        if auth:
            args += ["--auth", auth]
        if slow is not None:
            args += ["--slow", str(slow)]
        if eml:
            args.append("--eml")
        self.events = Watched()
        self.stderr = []
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        ev = self.events.wait(lambda e: e[0] == "READY", what="backend READY")
        self.port = int(ev[1])

    def _read_stdout(self):
        for line in self.proc.stdout:
            line = line.decode("utf-8", "replace").rstrip("\n")
            kind, _, rest = line.partition(" ")
            if kind == "CMD":
                sid, _, js = rest.partition(" ")
                self.events.append(("CMD", int(sid), json.loads(js)))
            else:
                self.events.append(tuple([kind] + rest.split()))
        self.events.close()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace"))

    # events
    def wait_event(self, pred, timeout=DEFAULT_TIMEOUT, what="backend event", start=0):
        return self.events.wait(pred, timeout, start=start, what=what)

    def stored_events(self):
        return [e for e in self.events.snapshot() if e[0] == "STORED"]

    def wait_stored(self, n, timeout=DEFAULT_TIMEOUT):
        """Wait until n messages are stored in total; return all messages."""
        self.events.wait_count(lambda e: e[0] == "STORED", n, timeout, what="STORED messages")
        return self.messages()

    def commands(self, session=None):
        return [e[2] for e in self.events.snapshot()
                if e[0] == "CMD" and (session is None or e[1] == session)]

    def command_events(self):
        return [(e[1], e[2]) for e in self.events.snapshot() if e[0] == "CMD"]

    def wait_all_closed(self, timeout=DEFAULT_TIMEOUT):
        """Wait until every connection made to the backend so far is closed."""
        def done(items):
            opened = {e[1] for e in items if e[0] == "CONNECT"}
            closed = {e[1] for e in items if e[0] == "CLOSE"}
            return opened <= closed
        self.events.wait_until(done, timeout, what="all backend connections closed")

    def sessions(self):
        return [int(e[1]) for e in self.events.snapshot() if e[0] == "CONNECT"]

    def messages(self):
        out = []
        for name in os.listdir(self.store):
            if name.endswith(".json"):
                with open(os.path.join(self.store, name), "rb") as f:
                    out.append(Message(json.load(f)))
        out.sort(key=lambda m: m.n)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------------------ moat

def rss_kib(pid):
    """A process's resident set size, KiB (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sanitized(pid):
    """An ASan build: it keeps freed memory in quarantine, so RSS says nothing there."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def free_port():
    """A TCP port on 127.0.0.1 with nothing listening on it (bound then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def render_config(cfg):
    return "".join("%s = %s\n" % (k, v) for k, v in cfg.items() if v is not None)


class Moat:
    def __init__(self, config, workdir, bin_path=MOAT_BIN, conf_name="moat.conf"):
        self.config = dict(config)
        self.workdir = str(workdir)
        self.bin = bin_path
        self.conf_path = os.path.join(self.workdir, conf_name)
        self.logs = Watched()       # parsed JSON objects
        self.raw_lines = []         # every stderr line, bytes
        self.noise = []             # stderr lines that are not JSON objects
        self.prefix = []            # a command moat runs under (setpriv ...), if any
        self.proc = None
        self.rc = None
        self.port = None
        self.addrs = []
        self.write_config()

    def write_config(self, cfg=None):
        if cfg is not None:
            self.config = dict(cfg)
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(render_config(self.config))
        os.rename(tmp, self.conf_path)

    def start(self, wait_ready=True, timeout=DEFAULT_TIMEOUT):
        self.proc = subprocess.Popen(self.prefix + [self.bin, "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.workdir)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        if wait_ready:
            try:
                self.logs.wait(lambda l: l.get("event") == "ready", timeout, what="moat ready")
            except WaitTimeout as e:
                raise WaitTimeout("%s; moat stderr:\n%s" % (e, self.stderr_text()))
            listening = [l for l in self.logs.snapshot() if l.get("event") == "listening"]
            self.addrs = [l["addr"] for l in listening]
            assert self.addrs, "moat logged ready without a listening line"
            self.port = int(self.addrs[0].rsplit(":", 1)[1])
            # the first address of each listener: "smtp", "smtps", "submission"
            self.ports = {}
            for l in listening:
                self.ports.setdefault(l.get("listener", "smtp"), int(l["addr"].rsplit(":", 1)[1]))
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.raw_lines.append(line)
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                self.logs.append(obj)
            else:
                self.noise.append(text)
        self.logs.close()

    def _drain_stdout(self):
        for line in self.proc.stdout:
            self.noise.append("[stdout] " + line.decode("utf-8", "replace").rstrip("\n"))

    def stderr_text(self):
        return b"".join(self.raw_lines).decode("utf-8", "replace")

    # logs
    def wait_log(self, pred, timeout=DEFAULT_TIMEOUT, what="log line", start=0):
        try:
            return self.logs.wait(pred, timeout, start=start, what=what)
        except WaitTimeout as e:
            raise WaitTimeout("%s; moat stderr:\n%s" % (e, self.stderr_text()[-6000:]))

    def wait_session_end(self, n=1, timeout=DEFAULT_TIMEOUT, pred=lambda l: True):
        return self.logs.wait_count(lambda l: l.get("event") == "session_end" and pred(l), n,
                                    timeout, what="session_end lines")

    def log_lines(self, **match):
        return [l for l in self.logs.snapshot()
                if all(l.get(k) == v for k, v in match.items())]

    def decisions(self):
        return [l for l in self.logs.snapshot() if "action" in l and "stage" in l]

    # process
    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeout("moat did not exit within %.1fs" % timeout)
        self.logs.wait_eof(5)
        return self.rc

    def stop(self, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.rc = self.proc.wait()
            raise WaitTimeout("moat did not exit within %ds of SIGTERM" % timeout)
        self.logs.wait_eof(5)
        return self.rc

    def sanitizer_errors(self):
        text = self.stderr_text()
        return [l for l in text.splitlines() if any(p in l for p in ASAN_PATTERNS)]

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def clean_make_env():
    """The environment for a make the tests run: without what the make that
    runs the tests passes down, in MAKEFLAGS and as variables (make asan's
    SAN=1 BUILD=build/asan would otherwise build the image and the install
    with AddressSanitizer)."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "SAN", "BUILD", "PREFIX", "DESTDIR",
            "sbindir", "mandir", "datadir", "sysconfdir", "systemdunitdir", "sysusersdir", "logrotatedir",
            "IMAGE_BUILD", "IMAGE_NAME", "BUILDAH"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run_moat_t(conf_path, bin_path=MOAT_BIN, timeout=10):
    return subprocess.run([bin_path, "-t", "-c", str(conf_path)], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


# ---------------------------------------------------------------------- client

REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*)$", re.S)
ENH = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


class ConnectionClosed(AssertionError):
    pass


class Reply:
    def __init__(self, lines):
        self.raw_lines = lines           # bytes, without CRLF
        self.lines = [l.decode("utf-8", "replace") for l in lines]
        self.code = int(self.lines[0][:3])
        self.texts = [l[4:] for l in self.lines]

    @property
    def text(self):
        return "\n".join(self.texts)

    @property
    def line(self):
        """The whole reply as one string, lines joined with \\n."""
        return "\n".join(self.lines)

    def enhanced(self):
        """The enhanced status code of every line (None where absent)."""
        out = []
        for t in self.texts:
            m = ENH.match(t)
            out.append(m.group(0).strip() if m else None)
        return out

    def __repr__(self):
        return "<Reply %r>" % self.line


class SMTPClient:
    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT, source=None,
                 read_banner=True, nodelay=True, rcvbuf=None):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf:  # before connect: the window it advertises stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.closed = False
        self.banner = self.reply() if read_banner else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no complete reply before the deadline; have %r" % self.buf[:300])
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise ConnectionClosed("connection closed by moat; unparsed bytes %r" % self.buf[:300])
        self.buf += chunk

    def readline(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self.buf:
            if b"\n" in self.buf:
                raise AssertionError("reply line not terminated by CRLF: %r" % self.buf[:300])
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, timeout=None):
        """Read one whole (possibly multi-line) reply."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            line = self.readline(max(0.001, deadline - time.monotonic()))
            m = REPLY_LINE.match(line)
            if not m and len(line) == 3 and line.isdigit():
                lines.append(line + b" ")
                break
            assert m, "malformed reply line %r (after %r)" % (line, lines)
            if lines:
                assert line[:3] == lines[0][:3], "reply code changed inside a multi-line reply: %r" % (lines + [line])
            lines.append(line)
            if m.group(2) == b" ":
                break
        return Reply(lines)

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def expect(self, line, code, enh=None, timeout=None):
        r = self.cmd(line, timeout)
        assert r.code == code, "%r -> %r, expected %d" % (line, r, code)
        if enh:
            assert r.enhanced()[0] == enh, "%r -> %r, expected %s" % (line, r, enh)
        return r

    def ehlo(self, name="client.example.org"):
        return self.expect("EHLO " + name, 250)

    def wait_closed(self, timeout=None):
        """Read until EOF; returns the bytes received before it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        got = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection still open after %.1fs; got %r" % (timeout or self.timeout, got[:300]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                continue
            if not chunk:
                self.closed = True
                return got
            got += chunk

    def data(self, message, timeout=None):
        """DATA, then the dot-stuffed message; returns the end-of-data reply."""
        r = self.cmd("DATA")
        assert r.code == 354, "DATA -> %r" % r
        self.send(dotstuff(message))
        return self.reply(timeout)

    def transaction(self, mail_from, rcpts, message, mail_params="", timeout=None):
        self.expect("MAIL FROM:<%s>%s" % (mail_from, (" " + mail_params) if mail_params else ""), 250)
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, 250)
        return self.data(message, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ------------------------------------------------------------------ messages

def dotstuff(message):
    """The DATA section for a message (which must be empty or end in CRLF)."""
    assert message == b"" or message.endswith(b"\r\n"), "message must end with CRLF"
    if not message:
        return b".\r\n"
    lines = message[:-2].split(b"\r\n")
    return b"\r\n".join((b"." + l) if l.startswith(b".") else l for l in lines) + b"\r\n.\r\n"


FIELD_NAMES_ALLOWED = (b"received", b"authentication-results")


def prepended_fields(data, original):
    """Check that data = (header fields moat prepended) + original and return
    the list of prepended fields (bytes, each with its CRLFs)."""
    assert data.endswith(original), (
        "backend data does not end with the client's message byte for byte\n"
        "client message (%d bytes) starts %r\nbackend data (%d bytes) starts %r" % (
            len(original), original[:200], len(data), data[:400]))
    prefix = data[:len(data) - len(original)]
    fields = []
    for line in prefix.split(b"\r\n")[:-1] if prefix else []:
        if line[:1] in (b" ", b"\t"):
            assert fields, "prefix starts with a continuation line: %r" % prefix[:300]
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    assert prefix == b"".join(fields), "prefix is not whole CRLF-terminated lines: %r" % prefix[:300]
    for f in fields:
        name = f.split(b":", 1)[0]
        assert b":" in f and name.lower() in FIELD_NAMES_ALLOWED, (
            "moat prepended a field other than Received/Authentication-Results: %r" % f[:200])
        assert b"\n" not in f[:-2].replace(b"\r\n", b""), "bare LF inside a prepended field %r" % f
        assert b"\r" not in f[:-2].replace(b"\r\n", b""), "bare CR inside a prepended field %r" % f
    return fields


def assert_relayed(msg, original):
    """The backend got moat's fields + the original message, and the wire form
    was correctly dot-stuffed CRLF data."""
    fields = prepended_fields(msg.data, original)
    assert any(f.lower().startswith(b"received:") for f in fields), (
        "moat did not prepend a Received: field; prefix=%r" % msg.data[:len(msg.data) - len(original)][:300])
    assert msg.raw == dotstuff(msg.data), "wire data is not the dot-stuffed message"
    return fields


def has_bare_cr_or_lf(b):
    s = b.replace(b"\r\n", b"")
    return b"\r" in s or b"\n" in s


def normalise_eol(b):
    return re.sub(rb"\r\n|\r|\n", b"\r\n", b)


# ------------------------------------------------------------ short aliases

def wait_for_log(moat, predicate, timeout=DEFAULT_TIMEOUT):
    """The first log line (a dict) for which predicate is true."""
    return moat.wait_log(predicate, timeout)


def wait_for_backend_messages(backend, n, timeout=DEFAULT_TIMEOUT):
    """Wait until the backend has stored n messages; return all stored messages."""
    return backend.wait_stored(n, timeout)

