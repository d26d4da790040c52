#!/usr/bin/env bash
# Each deploy check must be able to fail: break a copy of the deploy files in one way per
# case and expect the check to fail with the right message.
# Usage: selftest.sh PYTHON REPO WEFTD WEFTCTL WEFT
set -euo pipefail

python=$1
repo=$2
weftd=$3
bins=("$3" "$4" "$5")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
cases=0

fresh() {  # a copy of everything the checks read
  rm -rf "$tmp/r"
  mkdir -p "$tmp/r/scripts"
  cp -r "$repo/manifests" "$repo/packaging" "$repo/Dockerfile" "$repo/.dockerignore" "$repo/CMakeLists.txt" "$tmp/r/"
  mkdir "$tmp/r/vagrant"
  cp -r "$repo/vagrant/Vagrantfile" "$repo/vagrant/provision" "$repo/vagrant/smoke-test.sh" "$tmp/r/vagrant/"
  cp "$repo/scripts/setup.sh" "$tmp/r/scripts/"
}

mutate() {  # mutate FILE FROM TO: replace the first FROM (literally); the case is void if FROM is absent
  local file=$tmp/r/$1 content
  content=$(<"$file")
  if [[ $content != *"$2"* ]]; then
    echo "selftest: cannot break $1: '$2' not found (update the case)"
    failures=$((failures + 1))
    return 1
  fi
  printf '%s\n' "${content/"$2"/"$3"}" >"$file"
}

expect_fail() {  # expect_fail NAME MESSAGE COMMAND...: COMMAND must fail and print MESSAGE
  local name=$1 msg=$2 out
  shift 2
  cases=$((cases + 1))
  if out=$("$@" 2>&1); then
    echo "selftest: FAIL $name: the check passed"
    failures=$((failures + 1))
  elif [[ $out != *"$msg"* ]]; then
    echo "selftest: FAIL $name: the check failed without saying '$msg':"
    echo "    ${out//$'\n'/$'\n'    }"
    failures=$((failures + 1))
  else
    echo "selftest: ok   $name"
  fi
}

manifests() { "$python" "$here/check_manifests.py" "$1" --repo "$tmp/r" --weftd "$weftd" --version 0.1.0; }
dockerfile() { "$python" "$here/check_dockerfile.py" --repo "$tmp/r"; }  # static checks only: fast
dockerfile_libs() { "$python" "$here/check_dockerfile.py" --repo "$tmp/r" "${bins[@]}"; }  # + the binaries' libraries
vagrant() { "$python" "$here/check_vagrant.py" --repo "$tmp/r"; }

# The unbroken copy passes every check (so the failures below come from the mutations).
fresh
for c in schema rbac cni netconf daemonset; do
  manifests "$c" >/dev/null || { echo "selftest: the unbroken copy fails manifests $c"; exit 1; }
done
dockerfile_libs >/dev/null || { echo "selftest: the unbroken copy fails the Dockerfile check"; exit 1; }
vagrant >/dev/null || { echo "selftest: the unbroken copy fails the Vagrant check"; exit 1; }

fresh && mutate manifests/03-daemonset.yaml "hostNetwork: true" "hostNetwrok: true" &&
  expect_fail "schema: a misspelt field" "unknown field 'hostNetwrok'" manifests schema
fresh && mutate manifests/03-daemonset.yaml "  selector:
    matchLabels:
      app: weft
" "" && expect_fail "schema: DaemonSet without a selector" "selector\`, must not be \`None\`" manifests schema
fresh && mutate manifests/02-configmap.yaml "  namespace: kube-weft
" "" && expect_fail "schema: ConfigMap without a namespace" "metadata.namespace None" manifests schema
fresh && mutate manifests/03-daemonset.yaml "initialDelaySeconds: 10" "initialDelaySeconds: ten" &&
  expect_fail "schema: a string for an integer" "expected an integer" manifests schema
fresh && mutate manifests/00-namespace.yaml "enforce: privileged" "enforce: baseline" &&
  expect_fail "schema: Pod Security level" "enforce: privileged" manifests schema
fresh && mv "$tmp/r/manifests/00-namespace.yaml" "$tmp/r/manifests/99-namespace.yaml" &&
  expect_fail "schema: the Namespace applied last" "comes before the Namespace" manifests schema

fresh && mutate manifests/01-rbac.yaml '"watch", "patch"' '"watch", "patch", "delete"' &&
  expect_fail "rbac: one verb too many" "grants more than weftd needs" manifests rbac
fresh && mutate manifests/01-rbac.yaml '["nodes/status"]' '["nodes/proxy"]' &&
  expect_fail "rbac: nodes/status missing" "lacks what weftd needs" manifests rbac
fresh && mutate manifests/01-rbac.yaml "    name: weft
    namespace: kube-weft" "    name: default
    namespace: kube-weft" &&
  expect_fail "rbac: bound to another ServiceAccount" "subjects" manifests rbac

fresh && mutate manifests/02-configmap.yaml '"type": "portmap"' '"type": "portmapper"' &&
  expect_fail "cni: a plugin Debian does not have" "no CNI plugin 'portmapper'" manifests cni
fresh && mutate manifests/02-configmap.yaml '"cniVersion": "1.0.0"' '"cniVersion": "1.1.0"' &&
  expect_fail "cni: a cniVersion libcni 1.1.2 refuses" "cniVersion '1.1.0'" manifests cni
fresh && mutate manifests/02-configmap.yaml '"name": "weft",' '"name": "weft"' &&
  expect_fail "cni: broken JSON" "not valid JSON" manifests cni
fresh && mutate packaging/10-weft.conflist '"hairpinMode": true' '"hairpinMode": false' &&
  expect_fail "cni: the package's conflist drifts" "differs from the ConfigMap" manifests cni

fresh && mutate manifests/02-configmap.yaml '"Type": "vxlan"' '"Type": "vxlan", "VNI": 99999999' &&
  expect_fail "netconf: weftd --check-config refuses it" "weftd --check-config refuses" manifests netconf
fresh && mutate manifests/02-configmap.yaml '"Network": "10.244.0.0/16"' '"Network": "10.96.0.0/12"' &&
  expect_fail "netconf: not kubeadm's pod network" "the README and the Vagrant lab use" manifests netconf

fresh && mutate manifests/03-daemonset.yaml "- --ip-masq" "- --ipmasq" &&
  expect_fail "daemonset: a flag weftd does not have" "weftd has no flag --ipmasq" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "- --ip-masq" "- --subnet-file=/var/lib/weft/subnet.env" &&
  expect_fail "daemonset: subnet.env outside the hostPath" "is not on a hostPath volume" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "- --ip-masq" "- --net-config-path=/etc/weft-conf/net-conf.json" &&
  expect_fail "daemonset: net-conf.json not from the ConfigMap" "not the ConfigMap's net-conf.json" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "- --healthz-port=8471" "- --healthz-port=8472" &&
  expect_fail "daemonset: probes on another port" "livenessProbe should GET /healthz on port 8472" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "path: /readyz" "path: /healthz" &&
  expect_fail "daemonset: readiness on /healthz" "readinessProbe should GET /readyz" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "privileged: false" "privileged: true" &&
  expect_fail "daemonset: privileged" "must not be privileged" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml '["NET_ADMIN", "NET_RAW"]' '["NET_ADMIN", "SYS_ADMIN"]' &&
  expect_fail "daemonset: capabilities" "want NET_ADMIN and NET_RAW" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "fieldPath: spec.nodeName" "fieldPath: metadata.name" &&
  expect_fail "daemonset: NODE_NAME" "NODE_NAME must come from fieldRef spec.nodeName" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "- operator: Exists
          effect: NoSchedule" "- key: node-role.kubernetes.io/control-plane
          operator: Exists
          effect: NoSchedule" &&
  expect_fail "daemonset: tolerates only one taint" "every NoSchedule taint" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "mv -f /host/etc/cni/net.d/.10-weft.conflist.tmp" \
  "mv -f /host/opt/cni/bin/.10-weft.conflist.tmp" &&
  expect_fail "daemonset: conflist renamed across directories" "must be in the directory of" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml ".10-weft.conflist.tmp
" ".10-weft.conflist.tmp.conflist
" && mutate manifests/03-daemonset.yaml "mv -f /host/etc/cni/net.d/.10-weft.conflist.tmp " \
  "mv -f /host/etc/cni/net.d/.10-weft.conflist.tmp.conflist " &&
  expect_fail "daemonset: a temporary name the runtime would load" "ends like a CNI config" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "set -eu
              cp /opt/cni/bin/weft" "cp /opt/cni/bin/weft" &&
  expect_fail "daemonset: install script without set -e" "must start with \`set -e\`" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "cp /opt/cni/bin/weft " "cp /usr/bin/weft " &&
  expect_fail "daemonset: CNI plugin copied from a path the image lacks" "not where the image" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "          image: localhost/weft:0.1.0
          imagePullPolicy: IfNotPresent
          command: [\"/usr/bin/weftd\"]" "          image: localhost/weft:0.2.0
          imagePullPolicy: IfNotPresent
          command: [\"/usr/bin/weftd\"]" &&
  expect_fail "daemonset: two image references" "containers use different images" manifests daemonset
fresh && mutate vagrant/provision/image.sh "mode=\$1" "mode=\$1
image=localhost/weft:0.1.0" &&
  expect_fail "daemonset: the image reference repeated in a script" "repeats the image reference" manifests daemonset
fresh && mutate manifests/03-daemonset.yaml "cpu: 50m" "cpu: 2" &&
  expect_fail "daemonset: an immodest request" "cpu request 2 " manifests daemonset

fresh && mutate Dockerfile "COPY --from=build /out/usr/bin/weftctl /usr/bin/weftctl" \
  "COPY --from=build /out/usr/bin/weftctl /usr/bin/weftctl
COPY --from=build /src/scripts /scripts" &&
  expect_fail "Dockerfile: runtime copies more than the binaries" "should copy exactly" dockerfile
fresh && mutate Dockerfile "libnl-3-200 " "libnl-3-2000 " &&
  expect_fail "Dockerfile: a package Debian does not have" "no Debian package 'libnl-3-2000'" dockerfile
fresh && mutate Dockerfile "libspdlog1.10 " "" &&
  expect_fail "Dockerfile: a library the binaries load is missing" "add libspdlog1.10 to the runtime stage" dockerfile_libs
fresh && mutate Dockerfile "libcli11-dev " "" &&
  expect_fail "Dockerfile: build stage lacks a setup.sh build package" "the Dockerfile's build stage lacks it" dockerfile
fresh && mutate Dockerfile "debian:bookworm-slim" "debian:bookworm" &&
  expect_fail "Dockerfile: a fat runtime stage" "bookworm-slim" dockerfile

fresh && mutate vagrant/Vagrantfile "Vagrant.configure(\"2\") do |config|" "Vagrant.configure(\"2\") do |config" &&
  expect_fail "vagrant: a syntax error" "ruby -c" vagrant
fresh && mutate vagrant/Vagrantfile 'POD_CIDR = "10.244.0.0/16"' 'POD_CIDR = "10.32.0.0/12"' &&
  expect_fail "vagrant: kubeadm's pod CIDR differs from net-conf.json" "differs from net-conf.json's Network" vagrant
fresh && mutate vagrant/Vagrantfile '"#{NET_PREFIX}.12"' '"10.0.2.12"' &&
  expect_fail "vagrant: a worker on the NAT network" "VirtualBox's NAT network" vagrant
fresh && mutate vagrant/Vagrantfile 'args: [node[:ip], K8S_MINOR]' 'args: [node[:ip]]' &&
  expect_fail "vagrant: a script given too few arguments" "reads 2 arguments, is given 1" vagrant
fresh && mutate vagrant/Vagrantfile 'args: [CONTROL_PLANE[:ip], TOKEN]' 'args: [CONTROL_PLANE[:ip], "abcdef.0123456789abcdef"]' &&
  expect_fail "vagrant: workers join with another token" "joins with a token other than" vagrant
fresh && mutate vagrant/Vagrantfile 'path: "provision/worker.sh"' 'path: "provision/join.sh"' &&
  expect_fail "vagrant: a provisioner script that does not exist" "does not exist" vagrant
fresh && mutate vagrant/Vagrantfile 'if node.equal?(WORKERS.last)' 'if false' &&
  expect_fail "vagrant: no smoke test" "runs the smoke test" vagrant

# shellcheck disable=SC2016 # the $ are the scripts' own
fresh && mutate vagrant/provision/worker.sh 'kubeadm join "${cp_ip}:6443"' 'kubeadm join ${cp_ip}:6443' &&
  expect_fail "shellcheck: an unquoted variable" "SC2086" shellcheck "$tmp/r/vagrant/provision/worker.sh"
# shellcheck disable=SC2016
fresh && mutate packaging/debian/postinst 'if [ "$1" = "configure" ]' 'if [[ "$1" == "configure" ]]' &&
  expect_fail "shellcheck: bash in a /bin/sh maintainer script" "SC3010" shellcheck "$tmp/r/packaging/debian/postinst"

if ((failures)); then
  echo "selftest: $failures of $cases cases did not fail as they should"
  exit 1
fi
echo "selftest: all $cases broken copies were caught"
