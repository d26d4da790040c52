#!/usr/bin/python3
"""Static checks of manifests/ (what `kubectl apply -f manifests/` creates).

  schema     every object parses, has apiVersion/kind/metadata.name (and the namespace where
             the kind needs one), and matches the Kubernetes API schema: no unknown fields,
             no wrong types, no missing required fields (python3-kubernetes' models)
  rbac       the ClusterRole grants exactly nodes get/list/watch/patch and nodes/status patch,
             bound to the ServiceAccount the DaemonSet runs as
  cni        the conflist in the ConfigMap is valid CNI JSON naming plugins that exist
  netconf    the net-conf.json in the ConfigMap passes `weftd --check-config`
  daemonset  the DaemonSet's paths, ports and flags agree with weftd's defaults and flags,
             the CNI plugin's config and the image's layout
"""
import argparse
import json
import os
import posixpath
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_lib import (Checks, effective_options, json_text, load_manifests, one,  # noqa: E402
                        shell_commands, weftd_flags)

API_VERSION = {
    "Namespace": "v1",
    "ServiceAccount": "v1",
    "ConfigMap": "v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "DaemonSet": "apps/v1",
}
NAMESPACED = {"ServiceAccount", "ConfigMap", "DaemonSet"}
MODEL = {
    "Namespace": "V1Namespace",
    "ServiceAccount": "V1ServiceAccount",
    "ConfigMap": "V1ConfigMap",
    "ClusterRole": "V1ClusterRole",
    "ClusterRoleBinding": "V1ClusterRoleBinding",
    "DaemonSet": "V1DaemonSet",
}
EXPECTED_RULES = {("", "nodes", v) for v in ("get", "list", "watch", "patch")} | {("", "nodes/status", "patch")}
CNI_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")  # what weft supports; libcni 1.1.2 stops at 1.0.0
WEFT_PLUGIN_KEYS = {"type", "name", "cniVersion", "subnetFile", "dataDir", "ipamDataDir", "delegate", "capabilities"}
WEFT_DELEGATES = ("bridge", "host-local")  # the weft plugin runs these
CONFLIST_NAME = "10-weft.conflist"
NET_CONF_KEY = "net-conf.json"
CNI_CONF_KEY = "cni-conf.json"
EXPECTED_NETWORK = "10.244.0.0/16"  # kubeadm init --pod-network-cidr in the README and the Vagrant lab
MAX_CPU_MILLI = 250
MAX_MEMORY_MI = 256


# ---------------------------------------------------------------- schema
def walk_schema(value, typ, path, checks):
    from kubernetes import client
    if typ == "object":
        return
    if typ.startswith("list["):
        if not checks.expect(isinstance(value, list), f"{path}: expected a list"):
            return
        for i, v in enumerate(value):
            walk_schema(v, typ[5:-1], f"{path}[{i}]", checks)
    elif typ.startswith("dict("):
        inner = re.match(r"dict\(([^,]*), (.*)\)", typ).group(2)
        if not checks.expect(isinstance(value, dict), f"{path}: expected a mapping"):
            return
        for k, v in value.items():
            checks.expect(isinstance(k, str), f"{path}: key {k!r} is not a string")
            walk_schema(v, inner, f"{path}.{k}", checks)
    elif typ == "str" or typ == "datetime":
        checks.expect(isinstance(value, str), f"{path}: expected a string, got {value!r}")
    elif typ == "int":
        checks.expect(isinstance(value, int) and not isinstance(value, bool), f"{path}: expected an integer, got {value!r}")
    elif typ == "bool":
        checks.expect(isinstance(value, bool), f"{path}: expected true/false, got {value!r}")
    elif typ == "float":
        checks.expect(isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: expected a number")
    else:
        cls = getattr(client.models, typ)
        if not checks.expect(isinstance(value, dict), f"{path}: expected a {typ} object"):
            return
        by_json = {j: attr for attr, j in cls.attribute_map.items()}
        for k, v in value.items():
            if k not in by_json:
                checks.fail(f"{path}: unknown field {k!r} (known: {', '.join(sorted(by_json))})")
                continue
            walk_schema(v, cls.openapi_types[by_json[k]], f"{path}.{k}", checks)


def check_schema(objs, checks, namespace_name):
    from kubernetes import client
    api = client.ApiClient()
    for m in objs:
        o = m.obj
        where = m.where()
        kind = o.get("kind")
        if not checks.expect(kind in API_VERSION, f"{where}: unexpected kind {kind!r} (known: {sorted(API_VERSION)})"):
            continue
        checks.expect(o.get("apiVersion") == API_VERSION[kind],
                      f"{where}: apiVersion {o.get('apiVersion')!r}, want {API_VERSION[kind]!r}")
        meta = o.get("metadata")
        if not checks.expect(isinstance(meta, dict), f"{where}: no metadata"):
            continue
        name = meta.get("name")
        checks.expect(isinstance(name, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name or "")
                      and len(name) <= 253, f"{where}: metadata.name {name!r} is not a DNS subdomain name")
        if kind in NAMESPACED:
            checks.expect(meta.get("namespace") == namespace_name,
                          f"{where}: metadata.namespace {meta.get('namespace')!r}, want {namespace_name!r}")
        else:
            checks.expect("namespace" not in meta, f"{where}: {kind} is cluster-scoped but has a namespace")
        before = len(checks.failures)
        walk_schema(o, MODEL[kind], where, checks)
        if len(checks.failures) == before:
            try:
                api._ApiClient__deserialize(o, MODEL[kind])
                checks.passed += 1
            except (ValueError, TypeError) as e:
                checks.fail(f"{where}: {e}")
    # kubectl apply -f DIR reads files in name order: the Namespace must come before what lives in it.
    ns = [m for m in objs if m.kind == "Namespace"]
    if ns:
        first_namespaced = [m for m in objs if m.kind in NAMESPACED]
        for m in first_namespaced:
            checks.expect((m.path, m.index) > (ns[0].path, ns[0].index),
                          f"{m.where()} comes before the Namespace: `kubectl apply -f` would fail on a new cluster")


# ---------------------------------------------------------------- rbac
def expand_rules(rules, where, checks):
    out = set()
    for r in rules or []:
        checks.expect(not r.get("resourceNames") and not r.get("nonResourceURLs"),
                      f"{where}: rules must not use resourceNames or nonResourceURLs")
        for g in r.get("apiGroups") or []:
            for res in r.get("resources") or []:
                for v in r.get("verbs") or []:
                    out.add((g, res, v))
    return out


def check_rbac(objs, checks, namespace_name):
    for kind in ("Role", "RoleBinding"):
        checks.expect(not [m for m in objs if m.kind == kind], f"weft needs no {kind}: remove it")
    role = one(objs, "ClusterRole", checks)
    binding = one(objs, "ClusterRoleBinding", checks)
    sa = one(objs, "ServiceAccount", checks)
    ds = one(objs, "DaemonSet", checks)
    if not (role and binding and sa and ds):
        return
    granted = expand_rules(role.obj.get("rules"), role.where(), checks)
    extra = granted - EXPECTED_RULES
    missing = EXPECTED_RULES - granted
    checks.expect(not extra, f"{role.where()} grants more than weftd needs: {sorted(extra)}")
    checks.expect(not missing, f"{role.where()} lacks what weftd needs: {sorted(missing)}")
    checks.expect("aggregationRule" not in role.obj, f"{role.where()}: no aggregationRule")
    ref = binding.obj.get("roleRef") or {}
    checks.expect(ref == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role.name},
                  f"{binding.where()}: roleRef {ref} does not name ClusterRole {role.name}")
    want_subject = {"kind": "ServiceAccount", "name": sa.name, "namespace": namespace_name}
    checks.expect(binding.obj.get("subjects") == [want_subject],
                  f"{binding.where()}: subjects {binding.obj.get('subjects')}, want [{want_subject}]")
    pod = ((ds.obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    checks.expect(pod.get("serviceAccountName") == sa.name,
                  f"{ds.where()}: serviceAccountName {pod.get('serviceAccountName')!r}, want {sa.name!r}")
    checks.expect(pod.get("automountServiceAccountToken", True) is not False,
                  f"{ds.where()}: weftd needs the service account token (in-cluster config)")


# ---------------------------------------------------------------- the ConfigMap the DaemonSet mounts
def daemonset_pod(objs, checks):
    ds = one(objs, "DaemonSet", checks)
    if not ds:
        return None, {}
    return ds, ((ds.obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def weft_configmap(objs, checks):
    ds, pod = daemonset_pod(objs, checks)
    names = {v["configMap"]["name"] for v in pod.get("volumes") or [] if "configMap" in v}
    checks.expect(len(names) == 1, f"the DaemonSet should mount one ConfigMap, mounts {sorted(names)}")
    cms = [m for m in objs if m.kind == "ConfigMap" and m.name in names]
    checks.expect(len(cms) == 1, f"the ConfigMap the DaemonSet mounts ({sorted(names)}) is not in the manifests")
    return cms[0] if cms else None


def check_cni(objs, checks, cni_dir, packaging):
    cm = weft_configmap(objs, checks)
    if not cm:
        return
    text = (cm.obj.get("data") or {}).get(CNI_CONF_KEY)
    if not checks.expect(isinstance(text, str), f"{cm.where()} has no {CNI_CONF_KEY}"):
        return
    conf = json_text(text, f"{cm.where()} {CNI_CONF_KEY}", checks)
    if not isinstance(conf, dict):
        checks.fail(f"{CNI_CONF_KEY} is not a JSON object")
        return
    version = conf.get("cniVersion")
    checks.expect(version in CNI_VERSIONS, f"conflist cniVersion {version!r} is not one of {CNI_VERSIONS}")
    name = conf.get("name")
    checks.expect(isinstance(name, str) and re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*", name or ""),
                  f"conflist name {name!r} is not a valid CNI network name")
    plugins = conf.get("plugins")
    if not checks.expect(isinstance(plugins, list) and plugins, "conflist has no \"plugins\" list"):
        return
    installed = set(os.listdir(cni_dir)) if os.path.isdir(cni_dir) else set()
    checks.expect(installed, f"no CNI plugins in {cni_dir} (install containernetworking-plugins)")
    types = []
    for i, p in enumerate(plugins):
        if not checks.expect(isinstance(p, dict) and isinstance(p.get("type"), str),
                             f"conflist plugins[{i}] has no \"type\""):
            continue
        t = p["type"]
        types.append(t)
        checks.expect("cniVersion" not in p or p["cniVersion"] == version,
                      f"plugins[{i}] ({t}) has cniVersion {p.get('cniVersion')!r}, the list has {version!r}")
        if t == "weft":
            continue
        checks.expect(os.access(os.path.join(cni_dir, t), os.X_OK),
                      f"plugins[{i}]: no CNI plugin {t!r} in {cni_dir} (containernetworking-plugins has "
                      f"{', '.join(sorted(installed))})")
    checks.expect(types[:1] == ["weft"], f"the first plugin must be weft (it gives pods their address), got {types}")
    checks.expect("portmap" in types, "the conflist should chain portmap (hostPort)")
    for p in plugins:
        if isinstance(p, dict) and p.get("type") == "portmap":
            checks.expect((p.get("capabilities") or {}).get("portMappings") is True,
                          "portmap needs \"capabilities\": {\"portMappings\": true}")
        if isinstance(p, dict) and p.get("type") == "weft":
            unknown = set(p) - WEFT_PLUGIN_KEYS
            checks.expect(not unknown, f"weft plugin config has keys weft does not read: {sorted(unknown)}")
            checks.expect(isinstance(p.get("delegate", {}), dict), "weft plugin \"delegate\" must be an object")
            checks.expect(isinstance(p.get("subnetFile"), str) and p["subnetFile"].startswith("/"),
                          "weft plugin config needs an absolute \"subnetFile\"")
    for d in WEFT_DELEGATES:
        checks.expect(os.access(os.path.join(cni_dir, d), os.X_OK), f"the weft plugin delegates to {d}, not in {cni_dir}")
    if packaging:
        with open(os.path.join(packaging, CONFLIST_NAME)) as f:
            pkg = json_text(f.read(), f"packaging/{CONFLIST_NAME}", checks)
        checks.expect(pkg == conf, f"packaging/{CONFLIST_NAME} differs from the ConfigMap's {CNI_CONF_KEY}")


def check_netconf(objs, checks, weftd, packaging):
    cm = weft_configmap(objs, checks)
    if not cm:
        return
    text = (cm.obj.get("data") or {}).get(NET_CONF_KEY)
    if not checks.expect(isinstance(text, str), f"{cm.where()} has no {NET_CONF_KEY}"):
        return
    conf = json_text(text, f"{cm.where()} {NET_CONF_KEY}", checks)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, NET_CONF_KEY)
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([weftd, "--check-config", path], capture_output=True, text=True)
        checks.expect(r.returncode == 0, f"weftd --check-config refuses the ConfigMap's {NET_CONF_KEY}: {r.stderr.strip()}")
        checks.expect("warning" not in r.stderr, f"weftd --check-config warns: {r.stderr.strip()}")
    if isinstance(conf, dict):
        checks.expect(conf.get("Network") == EXPECTED_NETWORK,
                      f"Network {conf.get('Network')!r}: the README and the Vagrant lab use {EXPECTED_NETWORK}")
        checks.expect((conf.get("Backend") or {}).get("Type") == "vxlan", "Backend.Type must be vxlan")
    if packaging:
        with open(os.path.join(packaging, NET_CONF_KEY)) as f:
            pkg = json_text(f.read(), f"packaging/{NET_CONF_KEY}", checks)
        checks.expect(pkg == conf, f"packaging/{NET_CONF_KEY} differs from the ConfigMap's {NET_CONF_KEY}")


# ---------------------------------------------------------------- daemonset
def quantity_milli(q):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", str(q))
    if not m:
        return None
    return float(m.group(1)) * (1 if m.group(2) else 1000)


def quantity_mi(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1000 / 1048576, "M": 1e6 / 1048576, "G": 1e9 / 1048576, "": 1 / 1048576}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G|)", str(q))
    return float(m.group(1)) * units[m.group(2)] if m else None


class Mounts:
    """Maps paths inside one container to host paths and ConfigMap keys through its volumeMounts."""

    def __init__(self, container, volumes):
        self.entries = []
        for vm in container.get("volumeMounts") or []:
            vol = volumes.get(vm.get("name"), {})
            self.entries.append((vm.get("mountPath", "").rstrip("/") or "/", vm.get("subPath"), vol))

    def _find(self, path):
        best = None
        for mount, sub, vol in self.entries:
            if path == mount or path.startswith(mount + "/"):
                if best is None or len(mount) > len(best[0]):
                    best = (mount, sub, vol)
        return best

    def host_path(self, path):
        hit = self._find(path)
        if not hit or "hostPath" not in hit[2]:
            return None
        mount, sub, vol = hit
        base = vol["hostPath"]["path"].rstrip("/")
        if sub:
            base = posixpath.join(base, sub)
        rel = path[len(mount):].lstrip("/")
        return posixpath.join(base, rel) if rel else base

    def configmap_key(self, path):
        hit = self._find(path)
        if not hit or "configMap" not in hit[2]:
            return None
        mount, _, vol = hit
        rel = path[len(mount):].lstrip("/")
        items = vol["configMap"].get("items")
        if items:
            for it in items:
                if it.get("path") == rel:
                    return it.get("key")
            return None
        return rel

    def shadowed(self, path):
        return self._find(path) is not None


def image_layout(dockerfile):
    """Where the runtime stage puts each binary: {basename: path}."""
    out = {}
    with open(dockerfile) as f:
        for line in f:
            m = re.match(r"^\s*COPY\s+--from=\S+\s+(\S+)\s+(\S+)\s*$", line)
            if m:
                dst = m.group(2)
                if dst.endswith("/"):
                    dst += posixpath.basename(m.group(1))
                out[posixpath.basename(dst)] = dst
    return out


def atomic_installs(container):
    """[(tmp, final, source)] for each `cp SRC TMP` followed by `mv TMP FINAL` in an sh -c script."""
    cmd = (container.get("command") or []) + (container.get("args") or [])
    if len(cmd) < 3 or cmd[0] not in ("/bin/sh", "sh", "/bin/bash") or cmd[1] != "-c":
        return None, []
    script = cmd[2]
    cmds = shell_commands(script)
    copies = {}
    out = []
    for words in cmds:
        if words[0] == "cp":
            srcs = [w for w in words[1:] if not w.startswith("-")]
            if len(srcs) == 2:
                copies[srcs[1]] = srcs[0]
        if words[0] == "mv":
            paths = [w for w in words[1:] if not w.startswith("-")]
            if len(paths) == 2:
                out.append((paths[0], paths[1], copies.get(paths[0])))
    return cmds, out


def check_daemonset(objs, checks, weftd, repo, version):
    ds, pod = daemonset_pod(objs, checks)
    if not ds:
        return
    where = ds.where()
    spec = ds.obj.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    checks.expect(selector, f"{where}: spec.selector.matchLabels is empty")
    checks.expect(not (spec.get("selector") or {}).get("matchExpressions"), f"{where}: use matchLabels only")
    checks.expect(all(labels.get(k) == v for k, v in selector.items()),
                  f"{where}: selector {selector} does not match the template's labels {labels}")
    checks.expect((spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate",
                  f"{where}: updateStrategy should be RollingUpdate")
    checks.expect(pod.get("hostNetwork") is True, f"{where}: weftd needs hostNetwork: true")
    checks.expect(pod.get("priorityClassName") == "system-node-critical",
                  f"{where}: priorityClassName should be system-node-critical")
    checks.expect(any(t.get("operator") == "Exists" and not t.get("key") and t.get("effect") in (None, "NoSchedule")
                      for t in pod.get("tolerations") or []),
                  f"{where}: needs a toleration {{operator: Exists, effect: NoSchedule}} (every NoSchedule taint)")
    checks.expect(not (pod.get("securityContext") or {}).get("privileged"), f"{where}: pod must not be privileged")

    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    containers = pod.get("containers") or []
    inits = pod.get("initContainers") or []
    all_containers = containers + inits
    for c in all_containers:
        checks.expect(c.get("name") and c.get("image"), f"{where}: container {c.get('name')!r} needs a name and an image")
        checks.expect(not (c.get("securityContext") or {}).get("privileged"),
                      f"{where}: container {c.get('name')} must not be privileged (NET_ADMIN + NET_RAW instead)")
        checks.expect(c.get("imagePullPolicy") in ("IfNotPresent", "Never"),
                      f"{where}: container {c.get('name')} imagePullPolicy {c.get('imagePullPolicy')!r}: the lab "
                      f"imports the image into containerd, so IfNotPresent")
        for vm in c.get("volumeMounts") or []:
            checks.expect(vm.get("name") in volumes, f"{where}: {c.get('name')} mounts undefined volume {vm.get('name')}")

    # One image reference, kept in one place.
    images = {c.get("image") for c in all_containers}
    checks.expect(len(images) == 1, f"{where}: containers use different images {sorted(map(str, images))}")
    image = next(iter(images)) if images else ""
    checks.expect(str(image).endswith(":" + version),
                  f"{where}: image {image!r} should be tagged with the project version {version}")
    for sub in ("manifests", "vagrant", "scripts", "packaging", "Dockerfile"):
        top = os.path.join(repo, sub)
        paths = [top] if os.path.isfile(top) else [os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
        for p in paths:
            if os.path.samefile(p, ds.path) or "/.vagrant/" in p:
                continue
            try:
                with open(p, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            checks.expect(image not in text, f"{os.path.relpath(p, repo)} repeats the image reference {image}: "
                                             f"read it from {os.path.relpath(ds.path, repo)} instead")

    # weftd: its flags, paths and ports.
    weftds = [c for c in containers if posixpath.basename((c.get("command") or [""])[0]) == "weftd"]
    if not checks.expect(len(weftds) == 1, f"{where}: expected one container with command [/usr/bin/weftd]"):
        return
    c = weftds[0]
    layout = image_layout(os.path.join(repo, "Dockerfile"))
    checks.expect(c["command"][0] == layout.get("weftd"),
                  f"{where}: command {c['command'][0]!r}, the image has weftd at {layout.get('weftd')!r}")
    env = {}
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        else:
            env[e["name"]] = e.get("valueFrom")
    node_name = env.get("NODE_NAME", env.get("WEFTD_NODE_NAME"))
    checks.expect(node_name == {"fieldRef": {"fieldPath": "spec.nodeName"}},
                  f"{where}: NODE_NAME must come from fieldRef spec.nodeName, got {node_name}")
    flags = weftd_flags(weftd)
    opts = effective_options(c.get("args") or [], {k: v for k, v in env.items() if isinstance(v, str)}, flags,
                             checks, where)
    checks.expect(opts.get("--kube-subnet-mgr") in (None, "true"), f"{where}: --kube-subnet-mgr must not be false")
    checks.expect(not opts.get("--kubeconfig-file"), f"{where}: weftd should use the in-cluster service account")
    caps = {x.upper().removeprefix("CAP_") for x in
            ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []}
    checks.expect(caps == {"NET_ADMIN", "NET_RAW"}, f"{where}: weftd capabilities {sorted(caps)}, want NET_ADMIN and NET_RAW")
    mounts = Mounts(c, volumes)

    # subnet.env: weftd writes it in the container; the CNI plugin reads it on the host.
    subnet_file = opts.get("--subnet-file")
    host_subnet = mounts.host_path(subnet_file or "")
    checks.expect(host_subnet, f"{where}: weftd's --subnet-file {subnet_file} is not on a hostPath volume")
    cm = weft_configmap(objs, checks)
    conflist = json_text((cm.obj.get("data") or {}).get(CNI_CONF_KEY, "{}"), CNI_CONF_KEY, checks) if cm else {}
    weft_plugin = next((p for p in (conflist or {}).get("plugins", []) if isinstance(p, dict) and p.get("type") == "weft"), {})
    checks.expect(weft_plugin.get("subnetFile") == host_subnet,
                  f"{where}: weftd writes {host_subnet} on the host, the CNI plugin reads {weft_plugin.get('subnetFile')}")

    # net-conf.json: from the ConfigMap.
    net_conf = opts.get("--net-config-path")
    checks.expect(mounts.configmap_key(net_conf or "") == NET_CONF_KEY,
                  f"{where}: weftd reads {net_conf}, which is not the ConfigMap's {NET_CONF_KEY}")

    # Health endpoint and probes.
    port = int(opts.get("--healthz-port") or 0)
    checks.expect(port > 0, f"{where}: --healthz-port is off, the probes need it")
    named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        pport = named.get(get.get("port"), get.get("port"))
        checks.expect(get.get("path") == path and pport == port,
                      f"{where}: {probe} should GET {path} on port {port}, has {get.get('path')} on {get.get('port')}")
        hip = opts.get("--healthz-ip")
        if hip not in ("0.0.0.0", "", None):
            checks.expect(get.get("host") == hip, f"{where}: weftd listens on {hip} only, {probe} needs host: {hip}")
    for p in c.get("ports") or []:
        checks.expect(p.get("containerPort") == port, f"{where}: port {p.get('containerPort')} is not the healthz port {port}")

    requests = (c.get("resources") or {}).get("requests") or {}
    cpu, mem = quantity_milli(requests.get("cpu", "")), quantity_mi(requests.get("memory", ""))
    checks.expect(cpu is not None and 0 < cpu <= MAX_CPU_MILLI, f"{where}: cpu request {requests.get('cpu')!r} should be "
                                                               f"set and at most {MAX_CPU_MILLI}m")
    checks.expect(mem is not None and 0 < mem <= MAX_MEMORY_MI, f"{where}: memory request {requests.get('memory')!r} "
                                                               f"should be set and at most {MAX_MEMORY_MI}Mi")

    # Init containers install the CNI binary and the conflist atomically on the host.
    for d in ("/run/weft", "/etc/cni/net.d", "/opt/cni/bin"):
        checks.expect(any((v.get("hostPath") or {}).get("path", "").rstrip("/") == d for v in volumes.values()),
                      f"{where}: no hostPath volume for {d}")
    wanted = {
        "/opt/cni/bin/weft": ("the CNI plugin", lambda m, src: src == layout.get("weft") and not m.shadowed(src)),
        "/etc/cni/net.d/" + CONFLIST_NAME: ("the conflist", lambda m, src: m.configmap_key(src) == CNI_CONF_KEY),
    }
    found = {}
    for ic in inits:
        cmds, installs = atomic_installs(ic)
        if cmds is None:
            continue
        m = Mounts(ic, volumes)
        for tmp, final, src in installs:
            host = m.host_path(final)
            if host not in wanted:
                continue
            what, src_ok = wanted[host]
            found[host] = True
            iw = f"{where} init container {ic.get('name')}"
            checks.expect(cmds[0][:2] == ["set", "-eu"] or cmds[0][:2] == ["set", "-e"],
                          f"{iw}: the script must start with `set -e`, or a failed copy would still be renamed")
            checks.expect(posixpath.dirname(tmp) == posixpath.dirname(final) and tmp != final,
                          f"{iw}: {what}: the temporary file {tmp} must be in the directory of {final} (rename is "
                          f"atomic only within one file system)")
            checks.expect(not tmp.endswith((".conf", ".conflist", ".json")),
                          f"{iw}: the temporary file {tmp} ends like a CNI config, the runtime could load it half-written")
            checks.expect(src is not None and src_ok(m, src),
                          f"{iw}: {what} is copied from {src}, which is not where the image or the ConfigMap has it")
    for host, (what, _) in wanted.items():
        checks.expect(host in found, f"{where}: no init container installs {what} as {host} with cp + mv")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=["schema", "rbac", "cni", "netconf", "daemonset"])
    ap.add_argument("--repo", required=True, help="the repository root")
    ap.add_argument("--manifests", help="default: REPO/manifests")
    ap.add_argument("--weftd", help="the weftd binary (netconf, daemonset)")
    ap.add_argument("--cni-dir", default="/usr/lib/cni", help="Debian's containernetworking-plugins")
    ap.add_argument("--version", help="the project version (daemonset)")
    a = ap.parse_args()
    manifests = a.manifests or os.path.join(a.repo, "manifests")
    checks = Checks(f"manifests {a.check}")
    objs = load_manifests(manifests, checks)
    ns = one(objs, "Namespace", checks)
    ns_name = ns.name if ns else None
    if a.check == "schema":
        check_schema(objs, checks, ns_name)
        if ns:
            labels = (ns.obj.get("metadata") or {}).get("labels") or {}
            checks.expect(labels.get("pod-security.kubernetes.io/enforce") == "privileged",
                          f"{ns.where()}: needs label pod-security.kubernetes.io/enforce: privileged")
    elif a.check == "rbac":
        check_rbac(objs, checks, ns_name)
    elif a.check == "cni":
        check_cni(objs, checks, a.cni_dir, os.path.join(a.repo, "packaging"))
    elif a.check == "netconf":
        check_netconf(objs, checks, a.weftd, os.path.join(a.repo, "packaging"))
    elif a.check == "daemonset":
        check_daemonset(objs, checks, a.weftd, a.repo, a.version)
    checks.finish()


if __name__ == "__main__":
    main()
