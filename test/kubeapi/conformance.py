#!/usr/bin/env python3
"""Behaviour checks that weft relies on, run against ANY Kubernetes API server: the test
double (test/kubeapi/kubeapi.py) or a real kube-apiserver. The double must pass the same
checks as the real server; README.md's table lists them.

    conformance.py --server URL --ca CA --admin-token T --weft-token T [--only a,b] [--list]
    conformance.py --ready-file DIR/ready.json          # a running double: tokens from its file
    conformance.py --start-double                       # start a double of its own, check it

One line per check, `PASS name: detail`, `FAIL name: detail` or `SKIP name: why`; exit status
0 only when nothing failed. The checks create Nodes named weft-conf-<run>-* with the label
weft-conformance=<run> and delete them at the end (and leftovers of earlier runs at the start).
Expected messages are written out here, as kube-apiserver 1.20 words them (apimachinery's
validation and apierrors), not taken from the double.

Python 3 standard library only (plus kubectl.py next to it).
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kubectl import Client, KubeError, kubelet_node  # noqa: E402

NODES = "/api/v1/nodes"
LABEL = "weft-conformance"
META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WEFT_USER = "system:serviceaccount:kube-system:weft"
# A bookmark's object besides kind, apiVersion and metadata: an empty Node as Go encodes it.
EMPTY_NODE = {
    "spec": {},
    "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
               "nodeInfo": {k: "" for k in (
                   "machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                   "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                   "operatingSystem", "architecture")}},
}

QNAME_RULE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
              "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
              "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
DNS_RULE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. "
            "'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
# Bad annotation key -> the error details kube-apiserver gives for it (IsQualifiedName).
BAD_ANNOTATION_KEYS = {
    "weft.io/bad key": ["name part " + QNAME_RULE],
    "a/b/c": ["a qualified name " + QNAME_RULE +
              " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"],
    "weft.io/": ["name part must be non-empty", "name part " + QNAME_RULE],
    "weft.io/" + "x" * 64: ["name part must be no more than 63 characters"],
    "bad_prefix!/name": ["prefix part " + DNS_RULE],
}


class CheckFailed(Exception):
    pass


class Skip(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_equal(got, want, what):
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


class Conformance:
    """The checks; each check_* method raises CheckFailed or Skip, or returns a detail."""

    def __init__(self, server, ca, admin_token, weft_token, weft_user=WEFT_USER,
                 bookmark_interval=None, startup_window=None, watch_timeout=6,
                 too_old_rv=None):
        self.server, self.ca = server, ca
        self.admin = Client(server, ca, token=admin_token)
        self.weft = Client(server, ca, token=weft_token)
        self.weft_token, self.admin_token = weft_token, admin_token
        self.weft_user = weft_user
        self.bookmark_interval = bookmark_interval
        self.startup_window = startup_window
        self.watch_timeout = watch_timeout
        self.too_old_rv = too_old_rv
        self.run_id = secrets.token_hex(3)
        self.is_double = self.probe_double()

    # -- helpers ---------------------------------------------------------------

    def probe_double(self):
        try:
            resp = self.admin.raw("GET", "/_weft/healthz")
            return resp.status == 200 and resp.data == b"ok"
        except OSError:
            return False

    def name(self, suffix):
        return f"weft-conf-{self.run_id}-{suffix}"

    def create(self, suffix, pod_cidrs=(), annotations=None):
        node = kubelet_node(self.name(suffix), ["192.0.2.10"], pod_cidrs,
                            {LABEL: self.run_id}, annotations)
        return self.admin.request("POST", NODES, node)

    def cleanup(self, everything=False):
        selector = LABEL if everything else f"{LABEL}={self.run_id}"
        try:
            items = self.admin.request(
                "GET", NODES + "?labelSelector=" + urllib.parse.quote(selector))["items"]
        except (KubeError, OSError):
            return
        for item in items:
            try:
                self.admin.request("DELETE", f"{NODES}/{item['metadata']['name']}")
            except KubeError:
                pass

    def error(self, client, method, path, body=None, content_type=None, accept=None):
        """The decoded Status of a request that must fail."""
        try:
            client.request(method, path, body, content_type=content_type, accept=accept)
        except KubeError as e:
            return e.status, e.body
        raise CheckFailed(f"{method} {path} succeeded, want an error")

    def status_of(self, body, code, reason):
        expect(isinstance(body, dict), f"error body is not JSON: {body!r}")
        expect_equal(body.get("kind"), "Status", "kind")
        expect_equal(body.get("apiVersion"), "v1", "apiVersion")
        expect_equal(body.get("status"), "Failure", "status")
        expect_equal(body.get("reason"), reason, "reason")
        expect_equal(body.get("code"), code, "code")
        return body

    def list(self, query, client=None, accept=None):
        return (client or self.admin).request("GET", NODES + "?" + urllib.parse.urlencode(query),
                                              accept=accept)

    def watch_lines(self, query, until, max_lines=50, client=None):
        """(seconds since start, decoded line) for a watch, until the stream ends, `until`
        seconds pass or max_lines lines come; also returns whether the stream ended."""
        client = client or self.admin
        conn = client.connect(timeout=until + 5)
        conn.request("GET", NODES + "?" + urllib.parse.urlencode({"watch": "true", **query}),
                     headers=client.headers())
        start = time.monotonic()
        resp = conn.getresponse()
        if resp.status != 200:
            data = resp.read()
            conn.close()
            raise KubeError(resp.status, json.loads(data or b"null"), resp.headers)
        lines, ended = [], False
        try:
            while len(lines) < max_lines and time.monotonic() - start < until:
                conn.sock.settimeout(max(0.05, until - (time.monotonic() - start)))
                try:
                    line = resp.readline()
                except (TimeoutError, OSError):
                    break
                if not line:
                    ended = True
                    break
                lines.append((time.monotonic() - start, json.loads(line)))
        finally:
            conn.close()
        return lines, ended

    # -- authentication and authorization ---------------------------------------

    def check_unauthorized_401(self):
        bad = Client(self.server, self.ca, token="weft-conformance-not-a-token")
        code, body = self.error(bad, "GET", NODES)
        expect_equal(body, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": "Unauthorized",
                            "reason": "Unauthorized", "code": 401}, "401 body")
        return "bad token: the exact 401 Status"

    def check_forbidden_403_secrets(self):
        code, body = self.error(self.weft, "GET", "/api/v1/namespaces/kube-system/secrets")
        self.status_of(body, 403, "Forbidden")
        expect_equal(body.get("message"),
                     f'secrets is forbidden: User "{self.weft_user}" cannot list resource '
                     '"secrets" in API group "" in the namespace "kube-system"', "message")
        expect_equal(body.get("details"), {"kind": "secrets"}, "details")
        return "weft's token listing secrets: RBAC's 403"

    def check_forbidden_403_node_patch(self):
        self.create("rbac")
        path = f"{NODES}/{self.name('rbac')}"
        code, body = self.error(self.weft, "PATCH", path, b'{"metadata":{"labels":{"a":"b"}}}',
                                "application/merge-patch+json")
        self.status_of(body, 403, "Forbidden")
        expect_equal(body.get("message"),
                     f'nodes "{self.name("rbac")}" is forbidden: User "{self.weft_user}" cannot '
                     'patch resource "nodes" in API group "" at the cluster scope', "message")
        expect_equal(body.get("details"), {"name": self.name("rbac"), "kind": "nodes"}, "details")
        return "weft may patch nodes/status only"

    def check_startup_forbidden(self):
        if self.startup_window is None:
            raise Skip("needs a server started just now: pass --startup-window S")
        start = time.monotonic()
        refused, deadline = None, start + self.startup_window + 10
        while time.monotonic() < deadline:
            try:
                self.list({}, client=self.weft)
                break
            except KubeError as e:
                if e.status != 403:
                    raise CheckFailed(f"want 403 or success, got {e.status}: {e.body}")
                refused = refused or (time.monotonic() - start, e.body)
            time.sleep(0.05)
        else:
            raise CheckFailed(f"weft's list still refused after {deadline - start:.0f} s")
        took = time.monotonic() - start
        if refused is None:
            return "served at once (no 403 window)"
        self.status_of(refused[1], 403, "Forbidden")
        expect_equal(refused[1].get("message"),
                     f'nodes is forbidden: User "{self.weft_user}" cannot list resource "nodes" '
                     'in API group "" at the cluster scope', "message")
        expect(took <= self.startup_window + 1, f"refused for {took:.1f} s")
        return f"403 with RBAC's message for {took:.1f} s, then served"

    # -- writes -----------------------------------------------------------------

    def check_conflict_409_stale_rv(self):
        node = self.create("conflict")
        name = self.name("conflict")
        self.admin.request("PATCH", f"{NODES}/{name}", b'{"metadata":{"labels":{"x":"1"}}}',
                           content_type="application/merge-patch+json")
        code, body = self.error(self.admin, "PUT", f"{NODES}/{name}", node)
        message = (f'Operation cannot be fulfilled on nodes "{name}": the object has been '
                   "modified; please apply your changes to the latest version and try again")
        self.status_of(body, 409, "Conflict")
        expect_equal(body.get("message"), message, "PUT message")
        expect_equal(body.get("details"), {"name": name, "kind": "nodes"}, "details")
        stale = json.dumps({"metadata": {"resourceVersion": node["metadata"]["resourceVersion"],
                                         "labels": {"y": "1"}}}).encode()
        code, body = self.error(self.admin, "PATCH", f"{NODES}/{name}", stale,
                                "application/merge-patch+json")
        self.status_of(body, 409, "Conflict")
        expect_equal(body.get("message"), message, "PATCH message")
        return "PUT and a patch with a stale resourceVersion"

    def check_already_exists_409(self):
        self.create("twice")
        code, body = self.error(self.admin, "POST", NODES,
                                kubelet_node(self.name("twice"), ["192.0.2.1"]))
        self.status_of(body, 409, "AlreadyExists")
        expect_equal(body.get("message"), f'nodes "{self.name("twice")}" already exists', "message")
        return "create of an existing name"

    def check_not_found_404(self):
        name = self.name("missing")
        code, body = self.error(self.admin, "GET", f"{NODES}/{name}")
        self.status_of(body, 404, "NotFound")
        expect_equal(body.get("message"), f'nodes "{name}" not found', "message")
        expect_equal(body.get("details"), {"name": name, "kind": "nodes"}, "details")
        return "get of a missing node"

    def check_smp_conditions_merge(self):
        self.create("smp")
        patch = {"status": {"conditions": [{"type": "NetworkUnavailable", "status": "False",
                                            "reason": "WeftIsUp", "message": "weft is up"}]}}
        node = self.weft.request("PATCH", f"{NODES}/{self.name('smp')}/status",
                                 json.dumps(patch).encode(),
                                 content_type="application/strategic-merge-patch+json")
        types = [c["type"] for c in node["status"]["conditions"]]
        expect_equal(sorted(types), sorted(["MemoryPressure", "DiskPressure", "PIDPressure",
                                            "Ready", "NetworkUnavailable"]), "condition types")
        return "strategic merge patch of nodes/status merges conditions by type"

    def check_smp_null_in_absent_map(self):
        smp, merge = "application/strategic-merge-patch+json", "application/merge-patch+json"
        patch = json.dumps({"metadata": {"annotations": {"weft.io/gone": None, "weft.io/kept": "x"}}}).encode()
        self.create("smpnull")
        path = f"{NODES}/{self.name('smpnull')}/status"
        node = self.weft.request("PATCH", path, patch, content_type=smp)
        expect_equal(node["metadata"].get("annotations"), {"weft.io/gone": "", "weft.io/kept": "x"},
                     "strategic merge patch with nulls into a node without annotations")
        again = json.dumps({"metadata": {"annotations": {"weft.io/gone": None, "weft.io/other": None}}}).encode()
        node = self.weft.request("PATCH", path, again, content_type=smp)
        expect_equal(node["metadata"].get("annotations"), {"weft.io/kept": "x"},
                     "the same nulls into existing annotations")
        self.create("mergenull")
        node = self.weft.request("PATCH", f"{NODES}/{self.name('mergenull')}/status", patch,
                                 content_type=merge)
        expect_equal(node["metadata"].get("annotations"), {"weft.io/kept": "x"},
                     "merge patch with nulls into a node without annotations")
        return 'strategic merge patch: nulls into absent annotations are stored as ""'

    def check_merge_patch_conditions_replace(self):
        self.create("merge")
        patch = {"status": {"conditions": [{"type": "NetworkUnavailable", "status": "False"}]}}
        node = self.admin.request("PATCH", f"{NODES}/{self.name('merge')}/status",
                                  json.dumps(patch).encode(),
                                  content_type="application/merge-patch+json")
        expect_equal([c["type"] for c in node["status"]["conditions"]], ["NetworkUnavailable"],
                     "condition types")
        return "JSON merge patch replaces the list"

    def check_annotation_key_invalid_422(self):
        self.create("annot")
        name = self.name("annot")
        for key, details in BAD_ANNOTATION_KEYS.items():
            patch = json.dumps({"metadata": {"annotations": {key: "1"}}}).encode()
            code, body = self.error(self.weft, "PATCH", f"{NODES}/{name}/status", patch,
                                    "application/merge-patch+json")
            self.status_of(body, 422, "Invalid")
            errors = [f'metadata.annotations: Invalid value: "{key}": {d}' for d in details]
            joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            expect_equal(body.get("message"), f'Node "{name}" is invalid: {joined}',
                         f"message for {key!r}")
            det = body.get("details") or {}
            expect_equal((det.get("name"), det.get("kind")), (name, "Node"), "details")
            causes = [dict(c) for c in det.get("causes") or []]
            want = [{"reason": "FieldValueInvalid", "message": f'Invalid value: "{key}": {d}',
                     "field": "metadata.annotations"} for d in details]
            distinct = [c for i, c in enumerate(causes) if c not in causes[:i]]
            expect_equal(distinct, want, f"causes for {key!r}")
        # Keys are checked in lower case: an upper-case prefix is fine.
        self.weft.request("PATCH", f"{NODES}/{name}/status",
                          b'{"metadata":{"annotations":{"Weft.IO/Subnet":"1"}}}',
                          content_type="application/merge-patch+json")
        return f"{len(BAD_ANNOTATION_KEYS)} bad keys through nodes/status; Weft.IO/Subnet accepted"

    def check_podcidr_invalid_422(self):
        name = self.name("badcidr")
        node = kubelet_node(name, ["192.0.2.1"], (), {LABEL: self.run_id})
        node["spec"] = {"podCIDR": "not-a-cidr"}
        code, body = self.error(self.admin, "POST", NODES, node)
        self.status_of(body, 422, "Invalid")
        detail = 'Invalid value: []string{"not-a-cidr"}: must be valid CIDR'
        expect_equal(body.get("message"), f'Node "{name}" is invalid: spec.podCIDRs[0]: {detail}',
                     "message")
        expect_equal(body["details"].get("causes"),
                     [{"reason": "FieldValueInvalid", "message": detail,
                       "field": "spec.podCIDRs[0]"}], "causes")
        return "create with podCIDR not-a-cidr"

    def podcidr_change(self, suffix, patch):
        self.create(suffix, pod_cidrs=["10.244.7.0/24"])
        name = self.name(suffix)
        code, body = self.error(self.admin, "PATCH", f"{NODES}/{name}", patch,
                                "application/merge-patch+json")
        self.status_of(body, 422, "Invalid")
        cidr = 'Forbidden: node updates may not change podCIDR except from "" to valid'
        spec = ("Forbidden: node updates may only change labels, taints, or capacity (or "
                "configSource, if the DynamicKubeletConfig feature gate is enabled)")
        expect_equal(body.get("message"), f'Node "{name}" is invalid: [spec.podCIDRs: {cidr}, '
                     f'[]: {spec}]', "message")
        expect_equal(body["details"].get("causes"),
                     [{"reason": "FieldValueForbidden", "message": cidr, "field": "spec.podCIDRs"},
                      {"reason": "FieldValueForbidden", "message": spec, "field": "[]"}], "causes")

    def check_podcidr_change_422(self):
        self.podcidr_change("cidr", b'{"spec":{"podCIDR":"10.244.8.0/24",'
                                    b'"podCIDRs":["10.244.8.0/24"]}}')
        return "a set podCIDR(s) is immutable (and a protected spec change)"

    def check_podcidr_singular_change_422(self):
        self.podcidr_change("cidr1", b'{"spec":{"podCIDR":"10.244.8.0/24"}}')
        return "patching podCIDR alone changes podCIDRs: 422 too"

    def check_podcidr_set_from_empty(self):
        self.create("nocidr")
        node = self.admin.request("PATCH", f"{NODES}/{self.name('nocidr')}",
                                  b'{"spec":{"podCIDR":"10.244.9.0/24"}}',
                                  content_type="application/merge-patch+json")
        expect_equal((node["spec"].get("podCIDR"), node["spec"].get("podCIDRs")),
                     ("10.244.9.0/24", ["10.244.9.0/24"]), "spec")
        return "podCIDR from unset to a value; podCIDRs follows"

    def check_podcidr_status_ignored(self):
        self.create("stcidr", pod_cidrs=["10.244.10.0/24"])
        node = self.weft.request("PATCH", f"{NODES}/{self.name('stcidr')}/status",
                                 b'{"spec":{"podCIDR":"10.1.1.0/24","podCIDRs":["10.1.1.0/24"]},'
                                 b'"metadata":{"annotations":{"weft.io/x":"1"}}}',
                                 content_type="application/merge-patch+json")
        expect_equal(node["spec"].get("podCIDR"), "10.244.10.0/24", "podCIDR")
        expect_equal(node["metadata"].get("annotations"), {"weft.io/x": "1"}, "annotations")
        return "nodes/status keeps spec, applies metadata"

    # -- lists ------------------------------------------------------------------

    def check_list_paging_snapshot(self):
        for s in ("p1", "p2", "p3", "p4", "p5"):
            self.create(s)
        selector = f"{LABEL}={self.run_id},page=yes"
        for s in ("p1", "p2", "p3", "p4", "p5"):
            self.admin.request("PATCH", f"{NODES}/{self.name(s)}",
                               b'{"metadata":{"labels":{"page":"yes"}}}',
                               content_type="application/merge-patch+json")
        first = self.list({"labelSelector": selector, "limit": 2})
        names = [i["metadata"]["name"] for i in first["items"]]
        expect_equal(names, [self.name("p1"), self.name("p2")], "page 1")
        token = first["metadata"].get("continue")
        expect(token, "page 1 has no metadata.continue")
        expect("remainingItemCount" not in first["metadata"],
               "remainingItemCount with a selector")
        # Changes after page 1 must not show in page 2: the snapshot is page 1's.
        self.admin.request("DELETE", f"{NODES}/{self.name('p3')}")
        node = kubelet_node(self.name("p35"), ["192.0.2.1"], (),
                            {LABEL: self.run_id, "page": "yes"})
        self.admin.request("POST", NODES, node)
        second = self.list({"labelSelector": selector, "limit": 2, "continue": token})
        expect_equal([i["metadata"]["name"] for i in second["items"]],
                     [self.name("p3"), self.name("p4")], "page 2 (snapshot of page 1)")
        expect_equal(second["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
                     "page 2's resourceVersion")
        third = self.list({"labelSelector": selector, "limit": 2,
                           "continue": second["metadata"]["continue"]})
        expect_equal([i["metadata"]["name"] for i in third["items"]], [self.name("p5")],
                     "page 3")
        expect(not third["metadata"].get("continue"), "last page has a continue token")
        return "limit=2: 3 pages at page 1's resourceVersion"

    def check_list_paging_remaining_count(self):
        self.create("rc1")
        self.create("rc2")
        total = len(self.list({})["items"])
        page = self.list({"limit": 1})
        expect_equal(len(page["items"]), 1, "items")
        expect(page["metadata"].get("continue"), "no continue")
        expect_equal(page["metadata"].get("remainingItemCount"), total - 1, "remainingItemCount")
        return f"limit=1 of {total}: remainingItemCount {total - 1}"

    def check_list_rv0_unpaged(self):
        self.create("rv0a")
        self.create("rv0b")
        total = len(self.list({})["items"])
        page = self.list({"limit": 1, "resourceVersion": "0"})
        expect_equal(len(page["items"]), total, "items of a limit=1&resourceVersion=0 list")
        expect(not page["metadata"].get("continue"), "continue on an rv=0 list")
        return f"limit=1&resourceVersion=0 gives all {total}, from the watch cache"

    def check_continue_garbage_400(self):
        code, body = self.error(self.admin, "GET", NODES + "?limit=1&continue=garbage%21%21")
        self.status_of(body, 400, "BadRequest")
        expect(body.get("message", "").startswith("invalid continue token: continue key is "
                                                  "not valid"), f"message {body.get('message')}")
        return body["message"]

    def check_continue_expired_410(self):
        if not self.is_double:
            raise Skip("needs an etcd compaction (kube-apiserver compacts every 5 min)")
        self.create("exp1")
        self.create("exp2")
        page = self.list({"limit": 1})
        self.create("exp3")                                 # page 1's revision is now old
        self.admin.request("POST", "/_weft/compact")        # and compacted away
        code, body = self.error(self.admin, "GET", NODES + "?" + urllib.parse.urlencode(
            {"limit": 1, "continue": page["metadata"]["continue"]}))
        self.status_of(body, 410, "Expired")
        expect(body.get("message", "").startswith(
            "The provided continue parameter is too old to display a consistent list result."),
            f"message {body.get('message')}")
        token = (body.get("metadata") or {}).get("continue")
        expect(token, "no inconsistent continue token in the 410")
        rest = self.list({"limit": 500, "continue": token})
        expect(rest["items"], "the inconsistent token lists nothing")
        return "410 Expired and a token to go on inconsistently"

    def check_metadata_only_list(self):
        self.create("meta")
        lst = self.list({"labelSelector": f"{LABEL}={self.run_id}"}, accept=META_LIST)
        expect_equal((lst.get("kind"), lst.get("apiVersion")),
                     ("PartialObjectMetadataList", "meta.k8s.io/v1"), "list kind")
        expect(lst["items"], "no items")
        for item in lst["items"]:
            expect_equal((item.get("kind"), item.get("apiVersion")),
                         ("PartialObjectMetadata", "meta.k8s.io/v1"), "item kind")
            expect(set(item) == {"kind", "apiVersion", "metadata"}, f"item keys {set(item)}")
        return f"{len(lst['items'])} PartialObjectMetadata items"

    # -- watches ----------------------------------------------------------------

    def check_watch_too_old_410(self):
        self.create("old1")
        self.create("old2")
        rv = self.too_old_rv or "1"
        if self.is_double and not self.too_old_rv:
            self.admin.request("POST", "/_weft/compact")
        lines, ended = self.watch_lines({"resourceVersion": rv}, until=10)
        expect(lines, "no event")
        _, event = lines[0]
        if event.get("type") != "ERROR" and not self.too_old_rv and not self.is_double:
            raise Skip("RV 1 is still in this young server's watch cache: pass --too-old-rv "
                       "with an RV from before a kube-apiserver restart")
        expect_equal(event.get("type"), "ERROR", "event type")
        obj = self.status_of(event.get("object"), 410, "Expired")
        expect(re.fullmatch(rf"too old resource version: {rv} \(\d+\)", obj.get("message", "")),
               f"message {obj.get('message')!r}")
        expect(ended and len(lines) == 1, "the stream goes on after the ERROR")
        return obj["message"]

    def bookmark_watch(self, suffix, timeout, until, change_at=1.0):
        """Bookmarks (seconds since start, event) of a watch from the current RV; the node
        is changed `change_at` seconds into the watch (None: never, a quiet watch)."""
        self.create(suffix)
        rv = self.list({})["metadata"]["resourceVersion"]
        timer = None
        if change_at is not None:
            def change():
                c = Client(self.server, self.ca, token=self.admin_token)
                try:
                    c.request("PATCH", f"{NODES}/{self.name(suffix)}",
                              b'{"metadata":{"labels":{"bm":"1"}}}',
                              content_type="application/merge-patch+json")
                finally:
                    c.close()
            timer = threading.Timer(change_at, change)
            timer.start()
        try:
            lines, ended = self.watch_lines({"resourceVersion": rv, "allowWatchBookmarks": "true",
                                             "timeoutSeconds": timeout}, until=until,
                                            max_lines=1000)
        finally:
            if timer:
                timer.cancel()
        marks = [(at, e) for at, e in lines if e.get("type") == "BOOKMARK"]
        for _, mark in marks:
            obj = mark.get("object") or {}
            expect_equal(obj, {"kind": "Node", "apiVersion": "v1",
                               "metadata": {"resourceVersion": obj.get("metadata", {}).get(
                                   "resourceVersion"), "creationTimestamp": None},
                               **EMPTY_NODE}, "bookmark object")
            expect(int(obj["metadata"]["resourceVersion"]) > int(rv), "bookmark RV too old")
        return marks, ended

    def check_bookmark_pre_timeout(self):
        interval = self.bookmark_interval or 60.0
        t = self.watch_timeout
        if interval < t:
            raise Skip(f"the bookmark interval {interval} s is shorter than a {t} s watch")
        marks, ended = self.bookmark_watch("bm", t, t + 5)
        expect(ended, f"the stream did not end within {t + 5} s of timeoutSeconds={t}")
        times = [at for at, _ in marks]
        expect(times, f"no bookmark before the end of a {t} s watch that saw a change")
        expect(all(t - 3.5 <= at <= t - 0.5 for at in times),
               f"bookmarks at {times}: want them only about 2 s before the end ({t - 2} s)")
        return f"bookmarks at {', '.join(f'{x:.1f}' for x in times)} s of a {t} s watch"

    def check_bookmark_cadence(self):
        interval = self.bookmark_interval
        if interval is None:
            raise Skip("pass --bookmark-interval S (60 for kube-apiserver; the check then "
                       "takes 1.5 S + 8 s) to time the cadence and the pre-timeout bookmark")
        t = int(interval * 1.5 + 8)
        marks, ended = self.bookmark_watch("cad", t, t + 5)
        times = [at for at, _ in marks]
        expect(ended, "the stream did not end at timeoutSeconds")
        expect(times, f"no bookmark in a {t} s watch")
        expect(interval * 0.9 - 1 <= times[0] <= interval * 1.1 + 1.5,
               f"first bookmark at {times[0]:.1f} s, want about {interval} s")
        for a, b in zip(times, times[1:]):
            expect(b - a <= interval * 1.1 + 1.5, f"gap {b - a:.1f} s, want at most {interval} s")
        expect(t - 3.5 <= times[-1] <= t - 1, f"last bookmark at {times[-1]:.1f} s, want "
               f"{t - 2} s (2 s before timeoutSeconds={t})")
        return f"bookmarks at {', '.join(f'{x:.1f}' for x in times)} s of a {t} s watch"

    def check_bookmark_none_when_quiet(self):
        interval = self.bookmark_interval
        if interval is None:
            raise Skip("pass --bookmark-interval S (60 for kube-apiserver; the check then "
                       "takes S + 10 s)")
        t = int(interval + 5)
        marks, ended = self.bookmark_watch("quiet", t, t + 5, change_at=None)
        expect(ended, "the stream did not end at timeoutSeconds")
        expect_equal([round(at, 1) for at, _ in marks], [],
                     "bookmarks in a watch that saw no change since it started")
        return f"none in a {t} s watch with nothing new since its start"

    CHECKS = [
        "startup_forbidden", "unauthorized_401", "forbidden_403_secrets",
        "forbidden_403_node_patch", "not_found_404", "already_exists_409",
        "conflict_409_stale_rv", "smp_conditions_merge", "smp_null_in_absent_map",
        "merge_patch_conditions_replace",
        "annotation_key_invalid_422", "podcidr_invalid_422", "podcidr_change_422",
        "podcidr_singular_change_422",
        "podcidr_set_from_empty", "podcidr_status_ignored", "list_paging_snapshot",
        "list_paging_remaining_count", "list_rv0_unpaged", "continue_garbage_400",
        "continue_expired_410", "metadata_only_list", "watch_too_old_410",
        "bookmark_pre_timeout", "bookmark_cadence", "bookmark_none_when_quiet",
    ]

    def run(self, only=None, out=sys.stdout):
        """Runs the checks (all, or those named in `only`); returns {name: (verdict, detail)}."""
        results = {}
        names = [n for n in self.CHECKS if not only or n in only]
        unknown = set(only or ()) - set(self.CHECKS)
        if unknown:
            raise SystemExit(f"unknown checks {sorted(unknown)}: see --list")
        if "startup_forbidden" in names:       # first: the window closes while we work
            results["startup_forbidden"] = self.run_one("startup_forbidden", out)
        self.cleanup(everything=True)
        try:
            for name in names:
                if name != "startup_forbidden":
                    results[name] = self.run_one(name, out)
        finally:
            self.cleanup()
        return results

    def run_one(self, name, out):
        start = time.monotonic()
        try:
            verdict, detail = "PASS", getattr(self, "check_" + name)()
        except Skip as e:
            verdict, detail = "SKIP", str(e)
        except CheckFailed as e:
            verdict, detail = "FAIL", str(e)
        except KubeError as e:
            verdict, detail = "FAIL", f"unexpected HTTP {e.status}: {e.body}"
        except (OSError, ValueError, KeyError, TypeError) as e:
            verdict, detail = "FAIL", f"{type(e).__name__}: {e}"
        took = time.monotonic() - start
        print(f"{verdict} {name}: {detail} [{took:.1f} s]", file=out, flush=True)
        return verdict, detail


# --------------------------------------------------------------------------
# A double of its own (--start-double), for CTest.

class OwnDouble:
    def __init__(self, extra_args):
        self.dir = tempfile.mkdtemp(prefix="weft-conformance-")
        self.ready = os.path.join(self.dir, "ready.json")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "kubeapi.py"), "--listen", "127.0.0.1:0",
             "--cert-dir", os.path.join(self.dir, "certs"), "--ready-file", self.ready,
             "--log-file", os.path.join(self.dir, "kubeapi.log"), *extra_args])
        deadline = time.monotonic() + 30
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the test double did not start")
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--server", help="https://HOST:PORT")
    p.add_argument("--ca", help="CA file of the server's certificate")
    p.add_argument("--admin-token", help="a token with every permission (system:masters)")
    p.add_argument("--weft-token", help="the token of weft's service account (flannel's RBAC)")
    p.add_argument("--weft-user", default=WEFT_USER, help="that service account's user name")
    p.add_argument("--ready-file", help="a running double's ready file (instead of the above)")
    p.add_argument("--start-double", action="store_true",
                   help="start a test double of its own on 127.0.0.1:0 and check it")
    p.add_argument("--double-arg", action="append", default=[],
                   help="extra kubeapi.py flag for --start-double (repeatable)")
    p.add_argument("--only", help="comma-separated checks to run")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("--bookmark-interval", type=float,
                   help="expected seconds between bookmarks (60 for kube-apiserver): checks "
                        "the cadence; without it only the shape and the pre-timeout bookmark")
    p.add_argument("--startup-window", type=float,
                   help="the server started just now and refuses weft with 403 for up to S "
                        "seconds: check that (with --start-double: its --startup-forbidden)")
    p.add_argument("--watch-timeout", type=int, default=6,
                   help="timeoutSeconds of the bookmark_pre_timeout watch (default 6)")
    p.add_argument("--too-old-rv", help="an RV the server must answer with 410 (e.g. one from "
                                        "before a kube-apiserver restart); default: 1, after a "
                                        "compaction on the double")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        print("\n".join(Conformance.CHECKS))
        return 0
    only = [x.strip() for x in args.only.split(",") if x.strip()] if args.only else None
    double = None
    if args.start_double:
        extra = list(args.double_arg)
        if args.startup_window is not None:
            extra += ["--startup-forbidden", str(args.startup_window)]
        if args.bookmark_interval is not None:
            extra += ["--bookmark-interval", str(args.bookmark_interval)]
        double = OwnDouble(extra)
        args.ready_file = double.ready
    try:
        if args.ready_file:
            with open(args.ready_file) as f:
                ready = json.load(f)
            args.server, args.ca = args.server or ready["url"], args.ca or ready["ca"]
            args.admin_token = args.admin_token or ready["admin_token"]
            args.weft_token = args.weft_token or ready["tokens"][args.weft_user]
        missing = [f for f in ("server", "ca", "admin_token", "weft_token")
                   if not getattr(args, f)]
        if missing:
            raise SystemExit(f"missing --{', --'.join(m.replace('_', '-') for m in missing)} "
                             "(or give --ready-file / --start-double)")
        c = Conformance(args.server, args.ca, args.admin_token, args.weft_token, args.weft_user,
                        args.bookmark_interval, args.startup_window, args.watch_timeout,
                        args.too_old_rv)
        print(f"# {args.server}: {'weft test double' if c.is_double else 'an API server'}, "
              f"run {c.run_id}", flush=True)
        results = c.run(only)
    finally:
        if double:
            double.stop()
    failed = [n for n, (v, _) in results.items() if v == "FAIL"]
    counts = {v: sum(1 for x, _ in results.values() if x == v) for v in ("PASS", "FAIL", "SKIP")}
    print(f"# {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped"
          + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
