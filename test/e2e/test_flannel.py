"""Issue #20 part 2: weft nodes in FlannelCompat mode and a flannel node in one cluster. The
flannel node is set up as flanneld v0.24.2 leaves one (test/lab/flannel_node.py says why the lab
cannot run flanneld itself, and what differs). Pods on weft nodes and on the flannel node must
ping and curl each other in both directions. The weft nodes must publish only flannel's
annotations, so that a flanneld would take them as peers.

Run one with: WEFT_BUILD_DIR=build python3 -m unittest -v test_flannel.MixedCluster
"""

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import flannel_node  # noqa: E402
import lab as labmod  # noqa: E402

BUILD = os.environ.get("WEFT_BUILD_DIR", os.path.join(labmod.ROOT, "build"))
STATUS = os.path.join(labmod.ROOT, "scripts", "migration-status.py")
_counter = [0]


def unique_name():
    _counter[0] += 1
    return f"f{os.getpid() % 100000}{_counter[0]}"


def pinger(lab, src_key, dst_key, seconds):
    """ping every 10 ms from one lab pod to another for `seconds`, in the background."""
    src, dst = lab.state["pods"][src_key], lab.state["pods"][dst_key]
    return subprocess.Popen(["ip", "netns", "exec", src["ns"], "ping", "-i", "0.01", "-W", "1",
                             "-w", str(seconds), dst["ip"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


ECHO_SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000))
s.listen(1)
c, _ = s.accept()
while True:
    data = c.recv(4096)
    if not data:
        break
    c.sendall(data)
"""

# One TCP connection kept open for `seconds`: a numbered line every 10 ms, each echoed back in
# order within 1 s. Prints "N echoed"; exits 1 when the connection breaks or an echo is late.
ECHO_CLIENT = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 9000), timeout=2)
c.settimeout(1)
end, n, buf = time.monotonic() + float(sys.argv[2]), 0, b""
while time.monotonic() < end:
    n += 1
    c.sendall(b"%d\\n" % n)
    while not buf.endswith(b"%d\\n" % n):
        buf += c.recv(4096)
    time.sleep(0.01)
print(n, "echoed")
"""


def tcp_echo(lab, src_key, dst_key, seconds):
    """A long-lived TCP connection from one lab pod to another, in the background."""
    src, dst = lab.state["pods"][src_key], lab.state["pods"][dst_key]
    server = subprocess.Popen(["ip", "netns", "exec", dst["ns"], sys.executable, "-c", ECHO_SERVER])
    labmod.wait_for(lambda: labmod.in_ns(dst["ns"], "ss", "-ltnH", "sport = :9000", capture=True).stdout.strip(),
                    5, "the echo server")
    client = subprocess.Popen(["ip", "netns", "exec", src["ns"], sys.executable, "-c", ECHO_CLIENT, dst["ip"],
                               str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return server, client


def counts(proc):
    """(sent, received) of a finished pinger."""
    out = proc.communicate(timeout=60)[0]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    if not m:
        raise AssertionError(f"no ping summary: {out[-500:]}")
    return int(m.group(1)), int(m.group(2))


def compat_lab(test, weft_nodes, pods):
    """A lab on test.api whose weft nodes run FlannelCompat (podCIDRs from the API), removed
    when the test ends."""
    lab = labmod.Lab(unique_name(), BUILD, test.api)
    lab.flannel_compat = True
    test.addCleanup(lab.down)
    lab.up(weft_nodes, pods, pod_cidr_mode=True)
    return lab


class FlannelLabCase(unittest.TestCase):
    """Two weft nodes (FlannelCompat) with a pod each, and flannel3 with a pod."""
    api = "double"

    def setUp(self):
        self.lab = compat_lab(self, weft_nodes=2, pods=1)
        self.flannel = flannel_node.FlannelNode(self.lab, 3)
        self.flannel.up()
        self.flannel.add_pod()

    def ns(self, node):
        return self.lab.state["nodes"][node]["ns"]


class MixedCluster(FlannelLabCase):
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
                return any(r.get("gateway") == gw and r.get("dev") == "flannel.1" for r in routes)
            labmod.wait_for(routed, 10, f"{node} to route the flannel node's {cidr} via {gw} dev flannel.1")
            fdb = json.loads(labmod.sh("bridge", "-n", self.ns(node), "-j", "fdb", "show", "dev", "flannel.1",
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


class TakeOver(FlannelLabCase):
    """Issue #20 part 3: weftd started on the flannel-shaped node adopts flannel.1 (its ifindex,
    MAC and entries) in place. No peer has to change an entry, and pings every 10 ms both ways
    across the takeover lose nothing."""

    def link(self, dev):
        out = labmod.in_ns(self.flannel.ns, "ip", "-j", "link", "show", dev, check=False, capture=True).stdout
        return (json.loads(out) or [None])[0] if out.strip() else None

    def test_weftd_adopts_flannel_1_without_losing_a_ping(self):
        self.flannel.program_peers()
        matrix, failures = self.lab.smoke()
        self.assertEqual(failures, 0, "\n".join("  ".join(r) for r in matrix))
        before = self.link("flannel.1")
        fpod = next(k for k in self.lab.state["pods"] if k.startswith("flannel3/"))
        pingers = [pinger(self.lab, fpod, "node1/p1", 6), pinger(self.lab, "node2/p1", fpod, 6)]
        time.sleep(1)
        self.flannel.take_over()
        for p in pingers:
            sent, got = counts(p)
            self.assertGreater(sent, 300)
            self.assertEqual(sent, got, f"{sent - got} of {sent} pings lost across the takeover")
        after = self.link("flannel.1")
        self.assertEqual((after["ifindex"], after["address"]), (before["ifindex"], before["address"]))
        self.assertIsNone(self.link("weft.1"), "weftd adopts flannel.1 rather than making weft.1")
        ann = self.lab.node_annotations(self.flannel.name)
        self.assertEqual(json.loads(ann[flannel_node.PREFIX + "backend-data"])["VtepMAC"], before["address"])
        status = json.loads(labmod.in_ns(self.flannel.ns, "curl", "-sf", f"http://127.0.0.1:{labmod.HEALTHZ_PORT}/status",
                                         capture=True).stdout)
        self.assertEqual(sorted(p["node"] for p in status["peers"]), ["node1", "node2"])
        self.assertEqual(status["vtep"]["name"], "flannel.1")
        matrix, failures = self.lab.smoke()
        self.assertEqual(failures, 0, "\n".join("  ".join(r) for r in matrix))


class Migration(unittest.TestCase):
    """Issue #20 part 5, in the lab: three nodes set up as flanneld leaves them, each with a pod,
    are taken over by weftd one by one. Every pod pings every pod on another node every 10 ms
    meanwhile, and one TCP connection echoes a line every 10 ms: nothing is lost, the connection
    stays up, and every pod keeps its address. Then a pod flannel's plugin
    made is deleted through weft's plugin (its host-local record is released), and a new pod
    gets its address from the same host-local records."""
    api = "double"

    def setUp(self):
        self.lab = compat_lab(self, weft_nodes=0, pods=0)
        self.nodes = [flannel_node.FlannelNode(self.lab, i) for i in (1, 2, 3)]
        for n in self.nodes:
            n.up()
            n.add_pod()
        for n in self.nodes:
            n.program_peers()

    def migration_status(self):
        """scripts/migration-status.py on the Nodes as the API has them: (exit code, output)."""
        res = subprocess.run([sys.executable, STATUS, "-"], input=self.lab.kubectl("list-nodes"),
                             capture_output=True, text=True, check=False)
        return res.returncode, res.stdout + res.stderr

    def addresses(self):
        out = {}
        for key, p in self.lab.state["pods"].items():
            j = json.loads(labmod.in_ns(p["ns"], "ip", "-j", "-4", "addr", "show", "eth0", capture=True).stdout)
            out[key] = [a["local"] for a in j[0]["addr_info"]]
        return out

    def test_node_by_node_with_no_ping_lost(self):
        matrix, failures = self.lab.smoke()
        self.assertEqual(failures, 0, "\n".join("  ".join(r) for r in matrix))
        rc, out = self.migration_status()
        self.assertEqual(rc, 0, out)
        self.assertIn("0 of 3 nodes run weft; the mesh is whole", out)
        before = self.addresses()
        pods = sorted(self.lab.state["pods"])
        pairs = [(a, b) for a in pods for b in pods if a != b]
        pingers = [(a, b, pinger(self.lab, a, b, 8)) for a, b in pairs]
        server, client = tcp_echo(self.lab, "flannel1/p1", "flannel3/p1", 7)
        self.addCleanup(server.kill)
        time.sleep(0.5)
        for i, n in enumerate(self.nodes, 1):
            n.take_over()
            labmod.wait_for(lambda i=i: f"{i} of 3 nodes run weft; the mesh is whole" in self.migration_status()[1],
                            5, f"migration-status to count {i} weft nodes")
        for a, b, p in pingers:
            sent, got = counts(p)
            self.assertGreater(sent, 400, f"{a} -> {b}")
            self.assertEqual(sent, got, f"{a} -> {b}: {sent - got} of {sent} pings lost during the migration")
        out = client.communicate(timeout=30)[0]
        self.assertEqual(client.returncode, 0, f"the TCP connection across the migration broke: {out[-800:]}")
        self.assertGreater(int(out.split()[0]), 300, out)
        self.assertEqual(self.addresses(), before, "every pod keeps its address")
        # A node that lost its flannel annotations would be skipped by every peer: not whole.
        self.lab.kubectl("annotate", "flannel2", flannel_node.PREFIX + "kube-subnet-manager-")
        rc, out = self.migration_status()
        self.assertEqual(rc, 1, out)
        self.assertIn("no kube-subnet-manager=true", out)
        self.assertIn("NOT whole", out)
        self.lab.kubectl("annotate", "flannel2", flannel_node.PREFIX + "kube-subnet-manager=true")
        matrix, failures = self.lab.smoke()
        self.assertEqual(failures, 0, "\n".join("  ".join(r) for r in matrix))

        node = self.nodes[0]
        old = f"{node.name}/p1"
        old_ip = self.lab.state["pods"][old]["ip"]
        record = os.path.join(node.ipam_dir, "cbr0", old_ip)
        self.assertTrue(os.path.exists(record), "host-local's record of flannel's pod")
        self.lab.delete_pod(old)  # through weft's plugin, which finds flannel's record
        self.assertFalse(os.path.exists(record), "the address of flannel's pod is released")
        self.assertFalse(os.path.exists(os.path.join(node.flannel_data_dir, self.lab.container_id(node.name, "p1"))))
        new_ip = self.lab.add_pod(node.name, "p2")
        self.assertIn(ipaddress.ip_address(new_ip), node.cidr)
        self.assertNotIn(new_ip, [p["ip"] for k, p in self.lab.state["pods"].items() if k != f"{node.name}/p2"])
        matrix, failures = self.lab.smoke()
        self.assertEqual(failures, 0, "\n".join("  ".join(r) for r in matrix))


class RealMigration(Migration):
    """The migration against a real kube-apiserver 1.20.2; kube-controller-manager assigns the
    podCIDRs, and the NetworkUnavailable conditions are written through nodes/status."""
    api = "real"


class RealMixedCluster(MixedCluster):
    """The same against a real kube-apiserver 1.20.2, whose controller-manager assigns every
    Node its podCIDR (the only way flannel's kube subnet manager works)."""
    api = "real"

    def test_migration_manifests_apply_as_the_readme_says(self):
        """The README's kubectl steps on the real API server: weft's DaemonSet with the
        migration ConfigMap and patch, and the patch of a DaemonSet shaped as kube-flannel.yml
        v0.24.2's (its affinity term)."""
        cp = self.lab.control_plane()
        mig = os.path.join(labmod.ROOT, "manifests", "migrate-from-flannel")
        cp.apply(os.path.join(labmod.ROOT, "manifests", "03-daemonset.yaml"))
        cp.apply(os.path.join(mig, "02-configmap.yaml"))
        with open(os.path.join(mig, "weft-only-migrated.yaml")) as fh:
            cp.kubectl("-n", "kube-weft", "patch", "daemonset", "kube-weft-ds", "--patch", fh.read())
        ds = json.loads(cp.kubectl("-n", "kube-weft", "get", "daemonset", "kube-weft-ds", "-o", "json").stdout)
        spec = ds["spec"]["template"]["spec"]
        self.assertEqual(spec["nodeSelector"], {"kubernetes.io/os": "linux", "weft.io/migrate": "true"},
                         "the map merges: the DaemonSet's own selector stays")
        inits = {c["name"]: c for c in spec["initContainers"]}
        self.assertEqual(sorted(inits), ["install-cni-conf", "install-cni-plugin"], "merged by name, none lost")
        self.assertIn("10-flannel.conflist.replaced-by-weft", inits["install-cni-conf"]["args"][0])
        self.assertTrue(inits["install-cni-conf"]["image"], "the patch keeps the image")
        cm = json.loads(cp.kubectl("-n", "kube-weft", "get", "configmap", "kube-weft-cfg", "-o", "json").stdout)
        self.assertTrue(json.loads(cm["data"]["net-conf.json"])["FlannelCompat"])

        flannel_ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
                      "metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel"},
                      "spec": {"selector": {"matchLabels": {"app": "flannel"}}, "template": {
                          "metadata": {"labels": {"app": "flannel"}},
                          "spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                              "nodeSelectorTerms": [{"matchExpressions": [
                                  {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}},
                                   "containers": [{"name": "kube-flannel", "image": "flannel:v0.24.2"}]}}}}
        cp.kubectl("create", "namespace", "kube-flannel")
        cp.kubectl("apply", "-f", "-", input_text=json.dumps(flannel_ds))
        with open(os.path.join(mig, "flannel-skip-migrated.yaml")) as fh:
            cp.kubectl("-n", "kube-flannel", "patch", "daemonset", "kube-flannel-ds", "--patch", fh.read())
        got = json.loads(cp.kubectl("-n", "kube-flannel", "get", "daemonset", "kube-flannel-ds", "-o", "json").stdout)
        terms = got["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        self.assertEqual(terms, [{"matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
            {"key": "weft.io/migrate", "operator": "NotIn", "values": ["true"]}]}])


if __name__ == "__main__":
    unittest.main()
