"""Shared by the Python benchmarks: record a figure for test/bench/run.sh's table."""

import json
import os
import statistics


def emit(id, figure, value, unit, target, met, flannel="", n=None, detail=""):
    """Print a figure and append it (JSON, one line) to $WEFT_BENCH_OUT when set."""
    row = {"id": id, "figure": figure, "n": n, "value": value, "unit": unit, "detail": detail,
           "target": target, "met": bool(met), "flannel": flannel}
    print(f"BENCH {id}: {value} {unit} ({detail}) target {target}: {'met' if met else 'NOT met'}",
          flush=True)
    path = os.environ.get("WEFT_BENCH_OUT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return row


def median(values):
    return statistics.median(values) if values else float("nan")
