#!/usr/bin/python3
"""spf_suite.py - the openspf.org RFC 7208 test suite (YAML) as lines for
tests/unit/test_spf.c, which runs this script and reads its stdout.

    spf_suite.py [SUITE.yml] [-o OUT]

Default input: spf_suite_rfc7208.yml next to this script. Needs python3-yaml.

Output, one item per line, tab-separated, every field escaped (\\\\, \\t, \\n,
\\r, \\xHH for other bytes outside 0x20..0x7e):

    S  <scenario number> <description>
    Z  <name> <TYPE> <field>...      TYPE: A AAAA MX TXT SPF PTR CNAME TIMEOUT
                                     MX: <pref> <host>; TXT, SPF: one field per string
    T  <id> <host> <helo> <mailfrom> <result[,result...]> <has_exp 0|1> <explanation>

The zone records of a name keep the suite's order, and the SPF-to-TXT copy
the suite drivers make is done here (pyspf test/testspf.py getrdata): a name
without any TXT entry also gets a TXT record for each SPF one, at the end;
"NONE" values are left out.
"""
import os
import sys

try:
    import yaml
except ImportError:
    sys.stderr.write("spf_suite.py: python3-yaml is missing (apt-get install python3-yaml)\n")
    sys.exit(2)


def to_bytes(v):
    if isinstance(v, bytes):
        return v
    s = str(v)
    try:
        return s.encode("latin-1")   # "\xEF" in YAML means the byte 0xEF
    except UnicodeEncodeError:
        return s.encode("utf-8")


def esc(v):
    out = []
    for b in to_bytes(v):
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0x09:
            out.append("\\t")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x0D:
            out.append("\\r")
        elif 0x20 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append("\\x%02X" % b)
    return "".join(out)


def line(*fields):
    return "\t".join(esc(f) for f in fields) + "\n"


def rdata(recs):
    """Zone entries of one name as (TYPE, [fields]), in order."""
    gen = not any(isinstance(r, dict) and "TXT" in r for r in recs)
    out, copies = [], []
    for r in recs:
        if not isinstance(r, dict):
            out.append((str(r), []))          # TIMEOUT
            continue
        for t, v in r.items():
            if v == "NONE":
                continue
            if t in ("TXT", "SPF"):
                strings = v if isinstance(v, list) else [v]
                out.append((t, strings))
                if t == "SPF" and gen:
                    copies.append(("TXT", strings))
            elif t == "MX":
                out.append((t, [v[0], v[1]]))
            else:
                out.append((t, [v]))
    return out + copies


def main():
    args = sys.argv[1:]
    outfile = None
    if "-o" in args:
        i = args.index("-o")
        outfile = args[i + 1]
        del args[i:i + 2]
    src = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "spf_suite_rfc7208.yml")
    with open(src, "rb") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    buf = []
    for n, d in enumerate(docs, 1):
        buf.append(line("S", n, d.get("description", "scenario %d" % n)))
        for name, recs in d.get("zonedata", {}).items():
            for t, fields in rdata(recs):
                buf.append(line("Z", name, t, *fields))
        for tid, t in d["tests"].items():
            res = t["result"]
            res = ",".join(res) if isinstance(res, list) else res
            has_exp = "explanation" in t
            buf.append(line("T", tid, t["host"], t["helo"], t["mailfrom"], res,
                            int(has_exp), t.get("explanation", "")))
    text = "".join(buf)
    if outfile:
        with open(outfile, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
