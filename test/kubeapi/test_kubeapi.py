"""Tests of the Kubernetes API test double, through real HTTPS.

Run: cd test/kubeapi && python3 -m unittest -v test_kubeapi

One server (a subprocess, as the C++ tests start it) serves most tests; the
benchmark class starts a second one seeded with 5,000 nodes. Tests use node
names of their own, so they do not see each other's objects.
"""

import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kubeapi  # noqa: E402
import kubectl  # noqa: E402
from kubectl import Client, KubeError  # noqa: E402

SERVER_PY = os.path.join(HERE, "kubeapi.py")
KUBECTL_PY = os.path.join(HERE, "kubectl.py")
WEFT = "system:serviceaccount:kube-system:weft"
READER = "system:serviceaccount:kube-system:reader"
NOBODY = "system:serviceaccount:default:nobody"
CLIENT_GO_META_LIST = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;"
                       "g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;"
                       "g=meta.k8s.io;v=v1,application/json")
BOOKMARK_INTERVAL = 0.3
HISTORY = 100


class ServerProcess:
    """kubeapi.py as a subprocess, started the way weft's tests start it."""

    def __init__(self, workdir, cert_dir, *extra, name="server"):
        self.ready_file = os.path.join(workdir, name + ".ready.json")
        self.log_file = os.path.join(workdir, name + ".log")
        cmd = [sys.executable, SERVER_PY, "--listen", "127.0.0.1:0", "--cert-dir", cert_dir,
               "--tokens", "default", "--ready-file", self.ready_file,
               "--log-file", self.log_file, *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.ready_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"kubeapi.py did not start; log:\n{self.log()}")
            time.sleep(0.02)
        with open(self.ready_file) as f:
            self.ready = json.load(f)

    def log(self):
        try:
            with open(self.log_file) as f:
                return f.read()
        except OSError:
            return ""

    def client(self, user=None, **kwargs):
        return Client.from_ready_file(self.ready_file, user=user, **kwargs)

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


TMP = None
SERVER = None


def setUpModule():
    global TMP, SERVER
    TMP = tempfile.mkdtemp(prefix="weft-kubeapi-test-")
    SERVER = ServerProcess(TMP, os.path.join(TMP, "certs"), "--bookmark-interval",
                           str(BOOKMARK_INTERVAL), "--history", str(HISTORY))


def tearDownModule():
    if SERVER:
        SERVER.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


class Base(unittest.TestCase):
    def setUp(self):
        self.admin = SERVER.client()
        self.admin.reset_faults()
        self.addCleanup(self.admin.close)
        self.addCleanup(self.reset_faults)

    @staticmethod
    def reset_faults():
        c = SERVER.client()
        c.reset_faults()
        c.close()

    def name(self, suffix="a"):
        """A node name unique to this test."""
        base = self.id().split(".")[-1].replace("_", "-").lower()[:50]
        return f"{base}-{suffix}"

    def create(self, suffix="a", **kwargs):
        kwargs.setdefault("internal_ips", ["192.0.2.10"])
        return self.admin.create_node(self.name(suffix), **kwargs)

    def assertStatus(self, ctx, code, reason, message=None):
        err = ctx.exception
        self.assertEqual(err.status, code, err.body)
        self.assertEqual(err.body["kind"], "Status")
        self.assertEqual(err.body["apiVersion"], "v1")
        self.assertEqual(err.body["status"], "Failure")
        self.assertEqual(err.body["reason"], reason)
        self.assertEqual(err.body["code"], code)
        if message is not None:
            self.assertEqual(err.body["message"], message)

    def watch(self, client=None, **kwargs):
        kwargs.setdefault("read_timeout", 5)
        w = (client or self.admin).watch(**kwargs)
        self.addCleanup(w.close)
        return w

    def next_event(self, w, skip_bookmarks=True, names=None):
        for event in w:
            if skip_bookmarks and event["type"] == "BOOKMARK":
                continue
            if names and event["object"]["metadata"].get("name") not in names:
                continue
            return event
        self.fail("watch ended before the expected event")


# --------------------------------------------------------------------------

class TestCrud(Base):
    def test_create_sets_server_fields(self):
        before = int(self.admin.list_nodes()["metadata"]["resourceVersion"])
        node = self.create(pod_cidrs=["10.244.3.0/24"])
        md = node["metadata"]
        self.assertEqual(node["kind"], "Node")
        self.assertEqual(node["apiVersion"], "v1")
        self.assertEqual(md["name"], self.name())
        self.assertRegex(md["uid"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertRegex(md["creationTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(int(md["resourceVersion"]), before + 1)
        # Nodes keep their status on create (kubelet registers with addresses).
        self.assertEqual(node["status"]["addresses"][0],
                         {"type": "InternalIP", "address": "192.0.2.10"})
        self.assertEqual(node["spec"]["podCIDRs"], ["10.244.3.0/24"])
        self.assertEqual(self.admin.get_node(self.name()), node)

    def test_create_twice_is_already_exists(self):
        self.create()
        with self.assertRaises(KubeError) as ctx:
            self.create()
        self.assertStatus(ctx, 409, "AlreadyExists", f'nodes "{self.name()}" already exists')
        self.assertEqual(ctx.exception.body["details"], {"name": self.name(), "kind": "nodes"})

    def test_create_rejects_bad_input(self):
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("POST", "/api/v1/nodes", b"{not json", "application/json")
        self.assertStatus(ctx, 400, "BadRequest")
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("POST", "/api/v1/nodes", {"kind": "Node", "metadata": {}})
        self.assertStatus(ctx, 422, "Invalid", 'Node "" is invalid: metadata.name: Required '
                                               "value: name or generateName is required")
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("POST", "/api/v1/nodes", {"metadata": {"name": "Bad_Name"}})
        self.assertStatus(ctx, 422, "Invalid")
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("POST", "/api/v1/nodes",
                               {"metadata": {"name": self.name(), "resourceVersion": "5"}})
        self.assertStatus(ctx, 500, "InternalError")
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("POST", "/api/v1/nodes",
                               {"metadata": {"name": self.name(), "annotations": {"a": 1}}})
        self.assertStatus(ctx, 400, "BadRequest")

    def test_get_missing_is_not_found(self):
        with self.assertRaises(KubeError) as ctx:
            self.admin.get_node("no-such-node")
        self.assertEqual(ctx.exception.body, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'nodes "no-such-node" not found', "reason": "NotFound",
            "details": {"name": "no-such-node", "kind": "nodes"}, "code": 404})

    def test_list_has_resource_version_and_sorted_items(self):
        self.create("b")
        self.create("a")
        listed = self.admin.list_nodes()
        self.assertEqual(listed["kind"], "NodeList")
        self.assertEqual(listed["apiVersion"], "v1")
        rv = int(listed["metadata"]["resourceVersion"])
        names = [i["metadata"]["name"] for i in listed["items"]]
        self.assertIn(self.name("a"), names)
        self.assertIn(self.name("b"), names)
        self.assertEqual(names, sorted(names))
        self.assertEqual(rv, max(int(i["metadata"]["resourceVersion"]) for i in listed["items"]))

    def test_list_selectors(self):
        self.create("a", labels={"weft-test": "sel"})
        self.create("b")
        by_label = self.admin.list_nodes(label_selector="weft-test=sel")
        self.assertEqual([i["metadata"]["name"] for i in by_label["items"]], [self.name("a")])
        by_field = self.admin.list_nodes(field_selector=f"metadata.name={self.name('b')}")
        self.assertEqual([i["metadata"]["name"] for i in by_field["items"]], [self.name("b")])
        with self.assertRaises(KubeError) as ctx:
            self.admin.list_nodes(field_selector="status.phase=Running")
        self.assertStatus(ctx, 400, "BadRequest")

    def test_update_with_resource_version(self):
        node = self.create()
        node["metadata"].setdefault("labels", {})["x"] = "1"
        node["status"]["addresses"] = []            # ignored: PUT on the node keeps status
        updated = self.admin.update_node(node)
        self.assertEqual(updated["metadata"]["labels"]["x"], "1")
        self.assertEqual(int(updated["metadata"]["resourceVersion"]),
                         int(node["metadata"]["resourceVersion"]) + 1)
        self.assertEqual(updated["status"]["addresses"][0]["address"], "192.0.2.10")
        with self.assertRaises(KubeError) as ctx:     # node still carries the old RV
            self.admin.update_node(node)
        self.assertStatus(ctx, 409, "Conflict",
                          f'Operation cannot be fulfilled on nodes "{self.name()}": the object '
                          "has been modified; please apply your changes to the latest version "
                          "and try again")
        del node["metadata"]["resourceVersion"]      # nodes allow unconditional updates
        node["metadata"]["labels"]["x"] = "2"
        self.assertEqual(self.admin.update_node(node)["metadata"]["labels"]["x"], "2")

    def test_update_errors(self):
        node = self.create()
        node["metadata"]["name"] = "other-name"
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("PUT", f"/api/v1/nodes/{self.name()}", node)
        self.assertStatus(ctx, 400, "BadRequest", "the name of the object (other-name) does "
                          f"not match the name on the URL ({self.name()})")
        with self.assertRaises(KubeError) as ctx:
            self.admin.update_node({"metadata": {"name": self.name("missing")}})
        self.assertStatus(ctx, 404, "NotFound")

    def test_update_status_keeps_spec(self):
        node = self.create(pod_cidrs=["10.244.9.0/24"])
        node["spec"]["podCIDR"] = "10.99.0.0/24"
        node["status"]["addresses"] = [{"type": "InternalIP", "address": "192.0.2.77"}]
        updated = self.admin.update_node(node, status=True)
        self.assertEqual(updated["spec"]["podCIDR"], "10.244.9.0/24")
        self.assertEqual(updated["status"]["addresses"],
                         [{"type": "InternalIP", "address": "192.0.2.77"}])

    def test_delete(self):
        node = self.create()
        with self.assertRaises(KubeError) as ctx:
            self.admin.delete_node(self.name(), {"resourceVersion": "1"})
        self.assertStatus(ctx, 409, "Conflict")
        result = self.admin.delete_node(self.name())
        self.assertEqual(result["status"], "Success")
        self.assertEqual(result["details"], {"name": self.name(), "kind": "nodes",
                                             "uid": node["metadata"]["uid"]})
        with self.assertRaises(KubeError) as ctx:
            self.admin.get_node(self.name())
        self.assertStatus(ctx, 404, "NotFound")
        with self.assertRaises(KubeError) as ctx:
            self.admin.delete_node(self.name())
        self.assertStatus(ctx, 404, "NotFound")

    def test_discovery(self):
        resources = self.admin.request("GET", "/api/v1")["resources"]
        self.assertIn("nodes/status", [r["name"] for r in resources])
        self.assertEqual(self.admin.request("GET", "/api")["versions"], ["v1"])


class TestPatch(Base):
    def patch(self, patch, patch_type="merge", status=False, suffix="a"):
        return self.admin.patch_node(self.name(suffix), patch, patch_type, status)

    def test_merge_patch_sets_and_removes_annotations(self):
        self.create()
        node = self.patch({"metadata": {"annotations": {"weft.io/subnet": "10.244.1.0/24",
                                                        "weft.io/public-ip": "192.0.2.10"}}})
        self.assertEqual(node["metadata"]["annotations"], {"weft.io/subnet": "10.244.1.0/24",
                                                           "weft.io/public-ip": "192.0.2.10"})
        node = self.patch({"metadata": {"annotations": {"weft.io/subnet": None}}})
        self.assertEqual(node["metadata"]["annotations"], {"weft.io/public-ip": "192.0.2.10"})

    def test_strategic_patch_null_into_absent_annotations_stores_empty(self):
        # kube-apiserver 1.20.2 (measured; conformance check smp_null_in_absent_map).
        self.create()
        node = self.patch({"metadata": {"annotations": {"weft.io/gone": None, "weft.io/kept": "x"}}},
                          "strategic", status=True)
        self.assertEqual(node["metadata"]["annotations"], {"weft.io/gone": "", "weft.io/kept": "x"})
        node = self.patch({"metadata": {"annotations": {"weft.io/gone": None, "weft.io/other": None}}},
                          "strategic", status=True)
        self.assertEqual(node["metadata"]["annotations"], {"weft.io/kept": "x"})
        self.create(suffix="b")
        node = self.patch({"metadata": {"annotations": {"weft.io/gone": None, "weft.io/kept": "x"}}},
                          "merge", status=True, suffix="b")
        self.assertEqual(node["metadata"]["annotations"], {"weft.io/kept": "x"})

    def test_resource_version_in_patch_is_a_precondition(self):
        node = self.create()
        rv = node["metadata"]["resourceVersion"]
        ok = self.patch({"metadata": {"resourceVersion": rv, "annotations": {"k": "1"}}})
        self.assertEqual(int(ok["metadata"]["resourceVersion"]), int(rv) + 1)
        for patch_type in ("merge", "strategic"):
            with self.assertRaises(KubeError) as ctx:
                self.patch({"metadata": {"resourceVersion": rv, "annotations": {"k": "2"}}},
                           patch_type, status=True)
            self.assertStatus(ctx, 409, "Conflict",
                              f'Operation cannot be fulfilled on nodes "{self.name()}": the '
                              "object has been modified; please apply your changes to the "
                              "latest version and try again")
        self.assertEqual(self.admin.get_node(self.name())["metadata"]["annotations"], {"k": "1"})

    def test_uid_in_patch_is_a_precondition(self):
        self.create()
        with self.assertRaises(KubeError) as ctx:
            self.patch({"metadata": {"uid": "00000000-0000-0000-0000-000000000000"}})
        self.assertStatus(ctx, 409, "Conflict")
        self.assertIn("Precondition failed: UID in precondition", ctx.exception.body["message"])

    def test_merge_patch_on_status_replaces_conditions(self):
        # FACTS.md: a merge patch drops Ready; the real server does the same.
        self.create()
        node = self.patch({"status": {"conditions": [
            {"type": "NetworkUnavailable", "status": "False", "reason": "WeftIsUp"}]}},
            "merge", status=True)
        self.assertEqual([c["type"] for c in node["status"]["conditions"]],
                         ["NetworkUnavailable"])

    def test_strategic_patch_on_status_merges_conditions_by_type(self):
        self.create()
        node = self.patch({"status": {"conditions": [
            {"type": "NetworkUnavailable", "status": "False", "reason": "WeftIsUp"}]}},
            "strategic", status=True)
        types = [c["type"] for c in node["status"]["conditions"]]
        self.assertEqual(types, ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready",
                                 "NetworkUnavailable"])
        node = self.patch({"status": {"conditions": [
            {"type": "NetworkUnavailable", "status": "True", "reason": "WeftIsDown"}]}},
            "strategic", status=True)
        cond = {c["type"]: c for c in node["status"]["conditions"]}
        self.assertEqual(len(cond), 5)
        self.assertEqual(cond["NetworkUnavailable"]["status"], "True")
        self.assertEqual(cond["NetworkUnavailable"]["reason"], "WeftIsDown")
        self.assertEqual(cond["Ready"]["status"], "True")

    def test_strategic_patch_merges_addresses_by_type(self):
        self.create()
        node = self.patch({"status": {"addresses": [
            {"type": "InternalIP", "address": "192.0.2.99"}]}}, "strategic", status=True)
        self.assertEqual(node["status"]["addresses"], [
            {"type": "InternalIP", "address": "192.0.2.99"},
            {"type": "Hostname", "address": self.name()}])

    def test_strategic_patch_directives(self):
        self.create(pod_cidrs=["10.244.1.0/24"])
        node = self.patch({"status": {"conditions": [{"type": "DiskPressure",
                                                      "$patch": "delete"}]}},
                          "strategic", status=True)
        self.assertNotIn("DiskPressure", [c["type"] for c in node["status"]["conditions"]])
        self.assertEqual(len(node["status"]["conditions"]), 3)
        # A set podCIDRs is immutable (422, as kube-apiserver): list directives are shown
        # on finalizers, another list of primitives merged as a set.
        with self.assertRaises(KubeError) as ctx:
            self.patch({"spec": {"podCIDRs": ["fd00:10:244:1::/64"]}}, "strategic")
        self.assertStatus(ctx, 422, "Invalid")
        self.patch({"metadata": {"finalizers": ["weft.io/a"]}}, "strategic")
        node = self.patch({"metadata": {"finalizers": ["weft.io/b"]}}, "strategic")
        self.assertEqual(node["metadata"]["finalizers"], ["weft.io/a", "weft.io/b"])
        node = self.patch({"metadata": {"$deleteFromPrimitiveList/finalizers": ["weft.io/a"]}},
                          "strategic")
        self.assertEqual(node["metadata"]["finalizers"], ["weft.io/b"])
        node = self.patch({"status": {"conditions": [{"$patch": "replace"},
                                                     {"type": "Ready", "status": "False"}]}},
                          "strategic", status=True)
        self.assertEqual(node["status"]["conditions"], [{"type": "Ready", "status": "False"}])
        # A list without a merge strategy (taints) is replaced.
        self.patch({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}, "strategic")
        node = self.patch({"spec": {"taints": [{"key": "b", "effect": "NoSchedule"}]}},
                          "strategic")
        self.assertEqual(node["spec"]["taints"], [{"key": "b", "effect": "NoSchedule"}])

    def test_patch_of_node_ignores_status(self):
        self.create()
        node = self.patch({"metadata": {"annotations": {"k": "v"}},
                           "status": {"conditions": []}})
        self.assertEqual(node["metadata"]["annotations"], {"k": "v"})
        self.assertEqual(len(node["status"]["conditions"]), 4)

    def test_patch_of_status_ignores_spec_but_applies_metadata(self):
        # As kube-apiserver's nodeStatusStrategy: only spec is reset, so flannel-style
        # agents can write their annotations through nodes/status.
        self.create(pod_cidrs=["10.244.5.0/24"])
        node = self.patch({"metadata": {"annotations": {"weft.io/subnet": "10.244.5.0/24"}},
                           "spec": {"podCIDR": "10.1.1.0/24"}}, "strategic", status=True)
        self.assertEqual(node["spec"]["podCIDR"], "10.244.5.0/24")
        self.assertEqual(node["metadata"]["annotations"], {"weft.io/subnet": "10.244.5.0/24"})

    def test_json_patch(self):
        self.create()
        node = self.patch([{"op": "add", "path": "/metadata/annotations",
                            "value": {"weft.io/x": "1"}},
                           {"op": "add", "path": "/metadata/annotations/weft.io~1y",
                            "value": "2"}], "json")
        self.assertEqual(node["metadata"]["annotations"], {"weft.io/x": "1", "weft.io/y": "2"})
        with self.assertRaises(KubeError) as ctx:
            self.patch([{"op": "test", "path": "/metadata/annotations/weft.io~1y",
                         "value": "3"}], "json")
        self.assertStatus(ctx, 422, "Invalid")

    def test_noop_patch_keeps_resource_version(self):
        node = self.patch_after_create({"metadata": {"annotations": {"k": "v"}}})
        again = self.patch({"metadata": {"annotations": {"k": "v"}}})
        self.assertEqual(again["metadata"]["resourceVersion"],
                         node["metadata"]["resourceVersion"])
        w = self.watch(resource_version=node["metadata"]["resourceVersion"])
        self.patch({"metadata": {"annotations": {"k": "v"}}})
        changed = self.patch({"metadata": {"annotations": {"k": "w"}}})
        event = self.next_event(w)
        self.assertEqual(event["type"], "MODIFIED")
        self.assertEqual(event["object"]["metadata"]["resourceVersion"],
                         changed["metadata"]["resourceVersion"])
        self.assertEqual(event["object"]["metadata"]["annotations"], {"k": "w"})

    def patch_after_create(self, patch):
        self.create()
        return self.patch(patch)

    def test_patch_errors(self):
        self.create()
        path = f"/api/v1/nodes/{self.name()}/status"
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("PATCH", path, b"{bad", "application/merge-patch+json")
        self.assertStatus(ctx, 400, "BadRequest")
        self.assertIn("error decoding patch", ctx.exception.body["message"])
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("PATCH", path, b"[1]", "application/strategic-merge-patch+json")
        self.assertStatus(ctx, 400, "BadRequest")
        for bad in (b'{"status":{"conditions":"x"}}', b"[" * 100000):
            with self.assertRaises(KubeError) as ctx:
                self.admin.request("PATCH", path, bad, "application/strategic-merge-patch+json")
            self.assertStatus(ctx, 400, "BadRequest")
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("PATCH", path, b"{}", "application/json")
        self.assertStatus(ctx, 415, "UnsupportedMediaType")
        with self.assertRaises(KubeError) as ctx:
            self.admin.patch_node(self.name("missing"), {"metadata": {}})
        self.assertStatus(ctx, 404, "NotFound", f'nodes "{self.name("missing")}" not found')
        with self.assertRaises(KubeError) as ctx:
            self.patch({"metadata": {"annotations": {"big": "x" * (300 * 1024)}}})
        self.assertStatus(ctx, 422, "Invalid")
        self.assertIn("metadata.annotations: Too long", ctx.exception.body["message"])


class TestWatch(Base):
    def test_replay_after_resource_version_then_live(self):
        a = self.create("a")
        rv = a["metadata"]["resourceVersion"]
        self.admin.annotate(self.name("a"), {"k": "1"})
        b = self.create("b")
        self.admin.delete_node(self.name("b"))
        w = self.watch(resource_version=rv)
        self.assertEqual(w.response.getheader("Transfer-Encoding"), "chunked")
        self.assertEqual(w.response.getheader("Content-Type"), "application/json")
        names = {self.name("a"), self.name("b")}
        got = [self.next_event(w, names=names) for _ in range(3)]
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in got], [
            ("MODIFIED", self.name("a")), ("ADDED", self.name("b")),
            ("DELETED", self.name("b"))])
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
        self.assertEqual(rvs, [int(rv) + 1, int(rv) + 2, int(rv) + 3])
        self.assertEqual(got[2]["object"]["metadata"]["uid"], b["metadata"]["uid"])
        live = self.admin.annotate(self.name("a"), {"k": "2"})
        event = self.next_event(w, names=names)
        self.assertEqual(event["type"], "MODIFIED")
        self.assertEqual(event["object"], live)

    def test_resource_version_zero_starts_with_added_for_all(self):
        self.create("a")
        self.create("b")
        current = {i["metadata"]["name"]: i for i in self.admin.list_nodes()["items"]}
        w = self.watch(resource_version="0")
        initial = [self.next_event(w) for _ in range(len(current))]
        self.assertEqual({e["type"] for e in initial}, {"ADDED"})
        self.assertEqual({e["object"]["metadata"]["name"]: e["object"] for e in initial},
                         current)
        self.admin.delete_node(self.name("a"))
        event = self.next_event(w)
        self.assertEqual((event["type"], event["object"]["metadata"]["name"]),
                         ("DELETED", self.name("a")))

    def test_bookmarks_carry_the_current_resource_version(self):
        self.create()
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv, bookmarks=True, read_timeout=BOOKMARK_INTERVAL * 3)
        # Nothing new since the watch started: no bookmark (as kube-apiserver 1.20.2).
        with self.assertRaises(TimeoutError):
            w.read_line()
        w = self.watch(resource_version=rv, bookmarks=True)
        changed = self.admin.annotate(self.name(), {"k": "v"})
        self.assertEqual(self.next_event(w)["object"], changed)
        start = time.monotonic()
        event = next(iter(w))
        self.assertLess(time.monotonic() - start, BOOKMARK_INTERVAL + 1.0)
        self.assertEqual(event, {"type": "BOOKMARK", "object": {
            "kind": "Node", "apiVersion": "v1",
            "metadata": {"resourceVersion": changed["metadata"]["resourceVersion"],
                         "creationTimestamp": None},
            **kubeapi.EMPTY_NODE_BODY}})

    def test_timeout_ends_the_stream_without_bookmarks_when_not_asked(self):
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv, timeout=1, bookmarks=False)
        start = time.monotonic()
        self.assertEqual(w.read_line(), b"")         # nothing, then the end of the stream
        elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 2.5)

    def test_too_old_resource_version_after_compaction_is_410(self):
        old = self.create("a")["metadata"]["resourceVersion"]
        self.create("b")
        floor = self.admin.compact()["floor"]
        w = self.watch(resource_version=old)
        event = json.loads(w.read_line())
        self.assertEqual(event, {"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"too old resource version: {old} ({floor})", "reason": "Expired",
            "code": 410}})
        self.assertEqual(w.read_line(), b"")         # and the stream closes
        # From the compaction point on, watching works again.
        w2 = self.watch(resource_version=str(floor))
        self.admin.delete_node(self.name("b"))
        self.assertEqual(self.next_event(w2)["type"], "DELETED")

    def test_history_is_capped(self):
        node = self.create()
        old = node["metadata"]["resourceVersion"]
        for i in range(HISTORY + 1):
            self.admin.annotate(self.name(), {"n": str(i)})
        event = next(iter(self.watch(resource_version=old)))
        self.assertEqual(event["type"], "ERROR")
        self.assertEqual(event["object"]["code"], 410)
        recent = str(int(self.admin.list_nodes()["metadata"]["resourceVersion"]) - HISTORY + 1)
        w = self.watch(resource_version=recent)
        self.assertEqual(self.next_event(w)["type"], "MODIFIED")

    def test_label_selector_turns_transitions_into_added_and_deleted(self):
        self.create()
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv, label_selector="weft-test in (on)")
        self.admin.patch_node(self.name(), {"metadata": {"labels": {"weft-test": "on"}}})
        self.admin.annotate(self.name(), {"k": "v"})
        self.admin.patch_node(self.name(), {"metadata": {"labels": {"weft-test": None}}})
        self.assertEqual([self.next_event(w)["type"] for _ in range(3)],
                         ["ADDED", "MODIFIED", "DELETED"])

    def test_watch_of_one_node_by_name(self):
        self.create("a")
        self.create("b")
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        conn = self.admin.connect(5)
        self.addCleanup(conn.close)
        conn.request("GET", f"/api/v1/watch/nodes/{self.name('b')}?resourceVersion={rv}",
                     headers=self.admin.headers())
        resp = conn.getresponse()
        self.admin.annotate(self.name("a"), {"k": "v"})
        self.admin.annotate(self.name("b"), {"k": "v"})
        event = json.loads(resp.readline())
        self.assertEqual(event["object"]["metadata"]["name"], self.name("b"))

    def test_bad_watch_parameters(self):
        with self.assertRaises(KubeError) as ctx:
            self.admin.watch(resource_version="abc")
        self.assertStatus(ctx, 400, "BadRequest")


class TestMetadataOnly(Base):
    def test_list_as_partial_object_metadata(self):
        self.create(annotations={"weft.io/subnet": "10.244.2.0/24"})
        listed = self.admin.request("GET", "/api/v1/nodes", accept=CLIENT_GO_META_LIST)
        self.assertEqual(listed["kind"], "PartialObjectMetadataList")
        self.assertEqual(listed["apiVersion"], "meta.k8s.io/v1")
        self.assertTrue(listed["metadata"]["resourceVersion"].isdigit())
        item = next(i for i in listed["items"] if i["metadata"]["name"] == self.name())
        self.assertEqual(set(item), {"kind", "apiVersion", "metadata"})
        self.assertEqual(item["kind"], "PartialObjectMetadata")
        self.assertEqual(item["apiVersion"], "meta.k8s.io/v1")
        self.assertEqual(item["metadata"]["annotations"], {"weft.io/subnet": "10.244.2.0/24"})
        self.assertEqual(item["metadata"], self.admin.get_node(self.name())["metadata"])

    def test_get_as_partial_object_metadata(self):
        self.create()
        got = self.admin.get_node(self.name(), metadata_only=True)
        self.assertEqual(got["kind"], "PartialObjectMetadata")
        self.assertNotIn("status", got)

    def test_watch_as_partial_object_metadata(self):
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv, metadata_only=True)
        node = self.create()
        event = self.next_event(w)
        self.assertEqual(event["type"], "ADDED")
        self.assertEqual(event["object"], {"kind": "PartialObjectMetadata",
                                           "apiVersion": "meta.k8s.io/v1",
                                           "metadata": node["metadata"]})
        bookmark = next(iter(w))
        self.assertEqual(bookmark["type"], "BOOKMARK")
        self.assertEqual(bookmark["object"]["kind"], "PartialObjectMetadata")

    def test_accept_negotiation(self):
        self.create()
        table_first = "application/json;as=Table;g=meta.k8s.io;v=v1,application/json"
        self.assertEqual(self.admin.request("GET", "/api/v1/nodes", accept=table_first)["kind"],
                         "NodeList")
        # The list type asked for a single object is skipped, then the fallback wins.
        fallback = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,*/*"
        self.assertEqual(self.admin.request("GET", f"/api/v1/nodes/{self.name()}",
                                            accept=fallback)["kind"], "Node")
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("GET", "/api/v1/nodes", accept="text/html")
        self.assertStatus(ctx, 406, "NotAcceptable")


class TestAuth(Base):
    def test_missing_or_wrong_token_is_401(self):
        unauthorized = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "message": "Unauthorized",
                        "reason": "Unauthorized", "code": 401}
        for token in (None, "wrong-token"):
            c = Client(SERVER.ready["url"], SERVER.ready["ca"], token=token)
            self.addCleanup(c.close)
            with self.assertRaises(KubeError) as ctx:
                c.list_nodes()
            self.assertEqual(ctx.exception.body, unauthorized)
        resp = self.admin.raw("GET", "/api/v1/nodes", headers={"Authorization": "Basic eDp5"})
        self.assertEqual(resp.status, 401)

    def test_forbidden_messages(self):
        self.create()
        reader, weft, nobody = (SERVER.client(u) for u in (READER, WEFT, NOBODY))
        for c in (reader, weft, nobody):
            self.addCleanup(c.close)
        with self.assertRaises(KubeError) as ctx:
            reader.annotate(self.name(), {"k": "v"}, status=True)
        self.assertEqual(ctx.exception.body, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f'nodes "{self.name()}" is forbidden: User "{READER}" cannot patch '
                       'resource "nodes/status" in API group "" at the cluster scope',
            "reason": "Forbidden", "details": {"name": self.name(), "kind": "nodes"},
            "code": 403})
        with self.assertRaises(KubeError) as ctx:
            nobody.list_nodes()
        self.assertStatus(ctx, 403, "Forbidden",
                          f'nodes is forbidden: User "{NOBODY}" cannot list resource "nodes" '
                          'in API group "" at the cluster scope')
        self.assertEqual(ctx.exception.body["details"], {"kind": "nodes"})
        # weft's role: read nodes, patch nodes/status, nothing else.
        self.assertEqual(weft.get_node(self.name())["metadata"]["name"], self.name())
        weft.watch(resource_version="0", timeout=1).close()
        node = weft.annotate(self.name(), {"weft.io/subnet": "10.244.4.0/24"}, status=True)
        self.assertEqual(node["metadata"]["annotations"]["weft.io/subnet"], "10.244.4.0/24")
        with self.assertRaises(KubeError) as ctx:
            weft.annotate(self.name(), {"k": "v"})
        self.assertStatus(ctx, 403, "Forbidden",
                          f'nodes "{self.name()}" is forbidden: User "{WEFT}" cannot patch '
                          'resource "nodes" in API group "" at the cluster scope')
        with self.assertRaises(KubeError) as ctx:
            weft.delete_node(self.name())
        self.assertIn('cannot delete resource "nodes"', ctx.exception.body["message"])

    def test_client_certificate_user_is_its_common_name(self):
        self.create()
        c = Client(SERVER.ready["url"], SERVER.ready["ca"], cert=SERVER.ready["client_cert"],
                   key=SERVER.ready["client_key"])
        self.addCleanup(c.close)
        self.assertEqual(c.get_node(self.name())["metadata"]["name"], self.name())
        with self.assertRaises(KubeError) as ctx:
            c.delete_node(self.name())
        self.assertStatus(ctx, 403, "Forbidden")
        self.assertIn('User "weft-client"', ctx.exception.body["message"])

    def test_wrong_ca_fails_tls(self):
        c = Client(SERVER.ready["url"], SERVER.ready["other_ca"], token="x")
        self.addCleanup(c.close)
        with self.assertRaises(ssl.SSLCertVerificationError):
            c.list_nodes()
        self.assertEqual(self.admin.healthz(), "ok")   # the server shrugged it off

    def test_control_endpoints_need_admin(self):
        reader = SERVER.client(READER)
        self.addCleanup(reader.close)
        with self.assertRaises(KubeError) as ctx:
            reader.stats()
        self.assertEqual(ctx.exception.status, 403)
        anonymous = Client(SERVER.ready["url"], SERVER.ready["ca"])
        self.addCleanup(anonymous.close)
        with self.assertRaises(KubeError) as ctx:
            anonymous.fail(5)
        self.assertEqual(ctx.exception.status, 401)
        self.assertEqual(anonymous.healthz(), "ok")
        self.assertEqual(self.admin.faults()["fail"], [])


class TestFaults(Base):
    def test_fail_next_requests_with_500(self):
        self.create()
        before = self.admin.stats()["faults_injected"]
        self.admin.fail(2)
        for _ in range(2):
            with self.assertRaises(KubeError) as ctx:
                self.admin.get_node(self.name())
            self.assertStatus(ctx, 500, "InternalError")
        self.assertEqual(self.admin.get_node(self.name())["metadata"]["name"], self.name())
        self.assertEqual(self.admin.stats()["faults_injected"], before + 2)

    def test_fail_with_429_and_retry_after(self):
        self.admin.fail(1, code=429, retry_after=2)
        with self.assertRaises(KubeError) as ctx:
            self.admin.list_nodes()
        self.assertStatus(ctx, 429, "TooManyRequests")
        self.assertEqual(ctx.exception.headers["Retry-After"], "2")
        self.assertEqual(ctx.exception.body["details"], {"retryAfterSeconds": 2})
        self.admin.list_nodes()

    def test_fail_only_matching_verb_and_path(self):
        self.create()
        self.admin.fail(1, code=503, verb="patch", path="/status$")
        self.admin.list_nodes()
        self.admin.annotate(self.name(), {"a": "1"})               # patch, but not /status
        with self.assertRaises(KubeError) as ctx:
            self.admin.annotate(self.name(), {"a": "2"}, status=True)
        self.assertStatus(ctx, 503, "ServiceUnavailable")
        self.admin.annotate(self.name(), {"a": "3"}, status=True)  # consumed

    def test_latency(self):
        self.create()
        self.admin.latency(300)
        start = time.monotonic()
        self.admin.get_node(self.name())
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.admin.latency(0)
        start = time.monotonic()
        self.admin.get_node(self.name())
        self.assertLess(time.monotonic() - start, 0.25)

    def test_blackhole_never_answers(self):
        self.admin.blackhole(True)
        c = SERVER.client(timeout=0.5)
        self.addCleanup(c.close)
        with self.assertRaises(TimeoutError):
            c.list_nodes()
        waiting = SERVER.client(timeout=5)
        self.addCleanup(waiting.close)
        outcome = []

        def call():
            try:
                outcome.append(waiting.list_nodes())
            except Exception as e:
                outcome.append(e)
        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.3)
        self.admin.blackhole(False)
        t.join(5)
        # Held requests are dropped, never answered; new ones work again.
        self.assertIsInstance(outcome[0], (http.client.RemoteDisconnected, ConnectionError))
        fresh = SERVER.client()
        self.addCleanup(fresh.close)
        self.assertEqual(fresh.list_nodes()["kind"], "NodeList")

    def test_blackhole_freezes_open_watches(self):
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv, read_timeout=BOOKMARK_INTERVAL * 3)
        self.create()       # bookmarks come once the watch has something new
        self.assertEqual(next(iter(w))["type"], "ADDED")
        self.assertEqual(next(iter(w))["type"], "BOOKMARK")
        self.admin.blackhole(True)
        with self.assertRaises(TimeoutError):
            w.read_line()
        self.admin.blackhole(False)

    def test_corrupt_truncated_json(self):
        self.admin.corrupt(1, "truncated", verb="list")
        resp = self.admin.raw("GET", "/api/v1/nodes")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.data.startswith(b'{"kind":"NodeList"'))
        with self.assertRaises(ValueError):
            json.loads(resp.data)
        self.assertEqual(self.admin.list_nodes()["kind"], "NodeList")

    def test_corrupt_cut_connection(self):
        self.admin.corrupt(1, "cut")
        with self.assertRaises(http.client.IncompleteRead):
            self.admin.list_nodes()
        self.assertEqual(self.admin.list_nodes()["kind"], "NodeList")

    def test_corrupt_huge_body(self):
        self.admin.corrupt(1, "huge")
        resp = self.admin.raw("GET", "/api/v1/nodes")
        self.assertGreaterEqual(len(resp.data), 10 * 1024 * 1024)
        self.assertEqual(resp.json()["kind"], "NodeList")   # still valid JSON

    def test_corrupt_garbage_line_in_watch(self):
        self.admin.corrupt(1, "garbage", verb="watch")
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv)
        line = w.read_line()
        with self.assertRaises(ValueError):
            json.loads(line)
        node = self.create()
        self.assertEqual(self.next_event(w)["object"], node)

    def test_garbage_line_into_open_watches(self):
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv, bookmarks=False)
        self.admin.garbage_watches()
        self.assertIn(b"not JSON", w.read_line())

    def raw_watch(self):
        """A watch over a bare TLS socket, to see the chunked framing itself
        (http.client hides whether the final chunk came). Returns the socket
        once the response headers have arrived."""
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        ctx = ssl.create_default_context(cafile=SERVER.ready["ca"])
        raw = socket.create_connection(("127.0.0.1", SERVER.ready["port"]), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.addCleanup(s.close)
        s.sendall(f"GET /api/v1/nodes?watch=1&resourceVersion={rv} HTTP/1.1\r\n"
                  f"Host: 127.0.0.1\r\nAuthorization: Bearer {SERVER.ready['admin_token']}\r\n"
                  "Connection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        self.assertIn(b"Transfer-Encoding: chunked", head)
        return s, head.split(b"\r\n\r\n", 1)[1]

    @staticmethod
    def read_to_eof(s, data=b""):
        while True:
            got = s.recv(65536)
            if not got:
                return data
            data += got

    def test_close_watches_clean(self):
        s, data = self.raw_watch()
        self.assertEqual(self.admin.stats()["active_watches"], 1)
        self.admin.close_watches()
        self.assertTrue(self.read_to_eof(s, data).endswith(b"0\r\n\r\n"))  # final chunk
        time.sleep(0.05)
        self.assertEqual(self.admin.stats()["active_watches"], 0)

    def test_close_watches_abort(self):
        s, data = self.raw_watch()
        self.admin.close_watches(abort=True)
        data = self.read_to_eof(s, data)
        self.assertFalse(data.endswith(b"0\r\n\r\n"), data)              # cut mid-stream

    def test_watch_thread_ends_when_the_client_goes(self):
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv, bookmarks=False)
        self.assertEqual(self.admin.stats()["active_watches"], 1)
        w.close()
        deadline = time.monotonic() + 3
        while self.admin.stats()["active_watches"] and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.admin.stats()["active_watches"], 0)

    def test_stats_count_lists_watches_patches(self):
        self.create()
        self.admin.reset_stats()
        self.admin.list_nodes()
        self.admin.list_nodes(metadata_only=True)
        self.watch(resource_version="0", timeout=1).close()
        for i in range(3):
            self.admin.annotate(self.name(), {"i": str(i)}, status=True)
        stats = self.admin.stats()
        self.assertEqual((stats["lists"], stats["watches"], stats["patches"]), (2, 1, 3))
        self.assertEqual(stats["by_path"][f"PATCH /api/v1/nodes/{self.name()}/status"], 3)
        self.assertEqual(stats["by_resource"]["patch nodes/status"], 3)
        self.assertEqual(stats["total"], 6)
        self.assertEqual(stats["by_code"]["200"], 6)
        self.admin.reset_stats()
        self.assertEqual(self.admin.stats()["total"], 0)

    def test_bookmark_interval_can_be_changed(self):
        self.admin.bookmarks(0.05)
        rv = self.admin.list_nodes()["metadata"]["resourceVersion"]
        w = self.watch(resource_version=rv)
        self.create()
        self.assertEqual(next(iter(w))["type"], "ADDED")
        start = time.monotonic()
        events = [next(iter(w)) for _ in range(5)]
        self.assertEqual({e["type"] for e in events}, {"BOOKMARK"})
        self.assertLess(time.monotonic() - start, 1.0)    # 1.5 s at the default interval

    def test_reset_clears_faults(self):
        self.admin.fail(5)
        self.admin.latency(1000)
        self.admin.reset_faults()
        faults = self.admin.faults()
        self.assertEqual((faults["fail"], faults["latency_ms"]), ([], 0))
        self.admin.list_nodes()


class TestRobustness(Base):
    def test_unknown_paths_and_methods(self):
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("GET", "/api/v1/pods")
        self.assertStatus(ctx, 404, "NotFound")
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("POST", "/api/v1/nodes/x")
        self.assertStatus(ctx, 405, "MethodNotAllowed")

    def test_request_body_too_large(self):
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("POST", "/api/v1/nodes", b"x" * (3 * 1024 * 1024 + 1),
                               "application/json")
        self.assertStatus(ctx, 413, "RequestEntityTooLarge")
        self.assertEqual(self.admin.list_nodes()["kind"], "NodeList")

    def test_garbage_http_request(self):
        ctx = ssl.create_default_context(cafile=SERVER.ready["ca"])
        with socket.create_connection(("127.0.0.1", SERVER.ready["port"]), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"\x00\x01garbage\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400"))
        self.assertEqual(self.admin.list_nodes()["kind"], "NodeList")

    def test_keep_alive_reuses_one_connection(self):
        self.admin.list_nodes()
        sock = self.admin.conn.sock
        for _ in range(3):
            self.admin.list_nodes()
        self.assertIs(self.admin.conn.sock, sock)

    def test_chunked_request_body(self):
        conn = self.admin.connect()
        self.addCleanup(conn.close)
        body = json.dumps({"metadata": {"name": self.name()}}).encode()
        conn.request("POST", "/api/v1/nodes", body=iter([body[:10], body[10:]]),
                     headers=self.admin.headers(content_type="application/json"),
                     encode_chunked=True)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 201, resp.read())


class TestKubectl(Base):
    def kubectl(self, *args):
        return subprocess.run([sys.executable, KUBECTL_PY, "--ready-file", SERVER.ready_file,
                               *args], capture_output=True, text=True, timeout=20)

    def test_shell_usage(self):
        name = self.name()
        r = self.kubectl("create-node", name, "--internal-ip", "192.0.2.21",
                         "--pod-cidr", "10.244.21.0/24")
        self.assertEqual(r.returncode, 0, r.stderr)
        node = json.loads(self.kubectl("get-node", name).stdout)
        self.assertEqual(node["metadata"]["labels"]["kubernetes.io/hostname"], name)
        self.assertEqual(node["spec"], {"podCIDR": "10.244.21.0/24",
                                        "podCIDRs": ["10.244.21.0/24"]})
        self.assertEqual(node["status"]["addresses"], [
            {"type": "InternalIP", "address": "192.0.2.21"},
            {"type": "Hostname", "address": name}])
        r = self.kubectl("annotate", name, "weft.io/public-ip=192.0.2.21", "x=y")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.kubectl("annotate", name, "x-")
        self.assertEqual(self.admin.get_node(name)["metadata"]["annotations"],
                         {"weft.io/public-ip": "192.0.2.21"})
        self.assertIn(name, self.kubectl("list-nodes", "--names").stdout.split())
        self.assertEqual(self.kubectl("fault", "fail", "1", "--code", "500").returncode, 0)
        r = self.kubectl("get-node", name)
        self.assertEqual(r.returncode, 1)
        self.assertIn('"reason": "InternalError"', r.stderr)
        self.assertEqual(json.loads(self.kubectl("stats").stdout)["gets"] > 0, True)
        r = self.kubectl("--as-user", READER, "delete-node", name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Forbidden", r.stderr)
        self.assertEqual(self.kubectl("delete-node", name).returncode, 0)
        self.assertEqual(self.kubectl("get-node", name).returncode, 1)

    def test_kubeconfig_command(self):
        out = os.path.join(TMP, "weft.kubeconfig")
        self.assertEqual(self.kubectl("kubeconfig", "--out", out).returncode, 0)
        with open(out) as f:
            text = f.read()
        self.assertIn(f"    server: {SERVER.ready['url']}\n", text)
        self.assertIn(f"    token: {SERVER.ready['tokens'][WEFT]}\n", text)


class TestScale(unittest.TestCase):
    """5,000 nodes: list and watch replay times (printed), start-up from a
    nodes file, token persistence across restarts, clean exit on SIGTERM."""
    N = 5000

    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(TMP, "scale")
        os.makedirs(cls.dir)
        nodes = []
        for i in range(cls.N):
            node = kubectl.kubelet_node(f"node-{i:05d}", [f"10.{i // 65536}.{i // 256 % 256}."
                                                          f"{i % 256}"],
                                        [f"10.{128 + i // 256}.{i % 256}.0/24"])
            node["metadata"]["annotations"] = {
                "weft.io/subnet": node["spec"]["podCIDR"],
                "weft.io/public-ip": node["status"]["addresses"][0]["address"],
                "weft.io/backend-type": "vxlan",
                "weft.io/backend-data": '{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}'}
            nodes.append(node)
        cls.nodes_file = os.path.join(cls.dir, "nodes.json")
        with open(cls.nodes_file, "w") as f:
            json.dump(nodes, f)
        cls.kubeconfig = os.path.join(cls.dir, "kubeconfig")
        cert_dir = os.path.join(TMP, "certs")
        cls.server_crt_mtime = os.stat(os.path.join(cert_dir, "server.crt")).st_mtime
        cls.server = ServerProcess(cls.dir, cert_dir, "--nodes-file", cls.nodes_file,
                                   "--history", str(cls.N + 10), "--kubeconfig-out",
                                   cls.kubeconfig, name="scale")
        cls.client = cls.server.client(timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()

    def report(self, what, seconds):
        sys.stderr.write(f"\n  [scale] {what}: {seconds * 1000:.0f} ms ")

    def timed_list(self, metadata_only):
        start = time.monotonic()
        resp = self.client.raw("GET", "/api/v1/nodes",
                               accept=kubectl.META_LIST if metadata_only else None)
        transfer = time.monotonic() - start
        listed = resp.json()
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(listed["items"]), self.N)
        self.assertEqual(listed["items"][-1]["metadata"]["name"], f"node-{self.N - 1:05d}")
        return transfer, time.monotonic() - start, len(resp.data)

    def test_list_5000(self):
        # The first list encodes every object; later ones reuse the cached JSON.
        for metadata_only, label in ((False, "full NodeList"), (True, "metadata-only list")):
            cold, _, size = self.timed_list(metadata_only)
            self.report(f"{label} of {self.N} ({size // 1024} KiB), first (cold)", cold)
            warm, parsed, _ = self.timed_list(metadata_only)
            self.report(f"{label} of {self.N}, warm", warm)
            self.report(f"{label} of {self.N}, warm incl. client JSON parse", parsed)
            self.assertLess(cold, 5.0)
            self.assertLess(parsed, 5.0)

    def test_watch_replay_5000(self):
        cases = [("0", False, "watch from RV 0 (synthetic ADDED), full objects"),
                 ("0", True, "watch from RV 0 (synthetic ADDED), metadata-only"),
                 ("1", False, "watch replay from history (RV 1), full objects"),
                 ("1", True, "watch replay from history (RV 1), metadata-only")]
        for rv, metadata_only, label in cases:
            start = time.monotonic()
            expected = self.N if rv == "0" else self.N - 1
            count = 0
            with self.client.watch(rv, timeout=30, metadata_only=metadata_only,
                                   read_timeout=30) as w:
                for event in w:
                    if event["type"] == "BOOKMARK":
                        continue
                    self.assertEqual(event["type"], "ADDED")
                    count += 1
                    if count == expected:
                        break
            elapsed = time.monotonic() - start
            self.report(f"{label}, {expected} events, incl. client parse", elapsed)
            self.assertEqual(count, expected)
            self.assertLess(elapsed, 5.0)

    def test_seeded_identity_kubeconfig_and_shared_cert_dir(self):
        node = self.client.get_node("node-00042")
        self.assertEqual(node["metadata"]["annotations"]["weft.io/subnet"], "10.128.42.0/24")
        self.assertEqual(node["metadata"]["resourceVersion"], "43")
        # Same cert dir: same CA, same tokens, server cert not re-issued.
        self.assertEqual(self.server.ready["tokens"], SERVER.ready["tokens"])
        self.assertEqual(os.stat(os.path.join(TMP, "certs", "server.crt")).st_mtime,
                         self.server_crt_mtime)
        with open(self.kubeconfig) as f:
            text = f.read()
        self.assertIn(f"server: {self.server.ready['url']}", text)
        self.assertIn(f"certificate-authority: {self.server.ready['ca']}", text)
        self.assertIn(f"token: {SERVER.ready['tokens'][WEFT]}", text)
        self.assertIn("current-context: weft-test", text)

    def test_zz_sigterm_exits_cleanly(self):
        w = self.client.watch("0", timeout=30, read_timeout=10)
        start = time.monotonic()
        self.assertEqual(self.server.stop(), 0)
        self.assertLess(time.monotonic() - start, 3.0)
        self.assertFalse(os.path.exists(self.server.ready_file))
        w.close()


class TestPaging(Base):
    """limit/continue as the etcd3 storage pages; resourceVersion=0 from the watch cache."""

    def make(self, n):
        for i in range(n):
            self.create(str(i), labels={"paging": self.name("x")})
        return f"paging={self.name('x')}"

    def test_pages_come_from_the_first_pages_snapshot(self):
        selector = self.make(4)
        first = self.admin.list_nodes(label_selector=selector, limit=3)
        self.assertEqual([i["metadata"]["name"] for i in first["items"]],
                         [self.name(str(i)) for i in range(3)])
        self.assertNotIn("remainingItemCount", first["metadata"])   # a selector: no count
        self.admin.delete_node(self.name("3"))
        self.admin.annotate(self.name("0"), {"k": "v"})
        second = self.admin.list_nodes(label_selector=selector, limit=3,
                                       continue_token=first["metadata"]["continue"])
        self.assertEqual([i["metadata"]["name"] for i in second["items"]], [self.name("3")])
        self.assertEqual(second["metadata"], {"resourceVersion":
                                              first["metadata"]["resourceVersion"]})

    def test_remaining_item_count_without_selector(self):
        self.make(2)
        total = len(self.admin.list_nodes()["items"])
        page = self.admin.list_nodes(limit=1)
        self.assertEqual(page["metadata"]["remainingItemCount"], total - 1)
        token = json.loads(base64.urlsafe_b64decode(page["metadata"]["continue"] + "=="))
        self.assertEqual(token, {"v": "meta.k8s.io/v1",
                                 "rv": int(page["metadata"]["resourceVersion"]),
                                 "start": page["items"][0]["metadata"]["name"] + "\x00"})

    def test_resource_version_zero_ignores_limit(self):
        self.make(2)
        page = self.admin.list_nodes(limit=1, resource_version="0")
        self.assertEqual(len(page["items"]), len(self.admin.list_nodes()["items"]))
        self.assertNotIn("continue", page["metadata"])

    def test_bad_and_expired_continue_tokens(self):
        self.make(2)
        with self.assertRaises(KubeError) as ctx:
            self.admin.list_nodes(limit=1, continue_token="bm90IGpzb24")      # "not json"
        self.assertStatus(ctx, 400, "BadRequest")
        self.assertTrue(ctx.exception.body["message"].startswith("invalid continue token: "))
        page = self.admin.list_nodes(limit=1)
        with self.assertRaises(KubeError) as ctx:
            self.admin.list_nodes(limit=1, continue_token=page["metadata"]["continue"],
                                  resource_version="5")
        self.assertStatus(ctx, 400, "BadRequest",
                          "specifying resource version is not allowed when using continue")
        self.create("late")
        self.admin.compact()
        with self.assertRaises(KubeError) as ctx:
            self.admin.list_nodes(limit=1, continue_token=page["metadata"]["continue"])
        self.assertStatus(ctx, 410, "Expired")
        # The 410 carries a token that goes on at the current state (rv -1).
        token = ctx.exception.body["metadata"]["continue"]
        rest = self.admin.list_nodes(limit=1000, continue_token=token)
        self.assertEqual(rest["items"][0]["metadata"]["name"] > page["items"][0]["metadata"]
                         ["name"], True)


class TestValidation(Base):
    """422 Invalid with kube-apiserver's wording for keys, names and podCIDRs."""

    def test_bad_annotation_key(self):
        self.create()
        with self.assertRaises(KubeError) as ctx:
            self.admin.annotate(self.name(), {"weft.io/bad key": "1"}, status=True)
        self.assertStatus(ctx, 422, "Invalid")
        detail = ('Invalid value: "weft.io/bad key": name part must consist of alphanumeric '
                  "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                  "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                  "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
        self.assertEqual(ctx.exception.body["message"],
                         f'Node "{self.name()}" is invalid: metadata.annotations: {detail}')
        self.assertEqual(ctx.exception.body["details"], {
            "name": self.name(), "kind": "Node", "causes": [
                {"reason": "FieldValueInvalid", "message": detail,
                 "field": "metadata.annotations"}]})

    def test_several_errors_are_joined_in_brackets(self):
        self.create()
        with self.assertRaises(KubeError) as ctx:
            self.admin.annotate(self.name(), {"a/b/c": "1", "weft.io/": "2"})
        body = ctx.exception.body
        self.assertTrue(body["message"].startswith(f'Node "{self.name()}" is invalid: ['), body)
        self.assertEqual(len(body["details"]["causes"]), 3)

    def test_bad_label_key_and_value(self):
        with self.assertRaises(KubeError) as ctx:
            self.create(labels={"ok": "bad value"})
        self.assertStatus(ctx, 422, "Invalid")
        self.assertEqual(ctx.exception.body["details"]["causes"][0]["field"], "metadata.labels")

    def test_pod_cidrs(self):
        with self.assertRaises(KubeError) as ctx:
            self.create(pod_cidrs=["10.244.1.0/24", "10.244.2.0/24"])
        self.assertStatus(ctx, 422, "Invalid")
        self.assertEqual(ctx.exception.body["details"]["causes"], [{
            "reason": "FieldValueInvalid", "field": "spec.podCIDRs",
            "message": 'Invalid value: []string{"10.244.1.0/24", "10.244.2.0/24"}: may specify '
                       "no more than one CIDR for each IP family"}])
        node = self.create(pod_cidrs=["10.244.1.0/24", "fd00:10:244:1::/64"])
        self.assertEqual(node["spec"]["podCIDR"], "10.244.1.0/24")
        # A lone podCIDR in a patch replaces podCIDRs[0] (measured): a change, so 422.
        protected = ("[]: Forbidden: node updates may only change labels, taints, or capacity "
                     "(or configSource, if the DynamicKubeletConfig feature gate is enabled)")
        for patch in ({"podCIDR": "10.9.9.0/24"}, {"podCIDRs": ["10.244.1.0/24"]}):
            with self.assertRaises(KubeError) as ctx:
                self.admin.patch_node(self.name(), {"spec": patch})
            self.assertStatus(ctx, 422, "Invalid", f'Node "{self.name()}" is invalid: '
                              '[spec.podCIDRs: Forbidden: node updates may not change podCIDR '
                              f'except from "" to valid, {protected}]')
        # Unschedulable and taints may change; other spec fields may not.
        self.admin.patch_node(self.name(), {"spec": {"unschedulable": True, "taints": []}})
        with self.assertRaises(KubeError) as ctx:
            self.admin.patch_node(self.name(), {"spec": {"externalID": "x"}})
        self.assertStatus(ctx, 422, "Invalid", f'Node "{self.name()}" is invalid: {protected}')

    def test_forbidden_comes_before_not_found(self):
        weft = SERVER.client(WEFT)
        self.addCleanup(weft.close)
        with self.assertRaises(KubeError) as ctx:
            weft.request("GET", "/api/v1/namespaces/kube-system/secrets")
        self.assertStatus(ctx, 403, "Forbidden",
                          f'secrets is forbidden: User "{WEFT}" cannot list resource "secrets" '
                          'in API group "" in the namespace "kube-system"')
        with self.assertRaises(KubeError) as ctx:
            self.admin.request("GET", "/api/v1/namespaces/kube-system/secrets")
        self.assertStatus(ctx, 404, "NotFound")


class RealDefaults(unittest.TestCase):
    """A server started without the test-speed flags: bookmarks every 60 s (plus the one 2 s
    before a watch's end), and --startup-forbidden's RBAC 403 window."""

    def test_defaults_and_startup_window(self):
        workdir = tempfile.mkdtemp(prefix="defaults-", dir=TMP)
        server = ServerProcess(workdir, os.path.join(TMP, "certs"), "--startup-forbidden", "1.5",
                               name="defaults")
        try:
            weft, admin = server.client(WEFT), server.client()
            self.addCleanup(weft.close)
            self.addCleanup(admin.close)
            with self.assertRaises(KubeError) as ctx:
                weft.list_nodes()
            self.assertEqual(ctx.exception.status, 403)
            self.assertEqual(ctx.exception.body["message"],
                             f'nodes is forbidden: User "{WEFT}" cannot list resource "nodes" '
                             'in API group "" at the cluster scope')
            admin.list_nodes()                  # system:masters does not wait for RBAC
            self.assertEqual(admin.faults()["bookmark_interval"], 60.0)
            rv = admin.list_nodes()["metadata"]["resourceVersion"]
            start = time.monotonic()
            with admin.watch(rv, timeout=3, read_timeout=10) as w:
                events = list(w)
            self.assertEqual(events, [])        # nothing new: not even the pre-timeout one
            self.assertGreater(time.monotonic() - start, 2.5)
            weft.list_nodes()                   # the window is over
        finally:
            server.stop()

    def test_bookmark_schedule(self):
        """Every interval and 2 s before the end (kube-apiserver 1.20.2 measured: 60.9 s and
        96.5 s in a 98 s watch, 3.7 s in a 6 s one)."""
        t = kubeapi.next_bookmark_time
        self.assertEqual(t(0.0, 60.0, 98.0), 60.0)
        self.assertEqual(t(60.0, 60.0, 98.0), 96.0)
        self.assertEqual(t(96.0, 60.0, 98.0), float("inf"))
        self.assertEqual(t(0.0, 60.0, 6.0), 4.0)
        self.assertEqual(t(0.0, 60.0, 1.0), float("inf"))
        self.assertEqual(t(60.0, 60.0, 3600.0), 120.0)


class StateFileRestart(unittest.TestCase):
    """--state-file: a server stopped and started again continues with the same Nodes and
    RVs; like kube-apiserver's fresh watch cache, it has no history, so a watch from an RV
    before the restart gets 410 (--state-keep-history replays instead)."""

    def run_first(self, workdir, cert_dir, state, *extra):
        first = ServerProcess(workdir, cert_dir, "--state-file", state, *extra, name="first")
        try:
            c = first.client()
            c.create_node("st-a", ["192.0.2.1"])
            rv_a = c.create_node("st-b", ["192.0.2.2"])["metadata"]["resourceVersion"]
            c.annotate("st-a", {"weft.io/subnet": "10.244.1.0/24"}, status=True)
            c.delete_node("st-b")
            before = c.get_node("st-a")
            list_rv = c.list_nodes()["metadata"]["resourceVersion"]
            c.close()
        finally:
            self.assertEqual(first.stop(), 0)
        self.assertTrue(os.path.exists(state))
        return rv_a, before, list_rv

    def test_restart_keeps_nodes_and_rvs_not_history(self):
        workdir = tempfile.mkdtemp(prefix="state-", dir=TMP)
        state = os.path.join(workdir, "state.json")
        cert_dir = os.path.join(TMP, "certs")
        rv_a, before, list_rv = self.run_first(workdir, cert_dir, state)
        second = ServerProcess(workdir, cert_dir, "--state-file", state, name="second")
        try:
            c = second.client()
            self.addCleanup(c.close)
            self.assertEqual(c.get_node("st-a"), before)
            self.assertEqual(c.list_nodes()["metadata"]["resourceVersion"], list_rv)
            # A watch from an RV before the restart: 410 Expired, as from a fresh watch cache.
            with c.watch(rv_a, timeout=5, bookmarks=False, read_timeout=10) as w:
                events = list(w)
            self.assertEqual(len(events), 1, events)
            self.assertEqual(events[0]["type"], "ERROR")
            self.assertEqual(events[0]["object"]["code"], 410)
            self.assertEqual(events[0]["object"]["message"],
                             f"too old resource version: {rv_a} ({list_rv})")
            # From the RV the server came back at, a watch works.
            with c.watch(list_rv, timeout=5, bookmarks=False, read_timeout=10) as w:
                c2 = second.client()
                c2.create_node("st-d", ["192.0.2.4"])
                c2.close()
                event = next(iter(w))
            self.assertEqual((event["type"], event["object"]["metadata"]["name"]),
                             ("ADDED", "st-d"))
            # Writes continue the counter; they are saved without a clean exit too.
            created = c.create_node("st-c", ["192.0.2.3"])
            self.assertEqual(int(created["metadata"]["resourceVersion"]), int(list_rv) + 2)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with open(state) as f:
                    if '"st-c"' in f.read():
                        break
                time.sleep(0.02)
            else:
                self.fail("st-c never reached the state file")
            second.proc.kill()
            second.proc.wait()
        finally:
            second.stop()
        third = ServerProcess(workdir, cert_dir, "--state-file", state, name="third")
        try:
            c = third.client()
            self.addCleanup(c.close)
            self.assertEqual(c.get_node("st-c")["metadata"]["resourceVersion"],
                             created["metadata"]["resourceVersion"])
        finally:
            third.stop()

    def test_keep_history_replays_across_restart(self):
        workdir = tempfile.mkdtemp(prefix="state-", dir=TMP)
        state = os.path.join(workdir, "state.json")
        cert_dir = os.path.join(TMP, "certs")
        rv_a, before, list_rv = self.run_first(workdir, cert_dir, state, "--state-keep-history")
        second = ServerProcess(workdir, cert_dir, "--state-file", state, "--state-keep-history",
                               name="second")
        try:
            c = second.client()
            self.addCleanup(c.close)
            self.assertEqual(c.get_node("st-a"), before)
            with c.watch(rv_a, timeout=5, bookmarks=False, read_timeout=10) as w:
                events = [next(iter(w)) for _ in range(2)]
            self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in events],
                             [("MODIFIED", "st-a"), ("DELETED", "st-b")])
        finally:
            second.stop()


if __name__ == "__main__":
    unittest.main()
