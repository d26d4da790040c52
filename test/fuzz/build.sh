#!/usr/bin/env bash
# Builds the libFuzzer targets listed in test/fuzz/targets, and the harness's canary, with clang
# (ASan + UBSan + libstdc++ assertions), apart from the gcc build.
#   usage: test/fuzz/build.sh BUILD_DIR
# Incremental: a source is recompiled when it, a header of the tree it includes, or the flags
# changed. WEFT_FUZZ_CXX picks the compiler (clang++), WEFT_FUZZ_JOBS the parallelism (nproc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh BUILD_DIR}
cxx=${WEFT_FUZZ_CXX:-clang++}
jobs=${WEFT_FUZZ_JOBS:-$(nproc)}

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz build: $cxx not found: install clang and libclang-rt-dev (scripts/setup.sh does)" >&2
  exit 1
fi

cflags=(-std=c++20 -g -O1 -fno-omit-frame-pointer "-fsanitize=fuzzer-no-link,address,undefined"
  -fno-sanitize-recover=undefined -D_GLIBCXX_ASSERTIONS -D_TURN_OFF_PLATFORM_STRING -I"$root")
lflags=("-fsanitize=fuzzer,address,undefined")

mkdir -p "$out/obj"
# New flags or compiler: start over.
stamp="$($cxx --version | head -n1) ${cflags[*]} ${lflags[*]}"
if [[ ! -f $out/flags || $(<"$out/flags") != "$stamp" ]]; then
  rm -f "$out"/obj/*
  printf '%s\n' "$stamp" >"$out/flags"
fi

# targets: name -> "harness lib sources..."
declare -A target_sources=()
target_names=()
while read -r name _maxlen libs; do
  [[ -z $name || $name == \#* ]] && continue
  target_names+=("$name")
  target_sources[$name]="test/fuzz/${name}_fuzz.cpp $libs"
done <"$here/targets"
target_names+=(canary)
target_sources[canary]="test/fuzz/canary_fuzz.cpp"

obj_of() { echo "$out/obj/${1//\//_}.o"; }

# True when $1 (an object) is missing or older than anything its dependency file names.
stale() {
  local obj=$1 dep="${1%.o}.d" f
  [[ -f $obj && -f $dep ]] || return 0
  while read -r f; do
    [[ -n $f && ! -e $f ]] && return 0
    [[ -n $f && $f -nt $obj ]] && return 0
  done < <(sed -e 's/^[^:]*://' -e 's/\\$//' "$dep" | tr -s ' ' '\n')
  return 1
}

compile() {
  local src=$1 obj
  obj=$(obj_of "$src")
  echo "fuzz build: $src"
  "$cxx" "${cflags[@]}" -MMD -MF "${obj%.o}.d" -c "$root/$src" -o "$obj"
}

# Every source once, in parallel.
declare -A seen=()
pids=()
failed=0
for name in "${target_names[@]}"; do
  for src in ${target_sources[$name]}; do
    [[ -n ${seen[$src]:-} ]] && continue
    seen[$src]=1
    stale "$(obj_of "$src")" || continue
    compile "$src" &
    pids+=("$!")
    if ((${#pids[@]} >= jobs)); then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
done
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
if ((failed)); then
  echo "fuzz build: compilation failed" >&2
  exit 1
fi

for name in "${target_names[@]}"; do
  bin="$out/${name}_fuzz"
  objs=()
  relink=0
  [[ -f $bin ]] || relink=1
  for src in ${target_sources[$name]}; do
    objs+=("$(obj_of "$src")")
    [[ ${objs[-1]} -nt $bin ]] && relink=1
  done
  if ((relink)); then
    echo "fuzz build: linking ${name}_fuzz"
    "$cxx" "${lflags[@]}" "${objs[@]}" -o "$bin"
  fi
done
echo "fuzz build: ${#target_names[@]} targets in $out"
