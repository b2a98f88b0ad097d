#!/usr/bin/env python3
"""The speed of `moat report`: MB of log per second, plain and gzip.

    tests/bench/report_bench.py --moat build/moat [--mb 512] [--out build/bench/report.json]

Generates a realistic log (tests/e2e/reportlog.py: a busy day of moat's
decision, rule and session_end lines, the fields as moat writes them) of
--mb megabytes in a temporary directory (less if the disk has not room for
it and its gzip copy three times over), compresses it (gzip -6, as
logrotate does), then runs moat report over it: the text summary, the JSON
summary, a filter that prints sessions, and the gzip copy. Each case runs
REPORT_BENCH_ROUNDS times (default 3); the best and the median are
reported, as MB of log (uncompressed) per second of wall time, with MB per
CPU second (user + system, all threads: what a busy machine cannot take
away) and the peak RSS of the run (the memory bound does not depend on the
log's size).
"""

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import reportlog  # noqa: E402


def vm_hwm(pid):
    """The peak RSS (KiB) of a running process, 0 once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(argv):
    """Wall seconds, CPU seconds (user + system, every thread) and peak RSS
    (KiB) of one run, output discarded. The peak is read from /proc while
    it runs (VmHWM): getrusage's would count the forked copy of this
    interpreter before the exec."""
    with tempfile.TemporaryFile() as err:
        t = time.monotonic()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        hwm = 0
        while True:
            got, status, ru = os.wait4(pid, os.WNOHANG)
            if got:
                break
            hwm = max(hwm, vm_hwm(pid))
            time.sleep(0.005)
        wall = time.monotonic() - t
        rc = os.waitstatus_to_exitcode(status)
        if rc not in (0, 1):
            err.seek(0)
            sys.exit("%s: exit %d: %s" % (" ".join(argv), rc, err.read().decode()[-500:]))
    return wall, ru.ru_utime + ru.ru_stime, hwm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moat", required=True)
    ap.add_argument("--mb", type=int, default=int(os.environ.get("REPORT_BENCH_MB", "512")))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "report.json"))
    args = ap.parse_args()
    rounds = int(os.environ.get("REPORT_BENCH_ROUNDS", "3"))
    tmp = tempfile.mkdtemp(prefix="moat-report-bench-")
    try:
        free = shutil.disk_usage(tmp).free
        mb = min(args.mb, free // 3 // 1000000)
        if mb < args.mb:
            print("report bench: %d MB free in %s: a log of %d MB instead of %d" % (free // 1000000, tmp, mb,
                                                                                  args.mb))
        log = os.path.join(tmp, "moat.log")
        t = time.monotonic()
        with open(log, "wb") as f:
            lines = reportlog.generate(f, target_bytes=mb * 1000000, seed=1)
        size = os.path.getsize(log)
        print("report bench: generated %d lines, %.1f MB in %.1f s" % (lines, size / 1e6, time.monotonic() - t))
        t = time.monotonic()
        with open(log, "rb") as src, gzip.open(log + ".gz", "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        gz = os.path.getsize(log + ".gz")
        print("report bench: gzip -6: %.1f MB in %.1f s" % (gz / 1e6, time.monotonic() - t))
        cases = [
            ("plain, text", [args.moat, "report", log]),
            ("plain, --json", [args.moat, "report", "--json", log]),
            ("plain, --html", [args.moat, "report", "--html", os.path.join(tmp, "r.html"), log]),
            ("plain, --sender @example.org (sessions printed)", [args.moat, "report", "--sender", "@example.org",
                                                                 log]),
            ("gzip, text", [args.moat, "report", log + ".gz"]),
        ]
        results = []
        print("\n  %-50s %10s %10s %12s %10s" % ("case (%.0f MB of log)" % (size / 1e6), "best MB/s", "median",
                                                "MB/CPU-s", "peak RSS"))
        for name, argv in cases:
            runs = [run(argv) for _ in range(rounds)]
            walls = sorted(w for w, _, _ in runs)
            cpu = min(c for _, c, _ in runs)
            rss = max(r for _, _, r in runs)
            best, median = size / 1e6 / walls[0], size / 1e6 / walls[len(walls) // 2]
            print("  %-50s %10.0f %10.0f %12.0f %7.1f MB" % (name, best, median, size / 1e6 / cpu, rss / 1024))
            results.append({"case": name, "mb_per_s_best": round(best, 1), "mb_per_s_median": round(median, 1),
                            "mb_per_cpu_s": round(size / 1e6 / cpu, 1), "seconds": walls, "peak_rss_kib": rss})
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"log_bytes": size, "gzip_bytes": gz, "lines": lines, "results": results}, f, indent=1)
        print("\nreport bench: written to %s" % args.out)
        slow = [r["case"] for r in results if r["mb_per_s_best"] < 100]
        if slow:
            print("report bench: under 100 MB/s: %s" % ", ".join(slow))
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
