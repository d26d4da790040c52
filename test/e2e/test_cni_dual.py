"""The weft CNI plugin with a dual-stack subnet.env (issue #19), on the real kernel with Debian's
reference plugins (bridge, host-local): every pod gets an IPv4 and an IPv6 address from the
node's two subnets, a default route for each family via the bridge, and pods on the node reach
each other and the gateway over both. DEL gives both addresses back. With an IPv6-only
subnet.env (CniIpv6Only) a pod gets one global IPv6 address and ::/0 via the gateway, nothing IPv4.

weftd does not write the IPv6 keys yet (the v6 lease and VTEP are still being wired), so the
test writes subnet.env itself, exactly as core/subnet_env.cpp formats it.

Run with: WEFT_BUILD_DIR=build python3 -m unittest -v test_cni_dual.CniDualStack test_cni_dual.CniIpv6Only
"""

import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import lab as labmod  # noqa: E402
from lab import in_ns, sh  # noqa: E402
from test_lab import BUILD, unique_name  # noqa: E402

SUBNET_ENV = """WEFT_NETWORK=10.244.0.0/16
WEFT_SUBNET=10.244.5.1/24
WEFT_IPV6_NETWORK=fd00:10:244::/56
WEFT_IPV6_SUBNET=fd00:10:244:5::1/64
WEFT_MTU=1430
WEFT_IPMASQ=true
"""

SUBNET_ENV_V6_ONLY = """WEFT_IPV6_NETWORK=fd00:10:244::/56
WEFT_IPV6_SUBNET=fd00:10:244:6::1/64
WEFT_MTU=1430
WEFT_IPMASQ=true
"""


def wait_for(what, fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        if fn():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {what}")
        time.sleep(0.1)


class CniLab(unittest.TestCase):
    """A node namespace with the weft plugin over Debian's bridge and host-local; no test of its own."""
    subnet_env = SUBNET_ENV
    suffix = "d"

    def setUp(self):
        self.name = unique_name() + self.suffix
        self.node_ns = f"{self.name}-node"
        self.pod_ns = {}
        self.dir = tempfile.mkdtemp(prefix="weft-cni-dual-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.addCleanup(self.remove_namespaces)
        sh("ip", "netns", "add", self.node_ns)
        in_ns(self.node_ns, "ip", "link", "set", "lo", "up")
        # Forwarding is the node's job (weftd sets it); pods on one bridge need it for neither
        # family, but the routes to the gateway must not be refused.
        in_ns(self.node_ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.bin_dir = os.path.join(self.dir, "bin")
        os.makedirs(self.bin_dir)
        for plugin in ("bridge", "host-local"):
            os.symlink(os.path.join(labmod.CNI_PATH, plugin), os.path.join(self.bin_dir, plugin))
        os.symlink(os.path.join(BUILD, "cmd", "weft", "weft"), os.path.join(self.bin_dir, "weft"))
        with open(os.path.join(self.dir, "subnet.env"), "w") as f:
            f.write(self.subnet_env)

    def remove_namespaces(self):
        for ns in [*self.pod_ns.values(), self.node_ns]:
            sh("ip", "netns", "del", ns, check=False)

    def cni(self, pod, command):
        conf = {"cniVersion": "1.0.0", "name": "weft", "type": "weft",
                "subnetFile": os.path.join(self.dir, "subnet.env"), "dataDir": os.path.join(self.dir, "state"),
                "ipamDataDir": os.path.join(self.dir, "ipam")}
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
               "CNI_CONTAINERID": (self.name + pod).encode().hex().ljust(64, "0")[:64],
               "CNI_NETNS": f"/var/run/netns/{self.pod_ns[pod]}", "CNI_IFNAME": "eth0", "CNI_PATH": self.bin_dir}
        res = in_ns(self.node_ns, os.path.join(self.bin_dir, "weft"), env=env, input_text=json.dumps(conf),
                    check=False, capture=True)
        self.assertEqual(res.returncode, 0, f"CNI {command} {pod}: {res.stdout} {res.stderr}")
        return json.loads(res.stdout) if command == "ADD" else None

    def addresses(self, pod, family):
        res = in_ns(self.pod_ns[pod], "ip", f"-{family}", "-j", "addr", "show", "dev", "eth0", check=False,
                    capture=True)
        if res.returncode != 0:  # no eth0 (after DEL)
            return []
        return [a for link in json.loads(res.stdout or "[]") for a in link.get("addr_info", [])]

    def add_pod(self, pod):
        self.pod_ns[pod] = f"{self.name}-{pod}"
        sh("ip", "netns", "add", self.pod_ns[pod])
        result = self.cni(pod, "ADD")
        by_family = {}
        for ip in result["ips"]:
            family = 6 if ":" in ip["address"] else 4
            by_family[family] = ip
        return by_family

    def routes(self, pod, family):
        out = in_ns(self.pod_ns[pod], "ip", f"-{family}", "-j", "route", "show", capture=True).stdout
        return json.loads(out or "[]")

    def pings(self, pod, family, dst):
        return in_ns(self.pod_ns[pod], "ping", f"-{family}", "-c1", "-W1", dst, check=False,
                     capture=True).returncode == 0


class CniDualStack(CniLab):
    def test_pods_get_both_families_and_reach_each_other(self):
        a, b = self.add_pod("a"), self.add_pod("b")
        for ips in (a, b):
            self.assertEqual(sorted(ips), [4, 6], f"one address per family: {ips}")
            self.assertTrue(ips[4]["address"].startswith("10.244.5.") and ips[4]["address"].endswith("/24"), ips)
            self.assertTrue(ips[6]["address"].startswith("fd00:10:244:5::") and ips[6]["address"].endswith("/64"),
                            ips)
            self.assertEqual(ips[4]["gateway"], "10.244.5.1")
            self.assertEqual(ips[6]["gateway"], "fd00:10:244:5::1")
        for family, gw in ((4, "10.244.5.1"), (6, "fd00:10:244:5::1")):
            defaults = [r for r in self.routes("a", family) if r.get("dst") == "default"]
            self.assertEqual([r.get("gateway") for r in defaults], [gw], f"IPv{family} default route")
        # The cluster-network routes of the IPAM config, one per family.
        self.assertIn("fd00:10:244::/56", [r.get("dst") for r in self.routes("a", 6)])
        self.assertIn("10.244.0.0/16", [r.get("dst") for r in self.routes("a", 4)])
        b4, b6 = b[4]["address"].split("/")[0], b[6]["address"].split("/")[0]
        # IPv6 addresses are usable once duplicate address detection is done.
        wait_for("pod a pings pod b over IPv6", lambda: self.pings("a", 6, b6))
        # The bridge's own address goes through DAD too (~1-2 s after the first pod's ADD).
        wait_for("pod a pings its IPv6 gateway", lambda: self.pings("a", 6, "fd00:10:244:5::1"))
        self.assertTrue(self.pings("a", 4, b4), "pod a pings pod b over IPv4")
        mtu = json.loads(in_ns(self.pod_ns["a"], "ip", "-j", "link", "show", "eth0", capture=True).stdout)[0]["mtu"]
        self.assertEqual(mtu, 1430)

        ipam = os.path.join(self.dir, "ipam", "weft")
        held = sorted(os.listdir(ipam))
        self.assertIn(b6, held, f"host-local holds pod b's IPv6 address: {held}")
        self.cni("b", "DEL")
        left = sorted(os.listdir(ipam))
        self.assertNotIn(b6, left, f"DEL gave pod b's IPv6 address back: {left}")
        self.assertNotIn(b4, left, f"DEL gave pod b's IPv4 address back: {left}")
        self.assertIn(a[6]["address"].split("/")[0], left)


class CniIpv6Only(CniLab):
    subnet_env = SUBNET_ENV_V6_ONLY
    suffix = "6"

    def test_pods_get_an_ipv6_address_and_nothing_ipv4(self):
        a, b = self.add_pod("a"), self.add_pod("b")
        for ips in (a, b):
            self.assertEqual(sorted(ips), [6], f"IPv6 only: {ips}")
            self.assertTrue(ips[6]["address"].startswith("fd00:10:244:6::") and ips[6]["address"].endswith("/64"),
                            ips)
            self.assertEqual(ips[6]["gateway"], "fd00:10:244:6::1")
        self.assertEqual(self.addresses("a", 4), [], "no IPv4 address on the pod's eth0")
        self.assertEqual([r for r in self.routes("a", 4)], [], "no IPv4 route in the pod")
        global_v6 = [x["local"] for x in self.addresses("a", 6) if x.get("scope") == "global"]
        self.assertEqual(global_v6, [a[6]["address"].split("/")[0]], "one global IPv6 address, from the subnet")
        defaults = [r for r in self.routes("a", 6) if r.get("dst") == "default"]
        self.assertEqual([r.get("gateway") for r in defaults], ["fd00:10:244:6::1"], "::/0 via the gateway")
        self.assertIn("fd00:10:244::/56", [r.get("dst") for r in self.routes("a", 6)])
        b6 = b[6]["address"].split("/")[0]
        wait_for("pod a pings pod b over IPv6", lambda: self.pings("a", 6, b6))

        ipam = os.path.join(self.dir, "ipam", "weft")
        self.assertIn(b6, os.listdir(ipam))
        self.cni("b", "DEL")
        self.assertNotIn(b6, os.listdir(ipam), "DEL gave pod b's IPv6 address back")
        self.assertEqual(self.addresses("b", 6), [], "DEL removed pod b's eth0")


if __name__ == "__main__":
    unittest.main()
