#!/usr/bin/env python3
"""A Kubernetes API test double for weft: the core/v1 Node API over HTTPS.

No kube-apiserver can be installed here, so weft's tests talk to this server
instead. It follows the real API server's semantics for the calls weft makes
(checked against kube-apiserver 1.20.2 with conformance.py: see README.md):

  * list/get/create/update/patch/delete of Nodes and the nodes/status
    subresource; a global, increasing resourceVersion on every object and list;
    409 Conflict on a stale resourceVersion (in a PUT body or inside a patch);
  * JSON merge patch (RFC 7386), strategic merge patch (lists merged by key
    where the Node schema says so: conditions and addresses by "type",
    podCIDRs and finalizers as sets) and JSON patch (RFC 6902);
  * limit/continue paging at the first page's snapshot, resourceVersion=0
    lists unpaged (the watch cache), 410/400 for expired/garbage tokens;
  * watch streams (chunked, one JSON event per line) replayed from a bounded
    history, BOOKMARK events on kube-apiserver's schedule (every 60 s and 2 s
    before the deadline, only when something is new), 410 Expired after a
    compaction or a --state-file restart;
  * 422 Invalid worded as apimachinery words it (annotation and label keys,
    names, podCIDRs, immutable spec fields), RBAC's 403 before 404, and an
    optional start-up 403 window;
  * metadata-only responses (PartialObjectMetadata[List]) chosen by Accept;
  * bearer-token and client-certificate authentication, per-user RBAC-like
    permissions, Status error bodies worded like the real ones;
  * fault injection and counters under /_weft/ (see README.md).

Only the Python standard library and the openssl CLI (for certificates) are
used. Run `kubeapi.py --help` for the flags; README.md has the contract.
"""

import argparse
import base64
import collections
import copy
import fcntl
import http.server
import ipaddress
import itertools
import json
import logging
import os
import re
import secrets
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

log = logging.getLogger("kubeapi")

MAX_REQUEST_BODY = 3 * 1024 * 1024      # kube-apiserver's limit for a request body
MAX_ANNOTATIONS_BYTES = 256 * 1024      # TotalAnnotationSizeLimitB
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0
WRITE_BATCH = 256 * 1024                # list/replay output is written in pieces of this size
DEFAULT_WATCH_TIMEOUT = 1800            # kube-apiserver's --min-request-timeout
DEFAULT_BOOKMARK_INTERVAL = 60.0        # the watch cache's bookmarkFrequency (1 minute)
PRE_TIMEOUT_BOOKMARK = 2.0              # a bookmark also comes 2 s before a watch's deadline
LIVENESS_CHECK = 1.0                    # seconds between checks that a quiet watcher's client is there
GARBAGE_LINE = b"%%% weft-kubeapi injected garbage: this line is not JSON %%%\n"

META_GROUP = "meta.k8s.io"
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# Weft's own RBAC, as flannel's: read nodes, patch nodes/status (annotations
# are written through /status, which the real API allows for nodes).
WEFT_RULES = {"nodes": ["get", "list", "watch"], "nodes/status": ["patch"]}
READER_RULES = {"nodes": ["get", "list", "watch"]}


def dumps(obj):
    """Compact JSON bytes, like the API server's encoder."""
    return json.dumps(obj, separators=(",", ":")).encode()


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------
# Errors: every failure is a metav1.Status, as the real server sends it.

class ApiError(Exception):
    def __init__(self, code, reason, message, name=None, kind="nodes", extra_details=None,
                 headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.name, self.kind = name, kind
        self.extra_details = extra_details or {}
        self.headers = headers or {}
        self.list_continue = None      # a 410 for an expired continue token carries a new one

    def status(self):
        meta = {"continue": self.list_continue} if self.list_continue else {}
        body = {"kind": "Status", "apiVersion": "v1", "metadata": meta, "status": "Failure",
                "message": self.message, "reason": self.reason}
        details = {}
        if self.name is not None:
            details["name"] = self.name
        if self.kind:
            details["kind"] = self.kind
        details.update(self.extra_details)
        if details:
            body["details"] = details
        body["code"] = self.code
        return body


def not_found(name):
    return ApiError(404, "NotFound", f'nodes "{name}" not found', name)


def already_exists(name):
    return ApiError(409, "AlreadyExists", f'nodes "{name}" already exists', name)


def conflict(name):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on nodes "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    name)


def bad_request(message):
    return ApiError(400, "BadRequest", message, kind=None)


class FieldError:
    """One field.Error of apimachinery: its cause type, field path and ErrorBody()."""

    def __init__(self, cause, field, body):
        self.cause, self.field, self.body = cause, field, body

    def text(self):
        return f"{self.field}: {self.body}"


def go_quote(value):
    """Go's %q of a string (enough for the keys and values in validation messages)."""
    return json.dumps(value, ensure_ascii=False)


def field_invalid(field, value, detail):
    shown = go_quote(value) if isinstance(value, str) else value
    return FieldError("FieldValueInvalid", field, f"Invalid value: {shown}: {detail}")


def field_forbidden(field, detail):
    return FieldError("FieldValueForbidden", field, f"Forbidden: {detail}")


def invalid_errors(name, errors):
    """422 Invalid for a list of FieldErrors, as apierrors.NewInvalid builds it: the message
    joins the distinct errors (in brackets when more than one), one cause per error."""
    texts = list(dict.fromkeys(e.text() for e in errors))
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    causes = []
    for e in errors:
        cause = {"reason": e.cause, "message": e.body, "field": e.field}
        if cause not in causes:
            causes.append(cause)
    return ApiError(422, "Invalid", f'Node "{name}" is invalid: {joined}', name, kind="Node",
                    extra_details={"causes": causes})


def invalid(name, field, cause_reason, detail):
    return invalid_errors(name, [FieldError(cause_reason, field, detail)])


def resource_gone_line(rv, floor):
    status = ApiError(410, "Expired", f"too old resource version: {rv} ({floor})",
                      kind=None).status()
    return b'{"type":"ERROR","object":' + dumps(status) + b"}\n"


# --------------------------------------------------------------------------
# Patches.

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Lists of the Node schema that a strategic merge patch merges instead of
# replacing: path -> merge key (None: a list of primitives merged as a set).
# From the patchStrategy/patchMergeKey tags of k8s.io/api/core/v1.
SMP_MERGE_LISTS = {
    ("metadata", "finalizers"): None,
    ("metadata", "ownerReferences"): "uid",
    ("spec", "podCIDRs"): None,
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
}


# The string maps of Node's metadata: a strategic merge patch that brings one where the object
# has none (an empty map is not stored) is taken whole by kube-apiserver 1.20.2, its nulls
# included, and a null decodes into a map[string]string as "" (measured: {"a": null, "b": "x"}
# into a Node without annotations stores {"a": "", "b": "x"}; into one with annotations it
# deletes "a"; a JSON merge patch deletes it either way). Conformance check
# smp_null_in_absent_map.
SMP_STRING_MAPS = {("metadata", "annotations"), ("metadata", "labels")}


def strategic_merge_patch(original, patch, path=()):
    """Strategic merge patch of a map, for the Node schema (apimachinery's
    strategicpatch, reduced to what Node needs: $patch replace/delete,
    $retainKeys, $deleteFromPrimitiveList, $setElementOrder is accepted and
    ignored since order carries no meaning for weft)."""
    if not isinstance(patch, dict):
        raise bad_request(f"unable to apply strategic merge patch: expected a map at "
                          f"{'.'.join(path) or 'the root'}")
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive is not None:
        raise bad_request(f"Unknown patch type: {directive} in map: {patch}")
    result = dict(original) if isinstance(original, dict) else {}
    retain = patch.get("$retainKeys")
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain or k in patch}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [x for x in result[field] if x not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif (isinstance(value, dict) and path + (key,) in SMP_STRING_MAPS and not result.get(key)
              and not any(k.startswith("$") for k in value)):
            result[key] = {k: "" if v is None else v for k, v in value.items()}
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, path + (key,))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = smp_list(result.get(key), value, path + (key,))
        else:
            result[key] = value
    return result


def smp_list(original, patch, path):
    replace = any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch)
    items = [x for x in patch if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    if replace or path not in SMP_MERGE_LISTS or not isinstance(original, list):
        return [x for x in items if not (isinstance(x, dict) and "$patch" in x)]
    key = SMP_MERGE_LISTS[path]
    if key is None:
        return list(original) + [x for x in items if x not in original]
    result = list(original)
    for item in items:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        idx = next((i for i, o in enumerate(result)
                    if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del result[idx]
        elif idx is None:
            result.append({k: v for k, v in item.items() if v is not None})
        else:
            result[idx] = strategic_merge_patch(result[idx], item, path)
    return result


def _pointer(path):
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer: {path!r}", kind=None)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise ApiError(422, "Invalid", f"jsonpatch: path not found: /{'/'.join(parts)}",
                           kind=None)
    return doc


def _json_patch_op(doc, op):
    kind, parts = op.get("op"), _pointer(op.get("path"))
    if kind in ("move", "copy"):
        value = copy.deepcopy(_walk(doc, _pointer(op.get("from"))))
        if kind == "move":
            doc = _json_patch_op(doc, {"op": "remove", "path": op.get("from")})
        return _json_patch_op(doc, {"op": "add", "path": op["path"], "value": value})
    if kind == "test":
        if _walk(doc, parts) != op.get("value"):
            raise ApiError(422, "Invalid", f"jsonpatch: test failed for path {op['path']}",
                           kind=None)
        return doc
    if kind not in ("add", "remove", "replace"):
        raise ApiError(422, "Invalid", f"jsonpatch: unexpected op: {kind!r}", kind=None)
    if not parts:
        return None if kind == "remove" else copy.deepcopy(op.get("value"))
    parent, last = _walk(doc, parts[:-1]), parts[-1]
    if isinstance(parent, dict):
        if kind != "add" and last not in parent:
            raise ApiError(422, "Invalid", f"jsonpatch {kind}: missing key {last}", kind=None)
        if kind == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op.get("value"))
    elif isinstance(parent, list):
        idx = len(parent) if last == "-" and kind == "add" else (
            int(last) if last.isdigit() else -1)
        limit = len(parent) if kind == "add" else len(parent) - 1
        if idx < 0 or idx > limit:
            raise ApiError(422, "Invalid", f"jsonpatch {kind}: index out of range: {last}",
                           kind=None)
        if kind == "add":
            parent.insert(idx, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            del parent[idx]
        else:
            parent[idx] = copy.deepcopy(op.get("value"))
    else:
        raise ApiError(422, "Invalid", f"jsonpatch: cannot {kind} inside a scalar", kind=None)
    return doc


def json_patch(doc, ops):
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        doc = _json_patch_op(doc, op)
    return doc


PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}


def apply_patch(kind, original, body):
    try:
        patch = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise bad_request(f"error decoding patch: {e}")
    if kind == "json":
        return json_patch(original, patch)
    if not isinstance(patch, dict):
        raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
    if kind == "merge":
        return merge_patch(original, patch)
    return strategic_merge_patch(original, patch)


# --------------------------------------------------------------------------
# Selectors.

def _split_terms(text):
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def parse_label_selector(text):
    """A predicate over a labels dict for =, ==, !=, in, notin, key, !key."""
    reqs = []
    for term in _split_terms(text):
        m = re.match(r"^([\w./-]+)\s+(in|notin)\s+\((.*)\)$", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            reqs.append((m.group(1), m.group(2), values))
            continue
        m = re.match(r"^([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)$", term)
        if m:
            op = {"==": "in", "=": "in", "!=": "notin"}[m.group(2)]
            reqs.append((m.group(1), op, {m.group(3)}))
            continue
        m = re.match(r"^(!?)([\w./-]+)$", term)
        if not m:
            raise bad_request(f"unable to parse requirement: {term!r}")
        reqs.append((m.group(2), "absent" if m.group(1) else "present", None))

    def match(labels):
        for key, op, values in reqs:
            have = key in labels
            if op == "in" and not (have and labels[key] in values):
                return False
            if op == "notin" and have and labels[key] in values:
                return False
            if (op == "present") != have and op in ("present", "absent"):
                return False
        return True
    return match


def parse_field_selector(text):
    reqs = []
    for term in _split_terms(text):
        m = re.match(r"^([\w.]+)\s*(==|!=|=)\s*(.*)$", term)
        if not m:
            raise bad_request(f"invalid selector: {term!r}")
        field, op, value = m.groups()
        if field not in ("metadata.name", "spec.unschedulable"):
            raise bad_request(f'field label not supported: {field}')
        reqs.append((field, op != "!=", value))

    def value_of(obj, field):
        if field == "metadata.name":
            return obj["metadata"].get("name", "")
        return "true" if (obj.get("spec") or {}).get("unschedulable") else "false"

    def match(obj):
        return all((value_of(obj, f) == v) == eq for f, eq, v in reqs)
    return match


def make_filter(query):
    """A predicate over Node objects from labelSelector/fieldSelector, or None."""
    label = parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else None
    field = parse_field_selector(query["fieldSelector"]) if query.get("fieldSelector") else None
    if not label and not field:
        return None

    def match(obj):
        if label and not label(obj["metadata"].get("labels") or {}):
            return False
        return not field or field(obj)
    return match


# --------------------------------------------------------------------------
# The store.

class Entry:
    """One stored version of a Node. The dict is never mutated once stored,
    so its JSON is cached: lists and watches just concatenate bytes."""
    __slots__ = ("obj", "_full", "_meta")

    def __init__(self, obj):
        self.obj, self._full, self._meta = obj, None, None

    def encoded(self, view=None):
        """JSON bytes: the full Node (view None) or PartialObjectMetadata of the
        given meta.k8s.io version."""
        if view is None:
            if self._full is None:
                self._full = dumps(self.obj)
            return self._full
        if view == "v1":
            if self._meta is None:
                self._meta = partial_metadata(self.obj["metadata"], view)
            return self._meta
        return partial_metadata(self.obj["metadata"], view)


def partial_metadata(metadata, version):
    return dumps({"kind": "PartialObjectMetadata", "apiVersion": f"{META_GROUP}/{version}",
                  "metadata": metadata})


class Event:
    __slots__ = ("type", "rv", "entry", "prev")

    def __init__(self, etype, rv, entry, prev):
        self.type, self.rv, self.entry, self.prev = etype, rv, entry, prev


class Store:
    """Nodes by name plus the event history watches replay from.

    Every write increments the global resourceVersion and appends exactly one
    event, so history holds consecutive RVs: all events with rv > floor."""

    def __init__(self, history_cap):
        self.cond = threading.Condition()
        self.rv = 0
        self.objects = {}
        self.history = collections.deque()
        self.history_cap = history_cap
        self.floor = 0
        self.watch_generation = 0      # bumped to end every open watch
        self.close_mode = "clean"
        self.garbage_generation = 0    # bumped to inject a garbage line into open watches
        self.stopping = False
        self.writes = 0                # bumped by every change a state file must keep

    def _commit(self, etype, obj, prev):
        self.writes += 1
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        entry = Entry(obj)
        name = obj["metadata"]["name"]
        if etype == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = entry
        self.history.append(Event(etype, self.rv, entry, prev))
        while len(self.history) > self.history_cap:
            self.floor = self.history.popleft().rv
        self.cond.notify_all()
        return entry

    def snapshot(self):
        """(rv, entries sorted by name), like an etcd range read."""
        with self.cond:
            return self.rv, [self.objects[n] for n in sorted(self.objects)]

    def snapshot_at(self, rv):
        """(rv, entries sorted by name) as they were at resourceVersion rv, rebuilt from the
        current objects and the history (an etcd range read at a revision). None when rv is
        older than the history (compacted)."""
        with self.cond:
            if rv >= self.rv:
                return self.rv, [self.objects[n] for n in sorted(self.objects)]
            if rv < self.floor:
                return None
            objects = dict(self.objects)
            for event in reversed(self.history):
                if event.rv <= rv:
                    break
                name = event.entry.obj["metadata"]["name"]
                if event.type == "ADDED":
                    objects.pop(name, None)
                else:
                    objects[name] = event.prev
        return rv, [objects[n] for n in sorted(objects)]

    def get(self, name):
        with self.cond:
            entry = self.objects.get(name)
        if entry is None:
            raise not_found(name)
        return entry

    def create(self, obj, keep_identity=False):
        md = obj["metadata"]
        with self.cond:
            if md["name"] in self.objects:
                raise already_exists(md["name"])
            if not keep_identity or not md.get("uid"):
                md["uid"] = str(uuid.uuid4())
            if not keep_identity or not md.get("creationTimestamp"):
                md["creationTimestamp"] = now_rfc3339()
            return self._commit("ADDED", obj, None)

    def update(self, name, mutate):
        """Replace a Node with mutate(copy of it), atomically.

        The result's metadata.resourceVersion and uid, when set, are
        preconditions (409 when stale), as in kube-apiserver's GuaranteedUpdate.
        A result equal to the stored object is not written: no new RV, no event.
        Returns (entry, changed)."""
        with self.cond:
            old = self.objects.get(name)
            if old is None:
                raise not_found(name)
            new = mutate(json.loads(old.encoded()))
            md, old_md = new["metadata"], old.obj["metadata"]
            if md.get("uid") and md["uid"] != old_md["uid"]:
                raise ApiError(409, "Conflict",
                               f"Precondition failed: UID in precondition: {md['uid']}, "
                               f"UID in object meta: {old_md['uid']}", name)
            if md.get("resourceVersion") and md["resourceVersion"] != old_md["resourceVersion"]:
                raise conflict(name)
            for key in ("uid", "creationTimestamp", "resourceVersion"):
                md[key] = old_md[key]
            if new == old.obj:
                return old, False
            return self._commit("MODIFIED", new, old), True

    def delete(self, name, preconditions):
        with self.cond:
            old = self.objects.get(name)
            if old is None:
                raise not_found(name)
            md = old.obj["metadata"]
            want_uid = preconditions.get("uid")
            if want_uid and want_uid != md["uid"]:
                raise ApiError(409, "Conflict",
                               f"Precondition failed: UID in precondition: {want_uid}, "
                               f"UID in object meta: {md['uid']}", name)
            want_rv = preconditions.get("resourceVersion")
            if want_rv and want_rv != md["resourceVersion"]:
                raise conflict(name)
            gone = json.loads(old.encoded())
            self._commit("DELETED", gone, old)
            return md["uid"]

    def events_after(self, rv):
        """Events with rv > the given one; caller holds the lock and checked floor."""
        if not self.history or rv >= self.rv:
            return []
        start = max(0, rv + 1 - self.history[0].rv)
        return list(itertools.islice(self.history, start, None))

    def compact(self):
        with self.cond:
            self.history.clear()
            self.floor = self.rv
            self.writes += 1
            self.cond.notify_all()
            return self.rv

    def close_watches(self, mode):
        with self.cond:
            self.watch_generation += 1
            self.close_mode = mode
            self.cond.notify_all()

    def inject_garbage(self):
        with self.cond:
            self.garbage_generation += 1
            self.cond.notify_all()

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


class StateFile:
    """--state-file: the Nodes and the resourceVersion counter kept in a file, so that a
    server stopped and started again with the same file serves the same objects and RVs,
    as kube-apiserver does with etcd's state. Like kube-apiserver, whose watch cache starts
    afresh at the current RV, a restarted server has no watch history: a watch from an
    RV before the restart gets 410 Expired and the client relists. keep_history
    (--state-keep-history) restores the history too, so such a watch replays (kinder).

    Loaded at start; written (tmp + rename) shortly after every change and on SIGTERM/SIGINT.
    A SIGKILL loses at most the last SAVE_DELAY seconds of writes."""

    SAVE_DELAY = 0.05
    VERSION = 1

    def __init__(self, store, path, keep_history=False):
        self.store, self.path, self.keep_history = store, path, keep_history
        self.saved_writes = None
        self.thread = None

    def load(self):
        """Fills the (empty) store from the file; False when there is no file yet."""
        if not os.path.exists(self.path):
            return False
        with open(self.path) as f:
            data = json.load(f)
        if data.get("version") != self.VERSION:
            raise SystemExit(f"--state-file {self.path}: version {data.get('version')!r}, "
                             f"want {self.VERSION}: remove the file to start empty")
        store = self.store
        with store.cond:
            store.rv, store.floor = int(data["rv"]), int(data["floor"])
            store.objects = {o["metadata"]["name"]: Entry(o) for o in data["objects"]}
            store.history.clear()
            if not self.keep_history:
                store.floor = store.rv      # a fresh watch cache: nothing before now
            for e in data["history"] if self.keep_history else ():
                prev = Entry(e["prev"]) if e.get("prev") is not None else None
                store.history.append(Event(e["type"], int(e["rv"]), Entry(e["object"]), prev))
            while len(store.history) > store.history_cap:
                store.floor = store.history.popleft().rv
            self.saved_writes = store.writes
        return True

    def save(self):
        """Writes the current state (entries are immutable: serialised outside the lock)."""
        store = self.store
        with store.cond:
            writes = store.writes
            rv, floor = store.rv, store.floor
            objects = [store.objects[n].obj for n in sorted(store.objects)]
            history = list(store.history)
        data = {"version": self.VERSION, "rv": rv, "floor": floor, "objects": objects,
                "history": [{"type": e.type, "rv": e.rv, "object": e.entry.obj,
                             "prev": e.prev.obj if e.prev is not None else None}
                            for e in history]}
        write_atomic(self.path, dumps(data), 0o600)
        self.saved_writes = writes

    def start(self):
        self.thread = threading.Thread(target=self._run, name="state-file", daemon=True)
        self.thread.start()

    def _run(self):
        store = self.store
        while True:
            with store.cond:
                while not store.stopping and store.writes == self.saved_writes:
                    store.cond.wait(1.0)
                if store.stopping:
                    return
            time.sleep(self.SAVE_DELAY)     # coalesce a burst of writes into one save
            try:
                self.save()
            except OSError as e:
                log.error("cannot write --state-file %s: %s", self.path, e)

    def stop(self):
        """After store.stop(): waits for the saver, then writes the final state."""
        if self.thread:
            self.thread.join(timeout=5)
        self.save()


def validate_node(obj, name_from_url=None, old=None, prepare=None):
    """The checks the real server makes while decoding (400) and validating (422) a Node.
    For an update, `old` is the stored Node and `prepare(new)` the strategy's
    PrepareForUpdate (which runs before validation)."""
    if not isinstance(obj, dict):
        raise bad_request("json: cannot unmarshal into Go value of type core.Node")
    kind = obj.get("kind")
    if kind not in (None, "", "Node"):
        raise bad_request(f"the kind of the object ({kind}) does not match the kind of the "
                          "resource (Node)")
    md = obj.get("metadata")
    if md is None:
        md = obj["metadata"] = {}
    if not isinstance(md, dict):
        raise bad_request("json: cannot unmarshal into Go struct field Node.metadata of type "
                          "v1.ObjectMeta")
    for field in ("spec", "status"):
        if field in obj and not isinstance(obj[field], (dict, type(None))):
            raise bad_request(f"json: cannot unmarshal into Go struct field Node.{field}")
    for field in ("labels", "annotations"):
        value = md.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise bad_request(f"json: cannot unmarshal into Go struct field "
                              f"ObjectMeta.metadata.{field} of type map[string]string")
    check_list_fields(obj)
    name = md.get("name") or ""
    if name_from_url is not None and name != name_from_url:
        raise bad_request(f"the name of the object ({name}) does not match the name on the "
                          f"URL ({name_from_url})")
    if prepare is not None:
        obj = prepare(obj)
        md = obj["metadata"]
    normalize_pod_cidrs(obj)
    errors = metadata_errors(md, name) + pod_cidr_errors(obj)
    if old is not None:
        errors += update_errors(old, obj)
    if errors:
        raise invalid_errors(name, errors)
    rest = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    return {"kind": "Node", "apiVersion": "v1", **rest}


# apimachinery/pkg/util/validation, word for word: the messages clients see in a 422.
QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QNAME_RE = re.compile("^" + QNAME_FMT + "$")
QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
             "with an alphanumeric character")
DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric "
                         "character")
LABEL_VALUE_FMT = "(" + QNAME_FMT + ")?"
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character")


def regex_error(msg, fmt, *examples):
    """validation.RegexError, with its double spaces between examples."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    msg += " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            msg += " or "
        msg += f"'{example}', "
    return msg + f"regex used for validation is '{fmt}')"


def dns1123_subdomain_errors(value):
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not NAME_RE.match(value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name_errors(value):
    """validation.IsQualifiedName: [prefix/]name, prefix a DNS subdomain, name <= 63."""
    errs = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in dns1123_subdomain_errors(prefix)]
    else:
        return ["a qualified name " + regex_error(QNAME_MSG, QNAME_FMT, "MyName", "my.name",
                                                  "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not QNAME_RE.match(name):
        errs.append("name part " + regex_error(QNAME_MSG, QNAME_FMT, "MyName", "my.name",
                                               "123-abc"))
    return errs


def label_value_errors(value):
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not re.match("^" + LABEL_VALUE_FMT + "$", value):
        errs.append(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def metadata_errors(md, name):
    """ValidateObjectMeta's checks of the name, labels and annotations, in its order."""
    errors = []
    if not name:
        errors.append(FieldError("FieldValueRequired", "metadata.name",
                                 "Required value: name or generateName is required"))
    else:
        for msg in dns1123_subdomain_errors(name):
            errors.append(field_invalid("metadata.name", name, msg))
    for key, value in sorted((md.get("labels") or {}).items()):
        for msg in qualified_name_errors(key):
            errors.append(field_invalid("metadata.labels", key, msg))
        for msg in label_value_errors(value):
            errors.append(field_invalid("metadata.labels", value, msg))
    annotations = md.get("annotations") or {}
    for key in sorted(annotations):
        # Annotation keys are qualified names compared in lower case (ValidateAnnotations).
        for msg in qualified_name_errors(key.lower()):
            errors.append(field_invalid("metadata.annotations", key, msg))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        errors.append(FieldError("FieldValueTooLong", "metadata.annotations",
                                 f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes"))
    return errors


def normalize_pod_cidrs(obj):
    """podCIDR and podCIDRs as kube-apiserver 1.20 stores them: a lone podCIDR becomes
    podCIDRs, a podCIDR that differs from podCIDRs[0] replaces it (measured: patching only
    podCIDR of a node that has one is a podCIDRs change, 422), and podCIDR is always
    written back as podCIDRs[0]."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    cidrs = list(spec.get("podCIDRs") or [])
    single = spec.get("podCIDR")
    if single and (not cidrs or cidrs[0] != single):
        cidrs = [single] + cidrs[1:]
    if cidrs:
        spec["podCIDRs"], spec["podCIDR"] = cidrs, cidrs[0]
    else:
        spec.pop("podCIDRs", None)
        spec.pop("podCIDR", None)


def go_string_slice(values):
    """Go's %#v of a []string, as a 422 shows an invalid podCIDRs."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def valid_cidr(text):
    """net.ParseCIDR: an address, a slash and a prefix length; host bits may be set."""
    addr, slash, bits = text.partition("/")
    if not slash or not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        return False
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return int(bits) <= ip.max_prefixlen


def pod_cidr_errors(obj):
    """ValidateNode's podCIDRs checks: each a CIDR, at most one per IP family."""
    cidrs = (obj.get("spec") or {}).get("podCIDRs") or []
    shown = go_string_slice(cidrs)
    errors = [FieldError("FieldValueInvalid", f"spec.podCIDRs[{i}]",
                         f"Invalid value: {shown}: must be valid CIDR")
              for i, c in enumerate(cidrs) if not valid_cidr(c)]
    if len(cidrs) > 1 and not errors:
        families = {ipaddress.ip_network(c, strict=False).version for c in cidrs}
        if len(cidrs) > 2 or len(families) != 2:
            errors.append(FieldError("FieldValueInvalid", "spec.podCIDRs",
                                     f"Invalid value: {shown}: may specify no more than one "
                                     "CIDR for each IP family"))
    return errors


# Spec fields a node update may change (ValidateNodeUpdate); podCIDR(s) and providerID
# only from unset to a value.
MUTABLE_SPEC = ("unschedulable", "taints", "configSource")
SET_ONCE_SPEC = (("podCIDRs", "podCIDR"), ("providerID",))


def protected_spec(spec, old_spec):
    """The spec fields a node update may not change, empty values dropped."""
    free = set(MUTABLE_SPEC)
    for keys in SET_ONCE_SPEC:
        if not old_spec.get(keys[0]):
            free.update(keys)
    return {k: v for k, v in spec.items() if k not in free and v not in (None, "", [], {}, False)}


def update_errors(old, new):
    """ValidateNodeUpdate: podCIDRs and providerID may only go from unset to set, and any
    other spec change but unschedulable, taints and configSource is refused as a whole
    (field "[]", as measured on kube-apiserver 1.20.2)."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    errors = []
    if old_spec.get("podCIDRs") and old_spec.get("podCIDRs") != new_spec.get("podCIDRs"):
        errors.append(field_forbidden(
            "spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
    if old_spec.get("providerID") and old_spec["providerID"] != new_spec.get("providerID"):
        errors.append(field_forbidden(
            "spec.providerID", 'node updates may not change providerID except from "" to valid'))
    if protected_spec(old_spec, old_spec) != protected_spec(new_spec, old_spec):
        errors.append(field_forbidden(
            "[]", "node updates may only change labels, taints, or capacity (or configSource, "
            "if the DynamicKubeletConfig feature gate is enabled)"))
    return errors


# Node fields weft reads, with the JSON type of their items: a value of the
# wrong shape fails to decode in the real server.
LIST_FIELDS = {("spec", "podCIDRs"): str, ("spec", "taints"): dict,
               ("status", "conditions"): dict, ("status", "addresses"): dict}


def check_list_fields(obj):
    for (part, field), item_type in LIST_FIELDS.items():
        value = (obj.get(part) or {}).get(field)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(x, item_type) for x in value):
            raise bad_request(f"json: cannot unmarshal into Go struct field "
                              f"Node{'Spec' if part == 'spec' else 'Status'}.{part}.{field}")
    for part, field in (("spec", "podCIDR"),):
        value = (obj.get(part) or {}).get(field)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"json: cannot unmarshal into Go struct field NodeSpec.spec.{field} "
                              "of type string")


def normalize_new_node(obj):
    """Defaults for a created Node: generateName, cleared server fields."""
    md = obj.setdefault("metadata", {}) if isinstance(obj, dict) else None
    if isinstance(md, dict) and not md.get("name") and md.get("generateName"):
        md["name"] = md["generateName"] + secrets.token_hex(3)[:5]
    return obj


# --------------------------------------------------------------------------
# Authentication and authorisation.

class User:
    def __init__(self, name, allow):
        self.name = name
        # allow: "*" or {resource: [verbs]} where resource/verb may be "*"
        self.allow = allow

    def can(self, verb, resource):
        if self.allow == "*":
            return True
        for res in (resource, "*"):
            verbs = self.allow.get(res) or []
            if "*" in verbs or verb in verbs:
                return True
        return False

    @property
    def is_admin(self):
        return self.allow == "*"


class Auth:
    def __init__(self, entries):
        self.by_token, self.by_name = {}, {}
        for e in entries:
            user = User(e["name"], e.get("allow", {}))
            self.by_name.setdefault(user.name, user)
            if e.get("token"):
                self.by_token[e["token"]] = user

    def authenticate(self, headers, peer_cert):
        """The user for a request, or None. Client certificates first, then
        bearer tokens, like the real union authenticator."""
        if peer_cert:
            cn = next((v for rdn in peer_cert.get("subject", ()) for k, v in rdn
                       if k == "commonName"), None)
            if cn:
                return self.by_name.get(cn) or User(cn, {})
        value = headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self.by_token.get(token.strip())
        return None


def parse_rules(text):
    """'*' or 'nodes=get,list,watch;nodes/status=patch'."""
    if text.strip() == "*":
        return "*"
    rules = {}
    for part in text.split(";"):
        if part.strip():
            res, _, verbs = part.partition("=")
            rules[res.strip()] = [v.strip() for v in verbs.split(",") if v.strip()]
    return rules


def default_users(client_cn):
    return [
        {"name": "kubernetes-admin", "token": secrets.token_hex(16), "allow": "*"},
        {"name": "system:serviceaccount:kube-system:weft", "token": secrets.token_hex(16),
         "allow": WEFT_RULES},
        {"name": "system:serviceaccount:kube-system:reader", "token": secrets.token_hex(16),
         "allow": READER_RULES},
        {"name": "system:serviceaccount:default:nobody", "token": secrets.token_hex(16),
         "allow": {}},
        {"name": client_cn, "allow": WEFT_RULES},
    ]


def load_users(args, cert_dir):
    """User entries from --tokens (a file, or 'default': generated once and kept
    in the cert dir so restarts keep the same tokens), --token and --admin-token."""
    if args.tokens in (None, "", "default"):
        path = os.path.join(cert_dir, "tokens.json")
        with locked(cert_dir):
            if not os.path.exists(path):
                write_atomic(path, json.dumps({"users": default_users(args.client_cn)},
                                              indent=2).encode(), mode=0o600)
    else:
        path = args.tokens
    with open(path) as f:
        data = json.load(f)
    entries = data["users"] if isinstance(data, dict) else data
    entries = [dict(e) for e in entries]
    for token, name, rules in args.token or []:
        entries.append({"name": name, "token": token, "allow": parse_rules(rules)})
    if args.admin_token:
        entries.insert(0, {"name": "kubernetes-admin", "token": args.admin_token, "allow": "*"})
    if not any(e.get("allow") == "*" and e.get("token") for e in entries):
        entries.insert(0, {"name": "kubernetes-admin", "token": secrets.token_hex(16),
                           "allow": "*"})
    return entries, path


# --------------------------------------------------------------------------
# Faults and counters.

class Faults:
    """Injected misbehaviour, set over /_weft/ and consumed by requests."""

    def __init__(self, bookmark_interval):
        self.lock = threading.Lock()
        self.default_bookmark_interval = bookmark_interval
        self.reset()

    def reset(self):
        with self.lock:
            self.fail_rules = []
            self.corrupt_rules = []
            self.latency_ms = 0
            self.blackhole = False
            self.bookmark_interval = self.default_bookmark_interval

    def add_rule(self, kind, params):
        rule = {
            "count": int(params.get("count", 1)),
            "code": int(params.get("code", 500)),
            "retry_after": params.get("retry_after"),
            "mode": params.get("mode", "truncated"),
            "bytes": int(params.get("bytes", 10 * 1024 * 1024)),
            "verb": (params.get("verb") or "").lower() or None,
            "path": params.get("path") or None,
        }
        if rule["path"]:
            re.compile(rule["path"])
        if kind == "corrupt" and rule["mode"] not in ("truncated", "cut", "huge", "garbage"):
            raise bad_request(f"unknown corrupt mode {rule['mode']!r}: "
                              "want truncated, cut, huge or garbage")
        with self.lock:
            getattr(self, kind + "_rules").append(rule)
        return rule

    def take(self, kind, method, verb, target):
        """The first matching rule of the kind, consuming one of its count."""
        with self.lock:
            rules = getattr(self, kind + "_rules")
            for rule in rules:
                if rule["verb"] and rule["verb"] not in (method.lower(), verb):
                    continue
                if rule["path"] and not re.search(rule["path"], target):
                    continue
                if rule["count"] > 0:
                    rule["count"] -= 1
                    if rule["count"] == 0:
                        rules.remove(rule)
                return dict(rule)
        return None

    def describe(self):
        with self.lock:
            return {"fail": list(self.fail_rules), "corrupt": list(self.corrupt_rules),
                    "latency_ms": self.latency_ms, "blackhole": self.blackhole,
                    "bookmark_interval": self.bookmark_interval}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.active_watches = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.total = 0
            self.faults_injected = 0
            self.by_verb = collections.Counter()
            self.by_path = collections.Counter()
            self.by_resource = collections.Counter()
            self.by_code = collections.Counter()

    def count(self, method, path, verb, resource):
        with self.lock:
            self.total += 1
            self.by_path[f"{method} {path}"] += 1
            if verb:
                self.by_verb[verb] += 1
                self.by_resource[f"{verb} {resource}"] += 1

    def count_code(self, code):
        with self.lock:
            self.by_code[str(code)] += 1

    def watch_delta(self, n):
        with self.lock:
            self.active_watches += n

    def fault(self):
        with self.lock:
            self.faults_injected += 1

    def snapshot(self):
        with self.lock:
            verbs = dict(self.by_verb)
            snap = {"total": self.total, "by_verb": verbs, "by_path": dict(self.by_path),
                    "by_resource": dict(self.by_resource), "by_code": dict(self.by_code),
                    "active_watches": self.active_watches,
                    "faults_injected": self.faults_injected}
        for verb, key in (("list", "lists"), ("watch", "watches"), ("get", "gets"),
                          ("create", "creates"), ("update", "updates"), ("patch", "patches"),
                          ("delete", "deletes")):
            snap[key] = verbs.get(verb, 0)
        return snap


class Api:
    """Shared state of one server: store, users, faults, counters."""

    def __init__(self, store, auth, faults, watch_timeout, startup_forbidden=0.0):
        self.store, self.auth, self.faults = store, auth, faults
        self.stats = Stats()
        self.watch_timeout = watch_timeout
        self.forbidden_until = time.monotonic() + startup_forbidden

    def rbac_starting(self, user):
        """True in the --startup-forbidden window: RBAC's caches are still filling, so
        every user but the admin (system:masters bypasses RBAC) is refused."""
        return not user.is_admin and time.monotonic() < self.forbidden_until


# --------------------------------------------------------------------------
# Requests.

class Route:
    __slots__ = ("verb", "resource", "name", "action", "namespace")

    def __init__(self, verb, resource, name, action, namespace=None):
        self.verb, self.resource, self.name, self.action = verb, resource, name, action
        self.namespace = namespace


def is_true(value):
    return str(value).lower() in ("1", "true", "t")


def route(method, path, query):
    """Map a request to (verb, resource, name, action) as the API server's
    RequestInfo does. Raises 404/405 for anything else."""
    parts = [p for p in path.split("/") if p]
    watch = is_true(query.get("watch", ""))
    if parts[:3] == ["api", "v1", "watch"] and len(parts) in (4, 5) and parts[3] == "nodes":
        parts, watch = ["api", "v1"] + parts[3:], True      # the legacy /watch/ prefix
    if parts in (["api"], ["api", "v1"], ["version"], ["healthz"], ["livez"], ["readyz"]):
        if method != "GET":
            raise method_not_allowed()
        return Route("get", "/".join(parts), None, "discovery")
    if parts[:3] != ["api", "v1", "nodes"] or len(parts) > 5:
        raise ApiError(404, "NotFound", "the server could not find the requested resource",
                       kind=None)
    if len(parts) == 5 and parts[4] != "status":
        raise ApiError(404, "NotFound", "the server could not find the requested resource",
                       kind=None)
    name = urllib.parse.unquote(parts[3]) if len(parts) >= 4 else None
    resource = "nodes/status" if len(parts) == 5 else "nodes"
    table = {
        ("GET", False, False): ("list", "list"), ("GET", False, True): ("watch", "watch"),
        ("POST", False, False): ("create", "create"),
        ("GET", True, False): ("get", "get"), ("GET", True, True): ("watch", "watch"),
        ("PUT", True, False): ("update", "update"), ("PATCH", True, False): ("patch", "patch"),
        ("DELETE", True, False): ("delete", "delete"),
    }
    found = table.get((method, name is not None, watch))
    if not found or (resource == "nodes/status" and found[0] not in ("get", "update", "patch")):
        raise method_not_allowed()
    return Route(found[0], resource, name, found[1])


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", kind=None)


def forbidden(user, r):
    """RBAC's 403, worded as forbiddenMessage + NewForbidden write it."""
    resource = r.resource.split("/")[0]
    subject = f'{resource} "{r.name}"' if r.name else resource
    scope = (f'in the namespace "{r.namespace}"' if r.namespace
             else "at the cluster scope")
    return ApiError(403, "Forbidden",
                    f'{subject} is forbidden: User "{user.name}" cannot {r.verb} resource '
                    f'"{r.resource}" in API group "" {scope}', r.name, kind=resource)


def resource_request(method, path, query):
    """RequestInfo of a core/v1 resource path this double does not serve (e.g.
    /api/v1/namespaces/kube-system/secrets), for authorization; None for other paths."""
    parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
    if parts[:2] != ["api", "v1"] or len(parts) < 3:
        return None
    parts = parts[2:]
    watch = is_true(query.get("watch", ""))
    if parts[0] == "watch":
        parts, watch = parts[1:], True
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces":
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        return None
    resource = parts[0] + ("/" + parts[2] if len(parts) == 3 else "")
    name = parts[1] if len(parts) >= 2 else None
    verbs = {"GET": "get" if name else "list", "POST": "create", "PUT": "update",
             "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}
    verb = "watch" if watch and method == "GET" else verbs.get(method, method.lower())
    return Route(verb, resource, name, None, namespace)


def negotiate(accept, want_list):
    """The response view from an Accept header: None for full objects, or the
    meta.k8s.io version for PartialObjectMetadata. The first supported media
    type wins; 406 when none is."""
    if not accept or not accept.strip():
        return None
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype = fields[0].lower()
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        params = {k.strip().lower(): v.strip() for k, v in params.items()}
        if mtype not in ("application/json", "application/*", "*/*"):
            continue
        target = params.get("as")
        if target is None:
            return None
        if params.get("g") != META_GROUP or params.get("v") not in ("v1", "v1beta1"):
            continue
        if target == ("PartialObjectMetadataList" if want_list == "list" else
                      "PartialObjectMetadata"):
            return params["v"]
        if want_list == "watch" and target == "PartialObjectMetadataList":
            return params["v"]
    raise ApiError(406, "NotAcceptable",
                   "only the following media types are accepted: application/json, "
                   "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, "
                   "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                   kind=None)


def discovery(what):
    if what == "api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if what == "api/v1":
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "nodes", "singularName": "", "namespaced": False, "kind": "Node",
             "verbs": verbs, "shortNames": ["no"]},
            {"name": "nodes/status", "singularName": "", "namespaced": False, "kind": "Node",
             "verbs": ["get", "patch", "update"]}]}
    if what == "version":
        return {"major": "1", "minor": "20", "gitVersion": "v1.20.0-weft-kubeapi",
                "platform": "linux/amd64"}
    return None


# --------------------------------------------------------------------------
# Lists and pages: limit/continue as the etcd3 storage serves them.

CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue token in this response to retrieve the remainder of the "
                    "results. Continuing with the provided token results in an inconsistent "
                    "list - objects that were created, modified, or deleted between the time "
                    "the first chunk was returned and now may show up in the list.")


class Page:
    __slots__ = ("rv", "entries", "cont", "remaining")

    def __init__(self, rv, entries, cont=None, remaining=None):
        self.rv, self.entries, self.cont, self.remaining = rv, entries, cont, remaining


def encode_continue(start, rv):
    """The storage's continue token: unpadded URL-safe base64 of
    {"v":"meta.k8s.io/v1","rv":RV,"start":"KEY"}, KEY relative to /registry/minions/."""
    data = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start},
                      separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_continue(token):
    """(start key, rv) from a token; 400 with the storage's wording when it is not one."""
    def bad(why):
        return bad_request(f"invalid continue token: continue key is not valid: {why}")
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if not re.fullmatch(r"[A-Za-z0-9_-]*", token) or len(token) % 4 == 1:
            raise ValueError("illegal base64 data")
    except (ValueError, TypeError):
        raise bad("illegal base64 data at input byte 0")
    try:
        c = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise bad("invalid character looking for beginning of value")
    if not isinstance(c, dict) or c.get("v") != "meta.k8s.io/v1":
        raise bad("server does not recognize this encoded key")
    rv, start = c.get("rv"), c.get("start")
    if not isinstance(rv, int) or rv == 0:
        raise bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    if not isinstance(start, str) or not start:
        raise bad("encoded start key empty (version meta.k8s.io/v1)")
    if "/" in start.rstrip("\x00") or start.startswith("."):
        raise bad(start)
    return start, rv


def list_page(store, query, match):
    """One page of a list. resourceVersion=0 is served from the watch cache, which ignores
    limit (everything, no continue); otherwise limit pages and a continue token resumes at
    the first page's snapshot (410 Expired once that is compacted)."""
    rv_param, token = query.get("resourceVersion", ""), query.get("continue", "")
    try:
        limit = int(query.get("limit") or 0)
    except ValueError:
        raise bad_request(f"invalid limit: {query.get('limit')!r}")
    if token:
        if rv_param not in ("",):
            raise bad_request("specifying resource version is not allowed when using continue")
        start, rv = decode_continue(token)
        snap = store.snapshot() if rv == -1 else store.snapshot_at(rv)
        if snap is None:
            err = ApiError(410, "Expired", CONTINUE_EXPIRED, kind=None)
            err.list_continue = encode_continue(start, -1)
            raise err
    else:
        start, snap = "", store.snapshot()
        if rv_param == "0":
            limit = 0
    rv, entries = snap
    picked, more, last = [], False, None
    for entry in entries:
        name = entry.obj["metadata"]["name"]
        if name < start:
            continue
        if limit > 0 and len(picked) >= limit:
            more = True
            break
        if match is None or match(entry.obj):
            picked.append(entry)
            last = name
    if not more:
        return Page(rv, picked)
    remaining = None
    if match is None:
        remaining = sum(1 for e in entries if e.obj["metadata"]["name"] > last)
    return Page(rv, picked, encode_continue(last + "\x00", rv), remaining)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "weft-kubeapi"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def send_error(self, code, message=None, explain=None):
        """For requests that are not even HTTP: answer as Go's server does."""
        self.close_connection = True
        body = f"{code} {self.responses.get(code, ('Error',))[0]}".encode()
        self.request_version = "HTTP/1.1"
        self.send_response(code, message)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- plumbing ----------------------------------------------------------

    @property
    def api(self):
        return self.server.api

    def dispatch(self, method):
        self.responded = False
        self.corrupt = None
        url = urllib.parse.urlsplit(self.path)
        self.is_control = url.path.startswith("/_weft/")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query,
                                                             keep_blank_values=True).items()}
        try:
            body = self.read_body()
            if self.is_control:
                return self.control(method, url.path, query, body)
            self.serve_api(method, url.path, query, body)
        except ApiError as e:
            if self.responded:
                self.close_connection = True
            else:
                self.send_status(e)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as e:
            log.debug("connection ended: %s", e)
            self.close_connection = True
        except Exception:  # a bug here must not kill the server or hang the client
            log.exception("internal error serving %s %s", method, self.path)
            if self.responded:
                self.close_connection = True
            else:
                self.send_status(ApiError(500, "InternalError",
                                          "Internal error occurred: see the test double's log",
                                          kind=None))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked_body()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            raise bad_request(f"invalid Content-Length: {length!r}")
        if n > MAX_REQUEST_BODY:
            self.close_connection = True
            self.discard(n)
            raise ApiError(413, "RequestEntityTooLarge",
                           f"Request entity too large: limit is {MAX_REQUEST_BODY}", kind=None)
        return self.rfile.read(n)

    def discard(self, n):
        """Read and drop a too-large body (up to a bound) so that the client,
        still sending, gets to read the 413 instead of a reset."""
        n = min(n, 16 * MAX_REQUEST_BODY)
        while n > 0:
            got = self.rfile.read(min(n, 65536))
            if not got:
                return
            n -= len(got)

    def read_chunked_body(self):
        data = b""
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise bad_request("malformed chunked request body")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return data
            if len(data) + size > MAX_REQUEST_BODY:
                self.close_connection = True
                raise ApiError(413, "RequestEntityTooLarge",
                               f"Request entity too large: limit is {MAX_REQUEST_BODY}",
                               kind=None)
            data += self.rfile.read(size)
            self.rfile.readline(16)

    def start_response(self, code, headers):
        self.responded = True
        if not self.is_control:
            self.api.stats.count_code(code)
        self.send_response(code)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()

    def send_bytes(self, code, body, content_type="application/json", headers=()):
        """A complete response; applies an injected corruption, if any."""
        body, cut = self.corrupt_body(body)
        hdrs = [("Content-Type", content_type), ("Cache-Control", "no-cache, private"),
                ("Content-Length", str(len(body) if cut is None else cut))]
        self.start_response(code, hdrs + list(headers))
        if self.command != "HEAD":
            self.wfile.write(body)
        if cut is not None:
            self.abort_connection()

    def send_json(self, code, obj, headers=()):
        self.send_bytes(code, dumps(obj), headers=headers)

    def send_status(self, err):
        self.send_json(err.code, err.status(), headers=err.headers.items())

    def corrupt_body(self, body):
        """(body to send, declared length if the connection is to be cut)."""
        mode = self.corrupt and self.corrupt["mode"]
        if mode == "truncated":
            return body[:max(1, len(body) // 2)], None
        if mode == "cut":
            return body[:max(1, len(body) // 2)], len(body)
        if mode == "garbage":
            return GARBAGE_LINE, None
        if mode == "huge":
            pad = max(0, self.corrupt["bytes"] - len(body))
            if body.endswith(b"}"):
                return body[:-1] + b',"weftPadding":"' + b"x" * pad + b'"}', None
            return body + b" " * pad, None
        return body, None

    def abort_connection(self):
        """Drop the connection without a TLS close_notify: the client sees an
        unexpected EOF, as when a server or load balancer dies."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def write_chunk(self, data):
        if data:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    def write_batched(self, pieces, chunked):
        """Write many small byte strings in large writes."""
        batch, size = [], 0
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size >= WRITE_BATCH:
                data = b"".join(batch)
                self.write_chunk(data) if chunked else self.wfile.write(data)
                batch, size = [], 0
        if batch:
            data = b"".join(batch)
            self.write_chunk(data) if chunked else self.wfile.write(data)

    # -- the Kubernetes API --------------------------------------------------

    def serve_api(self, method, path, query, body):
        api = self.api
        try:
            r = route(method, path, query)
        except ApiError:
            api.stats.count(method, path, None, None)
            self.refuse_unserved(method, path, query)
            raise
        api.stats.count(method, path, r.verb, r.resource)
        if not self.apply_faults(method, r):
            return
        user = api.auth.authenticate(self.headers, self.connection.getpeercert())
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized", kind=None)
        if r.action == "discovery":
            return self.serve_discovery(r.resource)
        if not user.can(r.verb, r.resource) or api.rbac_starting(user):
            raise forbidden(user, r)
        getattr(self, "do_" + r.action)(r, query, body)

    def refuse_unserved(self, method, path, query):
        """A path this double does not serve: the real server authenticates and authorizes
        before it looks for the resource, so 401 and 403 come before 404."""
        user = self.api.auth.authenticate(self.headers, self.connection.getpeercert())
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized", kind=None)
        r = resource_request(method, path, query)
        if r is not None and (not user.can(r.verb, r.resource) or self.api.rbac_starting(user)):
            raise forbidden(user, r)

    def apply_faults(self, method, r):
        """Blackhole, latency, failures; remembers a corruption for the
        response. Returns False when the request has been dealt with."""
        api = self.api
        faults = api.faults
        if faults.blackhole:
            api.stats.fault()
            while faults.blackhole and not api.store.stopping:
                time.sleep(0.05)
            self.abort_connection()     # never answered
            return False
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        rule = faults.take("fail", method, r.verb, self.path)
        if rule:
            api.stats.fault()
            raise self.injected_failure(rule)
        self.corrupt = faults.take("corrupt", method, r.verb, self.path)
        if self.corrupt:
            api.stats.fault()
        return True

    @staticmethod
    def injected_failure(rule):
        code = rule["code"]
        if code == 429:
            retry = rule["retry_after"] if rule["retry_after"] is not None else 1
            return ApiError(429, "TooManyRequests",
                            "Too many requests, please try again later.", kind=None,
                            extra_details={"retryAfterSeconds": int(retry)},
                            headers={"Retry-After": str(retry)})
        reasons = {500: "InternalError", 502: "InternalError", 503: "ServiceUnavailable",
                   504: "Timeout", 409: "Conflict", 410: "Expired"}
        headers = {"Retry-After": str(rule["retry_after"])} if rule["retry_after"] else {}
        return ApiError(code, reasons.get(code, "InternalError"),
                        "Internal error occurred: injected fault (weft-kubeapi)", kind=None,
                        headers=headers)

    def serve_discovery(self, what):
        if what in ("healthz", "livez", "readyz"):
            return self.send_bytes(200, b"ok", content_type="text/plain; charset=utf-8")
        self.send_json(200, discovery(what))

    def do_list(self, r, query, body):
        view = negotiate(self.headers.get("Accept"), "list")
        match = make_filter(query)
        page = list_page(self.api.store, query, match)
        meta = b'"resourceVersion":"%d"' % page.rv
        if page.cont:
            meta += b',"continue":' + dumps(page.cont)
            if page.remaining is not None:
                meta += b',"remainingItemCount":%d' % page.remaining
        if view is None:
            head = b'{"kind":"NodeList","apiVersion":"v1","metadata":{%s},"items":[' % meta
        else:
            head = (b'{"kind":"PartialObjectMetadataList","apiVersion":"%s/%s",'
                    b'"metadata":{%s},"items":[' % (META_GROUP.encode(), view.encode(), meta))
        items = [e.encoded(view) for e in page.entries]
        pieces = [head]
        for i, item in enumerate(items):
            pieces.append(item if i == 0 else b"," + item)
        pieces.append(b"]}")
        if self.corrupt:
            return self.send_bytes(200, b"".join(pieces))
        length = sum(len(p) for p in pieces)
        self.start_response(200, [("Content-Type", "application/json"),
                                  ("Cache-Control", "no-cache, private"),
                                  ("Content-Length", str(length))])
        self.write_batched(pieces, chunked=False)

    def do_get(self, r, query, body):
        view = negotiate(self.headers.get("Accept"), "get")
        self.send_bytes(200, self.api.store.get(r.name).encoded(view))

    def parse_object(self, body):
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise bad_request(f"couldn't get version/kind; json parse error: {e}")

    def do_create(self, r, query, body):
        obj = validate_node(normalize_new_node(self.parse_object(body)))
        if obj["metadata"].get("resourceVersion"):
            raise ApiError(500, "InternalError", "Internal error occurred: resourceVersion "
                           "should not be set on objects to be created", kind=None)
        entry = self.api.store.create(obj)
        self.send_bytes(201, entry.encoded())

    def do_update(self, r, query, body):
        obj = self.parse_object(body)
        status = r.resource == "nodes/status"

        def mutate(old):
            return validate_node(copy.deepcopy(obj), name_from_url=r.name, old=old,
                                 prepare=lambda new: merge_subresource(old, new, status))
        entry, _ = self.api.store.update(r.name, mutate)
        self.send_bytes(200, entry.encoded())

    def do_patch(self, r, query, body):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        kind = PATCH_TYPES.get(ctype)
        if kind is None:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: {', '.join(PATCH_TYPES)}", kind=None)
        status = r.resource == "nodes/status"
        patch_body = body

        def mutate(old):
            return validate_node(apply_patch(kind, old, patch_body), name_from_url=r.name,
                                 old=old, prepare=lambda new: merge_subresource(old, new, status))
        entry, _ = self.api.store.update(r.name, mutate)
        self.send_bytes(200, entry.encoded())

    def do_delete(self, r, query, body):
        preconditions = {}
        if body.strip():
            opts = self.parse_object(body)
            if isinstance(opts, dict) and isinstance(opts.get("preconditions"), dict):
                preconditions = opts["preconditions"]
        uid = self.api.store.delete(r.name, preconditions)
        self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success",
                             "details": {"name": r.name, "kind": "nodes", "uid": uid}})

    def do_watch(self, r, query, body):
        view = negotiate(self.headers.get("Accept"), "watch")
        match = make_filter(query)
        if r.name:      # a watch on /nodes/NAME is a watch with a name field selector
            by_name = parse_field_selector(f"metadata.name={r.name}")
            match = by_name if match is None else (lambda o, m=match: m(o) and by_name(o))
        rv_text = query.get("resourceVersion", "")
        try:
            rv = int(rv_text) if rv_text not in ("", "0") else None
            timeout = int(query.get("timeoutSeconds") or 0) or self.api.watch_timeout
        except ValueError:
            raise bad_request(f"invalid resource version or timeout: {query}")
        Watch(self, view, match, rv, timeout, is_true(query.get("allowWatchBookmarks", ""))).run()

    # -- control -----------------------------------------------------------

    def control(self, method, path, query, body):
        api = self.api
        if path == "/_weft/healthz":
            return self.send_bytes(200, b"ok", content_type="text/plain; charset=utf-8")
        user = api.auth.authenticate(self.headers, self.connection.getpeercert())
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized", kind=None)
        if not user.is_admin:
            raise ApiError(403, "Forbidden", f'User "{user.name}" cannot use the weft-kubeapi '
                           "control endpoints", kind=None)
        params = dict(query)
        if body.strip():
            try:
                extra = json.loads(body)
            except ValueError as e:
                raise bad_request(f"control body is not JSON: {e}")
            if not isinstance(extra, dict):
                raise bad_request("control body must be a JSON object")
            params.update(extra)
        handler = CONTROL.get((method, path))
        if handler is None:
            raise ApiError(404, "NotFound", f"no control endpoint {method} {path}", kind=None)
        try:
            result = handler(api, params)
        except (ValueError, TypeError, re.error) as e:
            raise bad_request(f"bad control parameters: {e}")
        self.send_json(200, result if result is not None else {"ok": True})


def merge_subresource(old, new, status):
    """The parts of an update each endpoint may change: the node endpoint keeps
    the stored status, /status keeps the stored spec (metadata changes are
    applied by both, as kube-apiserver's node strategies do)."""
    keep = "spec" if status else "status"
    if keep in old:
        new[keep] = old[keep]
    else:
        new.pop(keep, None)
    return new


# A bookmark's object is an empty Node (the cacher's newFunc()) with only the RV set; Go's
# encoder writes its struct fields even when empty.
EMPTY_NODE_BODY = {
    "spec": {},
    "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
               "nodeInfo": {k: "" for k in (
                   "machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                   "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                   "operatingSystem", "architecture")}},
}


def next_bookmark_time(now, interval, deadline):
    """The cacheWatcher's nextBookmarkTime (1.20.2, measured): every interval, but also
    PRE_TIMEOUT_BOOKMARK seconds before the watch's deadline, and never after that."""
    when = min(now + interval, deadline - PRE_TIMEOUT_BOOKMARK)
    return when if when > now else float("inf")


class Watch:
    """One watch stream: initial events, then live ones, bookmarks, faults."""

    def __init__(self, handler, view, match, rv, timeout, bookmarks):
        self.h, self.view, self.match = handler, view, match
        self.rv, self.timeout, self.bookmarks = rv, timeout, bookmarks

    def line(self, etype, entry):
        return b'{"type":"%s","object":%s}\n' % (etype.encode(), entry.encoded(self.view))

    def render(self, event):
        """The event line as this watcher sees it through its selector: an
        object moving into or out of the selection is ADDED or DELETED."""
        if self.match is None:
            return self.line(event.type, event.entry)
        now_in = self.match(event.entry.obj)
        if event.type != "MODIFIED":
            return self.line(event.type, event.entry) if now_in else None
        was_in = event.prev is not None and self.match(event.prev.obj)
        if now_in:
            return self.line("MODIFIED" if was_in else "ADDED", event.entry)
        return self.line("DELETED", event.entry) if was_in else None

    def bookmark(self, rv):
        md = {"resourceVersion": str(rv), "creationTimestamp": None}
        if self.view is None:
            obj = {"kind": "Node", "apiVersion": "v1", "metadata": md, **EMPTY_NODE_BODY}
        else:
            obj = {"kind": "PartialObjectMetadata", "apiVersion": f"{META_GROUP}/{self.view}",
                   "metadata": md}
        return b'{"type":"BOOKMARK","object":' + dumps(obj) + b"}\n"

    def start(self, store):
        """Initial lines and the RV they bring the watcher to (lock held)."""
        if self.rv is None:
            entries = [store.objects[n] for n in sorted(store.objects)]
            return [self.line("ADDED", e) for e in entries
                    if self.match is None or self.match(e.obj)], store.rv, False
        if self.rv < store.floor:
            return [resource_gone_line(self.rv, store.floor)], store.rv, True
        events = store.events_after(self.rv)
        return events, max(store.rv, self.rv), False

    def run(self):
        h, api, store = self.h, self.h.api, self.h.api.store
        # Take the starting point before the client can see the response, so
        # that a control request it sends next cannot be missed.
        with store.cond:
            initial, cursor, expired = self.start(store)
            gens = (store.watch_generation, store.garbage_generation)
        api.stats.watch_delta(1)
        try:
            h.start_response(200, [("Content-Type", "application/json"),
                                   ("Cache-Control", "no-cache, private"),
                                   ("Transfer-Encoding", "chunked")])
            end = self.stream(h, api, store, initial, cursor, expired, gens)
        finally:
            api.stats.watch_delta(-1)
        if end == "clean":
            h.wfile.write(b"0\r\n\r\n")
        else:
            h.abort_connection()

    def stream(self, h, api, store, initial, cursor, expired, gens):
        gen, garbage_gen = gens
        corrupt = h.corrupt and h.corrupt["mode"]
        if corrupt in ("truncated", "garbage"):
            h.write_chunk(GARBAGE_LINE)
        elif corrupt == "huge":
            pad = b"x" * h.corrupt["bytes"]
            h.write_chunk(self.bookmark(cursor)[:-4] + b',"annotations":{"weft.test/padding":"'
                          + pad + b'"}}}}\n')
        lines = (x if isinstance(x, bytes) else self.render(x) for x in initial)
        h.write_batched((x for x in lines if x), chunked=True)
        if expired:
            return "clean"
        if corrupt == "cut":
            return "abort"
        deadline = time.monotonic() + self.timeout
        # kube-apiserver sends a bookmark only when its RV is newer than where the watch
        # started (after its initial events): a quiet watch gets none (measured).
        start_cursor = cursor
        next_bookmark = next_bookmark_time(time.monotonic(), api.faults.bookmark_interval,
                                           deadline)
        last_check = time.monotonic()
        while True:
            out, events, end, check = [], [], None, False
            with store.cond:
                while True:
                    now = time.monotonic()
                    if store.stopping:
                        end = "abort"
                    elif store.watch_generation != gen:
                        end = store.close_mode
                    elif api.faults.blackhole:      # a hung server sends nothing at all
                        store.cond.wait(0.05)
                        continue
                    elif store.garbage_generation != garbage_gen:
                        garbage_gen = store.garbage_generation
                        out.append(GARBAGE_LINE)
                    elif cursor < store.floor:      # fell behind a compaction
                        out.append(resource_gone_line(cursor, store.floor))
                        end = "clean"
                    elif store.rv > cursor:
                        events = store.events_after(cursor)
                        cursor = store.rv
                    elif now >= deadline:
                        end = "clean"
                    elif self.bookmarks and now >= next_bookmark:
                        if cursor > start_cursor:
                            out.append(self.bookmark(cursor))
                        next_bookmark = next_bookmark_time(now, api.faults.bookmark_interval,
                                                           deadline)
                    else:
                        wake = deadline
                        if self.bookmarks:
                            wake = min(wake, next_bookmark)
                        store.cond.wait(min(max(0.005, wake - now), LIVENESS_CHECK))
                        check = time.monotonic() - last_check >= LIVENESS_CHECK
                        if not check:
                            continue
                    break
            if check:
                if self.client_gone():
                    return "abort"
                last_check = time.monotonic()
                continue
            rendered = [self.render(e) for e in events]
            h.write_batched([x for x in rendered if x] + out, chunked=True)
            if end:
                return end

    def client_gone(self):
        """True when the client has closed a watch that has nothing to send
        (otherwise its thread would only notice at the next write). Clients
        send nothing during a watch, so readable means closed or broken."""
        sock = self.h.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            sock.settimeout(0.05)
            return sock.recv(1) == b""
        except (TimeoutError, ssl.SSLWantReadError):
            return False
        except OSError:
            return True
        finally:
            try:
                sock.settimeout(IDLE_TIMEOUT)
            except OSError:
                pass


# --------------------------------------------------------------------------
# Control endpoints (/_weft/...), all but healthz for admin users only.

def _ctl_close_watches(api, p):
    mode = p.get("mode", "clean")
    if mode not in ("clean", "abort"):
        raise ValueError("mode must be clean or abort")
    api.store.close_watches(mode)


def _ctl_compact(api, p):
    return {"floor": api.store.compact()}


def _ctl_fail(api, p):
    return api.faults.add_rule("fail", p)


def _ctl_corrupt(api, p):
    return api.faults.add_rule("corrupt", p)


def _ctl_latency(api, p):
    api.faults.latency_ms = float(p.get("ms", 0))


def _ctl_blackhole(api, p):
    api.faults.blackhole = is_true(p.get("on", True))
    with api.store.cond:
        api.store.cond.notify_all()


def _ctl_bookmarks(api, p):
    interval = float(p.get("interval", api.faults.default_bookmark_interval))
    if interval <= 0:
        raise ValueError("interval must be positive")
    api.faults.bookmark_interval = interval


def _ctl_reset(api, p):
    api.faults.reset()


def _ctl_stats(api, p):
    snap = api.stats.snapshot()
    with api.store.cond:
        snap.update(resource_version=api.store.rv, nodes=len(api.store.objects),
                    history={"floor": api.store.floor, "size": len(api.store.history),
                             "cap": api.store.history_cap})
    return snap


def _ctl_stats_reset(api, p):
    api.stats.reset()


CONTROL = {
    ("POST", "/_weft/watches/close"): _ctl_close_watches,
    ("POST", "/_weft/watches/garbage"): lambda api, p: api.store.inject_garbage(),
    ("POST", "/_weft/compact"): _ctl_compact,
    ("POST", "/_weft/fail"): _ctl_fail,
    ("POST", "/_weft/corrupt"): _ctl_corrupt,
    ("POST", "/_weft/latency"): _ctl_latency,
    ("POST", "/_weft/blackhole"): _ctl_blackhole,
    ("POST", "/_weft/bookmarks"): _ctl_bookmarks,
    ("POST", "/_weft/reset"): _ctl_reset,
    ("GET", "/_weft/faults"): lambda api, p: api.faults.describe(),
    ("GET", "/_weft/stats"): _ctl_stats,
    ("POST", "/_weft/stats/reset"): _ctl_stats_reset,
    ("DELETE", "/_weft/stats"): _ctl_stats_reset,
}


# --------------------------------------------------------------------------
# The server.

class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threaded TLS server. The handshake runs in the connection's thread,
    so a slow or broken client cannot stall accept()."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, family, api, ssl_ctx):
        self.address_family = family
        self.api, self.ssl_ctx = api, ssl_ctx
        self.conns, self.conns_lock = set(), threading.Lock()
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log.info("TLS handshake with %s failed: %s", client_address[0], e)
            return
        with self.conns_lock:
            self.conns.add(conn)
        try:
            Handler(conn, client_address, self)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as e:
            log.debug("connection from %s ended: %s", client_address[0], e)
        finally:
            with self.conns_lock:
                self.conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        log.exception("error on a connection from %s", client_address)

    def close_all(self, wait=2.0):
        """Cut every open connection and wait a little for their threads."""
        with self.conns_lock:
            conns = list(self.conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while self.conns and time.monotonic() < deadline:
            time.sleep(0.02)


# --------------------------------------------------------------------------
# Files: certificates, tokens, ready file, kubeconfig.

class locked:
    """An exclusive flock on DIR/.lock, so that servers started together
    with the same cert dir do not generate files over each other."""

    def __init__(self, directory):
        self.path = os.path.join(directory, ".lock")

    def __enter__(self):
        self.f = open(self.path, "w")
        fcntl.flock(self.f, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def write_atomic(path, data, mode=0o644):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def openssl(*args):
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


KEY_ARGS = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(d, stem, cn):
    key, crt = os.path.join(d, stem + ".key"), os.path.join(d, stem + ".crt")
    openssl("req", "-x509", *KEY_ARGS, "-keyout", key + ".tmp", "-out", crt + ".tmp",
            "-days", "3650", "-subj", f"/CN={cn}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(key + ".tmp", 0o600)
    os.replace(key + ".tmp", key)
    os.replace(crt + ".tmp", crt)


def make_leaf(d, stem, ca_stem, subject, extensions):
    key, crt = os.path.join(d, stem + ".key"), os.path.join(d, stem + ".crt")
    csr, ext = os.path.join(d, stem + ".csr"), os.path.join(d, stem + ".ext")
    with open(ext, "w") as f:
        f.write("\n".join(extensions) + "\n")
    try:
        openssl("req", "-new", *KEY_ARGS, "-keyout", key + ".tmp", "-out", csr,
                "-subj", subject)
        openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, ca_stem + ".crt"),
                "-CAkey", os.path.join(d, ca_stem + ".key"),
                "-set_serial", "0x" + secrets.token_hex(8), "-days", "3650",
                "-out", crt + ".tmp", "-extfile", ext)
    finally:
        for path in (csr, ext):
            if os.path.exists(path):
                os.unlink(path)
    os.chmod(key + ".tmp", 0o600)
    os.replace(key + ".tmp", key)
    os.replace(crt + ".tmp", crt)


def normalize_san(value):
    value = value.strip()
    if value.startswith(("IP:", "DNS:")):
        return value
    try:
        return "IP:" + str(ipaddress.ip_address(value))
    except ValueError:
        return "DNS:" + value


def ensure_certs(cert_dir, sans, client_cn):
    """Create what is missing in cert_dir: ca, other-ca (unrelated), a server
    cert for the SANs (re-issued when the SANs change) and a client cert."""
    os.makedirs(cert_dir, exist_ok=True)
    path = lambda name: os.path.join(cert_dir, name)  # noqa: E731
    with locked(cert_dir):
        for stem, cn in (("ca", "weft-test-ca"), ("other-ca", "weft-unrelated-ca")):
            if not (os.path.exists(path(stem + ".crt")) and os.path.exists(path(stem + ".key"))):
                make_ca(cert_dir, stem, cn)
        san_text = ",".join(sans)
        if not os.path.exists(path("server.crt")) or read_text(path("server.sans")) != san_text:
            make_leaf(cert_dir, "server", "ca", "/CN=weft-kubeapi",
                      ["basicConstraints=critical,CA:FALSE",
                       "keyUsage=critical,digitalSignature,keyEncipherment",
                       "extendedKeyUsage=serverAuth", f"subjectAltName={san_text}"])
            write_atomic(path("server.sans"), san_text.encode())
        if not os.path.exists(path("client.crt")) or read_text(path("client.cn")) != client_cn:
            make_leaf(cert_dir, "client", "ca", f"/CN={client_cn}",
                      ["basicConstraints=critical,CA:FALSE",
                       "keyUsage=critical,digitalSignature,keyEncipherment",
                       "extendedKeyUsage=clientAuth"])
            write_atomic(path("client.cn"), client_cn.encode())


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def server_ssl_context(cert_dir, client_ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(cert_dir, "server.crt"),
                        os.path.join(cert_dir, "server.key"))
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL      # client certs are one way to log in, not required
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def kubeconfig_yaml(url, ca, user, token=None, cert=None, key=None):
    """A kubeconfig in the block YAML that kubectl writes."""
    lines = ["apiVersion: v1", "kind: Config", "clusters:", "- cluster:",
             f"    certificate-authority: {ca}", f"    server: {url}", "  name: weft-test",
             "contexts:", "- context:", "    cluster: weft-test", f"    user: {user}",
             "  name: weft-test", "current-context: weft-test", "preferences: {}", "users:",
             f"- name: {user}", "  user:"]
    if token:
        lines.append(f"    token: {token}")
    if cert:
        lines += [f"    client-certificate: {cert}", f"    client-key: {key}"]
    return ("\n".join(lines) + "\n").encode()


def parse_listen(text):
    """HOST:PORT, [V6]:PORT or :PORT -> (host, port, family)."""
    m = re.match(r"^\[(.+)\]:(\d+)$", text) or re.match(r"^([^:]*):(\d+)$", text)
    if not m:
        raise SystemExit(f"--listen: want HOST:PORT or [V6]:PORT, got {text!r}")
    host = m.group(1) or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return host, int(m.group(2)), family


def client_host(host):
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def seed_nodes(store, path):
    with open(path) as f:
        data = json.load(f)
    items = data.get("items", []) if isinstance(data, dict) else data
    for obj in items:
        obj = validate_node(normalize_new_node(obj))
        obj["metadata"].pop("resourceVersion", None)
        store.create(obj, keep_identity=True)
    return len(items)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT, port 0 picks one")
    p.add_argument("--cert-dir", required=True, help="where certificates are kept or made")
    p.add_argument("--san", action="append", default=[],
                   help="extra server cert SAN (IP:x, DNS:x or a bare address/name), "
                        "repeatable; IP:127.0.0.1, IP:::1, DNS:localhost and the listen "
                        "address are always included")
    p.add_argument("--client-cn", default="weft-client",
                   help="CN of the generated client certificate (client.crt)")
    p.add_argument("--client-ca", help="CA for client certificates (default CERT_DIR/ca.crt)")
    p.add_argument("--tokens", default="default",
                   help="users/tokens JSON file, or 'default' (generated in CERT_DIR)")
    p.add_argument("--token", nargs=3, action="append", metavar=("TOKEN", "USER", "RULES"),
                   help="add a user: RULES is '*' or 'nodes=get,list;nodes/status=patch'")
    p.add_argument("--admin-token", help="token of an admin user (default: from the tokens)")
    p.add_argument("--ready-file", help="written atomically (JSON) once serving")
    p.add_argument("--kubeconfig-out", help="write a kubeconfig for clients here")
    p.add_argument("--kubeconfig-token", help="token for the kubeconfig")
    p.add_argument("--kubeconfig-user", default="system:serviceaccount:kube-system:weft",
                   help="user whose token goes into the kubeconfig (when no --kubeconfig-token)")
    p.add_argument("--kubeconfig-client-cert", action="store_true",
                   help="put client.crt/client.key into the kubeconfig instead of a token")
    p.add_argument("--nodes-file", help="JSON list (or NodeList) of Nodes to start with")
    p.add_argument("--history", type=int, default=1000, help="watch events kept for replay")
    p.add_argument("--state-file", help="keep Nodes and the resourceVersion counter in this "
                                        "file: loaded at start, saved after changes and on exit")
    p.add_argument("--state-keep-history", action="store_true",
                   help="with --state-file, also restore the watch history, so that a watch "
                        "from an RV before the restart replays instead of getting 410 (kinder "
                        "than kube-apiserver, whose watch cache starts empty)")
    p.add_argument("--startup-forbidden", type=float, default=0.0, metavar="S",
                   help="for S seconds after start, refuse every user but the admin with "
                        "RBAC's 403, as kube-apiserver does while its RBAC caches fill")
    p.add_argument("--bookmark-interval", type=float, default=DEFAULT_BOOKMARK_INTERVAL,
                   help="seconds between BOOKMARK events (default 60, as kube-apiserver); "
                        "a test that shortens it should say why")
    p.add_argument("--watch-timeout", type=int, default=DEFAULT_WATCH_TIMEOUT,
                   help="seconds a watch lasts without timeoutSeconds")
    p.add_argument("--log-file", help="log here instead of stderr")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(filename=args.log_file, level=logging.INFO if args.verbose
                        else logging.WARNING,
                        format="%(asctime)s kubeapi %(levelname)s %(message)s")
    host, port, family = parse_listen(args.listen)
    cert_dir = os.path.abspath(args.cert_dir)
    sans = ["IP:127.0.0.1", "IP:::1", "DNS:localhost"] + args.san
    if host not in ("", "0.0.0.0", "::"):
        sans.append(normalize_san(host))
    sans = list(dict.fromkeys(normalize_san(s) for s in sans))
    ensure_certs(cert_dir, sans, args.client_cn)
    entries, tokens_path = load_users(args, cert_dir)
    store = Store(max(10, args.history))   # it also feeds live watchers: never tiny
    state = (StateFile(store, os.path.abspath(args.state_file), args.state_keep_history)
             if args.state_file else None)
    if state and state.load():
        log.warning("state from %s: %d nodes at resourceVersion %d (history from %d)",
                    args.state_file, len(store.objects), store.rv, store.floor)
    elif args.nodes_file:
        n = seed_nodes(store, args.nodes_file)
        log.warning("seeded %d nodes from %s", n, args.nodes_file)
    api = Api(store, Auth(entries), Faults(args.bookmark_interval), args.watch_timeout,
              args.startup_forbidden)
    ctx = server_ssl_context(cert_dir, args.client_ca or os.path.join(cert_dir, "ca.crt"))
    server = Server((host, port), family, api, ctx)
    port = server.server_address[1]
    url = f"https://{client_host(host)}:{port}"
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                               name="serve", daemon=True)
    serving.start()
    if state:
        state.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    ca = os.path.join(cert_dir, "ca.crt")
    tokens = {e["name"]: e["token"] for e in entries if e.get("token")}
    admin = next(e["token"] for e in entries if e.get("allow") == "*" and e.get("token"))
    if args.kubeconfig_out:
        token = args.kubeconfig_token or (None if args.kubeconfig_client_cert
                                          else tokens.get(args.kubeconfig_user, admin))
        cert = os.path.join(cert_dir, "client.crt") if args.kubeconfig_client_cert else None
        key = os.path.join(cert_dir, "client.key") if args.kubeconfig_client_cert else None
        write_atomic(args.kubeconfig_out,
                     kubeconfig_yaml(url, ca, "weft", token=token, cert=cert, key=key), 0o600)
    ready = {"url": url, "port": port, "ca": ca, "admin_token": admin, "tokens": tokens,
             "tokens_file": os.path.abspath(tokens_path), "cert_dir": cert_dir,
             "client_cert": os.path.join(cert_dir, "client.crt"),
             "client_key": os.path.join(cert_dir, "client.key"),
             "other_ca": os.path.join(cert_dir, "other-ca.crt"), "pid": os.getpid()}
    if args.ready_file:
        write_atomic(args.ready_file, json.dumps(ready, indent=2).encode())
    log.warning("serving %s (pid %d)", url, os.getpid())

    while not stop.wait(0.5):
        pass
    log.warning("stopping")
    store.stop()
    server.shutdown()
    server.close_all()
    server.server_close()
    if state:
        state.stop()
    if args.ready_file:
        try:
            os.unlink(args.ready_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
