#!/usr/bin/env python3
"""weft's multi-node lab in network namespaces.

    lab.py up [--nodes N] [--pods M] [--pod-cidr] [--api real|double]
              [--dual-stack [--v6-underlay] | --ipv6-only]
                                                     build the lab and start weftd on every node
    lab.py status                                    node, subnet, public IP, VTEP MAC, peers, pods
    lab.py smoke                                     ping + curl from every pod to every other node's pods
    lab.py down                                      remove everything the lab made

Topology (see DESIGN.md):
    <p>-ul       the underlay: a bridge joining every node and the API (192.0.2.0/24; 2001:db8::/64
                 with --v6-underlay or --ipv6-only)
    <p>-api      the Kubernetes API at https://192.0.2.254:6443 ([2001:db8::fe] with --ipv6-only):
                 with --api real (the default of scripts/demo.sh) etcd + kube-apiserver +
                 kube-controller-manager 1.20.2 built from Debian's source package
                 (test/controlplane/), weftd running as the
                 ServiceAccount of manifests/01-rbac.yaml; with --api double the API test double
                 (test/kubeapi/kubeapi.py: fast, and able to inject faults)
    <p>-nK       node K: weftd, the pod bridge; eth0 = 192.0.2.K on the underlay (2001:db8::K
                 with --v6-underlay, 2001:db8::K alone with --ipv6-only)
    <p>-nK-pM    pod M on node K, wired by the CNI chain (weft + portmap) as a runtime does

Dual stack (issue #19), `up --dual-stack`: net-conf.json gets "EnableIPv6": true,
"IPv6Network": "fd00:10:244::/56", "IPv6SubnetLen": 64, so every node also has an IPv6 /64
(subnet.env's WEFT_IPV6_*) and every pod an IPv6 address next to its IPv4 one; nodes forward
IPv6. Its /64 is, in lease mode, the one with the index of its IPv4 /24 (10.244.7.0/24 ->
fd00:10:244:7::/64); with --pod-cidr it is spec.podCIDRs[1]: with --api double the lab gives
node K 10.244.(100+K).0/24 and fd00:10:244:<100+K in hex>::/64 (index 100+K, inside the /56),
with --api real the controller-manager assigns both (IPv6DualStack gate on the apiserver and
the controller-manager, --cluster-cidr=10.244.0.0/16,fd00:10:244::/56). The underlay stays
IPv4: weftd carries the IPv6 overlay over it on weft-v6.2 (VNI 1 + 1, port 8472).
`up --dual-stack --v6-underlay` also gives every eth0 2001:db8::K/64 (the API 2001:db8::fe;
the API URL stays IPv4) and runs weftd with --public-ipv6 2001:db8::K: the IPv6 overlay then
rides IPv6 VXLAN (weft-v6.1, MTU 1500 - 70). `smoke` in a dual-stack lab also pings and curls
every pod's IPv6 address (the pods' HTTP servers listen on ::, both families); `status` adds
the IPv6 subnet, public IPv6, IPv6 VTEP MAC and the count of IPv6 peer routes.

IPv6 only (issue #19), `up --ipv6-only`: net-conf.json has "EnableIPv4": false and only the IPv6
keys ("IPv6SubnetMax" keeps the leases below index 100, as SubnetMax does in IPv4). The whole lab is
IPv6: every eth0 has only 2001:db8::K/64 (the API 2001:db8::fe, no 192.0.2.0/24 at all), the
Nodes' InternalIP is that address, weftd runs with --public-ipv6 2001:db8::K and reaches the API
over IPv6 at the literal https://[2001:db8::fe]:6443, as an in-cluster weftd would from an IPv6
KUBERNETES_SERVICE_HOST. The double listens on [2001:db8::fe]:6443; kube-apiserver binds ::, advertises 2001:db8::fe, with an IPv6
Service range fd00:10:96::/108. Pods get only an IPv6 address; the
HTTP servers listen on ::. With --pod-cidr the Nodes get one IPv6 /64: the double's node K
fd00:10:244:<100+K in hex>::/64, the controller-manager's single-stack node-ipam
(--cluster-cidr=fd00:10:244::/56 --node-cidr-mask-size=64, no feature gate) one of its own.
`smoke` pings -6 and curls -6 only; `status` shows only the IPv6 columns.

Nothing touches the root namespace's links, routes, addresses or firewall: every veth is
created directly inside the namespaces it joins. State lives in /run/weft-lab/<name>/.
Only the Python standard library is used.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KUBEAPI = os.path.join(ROOT, "test", "kubeapi", "kubeapi.py")
KUBECTL = os.path.join(ROOT, "test", "kubeapi", "kubectl.py")
CONTROLPLANE_DIR = os.path.join(ROOT, "test", "controlplane")
MANIFESTS = os.path.join(ROOT, "manifests")
API_KINDS = ("double", "real")
STATE_ROOT = "/run/weft-lab"
API_IP = "192.0.2.254"
API_PORT = 6443
NETWORK = "10.244.0.0/16"
NETWORK_V6 = "fd00:10:244::/56"  # dual stack (--dual-stack): flannel's default IPv6Network
SUBNET_LEN_V6 = 64
SUBNET_MAX_V6 = "fd00:10:244:63::"  # --ipv6-only: index 99, SUBNET_MAX's twin
API_IP6 = "2001:db8::fe"  # --v6-underlay: the API namespace's IPv6 address (2001:db8::/32: docs)
# Lab nodes lease their random subnets below 10.244.100.0: tests place fixed subnets above it
# (podCIDR mode 10.244.100+, drills' hand-made peers 10.244.150+), so they never collide.
SUBNET_MAX = "10.244.99.0"
HEALTHZ_PORT = 8471
HTTP_PORT = 8080
CNI_PATH = "/usr/lib/cni"


class LabError(Exception):
    pass


def sh(*args, check=True, capture=False, timeout=60, env=None, input_text=None):
    """Runs a command; raises LabError with its stderr when it fails."""
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env,
                         input=input_text)
    if check and res.returncode != 0:
        raise LabError(f"{' '.join(args)}: exit {res.returncode}: {res.stderr.strip() or res.stdout.strip()}")
    return res if capture or not check else res


def in_ns(ns, *args, **kw):
    return sh("ip", "netns", "exec", ns, *args, **kw)


class Lab:
    """One lab: its names, its state file, and the operations on it."""

    api_extra_args = ()  # more kubeapi.py flags for start_api (e.g. --state-file FILE)
    healthz_ip = "127.0.0.1"  # weftd's --healthz-ip ("0.0.0.0": reachable from the API namespace)
    subnet_max = SUBNET_MAX  # net-conf.json's SubnetMax: room for 100 nodes' leases
    backend_mtu = None  # net-conf.json's Backend.MTU (the outer packets' MTU, as in flannel)
    flannel_compat = False  # net-conf.json's FlannelCompat: flannel's annotations, podCIDR subnets

    def __init__(self, name="lab", build_dir=None, api="double"):
        if api not in API_KINDS:
            raise LabError(f"--api must be one of {', '.join(API_KINDS)}, not {api!r}")
        self.name = name
        self.prefix = "wl" + name if len(name) <= 8 else "wl" + name[:8]
        self.dir = os.path.join(STATE_ROOT, name)
        self.build_dir = build_dir or os.path.join(ROOT, "build")
        self.state_file = os.path.join(self.dir, "state.json")
        self.state = {"nodes": {}, "pods": {}, "pids": {}, "api": api, "pod_cidr_mode": False,
                      "dual_stack": False, "v6_underlay": False, "ipv6_only": False}
        if os.path.exists(self.state_file):
            with open(self.state_file) as fh:
                self.state = json.load(fh)

    @property
    def api(self):
        return self.state.get("api", "double")

    @property
    def real_api(self):
        return self.api == "real"

    @property
    def dual_stack(self):
        return self.state.get("dual_stack", False)

    @property
    def v6_underlay(self):
        return self.state.get("v6_underlay", False) or self.ipv6_only

    @property
    def ipv6_only(self):
        return self.state.get("ipv6_only", False)

    @property
    def families(self):
        """The overlay's IP families: (4,), (4, 6) with --dual-stack, (6,) with --ipv6-only."""
        return (6,) if self.ipv6_only else (4, 6) if self.dual_stack else (4,)

    @property
    def api_ip(self):
        """The API's address as nodes reach it: IPv6 in an IPv6-only lab (no IPv4 on the nodes)."""
        return API_IP6 if self.ipv6_only else API_IP

    @property
    def api_url(self):
        """The API's URL for the lab's own tools (kubectl.py, in the API namespace)."""
        host = f"[{self.api_ip}]" if ":" in self.api_ip else self.api_ip
        return f"https://{host}:{API_PORT}"

    # ---- names and paths
    def ns(self, role):
        return f"{self.prefix}-{role}"

    def node_dir(self, node):
        return os.path.join(self.dir, node)

    @property
    def weftd(self):
        return os.path.join(self.build_dir, "cmd", "weftd", "weftd")

    @property
    def cni_bin_dir(self):
        return os.path.join(self.dir, "cni-bin")

    def save(self):
        os.makedirs(self.dir, exist_ok=True)
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(self.state, fh, indent=2)
        os.replace(tmp, self.state_file)

    # ---- the API test double
    def kubectl(self, *args, check=True):
        res = in_ns(self.ns("api"), sys.executable, KUBECTL, "--ready-file",
                    os.path.join(self.dir, "api", "ready.json"), *args, check=check, capture=True)
        return res.stdout

    def start_api(self):
        """Starts the lab's API server; returns when it serves requests."""
        if self.real_api:
            self.start_real_api()
            return
        api_dir = os.path.join(self.dir, "api")
        os.makedirs(api_dir, exist_ok=True)
        ready = os.path.join(api_dir, "ready.json")
        log = open(os.path.join(api_dir, "kubeapi.log"), "ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns("api"), sys.executable, KUBEAPI,
             "--listen", self.api_url.split("//", 1)[1], "--cert-dir", os.path.join(api_dir, "certs"),
             "--san", f"IP:{self.api_ip}", "--san", "IP:127.0.0.1", "--ready-file", ready,
             "--kubeconfig-out", os.path.join(api_dir, "kubeconfig"), *self.api_extra_args],
            stdout=log, stderr=log, start_new_session=True)
        self.state["pids"]["api"] = proc.pid
        self.save()
        wait_for(lambda: os.path.exists(ready), 20, "the API test double to start")

    # ---- the real control plane
    def control_plane(self):
        return controlplane_module().ControlPlane(os.path.join(self.dir, "api"), self.ns("api"), self.api_ip,
                                         port=API_PORT, cluster_cidr=NETWORK,
                                         allocate_node_cidrs=self.state.get("pod_cidr_mode", False),
                                         dual_stack=self.dual_stack, cluster_cidr_v6=NETWORK_V6,
                                         node_cidr_mask_v6=SUBNET_LEN_V6, ipv6_only=self.ipv6_only)

    def start_real_api(self, controller_manager=True, timeout=90):
        """etcd + kube-apiserver (+ kube-controller-manager), then on the first start the
        manifests' Namespace and RBAC through kubectl, and the files the lab's tools read: a
        kubeconfig for weftd (the ServiceAccount's token) and ready.json for kubectl.py."""
        cp = self.control_plane()
        first = not os.path.exists(os.path.join(self.dir, "api", "ready.json"))
        try:
            cp.start(controller_manager=controller_manager, timeout=timeout)  # waits for /readyz
        finally:
            self.note_control_plane_pids(cp)
        if first:
            for manifest in ("00-namespace.yaml", "01-rbac.yaml"):
                cp.apply(os.path.join(MANIFESTS, manifest))
            self.write_real_api_files(cp)

    def start_controller_manager(self):
        cp = self.control_plane()
        try:
            cp.start_controller_manager()
        finally:
            self.note_control_plane_pids(cp)

    def restart_real_apiserver(self, timeout=90):
        """Starts kube-apiserver again on the same etcd and certificates (after stop_real_api)."""
        cp = self.control_plane()
        try:
            cp.start_apiserver()
            cp.wait_ready(timeout)
        finally:
            self.note_control_plane_pids(cp)

    def note_control_plane_pids(self, cp):
        for role, pid in cp.pids().items():
            self.state["pids"][f"cp-{role}"] = pid
        self.save()

    def stop_real_api(self, sig=signal.SIGTERM):
        """Stops kube-apiserver alone (etcd and the controller-manager keep running)."""
        pid = self.state["pids"].pop("cp-kube-apiserver", None)
        self.save()
        if not pid:
            raise LabError("no kube-apiserver PID in the lab's state: is the lab's API real and up?")
        kill_group(pid, sig)

    def write_real_api_files(self, cp):
        api_dir = os.path.join(self.dir, "api")
        shutil.copy(cp.weft_kubeconfig, os.path.join(api_dir, "kubeconfig"))
        admin = cp.tokens[controlplane_module().ADMIN_USER]
        ready = {"url": self.api_url, "port": API_PORT, "ca": cp.ca_file,
                 "admin_token": admin, "tokens": {"kubernetes-admin": admin,
                                                  cp.weft_user: cp.tokens[cp.weft_user]},
                 "real": True}
        tmp = os.path.join(api_dir, "ready.json.tmp")
        with open(tmp, "w") as fh:
            json.dump(ready, fh, indent=2)
        os.replace(tmp, os.path.join(api_dir, "ready.json"))

    # ---- topology
    def add_underlay_port(self, ns, ifname, ip, port_name, ip6=None):
        """A veth from namespace `ns` to the underlay bridge, made inside the namespaces; ip6
        (--v6-underlay) is added without duplicate address detection, usable at once. ip is
        None in an IPv6-only lab."""
        sh("ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", port_name,
           "netns", self.ns("ul"))
        sh("ip", "-n", self.ns("ul"), "link", "set", port_name, "master", "br0", "up")
        if ip:
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", ifname)
        if ip6:
            sh("ip", "-n", ns, "-6", "addr", "add", f"{ip6}/64", "dev", ifname, "nodad")
        sh("ip", "-n", ns, "link", "set", ifname, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def create_underlay(self):
        for role in ("ul", "api"):
            sh("ip", "netns", "add", self.ns(role))
        sh("ip", "-n", self.ns("ul"), "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.ns("ul"), "link", "set", "br0", "up")
        self.add_underlay_port(self.ns("api"), "eth0", None if self.ipv6_only else API_IP, "api",
                               API_IP6 if self.v6_underlay else None)

    def install_cni_bin(self):
        """The runtime's CNI_PATH: Debian's reference plugins plus our weft."""
        os.makedirs(self.cni_bin_dir, exist_ok=True)
        for plugin in ("bridge", "host-local", "portmap", "loopback"):
            link = os.path.join(self.cni_bin_dir, plugin)
            if not os.path.exists(link):
                os.symlink(os.path.join(CNI_PATH, plugin), link)
        weft = os.path.join(self.build_dir, "cmd", "weft", "weft")
        shutil.copy(weft, os.path.join(self.cni_bin_dir, "weft.tmp"))
        os.replace(os.path.join(self.cni_bin_dir, "weft.tmp"), os.path.join(self.cni_bin_dir, "weft"))

    def add_node(self, index, pod_cidr_mode=False, start=True, extra_args=()):
        node = f"node{index}"
        ns = self.ns(f"n{index}")
        ip = None if self.ipv6_only else f"192.0.2.{index}"
        ip6 = f"2001:db8::{index}" if self.v6_underlay else None
        sh("ip", "netns", "add", ns)
        self.add_underlay_port(ns, "eth0", ip, f"n{index}", ip6)
        if 4 in self.families:
            in_ns(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if 6 in self.families:
            in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.write_net_conf(node)
        # With the double the lab plays node-ipam; the real controller-manager assigns them itself.
        cidr_args = []
        if pod_cidr_mode and not self.real_api:
            if 4 in self.families:
                cidr_args = ["--pod-cidr", f"10.244.{100 + index}.0/24"]
            if 6 in self.families:
                cidr_args += ["--pod-cidr", pod_cidr_v6(100 + index)]
        ip_args = [arg for addr in (ip, ip6) if addr for arg in ("--internal-ip", addr)]
        self.kubectl("create-node", node, *ip_args, *cidr_args)
        self.state["nodes"][node] = {"ns": ns, "ip": ip, "index": index}
        if ip6:
            self.state["nodes"][node]["ip6"] = ip6
        self.save()
        if pod_cidr_mode and self.real_api and start:
            self.wait_pod_cidr(node)
        if start:
            self.start_weftd(node, extra_args)
        return node

    def write_net_conf(self, node):
        """The node's net-conf.json, as the lab's settings make it."""
        os.makedirs(self.node_dir(node), exist_ok=True)
        if self.ipv6_only:
            conf = {"EnableIPv4": False, "Backend": {"Type": "vxlan"}}
        else:
            conf = {"Network": NETWORK, "SubnetMax": self.subnet_max, "Backend": {"Type": "vxlan"}}
        if self.backend_mtu:
            conf["Backend"]["MTU"] = self.backend_mtu
        if self.flannel_compat:
            conf["FlannelCompat"] = True
        if 6 in self.families:
            conf.update({"EnableIPv6": True, "IPv6Network": NETWORK_V6, "IPv6SubnetLen": SUBNET_LEN_V6})
        if self.ipv6_only:
            conf["IPv6SubnetMax"] = SUBNET_MAX_V6  # dual stack pairs the /64 with the IPv4 lease
        with open(os.path.join(self.node_dir(node), "net-conf.json"), "w") as fh:
            json.dump(conf, fh)

    def pod_cidr(self, node):
        obj = json.loads(self.kubectl("get-node", node))
        return obj.get("spec", {}).get("podCIDR")

    def pod_cidrs(self, node):
        obj = json.loads(self.kubectl("get-node", node))
        return obj.get("spec", {}).get("podCIDRs") or []

    def wait_pod_cidr(self, node, timeout=30):
        want = len(self.families)  # dual stack: node-ipam assigns both in one update
        wait_for(lambda: len(self.pod_cidrs(node)) >= want, timeout,
                 f"kube-controller-manager to assign {node} {want} podCIDR(s) (log: {self.dir}/api/)")

    def start_weftd(self, node, extra_args=()):
        info = self.state["nodes"][node]
        d = self.node_dir(node)
        log = open(os.path.join(d, "weftd.log"), "ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", info["ns"], self.weftd,
             "--kubeconfig-file", os.path.join(self.dir, "api", "kubeconfig"),
             "--node-name", node, "--iface", "eth0", "--ip-masq",
             "--net-config-path", os.path.join(d, "net-conf.json"),
             "--subnet-file", os.path.join(d, "subnet.env"),
             "--healthz-ip", self.healthz_ip, "--healthz-port", str(HEALTHZ_PORT),
             *(["--public-ipv6", info["ip6"]] if info.get("ip6") else []), *extra_args],
            stdout=log, stderr=log, start_new_session=True)
        self.state["pids"][f"weftd-{node}"] = proc.pid
        self.save()
        return proc

    def stop_weftd(self, node, sig=signal.SIGTERM):
        pid = self.state["pids"].pop(f"weftd-{node}", None)
        self.save()
        if pid:
            kill_group(pid, sig)

    def wait_ready(self, node, timeout=20):
        ns = self.state["nodes"][node]["ns"]
        log = os.path.join(self.node_dir(node), "weftd.log")

        def ready():
            res = in_ns(ns, "curl", "-sf", "--max-time", "1",
                        f"http://127.0.0.1:{HEALTHZ_PORT}/readyz", check=False)
            if res.returncode == 0:
                return True
            pid = self.state["pids"].get(f"weftd-{node}")
            if pid and not process_alive(pid):  # it refused to start: say why, now
                raise LabError(f"weftd on {node} exited before it was ready: {log_tail(log, 3)}")
            return False
        wait_for(ready, timeout, f"weftd on {node} to be ready (log: {self.node_dir(node)}/weftd.log)")

    # ---- pods, through the CNI chain
    def container_id(self, node, pod):
        return (self.name + node + pod).encode().hex()[:64].ljust(64, "0")

    def cni(self, node, pod, command, check=True):
        """Invokes the conflist (weft, then portmap) the way a container runtime does."""
        info = self.state["nodes"][node]
        d = self.node_dir(node)
        pod_ns = self.ns(f"n{info['index']}-{pod}")
        container_id = self.container_id(node, pod)
        base_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "CNI_CONTAINERID": container_id, "CNI_NETNS": f"/var/run/netns/{pod_ns}",
                    "CNI_IFNAME": "eth0", "CNI_PATH": self.cni_bin_dir,
                    "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"}
        weft_conf = {"cniVersion": "1.0.0", "name": "weft", "type": "weft",
                     "subnetFile": os.path.join(d, "subnet.env"), "dataDir": os.path.join(d, "cni-state"),
                     "ipamDataDir": os.path.join(d, "ipam")}
        weft_conf.update(info.get("cni_conf", {}))  # a node taken over from flannel: cbr0 on cni0
        portmap_conf = {"cniVersion": "1.0.0", "name": weft_conf["name"], "type": "portmap",
                        "capabilities": {"portMappings": True}}
        chain = [weft_conf, portmap_conf] if command == "ADD" else [portmap_conf, weft_conf]
        prev = None
        for conf in chain:
            if prev is not None:
                conf = dict(conf, prevResult=prev)
            env = dict(base_env, CNI_COMMAND=command)
            res = in_ns(info["ns"], os.path.join(self.cni_bin_dir, conf["type"]), env=env,
                        input_text=json.dumps(conf), check=False, capture=True)
            if res.returncode != 0:
                if check:
                    raise LabError(f"CNI {command} {conf['type']} for {node}/{pod}: {res.stdout.strip()}"
                                   f" {res.stderr.strip()}")
                return res
            if command == "ADD":
                prev = json.loads(res.stdout)
        return prev

    def add_pod(self, node, pod):
        info = self.state["nodes"][node]
        pod_ns = self.ns(f"n{info['index']}-{pod}")
        sh("ip", "netns", "add", pod_ns)
        sh("ip", "-n", pod_ns, "link", "set", "lo", "up")
        result = self.cni(node, pod, "ADD")
        by_family = {6 if ":" in a["address"] else 4: a for a in result["ips"]}
        key = f"{node}/{pod}"
        wrong = set(self.families) ^ set(by_family) if self.ipv6_only else set(self.families) - set(by_family)
        if wrong:
            raise LabError(f"CNI ADD for {node}/{pod} gave IPv{'/'.join(map(str, sorted(by_family)))} addresses "
                           f"in a lab of IPv{'/'.join(map(str, self.families))}: {json.dumps(result['ips'])} "
                           f"(subnet.env: {self.node_dir(node)}/subnet.env)")
        ip = by_family[4]["address"].split("/")[0] if 4 in by_family else None
        self.state["pods"][key] = {"ns": pod_ns, "ip": ip, "node": node, "pod": pod}
        if 6 in self.families:
            self.state["pods"][key]["ip6"] = by_family[6]["address"].split("/")[0]
        self.save()
        if 6 in self.families:
            # The node bridge's IPv6 gateway address is usable only after its duplicate
            # address detection (~1-2 s after the node's first pod): wait, so smoke is not early.
            gw6 = by_family[6].get("gateway")
            if gw6:
                wait_for(lambda: in_ns(pod_ns, "ping", "-6", "-c1", "-W1", gw6, check=False).returncode == 0,
                         10, f"{key} to reach its IPv6 gateway {gw6}", interval=0.1)
        self.start_http(key)
        return ip or self.state["pods"][key]["ip6"]

    def delete_pod(self, key):
        p = self.state["pods"][key]
        pid = self.state["pids"].pop(f"http-{key}", None)
        if pid:
            kill_group(pid, signal.SIGTERM)
        self.cni(p["node"], p["pod"], "DEL")
        sh("ip", "netns", "del", p["ns"], check=False)
        del self.state["pods"][key]
        self.save()

    def start_http(self, key):
        p = self.state["pods"][key]
        www = os.path.join(self.dir, "www", key.replace("/", "-"))
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "index.html"), "w") as fh:
            fh.write(f"hello from {key}\n")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", p["ns"], sys.executable, "-m", "http.server", str(HTTP_PORT),
             # "::" serves both families (http.server clears IPV6_V6ONLY)
             "--bind", "::" if 6 in self.families else "0.0.0.0", "--directory", www],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.state["pids"][f"http-{key}"] = proc.pid
        self.save()

        loopback = "[::1]" if self.ipv6_only else "127.0.0.1"

        def listening():
            return in_ns(p["ns"], "curl", "-sfg", "--max-time", "1",
                         f"http://{loopback}:{HTTP_PORT}/", check=False).returncode == 0
        wait_for(listening, 10, f"the HTTP server in {key}")

    # ---- the lab as a whole
    def up(self, nodes=3, pods=2, pod_cidr_mode=False, dual_stack=False, v6_underlay=False, ipv6_only=False):
        if os.path.exists(self.state_file):
            raise LabError(f"lab {self.name} exists: run `lab.py --name {self.name} down` first")
        if dual_stack and ipv6_only:
            raise LabError("--dual-stack and --ipv6-only exclude each other")
        if v6_underlay and not (dual_stack or ipv6_only):
            raise LabError("--v6-underlay needs --dual-stack (--ipv6-only implies it)")
        for binary in (self.weftd, os.path.join(self.build_dir, "cmd", "weft", "weft")):
            if not os.access(binary, os.X_OK):
                raise LabError(f"{binary} not found: build first (scripts/build.sh)")
        self.state["pod_cidr_mode"] = pod_cidr_mode
        self.state["dual_stack"] = bool(dual_stack)
        self.state["v6_underlay"] = bool(v6_underlay or ipv6_only)
        self.state["ipv6_only"] = bool(ipv6_only)
        self.save()
        self.create_underlay()
        self.start_api()
        self.install_cni_bin()
        for i in range(1, nodes + 1):
            self.add_node(i, pod_cidr_mode=pod_cidr_mode)
        for node in list(self.state["nodes"]):
            self.wait_ready(node)
        for node in list(self.state["nodes"]):
            for m in range(1, pods + 1):
                self.add_pod(node, f"p{m}")

    def down(self):
        # weftd and the pods first, then the control plane (no watch left to drain); each batch
        # gets SIGTERM, one shared grace period, then SIGKILL.
        pids = self.state.get("pids", {})
        kill_groups([pid for k, pid in pids.items() if not k.startswith("cp-")], signal.SIGTERM)
        kill_groups([pid for k, pid in pids.items() if k.startswith("cp-")], signal.SIGTERM)
        kill_strays(self.dir)
        # Every namespace with our prefix, even ones a half-finished `up` left out of the state.
        listing = sh("ip", "netns", "list", check=False, capture=True).stdout
        for line in listing.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(self.prefix + "-"):
                sh("ip", "netns", "del", name, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def node_annotations(self, node):
        obj = json.loads(self.kubectl("get-node", node))
        return obj.get("metadata", {}).get("annotations", {})

    def status_header(self):
        header = ["node"]
        if 4 in self.families:
            header += ["subnet", "public IP", "VTEP MAC", "peers"]
        if 6 in self.families:
            header += ["subnet-v6", "public IPv6", "VTEP MAC v6", "peers v6"]
        return header + ["pods"]

    def status_rows(self):
        rows = []
        for node, info in sorted(self.state["nodes"].items()):
            ann = self.node_annotations(node)
            pods = [f"{p['pod']}=" + ",".join(a for a in (p.get("ip"), p.get("ip6")) if a)
                    for p in self.state["pods"].values() if p["node"] == node]
            row = [node]
            if 4 in self.families:
                data = backend_data(ann, "weft.io/backend-data")
                routes = in_ns(info["ns"], "ip", "-4", "route", "show", check=False,
                               capture=True).stdout
                peers = sum(1 for line in routes.splitlines() if " dev weft." in line)
                row += [ann.get("weft.io/subnet", "-"), ann.get("weft.io/public-ip", "-"),
                        data.get("VtepMAC", "-"), str(peers)]
            if 6 in self.families:
                routes6 = in_ns(info["ns"], "ip", "-6", "route", "show", check=False,
                                capture=True).stdout
                # The peers' /64s (via their VTEP address), not the kernel's fe80::/64 and /128.
                peers6 = sum(1 for line in routes6.splitlines() if " via " in line and " dev weft-v6." in line)
                row += [ann.get("weft.io/subnet-v6") or "-", ann.get("weft.io/public-ipv6") or "-",
                        backend_data(ann, "weft.io/backend-v6-data").get("VtepMAC", "-"), str(peers6)]
            rows.append(row + [" ".join(sorted(pods)) or "-"])
        return rows

    @property
    def checks_per_pair(self):
        """Checks smoke makes per pair of pods: ping and curl, per family of the lab."""
        return 2 * len(self.families)

    def smoke(self):
        """Ping and curl from every pod to every pod on another node, over each family of the lab
        (IPv4: the pod's "ip", IPv6: its "ip6", with ping -6 and curl -6); returns (matrix,
        failures). A cell reads e.g. "ping+curl+ping6+curl6" in a dual-stack lab."""
        pods = sorted(self.state["pods"].items())
        matrix, failures = [], 0
        for src_key, src in pods:
            row = [src_key]
            for dst_key, dst in pods:
                if dst["node"] == src["node"]:
                    row.append("-")
                    continue
                families = []
                if 4 in self.families:
                    families.append(("", dst.get("ip"), dst.get("ip")))
                if 6 in self.families:
                    families.append(("6", dst.get("ip6"), f"[{dst.get('ip6')}]"))
                cell = []
                for fam, ip, host in families:
                    ping = bool(ip) and in_ns(src["ns"], "ping", *(["-6"] if fam else []), "-c", "1", "-W", "2",
                                              ip, check=False).returncode == 0
                    body = in_ns(src["ns"], "curl", "-s", *(["-6", "-g"] if fam else []), "--max-time", "3",
                                 f"http://{host}:{HTTP_PORT}/", check=False, capture=True).stdout if ip else ""
                    curl = f"hello from {dst_key}" in body
                    failures += (not ping) + (not curl)
                    cell.append((f"ping{fam}" if ping else f"PING{fam}-FAIL") + "+"
                                + (f"curl{fam}" if curl else f"CURL{fam}-FAIL"))
                row.append("+".join(cell))
            matrix.append(row)
        return [["from \\ to"] + [k for k, _ in pods]] + matrix, failures


def pod_cidr_v6(index):
    """The IPv6 /64 with `index` in NETWORK_V6 (the lab's IPv4 10.244.<index>.0/24's twin)."""
    return f"fd00:10:244:{index:x}::/{SUBNET_LEN_V6}"


def log_tail(path, lines):
    try:
        with open(path, errors="replace") as fh:
            return " | ".join(line.strip() for line in fh.readlines()[-lines:]) or "(empty log)"
    except OSError:
        return f"(no log at {path})"


def backend_data(ann, key):
    try:
        data = json.loads(ann.get(key, "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def kill_group(pid, sig):
    """Signals one process group; SIGKILL if it has not exited after 2.5 s."""
    kill_groups([pid], sig, grace=2.5)


def controlplane_module():
    """test/controlplane/controlplane.py, loaded only for --api real."""
    if CONTROLPLANE_DIR not in sys.path:
        sys.path.insert(0, CONTROLPLANE_DIR)
    import controlplane  # noqa: E402
    return controlplane


def kill_groups(pids, sig, grace=5.0):
    """Signals every process group, then waits for all of them at once (SIGKILL after `grace`)."""
    for pid in pids:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError, TypeError):
            pass
    deadline = time.monotonic() + grace
    for pid in pids:
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.05)
        if process_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def kill_strays(lab_dir):
    """SIGKILL to any process still running with the lab's directory on its command line (a
    control-plane process whose PID the state lost, e.g. after an interrupted restart)."""
    marker = (os.path.abspath(lab_dir) + "/").encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker in cmdline and b"lab.py" not in cmdline:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass


def process_alive(pid):
    """The process runs (not exited, not a zombie); a child of ours that exited is reaped."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    except TypeError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise LabError(f"timed out after {timeout}s waiting for {what}")


def print_table(rows, header=None):
    rows = ([header] if header else []) + rows
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def main(argv=None):
    p = argparse.ArgumentParser(description="weft's multi-node lab in network namespaces")
    p.add_argument("--name", default="lab", help="lab name (several labs can coexist)")
    p.add_argument("--build-dir", help="where weftd and weft were built (default: ./build)")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--pods", type=int, default=2)
    up.add_argument("--pod-cidr", action="store_true", help="nodes get spec.podCIDR (kubeadm mode)")
    up.add_argument("--api", choices=API_KINDS, default="double",
                    help="real: etcd + kube-apiserver + kube-controller-manager 1.20.2 (build them "
                         "once with test/controlplane/build.sh); double: the API test double")
    stack = up.add_mutually_exclusive_group()
    stack.add_argument("--dual-stack", action="store_true",
                    help="IPv4 + IPv6 overlay: EnableIPv6 with IPv6Network fd00:10:244::/56 and /64 "
                         "per node, an IPv6 address per pod (with --pod-cidr: spec.podCIDRs has "
                         "both families; --api real turns on the IPv6DualStack gate). The "
                         "underlay stays IPv4 unless --v6-underlay")
    up.add_argument("--v6-underlay", action="store_true",
                    help="with --dual-stack: every node's eth0 also gets 2001:db8::K/64 (the API "
                         "2001:db8::fe) and weftd --public-ipv6 2001:db8::K, so the IPv6 overlay "
                         "rides IPv6 VXLAN (weft-v6.1); the API URL stays IPv4")
    stack.add_argument("--ipv6-only", action="store_true",
                       help="an IPv6-only cluster: net-conf EnableIPv4 false, IPv6Network "
                            "fd00:10:244::/56, /64 per node, IPv6-only pods; every eth0 has only "
                            "2001:db8::K/64 and the API is https://[2001:db8::fe]:6443 (--api real: "
                            "an IPv6 Service range, single-stack IPv6 node-ipam with --pod-cidr)")
    sub.add_parser("status")
    sub.add_parser("smoke")
    sub.add_parser("down")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("lab.py: run as root (it creates network namespaces)")
    lab = Lab(args.name, args.build_dir, getattr(args, "api", "double"))
    try:
        if args.cmd == "up":
            if not 1 <= args.nodes <= 200 or not 0 <= args.pods <= 50:
                raise LabError("--nodes must be 1..200 and --pods 0..50")
            try:
                lab.up(args.nodes, args.pods, args.pod_cidr, args.dual_stack, args.v6_underlay,
                       args.ipv6_only)
            except BaseException:
                lab.down()
                raise
            stack = (" (IPv6 only)" if args.ipv6_only else " (dual stack, IPv6 underlay)" if args.v6_underlay
                     else " (dual stack)" if args.dual_stack else "")
            print(f"lab {args.name}: {args.nodes} nodes x {args.pods} pods up{stack}")
        elif args.cmd == "status":
            print_table(lab.status_rows(), lab.status_header())
        elif args.cmd == "smoke":
            matrix, failures = lab.smoke()
            print_table(matrix[1:], matrix[0])
            checks = sum(1 for row in matrix[1:] for c in row[1:] if c != "-") * lab.checks_per_pair
            print(f"smoke: {checks - failures} passed, {failures} failed")
            return 1 if failures else 0
        elif args.cmd == "down":
            lab.down()
            print(f"lab {args.name}: removed")
    except LabError as e:
        print(f"lab.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
