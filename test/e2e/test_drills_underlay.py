"""Underlay drills of issue #17 (part 5) on the lab: a --public-ip that is a second local address,
and an underlay NIC deleted and re-created under the same name.

Each class is one drill and one CTest test (label e2e); each builds its own 2-node lab on the API
double and removes it, also when it fails. Measured values are printed with a "drill:" prefix.
Run one with: WEFT_BUILD_DIR=build python3 -m unittest -v test_drills_underlay.Recreate
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import lab as labmod  # noqa: E402
from test_drills_node import report, run  # noqa: E402  (the node drills' helpers)

BUILD = os.environ.get("WEFT_BUILD_DIR", os.path.join(labmod.ROOT, "build"))
VTEP = "weft.1"  # vtep_name(VNI 1), backend/vxlan/vtep.cpp
PUBLIC_IP = "192.0.2.101"  # node1's second address on its underlay veth (lab nodes are 192.0.2.N)
RECREATE_BAR = 5.0  # "cross-node ping comes back within a few seconds"
_counter = [0]


def unique_name():
    _counter[0] += 1
    return f"du{os.getpid() % 10000}{_counter[0]}"




class Drill(unittest.TestCase):
    """One 2-node lab per class, removed in a class cleanup even when setup fails."""
    ipv6_only, vtep = False, VTEP

    @classmethod
    def setUpClass(cls):
        cls.lab = labmod.Lab(unique_name(), BUILD, "double")
        cls.addClassCleanup(cls.lab.down)
        cls.build_lab()

    @classmethod
    def build_lab(cls):
        cls.lab.up(2, 1, ipv6_only=cls.ipv6_only)

    def ns(self, node):
        return self.lab.state["nodes"][node]["ns"]

    def pod(self, key):
        return self.lab.state["pods"][key]

    def pod_ip(self, key):  # an IPv6-only lab's pods have "ip6" alone
        return self.pod(key)["ip"] or self.pod(key)["ip6"]

    def log_of(self, node):
        with open(os.path.join(self.lab.node_dir(node), "weftd.log"), errors="replace") as fh:
            return fh.read()

    def ping_once(self, src, dst, wait="1"):
        return labmod.in_ns(self.pod(src)["ns"], "ping", "-c", "1", "-W", wait, self.pod_ip(dst),
                            check=False).returncode == 0

    def assert_cross_node_ping(self, count=3):
        for src, dst in (("node1/p1", "node2/p1"), ("node2/p1", "node1/p1")):
            r = labmod.in_ns(self.pod(src)["ns"], "ping", "-c", str(count), "-i", "0.2", "-W", "1",
                             self.pod_ip(dst), check=False, capture=True)
            self.assertEqual(r.returncode, 0, f"{src} -> {dst}:\n{r.stdout}\nnode1's weftd log tail:\n"
                             f"{self.log_of('node1')[-1500:]}")

    def vtep_details(self, node):
        return run("ip", "-d", "-n", self.ns(node), "link", "show", self.vtep, check=False).stdout


# ---------------------------------------------------------------------------------------------
class PublicIpLocal(Drill):
    """node1 runs with --public-ip = a second address on its underlay veth: peers publish and
    allow VXLAN from that address only, so node1's VTEP must send from it."""

    @classmethod
    def build_lab(cls):
        lab = cls.lab
        lab.save()
        lab.create_underlay()
        lab.start_api()
        lab.install_cni_bin()
        lab.add_node(1, start=False)
        run("ip", "-n", lab.ns("n1"), "addr", "add", f"{PUBLIC_IP}/24", "dev", "eth0")
        lab.start_weftd("node1", ["--public-ip", PUBLIC_IP])
        lab.add_node(2)
        for node in ("node1", "node2"):
            lab.wait_ready(node)
        for node in ("node1", "node2"):
            lab.add_pod(node, "p1")

    def test_cross_node_ping_with_a_local_public_ip(self):
        self.assertEqual(self.lab.node_annotations("node1").get("weft.io/public-ip"), PUBLIC_IP)
        start = time.monotonic()
        while not (self.ping_once("node1/p1", "node2/p1") and self.ping_once("node2/p1", "node1/p1")):
            if time.monotonic() - start > 10:
                vxlan = [line.strip() for line in self.vtep_details("node1").splitlines() if "vxlan id" in line]
                self.fail(f"no cross-node ping within 10 s; node1's VTEP: {vxlan}")
            time.sleep(0.1)
        self.assert_cross_node_ping()
        self.assertIn(f"local {PUBLIC_IP} ", self.vtep_details("node1"), "the VTEP sends from the public IP")
        report(f"--public-ip {PUBLIC_IP} (second address on node1's eth0): VTEP local {PUBLIC_IP}, "
               f"cross-node ping works")


class Recreate(Drill):
    """node1's underlay veth is deleted (the kernel takes the VTEP with it) and re-created with
    the same name and address: weftd follows the name and moves the VTEP onto the new one."""

    def test_recreated_underlay_is_followed_by_name(self):
        self.assert_cross_node_ping(count=2)
        ns = self.ns("node1")
        old_index = run("ip", "-n", ns, "-o", "link", "show", "eth0").stdout.split(":")[0]
        run("ip", "-n", ns, "link", "del", "eth0")  # its peer n1 in the underlay namespace goes too
        time.sleep(1.0)  # weftd sees the VTEP vanish and retries while eth0 is gone
        self.assertFalse(self.ping_once("node1/p1", "node2/p1", wait="0.5"), "no path while eth0 is gone")
        start = time.monotonic()
        node1 = self.lab.state["nodes"]["node1"]
        self.lab.add_underlay_port(ns, "eth0", node1["ip"], "n1", node1.get("ip6"))
        new_index = run("ip", "-n", ns, "-o", "link", "show", "eth0").stdout.split(":")[0]
        deadline = start + 30
        while not (self.ping_once("node1/p1", "node2/p1", wait="0.2") and
                   self.ping_once("node2/p1", "node1/p1", wait="0.2")):
            if time.monotonic() > deadline:
                self.fail(f"cross-node ping not back within 30 s after re-creating eth0; VTEP:\n"
                          f"{self.vtep_details('node1')}\nnode1's weftd log tail:\n{self.log_of('node1')[-2000:]}")
            time.sleep(0.05)
        took = time.monotonic() - start
        report(f"underlay eth0 of node1 re-created (ifindex {old_index} -> {new_index}): "
               f"cross-node ping back after {took:.2f} s")
        self.assertLess(took, RECREATE_BAR)
        self.assertIn("dev eth0", self.vtep_details("node1"))
        self.assert_cross_node_ping()



class RecreateIpv6Only(Recreate):
    """The same in an IPv6-only lab: weft-v6.1 follows eth0 (2001:db8::1 alone) by name."""
    ipv6_only, vtep = True, "weft-v6.1"


if __name__ == "__main__":
    unittest.main()
