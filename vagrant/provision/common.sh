#!/usr/bin/env bash
# Every lab VM: kernel settings kubeadm wants, containerd (Debian's) with the systemd cgroup
# driver, and kubeadm/kubelet/kubectl/kubernetes-cni from pkgs.k8s.io. kubelet is told the
# private-network address, so the Node's InternalIP is not VirtualBox's NAT 10.0.2.15.
# Usage: common.sh NODE_IP K8S_MINOR (e.g. 192.168.56.11 v1.31). Idempotent.
set -euo pipefail

node_ip=$1
k8s_minor=$2
export DEBIAN_FRONTEND=noninteractive

echo "common: kernel modules and sysctls"
cat >/etc/modules-load.d/k8s.conf <<'CONF'
overlay
br_netfilter
CONF
modprobe overlay
modprobe br_netfilter
cat >/etc/sysctl.d/90-k8s.conf <<'CONF'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
CONF
sysctl --system >/dev/null
swapoff -a
sed -i -E '/^[^#].*\sswap\s/ s/^/#/' /etc/fstab

echo "common: packages"
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  apt-transport-https ca-certificates curl gpg containerd conntrack iptables socat ethtool >/dev/null

echo "common: containerd"
mkdir -p /etc/containerd
containerd config default >/etc/containerd/config.toml
sed -i -E \
  -e 's/^(\s*)SystemdCgroup = false/\1SystemdCgroup = true/' \
  -e 's#^(\s*)sandbox_image = .*#\1sandbox_image = "registry.k8s.io/pause:3.10"#' \
  -e 's#^(\s*)bin_dir = .*#\1bin_dir = "/opt/cni/bin"#' \
  -e 's#^(\s*)conf_dir = .*#\1conf_dir = "/etc/cni/net.d"#' \
  /etc/containerd/config.toml
grep -q 'SystemdCgroup = true' /etc/containerd/config.toml
systemctl restart containerd
systemctl enable containerd >/dev/null

echo "common: kubeadm, kubelet, kubectl ${k8s_minor}"
keyring=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
repo="https://pkgs.k8s.io/core:/stable:/${k8s_minor}/deb/"
mkdir -p /etc/apt/keyrings
if [[ ! -s $keyring ]]; then
  curl -fsSL "${repo}Release.key" | gpg --dearmor --yes -o "$keyring"
fi
echo "deb [signed-by=${keyring}] ${repo} /" >/etc/apt/sources.list.d/kubernetes.list
apt-get update -qq
apt-get install -y -qq --no-install-recommends kubelet kubeadm kubectl kubernetes-cni cri-tools >/dev/null
apt-mark hold kubelet kubeadm kubectl >/dev/null
cat >/etc/crictl.yaml <<'CONF'
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
CONF

# kubelet's address: the private network, not the NAT interface.
echo "KUBELET_EXTRA_ARGS=--node-ip=${node_ip}" >/etc/default/kubelet
systemctl enable kubelet >/dev/null
systemctl restart kubelet || true  # it waits for kubeadm init/join until then
echo "common: done (node IP ${node_ip})"
