"""`moat -t -c FILE` validates a config: exit 0, or "FILE:LINE: message" on
stderr and a non-zero exit."""

import os
import re
import subprocess

import pytest

from conftest import require_moat
from moatlib import MOAT_BIN, run_moat_t

GOOD = [
    "listen = 127.0.0.1:0",
    "backend = 127.0.0.1:2526",
    "hostname = mx.test.example",
    "local_domains = example.test",
    "log = stderr",
    # -t checks what a start needs, as the user it runs as: started as root
    # (the tests run as root), that takes a user or this
    "run_as_root = yes",
]


@pytest.fixture(autouse=True)
def _need_moat():
    require_moat()


def write(tmp_path, lines, name="moat.conf"):
    p = tmp_path / name
    p.write_text("".join(l + "\n" for l in lines))
    return p


def test_good_minimal_config(tmp_path):
    r = run_moat_t(write(tmp_path, GOOD))
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def test_good_full_config(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = GOOD + [
        "trusted_networks = 10.0.0.0/8, 192.168.0.0/16, ::1, 2001:db8::/32",
        "dns_servers = 127.0.0.1:5353",
        "proxy_protocol = no",
        "spool_dir = %s" % spool,
        "max_message_size = 20000000",
        "max_recipients = 50",
        "max_connections = 500",
        "max_connections_per_ip = 10",
        "command_timeout = 60",
        "data_timeout = 120",
        "shutdown_grace = 10",
    ]
    r = run_moat_t(write(tmp_path, lines))
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def test_comments_and_blank_lines(tmp_path):
    lines = ["# moat config", ""] + GOOD[:2] + ["   ", "  # indented comment"] + GOOD[2:]
    r = run_moat_t(write(tmp_path, lines))
    assert r.returncode == 0, r.stderr.decode(errors="replace")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_t_as_root_needs_a_user(tmp_path):
    """A start as root without user = and run_as_root refuses to run: -t says so too."""
    r = run_moat_t(write(tmp_path, [l for l in GOOD if not l.startswith("run_as_root")]))
    assert r.returncode == 1, r
    assert b"refusing to run as root: set user = (e.g. moat) or run_as_root = yes" in r.stderr, r


def test_t_does_not_start_serving(tmp_path):
    """-t exits by itself (run_moat_t has a timeout) and writes no log of a listener."""
    r = run_moat_t(write(tmp_path, GOOD))
    assert r.returncode == 0
    assert b'"listening"' not in r.stderr


BAD = [
    ("unknown key", "no_such_key = 1"),
    ("listen not an address", "listen = nowhere"),
    ("backend port missing/bad", "backend = 127.0.0.1:99999"),
    ("backend hostname", "backend = mail.example.org:25"),
    ("max_message_size not a number", "max_message_size = ten"),
    ("max_message_size negative", "max_message_size = -1"),
    ("max_recipients zero", "max_recipients = 0"),
    ("max_recipients trailing junk", "max_recipients = 10x"),
    ("command_timeout overflow", "command_timeout = 99999999999999999999"),
    ("proxy_protocol not a boolean", "proxy_protocol = maybe"),
    ("trusted_networks bad cidr", "trusted_networks = 10.0.0.0/33"),
    ("dns_servers garbage", "dns_servers = not-an-ip"),
    ("line without =", "listen 127.0.0.1:25"),
    ("empty key", "= 5"),
]


@pytest.mark.parametrize("line", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_line_reports_file_and_line(tmp_path, line):
    lines = GOOD[:3] + [line] + GOOD[3:]  # the bad line is line 4
    p = write(tmp_path, lines)
    r = run_moat_t(p)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, "moat -t accepted %r" % line
    assert "%s:4:" % p in err, "expected '%s:4: ...' on stderr, got %r" % (p, err)
    assert re.search(r":4: \S", err), err


def test_error_on_later_line(tmp_path):
    lines = GOOD + ["", "max_recipients = 5", "bogus = yes"]
    p = write(tmp_path, lines)
    r = run_moat_t(p)
    assert r.returncode != 0
    assert "%s:%d:" % (p, len(lines)) in r.stderr.decode(errors="replace"), r.stderr


def test_missing_file(tmp_path):
    r = run_moat_t(tmp_path / "does-not-exist.conf")
    assert r.returncode != 0
    assert b"does-not-exist.conf" in r.stderr


def test_bad_config_without_t_fails_to_start(tmp_path):
    p = write(tmp_path, GOOD[:2] + ["max_recipients = lots"] + GOOD[2:])
    r = subprocess.run([MOAT_BIN, "-c", str(p)], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert ("%s:3:" % p).encode() in r.stderr, r.stderr
