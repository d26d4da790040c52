#!/usr/bin/env bash
# Runs every benchmark (ctest label `bench`; as root) and writes $BUILD/bench-results.md.
#   bash test/bench/run.sh            build dir: $WEFT_BUILD_DIR, default <repo>/build
# Installs what it needs (scripts/setup.sh) and builds first (incremental; WEFT_BENCH_NO_BUILD=1
# skips both). Extra arguments go to ctest,
# e.g. `-R bench_lab` for one benchmark.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${WEFT_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac

if ((EUID != 0)); then
  echo "run.sh: run as root (the benchmarks create network namespaces)" >&2
  exit 1
fi
if [[ ${WEFT_BENCH_NO_BUILD:-0} != 1 ]]; then
  "$root/scripts/setup.sh"
  WEFT_BUILD_DIR=$build "$root/scripts/build.sh"
  "$root/test/controlplane/build.sh"  # bench_daemon_realapi's kube-apiserver (cached)
fi

out=$(mktemp "$build/bench-results.XXXXXX.jsonl")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
(cd "$build" && WEFT_BENCH_OUT=$out ctest -L bench --output-on-failure "$@") || status=$?

python3 "$root/test/bench/report.py" "$out" --out "$build/bench-results.md" --load-before "$load_before"
echo "run.sh: table in $build/bench-results.md, figures in $out"
exit "$status"
