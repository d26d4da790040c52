"""weftctl peers and doctor on the lab (issue #17 part 4): a healthy two-node lab passes every
check, then things are broken one at a time and doctor must name each (exit 1, that check
FAILs, the others PASS) and peers must show the missing entry.

weftd repairs kernel entries within milliseconds, so the kernel breaks are made while weftd is
stopped (SIGSTOP); weftctl then reads weftd's /status saved just before (--status-file), and
the kernel itself. After SIGCONT weftd repairs, and doctor passes again.

Run one with: WEFT_BUILD_DIR=build python3 -m unittest -v test_weftctl.Doctor
"""

import json
import os
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import lab as labmod  # noqa: E402

BUILD = os.environ.get("WEFT_BUILD_DIR", os.path.join(labmod.ROOT, "build"))
WEFTCTL = os.path.join(BUILD, "cmd", "weftctl", "weftctl")
_counter = [0]


def unique_name():
    _counter[0] += 1
    return f"c{os.getpid() % 100000}{_counter[0]}"


class WeftctlCase(unittest.TestCase):
    dual_stack = False
    ipv6_only = False

    def setUp(self):
        if not os.access(WEFTCTL, os.X_OK):
            self.fail(f"{WEFTCTL} not built")
        self.lab = labmod.Lab(unique_name(), BUILD, "double")
        self.addCleanup(self.lab.down)
        self.lab.up(2, 0, dual_stack=self.dual_stack, ipv6_only=self.ipv6_only)
        self.ns = self.lab.state["nodes"]["node1"]["ns"]
        # Where the kubelet's runtime would look: weft's conflist and the lab's CNI_PATH (weft in it).
        self.conf_dir = os.path.join(self.lab.dir, "net.d")
        os.makedirs(self.conf_dir)
        self.conflist = os.path.join(self.conf_dir, "10-weft.conflist")
        with open(self.conflist, "w") as fh:
            json.dump({"cniVersion": "1.0.0", "name": "weft",
                       "plugins": [{"type": "weft"}, {"type": "portmap", "capabilities": {"portMappings": True}}]},
                      fh)
        self.status_file = None

    def weftctl(self, *args):
        extra = ["--status-file", self.status_file] if self.status_file and args[0] != "status" else []
        res = labmod.in_ns(self.ns, WEFTCTL, *args, *extra, check=False, capture=True)
        return res.returncode, res.stdout, res.stderr

    def doctor(self):
        rc, out, err = self.weftctl("doctor", "--output", "json", "--cni-conf-dir", self.conf_dir,
                                    "--cni-bin-dir", self.lab.cni_bin_dir)
        self.assertIn(rc, (0, 1), f"doctor: exit {rc}: {err}{out}")
        report = json.loads(out)
        return rc, {c["name"]: c for c in report["checks"]}

    def peers(self):
        rc, out, err = self.weftctl("peers", "--output", "json")
        self.assertIn(rc, (0, 1), f"peers: exit {rc}: {err}{out}")
        return rc, json.loads(out)

    def assert_all_pass(self):
        rc, checks = self.doctor()
        failing = {n: c["detail"] for n, c in checks.items() if not c["pass"]}
        self.assertEqual(failing, {}, "doctor fails on a healthy node")
        self.assertEqual(rc, 0)

    def assert_only_fails(self, name, detail_part="", also=()):
        """doctor exits 1 and names exactly this check (and `also`), with a fix."""
        rc, checks = self.doctor()
        failing = sorted(n for n, c in checks.items() if not c["pass"])
        self.assertEqual(failing, sorted([name, *also]),
                         f"doctor should fail {name} alone: {json.dumps(checks, indent=1)}")
        self.assertEqual(rc, 1)
        self.assertTrue(checks[name]["fix"], "a FAIL comes with a fix")
        self.assertIn(detail_part, checks[name]["detail"])
        return checks[name]

    def peer(self, name="node2"):
        _, data = self.peers()
        return next(p for p in data["peers"] if p["node"] == name)

    def wait_doctor_passes(self, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            rc, checks = self.doctor()
            if rc == 0:
                return
            if time.monotonic() > deadline:
                self.fail(f"doctor still fails: {[n for n, c in checks.items() if not c['pass']]}")
            time.sleep(0.1)

    # ---- weftd stopped while the kernel is broken
    def stop_weftd(self):
        """Saves weftd's /status for weftctl, then stops weftd (SIGSTOP) until resume_weftd."""
        out = labmod.in_ns(self.ns, "curl", "-sf", "--max-time", "2",
                           f"http://127.0.0.1:{labmod.HEALTHZ_PORT}/status", capture=True).stdout
        fd, self.status_file = tempfile.mkstemp(prefix="weftctl-status-", dir=self.lab.dir)
        with os.fdopen(fd, "w") as fh:
            fh.write(out)
        self.pid = self.lab.state["pids"]["weftd-node1"]
        os.killpg(self.pid, signal.SIGSTOP)
        self.addCleanup(self.resume_weftd)

    def resume_weftd(self):
        if self.status_file:
            os.killpg(self.pid, signal.SIGCONT)
            self.status_file = None

    def ip(self, *args):  # in node1's namespace
        labmod.sh("ip", "-n", self.ns, *args)


class Healthy(WeftctlCase):
    def test_peers_shows_every_entry_and_doctor_passes(self):
        rc, data = self.peers()
        self.assertEqual(rc, 0)
        node2 = self.peer()
        ann = self.lab.node_annotations("node2")
        self.assertEqual(node2["subnet"], ann["weft.io/subnet"])
        self.assertEqual(node2["public_ip"], "192.0.2.2")
        self.assertEqual(node2["vtep_mac"], json.loads(ann["weft.io/backend-data"])["VtepMAC"])
        for entry in ("route", "neighbor", "fdb"):
            self.assertEqual(node2[entry]["state"], "ok", entry)
        self.assertEqual(data["foreign_routes"], [])
        self.assert_all_pass()
        rc, out, _ = self.weftctl("doctor", "--cni-conf-dir", self.conf_dir, "--cni-bin-dir", self.lab.cni_bin_dir)
        self.assertEqual(rc, 0, out)
        self.assertIn("all 16 checks pass", out)
        self.assertRegex(out, r"PASS  families +IPv4 only\n")
        self.assertIn("1 peer: every route", out)
        rc, out, _ = self.weftctl("status", "--output", "json")
        self.assertEqual(rc, 0)
        self.assertTrue(json.loads(out)["ready"])

    def test_direct_routing_peers_need_no_neighbour_or_fdb_entry(self):
        self.lab.stop_weftd("node1")
        conf = os.path.join(self.lab.node_dir("node1"), "net-conf.json")
        with open(conf) as fh:
            net = json.load(fh)
        net["Backend"]["DirectRouting"] = True
        with open(conf, "w") as fh:
            json.dump(net, fh)
        self.lab.start_weftd("node1")
        self.lab.wait_ready("node1")
        deadline = time.monotonic() + 5
        while not self.peer()["direct"]:
            self.assertLess(time.monotonic(), deadline, "node2 never routed directly")
            time.sleep(0.1)
        node2 = self.peer()
        self.assertEqual((node2["route"]["state"], node2["neighbor"]["state"], node2["fdb"]["state"]),
                         ("ok", "none", "none"))
        self.assert_all_pass()
        self.stop_weftd()
        self.ip("route", "del", node2["subnet"])
        self.assert_only_fails("peer entries", "node2: route missing")
        self.resume_weftd()
        self.wait_doctor_passes()

    def test_a_refused_node_is_listed_with_the_reason(self):
        self.lab.kubectl("create-node", "rogue", "--internal-ip", "192.0.2.50")
        data = json.dumps({"VNI": 1, "VtepMAC": "0e:00:00:00:50:01"}, separators=(",", ":"))
        self.lab.kubectl("annotate", "rogue", "weft.io/subnet=10.245.1.0/24", "weft.io/public-ip=192.0.2.50",
                         "weft.io/backend-type=vxlan", f"weft.io/backend-data={data}")
        deadline = time.monotonic() + 5
        while True:
            _, data = self.peers()
            skipped = {s["node"]: s for s in data["skipped"]}
            if "rogue" in skipped:
                break
            self.assertLess(time.monotonic(), deadline, "rogue never listed as skipped")
            time.sleep(0.1)
        self.assertIn("10.245.1.0/24", skipped["rogue"]["reason"])
        self.assertEqual(skipped["rogue"]["by"], "node watch")
        self.assertNotIn("rogue", [p["node"] for p in data["peers"]])
        rc, out, _ = self.weftctl("peers")
        self.assertIn("skipped rogue: ", out)
        # Well-formed, but claiming node1's own VTEP MAC: node1's backend refuses it.
        own_mac = json.loads(self.lab.node_annotations("node1")["weft.io/backend-data"])["VtepMAC"]
        self.lab.kubectl("create-node", "copycat", "--internal-ip", "192.0.2.51")
        data = json.dumps({"VNI": 1, "VtepMAC": own_mac}, separators=(",", ":"))
        self.lab.kubectl("annotate", "copycat", "weft.io/subnet=10.244.151.0/24", "weft.io/public-ip=192.0.2.51",
                         "weft.io/backend-type=vxlan", f"weft.io/backend-data={data}")
        while True:
            _, data = self.peers()
            skipped = {s["node"]: s for s in data["skipped"]}
            if "copycat" in skipped:
                break
            self.assertLess(time.monotonic(), deadline + 5, "copycat never listed as skipped")
            time.sleep(0.1)
        self.assertEqual(skipped["copycat"]["by"], "backend")
        self.assertIn(f"VTEP MAC {own_mac} is this node's", skipped["copycat"]["reason"])
        self.assertNotIn("copycat", [p["node"] for p in data["peers"]])
        self.assert_all_pass()


class KernelBreaks(WeftctlCase):
    """Each entry weftd owns, broken by hand while weftd is stopped."""

    def test_doctor_and_peers_name_each_kernel_break(self):
        self.assert_all_pass()
        node2 = self.peer()
        subnet, gw, mac = node2["subnet"], node2["gateway"], node2["vtep_mac"]
        self.stop_weftd()
        self.assert_all_pass()  # from the saved /status: nothing broken yet

        self.ip("route", "del", subnet)
        self.assert_only_fails("peer entries", "node2: route missing")
        p = self.peer()
        self.assertEqual((p["route"]["state"], p["neighbor"]["state"], p["fdb"]["state"]), ("missing", "ok", "ok"))
        self.assertEqual(self.peers()[0], 1)
        self.ip("route", "add", subnet, "via", gw, "dev", "weft.1", "onlink", "proto", "119")
        self.assert_all_pass()

        self.ip("neigh", "del", gw, "dev", "weft.1")
        self.assert_only_fails("peer entries", "node2: neighbour missing")
        self.assertEqual(self.peer()["neighbor"]["state"], "missing")
        self.ip("neigh", "replace", gw, "lladdr", "0e:00:00:00:99:99", "dev", "weft.1", "nud", "permanent")
        self.assert_only_fails("peer entries", "neighbour wrong")
        self.assertEqual(self.peer()["neighbor"]["state"], "wrong")
        self.ip("neigh", "replace", gw, "lladdr", mac, "dev", "weft.1", "nud", "permanent")

        labmod.sh("bridge", "-n", self.ns, "fdb", "del", mac, "dev", "weft.1", "dst", "192.0.2.2")
        self.assert_only_fails("peer entries", "node2: FDB missing")
        self.assertEqual(self.peer()["fdb"]["state"], "missing")
        labmod.sh("bridge", "-n", self.ns, "fdb", "append", mac, "dev", "weft.1", "dst", "192.0.2.2")
        self.assert_all_pass()

        self.ip("route", "add", "10.244.250.0/24", "via", "10.244.250.0", "dev", "weft.1", "onlink")
        self.assert_only_fails("foreign routes", "10.244.250.0/24")
        _, data = self.peers()
        self.assertEqual(len(data["foreign_routes"]), 1)
        self.ip("route", "del", "10.244.250.0/24")

        self.ip("link", "set", "weft.1", "mtu", "1400")
        self.assert_only_fails("vtep mtu", "MTU 1400, want 1450")
        self.ip("link", "set", "weft.1", "mtu", "1450")

        self.ip("link", "set", "weft.1", "type", "vxlan", "learning")
        self.assert_only_fails("vtep learning", "learning is on")
        self.ip("link", "set", "weft.1", "type", "vxlan", "nolearning")

        self.ip("link", "set", "weft.1", "down")  # the kernel drops its routes and neighbours too
        self.assert_only_fails("vtep up", also=["peer entries"])
        self.ip("link", "set", "weft.1", "up")
        self.assert_only_fails("peer entries", "node2: route missing, neighbour missing")
        self.ip("neigh", "replace", gw, "lladdr", mac, "dev", "weft.1", "nud", "permanent")
        self.ip("route", "add", subnet, "via", gw, "dev", "weft.1", "onlink", "proto", "119")
        self.assert_all_pass()

    def test_a_deleted_then_a_foreign_vtep(self):
        self.stop_weftd()
        self.ip("link", "del", "weft.1")  # its routes, neighbours and FDB entries go with it
        self.assert_only_fails("vtep exists", "no device weft.1", also=["peer entries"])
        rc, data = self.peers()
        self.assertEqual(rc, 1)
        self.assertFalse(data["vtep_present"])
        self.assertEqual(self.peer()["route"]["state"], "missing")
        self.ip("link", "add", "weft.1", "type", "vxlan", "id", "1", "dstport", "4789", "local", "192.0.2.1",
                "dev", "eth0", "nolearning")
        self.ip("link", "set", "weft.1", "mtu", "1450", "up")
        self.assert_only_fails("vtep vxlan", "port 4789, want 8472", also=["peer entries"])
        self.resume_weftd()
        self.wait_doctor_passes()

    def test_weftd_repairs_what_doctor_found(self):
        node2 = self.peer()
        self.stop_weftd()
        self.ip("route", "del", node2["subnet"])
        self.ip("link", "set", "weft.1", "mtu", "1400")
        _, checks = self.doctor()
        self.assertFalse(checks["peer entries"]["pass"])
        self.assertFalse(checks["vtep mtu"]["pass"])
        self.resume_weftd()
        self.wait_doctor_passes()


class DualStack(WeftctlCase):
    """Issue #19: on a dual-stack node weftctl checks the IPv6 half like the IPv4 one (the IPv6
    VTEP weft-v6.2 over the IPv4 underlay, its per-peer entries, IPv6 forwarding, table ip6 weft),
    and weftd's /metrics and Node condition count it."""
    dual_stack = True

    def test_doctor_checks_the_ipv6_half_and_names_its_breaks(self):
        rc, checks = self.doctor()
        for name in ("vtep6 exists", "vtep6 mtu", "peer entries v6", "foreign routes v6", "ipv6 forwarding",
                     "nftables table v6"):
            self.assertIn(name, checks)
        self.assert_all_pass()
        v6 = self.peer()["v6"]
        ann = self.lab.node_annotations("node2")
        self.assertEqual(v6["subnet"], ann["weft.io/subnet-v6"])
        self.assertEqual(v6["vtep_mac"], json.loads(ann["weft.io/backend-v6-data"])["VtepMAC"])
        self.assertEqual([v6[e]["state"] for e in ("route", "neighbor", "fdb")], ["ok"] * 3)
        metrics = labmod.in_ns(self.ns, "curl", "-sf", "--max-time", "2",
                               f"http://127.0.0.1:{labmod.HEALTHZ_PORT}/metrics", capture=True).stdout
        self.assertIn('weft_peers_ipv6{state="programmed"} 1\n', metrics)
        self.assertIn('weft_peers_ipv6{state="skipped"} 0\n', metrics)

        self.stop_weftd()
        self.ip("-6", "route", "del", v6["subnet"])
        self.assert_only_fails("peer entries v6", "node2: route missing")
        self.assertEqual(self.peer()["v6"]["route"]["state"], "missing")
        self.assertEqual(self.peer()["route"]["state"], "ok", "the IPv4 half is untouched")
        labmod.sh("bridge", "-n", self.ns, "fdb", "del", v6["vtep_mac"], "dev", "weft-v6.2", "dst", "192.0.2.2")
        self.assert_only_fails("peer entries v6", "route missing, FDB missing")
        labmod.in_ns(self.ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")
        self.assert_only_fails("ipv6 forwarding", "forwarding = 0", also=["peer entries v6"])
        labmod.in_ns(self.ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.resume_weftd()
        self.wait_doctor_passes()  # weftd restored the route and the FDB entry


class Ipv6Only(WeftctlCase):
    """Issue #19: an IPv6-only node (weft-v6.1 over the IPv6 underlay, no IPv4 at all): doctor
    checks the IPv6 family alone and names its breaks, weftd repairs them; DirectRouting routes a
    peer on the same link by its public IPv6 address, without VXLAN."""
    ipv6_only = True

    def set_direct_routing(self, node):
        self.lab.stop_weftd(node)
        conf = os.path.join(self.lab.node_dir(node), "net-conf.json")
        with open(conf) as fh:
            net = json.load(fh)
        net["Backend"]["DirectRouting"] = True
        with open(conf, "w") as fh:
            json.dump(net, fh)
        self.lab.start_weftd(node)
        self.lab.wait_ready(node)

    def test_doctor_checks_ipv6_alone_and_names_its_breaks(self):
        rc, checks = self.doctor()
        for name in ("vtep6 exists", "peer entries v6", "foreign routes v6", "ipv6 forwarding", "nftables table v6"):
            self.assertIn(name, checks)
        self.assertNotIn("ip_forward", checks)
        self.assert_all_pass()
        v6 = self.peer()["v6"]
        ann = self.lab.node_annotations("node2")
        self.assertEqual(v6["subnet"], ann["weft.io/subnet-v6"])
        self.assertEqual(v6["public_ip"], "2001:db8::2")
        self.assertEqual([v6[e]["state"] for e in ("route", "neighbor", "fdb")], ["ok"] * 3)
        self.stop_weftd()
        self.ip("-6", "route", "del", v6["subnet"])
        labmod.sh("bridge", "-n", self.ns, "fdb", "del", v6["vtep_mac"], "dev", "weft-v6.1", "dst", "2001:db8::2")
        self.assert_only_fails("peer entries v6", "route missing, FDB missing")
        self.resume_weftd()
        self.wait_doctor_passes()  # weftd restored the route and the FDB entry

    def test_direct_routing_over_ipv6_needs_no_vxlan(self):
        for node in ("node1", "node2"):  # both ways: the reply is routed directly too
            self.set_direct_routing(node)
        deadline = time.monotonic() + 5
        while not self.peer()["v6"]["direct"]:
            self.assertLess(time.monotonic(), deadline, "node2 never routed directly over IPv6")
            time.sleep(0.1)
        v6 = self.peer()["v6"]
        self.assertEqual((v6["route"]["state"], v6["neighbor"]["state"], v6["fdb"]["state"]), ("ok", "none", "none"))
        route = labmod.sh("ip", "-n", self.ns, "-6", "route", "show", v6["subnet"], capture=True).stdout
        self.assertIn("via 2001:db8::2 dev eth0", route)
        self.assert_all_pass()
        # node2's VTEP address answers over the direct route, no VXLAN on the way.
        labmod.in_ns(self.ns, "ping", "-6", "-c", "2", "-W", "2", v6["gateway"], capture=True)
        self.stop_weftd()
        self.ip("-6", "route", "del", v6["subnet"])
        self.assert_only_fails("peer entries v6", "node2: route missing")
        self.resume_weftd()
        self.wait_doctor_passes()


class HostBreaks(WeftctlCase):
    """Host settings weftd does not own: they stay broken until put back."""

    def sysctl(self, key, value=None):
        if value is None:
            return labmod.in_ns(self.ns, "sysctl", "-n", key, capture=True).stdout.strip()
        labmod.in_ns(self.ns, "sysctl", "-qw", f"{key}={value}")

    def test_doctor_names_each_host_break(self):
        self.assert_all_pass()

        self.sysctl("net.ipv4.ip_forward", 0)
        self.assert_only_fails("ip_forward", "= 0")
        self.sysctl("net.ipv4.ip_forward", 1)
        self.assert_all_pass()

        before = self.sysctl("net.ipv4.conf.eth0.rp_filter")
        self.sysctl("net.ipv4.conf.eth0.rp_filter", 1)
        self.assert_only_fails("rp_filter", "strict")
        self.sysctl("net.ipv4.conf.eth0.rp_filter", 2)
        self.assert_all_pass()  # loose
        self.sysctl("net.ipv4.conf.all.rp_filter", 1)
        self.sysctl("net.ipv4.conf.eth0.rp_filter", 0)
        self.assert_only_fails("rp_filter", "all = 1")
        self.sysctl("net.ipv4.conf.all.rp_filter", 0)
        self.sysctl("net.ipv4.conf.eth0.rp_filter", before)

        os.rename(self.conflist, self.conflist + ".off")
        self.assert_only_fails("cni conflist", "no CNI config")
        os.rename(self.conflist + ".off", self.conflist)
        with open(os.path.join(self.conf_dir, "05-other.conflist"), "w") as fh:
            json.dump({"cniVersion": "1.0.0", "name": "other", "plugins": [{"type": "bridge"}]}, fh)
        self.assert_only_fails("cni conflist", "05-other.conflist sorts first")
        os.remove(os.path.join(self.conf_dir, "05-other.conflist"))

        weft = os.path.join(self.lab.cni_bin_dir, "weft")
        os.rename(weft, weft + ".off")
        self.assert_only_fails("cni binary", "missing")
        os.rename(weft + ".off", weft)

        subnet_env = os.path.join(self.lab.node_dir("node1"), "subnet.env")
        with open(subnet_env) as fh:
            saved = fh.read()
        with open(subnet_env, "w") as fh:
            fh.write(saved.replace("WEFT_MTU=1450", "WEFT_MTU=1500"))
        self.assert_only_fails("subnet.env", "MTU 1500, weftd 1450")
        with open(subnet_env, "w") as fh:
            fh.write(saved)
        self.assert_all_pass()

    def test_doctor_names_vagrants_nat_address(self):
        # VirtualBox's NAT gives every VM 10.0.2.15: a node that publishes it is unreachable.
        self.ip("addr", "add", "10.0.2.15/24", "dev", "eth0")
        self.lab.stop_weftd("node1")
        self.lab.start_weftd("node1", ("--public-ip", "10.0.2.15"))
        self.lab.wait_ready("node1")
        self.assert_only_fails("underlay not NAT", "10.0.2.15 on eth0 is a VirtualBox/QEMU NAT address")

    def test_doctor_names_a_missing_nftables_table_and_a_silent_api_server(self):
        self.stop_weftd()  # or it puts its table back at once
        labmod.in_ns(self.ns, "nft", "delete", "table", "ip", "weft")
        self.assert_only_fails("nftables table", "missing")
        self.resume_weftd()
        self.wait_doctor_passes()
        # A stopped API server still completes TCP handshakes (the kernel does): doctor must not
        # take that for an answer.
        api = self.lab.state["pids"]["api"]
        os.killpg(api, signal.SIGSTOP)
        try:
            check = self.assert_only_fails("api server", "no TLS handshake")
        finally:
            os.killpg(api, signal.SIGCONT)
        self.assertIn("192.0.2.254:6443", check["detail"])
        self.wait_doctor_passes()


if __name__ == "__main__":
    unittest.main()
