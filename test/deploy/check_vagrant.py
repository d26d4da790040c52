#!/usr/bin/python3
"""Checks of the Vagrant lab without Vagrant or VirtualBox:

- the Vagrantfile parses (`ruby -c`);
- evaluated against a stand-in of Vagrant's configuration API (vagrant_stub.rb), it defines
  one control plane and two workers on one private network (not VirtualBox's NAT 10.0.2.0/24),
  big enough for kubeadm (2 CPUs, 1700 MB on the control plane);
- every provisioner script exists and is passed as many arguments as it reads;
- kubelet gets each VM's private address, kubeadm init the ConfigMap's Network as the pod CIDR,
  workers the control plane's address and the same token;
- the image is in containerd before the node runs kubeadm (so weft starts at once);
- the repository is synced where the scripts look for it, and the smoke test runs at the end.
"""
import argparse
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_lib import Checks, json_text  # noqa: E402

SRC = "/weft"  # where the provisioning scripts expect the repository


def script_arity(path):
    """The highest positional parameter a script reads ($1..$9), or None if it reads "$@"."""
    text = open(path).read()
    if re.search(r'\$[@*]|\$\{[@*]', text.split("\n", 1)[1] if "\n" in text else ""):
        return None
    used = [int(n) for n in re.findall(r"\$\{?([1-9])\b", text)]
    return max(used) if used else 0


def configmap_network(repo, checks):
    for name in sorted(os.listdir(os.path.join(repo, "manifests"))):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(repo, "manifests", name)) as f:
            for doc in yaml.safe_load_all(f):
                if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and "net-conf.json" in (doc.get("data") or {}):
                    conf = json_text(doc["data"]["net-conf.json"], "net-conf.json", checks) or {}
                    return conf.get("Network")
    checks.fail("no ConfigMap with net-conf.json in manifests/")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--vagrant-dir", help="default: REPO/vagrant")
    a = ap.parse_args()
    checks = Checks("vagrant")
    vdir = a.vagrant_dir or os.path.join(a.repo, "vagrant")
    vagrantfile = os.path.join(vdir, "Vagrantfile")

    r = subprocess.run(["ruby", "-c", vagrantfile], capture_output=True, text=True)
    if not checks.expect(r.returncode == 0, f"ruby -c {vagrantfile}: {r.stderr.strip() or r.stdout.strip()}"):
        checks.finish()

    # Evaluate a copy, so the token file the Vagrantfile makes lands in a temporary directory.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(vagrantfile, tmp)
        r = subprocess.run(["ruby", os.path.join(os.path.dirname(os.path.abspath(__file__)), "vagrant_stub.rb"),
                            os.path.join(tmp, "Vagrantfile")], capture_output=True, text=True)
    if not checks.expect(r.returncode == 0, f"evaluating the Vagrantfile failed: {r.stderr.strip()}"):
        checks.finish()
    configs = json.loads(r.stdout)
    checks.expect(len(configs) == 1, f"expected one Vagrant.configure block, found {len(configs)}")
    top = configs[0]["vm"]
    checks.expect(isinstance(top.get("box"), str) and top["box"], "config.vm.box is not set")
    synced = [s for s in top["synced_folders"] if not s.get("disabled")]
    checks.expect(any(s["dst"] == SRC and os.path.realpath(os.path.join(vdir, s["src"])) == os.path.realpath(a.repo)
                      for s in synced), f"the repository root should be synced to {SRC} (the scripts read it there)")
    for s in synced:
        checks.expect(any(x.startswith("/.git") for x in s.get("rsync__exclude", [])),
                      f"synced folder {s['src']} -> {s['dst']} should exclude .git")

    machines = top["machines"]
    roles = {}
    for m in machines:
        names = [p["name"] for p in m["vm"]["provisioners"]]
        role = "control-plane" if "control-plane" in names else "worker" if "worker" in names else None
        checks.expect(role, f"machine {m['name']} runs neither provision/control-plane.sh nor provision/worker.sh")
        roles.setdefault(role, []).append(m)
    cps, workers = roles.get("control-plane", []), roles.get("worker", [])
    checks.expect(len(cps) == 1 and len(workers) == 2,
                  f"expected one control plane and two workers, found {len(cps)} and {len(workers)}")
    checks.expect(machines and machines[0] in cps, "the control plane must be defined (and so brought up) first")
    if not cps:
        checks.finish()
    cp = cps[0]

    ips = {}
    for m in machines:
        nets = [n for n in m["vm"]["networks"] if n["type"] == "private_network"]
        if checks.expect(len(nets) == 1 and "ip" in nets[0], f"{m['name']}: needs one private_network with an ip"):
            ips[m["name"]] = ipaddress.ip_address(nets[0]["ip"])
        checks.expect(m["vm"].get("hostname") == m["name"], f"{m['name']}: hostname should be the machine name")
    checks.expect(len(set(ips.values())) == len(machines), f"private addresses are not distinct: {ips}")
    nets24 = {ipaddress.ip_network(f"{ip}/24", strict=False) for ip in ips.values()}
    checks.expect(len(nets24) == 1, f"the VMs should share one /24 private network: {ips}")
    for name, ip in ips.items():
        checks.expect(ip not in ipaddress.ip_network("10.0.2.0/24"), f"{name}: {ip} is VirtualBox's NAT network")
    vb = cp["vm"]["providers"].get("virtualbox", {})
    checks.expect(vb.get("cpus", 1) >= 2 and vb.get("memory", 0) >= 1700,
                  f"{cp['name']}: kubeadm needs 2 CPUs and 1700 MB on the control plane, has {vb}")

    network = configmap_network(a.repo, checks)
    token = None
    for m in machines:
        provs = m["vm"]["provisioners"]
        names = [p["name"] for p in provs]
        by_name = {p["name"]: p for p in provs}
        for p in provs:
            path = os.path.join(vdir, p.get("path", ""))
            if not checks.expect(p.get("type") == "shell" and os.path.isfile(path),
                                 f"{m['name']}: provisioner {p['name']} script {p.get('path')} does not exist"):
                continue
            arity = script_arity(path)
            checks.expect(arity is None or arity == len(p.get("args", [])),
                          f"{m['name']}: {p['path']} reads {arity} arguments, is given {len(p.get('args', []))}")
            with open(path) as f:
                first = f.readline()
            checks.expect(first.startswith("#!") and "set -euo pipefail" in open(path).read(),
                          f"{p['path']}: needs a #! line and set -euo pipefail")
        checks.expect(names[:1] == ["common"], f"{m['name']}: provision/common.sh should run first, order is {names}")
        if "common" in by_name:
            checks.expect(by_name["common"].get("args", [None])[0] == str(ips.get(m["name"])),
                          f"{m['name']}: kubelet's --node-ip (common.sh's first argument) should be the private "
                          f"address {ips.get(m['name'])}")
        join = "control-plane" if m is cp else "worker"
        checks.expect("image" in names and join in names and names.index("image") < names.index(join),
                      f"{m['name']}: the weft image must be in containerd before {join}.sh, order is {names}")
        if m is cp and "control-plane" in by_name:
            args = by_name["control-plane"].get("args", [])
            checks.expect(args[:1] == [str(ips[cp["name"]])], f"kubeadm init should advertise {ips[cp['name']]}")
            checks.expect(len(args) > 1 and args[1] == network,
                          f"kubeadm's pod network CIDR {args[1:2]} differs from net-conf.json's Network {network}")
            token = args[2] if len(args) > 2 else None
        if m is not cp and "worker" in by_name:
            args = by_name["worker"].get("args", [])
            checks.expect(args[:1] == [str(ips[cp["name"]])], f"{m['name']}: should join {ips[cp['name']]}")
            checks.expect(len(args) > 1 and args[1] == token, f"{m['name']}: joins with a token other than kubeadm init's")
            image_args = by_name.get("image", {}).get("args", [])
            checks.expect(str(ips[cp["name"]]) in image_args, f"{m['name']}: image.sh should fetch from the control plane")
    checks.expect(token and re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token), f"{token!r} is not a kubeadm token")

    # The smoke test runs once the last worker is up, on the control plane.
    last = machines[-1]
    runs = [t.get("run", {}).get("inline", "") for t in last["trigger"].get("after", []) if "up" in t["events"]]
    smoke = [r for r in runs if "smoke-test.sh" in r]
    if checks.expect(smoke, f"{last['name']}: no `after :up` trigger runs the smoke test"):
        checks.expect(f"vagrant ssh {cp['name']} " in smoke[0], f"the smoke test should run on {cp['name']}: {smoke[0]}")
        paths = re.findall(re.escape(SRC) + r"(/\S+?\.sh)", smoke[0])
        checks.expect(paths and os.path.isfile(a.repo + paths[0]), f"the trigger runs a script that does not exist: {smoke[0]}")
    checks.finish()


if __name__ == "__main__":
    main()
