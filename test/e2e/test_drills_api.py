"""API outage drills (issue #9) on the lab, with a continuous ping between pods on two nodes.

    ApiStop   the API test double is stopped for 30 s and started again with the same state
              (--state-file: Nodes and resourceVersions, but no watch history, as kube-apiserver
              comes back with etcd's data and an empty watch cache: old watches get 410 and
              weftd relists once).
    LinkCut   the API's link drops every IPv4 frame for 30 s (nftables on the lab's underlay
              bridge, at the API's port): connections hang without a reset, then the path comes
              back (WEFT_DRILL_CUT_ARP=1 drops ARP too: see cut_link).

Each asserts: no ping lost, every weftd still running, every watch resumed from its
resourceVersion or relisted once after a 410 (from weftd's /metrics), and a Node created right after the
API is back is routed on every node within 200 ms of its create request (seen by `ip monitor
route` in each node's namespace); 1,600 ms after a stop of the double (STOP_BACK_LIMIT_MS: issue
#18's connect pacing), 1 s after a kill of the real server.

Run one with: WEFT_BUILD_DIR=build sudo -E python3 -m unittest -v test_drills_api.LinkCut
WEFT_DRILL_OUTAGE=5 shortens the outages (for a quick try). test/bench/api uses the helpers.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import lab as labmod  # noqa: E402

BUILD = os.environ.get("WEFT_BUILD_DIR", os.path.join(labmod.ROOT, "build"))
OUTAGE_S = float(os.environ.get("WEFT_DRILL_OUTAGE", "30"))
BACK_LIMIT_MS = 200          # issue #9: a node added right after is programmed within 200 ms
# ApiStop against the double: issue #18 caps a weftd at ~1 connect a second while the API is
# away (ServerProbe: gaps of 1-1.25 s once capped, probes included), and the double serves the
# instant it listens, so the first request after a stop may come one probe gap after it is back:
# 1,250 ms + the rewatch, 410 and relist. Issue #9's 200 ms would need a probe every ~150 ms
# (7 connects a second at a server trying to come back, which #18 forbids); the real server
# listens ~1-2 s before /readyz, so there the gap is spent before the create (RealApiKill keeps
# its 1 s). A link cut keeps 200 ms: the watch survives it and no probe is involved.
STOP_BACK_LIMIT_MS = 1600
KUBECTL_DIR = os.path.join(labmod.ROOT, "test", "kubeapi")
_counter = [0]


def unique_name(tag):
    _counter[0] += 1
    return f"{tag}{os.getpid() % 10000}{_counter[0]}"


# A helper living in the API's namespace: creates Nodes on request and says when it sent each
# create (CLOCK_MONOTONIC, the same clock as this process's time.monotonic()).
CREATOR = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from kubectl import Client, kubelet_node
ready = sys.argv[2]
print("ready", flush=True)
for line in sys.stdin:
    req = json.loads(line)
    try:
        c = Client.from_ready_file(ready, timeout=10)
        node = kubelet_node(req["name"], [req["ip"]], (), None, req["annotations"], True)
        t0 = time.monotonic()
        created = c.request("POST", "/api/v1/nodes", node)
        t1 = time.monotonic()
        c.close()
        print(json.dumps({"sent": t0, "answered": t1,
                          "rv": created["metadata"]["resourceVersion"]}), flush=True)
    except Exception as e:  # reported to the test, which fails with it
        print(json.dumps({"error": repr(e)}), flush=True)
"""


class ApiLab:
    """A lab whose API test double keeps its state in a file, plus the drill's operations."""

    def __init__(self, tag, nodes=3, pods=1, api="double", pod_cidr=False):
        self.lab = labmod.Lab(unique_name(tag), BUILD, api)
        self.lab.api_extra_args = ("--state-file", os.path.join(self.lab.dir, "api", "state.json"))
        self.nodes, self.pods, self.pod_cidr = nodes, pods, pod_cidr
        self.creator = None
        self.cut_on = False
        self.cut_dropped = None

    def up(self):
        self.lab.up(self.nodes, self.pods, self.pod_cidr)
        self.creator = subprocess.Popen(
            ["ip", "netns", "exec", self.lab.ns("api"), sys.executable, "-u", "-c", CREATOR,
             KUBECTL_DIR, os.path.join(self.lab.dir, "api", "ready.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        if self.creator.stdout.readline().strip() != "ready":
            raise labmod.LabError("the node creator in the API namespace did not start")

    def down(self):
        if self.cut_on:
            self.restore_link()
        if self.creator:
            self.creator.kill()
            self.creator.wait()
        self.lab.down()

    # ---- state
    def node_ns(self, node):
        return self.lab.state["nodes"][node]["ns"]

    def metrics(self, node):
        out = labmod.in_ns(self.node_ns(node), "curl", "-sf", "--max-time", "2",
                           f"http://127.0.0.1:{labmod.HEALTHZ_PORT}/metrics", capture=True).stdout
        values = {}
        for line in out.splitlines():
            m = re.match(r"^(weft_kube_\w+)\s+([0-9.e+]+)$", line)
            if m:
                values[m.group(1)] = float(m.group(2))
        return values

    def all_metrics(self):
        return {n: self.metrics(n) for n in self.lab.state["nodes"]}

    def log_tail(self, node, lines=12):
        try:
            with open(os.path.join(self.lab.node_dir(node), "weftd.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return str(e)

    def weftd_running(self, node):
        """The weftd process the lab started is alive (not exited, not a zombie)."""
        return labmod.process_alive(self.lab.state["pids"].get(f"weftd-{node}"))

    # ---- the outages
    def stop_api(self):
        """The double gets SIGTERM; a real kube-apiserver is killed by its PID (SIGKILL), etcd
        and the controller-manager keep running."""
        if self.lab.real_api:
            self.lab.stop_real_api(signal.SIGKILL)
            return
        pid = self.lab.state["pids"].pop("api", None)
        self.lab.save()
        labmod.kill_group(pid, signal.SIGTERM)

    def start_api(self):
        """Starts the API server again; returns when it serves (the double's ready file exists,
        the real server's /readyz answers ok)."""
        if self.lab.real_api:
            self.lab.restart_real_apiserver()
        else:
            self.lab.start_api()
        return time.monotonic()

    def cut_link(self, arp=None):
        """IPv4 to and from the API's port is dropped on the underlay bridge (the lab's switch,
        its own namespace): no reset, no answer, and -- unlike a drop in the API's own namespace,
        which TCP sees as a local error and retries every 500 ms -- the endpoints' retransmissions
        back off as over a real dead link. ARP passes, as for an API server behind a router; with
        arp=True (or WEFT_DRILL_CUT_ARP=1) it is dropped too, and the kernel's ARP retry (every
        1 s while a neighbour is unresolved) then adds up to 1 s after the path is back."""
        if arp is None:
            arp = os.environ.get("WEFT_DRILL_CUT_ARP") == "1"
        match = "" if arp else "ether type ip "
        rules = ("table bridge weft_drill_cut {\n"
                 "  chain forward { type filter hook forward priority -300; policy accept;\n"
                 f"    {match}iifname \"api\" counter drop\n    {match}oifname \"api\" counter drop\n  }}\n"
                 "}\n")
        labmod.in_ns(self.lab.ns("ul"), "nft", "-f", "-", input_text=rules)
        self.cut_on = True

    def restore_link(self):
        """Ends the cut; returns when. The packets it dropped are in `cut_dropped` (from the
        API, to the API): what the server sent into the cut waits for its TCP retransmission."""
        ul = self.lab.ns("ul")
        out = labmod.in_ns(ul, "nft", "list", "table", "bridge", "weft_drill_cut", capture=True).stdout
        counts = [int(n) for n in re.findall(r"counter packets (\d+)", out)]
        labmod.in_ns(ul, "nft", "delete", "table", "bridge", "weft_drill_cut")
        self.cut_on = False
        self.cut_dropped = tuple(counts[:2]) if len(counts) >= 2 else None
        return time.monotonic()

    # ---- connection attempts to the API, counted in each node's namespace
    def count_syns(self):
        """An nftables counter in every node's namespace on the SYNs (without ACK) its weftd
        sends to the API's port: connects, probes included; a connect's SYN retransmissions
        (only while the path drops packets) count too. Removed by down()."""
        rules = ("table inet weft_bench_syn {\n"
                 "  counter syns { }\n"
                 "  chain out { type filter hook output priority 0; policy accept;\n"
                 f"    ip daddr {labmod.API_IP} tcp dport {labmod.API_PORT} tcp flags & (syn | ack) == syn "
                 "counter name \"syns\"\n  }\n"
                 "}\n")
        for node in self.lab.state["nodes"]:
            labmod.in_ns(self.node_ns(node), "nft", "-f", "-", input_text=rules)

    def syns(self):
        """{node: SYNs counted so far} (count_syns first)."""
        counts = {}
        for node in self.lab.state["nodes"]:
            out = labmod.in_ns(self.node_ns(node), "nft", "list", "counter", "inet", "weft_bench_syn", "syns",
                               capture=True).stdout
            counts[node] = int(re.search(r"packets (\d+)", out).group(1))
        return counts

    # ---- a new node, and when every node routes it
    def new_peer(self, index):
        """A Node with the annotations weftd would have written, for a node with no weftd (made
        while the API is up: it reads node1's annotations as the template)."""
        template = self.lab.node_annotations("node1")
        used = {self.lab.node_annotations(n).get("weft.io/subnet") for n in self.lab.state["nodes"]}
        subnet = f"10.244.{150 + index}.0/24"  # above the lab's SubnetMax (lab.py)
        if subnet in used:
            raise labmod.LabError(f"{subnet} is taken by a lab node")
        ann = {k: v for k, v in template.items() if k.startswith("weft.io/")}
        ann["weft.io/subnet"] = subnet
        ann["weft.io/public-ip"] = f"192.0.2.{200 + index}"
        data = json.loads(ann.get("weft.io/backend-data", "{}"))
        data["VtepMAC"] = f"0e:00:00:00:{200 + index:02x}:01"
        ann["weft.io/backend-data"] = json.dumps(data, separators=(",", ":"))
        return {"name": f"peer{index}", "ip": f"192.0.2.{200 + index}", "annotations": ann}, subnet

    def back_and_create(self, bring_back, peer, subnet, timeout=10.0):
        """Calls `bring_back()` (ends the outage, returns when), creates `peer` right after;
        returns (back, create sent, {node: ms from create sent to its route seen, or None})."""
        monitors = {n: RouteMonitor(self.node_ns(n), subnet) for n in self.lab.state["nodes"]}
        try:
            for m in monitors.values():
                m.wait_started()
            back = bring_back()
            self.creator.stdin.write(json.dumps(peer) + "\n")
            self.creator.stdin.flush()
            answer = json.loads(self.creator.stdout.readline())
            if "error" in answer:
                raise labmod.LabError(f"create {peer['name']}: {answer['error']}")
            sent = answer["sent"]
            seen = {n: m.wait_seen(timeout) for n, m in monitors.items()}
        finally:
            for m in monitors.values():
                m.stop()
        return back, sent, {n: None if t is None else (t - sent) * 1000 for n, t in seen.items()}


class RouteMonitor:
    """`ip monitor route` in a namespace; notes when a route to `subnet` first appears. The route
    already being there (read once the monitor runs) counts as seen at start."""

    def __init__(self, ns, subnet):
        self.subnet, self.seen = subnet, None
        self.event = threading.Event()
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "ip", "-4", "monitor", "route"],
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.ns = ns

    def _read(self):
        for line in self.proc.stdout:
            words = line.split()
            if words[:1] == ["replace"]:
                words = words[1:]
            if self.seen is None and words[:1] == [self.subnet]:
                self.seen = time.monotonic()
                self.event.set()

    def wait_started(self):
        # The monitor has subscribed once it is in its receive loop; ip prints nothing to say so,
        # so allow a moment, then check that the route is not there already.
        time.sleep(0.15)
        routes = labmod.in_ns(self.ns, "ip", "-4", "route", "show", self.subnet, capture=True).stdout
        if routes.strip():
            raise labmod.LabError(f"{self.subnet} is routed in {self.ns} before it was created")

    def wait_seen(self, timeout):
        self.event.wait(timeout)
        return self.seen

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Ping:
    """A continuous `ping -i 0.01` from one pod to another."""

    def __init__(self, lab, src_key, dst_key):
        src = lab.state["pods"][src_key]["ns"]
        self.dst_ip = lab.state["pods"][dst_key]["ip"]
        self.proc = subprocess.Popen(["ip", "netns", "exec", src, "ping", "-i", "0.01", "-W", "1",
                                      self.dst_ip], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def finish(self):
        """(sent, received, the summary text)."""
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=10)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        if not m:
            raise labmod.LabError(f"no ping summary: {out[-500:]}")
        return int(m.group(1)), int(m.group(2)), out[-300:]


class OutageDrill(unittest.TestCase):
    """The drill: outage under a continuous ping, then the assertions of issue #9."""
    tag = "da"
    api, pod_cidr = "double", False
    back_limit_ms = BACK_LIMIT_MS
    must_rewatch = True  # the outage ends every watch (the server went away)

    def outage(self, d):
        """Starts the outage; returns a function that ends it and returns when it did."""
        raise NotImplementedError

    def test_outage(self):
        d = ApiLab(self.tag, api=self.api, pod_cidr=self.pod_cidr)
        self.addCleanup(d.down)
        d.up()
        peer, subnet = d.new_peer(1)
        time.sleep(2.0)  # the watches are established and idle
        before = d.all_metrics()
        ping = Ping(d.lab, "node1/p1", "node2/p1")
        try:
            time.sleep(1.0)
            bring_back = self.outage(d)
            time.sleep(OUTAGE_S)
            back, sent, latency = d.back_and_create(bring_back, peer, subnet)
            time.sleep(0.5)
        finally:
            sent_pings, received, summary = ping.finish()
        after = d.all_metrics()
        report = {n: ("not routed" if ms is None else f"{ms:.0f} ms") for n, ms in latency.items()}
        sys.stderr.write(f"\n  [{type(self).__name__}] outage {OUTAGE_S:.0f} s; create sent "
                         f"{(sent - back) * 1000:.0f} ms after the API was back; routed: {report}; "
                         f"pings {received}/{sent_pings}; cut dropped (from, to the API) {d.cut_dropped}; relists "
                         f"{ {n: after[n].get('weft_kube_relists_total', 0) - before[n].get('weft_kube_relists_total', 0) for n in after} } ")
        self.assertGreater(sent_pings, OUTAGE_S * 20, summary)  # ping -i 0.01 manages ~30/s here
        self.assertEqual(sent_pings, received, f"lost {sent_pings - received} of {sent_pings} pings:\n{summary}")
        for node in d.lab.state["nodes"]:
            self.assertTrue(d.weftd_running(node), f"weftd on {node} exited during the outage")
            relists = after[node]["weft_kube_relists_total"] - before[node]["weft_kube_relists_total"]
            self.assertLessEqual(relists, 1, f"{node} relisted {relists} times")
            if self.must_rewatch:
                self.assertGreater(after[node]["weft_kube_watches_total"],
                                   before[node]["weft_kube_watches_total"], f"{node} never rewatched")
        for node, ms in latency.items():
            self.assertIsNotNone(ms, f"{node} never routed {subnet}")
            self.assertLess(ms, self.back_limit_ms, f"{node} routed {subnet} {ms:.0f} ms after its create "
                                               f"(all: {report}); its log:\n{d.log_tail(node)}")


class ApiStop(OutageDrill):
    """The API test double stopped (SIGTERM) for the outage, then started on its saved state."""
    tag = "ds"
    back_limit_ms = STOP_BACK_LIMIT_MS

    def outage(self, d):
        d.stop_api()
        return d.start_api


class LinkCut(OutageDrill):
    """The API's packets dropped both ways for the outage: open connections hang, no reset. A
    watch that was merely quiet may survive the cut (TCP resumes), so no rewatch is required."""
    tag = "dc"
    must_rewatch = False

    def outage(self, d):
        d.cut_link()
        return d.restore_link


# ---- against the real control plane (test/controlplane), both lease modes
REAL_BACK_LIMIT_MS = 1000  # kube-apiserver killed: a fresh TLS connection, a 410, one relist


class RealApiKill(ApiStop):
    """kube-apiserver killed by its PID (SIGKILL) for the outage and started again on the same
    etcd: the watches come back with 410 Expired and relist once."""
    tag, api, back_limit_ms = "rk", "real", REAL_BACK_LIMIT_MS


class RealApiKillPodCidr(RealApiKill):
    tag, pod_cidr = "rq", True


class RealLinkCut(LinkCut):
    tag, api = "rc", "real"


class RealLinkCutPodCidr(RealLinkCut):
    tag, pod_cidr = "rd", True


if __name__ == "__main__":
    unittest.main()
