#!/usr/bin/env bash
# Every tracked file that starts with "#!" must be committed executable: a clean clone gets the
# index's mode, not the developer's (the README's demo once failed with "lab.py: Permission denied").
set -euo pipefail
repo=${1:?usage: check_exec_bits.sh REPO}
cd "$repo"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "check_exec_bits: $repo is not a git checkout: nothing to check"
  exit 0
fi
bad=0
while IFS= read -r -d '' entry; do
  mode=${entry%% *}
  path=${entry#*$'\t'}
  [[ -f $path ]] || continue
  if [[ $(head -c 2 "$path") == '#!' && $mode != 100755 ]]; then
    echo "not executable in git: $path (fix: git update-index --chmod=+x $path)"
    bad=$((bad + 1))
  fi
done < <(git ls-files -s -z)
if ((bad)); then
  echo "check_exec_bits: $bad script(s) with a shebang are committed without the executable bit"
  exit 1
fi
echo "check_exec_bits: every script with a shebang is executable"
