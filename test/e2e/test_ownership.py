"""Subnet ownership drills of issue #15 on the lab, against the real control plane by default
(etcd + kube-apiserver + kube-controller-manager 1.20.2, `lab.py up --api real`).

    LateController  weftd (SubnetSource podCIDR) starts before kube-controller-manager runs: it
                    waits (a log line every 5 s, /readyz 503, no annotation written) and takes the
                    podCIDR once the controller assigns it; a node joining afterwards costs the
                    established nodes no ping.
    CopySubnet      a Node copying node2's subnet (and lying about its claim time) is skipped on
                    every node, node2 keeps its routes; a weftd whose Node copies node2's subnet
                    says in /readyz and its NetworkUnavailable condition that it is the one skipped.
    WholeNetwork    a Node claiming the whole Network (10.244.0.0/16) is skipped, and a new node
                    still leases (it used to exit with "network full").
    Slash17         a /17 inside the network, and a wide prefix covering node2 but not node1,
                    are skipped and black-hole nobody.
    FiftyJoin       50 nodes join at once in lease mode: 0 duplicate subnets.

In each, pods on node1 and node2 ping each other every 10 ms (ping -i 0.01) throughout, and not
one ping may be lost; the hostile Node is skipped with a clear `skip peer NAME: reason` line.

API is the one constant that picks the API server: "real" (the default) or "double" (the API
test double, where the lab plays node-ipam: LateController then assigns the podCIDRs itself).
WEFT_OWNERSHIP_API overrides it. Run one with:
    WEFT_BUILD_DIR=build python3 -m unittest -v test_ownership.CopySubnet
"""

import ipaddress
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_drills_node as dn  # noqa: E402  (the drills' lab helpers: routes, metrics, pings)

labmod = dn.labmod
API = os.environ.get("WEFT_OWNERSHIP_API", "real")
JOINERS = int(os.environ.get("WEFT_OWNERSHIP_JOINERS", "50"))
report = dn.report
_counter = [0]


def unique_name():
    _counter[0] += 1
    return f"ow{os.getpid() % 10000}{_counter[0]}"


def lease_annotations(subnet, public_ip, mac, claimed_at=None):
    a = dn.lease_annotations(subnet, public_ip, mac)
    if claimed_at:
        a["weft.io/claimed-at"] = claimed_at
    return a


def widest_apart(subnet, other):
    """The shortest prefix, /17 or longer, that holds `subnet` but not `other`."""
    net, o = ipaddress.ip_network(subnet), ipaddress.ip_network(other)
    for length in range(17, net.prefixlen):
        wide = net.supernet(new_prefix=length)
        if not wide.overlaps(o):
            return str(wide)
    raise AssertionError(f"{subnet} and {other} are not apart")


def set_net_conf(lab, node, **extra):
    path = os.path.join(lab.node_dir(node), "net-conf.json")
    with open(path) as fh:
        conf = json.load(fh)
    conf.update(extra)
    with open(path, "w") as fh:
        json.dump(conf, fh)


class OwnershipDrill(dn.Drill):
    """A 2-node lab (one pod each) on the API kind of API, in weft's lease mode by default."""
    api = API
    nodes, pods = 2, 1

    @classmethod
    def setUpClass(cls):
        cls.lab = labmod.Lab(unique_name(), dn.BUILD, cls.api)
        cls.addClassCleanup(cls.lab.down)
        cls.lab.up(cls.nodes, cls.pods, cls.pod_cidr)

    def pings(self):
        """Both directions between node1/p1 and node2/p1."""
        return [self.start_ping("node1/p1", "node2/p1"), self.start_ping("node2/p1", "node1/p1")]

    def assert_no_ping_lost(self, pingers, what):
        for p in pingers:
            sent, received = self.stop_ping(p, what)
            self.assertGreater(sent, 50, "the ping ran")
            self.assertEqual(sent, received, f"{what}: {p.what} lost pings\n{p.out[-300:]}")

    def skip_line(self, node, name):
        lines = [line for line in self.log_of(node).splitlines() if f"skip peer {name}:" in line]
        return lines[-1] if lines else ""

    def wait_skipped(self, name, *words, nodes=("node1", "node2")):
        for node in nodes:
            self.wait(lambda: self.skip_line(node, name), 10, f"{node} logs `skip peer {name}: ...`")
            line = self.skip_line(node, name)
            for w in words:
                self.assertIn(w, line)
            report(f"{node}: {line.split('] ', 2)[-1]}")

    def established(self):
        """What node1 and node2 program for each other: route, neighbour and FDB entry."""
        out = {}
        for node, peer in (("node1", "node2"), ("node2", "node1")):
            out[node] = self.peer_entries(node, self.subnet_of(peer), self.vtep_mac_of(peer),
                                          self.lab.state["nodes"][peer]["ip"])
        return out

    def weftctl(self, node):
        weftctl = os.path.join(dn.BUILD, "cmd", "weftctl", "weftctl")
        res = labmod.in_ns(self.ns(node), weftctl, "status", "--endpoint", f"127.0.0.1:{labmod.HEALTHZ_PORT}",
                           check=False, capture=True)
        return res.stdout


# ---------------------------------------------------------------------------------------------
class LateController(dn.Drill):
    """Issue #15, 3: weftd starts before node-ipam reached its Node. With SubnetSource podCIDR it
    waits (never leasing on its own) and takes the controller's podCIDR."""
    api, pod_cidr = API, True
    WAIT_S = 7  # weftd waits this long before the controller starts (a log line every 5 s)

    @classmethod
    def setUpClass(cls):
        lab = cls.lab = labmod.Lab(unique_name(), dn.BUILD, cls.api)
        cls.addClassCleanup(lab.down)
        lab.state["pod_cidr_mode"] = True
        lab.save()
        lab.create_underlay()
        if lab.real_api:
            lab.start_real_api(controller_manager=False)
        else:
            lab.start_api()
        lab.install_cni_bin()
        for i in (1, 2):
            node = lab.add_node(i, pod_cidr_mode=False, start=False)  # no podCIDR yet
            set_net_conf(lab, node, SubnetSource="podCIDR")
            lab.start_weftd(node)

    def assign_pod_cidrs(self):
        if self.lab.real_api:
            self.lab.start_controller_manager()
            for node in self.lab.state["nodes"]:
                self.lab.wait_pod_cidr(node, timeout=60)
        else:  # the double has no controller: play node-ipam
            for node, info in self.lab.state["nodes"].items():
                self.lab.kubectl("patch", node, json.dumps({"spec": {"podCIDR": f"10.244.{100 + info['index']}.0/24"}}))

    def test_weftd_waits_for_the_podcidr_then_uses_it(self):
        time.sleep(self.WAIT_S)
        for node in ("node1", "node2"):
            self.assertTrue(self.weftd_alive(node), f"{node}'s weftd waits, it does not exit")
            code, body = self.http(node, "/readyz")
            self.assertEqual(code, 503)
            self.assertIn("waiting for spec.podCIDR", body)
            self.assertEqual({k: v for k, v in self.annotations(node).items() if k.startswith("weft.io/")}, {},
                             f"{node} wrote no lease while waiting")
            waits = [line for line in self.log_of(node).splitlines() if "waiting for spec.podCIDR" in line]
            self.assertGreaterEqual(len(waits), 2, "a log line every 5 s")
            report(f"late controller, {node}: {len(waits)} lines like: {waits[-1].split('] ', 2)[-1]}")
        start = time.monotonic()
        self.assign_pod_cidrs()
        for node in ("node1", "node2"):
            self.lab.wait_ready(node, timeout=30)
            self.assertEqual(self.subnet_of(node), self.lab.pod_cidr(node))
        report(f"late controller: both nodes ready on their podCIDRs {time.monotonic() - start:.1f} s after "
               f"the controller started")
        for node in ("node1", "node2"):
            self.lab.add_pod(node, "p1")
        pingers = [self.start_ping("node1/p1", "node2/p1"), self.start_ping("node2/p1", "node1/p1")]
        time.sleep(0.5)
        node3 = self.lab.add_node(3, pod_cidr_mode=self.lab.real_api, start=False)
        set_net_conf(self.lab, node3, SubnetSource="podCIDR")
        self.lab.start_weftd(node3)
        if not self.lab.real_api:
            self.lab.kubectl("patch", node3, json.dumps({"spec": {"podCIDR": "10.244.103.0/24"}}))
        self.lab.wait_ready(node3, timeout=30)
        self.assertEqual(self.subnet_of(node3), self.lab.pod_cidr(node3))
        time.sleep(0.5)
        for p in pingers:
            sent, received = self.stop_ping(p, "late controller, node3 joins")
            self.assertEqual(sent, received, p.out[-300:])


# ---------------------------------------------------------------------------------------------
class CopySubnet(OwnershipDrill):
    """Issue #15, 1: a Node annotated with node2's subnet cut node2 off (both were dropped)."""

    def test_a_node_copying_a_subnet_is_skipped_and_the_owner_keeps_its_routes(self):
        before = self.established()
        pingers = self.pings()
        time.sleep(0.5)
        # It lies about its claim time too: a claim cannot predate its Node.
        ann = lease_annotations(self.subnet_of("node2"), "192.0.2.231", "0e:00:00:00:e7:01", "2000-01-01T00:00:00Z")
        self.lab.kubectl("create-node", "g-copy", "--internal-ip", "192.0.2.231")
        self.lab.kubectl("annotate", "g-copy", *[f"{k}={v}" for k, v in ann.items()])
        self.wait_skipped("g-copy", "overlaps node node2's", "the earlier claim keeps it", nodes=("node1",))
        self.wait_skipped("g-copy", "overlaps our own subnet", nodes=("node2",))
        self.assertEqual(self.metric("node1", "weft_kube_nodes_outranked"), 1)
        self.assertIn(f"{self.subnet_of('node2')} via", self.routes("node1"))
        status = self.weftctl("node1")
        self.assertIn("skipped     g-copy: subnet", status)
        report("weftctl status on node1: " + [line for line in status.splitlines() if "g-copy" in line][0].strip())
        time.sleep(1.0)
        self.assertEqual(self.established(), before, "node1 and node2 keep each other's entries")
        self.lab.kubectl("delete-node", "g-copy")
        time.sleep(0.5)
        self.assertEqual(self.established(), before)
        self.assert_no_ping_lost(pingers, "a Node copies node2's subnet")

    def test_the_copier_knows_it_is_skipped(self):
        """A node joining with node2's subnet already on its Node (a clash, or a copy) keeps
        serving it, and says in /readyz and its NetworkUnavailable condition that every other
        node skips it."""
        before = self.established()
        pingers = self.pings()
        time.sleep(0.5)
        node3 = self.lab.add_node(3, start=False)
        ann = lease_annotations(self.subnet_of("node2"), self.lab.state["nodes"][node3]["ip"], "0e:00:00:00:e7:03",
                                "2000-01-01T00:00:00Z")
        self.lab.kubectl("annotate", node3, *[f"{k}={v}" for k, v in ann.items()])
        self.lab.start_weftd(node3)
        self.wait(lambda: "other nodes skip this node" in self.http(node3, "/readyz")[1], 20,
                  "node3's /readyz says it is skipped")
        code, body = self.http(node3, "/readyz")
        self.assertEqual(code, 503)
        self.assertIn("node node2 claimed", body)
        report(f"copier /readyz: {body.strip()}")
        self.wait(lambda: "other nodes skip this node" in self.condition(node3).get("message", ""), 10,
                  "node3's NetworkUnavailable condition says it is skipped")
        self.assertEqual(self.condition(node3).get("status"), "True")
        self.assertEqual(self.metric(node3, "weft_own_subnet_conflict"), 1)
        self.wait_skipped(node3, "overlaps node node2's", nodes=("node1",))
        self.assertIn(node3 + ": subnet", self.weftctl("node1"))
        time.sleep(0.5)
        self.assertEqual(self.established(), before)
        self.assert_no_ping_lost(pingers, "node3 joins with a copy of node2's subnet")


# ---------------------------------------------------------------------------------------------
class WholeNetwork(OwnershipDrill):
    """Issue #15, 2: a Node annotated 10.244.0.0/16 made a new node's weftd exit (network full)."""

    def test_a_node_claiming_the_network_is_skipped_and_new_nodes_still_lease(self):
        pingers = self.pings()
        time.sleep(0.5)
        self.lab.kubectl("create-node", "g-whole", "--internal-ip", "192.0.2.232")
        self.lab.kubectl("annotate", "g-whole", *[f"{k}={v}" for k, v in
                                                   lease_annotations("10.244.0.0/16", "192.0.2.232",
                                                                     "0e:00:00:00:e8:01").items()])
        self.wait_skipped("g-whole", "is a /16", "SubnetLen")
        node3 = self.lab.add_node(3)
        self.lab.wait_ready(node3, timeout=30)
        self.assertTrue(self.weftd_alive(node3))
        report(f"whole network claimed: node3 leased {self.subnet_of(node3)}")
        for node in ("node1", "node2"):
            self.wait(lambda: f"{self.subnet_of(node3)} via" in self.routes(node), 5, f"{node} routes node3")
        time.sleep(0.5)
        self.assert_no_ping_lost(pingers, "a Node claims the whole network")


class Slash17(OwnershipDrill):
    """Issue #15, 1: a peer's subnet was not checked against SubnetLen: a /17 black-holed every
    node inside it."""

    def test_a_slash_17_is_skipped_and_takes_no_route(self):
        before = {n: self.routes(n) for n in ("node1", "node2")}
        pingers = self.pings()
        time.sleep(0.5)
        self.lab.kubectl("create-node", "g-17", "--internal-ip", "192.0.2.233")
        self.lab.kubectl("annotate", "g-17", *[f"{k}={v}" for k, v in
                                                lease_annotations("10.244.0.0/17", "192.0.2.233",
                                                                  "0e:00:00:00:e9:01").items()])
        self.wait_skipped("g-17", "is a /17")
        # The lab's leases all lie in 10.244.0.0/17 (SubnetMax 10.244.99.0), so that one covers
        # node1 too. A wide prefix that covers node2's subnet and not node1's is what cut node2
        # off from the nodes outside it.
        wide = widest_apart(self.subnet_of("node2"), self.subnet_of("node1"))
        self.lab.kubectl("create-node", "g-wide", "--internal-ip", "192.0.2.234")
        self.lab.kubectl("annotate", "g-wide", *[f"{k}={v}" for k, v in
                                                  lease_annotations(wide, "192.0.2.234", "0e:00:00:00:ea:01").items()])
        self.wait_skipped("g-wide", f"is a /{wide.split('/')[1]}", nodes=("node1",))
        time.sleep(1.0)
        for node in ("node1", "node2"):
            self.assertEqual(self.routes(node), before[node], f"{node}: no route changed")
            self.assertNotIn("10.244.0.0/17", self.routes(node))
        self.assert_no_ping_lost(pingers, "a Node claims a /17")


# ---------------------------------------------------------------------------------------------
class FiftyJoin(OwnershipDrill):
    """Fifty nodes join at once in lease mode: every subnet distinct, the established nodes lose
    no ping."""

    def test_fifty_nodes_join_at_once_without_duplicates(self):
        pingers = self.pings()
        time.sleep(0.5)
        joiners = [self.lab.add_node(i, start=False) for i in range(3, 3 + JOINERS)]
        start = time.monotonic()
        for node in joiners:
            self.lab.start_weftd(node)
        for node in joiners:
            self.lab.wait_ready(node, timeout=120)
        took = time.monotonic() - start
        subnets = {node: self.subnet_of(node) for node in self.lab.state["nodes"]}
        dupes = len(subnets) - len(set(subnets.values()))
        conflicts = sum(self.metric(n, "weft_kube_nodes_outranked") or 0 for n in joiners)
        report(f"{JOINERS} nodes joined at once: all ready in {took:.1f} s, {len(set(subnets.values()))} "
               f"distinct subnets for {len(subnets)} nodes, {dupes} duplicates, {conflicts:.0f} outranked")
        self.assertEqual(dupes, 0, subnets)
        for node in ("node1", "node2"):
            self.wait(lambda: self.metric(node, "weft_peers_programmed") == len(subnets) - 1, 30,
                      f"{node} programs every joiner")
        time.sleep(0.5)
        self.assert_no_ping_lost(pingers, f"{JOINERS} nodes join at once")


if __name__ == "__main__":
    unittest.main()
