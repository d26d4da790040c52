"""End-to-end tests on the lab: weftd in network namespaces against the API test double, and
the same scenarios against a real kube-apiserver + kube-controller-manager 1.20.2 (the Real*
classes, in both lease modes: weft's annotation lease, and spec.podCIDR assigned by the
controller-manager's node-ipam as with kubeadm --pod-network-cidr). The *DualStack* classes
(issue #19) run the lab with an IPv6 overlay too (lab.py --dual-stack [--v6-underlay]), the
*Ipv6Only* classes with the IPv6 overlay alone (lab.py --ipv6-only).

Each test builds a fresh lab with a unique name and removes it, also when it fails.
Run one with: WEFT_BUILD_DIR=build python3 -m unittest -v test_lab.Smoke
"""

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import lab as labmod  # noqa: E402

BUILD = os.environ.get("WEFT_BUILD_DIR", os.path.join(labmod.ROOT, "build"))
_counter = [0]


def unique_name():
    _counter[0] += 1
    return f"e{os.getpid() % 100000}{_counter[0]}"


class LabCase(unittest.TestCase):
    nodes, pods, pod_cidr = 3, 2, False
    api = "double"
    dual_stack, v6_underlay, ipv6_only = False, False, False

    def setUp(self):
        self.lab = labmod.Lab(unique_name(), BUILD, self.api)
        self.addCleanup(self.lab.down)
        self.lab.up(self.nodes, self.pods, self.pod_cidr, dual_stack=self.dual_stack,
                    v6_underlay=self.v6_underlay, ipv6_only=self.ipv6_only)

    def ns(self, node):
        return self.lab.state["nodes"][node]["ns"]

    def subnet_of(self, node):
        return self.lab.node_annotations(node)["weft.io/subnet"]

    def routes(self, node):
        return labmod.in_ns(self.ns(node), "ip", "-4", "route", "show", check=False, capture=True).stdout

    def wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return time.monotonic()
            time.sleep(0.01)
        self.fail(f"not within {timeout}s: {what}")

    def assert_smoke(self):
        matrix, failures = self.lab.smoke()
        table = "\n".join("  ".join(r) for r in matrix)
        self.assertEqual(failures, 0, f"smoke failures:\n{table}")
        checks = sum(1 for row in matrix[1:] for c in row[1:] if c != "-")
        self.assertEqual(checks, self.nodes * self.pods * (self.nodes - 1) * self.pods)


class Smoke(LabCase):
    def test_every_cross_node_ping_and_curl_succeeds(self):
        self.assert_smoke()
        subnets = {self.subnet_of(n) for n in self.lab.state["nodes"]}
        self.assertEqual(len(subnets), self.nodes, "every node has its own subnet")
        for s in subnets:
            self.assertTrue(s.startswith("10.244.") and s.endswith("/24"), s)


class SmokePodCidr(LabCase):
    pod_cidr = True

    def test_podcidr_mode_uses_the_assigned_cidr(self):
        self.assert_smoke()
        for node in self.lab.state["nodes"]:
            self.assertEqual(self.subnet_of(node), self.lab.pod_cidr(node))


class SmokeDualStack(LabCase):
    """Issue #19: a dual-stack lab (EnableIPv6, IPv6Network fd00:10:244::/56). Every pod pings
    and curls every pod on another node over IPv4 and over IPv6, and the kernel state shows the
    IPv6 half is weft's own: each node's IPv6 /64 published (weft.io/subnet-v6,
    backend-v6-data), a route to every peer's /64 through the IPv6 VXLAN device, an FDB entry
    per peer to its underlay address, and the smoke's IPv6 pings counted on that device.
    This class: the API test double, lease mode (the /64 has the IPv4 /24's index), IPv4
    underlay (IPv6 VXLAN on weft-v6.2, VNI 1 + 1, over 192.0.2.0/24).
    The IPv6-only classes below run the same test with no IPv4 half: it then also checks that
    nothing of IPv4 is left (pods, VTEP, annotations, subnet.env, nftables)."""
    dual_stack = True

    @property
    def vni6(self):
        return 1 if self.v6_underlay else 2

    @property
    def dev6(self):
        return f"weft-v6.{self.vni6}"

    def link(self, node, dev):
        out = labmod.in_ns(self.ns(node), "ip", "-j", "-s", "-d", "link", "show", "dev", dev, check=False,
                           capture=True).stdout
        return (json.loads(out) or [None])[0] if out.strip() else None

    def rx_packets(self):
        return {n: (self.link(n, self.dev6) or {}).get("stats64", {}).get("rx", {}).get("packets", 0)
                for n in self.lab.state["nodes"]}

    def underlay_ip(self, node):
        info = self.lab.state["nodes"][node]
        return info["ip6"] if self.v6_underlay else info["ip"]

    @property
    def expected_cell(self):
        """What smoke reports for a pair of pods: both families, or IPv6 alone."""
        return "ping6+curl6" if self.ipv6_only else "ping+curl+ping6+curl6"

    def expected_subnets(self, node, ann):
        """(IPv4 subnet, IPv6 subnet) the node must have: its podCIDRs, or in lease mode its
        IPv4 lease and the /64 with the same index. IPv6 only: (None, its one IPv6 podCIDR, or
        in lease mode its leased /64, below the lab's IPv6SubnetMax)."""
        if self.ipv6_only:
            if self.pod_cidr:
                cidrs = self.lab.pod_cidrs(node)
                self.assertEqual(len(cidrs), 1, f"{node}: one IPv6 podCIDR: {cidrs}")
                self.assertEqual(ipaddress.ip_network(cidrs[0]).version, 6, f"{node}: {cidrs}")
                return None, cidrs[0]
            v6 = ann.get("weft.io/subnet-v6")
            self.assertIsNotNone(v6, f"{node} leased an IPv6 subnet: {ann}")
            self.assertLessEqual(ipaddress.ip_network(v6).network_address,
                                 ipaddress.ip_address(labmod.SUBNET_MAX_V6), f"{node}: IPv6SubnetMax")
            return None, v6
        if self.pod_cidr:
            cidrs = self.lab.pod_cidrs(node)
            self.assertEqual(len(cidrs), 2, f"{node}: one podCIDR per family: {cidrs}")
            return cidrs[0], cidrs[1]
        v4 = ipaddress.ip_network(ann["weft.io/subnet"])
        index = int(v4.network_address) >> 8 & 0xff
        return str(v4), labmod.pod_cidr_v6(index)

    def network_condition(self, node):
        node_obj = json.loads(self.lab.kubectl("get-node", node))
        for c in node_obj.get("status", {}).get("conditions", []):
            if c.get("type") == "NetworkUnavailable":
                return f"{c.get('status')} {c.get('message', '')}"
        return ""

    def weftd_complaints(self, lines=4):
        """The last warning/error lines of every weftd log, for a failure message."""
        out = []
        for node in sorted(self.lab.state["nodes"]):
            try:
                with open(os.path.join(self.lab.node_dir(node), "weftd.log"), errors="replace") as f:
                    bad = [line.rstrip()[:300] for line in f if " warning " in line or " error " in line]
            except OSError:
                bad = []
            out += [f"{node}: {line}" for line in bad[-lines:]]
        return "\n".join(out) or "(no warnings in the weftd logs)"

    def assert_nothing_ipv4(self, node, ann):
        """IPv6 only: no IPv4 VTEP, annotation, subnet.env key, nftables table, pod address or
        pod route; the pods' only route out is ::/0."""
        self.assertIsNone(self.link(node, "weft.1"), f"{node}: no IPv4 VTEP")
        for key in ("weft.io/subnet", "weft.io/public-ip", "weft.io/backend-data", "weft.io/subnet-claim",
                    "weft.io/subnet-v6-claim"):
            self.assertNotIn(key, ann, node)
        for key in ("weft.io/public-ipv6", "weft.io/backend-type", "weft.io/claimed-at"):
            self.assertIn(key, ann, node)
        dotted = {k: v for k, v in ann.items() if k.startswith("weft.io/") and re.search(r"\d+\.\d+\.\d+\.\d+", v)}
        self.assertEqual(dotted, {}, f"{node}: weft's annotations name no IPv4 address")
        with open(os.path.join(self.lab.node_dir(node), "subnet.env")) as fh:
            keys = {line.split("=", 1)[0] for line in fh if "=" in line}
        self.assertEqual(keys, {"WEFT_IPV6_NETWORK", "WEFT_IPV6_SUBNET", "WEFT_MTU", "WEFT_IPMASQ"}, node)
        tables = labmod.in_ns(self.ns(node), "nft", "list", "tables", capture=True).stdout.splitlines()
        self.assertIn("table ip6 weft", tables, node)
        self.assertNotIn("table ip weft", tables, node)
        for key, pod in self.lab.state["pods"].items():
            if pod["node"] != node:
                continue
            self.assertIsNone(pod["ip"], key)
            addrs = json.loads(labmod.in_ns(pod["ns"], "ip", "-j", "-4", "addr", "show", capture=True).stdout)
            v4 = [a["local"] for link in addrs for a in link.get("addr_info", [])
                  if not ipaddress.ip_address(a["local"]).is_loopback]
            self.assertEqual(v4, [], f"{key}: no IPv4 address but loopback")
            self.assertEqual(labmod.in_ns(pod["ns"], "ip", "-4", "route", "show", capture=True).stdout.strip(), "",
                             f"{key}: no IPv4 route")
            default = json.loads(labmod.in_ns(pod["ns"], "ip", "-j", "-6", "route", "show", "default",
                                              capture=True).stdout)
            self.assertEqual(len(default), 1, f"{key}: one ::/0 route: {default}")

    def test_every_cross_node_ping_and_curl_succeeds_over_each_family(self):
        before = self.rx_packets()
        matrix, failures = self.lab.smoke()
        if failures:
            table = "\n".join("  ".join(r) for r in matrix)
            self.fail(f"{failures} smoke failures:\n{table}\nweftd:\n{self.weftd_complaints()}")
        cells = [c for row in matrix[1:] for c in row[1:] if c != "-"]
        self.assertEqual(len(cells), self.nodes * self.pods * (self.nodes - 1) * self.pods)
        self.assertTrue(all(c == self.expected_cell for c in cells), cells)
        after = self.rx_packets()
        nodes = sorted(self.lab.state["nodes"])
        anns = {n: self.lab.node_annotations(n) for n in nodes}
        subnets = {}
        for node in nodes:
            ann = anns[node]
            v4, v6 = self.expected_subnets(node, ann)
            self.assertEqual(ann.get("weft.io/subnet"), v4, node)
            self.assertEqual(ann.get("weft.io/subnet-v6"), v6, f"{node}: {ann}")
            self.assertTrue(ipaddress.ip_network(v6).subnet_of(ipaddress.ip_network(labmod.NETWORK_V6)), v6)
            subnets[node] = v6
            data = json.loads(ann["weft.io/backend-v6-data"])
            link = self.link(node, self.dev6)
            self.assertIsNotNone(link, f"{node} has {self.dev6}")
            self.assertEqual(data, {"VNI": self.vni6, "VtepMAC": link["address"]}, node)
            vx = link["linkinfo"]["info_data"]
            self.assertEqual((vx["id"], vx["port"]), (self.vni6, 8472), vx)
            self.assertEqual(vx.get("local6" if self.v6_underlay else "local"), self.underlay_ip(node), vx)
            other = "weft-v6.2" if self.v6_underlay else "weft-v6.1"
            self.assertIsNone(self.link(node, other), f"{node}: no {other} on this underlay")
            if self.v6_underlay:
                self.assertEqual(ann.get("weft.io/public-ipv6"), self.underlay_ip(node), node)
                self.assertEqual(link["mtu"], 1430, f"{node}: IPv6 VXLAN over IPv6 is 70 bytes")
            else:
                # Absent, not "": kube-apiserver stores a patch's null for a key the Node never
                # had as "" (conformance check smp_null_in_absent_map), so weftd sends none.
                self.assertNotIn("weft.io/public-ipv6", ann, node)
                self.assertNotIn("weft.io/subnet-claim", ann, node)
            needle = v6 if self.ipv6_only else f"IPv6 {v6}"
            labmod.wait_for(lambda: needle in self.network_condition(node), 10,
                            f"{node}'s NetworkUnavailable message names its IPv6 subnet {v6}")
            if self.ipv6_only:
                self.assert_nothing_ipv4(node, ann)
            for pod in self.lab.state["pods"].values():
                if pod["node"] == node:
                    self.assertIn(ipaddress.ip_address(pod["ip6"]), ipaddress.ip_network(v6), pod)
        self.assertEqual(len(set(subnets.values())), self.nodes, f"every node has its own /64: {subnets}")
        for node in nodes:
            routes = json.loads(labmod.in_ns(self.ns(node), "ip", "-j", "-6", "route", "show", capture=True).stdout)
            fdb = json.loads(labmod.in_ns(self.ns(node), "bridge", "-j", "fdb", "show", "dev", self.dev6,
                                          capture=True).stdout)
            for peer in nodes:
                if peer == node:
                    continue
                via = [(r.get("dev"), "onlink" in r.get("flags", [])) for r in routes if r.get("dst") == subnets[peer]]
                self.assertEqual(via, [(self.dev6, True)], f"{node} routes {peer}'s {subnets[peer]} via "
                                                           f"{self.dev6} onlink: {routes}")
                mac = json.loads(anns[peer]["weft.io/backend-v6-data"])["VtepMAC"]
                dsts = [e.get("dst") for e in fdb if e.get("mac") == mac]
                self.assertEqual(dsts, [self.underlay_ip(peer)], f"{node}'s FDB of {self.dev6} for {peer}: {fdb}")
            # The IPv6 pings the smoke sent to this node's pods came in through the IPv6 VTEP.
            incoming = self.pods * (self.nodes - 1) * self.pods
            self.assertGreaterEqual(after[node] - before[node], incoming,
                                    f"{node}: {self.dev6} received {after[node] - before[node]} packets")


class SmokeDualStackPodCidr(SmokeDualStack):
    """podCIDR mode over the IPv4 underlay: the Nodes (no annotations before weftd's first write,
    as the lab creates them) carry 10.244.(100+K).0/24 and fd00:10:244:<100+K in hex>::/64."""
    pod_cidr = True


class SmokeDualStackV6Underlay(SmokeDualStack):
    """The IPv6 overlay over an IPv6 underlay (2001:db8::K on every eth0, weftd --public-ipv6):
    IPv6 VXLAN on weft-v6.1 whose FDB entries point at 2001:db8:: addresses, MTU 1430, nodes
    publish weft.io/public-ipv6. podCIDR mode: the double's Nodes carry 10.244.(100+K).0/24 and
    fd00:10:244:<100+K in hex>::/64."""
    v6_underlay, pod_cidr = True, True


class SmokeIpv6Only(SmokeDualStack):
    """Issue #19: an IPv6-only cluster (lab.py --ipv6-only: "EnableIPv4": false, nodes and API on
    2001:db8::/64 only, weftd --public-ipv6). Every pod pair pings -6 and curls -6; one VTEP,
    weft-v6.1 (VNI 1, IPv6 VXLAN from the node's 2001:db8:: address), no weft.1; annotations,
    subnet.env and nftables without IPv4. This class: the API test double, annotation leases."""
    dual_stack, ipv6_only, v6_underlay = False, True, True


class SmokeIpv6OnlyPodCidr(SmokeIpv6Only):
    """podCIDR mode: the double's Nodes carry one podCIDR, fd00:10:244:<100+K in hex>::/64."""
    pod_cidr = True


class BackendMtu(LabCase):
    """Issue #20 part 1: Backend.MTU means what flannel means, the MTU of the outer packets. With
    "MTU": 1400 on a path of 1400 bytes (every node's underlay port set to 1400), the VTEP and the
    pods get 1350, subnet.env says so, and a full-size unfragmentable ping crosses the overlay
    (with Backend.MTU as the VTEP's MTU, its 1450-byte outer packets would not fit the path)."""
    nodes, pods = 2, 1

    def setUp(self):
        self.lab = labmod.Lab(unique_name(), BUILD, self.api)
        self.lab.backend_mtu = 1400
        self.addCleanup(self.lab.down)
        self.lab.up(self.nodes, self.pods)
        for node in self.lab.state["nodes"]:
            labmod.in_ns(self.ns(node), "ip", "link", "set", "eth0", "mtu", "1400")

    def test_vtep_pods_and_subnet_env_get_backend_mtu_minus_50(self):
        for node in self.lab.state["nodes"]:
            link = json.loads(labmod.in_ns(self.ns(node), "ip", "-j", "link", "show", "weft.1",
                                           capture=True).stdout)[0]
            self.assertEqual(link["mtu"], 1350, node)
            with open(os.path.join(self.lab.node_dir(node), "subnet.env")) as fh:
                self.assertIn("WEFT_MTU=1350\n", fh.read(), node)
        pods = self.lab.state["pods"]
        a, b = sorted(pods)[0], sorted(pods)[-1]
        self.assertNotEqual(pods[a]["node"], pods[b]["node"])
        mtu = json.loads(labmod.in_ns(pods[a]["ns"], "ip", "-j", "link", "show", "eth0", capture=True).stdout)[0]["mtu"]
        self.assertEqual(mtu, 1350)
        full = labmod.in_ns(pods[a]["ns"], "ping", "-c", "2", "-W", "2", "-M", "do", "-s", str(1350 - 28),
                            pods[b]["ip"], check=False, capture=True)
        self.assertEqual(full.returncode, 0, full.stdout + full.stderr)
        over = labmod.in_ns(pods[a]["ns"], "ping", "-c", "1", "-W", "1", "-M", "do", "-s", str(1351 - 28),
                            pods[b]["ip"], check=False, capture=True)
        self.assertNotEqual(over.returncode, 0, "a packet over the pod MTU must not pass unfragmented")


class Join(LabCase):
    pods = 1

    def test_a_fourth_node_is_routed_everywhere_within_2s(self):
        node = self.lab.add_node(4, pod_cidr_mode=self.pod_cidr, start=False)
        if self.pod_cidr and self.lab.real_api:
            self.lab.wait_pod_cidr(node)  # node-ipam's part, before weftd (as kubelet's Node is)
        start = time.monotonic()
        self.lab.start_weftd(node)
        self.wait(lambda: "weft.io/subnet" in self.lab.node_annotations(node), 5, "node4 annotated")
        subnet = self.subnet_of(node)
        for peer in ("node1", "node2", "node3"):
            self.wait(lambda: subnet in self.routes(peer), 2 - (time.monotonic() - start),
                      f"{peer} routes node4's {subnet}")
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 2.0)
        self.lab.wait_ready(node)
        ip = self.lab.add_pod(node, "p1")
        for key, pod in self.lab.state["pods"].items():
            if pod["node"] != node:
                res = labmod.in_ns(pod["ns"], "ping", "-c1", "-W2", ip, check=False)
                self.assertEqual(res.returncode, 0, f"{key} -> node4/p1 {ip}")


class Change(LabCase):
    """A peer's public IP and VTEP MAC change (a node re-created its VTEP, or moved): every node
    rewrites its neighbor and FDB entries for it, and keeps the route."""
    pods = 0
    SUBNET, GW = "10.244.160.0/24", "10.244.160.0"  # above the lab's SubnetMax (lab.py)

    def peer_state(self, node):
        neigh = labmod.in_ns(self.ns(node), "ip", "neigh", "show", self.GW, "dev", "weft.1",
                             check=False, capture=True).stdout
        fdb = labmod.in_ns(self.ns(node), "bridge", "fdb", "show", "dev", "weft.1",
                           check=False, capture=True).stdout
        return neigh, fdb

    def annotate(self, ip, mac):
        data = json.dumps({"VNI": 1, "VtepMAC": mac}, separators=(",", ":"))
        self.lab.kubectl("annotate", "peer", f"weft.io/subnet={self.SUBNET}", f"weft.io/public-ip={ip}",
                         "weft.io/backend-type=vxlan", f"weft.io/backend-data={data}")

    def test_a_changed_peer_is_reprogrammed_everywhere(self):
        self.lab.kubectl("create-node", "peer", "--internal-ip", "192.0.2.160")
        self.annotate("192.0.2.160", "0e:00:00:00:a0:01")
        for node in self.lab.state["nodes"]:
            self.wait(lambda: "0e:00:00:00:a0:01 dst 192.0.2.160" in self.peer_state(node)[1], 5,
                      f"{node} programs the peer")
        start = time.monotonic()
        self.annotate("192.0.2.161", "0e:00:00:00:a1:01")
        for node in self.lab.state["nodes"]:
            def changed():
                neigh, fdb = self.peer_state(node)
                return ("lladdr 0e:00:00:00:a1:01" in neigh and "0e:00:00:00:a1:01 dst 192.0.2.161" in fdb
                        and "0e:00:00:00:a0:01" not in fdb)
            self.wait(changed, 2 - (time.monotonic() - start), f"{node} reprograms the changed peer")
            self.assertIn(self.SUBNET, self.routes(node))


class Leave(LabCase):
    pods = 1

    def test_a_deleted_node_disappears_from_every_peer(self):
        subnet = self.subnet_of("node3")
        for peer in ("node1", "node2"):
            self.assertIn(subnet, self.routes(peer))
        self.lab.stop_weftd("node3")
        self.lab.kubectl("delete-node", "node3")
        for peer in ("node1", "node2"):
            self.wait(lambda: subnet not in self.routes(peer), 2, f"{peer} drops {subnet}")
            neigh = labmod.in_ns(self.ns(peer), "ip", "neigh", "show", "dev", "weft.1", check=False,
                                 capture=True).stdout
            self.assertNotIn(subnet.split("/")[0], neigh)


class Restart(LabCase):
    pods = 1

    def continuous_ping(self, src, dst_ip):
        return subprocess.Popen(["ip", "netns", "exec", src, "ping", "-i", "0.01", "-W", "1", dst_ip],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def test_restarting_weftd_loses_no_packet(self):
        src = self.lab.state["pods"]["node1/p1"]["ns"]
        dst_ip = self.lab.state["pods"]["node2/p1"]["ip"]
        ping = self.continuous_ping(src, dst_ip)
        time.sleep(0.5)
        self.lab.stop_weftd("node1", signal.SIGKILL)
        self.lab.start_weftd("node1")
        self.lab.wait_ready("node1")
        self.lab.stop_weftd("node2", signal.SIGTERM)
        self.lab.start_weftd("node2")
        self.lab.wait_ready("node2")
        time.sleep(0.5)
        ping.send_signal(signal.SIGINT)
        out, _ = ping.communicate(timeout=10)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        self.assertIsNotNone(m, out)
        sent, received = int(m.group(1)), int(m.group(2))
        self.assertGreater(sent, 50, out)
        self.assertEqual(sent, received, f"lost {sent - received} of {sent} pings:\n{out[-500:]}")


class PodLifecycle(LabCase):
    nodes, pods = 2, 1

    def test_pod_del_releases_its_ip_and_a_new_pod_gets_one(self):
        ipam_dir = os.path.join(self.lab.node_dir("node1"), "ipam", "weft")
        old_ip = self.lab.state["pods"]["node1/p1"]["ip"]
        self.assertTrue(os.path.exists(os.path.join(ipam_dir, old_ip)))
        self.lab.delete_pod("node1/p1")
        self.assertFalse(os.path.exists(os.path.join(ipam_dir, old_ip)), "the IP is released")
        self.assertEqual(os.listdir(os.path.join(self.lab.node_dir("node1"), "cni-state")), [])
        new_ip = self.lab.add_pod("node1", "p2")
        self.assertTrue(new_ip.startswith(self.subnet_of("node1").rsplit(".", 1)[0] + "."), new_ip)
        self.assert_smoke_from("node2/p1", new_ip)

    def assert_smoke_from(self, key, ip):
        res = labmod.in_ns(self.lab.state["pods"][key]["ns"], "ping", "-c1", "-W2", ip, check=False)
        self.assertEqual(res.returncode, 0)


class CniBadInput(LabCase):
    nodes, pods = 1, 0

    def run_plugin(self, stdin_text, command="ADD"):
        node_ns = self.ns("node1")
        pod_ns = self.lab.ns("n1-bad")
        labmod.sh("ip", "netns", "add", pod_ns)
        self.addCleanup(labmod.sh, "ip", "netns", "del", pod_ns, check=False)
        env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_CONTAINERID": "f" * 64,
               "CNI_NETNS": f"/var/run/netns/{pod_ns}", "CNI_IFNAME": "eth0", "CNI_PATH": self.lab.cni_bin_dir}
        before = labmod.in_ns(node_ns, "ip", "-o", "link", capture=True).stdout
        res = labmod.in_ns(node_ns, os.path.join(self.lab.cni_bin_dir, "weft"), env=env, input_text=stdin_text,
                           check=False, capture=True)
        after = labmod.in_ns(node_ns, "ip", "-o", "link", capture=True).stdout
        pod_links = labmod.in_ns(pod_ns, "ip", "-o", "link", capture=True).stdout
        self.assertEqual(before, after, "no link left behind on the node")
        self.assertEqual(len(pod_links.strip().splitlines()), 1, "only lo in the pod")
        self.assertNotEqual(res.returncode, 0)
        return json.loads(res.stdout)

    def conf(self, **over):
        d = self.lab.node_dir("node1")
        c = {"cniVersion": "1.0.0", "name": "weft", "type": "weft", "subnetFile": os.path.join(d, "subnet.env"),
             "dataDir": os.path.join(d, "cni-state")}
        c.update(over)
        return json.dumps(c)

    def test_missing_subnet_env(self):
        err = self.run_plugin(self.conf(subnetFile="/nonexistent/subnet.env"))
        self.assertEqual(err["code"], 11)
        self.assertIn("is weftd running on this node?", err["msg"])
        self.assertFalse(os.listdir(os.path.join(self.lab.node_dir("node1"), "cni-state"))
                         if os.path.exists(os.path.join(self.lab.node_dir("node1"), "cni-state")) else [])

    def test_malformed_stdin(self):
        err = self.run_plugin('{"cniVersion": "1.0.0", "name": ')
        self.assertEqual(err["code"], 6)

    def test_unknown_cni_version(self):
        err = self.run_plugin(self.conf(cniVersion="7.0.0"))
        self.assertEqual(err["code"], 1)
        self.assertIn("7.0.0", err["msg"])


# ---- the same scenarios against the real control plane (test/controlplane), both lease modes
class RealSmoke(Smoke):
    api = "real"


class RealSmokePodCidr(SmokePodCidr):
    api = "real"


class RealJoin(Join):
    api = "real"


class RealJoinPodCidr(Join):
    api, pod_cidr = "real", True


class RealChange(Change):
    api = "real"


class RealChangePodCidr(Change):
    api, pod_cidr = "real", True


class RealLeave(Leave):
    api = "real"


class RealLeavePodCidr(Leave):
    api, pod_cidr = "real", True


class RealRestart(Restart):
    api = "real"


class RealRestartPodCidr(Restart):
    api, pod_cidr = "real", True


# Issue #19: dual stack against the real control plane (the IPv6DualStack gate on the apiserver
# and the controller-manager). podCIDR mode: node-ipam assigns each Node a /24 and a /64.
class RealSmokeDualStack(SmokeDualStack):
    api, pod_cidr = "real", True


class RealSmokeDualStackV6Underlay(SmokeDualStack):
    """Lease mode (no node-ipam), IPv6 underlay."""
    api, v6_underlay = "real", True


class RealSmokeIpv6Only(SmokeIpv6Only):
    """IPv6 only against the real control plane, reached at https://[2001:db8::fe]:6443: single-stack
    IPv6 node-ipam (--cluster-cidr=fd00:10:244::/56 --node-cidr-mask-size=64) gives each Node one
    /64 podCIDR, and kube-apiserver's Service range is IPv6 (fd00:10:96::/108)."""
    api, pod_cidr = "real", True


if __name__ == "__main__":
    unittest.main()
