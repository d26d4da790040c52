#!/usr/bin/env bash
# Runs every fuzz target in test/fuzz/targets for SECONDS each on a fresh copy of its seed
# corpus, after replaying the inputs that once crashed it (test/fuzz/crashes/<name>/) and after
# checking on the canary target that a crash, a failed FUZZ_CHECK, ASan and UBSan findings and an
# uncaught exception are all reported. Fails when any of that goes wrong.
#   usage: test/fuzz/run.sh [--build] BUILD_DIR SECONDS [TARGET...]
# --build runs build.sh BUILD_DIR first. Logs, work corpora and crash artifacts stay in BUILD_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

build=0
if [[ ${1:-} == --build ]]; then
  build=1
  shift
fi
out=${1:?usage: run.sh [--build] BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run.sh [--build] BUILD_DIR SECONDS [TARGET...]}
shift 2
only=("$@")

if ((build)); then
  "$here/build.sh" "$out"
fi

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if ! command -v llvm-symbolizer >/dev/null && [[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
# The cni target makes its temp directory under TMPDIR: keep leftovers of a crash in the build dir.
export TMPDIR="$out/tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR" "$out/logs"

# fuzz NAME SEEDS_DIR SECONDS MAX_LEN: fuzzes $out/NAME_fuzz on a copy of SEEDS_DIR; returns
# non-zero when the run crashed (the artifact is in $out/work/NAME/), and sets $summary.
summary=
fuzz() {
  local name=$1 seeds=$2 secs=$3 max_len=$4
  local bin="$out/${name}_fuzz" work="$out/work/$name" log="$out/logs/$name.log" rc=0
  rm -rf "$work"
  mkdir -p "$work/corpus"
  cp "$seeds"/* "$work/corpus/"
  "$bin" -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/corpus" </dev/null >"$log" 2>&1 || rc=$?
  local last execs rate rss
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  summary=$(printf '%-12s %5ss %10s runs %7s/s  %s  rss %sMb' "$name" "$secs" "${execs:-?}" "${rate:-?}" \
    "$(sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [0-9]+\/[0-9]+[a-zA-Z]*).*/\1/' <<<"$last")" "${rss:-?}")
  local artifacts=("$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*)
  local found=()
  for a in "${artifacts[@]}"; do
    [[ -e $a ]] && found+=("$a")
  done
  if ((rc != 0 || ${#found[@]})); then
    summary+="  FAILED (exit $rc)"
    for a in "${found[@]}"; do
      summary+=$'\n'"    input: $a"$'\n'"    reproduce: $bin $a"$'\n'"    keep it: cp $a $here/crashes/$name/"
    done
    return 1
  fi
  return 0
}

# 1. The harness must be able to fail: each canary input has to be reported, with its reason.
selftest_ok=1
declare -A canary_says=(
  [WEFT-CHECK]="FUZZ_CHECK failed"
  [WEFT-ASAN]="AddressSanitizer: heap-buffer-overflow"
  [WEFT-UBSAN]="runtime error: signed integer overflow"
  [WEFT-THROW]="uncaught exception"
)
for magic in "${!canary_says[@]}"; do
  seeds="$out/work/canary-seeds/$magic"
  rm -rf "$seeds"
  mkdir -p "$seeds"
  printf '%s' "$magic" >"$seeds/input"
  if fuzz canary "$seeds" 10 64; then
    echo "run.sh self-test: the canary input $magic was not reported as a crash" >&2
    selftest_ok=0
  elif ! grep -q "${canary_says[$magic]}" "$out/logs/canary.log"; then
    echo "run.sh self-test: the canary input $magic crashed without \"${canary_says[$magic]}\"" >&2
    cat "$out/logs/canary.log" >&2
    selftest_ok=0
  fi
done
if ((!selftest_ok)); then
  echo "run.sh: the harness does not report crashes; no target was run" >&2
  exit 1
fi
echo "fuzz self-test: the canary's ${#canary_says[@]} kinds of failure are all reported"

# 2. Every target: replay its old crashes, then fuzz.
failed=()
while read -r name max_len _libs; do
  [[ -z $name || $name == \#* ]] && continue
  if ((${#only[@]})) && [[ " ${only[*]} " != *" $name "* ]]; then
    continue
  fi
  crashes=("$here/crashes/$name"/*)
  if [[ -e ${crashes[0]} ]]; then
    if ! "$out/${name}_fuzz" -rss_limit_mb=2048 -timeout=10 "${crashes[@]}" </dev/null >"$out/logs/$name-replay.log" 2>&1; then
      echo "$name: an input in test/fuzz/crashes/$name/ still fails:" >&2
      tail -n 60 "$out/logs/$name-replay.log" >&2
      failed+=("$name")
      continue
    fi
  fi
  if fuzz "$name" "$here/corpus/$name" "$seconds" "$max_len"; then
    echo "$summary"
  else
    echo "$summary"
    echo "---- $out/logs/$name.log (tail)" >&2
    tail -n 60 "$out/logs/$name.log" >&2
    failed+=("$name")
  fi
done <"$here/targets"

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash, no undefined behaviour, no broken invariant"
