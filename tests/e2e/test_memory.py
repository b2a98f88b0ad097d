"""A large message is spooled to a file beyond 256 KiB: a 50 MB message
never costs moat 50 MB of memory, and it still arrives byte for byte."""

import hashlib

from moatlib import SMTPClient, sanitized

SIZE = 50 * 1024 * 1024


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_50mb_message_memory_bounded(moat_factory, backend):
    m = moat_factory(max_message_size=str(SIZE + 1024 * 1024), check_dkim="no")
    line = b"x" * 998 + b"\r\n"
    body = b"Subject: fifty megabytes\r\n\r\n" + line * (SIZE // len(line))
    before = vm_hwm_kib(m.proc.pid)
    with SMTPClient(m.port, timeout=120) as c:
        c.ehlo()
        r = c.transaction("alice@example.org", ["bob@example.test"], body, timeout=120)
        assert r.code == 250, r
    [msg] = backend.wait_stored(1, timeout=120)
    assert msg.data.endswith(body)
    assert hashlib.sha256(msg.data[-len(body):]).digest() == hashlib.sha256(body).digest()
    if sanitized(m.proc.pid):
        return  # delivery checked above; the memory bound is the plain build's
    grown = vm_hwm_kib(m.proc.pid) - before
    # Memory spool bound 256 KiB plus buffers: far below the message's 50 MiB.
    print("peak RSS grew by %d KiB for a 50 MiB message" % grown)
    assert grown < 16 * 1024, "peak RSS grew by %d KiB for a 50 MiB message" % grown
