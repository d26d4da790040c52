#!/usr/bin/env bash
# Installs everything, builds, and runs weft's main job.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD_DIR:-$root/build}

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
"$build/cmd/weftd/weftd" --help
cat > "$build/net-conf.json" <<'JSON'
{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}
JSON
echo "effective configuration of $build/net-conf.json:"
"$build/cmd/weftd/weftd" --check-config "$build/net-conf.json"
