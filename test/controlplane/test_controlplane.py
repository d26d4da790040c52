#!/usr/bin/env python3
"""The real control plane (kube-apiserver 1.20.2 from Debian's source) against the repo's
manifests: RBAC as weft uses it, the two-step server-side dry run, node-ipam with a
controller-manager started late, apiserver restarts (and the 403 window after them).

Runs as root; makes two network namespaces of its own (the API's and a peer's, joined by a
veth pair, so the advertise address is real) and removes them, even on failure.
The binaries must be built first: test/controlplane/build.sh (CTest runs it as a fixture).
"""
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import controlplane  # noqa: E402
from controlplane import ControlPlane, ControlPlaneError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
# WEFT_MANIFESTS: run against another copy (e.g. a broken one, to see the test fail).
MANIFESTS = os.environ.get("WEFT_MANIFESTS", os.path.join(REPO, "manifests"))
API_IP, PEER_IP = "192.0.2.254", "192.0.2.1"
CLUSTER_CIDR = "10.244.0.0/16"
WEFT = None  # the weft user name, set from the ControlPlane
UNBOUND = "system:serviceaccount:kube-system:weft"  # a weft identity the manifests do not bind


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


class Netns:
    """Two namespaces of our own, PREFIX-api and PREFIX-peer, lo up, joined by a veth pair."""

    def __init__(self):
        self.prefix = "wcp%s" % secrets.token_hex(3)
        self.api, self.peer = self.prefix + "-api", self.prefix + "-peer"

    def create(self):
        for ns in (self.api, self.peer):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.api, "link", "add", "cp0", "type", "veth", "peer", "name", "cp1",
           "netns", self.peer)
        sh("ip", "-n", self.api, "addr", "add", API_IP + "/24", "dev", "cp0")
        sh("ip", "-n", self.peer, "addr", "add", PEER_IP + "/24", "dev", "cp1")
        sh("ip", "-n", self.api, "link", "set", "cp0", "up")
        sh("ip", "-n", self.peer, "link", "set", "cp1", "up")

    def delete(self):
        for ns in (self.api, self.peer):
            sh("ip", "netns", "del", ns, check=False)


def raise_on_sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")  # so the class cleanups run on a CTest timeout


def class_control_plane(cls, dir_prefix, **options):
    """cls.netns, cls.dir and cls.cp (not started yet) for a test class, removed by class
    cleanups; a skip without root, a failure without the binaries."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (network namespaces)")
    missing = controlplane.missing_binaries()
    if missing:
        # A failure, not a skip: CI builds them first (CTest fixture realapi_build).
        raise ControlPlaneError("missing %s: run test/controlplane/build.sh as root first"
                                % ", ".join(missing))
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    cls.netns = Netns()
    cls.addClassCleanup(cls.netns.delete)
    cls.netns.create()
    cls.dir = tempfile.mkdtemp(prefix=dir_prefix)
    if not os.environ.get("WEFT_KEEP_STATE"):
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
    cls.cp = ControlPlane(cls.dir, cls.netns.api, API_IP, allocate_node_cidrs=True,
                          cluster_cidr=CLUSTER_CIDR, **options)
    cls.addClassCleanup(cls.cp.stop)


class RealControlPlane(unittest.TestCase):
    """One control plane for the whole class; the tests run in name order and build on each
    other (the namespace before the RBAC, the late controller-manager before ipam)."""

    @classmethod
    def setUpClass(cls):
        global WEFT
        class_control_plane(cls, "weft-controlplane-", extra_service_accounts=["kube-system:weft"])
        WEFT = cls.cp.weft_user
        # The controller-manager starts late on purpose (test_30).
        cls.cp.start(controller_manager=False)
        print("\ncontrol plane up: etcd %.1f s, apiserver start -> /readyz %.1f s (%s)" % (
            cls.cp.timings["etcd_ready"], cls.cp.timings["apiserver_ready"], cls.dir),
            file=sys.stderr)

    def as_user(self, user, method, path, body=None, content_type="application/json"):
        return self.cp.request(method, path, body, user=user, content_type=content_type)

    # ---- 10: the server itself ---------------------------------------------------------------

    def test_10_server_is_real_v1_20_2_on_the_advertise_address(self):
        out = json.loads(self.cp.kubectl("version", "-o", "json").stdout)
        self.assertEqual(out["serverVersion"]["gitVersion"], "v1.20.2")
        self.assertEqual(out["clientVersion"]["gitVersion"], "v1.20.2")
        self.assertLess(self.cp.timings["apiserver_ready"], 60)
        # From the peer namespace, over the veth: the advertise address and the CA are real.
        p = sh("ip", "netns", "exec", self.netns.peer, "curl", "-s", "-m", "10", "--cacert",
               self.cp.ca_file, "-H", "Authorization: Bearer " + self.cp.tokens[WEFT],
               "%s/version" % self.cp.url, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["gitVersion"], "v1.20.2")
        # The `kubernetes` Service got the first service IP, which the cert covers.
        svc = json.loads(self.cp.kubectl("get", "svc", "kubernetes", "-o", "json").stdout)
        self.assertEqual(svc["spec"]["clusterIP"], controlplane.SERVICE_IP)

    # ---- 20: the manifests ---------------------------------------------------------------------

    def test_20_dry_run_of_all_manifests_needs_the_namespace_first(self):
        # One step on a fresh cluster: the namespaced objects name a namespace a dry run
        # does not create.
        p = self.cp.kubectl("apply", "--dry-run=server", "-f", MANIFESTS, check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn('namespaces "kube-weft" not found', p.stderr)
        # Even a dry run of the namespace alone does not help.
        self.cp.kubectl("apply", "--dry-run=server", "-f",
                        os.path.join(MANIFESTS, "00-namespace.yaml"))
        p = self.cp.kubectl("get", "namespace", "kube-weft", check=False)
        self.assertNotEqual(p.returncode, 0, "a dry run created the namespace")
        # Two steps: the namespace for real, then everything with --dry-run=server.
        self.cp.apply(os.path.join(MANIFESTS, "00-namespace.yaml"))
        p = self.cp.kubectl("apply", "--dry-run=server", "-f", MANIFESTS)
        for kind in ("namespace/kube-weft", "serviceaccount/weft", "clusterrole", "clusterrolebinding",
                     "configmap/kube-weft-cfg", "daemonset.apps/kube-weft-ds"):
            self.assertIn(kind, p.stdout)
        self.assertIn("(server dry run)", p.stdout)
        p = self.cp.kubectl("-n", "kube-weft", "get", "daemonset", "-o", "name")
        self.assertEqual(p.stdout.strip(), "", "the dry run created the DaemonSet")

    # ---- 25: RBAC as weft uses it ----------------------------------------------------------------

    def test_25_rbac_gives_weft_exactly_what_it_needs(self):
        self.cp.apply(os.path.join(MANIFESTS, "00-namespace.yaml"))
        self.cp.apply(os.path.join(MANIFESTS, "01-rbac.yaml"))
        self.cp.create_node("rbac-node", "192.0.2.10", pod_cidr="10.244.250.0/24")
        self.wait_weft_can_list()
        status, body = self.as_user(WEFT, "GET", "/api/v1/nodes")
        self.assertEqual(status, 200, body)
        self.assertIn("rbac-node", [n["metadata"]["name"] for n in json.loads(body)["items"]])
        status, body = self.as_user(WEFT, "GET", "/api/v1/nodes?watch=1&timeoutSeconds=1")
        self.assertEqual(status, 200, body)
        self.assertIn('"type":"ADDED"', body)
        status, body = self.as_user(
            WEFT, "PATCH", "/api/v1/nodes/rbac-node",
            {"metadata": {"annotations": {"weft.io/public-ip": "192.0.2.10"}}},
            content_type="application/merge-patch+json")
        self.assertEqual(status, 200, body)
        cond = {"type": "NetworkUnavailable", "status": "False", "reason": "WeftIsUp",
                "message": "weft test", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        status, body = self.as_user(WEFT, "PATCH", "/api/v1/nodes/rbac-node/status",
                                    {"status": {"conditions": [cond]}},
                                    content_type="application/strategic-merge-patch+json")
        self.assertEqual(status, 200, body)
        node = self.cp.get_node("rbac-node")
        self.assertEqual(node["metadata"]["annotations"]["weft.io/public-ip"], "192.0.2.10")
        self.assertIn("NetworkUnavailable", [c["type"] for c in node["status"]["conditions"]])
        # Nothing more: no secrets, no deleting nodes, no creating them.
        for method, path in (("GET", "/api/v1/namespaces/kube-system/secrets"),
                             ("GET", "/api/v1/secrets"),
                             ("DELETE", "/api/v1/nodes/rbac-node")):
            status, body = self.as_user(WEFT, method, path)
            self.assertEqual(status, 403, "%s %s: %s" % (method, path, body))
        status, body = self.as_user(WEFT, "POST", "/api/v1/nodes",
                                    {"apiVersion": "v1", "kind": "Node",
                                     "metadata": {"name": "rogue"}})
        self.assertEqual(status, 403, body)
        # The manifests bind ServiceAccount kube-weft/weft: a kube-system/weft identity (as the
        # test double names weft) is refused by the real server.
        status, body = self.as_user(UNBOUND, "GET", "/api/v1/nodes")
        self.assertEqual(status, 403, body)

    def wait_weft_can_list(self, timeout=30):
        """Polls GET /api/v1/nodes as weft until 200; returns (seconds of 403s, count of 403s)."""
        t0 = time.monotonic()
        first_403 = None
        count = 0
        while True:
            status, body = self.as_user(WEFT, "GET", "/api/v1/nodes?limit=1")
            if status == 200:
                return (0.0 if first_403 is None else time.monotonic() - first_403), count
            if status == 403:
                count += 1
                first_403 = first_403 or time.monotonic()
            if time.monotonic() - t0 > timeout:
                self.fail("weft still cannot list nodes after %d s: %d %s" % (timeout, status, body))
            time.sleep(0.05)

    # ---- 30: node-ipam with a late controller-manager ---------------------------------------------

    def test_30_late_controller_manager_assigns_pod_cidrs(self):
        self.cp.create_node("ipam-a", "192.0.2.11")
        self.cp.create_node("ipam-fixed", "192.0.2.12", pod_cidr="10.244.251.0/24")
        self.assertNotIn("podCIDR", self.cp.get_node("ipam-a")["spec"])
        self.cp.start_controller_manager()
        took = self.cp.wait_controller_manager(timeout=60)
        print("\ncontroller-manager: healthz %.1f s, %r %.1f s" % (
            self.cp.timings["controller_manager_healthy"], controlplane.IPAM_LOG_LINE, took),
            file=sys.stderr)
        cidr = self.wait_pod_cidr("ipam-a", 30)
        net = ipaddress.ip_network(cidr)
        self.assertTrue(net.subnet_of(ipaddress.ip_network(CLUSTER_CIDR)), cidr)
        self.assertEqual(net.prefixlen, 24)
        self.assertEqual(self.cp.get_node("ipam-fixed")["spec"]["podCIDR"], "10.244.251.0/24")
        # A node registered while it runs gets one too, and a different one.
        self.cp.create_node("ipam-b", "192.0.2.13")
        self.assertNotEqual(self.wait_pod_cidr("ipam-b", 30), cidr)
        # No kubelets, and nodelifecycle is off: only the not-ready NoSchedule taint that the
        # TaintNodesByCondition admission plugin puts on every new Node, never a NoExecute one.
        taints = self.cp.get_node("ipam-a")["spec"].get("taints", [])
        self.assertEqual([(t["key"], t["effect"]) for t in taints],
                         [("node.kubernetes.io/not-ready", "NoSchedule")])

    def wait_pod_cidr(self, name, timeout):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            cidr = self.cp.get_node(name)["spec"].get("podCIDR")
            if cidr:
                print("node %s: podCIDR %s after %.1f s" % (name, cidr, time.monotonic() - t0),
                      file=sys.stderr)
                return cidr
            time.sleep(0.2)
        self.fail("node %s has no podCIDR after %d s; controller-manager log:\n%s" % (
            name, timeout, self.cp.log_tail("kube-controller-manager")))

    # ---- 40: restarts ----------------------------------------------------------------------------

    def restart_apiserver(self, how):
        pids = self.cp.pids()
        took_stop = self.cp.kill_apiserver() if how == "kill" else self.cp.stop_apiserver()
        self.assertFalse(controlplane.pid_alive(pids["kube-apiserver"]))
        self.cp.start_apiserver()
        seen = self.probe_weft_and_readyz(90)
        self.cp.wait_ready(90)
        window, count = self.wait_weft_can_list()
        print("\napiserver %s: stop took %.1f s; after the start: weft's first answer %s, "
              "its first 200 at %s s, /readyz 200 at %s s; %d x 403 before (last at %s s: %s); "
              "403s after /readyz: %d over %.2f s"
              % (how, took_stop, seen["first_answer"], seen["weft_200"], seen["readyz"],
                 seen["weft_403"], seen["last_403"], seen.get("first_403_message"), count,
                 window), file=sys.stderr)
        return seen

    def probe_weft_and_readyz(self, timeout):
        """From the apiserver's start: when weft's list first answers, when it first gets 200,
        how many 403s it gets before (and when the last one was), when /readyz first says 200."""
        t0 = self.cp.started_at["kube-apiserver"]
        seen = {"first_answer": None, "weft_200": None, "weft_403": 0, "last_403": None,
                "readyz": None}
        while time.monotonic() - t0 < timeout:
            status, body = self.as_user(WEFT, "GET", "/api/v1/nodes?limit=1")
            now = round(time.monotonic() - t0, 2)
            if status and seen["first_answer"] is None:
                seen["first_answer"] = "%d at %.2f s" % (status, now)
            if status == 403:
                if not seen["weft_403"]:
                    seen["first_403_message"] = json.loads(body).get("message")
                seen["weft_403"] += 1
                seen["last_403"] = now
            if status == 200 and seen["weft_200"] is None:
                seen["weft_200"] = now
            if seen["readyz"] is None:
                rstatus, _ = self.cp.request("GET", "/readyz")
                if rstatus == 200:
                    seen["readyz"] = round(time.monotonic() - t0, 2)
            if seen["weft_200"] is not None and seen["readyz"] is not None:
                return seen
            time.sleep(0.02)
        self.fail("after %d s: %s" % (timeout, seen))

    def test_40_apiserver_restarts_keep_the_cluster(self):
        self.cp.apply(os.path.join(MANIFESTS, "00-namespace.yaml"))
        self.cp.apply(os.path.join(MANIFESTS, "01-rbac.yaml"))
        self.cp.create_node("restart-node", "192.0.2.20", pod_cidr="10.244.252.0/24")
        uid = self.cp.get_node("restart-node")["metadata"]["uid"]
        # SIGTERM once (it drains for up to 60 s), SIGKILL three times: the 403s weft can get
        # while the restarted server's RBAC caches fill are a race, so try it more than once.
        for how in ("term", "kill", "kill", "kill"):
            self.restart_apiserver(how)
            # Same etcd, same certs and tokens: the object and the weft identity survive.
            self.assertEqual(self.cp.get_node("restart-node")["metadata"]["uid"], uid)
            status, body = self.as_user(WEFT, "GET", "/api/v1/nodes/restart-node")
            self.assertEqual(status, 200, body)

    def test_50_controller_manager_stops_on_its_own(self):
        if "kube-controller-manager" not in self.cp.pids():
            self.cp.start_controller_manager()
        pid = self.cp.pids()["kube-controller-manager"]
        self.cp.stop_controller_manager()
        self.assertFalse(controlplane.pid_alive(pid))
        self.assertNotIn("kube-controller-manager", self.cp.pids())
        status, body = self.cp.request("GET", "/readyz")
        self.assertEqual(status, 200, body)
        self.cp.start_controller_manager()
        self.cp.wait_controller_manager(timeout=60)

    def test_60_stop_saved_finds_the_recorded_pids(self):
        with open(os.path.join(self.dir, "state.json")) as f:
            state = json.load(f)
        self.assertEqual(state["pids"], self.cp.pids())
        self.assertEqual(set(state["pids"]), {"etcd", "kube-apiserver", "kube-controller-manager"})
        for pid in state["pids"].values():
            self.assertTrue(controlplane.pid_runs_in(pid, self.dir))


class RealControlPlaneDualStack(unittest.TestCase):
    """Issue #19: dual_stack=True gives every Node an IPv4 /24 and an IPv6 /64 (spec.podCIDRs,
    IPv4 first) from node-ipam, and the apiserver keeps both. Also shows why the apiserver
    needs the IPv6DualStack gate too: without it, it silently keeps podCIDRs[0] only."""

    @classmethod
    def setUpClass(cls):
        class_control_plane(cls, "weft-controlplane-ds-", dual_stack=True)
        cls.cp.start()
        cls.cp.wait_controller_manager(timeout=60)

    def wait_pod_cidrs(self, name, timeout=30):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            cidrs = self.cp.get_node(name)["spec"].get("podCIDRs")
            if cidrs:
                return cidrs
            time.sleep(0.2)
        self.fail("node %s has no podCIDRs after %d s; controller-manager log:\n%s" % (
            name, timeout, self.cp.log_tail("kube-controller-manager")))

    def test_10_node_ipam_assigns_one_cidr_per_family(self):
        argv = " ".join(self.cp.controller_manager_argv())
        self.assertIn("--cluster-cidr=%s,%s" % (CLUSTER_CIDR, controlplane.CLUSTER_CIDR_V6), argv)
        self.assertIn("--feature-gates=IPv6DualStack=true", argv)
        self.assertIn("--feature-gates=IPv6DualStack=true", self.cp.apiserver_argv())
        seen = set()
        for i, name in enumerate(("ds-a", "ds-b")):
            self.cp.create_node(name, "192.0.2.%d" % (30 + i))
            cidrs = self.wait_pod_cidrs(name)
            self.assertEqual(len(cidrs), 2, cidrs)
            v4, v6 = (ipaddress.ip_network(c) for c in cidrs)
            self.assertEqual((v4.version, v4.prefixlen), (4, 24), cidrs)
            self.assertTrue(v4.subnet_of(ipaddress.ip_network(CLUSTER_CIDR)), cidrs)
            self.assertEqual((v6.version, v6.prefixlen), (6, 64), cidrs)
            self.assertTrue(v6.subnet_of(ipaddress.ip_network(controlplane.CLUSTER_CIDR_V6)), cidrs)
            self.assertEqual(self.cp.get_node(name)["spec"]["podCIDR"], cidrs[0])
            seen.update(cidrs)
        self.assertEqual(len(seen), 4, "every node gets CIDRs of its own: %s" % seen)

    def test_20_apiserver_keeps_both_cidrs_of_a_node_only_with_the_gate(self):
        two = ["10.244.210.0/24", "fd00:10:244:d2::/64"]
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ds-fixed"},
                "spec": {"podCIDR": two[0], "podCIDRs": two}}
        status, body = self.cp.request("POST", "/api/v1/nodes", node)
        self.assertEqual(status, 201, body)
        self.assertEqual(self.cp.get_node("ds-fixed")["spec"]["podCIDRs"], two)
        # The same apiserver without the gate (etcd and the controller-manager keep running).
        self.cp.kill_apiserver()
        self.cp.dual_stack = False
        try:
            self.cp.start_apiserver()
            self.cp.wait_ready(90)
            node["metadata"]["name"] = "ds-gateless"
            status, body = self.cp.request("POST", "/api/v1/nodes", node)
            self.assertEqual(status, 201, body)
            self.assertEqual(self.cp.get_node("ds-gateless")["spec"]["podCIDRs"], two[:1],
                             "without IPv6DualStack the apiserver drops the second podCIDR")
        finally:
            self.cp.kill_apiserver()
            self.cp.dual_stack = True
            self.cp.start_apiserver()
            self.cp.wait_ready(90)


if __name__ == "__main__":
    unittest.main()
