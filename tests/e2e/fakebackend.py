"""fakebackend - a scripted SMTP server for moat's backend side, in threads: STARTTLS with a
test CA's certificate (Python's ssl, a real handshake), the misbehaviours a real server does not
offer on demand (plaintext after its STARTTLS reply, a 421 in the middle of a command group),
and what it saw on each connection (the commands, whether under TLS, the messages).

    fb = FakeBackend(cert=(crt, key), starttls="inject")
    ... moat with backend = 127.0.0.1:<fb.port> ...
    fb.conns.wait_count(lambda c: c.done, 1)
    fb.stop()

starttls: None (not offered), "ok", "inject" (b"220 go ahead\\r\\n250 bogus\\r\\n" in one write,
then the handshake), "plain_after" (220, then, once the client's TLS hello is in, plaintext
instead of a handshake), "refuse" (454). replies: {"MAIL": "421 4.3.2 closing", ...}: the reply
to a verb instead of the usual one (a 421 closes the connection after it). ehlo: extra EHLO
keywords. Every wait is on a condition with a deadline (moatlib.Watched), never a sleep.
"""

import socket
import ssl
import threading

from moatlib import Watched


class Conn:
    def __init__(self, n):
        self.n = n
        self.commands = []      # (under TLS, command line)
        self.messages = []      # (under TLS, message bytes as sent, dot-stuffed)
        self.tls = False
        self.tls_version = None
        self.done = False

    def verbs(self):
        return [c.split(b" ", 1)[0].upper().decode() for _, c in self.commands]


class FakeBackend:
    def __init__(self, cert=None, starttls=None, replies=None, ehlo=("PIPELINING", "8BITMIME")):
        self.starttls = starttls
        self.replies = dict(replies or {})
        self.ehlo_ext = list(ehlo)
        self.ctx = None
        if cert:
            self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ctx.load_cert_chain(*cert)
        self.conns = Watched()      # a Conn per connection, appended when it starts
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for t in self.threads:
            t.join(5)
        self.conns.close()

    def _accept(self):
        n = 0
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            c = Conn(n)
            self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(s, c), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, s, c):
        s.settimeout(20)
        try:
            self._session(s, c)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            c.done = True
            try:
                s.close()
            except OSError:
                pass
            with self.conns.cond:
                self.conns.cond.notify_all()

    def _session(self, s, c):
        rf = s.makefile("rb")
        s.sendall(b"220 fake.test ESMTP\r\n")
        while True:
            line = rf.readline(4096)
            if not line:
                return
            line = line.rstrip(b"\r\n")
            c.commands.append((c.tls, line))
            verb = line.split(b" ", 1)[0].upper().decode("ascii", "replace")
            if verb in self.replies:
                s.sendall(self.replies[verb].encode() + b"\r\n")
                if self.replies[verb].startswith("421"):
                    return
                continue
            if verb in ("EHLO", "HELO"):
                ext = list(self.ehlo_ext)
                if self.starttls and not c.tls:
                    ext.append("STARTTLS")
                lines = ["fake.test"] + ext
                s.sendall("".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l)
                                  for i, l in enumerate(lines)).encode())
            elif verb == "STARTTLS" and self.starttls and not c.tls:
                s, rf = self._starttls(s, rf, c)
                if s is None:
                    return
            elif verb == "MAIL":
                s.sendall(b"250 2.1.0 mail ok\r\n")
            elif verb == "RCPT":
                s.sendall(b"250 2.1.5 rcpt ok\r\n")
            elif verb == "DATA":
                s.sendall(b"354 go ahead\r\n")
                msg = b""
                while not msg.endswith(b"\r\n.\r\n") and msg != b".\r\n":
                    chunk = rf.readline(1 << 20)
                    if not chunk:
                        return
                    msg += chunk
                c.messages.append((c.tls, msg))
                s.sendall(b"250 2.0.0 Ok: queued as FAKE%d\r\n" % len(c.messages))
            elif verb in ("RSET", "NOOP", "XFORWARD"):
                s.sendall(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                s.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                s.sendall(b"502 5.5.2 command not recognized\r\n")

    def _starttls(self, s, rf, c):
        """The STARTTLS reply, misbehaving as asked, and the handshake: the TLS socket and its
        reader, or (None, None) when the session ends here."""
        if self.starttls == "refuse":
            s.sendall(b"454 4.7.0 TLS not available\r\n")
            return s, rf
        if self.starttls == "inject":
            s.sendall(b"220 go ahead\r\n250 bogus\r\n")      # one write: the injection
        else:
            s.sendall(b"220 go ahead\r\n")
        if self.starttls == "plain_after":
            # the client's TLS hello is in: plaintext where TLS records belong
            s.recv(1, socket.MSG_PEEK)
            s.sendall(b"250 plaintext where TLS belongs\r\n")
            try:
                s.recv(65536)   # its hello; then it gives up on us
            except OSError:
                pass
            return None, None
        ts = self.ctx.wrap_socket(s, server_side=True)
        c.tls = True
        c.tls_version = ts.version()
        return ts, ts.makefile("rb")
