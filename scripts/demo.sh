#!/usr/bin/env bash
# weft's main job: install everything, build, bring up a 3-node lab in network namespaces
# (weftd on every node against a real kube-apiserver + kube-controller-manager 1.20.2, two pods
# per node wired by the CNI chain), run the cross-node ping/curl smoke test, show the status
# table, tear down. The first run builds the control plane from Debian's kubernetes source
# package (test/controlplane/build.sh, several minutes, cached afterwards).
#   --keep          leave the lab running (remove it later with: test/lab/lab.py down)
#   --nodes N       number of nodes (default 3)
#   --pods M        pods per node (default 2)
#   --pod-cidr      the controller-manager assigns spec.podCIDR, as with kubeadm --pod-network-cidr
#   --api double    use weft's API test double instead (starts in a second, builds nothing)
#   --dual-stack    IPv4 + IPv6 pods (net-conf EnableIPv6); smoke also pings and curls over IPv6
#   --v6-underlay   with --dual-stack: the IPv6 overlay rides an IPv6 underlay (2001:db8::/64)
#   --ipv6-only     no IPv4 at all: net-conf EnableIPv4 false, nodes and API on 2001:db8::/64
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD_DIR:-$root/build}
keep=0
api=real
up_args=()
while (($#)); do
  case $1 in
    --keep) keep=1 ;;
    --nodes | --pods) up_args+=("$1" "$2"); shift ;;
    --pod-cidr | --dual-stack | --v6-underlay | --ipv6-only) up_args+=("$1") ;;
    --api)
      api=${2:-}
      [[ $api == real || $api == double ]] || { echo "demo.sh: --api takes real or double" >&2; exit 2; }
      shift
      ;;
    *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: run as root (the lab creates network namespaces)" >&2
  exit 1
fi

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
if [[ $api == real ]]; then
  "$root/test/controlplane/build.sh"
fi
lab=("$root/test/lab/lab.py" --build-dir "$build")
"${lab[@]}" down >/dev/null 2>&1 || true
if ((!keep)); then
  trap '"${lab[@]}" down >/dev/null' EXIT
fi
"${lab[@]}" up --api "$api" "${up_args[@]}"
status=0
"${lab[@]}" smoke || status=$?
echo
"${lab[@]}" status
if ((keep)); then
  echo
  echo "the lab is still up: try 'ip netns list', 'test/lab/lab.py status'; remove it with 'test/lab/lab.py down'"
fi
exit "$status"
