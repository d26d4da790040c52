#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` builds it from the build directory, and it holds what a
# host install needs: weftd and weftctl, the CNI plugin in /opt/cni/bin, the systemd unit
# (which systemd-analyze accepts), the default config (as conffiles, and every WEFTD_*
# setting in it, commented or not, is a weftd flag with a value weftd accepts), maintainer
# scripts, and Depends computed from the binaries' libraries.
# Usage: check_deb.sh BUILD_DIR REPO
set -euo pipefail

build=$1
repo=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
passed=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { passed=$((passed + 1)); }
expect() {  # expect MESSAGE COMMAND...: the message is the failure's
  local msg=$1
  shift
  if "$@"; then ok; else fail "$msg"; fi
}

# CPack re-runs the build's "preinstall" target (a no-op after a build) and installs into
# its own staging directory under -B.
if ! (cd "$build" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1); then
  cat "$tmp/cpack.log"
  echo "FAIL: cpack -G DEB failed"
  exit 1
fi
shopt -s nullglob
debs=("$tmp"/out/*.deb)
if ((${#debs[@]} != 1)); then
  echo "FAIL: expected one .deb from cpack, found ${#debs[@]}"
  exit 1
fi
deb=${debs[0]}
echo "built $(basename "$deb")"

contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/weftd ./usr/bin/weftctl ./opt/cni/bin/weft; do
  if grep -Eq "^-rwxr-xr-x root/root .* ${f}\$" <<<"$contents"; then ok; else fail "$f missing or not an executable owned by root"; fi
done
for f in ./lib/systemd/system/weftd.service ./etc/default/weftd ./etc/weft/net-conf.json \
  ./usr/share/weft/10-weft.conflist ./usr/share/doc/weft/README.md; do
  if grep -Eq "^-rw-r--r-- root/root .* ${f}\$" <<<"$contents"; then ok; else fail "$f missing or not a 0644 file"; fi
done
if grep -Eq ' \./(home|root|tmp|work|build)' <<<"$contents"; then fail "the package holds files from the build machine"; else ok; fi

field() { dpkg-deb -f "$deb" "$1"; }
version=$(sed -n 's/^project(weft VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
expect "Package is $(field Package), not weft" test "$(field Package)" = weft
expect "Version $(field Version), the project is $version" test "$(field Version)" = "$version"
expect "Maintainer and Description are required" test -n "$(field Maintainer)" -a -n "$(field Description)"
expect "Depends ($(field Depends)) was not computed from the binaries (dpkg-shlibdeps)" \
  grep -q 'libc6' <<<"$(field Depends)"

dpkg-deb -e "$deb" "$tmp/control"
for s in postinst prerm postrm; do
  if [[ -x $tmp/control/$s ]]; then ok; else fail "maintainer script $s missing or not executable"; fi
done
if diff <(sort "$tmp/control/conffiles") <(printf '%s\n' /etc/default/weftd /etc/weft/net-conf.json) >/dev/null; then
  ok
else
  fail "conffiles should be /etc/default/weftd and /etc/weft/net-conf.json, is: $(tr '\n' ' ' <"$tmp/control/conffiles")"
fi

# The unit: systemd-analyze accepts it (it reports problems as warnings, so any output fails).
dpkg-deb -x "$deb" "$tmp/root"
mkdir "$tmp/unit"
sed "s#/usr/bin/weftd#$tmp/root/usr/bin/weftd#g" "$tmp/root/lib/systemd/system/weftd.service" >"$tmp/unit/weftd.service"
out=$(systemd-analyze verify --man=no "$tmp/unit/weftd.service" 2>&1) || out="exit $?: $out"
expect "systemd-analyze verify weftd.service: $out" test -z "$out"
unit=$tmp/root/lib/systemd/system/weftd.service
expect "the unit does not read /etc/default/weftd" grep -q '^EnvironmentFile=-/etc/default/weftd$' "$unit"
expect "the unit does not run /usr/bin/weftd" grep -q '^ExecStart=/usr/bin/weftd ' "$unit"

# The default config: every WEFTD_* name is a weftd flag's variable, and weftd accepts the values.
weftd=$tmp/root/usr/bin/weftd
known=$("$weftd" --help | grep -o 'Env:WEFTD_[A-Z_]*' | sed 's/^Env://' | sort -u)
defaults=$tmp/root/etc/default/weftd
net_conf=$tmp/root/etc/weft/net-conf.json
while IFS= read -r line; do
  name=${line%%=*}
  if grep -qx "$name" <<<"$known"; then ok; else fail "/etc/default/weftd sets $name, which is no weftd flag"; fi
done < <(sed -n 's/^#\{0,1\}\(WEFTD_[A-Z_]*=.*\)$/\1/p' "$defaults")
run_with() {  # run_with FILE: weftd --check-config under the settings FILE assigns (as systemd would)
  local -a env_args=()
  while IFS= read -r line; do env_args+=("$line"); done < <(grep -E '^[A-Z_]+=' "$1")
  env -i "${env_args[@]}" "$weftd" --check-config "$net_conf" >/dev/null
}
if err=$(run_with "$defaults" 2>&1); then ok; else fail "weftd refuses /etc/default/weftd: $err"; fi
while IFS= read -r line; do  # each commented example, switched on by itself
  printf '%s\n' "${line#\#}" >"$tmp/one"
  if err=$(run_with "$tmp/one" 2>&1); then ok; else fail "weftd refuses the example ${line#\#}: $err"; fi
done < <(grep -E '^#(WEFTD_|NODE_NAME)[A-Z_]*=' "$defaults")
subnet_file=$(sed -n 's/^WEFTD_SUBNET_FILE=//p' "$defaults")
conflist_subnet=$(sed -n 's/.*"subnetFile": *"\([^"]*\)".*/\1/p' "$tmp/root/usr/share/weft/10-weft.conflist")
expect "/etc/default/weftd writes $subnet_file, the conflist reads $conflist_subnet" \
  test "$subnet_file" = "$conflist_subnet"
expect "the unit's ReadWritePaths does not include $(dirname "$subnet_file") (ProtectSystem=strict)" \
  grep -q "^ReadWritePaths=.*$(dirname "$subnet_file")" "$unit"

if ((failures)); then
  echo "deb: $failures failed, $passed passed"
  exit 1
fi
echo "deb: all $passed checks passed"
