#!/usr/bin/env python3
"""Which nodes run weft and which still run flannel, and whether the VXLAN mesh is whole
(issue #20: migrating from flannel node by node).

    python3 scripts/migration-status.py                 # runs `kubectl get nodes -o json`
    kubectl get nodes -o json | python3 scripts/migration-status.py -

Nodes only: each agent reports itself in the Node's NetworkUnavailable condition (weft: reason
WeftIsUp/WeftIsDown; flanneld: FlannelIsUp). The mesh is whole when every Node has a podCIDR
and flannel's annotations (kube-subnet-manager "true", backend-data with a unicast VtepMAC,
public-ip), no two Nodes share a VTEP MAC, public IP or podCIDR, and no agent reports the
network unavailable. That is what flanneld and weftd (FlannelCompat) need to route every Node.
Exit status: 0 whole, 1 not whole, 2 bad input.
"""

import ipaddress
import json
import subprocess
import sys

PREFIX = "flannel.alpha.coreos.com/"
AGENTS = {"WeftIsUp": "weft", "WeftIsDown": "weft (down)", "FlannelIsUp": "flannel"}


def network_condition(node):
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "NetworkUnavailable":
            return c
    return {}


def vtep_mac(ann):
    try:
        mac = json.loads(ann.get(PREFIX + "backend-data", ""))["VtepMAC"]
        first = int(mac.split(":")[0], 16)
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return mac.lower() if len(mac) == 17 and not first & 1 else None


def public_ip(ann):
    text = ann.get(PREFIX + "public-ip-overwrite") or ann.get(PREFIX + "public-ip", "")
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def node_row(node):
    """(name, agent, podCIDR, public IP, VTEP MAC, problems)."""
    meta, spec = node.get("metadata", {}), node.get("spec", {})
    ann = meta.get("annotations") or {}
    cond = network_condition(node)
    agent = AGENTS.get(cond.get("reason"), "-")
    cidr, ip, mac = spec.get("podCIDR"), public_ip(ann), vtep_mac(ann)
    problems = []
    if not cidr:
        problems.append("no spec.podCIDR")
    if ann.get(PREFIX + "kube-subnet-manager") != "true":
        problems.append("no kube-subnet-manager=true: flannel and weft skip it")
    if ann.get(PREFIX + "backend-type") != "vxlan":
        problems.append("backend-type is not vxlan")
    if not mac:
        problems.append("no unicast VtepMAC in backend-data")
    if not ip:
        problems.append("no IPv4 public-ip")
    if cond.get("status") == "True":
        problems.append(f"NetworkUnavailable: {cond.get('message', '')}".strip())
    return meta.get("name", "?"), agent, cidr, ip, mac, problems


def add_shared(rows):
    """Two Nodes with one podCIDR, public IP or VTEP MAC break routing to both."""
    for col, what in ((2, "podCIDR"), (3, "public IP"), (4, "VTEP MAC")):
        owners = {}
        for r in rows:
            if r[col]:
                owners.setdefault(r[col], []).append(r[0])
        for r in rows:
            others = [n for n in owners.get(r[col], []) if n != r[0]]
            if others:
                r[5].append(f"{what} {r[col]} also on {', '.join(others)}")


def report(nodes, out=sys.stdout):
    rows = [node_row(n) for n in nodes]
    add_shared(rows)
    table = [("NODE", "AGENT", "PODCIDR", "PUBLIC-IP", "VTEP-MAC", "STATE")]
    for name, agent, cidr, ip, mac, problems in sorted(rows):
        table.append((name, agent, cidr or "-", ip or "-", mac or "-", "; ".join(problems) or "ok"))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5], file=out)
    migrated = sum(1 for r in rows if r[1].startswith("weft"))
    whole = all(not r[5] for r in rows)
    print(f"\n{migrated} of {len(rows)} nodes run weft; the mesh is {'whole' if whole else 'NOT whole'}", file=out)
    return 0 if whole else 1


def load(argv):
    if len(argv) > 1 and argv[1] != "-":
        with open(argv[1]) as fh:
            return json.load(fh)
    if len(argv) > 1:
        return json.load(sys.stdin)
    res = subprocess.run(["kubectl", "get", "nodes", "-o", "json"], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise ValueError(f"kubectl get nodes: {res.stderr.strip()}")
    return json.loads(res.stdout)


def main(argv):
    try:
        data = load(argv)
        nodes = data["items"]
        if not isinstance(nodes, list):
            raise ValueError("items is not a list")
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"migration-status: need a NodeList (kubectl get nodes -o json): {e}", file=sys.stderr)
        return 2
    return report(nodes)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
