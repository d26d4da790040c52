"""A lab node set up the way flanneld v0.24.2 (kube subnet manager, vxlan backend) leaves one,
for the mixed-cluster and migration tests of issue #20.

The lab cannot run flanneld itself. Debian bookworm does not package it, and CI builds nothing
from outside Debian. So this fixture does what flanneld does, from the facts in issue #20:
- the Node's podCIDR is its subnet; flanneld never leases one itself;
- the annotations `flannel.alpha.coreos.com/{backend-type,backend-data,public-ip,
  kube-subnet-manager}`;
- `flannel.1`: VXLAN VNI 1, dstport 8472, nolearning, local = the node's IP, address =
  podCIDR.0/32, MTU 1450;
- pods wired by flannel's CNI plugin's delegate: the bridge plugin (bridge `cni0` with the
  podCIDR's .1) and host-local under the network name `cbr0`, the delegate config saved per
  container in flannel's dataDir;
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
        """Underlay port, Node object (its podCIDR), flannel.1 and the annotations."""
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
        self.lab.kubectl("annotate", self.name,
                         f"{PREFIX}backend-type=vxlan",
                         f"{PREFIX}backend-data=" + json.dumps({"VNI": 1, "VtepMAC": self.vtep_mac()},
                                                               separators=(",", ":")),
                         f"{PREFIX}public-ip={self.ip}",
                         f"{PREFIX}kube-subnet-manager=true")
        # flanneld reports itself as weftd does, in the NetworkUnavailable condition.
        condition = {"type": "NetworkUnavailable", "status": "False", "reason": "FlannelIsUp",
                     "message": "Flannel is running on this node"}
        self.lab.kubectl("patch", self.name, json.dumps({"status": {"conditions": [condition]}}),
                         "--type", "strategic", "--status")
        self.lab.state.setdefault("flannel_nodes", {})[self.name] = {"ns": self.ns, "ip": self.ip,
                                                                   "cidr": str(self.cidr)}
        self.lab.save()

    def vtep_mac(self):
        out = labmod.in_ns(self.ns, "ip", "-j", "link", "show", VTEP, capture=True).stdout
        return json.loads(out)[0]["address"]

    def delegate_conf(self):
        """The bridge config flannel's CNI plugin v1.x hands on for this node (flannel's
        subnet.env: network 10.244.0.0/16, this podCIDR, MTU 1450, FLANNEL_IPMASQ=true), with
        host-local's records kept in the lab's directory rather than /var/lib/cni/networks."""
        return {"cniVersion": "0.3.1", "name": "cbr0", "type": "bridge", "mtu": 1450,
                "hairpinMode": True, "ipMasq": False, "isGateway": True, "isDefaultGateway": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": str(self.cidr)}]],
                         "routes": [{"dst": labmod.NETWORK}], "dataDir": self.ipam_dir}}

    @property
    def ipam_dir(self):
        return os.path.join(self.lab.node_dir(self.name), "ipam")

    @property
    def flannel_data_dir(self):
        """flannel's CNI plugin dataDir (/var/lib/cni/flannel on a real node)."""
        return os.path.join(self.lab.node_dir(self.name), "flannel-cni")

    def add_pod(self, pod="p1"):
        """A pod wired as flannel's CNI plugin wires one: the bridge plugin on cni0 with
        host-local, the delegate config saved under the container ID in flannel's dataDir (DEL
        needs it). Served by HTTP like the lab's pods."""
        lab = self.lab
        pod_ns = lab.ns(f"n{self.index}-{pod}")
        cid = lab.container_id(self.name, pod)
        labmod.sh("ip", "netns", "add", pod_ns)
        labmod.sh("ip", "-n", pod_ns, "link", "set", "lo", "up")
        conf = self.delegate_conf()
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": "ADD",
               "CNI_CONTAINERID": cid, "CNI_NETNS": f"/var/run/netns/{pod_ns}", "CNI_IFNAME": "eth0",
               "CNI_PATH": lab.cni_bin_dir}
        res = labmod.in_ns(self.ns, os.path.join(lab.cni_bin_dir, "bridge"), env=env, input_text=json.dumps(conf),
                           check=False, capture=True)
        if res.returncode != 0:
            raise labmod.LabError(f"bridge ADD for {self.name}/{pod}: {res.stdout} {res.stderr}")
        os.makedirs(self.flannel_data_dir, mode=0o700, exist_ok=True)
        with open(os.path.join(self.flannel_data_dir, cid), "w") as fh:
            json.dump(conf, fh)
        ip = json.loads(res.stdout)["ips"][0]["address"].split("/")[0]
        key = f"{self.name}/{pod}"
        lab.state["pods"][key] = {"ns": pod_ns, "ip": ip, "node": self.name, "pod": pod}
        lab.save()
        lab.start_http(key)
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
        # weft's conflist on a node taken over from flannel: network cbr0 (host-local's records
        # stay valid), bridge cni0, flannel's dataDir for the DEL of flannel's pods.
        lab.state["nodes"][self.name] = {
            "ns": self.ns, "ip": self.ip, "index": self.index,
            "cni_conf": {"name": "cbr0", "delegate": {"bridge": "cni0"}, "ipamDataDir": self.ipam_dir,
                         "flannelDataDir": self.flannel_data_dir}}
        lab.save()
        if not lab.flannel_compat:
            raise labmod.LabError("take_over needs a lab with flannel_compat: weftd must speak flannel's annotations")
        lab.write_net_conf(self.name)
        lab.start_weftd(self.name)
        lab.wait_ready(self.name)
