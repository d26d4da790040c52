#!/usr/bin/env bash
# The control plane: kubeadm init on the private-network address with the pod network CIDR,
# a kubeconfig for the vagrant user, then weft: `kubectl apply` of manifests/, with weftd told
# to use the private network's interface (never the NAT one).
# Usage: control-plane.sh NODE_IP POD_CIDR TOKEN. Idempotent.
set -euo pipefail

node_ip=$1
pod_cidr=$2
token=$3
manifests=/weft/manifests
export KUBECONFIG=/etc/kubernetes/admin.conf

if [[ ! -f $KUBECONFIG ]]; then
  echo "control-plane: kubeadm init (advertise ${node_ip}, pod network ${pod_cidr})"
  kubeadm init --apiserver-advertise-address="$node_ip" --pod-network-cidr="$pod_cidr" \
    --token="$token" --token-ttl=0 --skip-token-print  # a lab token that never expires
else
  echo "control-plane: already initialised"
fi
install -d -o vagrant -g vagrant /home/vagrant/.kube
install -m 0600 -o vagrant -g vagrant "$KUBECONFIG" /home/vagrant/.kube/config

# weftd picks the interface whose address is on the private network: ^192\.168\.56\.
prefix=${node_ip%.*}
iface_regex="^${prefix//./\\.}\\."
echo "control-plane: applying ${manifests}/ (weftd --iface-regex=${iface_regex})"
for f in "$manifests"/*.yaml; do
  if grep -q '^kind: DaemonSet' "$f"; then
    kubectl set env --local -f "$f" -c weftd "WEFTD_IFACE_REGEX=${iface_regex}" -o yaml | kubectl apply -f -
  else
    kubectl apply -f "$f"
  fi
done
kubectl -n kube-weft rollout status daemonset/kube-weft-ds --timeout=300s
kubectl wait --for=condition=Ready "node/$(hostname)" --timeout=300s
echo "control-plane: done"
