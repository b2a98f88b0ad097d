"""metrics_listen: /metrics in the Prometheus text format (checked by Debian's
promtool, scraped by a real Prometheus server), /healthz and /readyz, one view
across the workers. The counts are checked against the decision lines the
same traffic wrote to the log."""

import collections
import concurrent.futures
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import json

import pytest

from checkslib import RCPT, simple_message, stored_message
from moatlib import DEFAULT_TIMEOUT, Backend, SMTPClient, WaitTimeout, free_port

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def http(port, path, method="GET", raw=None, timeout=DEFAULT_TIMEOUT):
    """(status, headers text, body bytes) of one request; raw: the bytes to send."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw if raw is not None else
                  ("%s %s HTTP/1.1\r\nHost: moat\r\n\r\n" % (method, path)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode(), body


def scrape(port):
    status, head, body = http(port, "/metrics")
    assert status == 200, (status, body)
    assert "text/plain; version=0.0.4" in head
    return body.decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text):
    """{(name, ((label, value), ...)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(s, name, **labels):
    return s.get((name, tuple(sorted(labels.items()))), 0.0)


def metrics_moat(moat_factory, **keys):
    """A moat with metrics_listen, once the backend has answered its start-up probe."""
    port = free_port()
    m = moat_factory(metrics_listen="127.0.0.1:%d" % port, **keys)
    m.metrics_port = port
    m.wait_log(lambda l: l.get("event") == "metrics_listening", what="metrics_listening")
    m.wait_log(lambda l: l.get("event") == "readiness" and l.get("level") == "info", what="backend answers")
    return m


def decision_counts(m):
    """(stage, action, rule_id) -> decision lines in moat's log."""
    return collections.Counter((l["stage"], l["action"], l.get("rule_id", ""))
                               for l in m.decisions())


def metric_decisions(s):
    out = collections.Counter()
    for (name, labels), v in s.items():
        if name == "moat_decisions_total":
            d = dict(labels)
            out[(d["stage"], d["action"], d["rule"])] = int(v)
    return out


def traffic(m, backend, n_ok=2, n_relay_denied=3):
    """n_ok messages delivered; n_relay_denied RCPTs refused by the rule
    relay-denied (a domain not ours). The bytes of the delivered messages."""
    size = 0
    for k in range(n_ok):
        msg = simple_message("metrics %d" % k)
        with SMTPClient(m.port) as c:
            c.ehlo()
            r = c.transaction("alice@example.org", [RCPT], msg)
            stored_message(backend, r)
            size += len(msg)
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.org>", 250)
        for k in range(n_relay_denied):
            c.expect("RCPT TO:<user%d@elsewhere.example>" % k, 554)
        c.expect("QUIT", 221)
    m.wait_session_end(n_ok + 1)
    return size


def test_live_scrape_passes_promtool_and_matches_the_log(moat_factory, backend):
    if not PROMTOOL:
        pytest.skip("promtool not installed (Debian package prometheus)")
    m = metrics_moat(moat_factory)
    size = traffic(m, backend)
    text = scrape(m.metrics_port)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert p.returncode == 0, (p.stdout, p.stderr, text)
    s = samples(text)
    # every decision line of the log is counted once, by stage, action and rule id
    assert metric_decisions(s) == decision_counts(m)
    assert value(s, "moat_decisions_total", stage="rcpt", action="reject", rule="relay-denied") == 3
    assert value(s, "moat_messages_relayed_total") == 2
    assert value(s, "moat_relayed_bytes_total") == size
    assert value(s, "moat_connections_accepted_total", listener="smtp") == 3
    assert value(s, "moat_sessions_active") == 0
    assert value(s, "moat_workers") == 1
    # SPF and the sender-domain check ran for each MAIL, through the DNS cache
    assert value(s, "moat_check_results_total", check="spf", result="pass") == 3
    assert value(s, "moat_check_results_total", check="sender-check", result="pass") == 3
    assert value(s, "moat_dns_cache_misses_total") >= 1
    assert value(s, "moat_dns_cache_hits_total") >= 1
    assert 0 < value(s, "moat_dns_query_duration_seconds_count") <= value(s, "moat_dns_cache_misses_total")
    assert value(s, "moat_backend_reply_duration_seconds_count") > 0
    assert value(s, "moat_backend_reply_duration_seconds_bucket", le="+Inf") == \
        value(s, "moat_backend_reply_duration_seconds_count")
    # a SIGHUP: one successful reload
    m.signal(signal.SIGHUP)
    m.wait_log(lambda l: l.get("event") == "reload", what="reload line")
    s = samples(scrape(m.metrics_port))
    assert value(s, "moat_config_reloads_total", result="success") == 1
    assert value(s, "moat_config_reloads_total", result="failure") == 0


def test_sessions_active_and_refusals(moat_factory, backend):
    m = metrics_moat(moat_factory, max_connections_per_ip=1)
    with SMTPClient(m.port) as c:
        c.ehlo()
        s = samples(scrape(m.metrics_port))
        assert value(s, "moat_sessions_active") == 1
        with SMTPClient(m.port) as c2:  # the banner is the refusal (the next line came only from
            # the first client's command timeout, 10 s later: a flake under load)
            assert c2.banner.code == 421 and "too many connections" in c2.banner.text
        m.wait_log(lambda l: l.get("reason") == "too many connections from this address", what="refusal")
        s = samples(scrape(m.metrics_port))
        assert value(s, "moat_connections_refused_total", reason="max_connections_per_ip") == 1
        assert value(s, "moat_connections_accepted_total", listener="smtp") == 2


def test_http_endpoints(moat_factory, backend):
    m = metrics_moat(moat_factory)
    port = m.metrics_port
    assert http(port, "/healthz")[0] == 200
    status, head, body = http(port, "/readyz")
    assert (status, body) == (200, b"ready\n")
    assert "Connection: close" in head
    assert http(port, "/")[0] == 404
    assert http(port, "/metrics/x")[0] == 404
    assert http(port, "/metrics?x=1")[0] == 200
    assert http(port, "/metrics", method="POST")[0] == 405
    status, head, body = http(port, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and "Content-Length: " in head
    assert http(port, None, raw=b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")[0] == 400
    assert http(port, None, raw=b"GET /metrics SMTP/2.0\r\n\r\n")[0] == 400
    # a head larger than 4096 bytes: 431, and the connection closes
    big = b"GET /metrics HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 5000 + b"\r\n\r\n"
    assert http(port, None, raw=big)[0] == 431
    # a client that sends nothing holds only its own connection
    with socket.create_connection(("127.0.0.1", port)) as idle:
        idle.sendall(b"GET /metr")
        assert http(port, "/healthz")[0] == 200
        # and the SMTP side goes on
        with SMTPClient(m.port) as c:
            c.ehlo()
            r = c.transaction("alice@example.org", [RCPT], simple_message("while a scrape hangs"))
            assert r.code == 250
        # it is dropped after MOAT_HTTP_TIMEOUT (5 s)
        idle.settimeout(DEFAULT_TIMEOUT)
        assert idle.recv(100) == b""


def test_readiness_follows_the_backend(moat_factory, tmp_path):
    b = Backend(tmp_path / "be1")
    port = b.port
    m = metrics_moat(moat_factory, _backend=b, backend_probe_interval=1)
    try:
        assert http(m.metrics_port, "/readyz")[0] == 200
        b.stop()
        # no traffic: the probe finds out
        m.wait_log(lambda l: l.get("event") == "readiness" and l.get("level") == "warning",
                   what="not ready line")
        status, _, body = http(m.metrics_port, "/readyz")
        assert status == 503, body
        assert http(m.metrics_port, "/healthz")[0] == 200  # alive, only not ready
        assert samples(scrape(m.metrics_port))[("moat_backend_up", ())] == 0
        start = len(m.logs.snapshot())
        b = Backend(tmp_path / "be2", port=port)
        m.wait_log(lambda l: l.get("event") == "readiness" and l.get("level") == "info",
                   what="ready again line", start=start)
        assert http(m.metrics_port, "/readyz")[0] == 200
    finally:
        b.stop()


def test_ready_when_a_backend_of_the_list_answers(moat_factory, backend):
    """A failover list: the first backend down, the second answers: ready,
    and no not-ready line on the way."""
    m = metrics_moat(moat_factory, backend="127.0.0.1:%d, 127.0.0.1:%d" % (free_port(), backend.port),
                     backend_probe_interval=1)
    assert http(m.metrics_port, "/readyz")[0] == 200
    with SMTPClient(m.port) as c:
        c.ehlo()
        assert c.transaction("alice@example.org", [RCPT], simple_message("failover")).code == 250
    m.wait_session_end(1)
    assert http(m.metrics_port, "/readyz")[0] == 200
    assert not [l for l in m.log_lines(event="readiness") if l.get("level") != "info"]


def test_not_ready_while_draining(moat_factory, backend):
    m = metrics_moat(moat_factory, shutdown_grace=10)
    assert http(m.metrics_port, "/readyz")[0] == 200
    with SMTPClient(m.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.org>", 250)
        m.signal(signal.SIGTERM)
        m.wait_log(lambda l: l.get("event") == "shutdown", what="shutdown line")
        status, _, body = http(m.metrics_port, "/readyz")
        assert status == 503 and b"stopping" in body
        assert http(m.metrics_port, "/healthz")[0] == 200
        c.expect("RCPT TO:<%s>" % RCPT, 250)
    # the last session over, moat exits by itself
    assert m.wait_exit() == 0


def test_metrics_off_by_default(moat_factory, backend):
    m = moat_factory()
    assert not m.log_lines(event="metrics_listening")


def test_workers_give_one_view_that_survives_a_restart(moat_factory, backend):
    m = metrics_moat(moat_factory, workers=3, max_connections_per_ip=200, check_spf="no",
                     check_sender_domain="no", check_dkim="no")
    m.logs.wait_count(lambda l: l.get("event") == "ready", 3, what="3 ready lines")

    def one(k):
        with SMTPClient(m.port) as c:
            c.ehlo()
            return c.transaction("alice@example.org", [RCPT], simple_message("w%d" % k)).code

    with concurrent.futures.ThreadPoolExecutor(max_workers=45) as pool:
        assert list(pool.map(one, range(45))) == [250] * 45
    ends = m.wait_session_end(45)
    assert len({l["worker"] for l in ends}) >= 2
    want = decision_counts(m)
    # whichever worker answers, the counts are the totals of all of them
    for _ in range(6):
        s = samples(scrape(m.metrics_port))
        assert value(s, "moat_connections_accepted_total", listener="smtp") == 45
        assert value(s, "moat_messages_relayed_total") == 45
        assert metric_decisions(s) == want
        assert value(s, "moat_workers") == 3
    # a worker killed: restarted, counted, and the counts stay
    pid = int(m.log_lines(event="ready")[0]["msg"].split("pid ")[1].split(",")[0])
    start = len(m.logs.snapshot())
    os.kill(pid, signal.SIGKILL)
    m.wait_log(lambda l: l.get("event") == "ready", start=start, what="restarted worker ready")
    s = samples(scrape(m.metrics_port))
    assert value(s, "moat_worker_restarts_total") == 1
    assert value(s, "moat_messages_relayed_total") == 45
    assert value(s, "moat_workers") == 3
    assert http(m.metrics_port, "/healthz")[0] == 200
    assert http(m.metrics_port, "/readyz")[0] == 200


def prom_query(port, q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    with urllib.request.urlopen(url, timeout=5) as r:
        data = json.load(r)
    assert data["status"] == "success", data
    return data["data"]["result"]


def wait_for(cond, timeout, what):
    """Poll cond() (a query of another process) until it holds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except (OSError, urllib.error.URLError) as e:
            last = e
        time.sleep(0.2)
    raise WaitTimeout("%s: not within %ss (last: %r)" % (what, timeout, last))


def test_a_prometheus_server_scrapes_moat(moat_factory, backend, tmp_path):
    if not PROMETHEUS:
        pytest.skip("prometheus not installed (Debian package prometheus)")
    m = metrics_moat(moat_factory)
    traffic(m, backend, n_ok=1, n_relay_denied=4)
    web = free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: moat\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % m.metrics_port)
    prom = subprocess.Popen([PROMETHEUS, "--config.file=%s" % conf, "--storage.tsdb.path=%s" % (tmp_path / "data"),
                             "--web.listen-address=127.0.0.1:%d" % web, "--log.level=warn"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up():
            r = prom_query(web, 'up{job="moat"}')
            return r and r[0]["value"][1] == "1"
        wait_for(up, 60, "Prometheus scraped moat")
        q = 'moat_decisions_total{job="moat",stage="rcpt",action="reject",rule="relay-denied"}'
        r = wait_for(lambda: prom_query(web, q), 30, "the decisions in Prometheus")
        assert [x["value"][1] for x in r] == ["4"]
        r = prom_query(web, 'sum(moat_messages_relayed_total{job="moat"})')
        assert r[0]["value"][1] == "1"
        r = prom_query(web, 'sum by (action) (moat_decisions_total{job="moat",stage="data"})')
        assert {x["metric"]["action"]: x["value"][1] for x in r} == {"accept": "1"}
    finally:
        prom.terminate()
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
