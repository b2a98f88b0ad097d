#!/usr/bin/python3
"""A recording SMTP server used as moat's backend in the end-to-end tests.

The SMTP protocol is implemented by hand (asyncio) so that the exact bytes of
every DATA section are kept. Each accepted message is written atomically
(tmp file + rename) as STORE/<n>.json *before* the 250 reply is sent:

    {"n": 1, "session": 3, "helo": "...", "mail_from": "a@b", "mail_params": [...],
     "rcpts": ["x@y"], "rcpt_params": [[...]], "raw_b64": "...", "data_b64": "..."}

raw_b64 is the DATA section exactly as it came over the wire, from the first
byte after the 354 up to and including the terminating ".\r\n"; data_b64 is the
dot-unstuffed message (without the terminator).

Events are printed on stdout, one line each, flushed at once:

    READY <port>
    CONNECT <session> <peer-ip>
    CMD <session> <json-string of the command line without CRLF>
    DATAEND <session> <bytes>          end of data seen (before any reply)
    STORED <n> <session>
    SLOW <session> <seconds>           the end-of-data reply is being delayed
    DROP <session> <reason>            the backend closed the connection on purpose
    CLOSE <session>

Fault injection by magic local parts (the local part is the keyword, or the
keyword followed by "+anything"):

    sender  reject-mail@     550 5.7.1 at MAIL
    rcpt    unknown@         550 5.1.1 <addr>: User unknown
    rcpt    tempfail@        450 4.2.0 at RCPT
    rcpt    multiline@       a two-line 550 5.7.1 reply at RCPT
    rcpt    slowrcpt@        delay the RCPT reply (250) by --slow seconds
    rcpt    drop-rcpt@       close the connection instead of answering RCPT
    rcpt    garbage@         answer RCPT with a line that is not an SMTP reply
    rcpt    hugereply@       answer RCPT with a 250 reply of 200 lines (~16 KB)
    rcpt    close-after-rcpt@  accept the RCPT (250), then close the connection
    any     reject-datacmd@  refuse the DATA command itself: 554 5.7.0
    any     reject-data@     554 5.6.0 at end of data
    any     tempfail-data@   451 4.3.0 at end of data
    any     drop-data@       close the connection while receiving the data
    any     drop-after-data@ read the whole message, close without a reply, store nothing
    any     slow@            store, then delay the end-of-data reply by --slow seconds

With --auth USER:PASS[,USER:PASS...] the EHLO offers AUTH PLAIN LOGIN and
AUTH checks the pair (235 2.7.0, 535 5.7.8; "*" 501 5.7.0); an event says
who tried and how it went, and a stored message says who sent it:

    AUTH <session> <mechanism> <user> ok|fail|cancel
    (in the record) "auth_user": "alice"

Usage: backend.py --port 0 --store DIR [--ehlo-ext SMTPUTF8,DSN] [--slow N] [--eml] [--auth U:P]
"""

import argparse
import asyncio
import base64
import json
import os
import re
import sys

CMD_LINE_MAX = 65536

MAIL_RE = re.compile(rb"^MAIL FROM:\s*<([^>]*)>\s*(.*)$", re.I | re.S)
RCPT_RE = re.compile(rb"^RCPT TO:\s*<([^>]*)>\s*(.*)$", re.I | re.S)


def emit(*parts):
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def local_part(addr):
    return addr.rsplit("@", 1)[0].lower() if "@" in addr else addr.lower()


def magic(addr, keyword):
    lp = local_part(addr)
    return lp == keyword or lp.startswith(keyword + "+")


def unstuff(content):
    """Dot-unstuff a DATA section (without its terminator)."""
    if not content:
        return b""
    lines = content.split(b"\r\n")
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)


class Server:
    def __init__(self, args):
        self.args = args
        self.store = args.store
        self.ext = [e.strip().upper() for e in args.ehlo_ext.split(",") if e.strip()]
        self.users = dict(p.split(":", 1) for p in args.auth.split(",") if p)
        self.next_session = 0
        # continue after messages already in the directory (the demo keeps its mail)
        self.next_msg = max([int(f.split(".")[0]) for f in os.listdir(self.store)
                             if f.split(".")[0].isdigit()] or [0])

    def new_session(self):
        self.next_session += 1
        return self.next_session

    def new_msg(self):
        self.next_msg += 1
        return self.next_msg

    def write_atomic(self, path, data):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    def save(self, sess, raw, data):
        n = self.new_msg()
        rec = {
            "n": n,
            "session": sess.id,
            "peer": sess.peer,
            "helo": sess.helo,
            "mail_from": sess.mail_from,
            "mail_params": sess.mail_params,
            "rcpts": sess.rcpts,
            "rcpt_params": sess.rcpt_params,
            "auth_user": sess.auth_user,
            "raw_b64": base64.b64encode(raw).decode(),
            "data_b64": base64.b64encode(data).decode(),
        }
        base = os.path.join(self.store, str(n))
        if self.args.eml:
            hdr = ("X-Backend-Envelope-From: <%s>\r\nX-Backend-Envelope-To: %s\r\n" % (
                sess.mail_from, ", ".join("<%s>" % r for r in sess.rcpts))).encode()
            self.write_atomic(base + ".eml", hdr + data)
        self.write_atomic(base + ".json", json.dumps(rec, indent=1).encode())
        return n


class Session:
    def __init__(self, server, reader, writer):
        self.srv = server
        self.r = reader
        self.w = writer
        self.id = server.new_session()
        peer = writer.get_extra_info("peername")
        self.peer = peer[0] if peer else "?"
        self.buf = b""
        self.helo = None
        self.esmtp = False
        self.auth_user = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_params = []
        self.rcpts = []
        self.rcpt_params = []

    async def fill(self):
        chunk = await self.r.read(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    async def readline(self):
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                line = self.buf[:i + 1]
                self.buf = self.buf[i + 1:]
                return line
            start = len(self.buf)
            if len(self.buf) > CMD_LINE_MAX:
                self.buf = b""
                return None  # too long
            await self.fill()

    async def read_data(self):
        """Return (raw, content) of a DATA section; raw includes '.\\r\\n'."""
        buf = b"\r\n" + self.buf
        self.buf = b""
        start = 0
        while True:
            i = buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                raw = buf[2:i + 5]
                content = buf[2:i + 2]
                self.buf = buf[i + 5:]
                return raw, content
            start = max(0, len(buf) - 4)
            chunk = await self.r.read(65536)
            if not chunk:
                raise EOFError
            buf += chunk

    async def reply(self, text):
        self.w.write(text.encode("utf-8", "surrogateescape") + b"\r\n")
        await self.w.drain()

    async def run(self):
        emit("CONNECT", self.id, self.peer)
        try:
            await self.reply("220 backend.test.example ESMTP recording-backend")
            while True:
                line = await self.readline()
                if line is None:
                    await self.reply("500 5.5.2 Error: line too long")
                    continue
                cmdline = line.rstrip(b"\r\n")
                emit("CMD", self.id, json.dumps(cmdline.decode("utf-8", "surrogateescape")))
                if not await self.command(cmdline):
                    break
        except (EOFError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            emit("CLOSE", self.id)
            try:
                self.w.close()
            except Exception:
                pass

    async def command(self, line):
        verb = line.split(b" ", 1)[0].upper()
        arg = line[len(verb):].strip()
        s = self.srv
        if verb == b"EHLO" or verb == b"HELO":
            if not arg:
                await self.reply("501 5.5.4 Syntax: %s hostname" % verb.decode())
                return True
            self.helo = arg.decode("utf-8", "surrogateescape")
            self.esmtp = verb == b"EHLO"
            self.reset()
            if verb == b"HELO":
                await self.reply("250 backend.test.example")
            else:
                caps = ["backend.test.example", "PIPELINING", "SIZE 52428800", "8BITMIME",
                        "ENHANCEDSTATUSCODES"] + s.ext + (["AUTH PLAIN LOGIN"] if s.users else [])
                await self.reply("\r\n".join(
                    "250%s%s" % ("-" if i < len(caps) - 1 else " ", c) for i, c in enumerate(caps)))
            return True
        if verb == b"MAIL":
            m = MAIL_RE.match(line)
            if self.helo is None:
                await self.reply("503 5.5.1 Error: send HELO/EHLO first")
            elif self.mail_from is not None:
                await self.reply("503 5.5.1 Error: nested MAIL command")
            elif not m:
                await self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            else:
                addr = m.group(1).decode("utf-8", "surrogateescape")
                params = m.group(2).decode("utf-8", "surrogateescape").split()
                allowed = {"SIZE", "BODY"}
                if "SMTPUTF8" in s.ext:
                    allowed.add("SMTPUTF8")
                if "DSN" in s.ext:
                    allowed |= {"RET", "ENVID"}
                bad = [p for p in params if p.split("=", 1)[0].upper() not in allowed]
                if bad or not self.esmtp and params:
                    await self.reply("555 5.5.4 Unsupported parameter: %s" % (bad or params)[0])
                elif magic(addr, "reject-mail"):
                    await self.reply("550 5.7.1 <%s>: Sender rejected" % addr)
                else:
                    self.mail_from = addr
                    self.mail_params = params
                    await self.reply("250 2.1.0 Ok")
            return True
        if verb == b"RCPT":
            m = RCPT_RE.match(line)
            if self.mail_from is None:
                await self.reply("503 5.5.1 Error: need MAIL command")
            elif not m:
                await self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
            else:
                addr = m.group(1).decode("utf-8", "surrogateescape")
                params = m.group(2).decode("utf-8", "surrogateescape").split()
                allowed = {"NOTIFY", "ORCPT"} if "DSN" in s.ext else set()
                bad = [p for p in params if p.split("=", 1)[0].upper() not in allowed]
                if bad:
                    await self.reply("555 5.5.4 Unsupported parameter: %s" % bad[0])
                elif magic(addr, "unknown"):
                    await self.reply("550 5.1.1 <%s>: User unknown" % addr)
                elif magic(addr, "drop-rcpt"):
                    emit("DROP", self.id, "drop-rcpt")
                    self.w.transport.abort()
                    return False
                elif magic(addr, "garbage"):
                    await self.reply("this is not an SMTP reply")
                elif magic(addr, "hugereply"):
                    await self.reply("\r\n".join("250-2.1.5 %s" % ("x" * 76) for _ in range(199))
                                     + "\r\n250 2.1.5 Ok")
                    self.rcpts.append(addr)
                    self.rcpt_params.append(params)
                elif magic(addr, "multiline"):
                    await self.reply("550-5.7.1 <%s>: first line\r\n550 5.7.1 second line" % addr)
                elif magic(addr, "tempfail"):
                    await self.reply("450 4.2.0 <%s>: Recipient temporarily unavailable" % addr)
                elif magic(addr, "close-after-rcpt"):
                    self.rcpts.append(addr)
                    self.rcpt_params.append(params)
                    await self.reply("250 2.1.5 Ok")
                    emit("DROP", self.id, "close-after-rcpt")
                    self.w.transport.abort()
                    return False
                else:
                    if magic(addr, "slowrcpt"):
                        emit("SLOW", self.id, self.srv.args.slow)
                        await asyncio.sleep(self.srv.args.slow)
                    self.rcpts.append(addr)
                    self.rcpt_params.append(params)
                    await self.reply("250 2.1.5 Ok")
            return True
        if verb == b"DATA":
            if arg:
                await self.reply("501 5.5.4 Syntax: DATA")
                return True
            if self.mail_from is None:
                await self.reply("503 5.5.1 Error: need MAIL command")
                return True
            if not self.rcpts:
                await self.reply("554 5.5.1 Error: no valid recipients")
                return True
            return await self.data()
        if verb == b"AUTH" and s.users:
            return await self.auth(arg)
        if verb == b"RSET":
            self.reset()
            await self.reply("250 2.0.0 Ok")
            return True
        if verb == b"NOOP":
            await self.reply("250 2.0.0 Ok")
            return True
        if verb == b"QUIT":
            await self.reply("221 2.0.0 Bye")
            return False
        if verb == b"VRFY":
            await self.reply("252 2.0.0 Send some mail, I'll try my best")
            return True
        await self.reply("502 5.5.2 Error: command not recognized")
        return True

    async def answer(self, challenge):
        """A 334 and the client's answer line: None for "*"."""
        await self.reply("334 " + challenge)
        line = (await self.readline() or b"").rstrip(b"\r\n")
        return None if line == b"*" else line

    async def auth(self, arg):
        parts = arg.split()
        mech = parts[0].upper().decode() if parts else ""
        initial = parts[1] if len(parts) > 1 else None
        if self.auth_user is not None:
            await self.reply("503 5.5.1 Error: already authenticated")
            return True
        if mech not in ("PLAIN", "LOGIN"):
            await self.reply("535 5.7.8 Error: authentication failed: Invalid authentication mechanism")
            return True
        try:
            if mech == "PLAIN":
                msg = initial if initial is not None else await self.answer("")
                if msg is None:
                    raise EOFError("cancel")
                _, user, pw = base64.b64decode(msg, validate=True).split(b"\0")
            else:
                user = initial if initial is not None else await self.answer("VXNlcm5hbWU6")
                if user is None:
                    raise EOFError("cancel")
                user = base64.b64decode(user, validate=True)
                pw = await self.answer("UGFzc3dvcmQ6")
                if pw is None:
                    raise EOFError("cancel")
                pw = base64.b64decode(pw, validate=True)
        except EOFError as e:
            if str(e) != "cancel":
                raise
            emit("AUTH", self.id, mech, "-", "cancel")
            await self.reply("501 5.7.0 Authentication aborted")
            return True
        except ValueError:
            await self.reply("501 5.5.2 Cannot decode response")
            return True
        user, pw = user.decode("utf-8", "replace"), pw.decode("utf-8", "replace")
        if self.srv.users.get(user) == pw:
            self.auth_user = user
            emit("AUTH", self.id, mech, user, "ok")
            await self.reply("235 2.7.0 Authentication successful")
        else:
            emit("AUTH", self.id, mech, user, "fail")
            await self.reply("535 5.7.8 Error: authentication failed: authentication failure")
        return True

    async def data(self):
        everyone = [self.mail_from] + self.rcpts
        hit = lambda kw: any(magic(a, kw) for a in everyone)
        if hit("reject-datacmd"):
            self.reset()
            await self.reply("554 5.7.0 DATA refused by policy")
            return True
        await self.reply("354 End data with <CR><LF>.<CR><LF>")
        if hit("drop-data"):
            # Close as soon as some of the message has arrived.
            if not self.buf:
                await self.fill()
            emit("DROP", self.id, "drop-data")
            self.w.transport.abort()
            return False
        raw, content = await self.read_data()
        emit("DATAEND", self.id, len(raw))
        if hit("drop-after-data"):
            emit("DROP", self.id, "drop-after-data")
            self.w.transport.abort()
            return False
        if hit("reject-data"):
            self.reset()
            await self.reply("554 5.6.0 Message content rejected")
            return True
        if hit("tempfail-data"):
            self.reset()
            await self.reply("451 4.3.0 Error: queue file write error")
            return True
        n = self.srv.save(self, raw, unstuff(content))
        emit("STORED", n, self.id)
        if hit("slow"):
            emit("SLOW", self.id, self.srv.args.slow)
            await asyncio.sleep(self.srv.args.slow)
        self.reset()
        await self.reply("250 2.0.0 Ok: queued as %d" % n)
        return True


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--store", required=True)
    ap.add_argument("--ehlo-ext", default="", help="extra EHLO keywords, e.g. SMTPUTF8,DSN")
    ap.add_argument("--slow", type=float, default=3.0, help="delay of the slow@ end-of-data reply")
    ap.add_argument("--auth", default="", help="USER:PASS,...: offer AUTH PLAIN LOGIN for these")
    ap.add_argument("--eml", "--store-dir-only", dest="eml", action="store_true",
                    help="also write each message as DIR/<n>.eml for people to read")
    args = ap.parse_args()
    os.makedirs(args.store, exist_ok=True)
    srv = Server(args)

    async def handle(reader, writer):
        await Session(srv, reader, writer).run()

    server = await asyncio.start_server(handle, args.host, args.port, backlog=1024,
                                        limit=CMD_LINE_MAX * 2)
    port = server.sockets[0].getsockname()[1]
    emit("READY", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
