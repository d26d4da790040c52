"""Issue #20 part 2: weft nodes in FlannelCompat mode and a flannel node in one cluster. The
flannel node is set up as flanneld v0.24.2 leaves one (test/lab/flannel_node.py says why the lab
cannot run flanneld itself, and what differs). Pods on weft nodes and on the flannel node must
ping and curl each other in both directions. The weft nodes must publish only flannel's
annotations, so that a flanneld would take them as peers.

Run one with: WEFT_BUILD_DIR=build python3 -m unittest -v test_flannel.MixedCluster
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import flannel_node  # noqa: E402
import lab as labmod  # noqa: E402

BUILD = os.environ.get("WEFT_BUILD_DIR", os.path.join(labmod.ROOT, "build"))
_counter = [0]


def unique_name():
    _counter[0] += 1
    return f"f{os.getpid() % 100000}{_counter[0]}"


class MixedCluster(unittest.TestCase):
    api = "double"

    def setUp(self):
        self.lab = labmod.Lab(unique_name(), BUILD, self.api)
        self.lab.flannel_compat = True
        self.addCleanup(self.lab.down)
        self.lab.up(2, 1, pod_cidr_mode=True)
        self.flannel = flannel_node.FlannelNode(self.lab, 3)
        self.flannel.up()
        self.flannel.add_pod()

    def ns(self, node):
        return self.lab.state["nodes"][node]["ns"]

    def test_weft_and_flannel_pods_reach_each_other(self):
        programmed = self.flannel.program_peers()
        self.assertEqual(sorted(programmed), ["node1", "node2"], "the flannel node takes the weft nodes as peers")
        mac = self.flannel.vtep_mac()
        cidr = str(self.flannel.cidr)
        gw = str(self.flannel.cidr.network_address)
        for node in ("node1", "node2"):
            def routed(node=node):
                routes = json.loads(labmod.in_ns(self.ns(node), "ip", "-j", "route", "show", cidr,
                                                 capture=True).stdout)
                return any(r.get("gateway") == gw and r.get("dev") == "weft.1" for r in routes)
            labmod.wait_for(routed, 10, f"{node} to route the flannel node's {cidr} via {gw} dev weft.1")
            fdb = json.loads(labmod.sh("bridge", "-n", self.ns(node), "-j", "fdb", "show", "dev", "weft.1",
                                       capture=True).stdout)
            self.assertEqual([e.get("dst") for e in fdb if e.get("mac") == mac], [self.flannel.ip], fdb)
            ann = self.lab.node_annotations(node)
            prefix = flannel_node.PREFIX
            self.assertEqual(ann.get(prefix + "kube-subnet-manager"), "true", ann)
            self.assertEqual(ann.get(prefix + "backend-type"), "vxlan", ann)
            self.assertEqual(ann.get(prefix + "public-ip"), self.lab.state["nodes"][node]["ip"], ann)
            data = json.loads(ann[prefix + "backend-data"])
            self.assertEqual(set(data), {"VNI", "VtepMAC"}, data)
            # Only flannel's keys, none a flanneld would not write (it would ignore them, but a
            # subnet annotation would contradict spec.podCIDR).
            self.assertEqual([k for k in ann if not k.startswith(prefix)], [], ann)
            self.assertNotIn(prefix + "subnet", ann)
        matrix, failures = self.lab.smoke()
        table = "\n".join("  ".join(r) for r in matrix)
        self.assertEqual(failures, 0, f"smoke between weft and flannel pods:\n{table}")
        flannel_row = next(r for r in matrix if r[0].startswith("flannel3/"))
        self.assertEqual(flannel_row[1:].count("ping+curl"), 2, table)


class RealMixedCluster(MixedCluster):
    """The same against a real kube-apiserver 1.20.2, whose controller-manager assigns every
    Node its podCIDR (the only way flannel's kube subnet manager works)."""
    api = "real"


if __name__ == "__main__":
    unittest.main()
