#!/usr/bin/env python3
"""Renders the benchmarks' JSON lines (test/bench/README.md) as a Markdown table.

    report.py RESULTS.jsonl [--out bench-results.md] [--load-before "0.10 0.20 0.30"]

Columns: figure | N | weft | target | met | flannel v0.24.2; the raw numbers behind each
figure follow the table. The header line gives the date, the core count, the kernel and the
load average (before the run when given, and now).
"""

import argparse
import datetime
import json
import os
import sys


def load_average():
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def shown(value, unit):
    if isinstance(value, float):
        value = f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.1f}"
    return f"{value} {unit}".strip()


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                print(f"report.py: {path}:{number}: not JSON ({e}); line skipped", file=sys.stderr)
    return rows


def render(rows, load_before=None, when=None):
    when = when or datetime.datetime.now().astimezone()
    load = f"load average {load_before} before, {load_average()} after" if load_before else \
        f"load average {load_average()}"
    out = [f"Benchmarks, {when:%Y-%m-%d %H:%M %Z}: {os.cpu_count()} cores (nproc), kernel "
           f"{os.uname().release}, {load}.", "",
           "| figure | N | weft | target | met | flannel v0.24.2 |",
           "| --- | ---: | ---: | --- | :---: | --- |"]
    for r in rows:
        n = "" if r.get("n") is None else f"{r['n']:,}"
        out.append("| " + " | ".join(cell(c) for c in (
            r.get("figure", r.get("id", "?")), n, shown(r.get("value"), r.get("unit", "")),
            r.get("target", ""), "yes" if r.get("met") else "**no**", r.get("flannel", ""))) + " |")
    details = [r for r in rows if r.get("detail")]
    if details:
        out += ["", "Raw numbers (same run):", ""]
        out += [f"- `{r.get('id', '?')}`: {r['detail']}" for r in details]
    if not rows:
        out += ["", "No figures were recorded: see the ctest output above."]
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description="Render benchmark JSON lines as a Markdown table")
    p.add_argument("results", help="the JSON lines file ($WEFT_BENCH_OUT)")
    p.add_argument("--out", help="write the table here too")
    p.add_argument("--load-before", help="the load average when the run started")
    args = p.parse_args(argv)
    text = render(read_rows(args.results) if os.path.exists(args.results) else [], args.load_before)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
