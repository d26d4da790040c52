#!/usr/bin/env bash
# A worker: kubeadm join with the lab's bootstrap token.
# Usage: worker.sh CONTROL_PLANE_IP TOKEN. Idempotent.
set -euo pipefail

cp_ip=$1
token=$2

if [[ -f /etc/kubernetes/kubelet.conf ]]; then
  echo "worker: already joined"
  exit 0
fi
echo "worker: kubeadm join ${cp_ip}:6443"
# A lab on a host-only network: the token is the shared secret and the CA is not pinned. On
# a real cluster use the --discovery-token-ca-cert-hash that `kubeadm token create
# --print-join-command` prints.
kubeadm join "${cp_ip}:6443" --token "$token" --discovery-token-unsafe-skip-ca-verification
echo "worker: joined"
