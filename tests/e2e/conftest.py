"""Fixtures for moat's end-to-end tests.

    backend            a running tests/e2e/backend.py (port 0), its own store dir
    backend_factory    backend_factory(ehlo_ext="SMTPUTF8,DSN", slow=2, eml=False)
    moat               a running moat relaying to `backend`
    moat_factory       moat_factory(max_recipients=3, ...)   keys override the config
                       (a value of None drops the key); options start with "_":
                       _backend=<Backend|None> (None: nothing listens on the backend port),
                       _start=False (only write the config), _expect_rc=0 (None: any)
    dns                a loopback DNS server (session scope) that moat uses
    dns_factory        dns_factory(zone, servfail_domains=(), drop_domains=()): a
                       checkslib.ZoneDNS of the test's own (SERVFAIL, never-answering
                       names, CNAME, TXT/SPF...); point moat at it with dns_servers

At teardown every moat still running gets SIGTERM; the test fails if moat does
not exit 0 or if its stderr holds a sanitizer report.
"""

import os

import pytest

from fakedns import FakeDNS
from moatlib import (HOSTNAME, LOCAL_DOMAIN, MOAT_BIN, Backend, Moat, WaitTimeout,
                     free_port)

_DEFAULT = object()


def moat_available():
    return os.path.isfile(MOAT_BIN) and os.access(MOAT_BIN, os.X_OK)


def require_moat():
    if not moat_available():
        pytest.skip("moat binary not built: %s (run make, or set MOAT_BIN)" % MOAT_BIN)


@pytest.fixture(scope="session")
def dns():
    d = FakeDNS().start()
    yield d
    d.stop()


@pytest.fixture
def dns_factory():
    from checkslib import ZoneDNS
    made = []

    def make(zone=None, **kw):
        d = ZoneDNS(zone, **kw).start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def backend_factory(tmp_path):
    made = []

    def make(**kw):
        b = Backend(tmp_path / ("backend%d" % len(made)), **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def backend(backend_factory):
    return backend_factory()


def base_config(workdir, backend_addr, dns):
    spool = os.path.join(str(workdir), "spool")
    os.makedirs(spool, exist_ok=True)
    return {
        "listen": "127.0.0.1:0",
        "backend": backend_addr,
        "hostname": HOSTNAME,
        "local_domains": LOCAL_DOMAIN,
        "dns_servers": dns.servers,
        "log": "stderr",
        "spool_dir": spool,
        "shutdown_grace": "5",
        # The suite runs as root (CI) with files in root-only temp dirs.
        "run_as_root": "yes",
        # One process, so that a test sees every session's log and can read
        # its RSS; test_workers.py runs several.
        "workers": "1",
        # Backend connections end with their session, so that a test can
        # count them; test_relay.py and test_faults.py keep them cached.
        "backend_cache_time": "0",
    }


@pytest.fixture
def moat_factory(request, tmp_path, dns):
    made = []

    def make(_backend=_DEFAULT, _start=True, _expect_rc=0, **keys):
        require_moat()
        if "backend" in keys:
            addr = keys.pop("backend")
        elif _backend is None:
            addr = "127.0.0.1:%d" % free_port()
        else:
            be = request.getfixturevalue("backend") if _backend is _DEFAULT else _backend
            addr = "127.0.0.1:%d" % be.port
        wd = tmp_path / ("moat%d" % len(made))
        wd.mkdir()
        cfg = base_config(wd, addr, dns)
        for k, v in keys.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = str(v)
        if addr is not None:
            cfg["backend"] = addr
        m = Moat(cfg, wd)
        m.expect_rc = _expect_rc
        made.append(m)
        if _start:
            try:
                m.start()
            except Exception:
                m.expect_rc = None  # the start failure is the error to report
                raise
        return m

    yield make

    problems = []
    for m in made:
        if m.proc is None:
            continue
        try:
            rc = m.stop()
        except WaitTimeout as e:
            problems.append("%s\n%s" % (e, m.stderr_text()[-3000:]))
            continue
        if m.expect_rc is not None and rc != m.expect_rc:
            problems.append("moat exited %r, expected %r; stderr tail:\n%s" % (
                rc, m.expect_rc, m.stderr_text()[-3000:]))
        san = m.sanitizer_errors()
        if san:
            problems.append("sanitizer report in moat's stderr:\n%s\n---\n%s" % (
                "\n".join(san[:10]), m.stderr_text()[-8000:]))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def moat(moat_factory):
    return moat_factory()
