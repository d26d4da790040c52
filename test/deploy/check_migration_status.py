"""scripts/migration-status.py on crafted NodeLists: which agent runs where, and each reason the
mesh is not whole (the lab's e2e_flannel_Migration covers the healthy path on real Nodes).

    python3 check_migration_status.py --repo REPO
"""
import argparse
import copy
import io
import json
import os
import sys
import unittest

PREFIX = "flannel.alpha.coreos.com/"
REPO = None


def node(name, index, reason="FlannelIsUp", status="False"):
    return {"metadata": {"name": name, "annotations": {
        PREFIX + "backend-type": "vxlan",
        PREFIX + "backend-data": json.dumps({"VNI": 1, "VtepMAC": f"0e:00:00:00:00:0{index}"}),
        PREFIX + "public-ip": f"192.0.2.{index}",
        PREFIX + "kube-subnet-manager": "true"}},
        "spec": {"podCIDR": f"10.244.{index}.0/24"},
        "status": {"conditions": [{"type": "NetworkUnavailable", "status": status, "reason": reason,
                                   "message": "m"}]}}


class MigrationStatus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import importlib.util
        spec = importlib.util.spec_from_file_location("migration_status",
                                                      os.path.join(REPO, "scripts", "migration-status.py"))
        cls.mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cls.mod)

    def run_on(self, nodes):
        out = io.StringIO()
        rc = self.mod.report(nodes, out)
        return rc, out.getvalue()

    def test_counts_weft_and_flannel_nodes_of_a_whole_mesh(self):
        rc, out = self.run_on([node("a", 1), node("b", 2, "WeftIsUp"), node("c", 3, "WeftIsUp")])
        self.assertEqual(rc, 0, out)
        self.assertIn("2 of 3 nodes run weft; the mesh is whole", out)
        self.assertRegex(out, r"\na +flannel +10\.244\.1\.0/24 +192\.0\.2\.1 +0e:00:00:00:00:01 +ok")

    def test_each_broken_node_is_named_with_the_reason(self):
        cases = {
            "no spec.podCIDR": lambda n: n["spec"].pop("podCIDR"),
            "no kube-subnet-manager=true": lambda n: n["metadata"]["annotations"].pop(PREFIX + "kube-subnet-manager"),
            "backend-type is not vxlan": lambda n: n["metadata"]["annotations"].update({PREFIX + "backend-type": "host-gw"}),
            "no unicast VtepMAC": lambda n: n["metadata"]["annotations"].update(
                {PREFIX + "backend-data": '{"VtepMAC":"01:00:5e:00:00:01"}'}),
            "no IPv4 public-ip": lambda n: n["metadata"]["annotations"].update({PREFIX + "public-ip": "nope"}),
            "NetworkUnavailable": lambda n: n["status"]["conditions"][0].update({"status": "True"}),
        }
        for reason, damage in cases.items():
            with self.subTest(reason):
                broken = node("b", 2)
                damage(broken)
                rc, out = self.run_on([node("a", 1), broken])
                self.assertEqual(rc, 1, out)
                self.assertIn(reason, out)
                self.assertIn("NOT whole", out)

    def test_shared_addresses_break_both_nodes(self):
        twin = copy.deepcopy(node("b", 2))
        twin["metadata"]["annotations"][PREFIX + "public-ip"] = "192.0.2.1"
        rc, out = self.run_on([node("a", 1), twin])
        self.assertEqual(rc, 1)
        self.assertIn("public IP 192.0.2.1 also on b", out)
        self.assertIn("public IP 192.0.2.1 also on a", out)
        # public-ip-overwrite is what peers send to: it resolves the clash
        twin["metadata"]["annotations"][PREFIX + "public-ip-overwrite"] = "198.51.100.2"
        self.assertEqual(self.run_on([node("a", 1), twin])[0], 0)

    def test_bad_input_is_exit_2(self):
        old = sys.stdin
        try:
            sys.stdin = io.StringIO("{}")
            self.assertEqual(self.mod.main(["migration-status.py", "-"]), 2)
        finally:
            sys.stdin = old


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    args, rest = ap.parse_known_args()
    REPO = args.repo
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
