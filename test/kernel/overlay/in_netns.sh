#!/usr/bin/env bash
# Runs a command inside a fresh, uniquely named network namespace, removed on exit.
set -euo pipefail
ns="wt$$-$(date +%s%N | tail -c 7)"
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" "$@"
