#!/usr/bin/env python3
"""Issue #18: N weftd processes (lab nodes without pods) against one real kube-apiserver.

    bench_scale.py --nodes 50 [--build-dir DIR] [--idle-seconds 60] [--outage-seconds 30]
                   [--baseline-seconds 20] [--stagger-ms 0] [--keep]

The lab of test/lab/lab.py with `--api real` and no controller-manager (its own watches would
count as weftd's): etcd + kube-apiserver 1.20.2 in <p>-api, the manifests' RBAC, N lab nodes
<p>-nK (a veth to the underlay bridge, a Node object, weftd on the lab's ServiceAccount
kubeconfig, no pods). SubnetMax is raised to 10.244.255.0 so that 200 nodes can lease.

Phases, each measured on the API server:
  baseline  the control plane alone, before any weftd (its own background CPU)
  start     the first weftd spawned -> every weftd logged "reconcile: N-1 peers programmed"
            (then checked in every namespace's kernel tables, outside the phase)
  idle      --idle-seconds of nothing
  outage    kube-apiserver SIGKILLed, started again --outage-seconds later on the same etcd,
            until /readyz and every weftd's watch is open again (apiserver_longrunning_gauge
            counts N node watches)
Per phase: kube-apiserver and etcd CPU seconds (utime+stime of /proc/PID/stat; after the
restart, the new process's from its start), the requests on resource nodes by verb
(apiserver_request_total deltas; watches started = ended + still open, see bench_daemon.py),
TCP connection attempts to :6443 (SYNs, an nft counter in the API namespace), established
connections from the nodes at the phase's end, and the weftd processes' own CPU; each divided
by N. Everything is removed in `finally` (Lab.down: processes, then every <p>-* namespace).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "test", "lab"))
sys.path.insert(0, os.path.join(ROOT, "test", "bench", "daemon"))
sys.path.insert(0, os.path.join(ROOT, "test", "bench"))
import lab as labmod  # noqa: E402
from bench_daemon import (RECONCILE_RE, REQUEST_RE, BenchError, count_entries, cpu_seconds,  # noqa: E402
                          labels, node_requests, open_node_watches, parse_ts, real_api_metrics)
from benchlib import emit  # noqa: E402

NFT_TABLE = "weftscale"
NO_TARGET = "none (issue #18 asks for the figure)"


class ScaleLab(labmod.Lab):
    """The lab with room for 200 leases and an nft counter of connection attempts to the API."""

    subnet_max = "10.244.255.0"

    def __init__(self, name, build_dir):
        super().__init__(name, build_dir, api="real")
        self.cp = None
        self.procs = {}  # node -> Popen of its weftd
        self.log_offsets = {}  # node -> bytes of its weftd.log already read

    def setup(self, n):
        self.save()
        self.create_underlay()
        self.start_real_api(controller_manager=False)
        self.cp = self.control_plane()  # for /metrics (the lab's tokens)
        labmod.in_ns(self.ns("api"), "nft", "-f", "-", input_text=(
            f"table inet {NFT_TABLE} {{\n"
            "  counter connects { }\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            # The nodes' attempts only: this script's curl runs in the API namespace.
            f"    ip saddr 192.0.2.0/24 ip saddr != {labmod.API_IP} tcp dport 6443 "
            "tcp flags & (syn | ack) == syn counter name connects\n"
            "  }\n"
            "}\n"))
        for i in range(1, n + 1):
            self.add_node(i, start=False)

    def pid(self, role):
        return self.state["pids"].get(f"cp-{role}")

    def syn_count(self):
        out = labmod.in_ns(self.ns("api"), "nft", "-j", "list", "counter", "inet", NFT_TABLE, "connects",
                           capture=True).stdout
        return next(o["counter"]["packets"] for o in json.loads(out)["nftables"] if "counter" in o)

    def node_connections(self):
        """(established connections to :6443 from the nodes, distinct nodes connected)."""
        out = labmod.in_ns(self.ns("api"), "ss", "-Htn", "state", "established", "( sport = :6443 )",
                           capture=True).stdout
        # Go listens on [::]: IPv4 clients show as [::ffff:192.0.2.K]:PORT.
        peers = [line.split()[-1].rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:")
                 for line in out.splitlines() if line.split()]
        nodes = [p for p in peers if p.startswith("192.0.2.") and p != labmod.API_IP]
        return len(nodes), len(set(nodes))

    def start_all(self, stagger):
        for node in sorted(self.state["nodes"], key=lambda k: self.state["nodes"][k]["index"]):
            self.procs[node] = self.start_weftd(node)
            if stagger:
                time.sleep(stagger)

    def check_alive(self):
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise labmod.LabError(f"weftd exited on {len(dead)} nodes {sorted(dead.items())[:5]}: "
                                  f"see {self.dir}/NODE/weftd.log")

    def programmed_at(self, node, peers):
        """Wall-clock time of the node's first "reconcile: <peers> peers programmed", or None.
        Reads on from where the last call stopped (200 logs are polled twice a second)."""
        with open(os.path.join(self.node_dir(node), "weftd.log"), "rb") as f:
            f.seek(self.log_offsets.get(node, 0))
            text = f.read()
        complete = text.rfind(b"\n") + 1
        self.log_offsets[node] = self.log_offsets.get(node, 0) + complete
        for line in text[:complete].decode(errors="replace").splitlines():
            m = RECONCILE_RE.match(line)
            if m and int(m.group(2)) == peers:
                return parse_ts(m.group(1))
        return None

    def api_errors(self, nodes):
        """weft_kube_api_errors_total summed over `nodes` (from each weftd's /metrics)."""
        total = 0
        for node in nodes:
            out = labmod.in_ns(self.state["nodes"][node]["ns"], "curl", "-sf", "--max-time", "2",
                               f"http://127.0.0.1:{labmod.HEALTHZ_PORT}/metrics", capture=True).stdout
            total += sum(float(line.split()[-1]) for line in out.splitlines()
                         if line.startswith("weft_kube_api_errors_total"))
        return total

    def kernel_counts(self):
        """node -> (routes, neighbors, FDB entries) weftd keeps in its namespace."""
        return {node: count_entries(info["ns"]) for node, info in self.state["nodes"].items()}


def failed_node_requests(metrics):
    """"VERB CODE" -> count of the node requests the server answered with a code other than 2xx."""
    out = {}
    for lab, value in REQUEST_RE.findall(metrics):
        lab = labels(lab)
        if lab.get("resource") == "nodes" and not lab.get("code", "").startswith("2"):
            key = f"{lab.get('verb', '').lower()} {lab.get('code')}"
            out[key] = out.get(key, 0) + int(float(value))
    return out


class Snapshot:
    """The counters at one moment; `api_cpu` and `verbs` belong to the running kube-apiserver."""

    def __init__(self, lab):
        self.t = time.monotonic()
        metrics = real_api_metrics(lab.cp)
        self.verbs = node_requests(metrics)
        self.failed = failed_node_requests(metrics)
        self.watches = open_node_watches(metrics)
        self.api_cpu = cpu_seconds(lab.pid("kube-apiserver"))
        self.etcd_cpu = cpu_seconds(lab.pid("etcd"))
        self.weftd_cpu = sum(cpu_seconds(p.pid) for p in lab.procs.values() if p.poll() is None)
        self.syn = lab.syn_count()
        self.conns, self.connected = lab.node_connections()


class Phase:
    """What one phase cost, summed over segments (the outage has one per kube-apiserver)."""

    def __init__(self, name, n):
        self.name, self.n = name, n
        self.seconds = self.api_cpu = self.etcd_cpu = self.weftd_cpu = 0.0
        self.syn = 0
        self.verbs, self.failed = {}, {}
        self.end = None
        self.notes = []

    def add(self, a, b, api_from_zero=False):
        """b - a; with api_from_zero the server restarted: its CPU and counters start at 0."""
        self.seconds += b.t - a.t
        self.api_cpu += b.api_cpu - (0 if api_from_zero else a.api_cpu)
        self.etcd_cpu += b.etcd_cpu - a.etcd_cpu
        self.weftd_cpu += b.weftd_cpu - a.weftd_cpu
        self.syn += b.syn - a.syn
        for mine, before, after in ((self.verbs, a.verbs, b.verbs), (self.failed, a.failed, b.failed)):
            for key, count in after.items():
                d = count - (0 if api_from_zero else before.get(key, 0))
                if d:
                    mine[key] = mine.get(key, 0) + d
        self.end = b
        return self

    @property
    def requests(self):
        return sum(self.verbs.values())

    def per(self, value):
        return value / self.n

    def row(self):
        verbs = " ".join(f"{v} {self.per(c):.2f}" for v, c in sorted(self.verbs.items())) or "-"
        return [self.name, f"{self.seconds:.1f}", f"{self.api_cpu:.2f}", f"{self.per(self.api_cpu):.4f}",
                f"{self.per(self.etcd_cpu):.4f}", f"{self.per(self.weftd_cpu):.4f}",
                f"{self.per(self.requests):.2f}", verbs, f"{self.per(self.syn):.2f}",
                f"{self.end.conns}/{self.end.watches}"]


HEADER = ["phase", "s", "apiserver CPU s", "/daemon", "etcd CPU/daemon", "weftd CPU/daemon",
          "node requests/daemon", "by verb /daemon", "SYNs/daemon", "conns/watches at end"]


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_start(lab, n, stagger, timeout):
    """Spawns every weftd; returns (phase, seconds to all programmed, spawn spread, slowest node)."""
    pending = set(lab.state["nodes"])
    done = {}

    def all_programmed():
        lab.check_alive()
        for node in list(pending):
            t = lab.programmed_at(node, n - 1)
            if t is not None:
                done[node] = t
                pending.discard(node)
        return not pending

    a = Snapshot(lab)
    t0 = time.time()
    lab.start_all(stagger)
    spread = time.time() - t0
    # Polled every 0.5 s: each poll reads 200 weftds' state.
    labmod.wait_for(all_programmed, timeout, f"every weftd to program {n - 1} peers "
                    f"({len(pending)} nodes not yet, e.g. {sorted(pending)[:3]})", interval=0.5)
    phase = Phase("start", n).add(a, Snapshot(lab))
    slowest = max(done, key=done.get)
    return phase, max(done.values()) - t0, spread, slowest


def check_kernel(lab, n):
    wrong = {node: c for node, c in lab.kernel_counts().items() if c != (n - 1,) * 3}
    if wrong:
        raise labmod.LabError(f"{len(wrong)} nodes lack entries (routes, neighbors, FDB; expected "
                              f"{n - 1} each): {sorted(wrong.items())[:5]}")


def timed(fn):
    """(fn(), the monotonic time halfway through the call): a read under load can take seconds."""
    t = time.monotonic()
    value = fn()
    return value, (t + time.monotonic()) / 2


def run_outage(lab, n, outage, timeout, own_watches):
    """Kills kube-apiserver, restarts it `outage` s later; returns (phase, SYNs/daemon/s after the
    first 2 s of the outage, seconds from /readyz to every watch open again)."""
    a = Snapshot(lab)
    killed = time.monotonic()
    lab.stop_real_api(signal.SIGKILL)
    sample = sorted(lab.state["nodes"])[:3]  # the daemons' own count of failed requests, beside the SYNs
    time.sleep(2)
    syn2, errors2 = timed(lab.syn_count), timed(lambda: lab.api_errors(sample))
    # The last reads run beside the restart's deadline, so that a slow read (the machine is
    # busiest now) does not make the outage longer.
    last = {}
    reader = threading.Thread(target=lambda: last.update(
        syn=timed(lab.syn_count), errors=timed(lambda: lab.api_errors(sample))))
    time.sleep(max(0.0, killed + outage - 1.0 - time.monotonic()))
    reader.start()
    time.sleep(max(0.0, killed + outage - time.monotonic()))
    restarted = time.monotonic()
    lab.restart_real_apiserver(timeout=timeout)
    ready = time.monotonic()
    boot_cpu = cpu_seconds(lab.pid("kube-apiserver"))
    reader.join()
    # The server's own informers watch nodes too (own_watches, counted before any weftd).
    labmod.wait_for(lambda: lab.check_alive() or open_node_watches(real_api_metrics(lab.cp)) >= n + own_watches,
                    timeout, f"{n} + {own_watches} node watches on the restarted kube-apiserver", interval=0.5)
    back = time.monotonic() - ready
    phase = Phase("outage", n).add(a, Snapshot(lab), api_from_zero=True)
    (syn_end, t_end), (errors_end, te_end) = last["syn"], last["errors"]
    rate = (syn_end - syn2[0]) / n / (t_end - syn2[1])
    phase.notes.append(
        f"API down {restarted - killed:.1f} s, /readyz {ready - restarted:.1f} s after the restart (its boot "
        f"alone: {boot_cpu:.2f} CPU s), every watch open {back:.2f} s after /readyz; SYNs per daemon: "
        f"{(syn2[0] - a.syn) / n:.1f} in the first {syn2[1] - killed:.1f} s, {(syn_end - syn2[0]) / n:.1f} in the "
        f"next {t_end - syn2[1]:.1f} s (read {restarted - t_end:.1f} s before the restart); weftd's own "
        f"weft_kube_api_errors_total on {', '.join(sample)}: {(errors_end - errors2[0]) / len(sample):.1f} per "
        f"daemon in {te_end - errors2[1]:.1f} s")
    return phase, rate, back, boot_cpu


def report(n, phases, start_s, spread, slowest, rate, back, own, own_rate, loads, stagger):
    print()
    labmod.print_table([p.row() for p in phases], HEADER)
    for p in phases:
        for note in p.notes + [f"not 2xx: {p.failed}"] * bool(p.failed):
            print(f"  {p.name}: {note}")
    print(f"  load {loads}")
    context = f"{n} weftd + kube-apiserver + etcd on {os.cpu_count()} cores, load {loads}; {own}"
    for p in phases:
        emit(f"scale{n}_{p.name}_api_cpu_s_per_daemon",
             f"{n} weftd, {p.name} ({p.seconds:.0f} s): kube-apiserver CPU seconds per daemon",
             round(p.per(p.api_cpu), 4), "s", NO_TARGET, True, n=n,
             detail=f"{p.api_cpu:.2f} s in total, {p.per(p.api_cpu - own_rate * p.seconds):.4f} s per daemon "
                    f"above the server's own background of {own_rate * 60:.2f} s per minute; etcd "
                    f"{p.etcd_cpu:.2f} s, the weftd processes {p.weftd_cpu:.2f} s; {context}")
        verbs = ", ".join(f"{v}: {p.per(c):.2f}" for v, c in sorted(p.verbs.items()))
        emit(f"scale{n}_{p.name}_requests_per_daemon",
             f"{n} weftd, {p.name}: requests on nodes per daemon", round(p.per(p.requests), 2),
             "requests", *request_target(p), n=n,
             detail=f"by verb per daemon {{{verbs}}} ({p.requests} in total; not 2xx: {p.failed or 'none'}); "
                    f"{p.syn} TCP connection attempts to :6443 ({p.per(p.syn):.2f} per daemon); at the end "
                    f"{p.end.conns} connections from {p.end.connected} nodes, {p.end.watches} node watches open")
    emit(f"scale{n}_start_s", f"{n} weftd started -> every weftd programmed its {n - 1} peers",
         round(start_s, 2), "s", NO_TARGET, True, n=n,
         detail=f"spawning took {spread:.1f} s ({f'stagger {stagger * 1000:g} ms' if stagger else 'no stagger'}, "
                f"one `ip netns exec` after another); last node {slowest}; {context}")
    emit(f"scale{n}_outage_connects_per_daemon_per_s",
         f"{n} weftd, API server killed: TCP connection attempts per daemon per second after the first 2 s",
         round(rate, 2), "/s", "<= 1 per second", rate <= 1.0, n=n, detail=phases[-1].notes[0])
    emit(f"scale{n}_outage_rewatch_s", f"{n} weftd: restarted kube-apiserver's /readyz -> every watch open",
         round(back, 2), "s", NO_TARGET, True, n=n, detail=context)


def request_target(p):
    """(target, met) from issue #18's design: one list and one watch to start; while idle only
    watch renewals; after a restart one list and one watch again (and the lease's reads)."""
    v = {k: c / p.n for k, c in p.verbs.items()}
    if p.name == "idle":
        return "watch renewals only", set(p.verbs) <= {"watch"}
    if p.name == "outage":  # the old resourceVersion's watch ends in 410 (FACTS.md): relist, rewatch
        return ("<= 1 list and 2 watches per daemon (the old resourceVersion's watch ends in 410)",
                v.get("list", 0) <= 1 + 1 / p.n and v.get("watch", 0) <= 2 + 1 / p.n)
    # A lease attempt is one list and one catch-up watch up to the claim's own event; daemons that
    # start together may collide and try again. Then the Node watch.
    return ("<= 3 lists and 3 watches per daemon (a catch-up watch per lease attempt, then the Node watch; "
            "+ the lease's gets and patches)",
            v.get("list", 0) <= 3 and v.get("watch", 0) <= 3)


def bench(args):
    n = args.nodes
    lab = ScaleLab(f"sc{n}-{os.getpid() % 10000}", args.build_dir)
    loads = [load()]
    print(f"bench_scale: {n} nodes, lab {lab.name} ({lab.dir}), {os.cpu_count()} cores, load {loads[0]}",
          flush=True)
    try:
        t = time.monotonic()
        lab.setup(n)
        print(f"  control plane and {n} nodes up in {time.monotonic() - t:.0f} s", flush=True)
        a = Snapshot(lab)
        time.sleep(args.baseline_seconds)
        baseline = Phase("baseline", 1).add(a, Snapshot(lab))
        per_min = 60 / baseline.seconds
        own = (f"the API server alone, before any weftd: {baseline.api_cpu * per_min:.2f} CPU s and "
               f"{baseline.requests * per_min:.0f} node requests per minute, {baseline.end.watches} node "
               f"watches of its own (counted in every phase's requests)")
        start, start_s, spread, slowest = run_start(lab, n, args.stagger_ms / 1000, args.timeout)
        print(f"  every weftd programmed {n - 1} peers {start_s:.1f} s after the first spawn "
              f"(spawning took {spread:.1f} s), load {load()}", flush=True)
        check_kernel(lab, n)
        a = Snapshot(lab)
        time.sleep(args.idle_seconds)
        idle = Phase("idle", n).add(a, Snapshot(lab))
        loads.append(load())
        print(f"  idle {args.idle_seconds:g} s done, load {loads[-1]}", flush=True)
        outage, rate, back, _ = run_outage(lab, n, args.outage_seconds, args.timeout, baseline.end.watches)
        check_kernel(lab, n)
        loads.append(load())
        report(n, [start, idle, outage], start_s, spread, slowest, rate, back, own,
               baseline.api_cpu / baseline.seconds,
               " / ".join(loads), args.stagger_ms / 1000)
        return 0
    except (labmod.LabError, BenchError) as e:
        print(f"bench_scale: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            keep = f"/tmp/weft-bench-scale-{lab.name}"
            subprocess.run(["cp", "-a", lab.dir, keep], check=False)
            print(f"bench_scale: logs copied to {keep}")
        lab.down()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=50, help="weftd processes (1..200: the underlay is a /24)")
    p.add_argument("--build-dir", default=os.environ.get("WEFT_BUILD_DIR", os.path.join(ROOT, "build")))
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--outage-seconds", type=float, default=30.0)
    p.add_argument("--baseline-seconds", type=float, default=20.0,
                   help="the control plane alone before any weftd (its background CPU)")
    p.add_argument("--stagger-ms", type=float, default=0.0, help="pause between two weftd spawns")
    p.add_argument("--timeout", type=float, default=600.0, help="for start and for the way back")
    p.add_argument("--keep", action="store_true", help="copy the lab's directory (logs) to /tmp first")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_scale: needs root (network namespaces); skipped", file=sys.stderr)
        return 77
    if not 2 <= args.nodes <= 200:
        p.error("--nodes must be 2..200")
    if labmod.controlplane_module().missing_binaries():
        print("bench_scale: the control plane is not built (test/controlplane/build.sh); skipped",
              file=sys.stderr)
        return 77
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
