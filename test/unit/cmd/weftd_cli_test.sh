#!/usr/bin/env bash
# weftd's command line: --help lists flannel's flag names, --check-config accepts a good
# net-conf.json and refuses a bad one with the key and the reason.
set -euo pipefail
weftd=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

help=$("$weftd" --help)
for flag in --kube-subnet-mgr --kubeconfig-file --kube-api-url --kube-annotation-prefix --node-name \
  --iface --iface-regex --iface-can-reach --public-ip --ip-masq --subnet-file --net-config-path \
  --healthz-ip --healthz-port --log-level --version --check-config; do
  grep -q -- "$flag\b" <<<"$help" || fail "--help does not list $flag"
done
grep -q "WEFTD_IFACE" <<<"$help" || fail "--help does not name the environment variables"
"$weftd" --version | grep -Eq '^weftd [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version"

echo '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}' >"$tmp/good.json"
out=$("$weftd" --check-config "$tmp/good.json") || fail "good config refused"
grep -q '"SubnetLen": 24' <<<"$out" || fail "effective config lacks SubnetLen 24: $out"
grep -q '"SubnetMin": "10.244.1.0"' <<<"$out" || fail "effective config lacks SubnetMin"

echo '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":99999999}}' >"$tmp/bad.json"
if err=$("$weftd" --check-config "$tmp/bad.json" 2>&1); then
  fail "bad config accepted"
fi
grep -q '"Backend.VNI" is 99999999' <<<"$err" || fail "error does not name the key and value: $err"
grep -q "$tmp/bad.json" <<<"$err" || fail "error does not name the file: $err"

echo '{"Network":"10.244.0.0/16","Colour":"red"}' >"$tmp/warn.json"
err=$("$weftd" --check-config "$tmp/warn.json" 2>&1 >/dev/null) || fail "unknown key must only warn"
grep -q 'unknown key "Colour"' <<<"$err" || fail "no warning for the unknown key: $err"

if "$weftd" --check-config "$tmp/missing.json" 2>/dev/null; then fail "missing file accepted"; fi

# A config the daemon would refuse at start must fail the check too (the systemd unit runs the
# check as ExecStartPre; a pass followed by exit 2 loops the unit), with the daemon's reason.
echo '{"EnableIPv4":false}' >"$tmp/nofamily.json"
if err=$("$weftd" --check-config "$tmp/nofamily.json" 2>&1); then fail "a config without a family passes --check-config"; fi
grep -q 'enable at least one' <<<"$err" || fail "check gives no reason: $err"
daemon_err=$("$weftd" --net-config-path "$tmp/nofamily.json" --node-name n1 2>&1) && fail "daemon started"
grep -q 'enable at least one' <<<"$daemon_err" || fail "daemon's reason differs: $daemon_err"
# IPv6-only is a supported cluster: the check passes quietly and prints the effective config.
echo '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}' >"$tmp/v6only.json"
out=$("$weftd" --check-config "$tmp/v6only.json" 2>"$tmp/v6only.err") || fail "IPv6-only config refused: $(cat "$tmp/v6only.err")"
[[ ! -s $tmp/v6only.err ]] || fail "an IPv6-only config gets warnings: $(cat "$tmp/v6only.err")"
grep -q '"EnableIPv4": false' <<<"$out" || fail "effective config is not IPv6-only: $out"
grep -q '"IPv6SubnetLen": 64' <<<"$out" || fail "IPv6SubnetLen default missing: $out"
echo '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}' >"$tmp/dual.json"
err=$("$weftd" --check-config "$tmp/dual.json" 2>&1 >/dev/null) || fail "dual-stack config refused"
[[ -z $err ]] || fail "a dual-stack config gets warnings: $err"
echo '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan","DirectRouting":true}}' >"$tmp/dual_direct.json"
err=$("$weftd" --check-config "$tmp/dual_direct.json" 2>&1 >/dev/null) || fail "dual-stack DirectRouting refused"
grep -q 'IPv6 peers are routed directly only over an IPv6 underlay' <<<"$err" || fail "no DirectRouting warning for IPv6: $err"

if ((failures)); then echo "$failures failed"; exit 1; fi
echo "weftd cli: all checks passed"
