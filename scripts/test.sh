#!/usr/bin/env bash
# Installs everything, builds, and runs every test (as root: kernel and e2e tests use network
# namespaces). Benchmarks and long fuzz runs are left out; run them with test/bench/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD_DIR:-$root/build}

if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: run as root (kernel and e2e tests create network namespaces)" >&2
  exit 1
fi
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
# The real control plane of the realapi tests (cached after the first build).
"$root/test/controlplane/build.sh"
cd "$build"
ctest -j2 --output-on-failure --timeout 900 -LE "bench|fuzz-long" "$@"
