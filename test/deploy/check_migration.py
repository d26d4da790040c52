"""Checks of manifests/migrate-from-flannel/ (issue #20): the ConfigMap that weftd and the weft
plugin get during a migration, and the two DaemonSet patches. The init container's script runs
here, against a temporary copy of a node's /etc/cni/net.d.

    python3 check_migration.py --repo REPO --weftd BUILD/cmd/weftd/weftd
"""
import argparse
import json
import os
import subprocess
import tempfile

import yaml

from deploy_lib import Checks

DIR = os.path.join("manifests", "migrate-from-flannel")


def load(repo, name):
    with open(os.path.join(repo, DIR, name)) as f:
        return yaml.safe_load(f)


def check_configmap(repo, weftd, checks):
    cm = load(repo, "02-configmap.yaml")
    with open(os.path.join(repo, "manifests", "02-configmap.yaml")) as f:
        base = yaml.safe_load(f)
    checks.expect(cm["metadata"] == base["metadata"], "the migration ConfigMap must replace kube-weft-cfg")
    net = json.loads(cm["data"]["net-conf.json"])
    base_net = json.loads(base["data"]["net-conf.json"])
    checks.expect(net.get("FlannelCompat") is True, "net-conf.json without FlannelCompat")
    checks.expect(net.get("Network") == base_net.get("Network"), "Network differs from manifests/02-configmap.yaml")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write(cm["data"]["net-conf.json"])
        f.flush()
        r = subprocess.run([weftd, "--check-config", f.name], capture_output=True, text=True)
    checks.expect(r.returncode == 0 and "warning" not in r.stderr, f"weftd --check-config: {r.stderr.strip()}")
    checks.expect('"FlannelCompat": true' in r.stdout, f"--check-config does not show FlannelCompat: {r.stdout}")
    conflist = json.loads(cm["data"]["cni-conf.json"])
    checks.expect(conflist.get("name") == "cbr0", "the conflist must be flannel's network cbr0 (host-local's records)")
    weft = next((p for p in conflist.get("plugins", []) if p.get("type") == "weft"), {})
    checks.expect((weft.get("delegate") or {}).get("bridge") == "cni0", "the weft plugin must use flannel's cni0")
    checks.expect(weft.get("flannelDataDir") == "/var/lib/cni/flannel", "flannelDataDir must be flannel's dataDir")


def check_flannel_patch(repo, checks):
    terms = load(repo, "flannel-skip-migrated.yaml")["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    exprs = [e for t in terms for e in t["matchExpressions"]]
    checks.expect(len(terms) == 1, "one term: terms are ORed, the label must hold in every one")
    checks.expect({"key": "weft.io/migrate", "operator": "NotIn", "values": ["true"]} in exprs,
                  "flanneld must leave nodes labelled weft.io/migrate=true")
    checks.expect({"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]} in exprs,
                  "kube-flannel.yml's linux term must be kept (the patch replaces the list)")


def check_weft_patch(repo, checks):
    ds = load(repo, "weft-only-migrated.yaml")["spec"]["template"]["spec"]
    checks.expect(ds.get("nodeSelector") == {"weft.io/migrate": "true"}, "weftd must run on migrated nodes only")
    script = ds["initContainers"][0]["args"][0]
    with tempfile.TemporaryDirectory() as tmp:
        netd, cfg = os.path.join(tmp, "net.d"), os.path.join(tmp, "cfg")
        os.makedirs(netd)
        os.makedirs(cfg)
        cm = load(repo, "02-configmap.yaml")
        with open(os.path.join(cfg, "cni-conf.json"), "w") as f:
            f.write(cm["data"]["cni-conf.json"])
        with open(os.path.join(netd, "10-flannel.conflist"), "w") as f:
            f.write('{"name":"cbr0","plugins":[{"type":"flannel"}]}')
        local = script.replace("/host/etc/cni/net.d", netd).replace("/etc/weft", cfg)
        for run in (1, 2):  # an init container runs again on every pod restart
            r = subprocess.run(["sh", "-c", local], capture_output=True, text=True)
            checks.expect(r.returncode == 0, f"install-cni-conf (run {run}) fails: {r.stderr}")
            left = sorted(os.listdir(netd))
            checks.expect(left == ["10-flannel.conflist.replaced-by-weft", "10-weft.conflist"],
                          f"after install-cni-conf (run {run}) net.d holds {left}")
        with open(os.path.join(netd, "10-weft.conflist")) as f:
            checks.expect(f.read() == cm["data"]["cni-conf.json"], "10-weft.conflist is not the ConfigMap's")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--weftd", required=True)
    args = ap.parse_args()
    checks = Checks("migrate-from-flannel manifests")
    check_configmap(args.repo, args.weftd, checks)
    check_flannel_patch(args.repo, checks)
    check_weft_patch(args.repo, checks)
    checks.finish()


if __name__ == "__main__":
    main()
