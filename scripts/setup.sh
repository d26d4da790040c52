#!/usr/bin/env bash
# Installs every build and test dependency of weft on Debian bookworm (run as root).
# Idempotent: packages already present are left alone; apt-get runs only when one is missing.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git
  libnl-3-dev libnl-route-3-dev libcpprest-dev libssl-dev libboost-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev catch2
  libnftables-dev libyaml-cpp-dev
  # tests and lab
  iproute2 iputils-ping curl openssl python3 containernetworking-plugins
  nftables procps psmisc iperf3 ethtool shellcheck strace
  # the CNI plugin under a real runtime (test/e2e/test_podman.py); runc runs where crun refuses
  # a hybrid cgroup hierarchy
  podman runc busybox-static
  # /metrics linted with promtool and scraped by a real Prometheus 2.42 (test/e2e/test_prometheus.py)
  prometheus
  # deploy checks (test/deploy): YAML, the Kubernetes API schema, the Vagrantfile, the .deb
  python3-yaml python3-kubernetes ruby dpkg-dev file systemd
  # real control plane (test/controlplane/build.sh builds kube-apiserver 1.20.2 from Debian's source)
  golang-go etcd-server golang-github-modern-go-reflect2-dev
  # fuzzing (test/fuzz): clang, libFuzzer and the sanitizer runtimes, llvm-symbolizer
  clang libclang-rt-dev llvm
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#packages[@]} packages present"
fi
