#!/usr/bin/env python3
"""Issue #8's "API back after an outage -> the next Node change applied on every node".

    WEFT_BUILD_DIR=build python3 test/bench/api/bench_api_outage.py [--rounds N] [--outage S]

A 3-node lab whose API test double keeps its state in a file. Each round takes the API away for
--outage seconds -- alternately stopped (SIGTERM, then started again on its state) and its link
cut (every packet dropped in the API's namespace, no reset) -- and, as soon as it is back,
creates a Node with a weft subnet. The figure is the time from that create request to the
route being seen on the last of the 3 nodes (`ip monitor route` in each node's namespace), a
median over the rounds; the time from "API back" to the create request is in `detail`.
The lab is removed in `finally`; nothing touches the root namespace.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "e2e"))
from benchlib import emit, median  # noqa: E402
import test_drills_api as drills  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=6, help="outages (half stops, half link cuts)")
    p.add_argument("--outage", type=float, default=5.0, help="seconds the API is away")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench_api_outage.py: run as root (it creates network namespaces)")
    d = drills.ApiLab("ba", nodes=3, pods=0)
    results = {"stop": [], "cut": []}
    gaps = []
    try:
        d.up()
        time.sleep(3)  # a couple of bookmarks: every watch knows the server's cadence
        for i in range(args.rounds):
            kind = "stop" if i % 2 == 0 else "cut"
            peer, subnet = d.new_peer(i + 1)
            if kind == "stop":
                d.stop_api()
                bring_back = d.start_api
            else:
                d.cut_link()
                bring_back = d.restore_link
            time.sleep(args.outage)
            back, sent, latency = d.back_and_create(bring_back, peer, subnet)
            missing = [n for n, ms in latency.items() if ms is None]
            if missing:
                raise SystemExit(f"round {i + 1} ({kind}): {subnet} never routed on {missing}")
            worst = max(latency.values())
            results[kind].append(worst)
            gaps.append((sent - back) * 1000)
            print(f"round {i + 1} ({kind} {args.outage:g} s): create sent {gaps[-1]:.0f} ms after the "
                  f"API was back; routed on all 3 nodes {worst:.0f} ms after it "
                  f"({', '.join(f'{n} {ms:.0f}' for n, ms in sorted(latency.items()))})", flush=True)
            time.sleep(3)
    finally:
        d.down()
    every = results["stop"] + results["cut"]
    value = round(median(every))
    detail = (f"median of {len(every)} outages of {args.outage:g} s: API stopped {fmt(results['stop'])}, "
              f"link cut {fmt(results['cut'])}; create sent {statistics.median(gaps):.0f} ms (median) "
              f"after the API was back; {os.cpu_count()} cores")
    emit("api_back_latency_ms", "API back after an outage -> the next Node change applied on every node",
         value, "ms", "< 200 ms", value < 200, flannel="0.9-1.0 s", n=3, detail=detail)
    return 0


def fmt(values):
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


if __name__ == "__main__":
    sys.exit(main())
