#!/usr/bin/env python3
"""A tiny kubectl for the weft Kubernetes API test double (stdlib only).

From shell scripts:

    kubectl.py --ready-file F create-node node1 --internal-ip 192.0.2.11 [--pod-cidr 10.244.1.0/24]
    kubectl.py --ready-file F get-node node1 | list-nodes | delete-node node1
    kubectl.py --ready-file F annotate node1 weft.io/subnet=10.244.1.0/24 other-key-
    kubectl.py --ready-file F fault fail 3 --code 429 --retry-after 1
    kubectl.py --ready-file F stats

From Python (e2e tests):

    c = Client.from_ready_file("ready.json")           # admin token
    c.create_node("node1", ["192.0.2.11"])
    for event in c.watch(resource_version="0", timeout=5): ...

The ready file is the JSON the server writes (url, ca, admin_token, tokens).
Exit status: 0 on success, 1 when the server answered with an error (its
Status is printed), 2 on usage or connection errors.
"""

import argparse
import http.client
import json
import os
import ssl
import sys
import urllib.parse

NODES = "/api/v1/nodes"
META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
META_ONE = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
PATCH_TYPES = {"merge": "application/merge-patch+json",
               "strategic": "application/strategic-merge-patch+json",
               "json": "application/json-patch+json"}


class KubeError(Exception):
    """A non-2xx answer; .status is the HTTP code, .body the decoded Status (or text)."""

    def __init__(self, status, body, headers):
        self.status, self.body, self.headers = status, body, headers
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")

    @property
    def reason(self):
        return self.body.get("reason") if isinstance(self.body, dict) else None


class Response:
    def __init__(self, status, headers, data):
        self.status, self.headers, self.data = status, headers, data

    def json(self):
        return json.loads(self.data)


class Watch:
    """An open watch stream: iterate for decoded events, or read_line() for raw
    lines; close() ends it. .response gives the status and headers."""

    def __init__(self, conn, response):
        self.conn, self.response = conn, response

    def read_line(self):
        """The next raw line (bytes), b"" at the end of the stream."""
        return self.response.readline()

    def __iter__(self):
        while True:
            line = self.read_line()
            if not line:
                return
            yield json.loads(line)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client:
    """An HTTPS client with one keep-alive connection (not thread-safe: use one
    Client per thread)."""

    def __init__(self, url, ca, token=None, cert=None, key=None, timeout=30.0):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port or 443
        self.token, self.timeout = token, timeout
        self.ctx = ssl.create_default_context(cafile=ca)
        if cert:
            self.ctx.load_cert_chain(cert, key)
        self.conn = None

    @classmethod
    def from_ready_file(cls, path, user=None, token=None, **kwargs):
        """A client for the server that wrote `path`; admin unless `user` (a
        user name from the tokens) or `token` is given."""
        with open(path) as f:
            ready = json.load(f)
        if token is None:
            token = ready["tokens"][user] if user else ready["admin_token"]
        return cls(ready["url"], ready["ca"], token=token, **kwargs)

    def connect(self, timeout=None):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=timeout or self.timeout)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def headers(self, accept=None, content_type=None, extra=None):
        h = {}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if accept:
            h["Accept"] = accept
        if content_type:
            h["Content-Type"] = content_type
        h.update(extra or {})
        return h

    def raw(self, method, path, body=None, content_type=None, accept=None, headers=None):
        """Send a request on the kept-alive connection; a Response, whatever its code."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            content_type = content_type or "application/json"
        hdrs = self.headers(accept, content_type, headers)
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = self.connect()
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh or attempt:        # only a stale kept-alive connection is retried
                    raise
                continue
            except Exception:
                self.close()
                raise
            if resp.will_close:
                self.close()
            return Response(resp.status, resp.headers, data)

    def request(self, method, path, body=None, content_type=None, accept=None, headers=None):
        """Like raw() but decodes JSON and raises KubeError on a non-2xx code."""
        resp = self.raw(method, path, body, content_type, accept, headers)
        try:
            decoded = resp.json() if resp.data else None
        except ValueError:
            decoded = resp.data.decode(errors="replace")
        if resp.status >= 300:
            raise KubeError(resp.status, decoded, resp.headers)
        return decoded

    # -- nodes ---------------------------------------------------------------

    def list_nodes(self, metadata_only=False, label_selector=None, field_selector=None,
                   limit=None, continue_token=None, resource_version=None):
        """One list request: a page when limit is given (metadata.continue for the next)."""
        query = {k: v for k, v in (("labelSelector", label_selector),
                                   ("fieldSelector", field_selector), ("limit", limit),
                                   ("continue", continue_token),
                                   ("resourceVersion", resource_version))
                 if v not in (None, "")}
        path = NODES + ("?" + urllib.parse.urlencode(query) if query else "")
        return self.request("GET", path, accept=META_LIST if metadata_only else None)

    def get_node(self, name, metadata_only=False):
        return self.request("GET", f"{NODES}/{name}", accept=META_ONE if metadata_only else None)

    def create_node(self, name, internal_ips=(), pod_cidrs=(), labels=None, annotations=None,
                    ready=True):
        return self.request("POST", NODES, kubelet_node(name, internal_ips, pod_cidrs, labels,
                                                        annotations, ready))

    def delete_node(self, name, preconditions=None):
        body = {"kind": "DeleteOptions", "apiVersion": "v1",
                "preconditions": preconditions} if preconditions else None
        return self.request("DELETE", f"{NODES}/{name}", body)

    def update_node(self, obj, status=False):
        path = f"{NODES}/{obj['metadata']['name']}" + ("/status" if status else "")
        return self.request("PUT", path, obj)

    def patch_node(self, name, patch, patch_type="merge", status=False):
        path = f"{NODES}/{name}" + ("/status" if status else "")
        return self.request("PATCH", path, json.dumps(patch).encode(),
                            content_type=PATCH_TYPES[patch_type])

    def annotate(self, name, annotations, status=False):
        """Set (value) or remove (None) annotations with a merge patch."""
        return self.patch_node(name, {"metadata": {"annotations": annotations}}, "merge", status)

    def watch(self, resource_version=None, timeout=None, bookmarks=True, metadata_only=False,
              label_selector=None, field_selector=None, read_timeout=None):
        """Open a watch on its own connection; returns a Watch (raises KubeError
        if the server refuses it)."""
        query = {"watch": "true"}
        for key, value in (("resourceVersion", resource_version), ("timeoutSeconds", timeout),
                           ("labelSelector", label_selector),
                           ("fieldSelector", field_selector)):
            if value is not None:
                query[key] = str(value)
        if bookmarks:
            query["allowWatchBookmarks"] = "true"
        conn = self.connect(read_timeout)
        conn.request("GET", NODES + "?" + urllib.parse.urlencode(query),
                     headers=self.headers(META_ONE if metadata_only else None))
        resp = conn.getresponse()
        if resp.status != 200:
            data = resp.read()
            conn.close()
            try:
                body = json.loads(data)
            except ValueError:
                body = data.decode(errors="replace")
            raise KubeError(resp.status, body, resp.headers)
        return Watch(conn, resp)

    # -- control -------------------------------------------------------------

    def control(self, method, what, **params):
        body = {k: v for k, v in params.items() if v is not None}
        return self.request(method, "/_weft/" + what, body if body else None)

    def close_watches(self, abort=False):
        return self.control("POST", "watches/close", mode="abort" if abort else "clean")

    def garbage_watches(self):
        return self.control("POST", "watches/garbage")

    def compact(self):
        return self.control("POST", "compact")

    def fail(self, count=1, code=500, retry_after=None, path=None, verb=None):
        return self.control("POST", "fail", count=count, code=code, retry_after=retry_after,
                            path=path, verb=verb)

    def corrupt(self, count=1, mode="truncated", nbytes=None, path=None, verb=None):
        return self.control("POST", "corrupt", count=count, mode=mode, bytes=nbytes, path=path,
                            verb=verb)

    def latency(self, ms):
        return self.control("POST", "latency", ms=ms)

    def blackhole(self, on=True):
        return self.control("POST", "blackhole", on=on)

    def bookmarks(self, interval):
        return self.control("POST", "bookmarks", interval=interval)

    def reset_faults(self):
        return self.control("POST", "reset")

    def faults(self):
        return self.control("GET", "faults")

    def stats(self):
        return self.control("GET", "stats")

    def reset_stats(self):
        return self.control("POST", "stats/reset")

    def healthz(self):
        return self.raw("GET", "/_weft/healthz").data.decode()


def kubelet_node(name, internal_ips=(), pod_cidrs=(), labels=None, annotations=None, ready=True):
    """A Node as kubelet registers it: hostname/os/arch labels, InternalIP and
    Hostname addresses, the usual conditions, and spec.podCIDR(s) when the
    controller manager allocates them."""
    now = "2024-01-01T00:00:00Z"
    node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                   "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                   "beta.kubernetes.io/arch": "amd64"}
    node_labels.update(labels or {})
    metadata = {"name": name, "labels": node_labels}
    if annotations:
        metadata["annotations"] = dict(annotations)
    spec = {}
    if pod_cidrs:
        spec = {"podCIDR": pod_cidrs[0], "podCIDRs": list(pod_cidrs)}

    def condition(ctype, status, reason, message):
        return {"type": ctype, "status": status, "lastHeartbeatTime": now,
                "lastTransitionTime": now, "reason": reason, "message": message}
    conditions = [
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                  "kubelet has sufficient memory available"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                  "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID",
                  "kubelet has sufficient PID available"),
        condition("Ready", "True" if ready else "False",
                  "KubeletReady" if ready else "KubeletNotReady",
                  "kubelet is posting ready status" if ready else "container runtime not ready"),
    ]
    addresses = [{"type": "InternalIP", "address": ip} for ip in internal_ips]
    addresses.append({"type": "Hostname", "address": name})
    return {"apiVersion": "v1", "kind": "Node", "metadata": metadata, "spec": spec,
            "status": {"addresses": addresses, "conditions": conditions,
                       "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                                    "kubeletVersion": "v1.20.0"}}}


# --------------------------------------------------------------------------
# The command line.

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ready-file", default=os.environ.get("WEFT_KUBEAPI_READY"),
                   help="the server's ready file (default $WEFT_KUBEAPI_READY)")
    p.add_argument("--server", help="URL, instead of the ready file's")
    p.add_argument("--ca", help="CA file, instead of the ready file's")
    p.add_argument("--token", help="bearer token (default: the ready file's admin token)")
    p.add_argument("--as-user", help="use this user's token from the ready file")
    p.add_argument("--timeout", type=float, default=30.0)
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("create-node", help="create a Node as kubelet does")
    c.add_argument("name")
    c.add_argument("--internal-ip", action="append", default=[], help="repeatable")
    c.add_argument("--pod-cidr", action="append", default=[], help="repeatable")
    c.add_argument("--label", action="append", default=[], help="key=value, repeatable")
    c.add_argument("--not-ready", action="store_true")
    for name in ("get-node", "delete-node"):
        g = sub.add_parser(name)
        g.add_argument("name")
        if name == "get-node":
            g.add_argument("--metadata", action="store_true", help="PartialObjectMetadata")
    ls = sub.add_parser("list-nodes")
    ls.add_argument("--metadata", action="store_true", help="PartialObjectMetadataList")
    ls.add_argument("--names", action="store_true", help="print only names")
    ls.add_argument("-l", "--selector")
    a = sub.add_parser("annotate", help="key=value sets, key- removes")
    a.add_argument("name")
    a.add_argument("pairs", nargs="+")
    a.add_argument("--status", action="store_true", help="patch through nodes/status")
    pt = sub.add_parser("patch")
    pt.add_argument("name")
    pt.add_argument("patch", help="JSON")
    pt.add_argument("--type", choices=sorted(PATCH_TYPES), default="merge")
    pt.add_argument("--status", action="store_true")
    w = sub.add_parser("watch", help="print events, one JSON line each")
    w.add_argument("--rv", default=None)
    w.add_argument("--timeout", dest="watch_timeout", type=int, default=None)
    w.add_argument("--metadata", action="store_true")
    w.add_argument("--count", type=int, default=0, help="stop after N events")
    s = sub.add_parser("stats")
    s.add_argument("--reset", action="store_true")
    sub.add_parser("healthz")
    k = sub.add_parser("kubeconfig", help="write a kubeconfig for a user of the ready file")
    k.add_argument("--out", required=True)
    k.add_argument("--user", default="system:serviceaccount:kube-system:weft")

    f = sub.add_parser("fault", help="fault injection").add_subparsers(dest="fault",
                                                                      required=True)
    cw = f.add_parser("close-watches")
    cw.add_argument("--abort", action="store_true", help="cut without the final chunk")
    f.add_parser("garbage-watches", help="inject a garbage line into open watches")
    f.add_parser("compact")
    fl = f.add_parser("fail", help="fail the next N requests")
    fl.add_argument("count", type=int, help="-1: until reset")
    fl.add_argument("--code", type=int, default=500)
    fl.add_argument("--retry-after", type=int)
    fl.add_argument("--path", help="regular expression searched in the request path+query")
    fl.add_argument("--verb", help="Kubernetes verb (list, watch, patch...) or HTTP method")
    co = f.add_parser("corrupt", help="corrupt the next N responses")
    co.add_argument("count", type=int)
    co.add_argument("mode", choices=["truncated", "cut", "huge", "garbage"])
    co.add_argument("--bytes", type=int)
    co.add_argument("--path")
    co.add_argument("--verb")
    la = f.add_parser("latency")
    la.add_argument("ms", type=float)
    bh = f.add_parser("blackhole")
    bh.add_argument("state", choices=["on", "off"])
    bm = f.add_parser("bookmarks")
    bm.add_argument("interval", type=float)
    f.add_parser("reset", help="clear every fault")
    f.add_parser("show", help="print the current faults")
    return p.parse_args(argv)


def make_client(args):
    ready = {}
    if args.ready_file:
        with open(args.ready_file) as fh:
            ready = json.load(fh)
    url, ca = args.server or ready.get("url"), args.ca or ready.get("ca")
    if not url or not ca:
        raise SystemExit("kubectl.py: need --ready-file (or --server and --ca)")
    token = args.token
    if token is None:
        token = ready["tokens"][args.as_user] if args.as_user else ready.get("admin_token")
    return Client(url, ca, token=token, timeout=args.timeout), ready


def run(args, client, ready, out):
    cmd = args.cmd
    if cmd == "create-node":
        labels = dict(x.split("=", 1) for x in args.label)
        return client.create_node(args.name, args.internal_ip, args.pod_cidr, labels,
                                  ready=not args.not_ready)
    if cmd == "get-node":
        return client.get_node(args.name, metadata_only=args.metadata)
    if cmd == "delete-node":
        return client.delete_node(args.name)
    if cmd == "list-nodes":
        result = client.list_nodes(metadata_only=args.metadata, label_selector=args.selector)
        if args.names:
            for item in result["items"]:
                print(item["metadata"]["name"], file=out)
            return None
        return result
    if cmd == "annotate":
        changes = {}
        for pair in args.pairs:
            if "=" in pair:
                key, value = pair.split("=", 1)
                changes[key] = value
            elif pair.endswith("-"):
                changes[pair[:-1]] = None
            else:
                raise SystemExit(f"kubectl.py: annotate wants key=value or key-, got {pair!r}")
        return client.annotate(args.name, changes, status=args.status)
    if cmd == "patch":
        return client.patch_node(args.name, json.loads(args.patch), args.type, args.status)
    if cmd == "watch":
        with client.watch(args.rv, args.watch_timeout, metadata_only=args.metadata) as w:
            for n, event in enumerate(w, 1):
                print(json.dumps(event), file=out, flush=True)
                if args.count and n >= args.count:
                    break
        return None
    if cmd == "stats":
        return client.reset_stats() if args.reset else client.stats()
    if cmd == "healthz":
        print(client.healthz(), file=out)
        return None
    if cmd == "kubeconfig":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import kubeapi
        data = kubeapi.kubeconfig_yaml(ready["url"], ready["ca"], "weft",
                                       token=ready["tokens"][args.user])
        kubeapi.write_atomic(args.out, data, 0o600)
        return None
    return run_fault(args, client)


def run_fault(args, client):
    f = args.fault
    if f == "close-watches":
        return client.close_watches(abort=args.abort)
    if f == "garbage-watches":
        return client.garbage_watches()
    if f == "compact":
        return client.compact()
    if f == "fail":
        return client.fail(args.count, args.code, args.retry_after, args.path, args.verb)
    if f == "corrupt":
        return client.corrupt(args.count, args.mode, args.bytes, args.path, args.verb)
    if f == "latency":
        return client.latency(args.ms)
    if f == "blackhole":
        return client.blackhole(args.state == "on")
    if f == "bookmarks":
        return client.bookmarks(args.interval)
    if f == "reset":
        return client.reset_faults()
    return client.faults()


def main(argv=None, out=sys.stdout):
    args = parse_args(argv)
    try:
        client, ready = make_client(args)
        result = run(args, client, ready, out)
    except KubeError as e:
        print(json.dumps(e.body, indent=2) if isinstance(e.body, dict) else e.body,
              file=sys.stderr)
        return 1
    except (OSError, http.client.HTTPException, ssl.SSLError) as e:
        print(f"kubectl.py: {e}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps(result, indent=2), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
