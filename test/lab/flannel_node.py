"""A lab node set up the way flanneld v0.24.2 (kube subnet manager, vxlan backend) leaves one,
for the mixed-cluster and migration tests of issue #20.

The lab cannot run flanneld itself. Debian bookworm does not package it, and CI builds nothing
from outside Debian. So this fixture does what flanneld does, from the facts in issue #20:
- the Node's podCIDR is its subnet; flanneld never leases one itself;
- the annotations `flannel.alpha.coreos.com/{backend-type,backend-data,public-ip,
  kube-subnet-manager}`;
- `flannel.1`: VXLAN VNI 1, dstport 8472, nolearning, local = the node's IP, address =
  podCIDR.0/32, MTU 1450;
- `cni0`: the podCIDR's .1, with a pod on a veth;
- per peer: the route `PEER_CIDR via PEER_CIDR.0 dev flannel.1 onlink`, a permanent neighbour
  `PEER_CIDR.0 lladdr MAC`, and the FDB entry `MAC dst PUBLIC_IP self permanent`.

How it differs from a real flanneld: it programs its peers when `program_peers()` is called,
not from a watch. A test calls it after every change to the peers. It also writes no iptables
chains (FLANNEL-POSTRTG, FLANNEL-FWD): the lab's namespaces accept forwarding anyway.
"""

import ipaddress
import json
import os

import lab as labmod

PREFIX = "flannel.alpha.coreos.com/"
VTEP = "flannel.1"


class FlannelNode:
    def __init__(self, lab, index):
        self.lab, self.index = lab, index
        self.name = f"flannel{index}"
        self.ns = lab.ns(f"f{index}")
        self.ip = f"192.0.2.{index}"
        self.cidr = None

    def sh(self, *args):
        return labmod.sh("ip", "-n", self.ns, *args)

    def up(self):
        """Underlay port, Node object (its podCIDR), flannel.1, cni0 and the annotations."""
        labmod.sh("ip", "netns", "add", self.ns)
        self.lab.add_underlay_port(self.ns, "eth0", self.ip, f"f{self.index}")
        labmod.in_ns(self.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        cidr_args = [] if self.lab.real_api else ["--pod-cidr", f"10.244.{100 + self.index}.0/24"]
        self.lab.kubectl("create-node", self.name, "--internal-ip", self.ip, *cidr_args)
        if self.lab.real_api:
            self.lab.wait_pod_cidr(self.name)
        self.cidr = ipaddress.ip_network(self.lab.pod_cidr(self.name))
        net = self.cidr.network_address
        self.sh("link", "add", VTEP, "type", "vxlan", "id", "1", "local", self.ip, "dev", "eth0",
                "dstport", "8472", "nolearning")
        self.sh("link", "set", VTEP, "mtu", "1450", "up")
        self.sh("addr", "add", f"{net}/32", "dev", VTEP)
        self.sh("link", "add", "cni0", "type", "bridge")
        self.sh("link", "set", "cni0", "mtu", "1450", "up")
        self.sh("addr", "add", f"{net + 1}/{self.cidr.prefixlen}", "dev", "cni0")
        self.lab.kubectl("annotate", self.name,
                         f"{PREFIX}backend-type=vxlan",
                         f"{PREFIX}backend-data=" + json.dumps({"VNI": 1, "VtepMAC": self.vtep_mac()},
                                                               separators=(",", ":")),
                         f"{PREFIX}public-ip={self.ip}",
                         f"{PREFIX}kube-subnet-manager=true")
        self.lab.state.setdefault("flannel_nodes", {})[self.name] = {"ns": self.ns, "ip": self.ip,
                                                                   "cidr": str(self.cidr)}
        self.lab.save()

    def vtep_mac(self):
        out = labmod.in_ns(self.ns, "ip", "-j", "link", "show", VTEP, capture=True).stdout
        return json.loads(out)[0]["address"]

    def add_pod(self, pod="p1"):
        """A pod on cni0 as flannel's CNI chain (bridge + host-local) wires one; served by HTTP."""
        host = list(self.cidr.hosts())
        n = len([k for k in self.lab.state["pods"] if k.startswith(self.name + "/")])
        ip = host[1 + n]  # .1 is cni0's
        pod_ns = self.lab.ns(f"f{self.index}-{pod}")
        veth = f"veth{self.index}{pod}"
        labmod.sh("ip", "netns", "add", pod_ns)
        labmod.sh("ip", "-n", self.ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                  "netns", pod_ns)
        self.sh("link", "set", veth, "mtu", "1450", "master", "cni0", "up")
        labmod.sh("ip", "-n", pod_ns, "link", "set", "eth0", "mtu", "1450", "up")
        labmod.sh("ip", "-n", pod_ns, "link", "set", "lo", "up")
        labmod.sh("ip", "-n", pod_ns, "addr", "add", f"{ip}/{self.cidr.prefixlen}", "dev", "eth0")
        labmod.sh("ip", "-n", pod_ns, "route", "add", "default", "via", str(host[0]))
        key = f"{self.name}/{pod}"
        self.lab.state["pods"][key] = {"ns": pod_ns, "ip": str(ip), "node": self.name, "pod": pod}
        self.lab.save()
        self.lab.start_http(key)
        return key

    def peers(self):
        """What flanneld's watch would see: other Nodes with kube-subnet-manager, a podCIDR and
        the vxlan backend's annotations."""
        out = []
        for item in json.loads(self.lab.kubectl("list-nodes"))["items"]:
            ann = item["metadata"].get("annotations") or {}
            cidr = item.get("spec", {}).get("podCIDR")
            if item["metadata"]["name"] == self.name or ann.get(PREFIX + "kube-subnet-manager") != "true":
                continue
            if not cidr or ann.get(PREFIX + "backend-type") != "vxlan":
                continue
            mac = json.loads(ann[PREFIX + "backend-data"])["VtepMAC"]
            public_ip = ann.get(PREFIX + "public-ip-overwrite") or ann[PREFIX + "public-ip"]
            out.append((item["metadata"]["name"], ipaddress.ip_network(cidr), mac, public_ip))
        return out

    def program_peers(self):
        """The route, neighbour and FDB entry per peer, as flanneld's vxlan backend writes them."""
        names = []
        for name, cidr, mac, public_ip in self.peers():
            gw = str(cidr.network_address)
            self.sh("neigh", "replace", gw, "lladdr", mac, "dev", VTEP, "nud", "permanent")
            labmod.sh("bridge", "-n", self.ns, "fdb", "replace", mac, "dev", VTEP, "dst", public_ip,
                      "self", "permanent")
            self.sh("route", "replace", str(cidr), "via", gw, "dev", VTEP, "onlink")
            names.append(name)
        return names

    def take_over(self):
        """Starts weftd (FlannelCompat) on this node, as the weft DaemonSet would once flanneld
        is gone. weftd must adopt flannel.1 with its MAC and the entries as they are."""
        lab = self.lab
        lab.state["nodes"][self.name] = {"ns": self.ns, "ip": self.ip, "index": self.index}
        lab.save()
        os.makedirs(lab.node_dir(self.name), exist_ok=True)
        conf = {"Network": labmod.NETWORK, "Backend": {"Type": "vxlan"}, "FlannelCompat": True}
        with open(os.path.join(lab.node_dir(self.name), "net-conf.json"), "w") as fh:
            json.dump(conf, fh)
        lab.start_weftd(self.name)
        lab.wait_ready(self.name)
