#!/usr/bin/env bash
# weft's main job: install everything, build, bring up a 3-node lab in network namespaces
# (weftd on every node against the Kubernetes API test double, two pods per node wired by the
# CNI chain), run the cross-node ping/curl smoke test, show the status table, tear down.
#   --keep        leave the lab running (remove it later with: test/lab/lab.py down)
#   --nodes N     number of nodes (default 3)
#   --pods M      pods per node (default 2)
#   --pod-cidr    give nodes spec.podCIDR, as kubeadm --pod-network-cidr does
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD_DIR:-$root/build}
keep=0
up_args=()
while (($#)); do
  case $1 in
    --keep) keep=1 ;;
    --nodes | --pods) up_args+=("$1" "$2"); shift ;;
    --pod-cidr) up_args+=("$1") ;;
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
lab=("$root/test/lab/lab.py" --build-dir "$build")
"${lab[@]}" down >/dev/null 2>&1 || true
if ((!keep)); then
  trap '"${lab[@]}" down >/dev/null' EXIT
fi
"${lab[@]}" up "${up_args[@]}"
status=0
"${lab[@]}" smoke || status=$?
echo
"${lab[@]}" status
if ((keep)); then
  echo
  echo "the lab is still up: try 'ip netns list', 'test/lab/lab.py status'; remove it with 'test/lab/lab.py down'"
fi
exit "$status"
