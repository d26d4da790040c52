#!/usr/bin/env python3
"""Issue #8, scale through the whole daemon: one weftd against N peer Nodes.

    bench_daemon.py [--build-dir DIR] [--api double|real] [--peers 1000,5000] [--runs 3]
                    [--idle-seconds 60] [--strace]

For each N, every run builds from scratch:
    <p>-api   the API server at https://192.0.2.254:6443 with N peer Nodes plus our own Node:
              --api double (default): the test double (test/kubeapi/kubeapi.py);
              --api real: etcd + kube-apiserver 1.20.2 (test/controlplane, no controller-manager),
              the manifests' RBAC, weftd on the ServiceAccount's token, the Nodes created
              through the API before weftd starts (create_nodes.py)
    <p>-n     the node: eth0 = 192.0.2.1/24 (a veth to <p>-api), weftd started here
    <p>-b     the baseline: the same VXLAN device, the identical 3N entries added with
              `ip -batch` (routes, neighbors) and `bridge -batch` (FDB)
<p> is wbd<pid>; every namespace is removed in a `finally`. Nothing is done in the root
namespace but starting processes (all links are created directly inside the namespaces).

Figures (test/bench/README.md): cold_start_ratio, route_programming_ratio, rss_settled_mib,
rss_anon_settled_mib, rss_peak_mib, idle_forks, idle_cpu_seconds, api_requests. How each is measured:
  * weftd start: wall clock just before `ip netns exec NS weftd` is spawned (exec, no fork).
  * all entries present: the timestamp of weftd's "reconcile: N peers programmed" log line,
    written after the last netlink ACK; the kernel counts (routes proto 119, permanent
    neighbors and FDB entries on weft.1) are then checked to be N each.
  * route programming: the "routes X ms" of that line, the set-routes phase measured in weftd
    (first route message sent -> last route ACK), against `ip -batch` of the routes alone.
  * RSS: VmRSS and VmHWM from /proc/PID/status, a few seconds after the first reconcile.
  * idle CPU: the run time of every weftd thread over the idle period, in nanoseconds from
    /proc/PID/task/TID/schedstat sampled every second (utime+stime from /proc/PID/stat, in
    10 ms ticks but including threads that ended, is given too).
  * idle forks: processes forked (and execs) by weftd in the same period, from the kernel's
    process connector (netlink fork/exec events, no ptrace); threads started are reported
    beside it. `--strace` also attaches `strace -f -e trace=process` (which costs weftd CPU).
  * API requests: the double's /_weft/stats, or the real server's apiserver_request_total for
    resource nodes (a watch is counted there when it ends: open watches are added from
    apiserver_longrunning_gauge), after settle and after the idle period.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import emit as bench_emit, median  # noqa: E402

KUBEAPI = os.path.join(ROOT, "test", "kubeapi", "kubeapi.py")
KUBECTL = os.path.join(ROOT, "test", "kubeapi", "kubectl.py")
CREATE_NODES = os.path.join(HERE, "create_nodes.py")
MANIFESTS = os.path.join(ROOT, "manifests")
NODE_IP, API_IP = "192.0.2.1", "192.0.2.254"
NODE_NAME = "bench-node"
VTEP = "weft.1"
HEALTHZ_PORT = 8471
CLK_TCK = os.sysconf("SC_CLK_TCK")
RECONCILE_RE = re.compile(r"^(\S+Z) \w+ node=\S+ reconcile: (\d+) peers programmed.* writes in ([\d.]+) ms "
                          r"\(routes ([\d.]+) ms\)")


class BenchError(Exception):
    pass


def sh(*args, check=True, timeout=120, input_text=None):
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input_text)
    if check and res.returncode != 0:
        raise BenchError(f"{' '.join(args[:8])}: exit {res.returncode}: {(res.stderr or res.stdout).strip()[:500]}")
    return res


def wait_for(pred, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout}s waiting for {what}")


# ---- the peers
def peer(i):
    """Peer i (0-based): subnet 10.x.y.0/24 from 10.1.0.0 on, public IP in 198.18.0.0/15, a VTEP MAC."""
    k = 256 + i
    subnet = f"10.{k >> 8}.{k & 255}.0"
    v = (198 << 24) | (18 << 16) | (i + 1)
    public_ip = ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))
    mac = f"0e:42:00:00:{(i >> 8) & 255:02x}:{i & 255:02x}"
    return f"peer{i:05d}", subnet, public_ip, mac


def node_object(name, ip, annotations=None):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name},
                         "annotations": annotations or {}},
            "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def write_nodes_file(path, n):
    nodes = [node_object(NODE_NAME, NODE_IP)]
    for i in range(n):
        name, subnet, public_ip, mac = peer(i)
        nodes.append(node_object(name, public_ip, {
            "weft.io/subnet": f"{subnet}/24", "weft.io/public-ip": public_ip,
            "weft.io/backend-type": "vxlan",
            "weft.io/backend-data": json.dumps({"VNI": 1, "VtepMAC": mac}, separators=(",", ":"))}))
    with open(path, "w") as f:
        json.dump(nodes, f)


# ---- namespaces
class Namespaces:
    def __init__(self, prefix):
        self.prefix = prefix
        self.made = []

    def add(self, role):
        name = f"{self.prefix}-{role}"
        sh("ip", "netns", "add", name)
        self.made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def remove(self, name):
        sh("ip", "netns", "del", name, check=False)
        if name in self.made:
            self.made.remove(name)

    def remove_all(self):
        listing = sh("ip", "netns", "list", check=False).stdout
        for line in listing.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(self.prefix + "-"):
                sh("ip", "netns", "del", name, check=False)
        self.made.clear()


def kill(proc, sig=signal.SIGTERM, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- the kernel side
def count_entries(ns):
    routes = sh("ip", "-n", ns, "-4", "route", "show", "proto", "119").stdout.count("\n")
    neigh = sh("ip", "-n", ns, "-4", "neigh", "show", "dev", VTEP, "nud", "permanent").stdout.count("\n")
    fdb = sum(1 for line in sh("bridge", "-n", ns, "fdb", "show", "dev", VTEP).stdout.splitlines()
              if " dst " in line and "permanent" in line)
    return routes, neigh, fdb


def firewall_sources(ns):
    """Addresses in weft's VXLAN allow-list (the peers and ourselves)."""
    out = json.loads(sh("ip", "netns", "exec", ns, "nft", "-j", "list", "set", "ip", "weft", "vxlan-sources").stdout)
    for item in out.get("nftables", []):
        if "set" in item:
            return len(item["set"].get("elem", []))
    return 0


def baseline(nsset, n, run):
    """Seconds for ip -batch (routes), ip -batch (neighbors), bridge -batch (FDB) in a fresh namespace."""
    ns = nsset.add(f"b{run}")
    try:
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        sh("ip", "-n", ns, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "eth0p", "up")
        sh("ip", "-n", ns, "link", "add", VTEP, "type", "vxlan", "id", "1", "local", NODE_IP, "dev", "eth0",
           "dstport", "8472", "nolearning")
        sh("ip", "-n", ns, "link", "set", VTEP, "mtu", "1450", "up")
        peers = [peer(i) for i in range(n)]
        neigh = "".join(f"neigh add {s} lladdr {m} dev {VTEP} nud permanent\n" for _, s, _, m in peers)
        fdb = "".join(f"fdb add {m} dev {VTEP} dst {ip} self permanent\n" for _, _, ip, m in peers)
        routes = "".join(f"route add {s}/24 via {s} dev {VTEP} onlink proto 119\n" for _, s, _, _ in peers)
        took = {}
        # weft's order: neighbors and FDB before the routes that use them.
        for what, cmd, text in (("neigh", "ip", neigh), ("fdb", "bridge", fdb), ("routes", "ip", routes)):
            t = time.monotonic()
            sh(cmd, "-n", ns, "-batch", "-", input_text=text)
            took[what] = time.monotonic() - t
        got = count_entries(ns)
        if got != (n, n, n):
            raise BenchError(f"baseline: expected {n} routes/neighbors/FDB entries, found {got}")
        return took
    finally:
        nsset.remove(ns)


# ---- the API and weftd
def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def pss_mib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def tasks(pid):
    return set(os.listdir(f"/proc/{pid}/task"))


def thread_cpu(pid):
    """{"TID name": CPU seconds} for every thread, from the scheduler's nanosecond run time
    (/proc/PID/task/TID/schedstat; /proc/PID/stat only counts 10 ms ticks)."""
    out = {}
    for tid in tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[f"{tid} {name}"] = int(f.read().split()[0]) / 1e9
        except OSError:
            pass
    return out


def parse_ts(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def controlplane_module():
    sys.path.insert(0, os.path.join(ROOT, "test", "controlplane"))
    import controlplane  # noqa: E402
    return controlplane


REQUEST_RE = re.compile(r'^apiserver_request_total\{([^}]*)\} (\S+)$', re.M)
WATCHERS_RE = re.compile(r'^apiserver_longrunning_gauge\{([^}]*)\} (\S+)$', re.M)


def labels(text):
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


def real_api_metrics(cp):
    """The server's /metrics text (Prometheus exposition format)."""
    status, text = cp.request("GET", "/metrics")
    if status != 200:
        raise BenchError(f"kube-apiserver /metrics: HTTP {status}")
    return text


def open_node_watches(text):
    """Watches on resource nodes open now (apiserver_longrunning_gauge in metrics `text`)."""
    return sum(int(float(value)) for lab, value in WATCHERS_RE.findall(text)
               if labels(lab).get("resource") == "nodes" and labels(lab).get("verb") == "WATCH")


def node_requests(text):
    """Requests on resource nodes by verb (get, list, patch, watch) since the server started,
    from metrics `text`. A watch shows in apiserver_request_total when it ends: the open ones
    are added from apiserver_longrunning_gauge."""
    verbs = {}
    for lab, value in REQUEST_RE.findall(text):
        lab = labels(lab)
        if lab.get("resource") == "nodes":
            verb = lab.get("verb", "").lower()
            verbs[verb] = verbs.get(verb, 0) + int(float(value))
    watching = open_node_watches(text)
    if watching or "watch" in verbs:
        verbs["watch"] = verbs.get("watch", 0) + watching
    return verbs


def real_api_stats(cp):
    """node_requests() of the server's metrics now."""
    return node_requests(real_api_metrics(cp))


def real_api_delta(cp, base):
    """What weftd asked since `base` (the counts taken once the Nodes were created)."""
    now = real_api_stats(cp)
    by_verb = {v: now[v] - base.get(v, 0) for v in now if now[v] != base.get(v, 0)}
    return {"total": sum(by_verb.values()), "by_verb": by_verb}


class Run:
    """One API server + one node namespace + one weftd, for one N."""

    def __init__(self, args, nsset, work, n, index):
        self.args, self.nsset, self.n = args, nsset, n
        self.dir = os.path.join(work, f"n{n}-r{index}")
        os.makedirs(self.dir)
        self.api_ns = nsset.add(f"api{index}")
        self.node_ns = nsset.add(f"n{index}")
        self.api = self.weftd = self.cp = None

    def kubectl(self, *a):
        return sh("ip", "netns", "exec", self.api_ns, sys.executable, KUBECTL, "--ready-file",
                  os.path.join(self.dir, "ready.json"), *a).stdout

    def api_stats(self):
        if self.cp:
            return real_api_delta(self.cp, self.stats_base)
        return json.loads(self.kubectl("stats"))

    def add_api_link(self):
        sh("ip", "link", "add", "eth0", "netns", self.node_ns, "type", "veth", "peer", "name", "eth0",
           "netns", self.api_ns)
        for ns, ip in ((self.node_ns, NODE_IP), (self.api_ns, API_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.api_ns, "link", "set", "lo", "up")

    def start_api(self, nodes_file):
        self.add_api_link()
        if self.args.api == "real":
            self.start_real_api(nodes_file)
            return
        ready = os.path.join(self.dir, "ready.json")
        log = open(os.path.join(self.dir, "kubeapi.log"), "ab")
        self.api = subprocess.Popen(
            ["ip", "netns", "exec", self.api_ns, sys.executable, KUBEAPI, "--listen", f"{API_IP}:6443",
             "--cert-dir", os.path.join(self.args.work_root, "certs"), "--san", f"IP:{API_IP}",
             "--ready-file", ready, "--kubeconfig-out", os.path.join(self.dir, "kubeconfig"),
             "--nodes-file", nodes_file, "--bookmark-interval", "60"],
            stdout=log, stderr=log, start_new_session=True)
        wait_for(lambda: os.path.exists(ready) or self.api.poll() is not None, 60, "the API test double")
        if self.api.poll() is not None:
            raise BenchError(f"the API test double exited: see {self.dir}/kubeapi.log")
        self.kubectl("stats", "--reset")

    def start_real_api(self, nodes_file):
        """etcd + kube-apiserver in the API namespace, RBAC, then every Node through the API."""
        self.cp = controlplane_module().ControlPlane(os.path.join(self.dir, "api"), self.api_ns, API_IP)
        self.cp.start(controller_manager=False)
        for manifest in ("00-namespace.yaml", "01-rbac.yaml"):
            self.cp.apply(os.path.join(MANIFESTS, manifest))
        shutil.copy(self.cp.weft_kubeconfig, os.path.join(self.dir, "kubeconfig"))
        token_file = os.path.join(self.dir, "admin.token")
        with open(token_file, "w") as f:
            f.write(self.cp.admin_token)
        out = sh("ip", "netns", "exec", self.api_ns, sys.executable, CREATE_NODES, "--url", self.cp.url,
                 "--ca", self.cp.ca_file, "--token-file", token_file, "--nodes-file", nodes_file,
                 timeout=900).stdout.strip()
        print(f"  {out}", flush=True)
        self.stats_base = real_api_stats(self.cp)

    def start_weftd(self):
        with open(os.path.join(self.dir, "net-conf.json"), "w") as f:
            json.dump({"Network": "10.0.0.0/8", "Backend": {"Type": "vxlan"}}, f)
        self.log_path = os.path.join(self.dir, "weftd.log")
        log = open(self.log_path, "ab")
        cmd = ["ip", "netns", "exec", self.node_ns, *self.args.wrap.split(), self.args.weftd,
               "--kubeconfig-file", os.path.join(self.dir, "kubeconfig"),
               "--node-name", NODE_NAME, "--iface", "eth0", "--ip-masq",
               "--net-config-path", os.path.join(self.dir, "net-conf.json"),
               "--subnet-file", os.path.join(self.dir, "subnet.env"),
               "--healthz-ip", "127.0.0.1", "--healthz-port", str(HEALTHZ_PORT)]
        self.t0 = time.time()
        self.weftd = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)

    def wait_programmed(self, timeout=120):
        """(seconds from start to the last entry, routes phase seconds, reconcile seconds)."""
        def seen():
            if self.weftd.poll() is not None:
                raise BenchError(f"weftd exited with {self.weftd.returncode}: see {self.log_path}")
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    m = RECONCILE_RE.match(line)
                    if m and int(m.group(2)) == self.n:
                        return m
            return None
        m = wait_for(seen, timeout, f"weftd to program {self.n} peers (log: {self.log_path})", 0.005)
        got = count_entries(self.node_ns)
        if got != (self.n, self.n, self.n):
            raise BenchError(f"weftd logged {self.n} peers programmed but the kernel has "
                             f"routes/neighbors/FDB {got}")
        total = parse_ts(m.group(1)) - self.t0
        reconcile = float(m.group(3)) / 1000
        # Where the time went, from the log's timestamps (ms resolution).
        phases = {}
        with open(self.log_path, errors="replace") as f:
            lines = f.read().splitlines()
        stamp = lambda line: parse_ts(line.split(" ", 1)[0]) - self.t0  # noqa: E731
        phases["first_log"] = stamp(lines[0])
        for line in lines:
            if re.search(r" lease \S+ on \S+ \(VTEP ", line):  # the agent, once the lease is held
                phases["lease"] = stamp(line)
                break
        phases["reconcile_start"] = total - reconcile
        self.phases = phases
        return total, float(m.group(4)) / 1000, reconcile

    def stop(self):
        if self.weftd and self.args.wrap and self.weftd.poll() is None:
            os.killpg(self.weftd.pid, signal.SIGTERM)  # the wrapper's children too
        kill(self.weftd)
        kill(self.api)
        if self.cp:
            self.cp.stop()


class ForkCounter:
    """Counts the processes and threads a PID creates, from the kernel's process connector
    (netlink, fork/exec events system-wide); no ptrace, so the traced process pays nothing."""

    CN_IDX_PROC, PROC_CN_MCAST_LISTEN, PROC_EVENT_FORK, PROC_EVENT_EXEC = 1, 1, 0x1, 0x2

    def __init__(self, pid):
        self.pid, self.forks, self.threads, self.execs, self.error = pid, 0, 0, 0, None
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 11)  # NETLINK_CONNECTOR
        self.sock.bind((0, self.CN_IDX_PROC))
        self.sock.settimeout(0.2)
        op = struct.pack("=I", self.PROC_CN_MCAST_LISTEN)
        cn = struct.pack("=IIIIHH", self.CN_IDX_PROC, 1, 0, 0, len(op), 0) + op
        self.sock.send(struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn)  # NLMSG_DONE
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:  # ENOBUFS: events were lost, the count is not trustworthy
                self.error = str(e)
                continue
            what = struct.unpack_from("=I", data, 36)[0]
            if what == self.PROC_EVENT_FORK:
                parent_pid, parent_tgid, child_pid, child_tgid = struct.unpack_from("=IIII", data, 52)
                # A thread's parent is the process's parent (CLONE_THREAD), so threads are
                # recognised by their thread group, processes by their parent.
                if child_tgid == self.pid and child_pid != child_tgid:
                    self.threads += 1
                elif parent_tgid == self.pid:
                    self.forks += 1
            elif what == self.PROC_EVENT_EXEC:
                if struct.unpack_from("=II", data, 52)[1] == self.pid:
                    self.execs += 1

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def idle_period(run, seconds, use_strace):
    """(processes+threads created, CPU seconds, how they were counted) over `seconds` of idling."""
    pid = run.weftd.pid
    before_tasks = tasks(pid)
    counter = strace = None
    try:
        counter = ForkCounter(pid)
    except OSError as e:
        print(f"  process connector unavailable ({e}): counting with strace", flush=True)
        use_strace = True
    trace = os.path.join(run.dir, "idle.strace")
    if use_strace and shutil.which("strace"):
        # ptrace stops weftd at every syscall: its CPU figure is then a little inflated.
        strace = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=process", "-o", trace, "-p", str(pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached to every thread
    cpu0, threads0 = cpu_seconds(pid), thread_cpu(pid)
    # Sampled every second, so a thread that ends in the period (a watch's helper when the watch
    # is renewed) still counts, up to its last second.
    threads1 = dict(threads0)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        threads1.update(thread_cpu(pid))
    cpu1 = cpu_seconds(pid)
    busy = sorted(((threads1[t] - threads0.get(t, 0), t) for t in threads1), reverse=True)
    precise = sum(d for d, _ in busy)
    busy = ", ".join(f"{t} {d:.4f} s" for d, t in busy if d >= 0.0005) or "every thread under 0.5 ms"
    new_threads = len(tasks(pid) - before_tasks)
    created = 0
    how = []
    if counter:
        counter.close()
        if counter.error:
            raise BenchError(f"process connector lost events ({counter.error}): fork count unknown")
        created = counter.forks + counter.execs
        new_threads = max(new_threads, counter.threads)
        how.append(f"kernel process connector: {counter.forks} processes forked, {counter.execs} execs, "
                   f"{counter.threads} threads started by weftd")
    else:
        how.append(f"{new_threads} new entries in /proc/PID/task (processes that came and went are missed)")
    if strace:
        kill(strace, signal.SIGINT)
        with open(trace) as f:
            lines = f.read().splitlines()
        forks = sum(1 for line in lines if re.search(r"\b(fork|vfork|execve)\(.*= \d+", line)
                    or (re.search(r"\bclone3?\(.*= \d+", line) and "CLONE_THREAD" not in line))
        created = max(created, forks)
        how.append(f"strace -f -e trace=process: {forks} processes forked or exec'd")
    return created, (precise, cpu1 - cpu0), "; ".join(how), busy


def bench_n(args, nsset, work, n, nodes_file, do_idle):
    results = []
    for r in range(args.runs):
        run = Run(args, nsset, work, n, r)
        try:
            run.start_api(nodes_file)
            base = baseline(nsset, n, r)
            run.start_weftd()
            total, routes, reconcile = run.wait_programmed()
            time.sleep(args.settle_seconds)
            allowed = firewall_sources(run.node_ns)
            if allowed != n + 1:
                raise BenchError(f"weft's nftables allow-list has {allowed} addresses, expected {n + 1}")
            st = proc_status(run.weftd.pid)
            ph = run.phases
            res = {"start_to_last": total, "routes": routes, "reconcile": reconcile,
                   "ph_start": ph["first_log"], "ph_lease": ph.get("lease", float("nan")) - ph["first_log"],
                   "ph_list": ph["reconcile_start"] - ph.get("lease", float("nan")),
                   "base_total": sum(base.values()), "base_routes": base["routes"],
                   "rss": int(st["VmRSS"].split()[0]) / 1024, "hwm": int(st["VmHWM"].split()[0]) / 1024,
                   "threads": int(st["Threads"]), "anon": int(st["RssAnon"].split()[0]) / 1024,
                   "file": int(st["RssFile"].split()[0]) / 1024}
            res["pss"] = pss_mib(run.weftd.pid)
            stats = run.api_stats()
            res["requests"], res["by_verb"] = stats["total"], stats.get("by_verb", {})
            res["settled_by_verb"], res["idle_by_verb"] = res["by_verb"], None
            if do_idle and r == args.runs - 1:
                res["forks"], res["idle_cpu"], res["fork_method"], res["idle_threads"] = idle_period(
                    run, args.idle_seconds, args.strace)
                stats = run.api_stats()
                after = stats.get("by_verb", {})
                res["idle_by_verb"] = {v: after[v] - res["by_verb"].get(v, 0) for v in after
                                       if after[v] != res["by_verb"].get(v, 0)}
                res["requests"], res["by_verb"] = stats["total"], after
                res["rss_after_idle"] = int(proc_status(run.weftd.pid)["VmRSS"].split()[0]) / 1024
            print(f"  N={n} run {r}: start->last {total * 1000:.0f} ms (reconcile {reconcile * 1000:.0f} ms, "
                  f"routes {routes * 1000:.0f} ms); ip/bridge -batch {res['base_total'] * 1000:.0f} ms "
                  f"(routes {base['routes'] * 1000:.0f}, neigh {base['neigh'] * 1000:.0f}, "
                  f"fdb {base['fdb'] * 1000:.0f}); RSS {res['rss']:.1f} MiB (anon {res['anon']:.1f}, file "
                  f"{res['file']:.1f}, PSS {res['pss']:.1f}), peak {res['hwm']:.1f} MiB, "
                  f"{res['threads']} threads; {res['requests']} API requests", flush=True)
            results.append(res)
            if args.hold:
                print(f"  holding {args.hold:g} s: weftd pid {run.weftd.pid}, netns {run.node_ns}", flush=True)
                time.sleep(args.hold)
        finally:
            run.stop()
            nsset.remove(run.node_ns)
            nsset.remove(run.api_ns)
    return results


def report(n, results, args):
    real = args.api == "real"

    def emit(id, figure, *rest):
        # Real-server figures get their own ids; each names the server it was measured against.
        return bench_emit(id + ("_realapi" if real else ""),
                          figure + (" [real kube-apiserver 1.20.2]" if real else " [API test double]"), *rest)

    ratios = [r["start_to_last"] / r["base_total"] for r in results]
    rratios = [r["routes"] / r["base_routes"] for r in results]
    mid = lambda k: median([r[k] for r in results])  # noqa: E731
    load = os.getloadavg()[0]
    runs = f"median of {len(results)} runs, load {load:.2f}"
    v = round(median(ratios), 2)
    emit(f"cold_start_ratio_{n}" if n != 5000 else "cold_start_ratio",
         f"{n:,} peers: weftd start -> all {3 * n:,} route/neigh/FDB entries / ip+bridge -batch", v, "x",
         "<= 1.3x" if real else "<= 1.5x", v <= (1.3 if real else 1.5), "6.6x (1.93 s vs 0.29 s)" if n == 5000 else "", n,
         f"{mid('start_to_last'):.3f} s vs {mid('base_total'):.3f} s ({runs}); weftd's time: "
         f"{mid('ph_start') * 1000:.0f} ms to its first log line, {mid('ph_lease') * 1000:.0f} ms to its lease "
         f"(own Node, VTEP, lease lists and patches), {mid('ph_list') * 1000:.0f} ms to the first reconcile "
         f"(watch list), {mid('reconcile') * 1000:.0f} ms reconcile")
    v = round(median(rratios), 2)
    emit(f"route_programming_ratio_{n}" if n != 5000 else "route_programming_ratio",
         f"{n:,} peers: first -> last route (weftd's set-routes phase) / ip -batch routes", v, "x",
         "<= 1.2x", v <= 1.2, "3.5x" if n == 5000 else "", n,
         f"{mid('routes'):.3f} s vs {mid('base_routes'):.3f} s ({runs})")
    flannel_rss = "70 MiB" if n == 5000 else ("42 MiB" if n == 1000 else "")
    v = round(mid("rss"), 1)
    emit(f"rss_settled_mib_{n}" if n != 5000 else "rss_settled_mib", f"{n:,} peers: weftd RSS after settle",
         v, "MiB", "< 16 MiB", v < 16, flannel_rss, n, f"VmRSS {args.settle_seconds:g} s after the first reconcile: anon {mid('anon'):.1f} + file-backed "
         f"{mid('file'):.1f} MiB (shared libraries), PSS {mid('pss'):.1f} MiB ({runs})")
    # The shared libraries alone (libcrypto, cpprest, libstdc++: file-backed pages) are about
    # 16 MiB, so the issue's < 16 MiB RSS cannot be met with the libraries weft is built on; the
    # anonymous part is what weftd's own code decides, and is held to the same figure.
    v = round(mid("anon"), 1)
    emit(f"rss_anon_settled_mib_{n}" if n != 5000 else "rss_anon_settled_mib",
         f"{n:,} peers: weftd anonymous RSS after settle (heap and stacks, no library pages)",
         v, "MiB", "< 16 MiB", v < 16, "", n, f"RssAnon {args.settle_seconds:g} s after the first reconcile ({runs})")
    v = round(mid("hwm"), 1)
    emit(f"rss_peak_mib_{n}" if n != 5000 else "rss_peak_mib", f"{n:,} peers: weftd peak RSS (VmHWM)",
         v, "MiB", "< 16 MiB", v < 16, "76 MiB" if n == 5000 else "", n, f"VmHWM ({runs})")
    idle = [r for r in results if "forks" in r]
    if idle:
        r = idle[-1]
        emit("idle_forks" if n == 5000 else f"idle_forks_{n}",
             f"idle {args.idle_seconds:g} s at {n:,} peers: processes forked by weftd", r["forks"], "forks",
             "0", r["forks"] == 0, "252 forks" if n == 5000 else "", n, r["fork_method"])
        precise, ticks = r["idle_cpu"]
        cpu = round(precise * 60 / args.idle_seconds, 4)
        emit("idle_cpu_seconds" if n == 5000 else f"idle_cpu_seconds_{n}",
             f"idle minute at {n:,} peers: weftd CPU seconds (all threads)", cpu, "s", "< 0.02 s", cpu < 0.02,
             "0.43 s" if n == 5000 else "", n,
             f"{precise:.4f} s of run time over {args.idle_seconds:g} s (schedstat, every thread: {r['idle_threads']}); "
             f"utime+stime {ticks:.2f} s in 10 ms ticks"
             + (" (scaled to a minute)" if args.idle_seconds != 60 else ""))
    reqs = [r["requests"] for r in results]
    last = results[-1]
    verbs = last["by_verb"]
    # One list then the watch, no polling: the lease's claim is verified by a catch-up watch that
    # ends at the claim's own event (a second watch, or a quorum list when that watch fails), and
    # while idle nothing but the watch's own renewal (timeoutSeconds ends every watch after a
    # minute or more, as with client-go).
    idle_verbs = last["idle_by_verb"]
    met = (all(r["settled_by_verb"].get("watch", 0) <= 2 and r["settled_by_verb"].get("list", 0) <= 1
               for r in results)
           and (idle_verbs is None or set(idle_verbs) <= {"watch"}))
    idle_note = "" if idle_verbs is None else f"; while idle {idle_verbs or 'none'}"
    emit(f"api_requests_{n}" if n != 5000 else "api_requests",
         f"{n:,} peers: API requests weftd made (start to settled" + (", then idle)" if idle_verbs is not None else ")"),
         last["requests"], "requests", "1 list + the lease's catch-up watch + 1 watch (+ gets, patches); idle: watch renewals only",
         met, "", n, f"runs {reqs}; last run by verb {verbs}{idle_note}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.environ.get("WEFT_BUILD_DIR", os.path.join(ROOT, "build")))
    p.add_argument("--peers", default="1000,5000", help="comma-separated peer counts")
    p.add_argument("--api", choices=("double", "real"), default="double",
                   help="the API test double, or a real kube-apiserver (test/controlplane/build.sh first)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--idle-seconds", type=float, default=60.0, help="idle period at the largest N (0: skip)")
    p.add_argument("--settle-seconds", type=float, default=3.0)
    p.add_argument("--strace", action="store_true",
                   help="also count forks with strace attached (inflates weftd's idle CPU a little)")
    p.add_argument("--hold", type=float, default=0, help="debugging: keep each run's weftd this long after it")
    p.add_argument("--wrap", default="", help="debugging: a command weftd is run under (e.g. heaptrack -o F)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_daemon: needs root (network namespaces); skipped", file=sys.stderr)
        return 77
    args.weftd = os.path.join(args.build_dir, "cmd", "weftd", "weftd")
    if not os.access(args.weftd, os.X_OK):
        print(f"bench_daemon: {args.weftd} not built", file=sys.stderr)
        return 1
    ns = [int(x) for x in args.peers.split(",") if x]
    work = tempfile.mkdtemp(prefix="weft-bench-daemon-")
    args.work_root = work
    nsset = Namespaces(f"wbd{os.getpid()}")
    print(f"bench_daemon: weftd {args.weftd}, {os.cpu_count()} cores, load {os.getloadavg()}, work dir {work}",
          flush=True)
    try:
        for n in ns:
            nodes_file = os.path.join(work, f"nodes-{n}.json")
            write_nodes_file(nodes_file, n)
            do_idle = args.idle_seconds > 0 and n == max(ns)
            results = bench_n(args, nsset, work, n, nodes_file, do_idle)
            report(n, results, args)
    except BenchError as e:
        print(f"bench_daemon: {e}", file=sys.stderr)
        return 1
    finally:
        nsset.remove_all()
        if args.keep:
            print(f"bench_daemon: logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
