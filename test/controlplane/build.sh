#!/usr/bin/env bash
# Builds a real Kubernetes 1.20.2 control plane (kube-apiserver, kube-controller-manager) from
# Debian bookworm's `kubernetes` source package, and extracts Debian's kubectl 1.20.2 from the
# `kubernetes-client` .deb without installing it (it conflicts with a non-Debian /usr/bin/kubectl
# on some machine images). Results land in $WEFT_KUBE_CACHE/bin (default
# /var/cache/weft/kube-v1.20.2/bin). Idempotent, non-interactive, run as root.
# No registry ships kube-apiserver binaries, hence the source build; see README.md beside this file.
set -euo pipefail

VERSION=v1.20.2
CACHE=${WEFT_KUBE_CACHE:-/var/cache/weft/kube-v1.20.2}
BIN=$CACHE/bin
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCES_FILE=/etc/apt/sources.list.d/weft-deb-src.sources
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
TOOLS=(kube-apiserver kube-controller-manager kubectl)

die() {
  echo "build.sh: ERROR: $*" >&2
  exit 1
}

all_built() {
  local t
  for t in "${TOOLS[@]}"; do [[ -x $BIN/$t ]] || return 1; done
}

if all_built; then
  echo "build.sh: cached: ${TOOLS[*]} in $BIN"
  exit 0
fi

phase_start=0
build_start=$(date +%s)
phase() {
  phase_start=$(date +%s)
  echo "build.sh: == $* =="
}
phase_done() {
  echo "build.sh: -- $1 took $(($(date +%s) - phase_start)) s"
}

check_tools() {
  local missing=() c
  for c in apt-get dpkg-source dpkg-deb go python3 etcd openssl; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  ((${#missing[@]} == 0)) || die "missing commands: ${missing[*]}; run scripts/setup.sh (packages golang-go etcd-server dpkg-dev openssl)"
  [[ -f $REFLECT2_SRC/reflect2.go ]] ||
    die "$REFLECT2_SRC missing: apt-get install golang-github-modern-go-reflect2-dev (or run scripts/setup.sh)"
  local gov
  gov=$(go env GOVERSION)
  [[ $gov =~ ^go1\.(19|[2-9][0-9])(\.|$) ]] || die "go $gov found; Debian bookworm's golang-go (1.19) is needed"
  ((EUID == 0)) || die "run as root (it adds an apt source and runs apt-get)"
}

# apt-get source needs a deb-src entry; add one of our own (deb822) only if apt knows no source.
ensure_deb_src() {
  if apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then
    return
  fi
  if [[ ! -f $SOURCES_FILE ]]; then
    echo "build.sh: adding $SOURCES_FILE (deb-src for bookworm main)"
    cat >"$SOURCES_FILE" <<'SRC'
# Added by weft's test/controlplane/build.sh: source packages (kubernetes) for the test control plane.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt-get update -qq || die "apt-get update failed (check network access to the Debian archive)"
  apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes' ||
    die "apt knows no source package 'kubernetes' even after adding $SOURCES_FILE"
}

# Sets SRC to the unpacked source tree, downloading it only once.
fetch_source() {
  mkdir -p "$CACHE/src"
  SRC=$(find "$CACHE/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' -print -quit)
  if [[ -n $SRC && -f $SRC/.weft-unpacked ]]; then
    echo "build.sh: source already unpacked in $SRC"
    return
  fi
  [[ -z $SRC ]] || rm -rf "$SRC"
  ensure_deb_src
  (cd "$CACHE/src" && apt-get -o APT::Sandbox::User=root source -qq kubernetes </dev/null) ||
    die "apt-get source kubernetes failed in $CACHE/src"
  SRC=$(find "$CACHE/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' -print -quit)
  [[ -n $SRC && -f $SRC/go.mod ]] || die "no kubernetes-*/go.mod under $CACHE/src after apt-get source"
  # The tarballs are not needed once unpacked (apt-get source can fetch them again).
  find "$CACHE/src" -maxdepth 1 -type f -delete
  touch "$SRC/.weft-unpacked"
}

# Fix 2: vendored reflect2 v1.0.1 breaks on Go >= 1.18; use Debian's v1.0.2.
fix_reflect2() {
  local dst=$SRC/vendor/github.com/modern-go/reflect2
  [[ -f $SRC/.weft-reflect2 ]] && return
  rm -rf "$dst"
  mkdir -p "$dst"
  find "$REFLECT2_SRC" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name LICENSE \) ! -name '*_test.go' \
    -exec cp -L {} "$dst/" \;
  sed -i -E 's#(github\.com/modern-go/reflect2) v1\.0\.1#\1 v1.0.2#g' "$SRC/go.mod" "$SRC/vendor/modules.txt"
  rm -f "$SRC/go.sum.weft-unused"
  touch "$SRC/.weft-reflect2"
  echo "build.sh: vendor reflect2 replaced by Debian's v1.0.2"
}

# Fix 1: Debian re-sorted vendor/modules.txt; rebuild it from go.mod and the package list.
fix_modules_txt() {
  [[ -f $SRC/.weft-modules ]] && return
  python3 "$HERE/fix_modules_txt.py" "$SRC" || die "regenerating $SRC/vendor/modules.txt failed"
  touch "$SRC/.weft-modules"
}

go_env() {
  export GOCACHE=$CACHE/gocache GOPATH=$CACHE/gopath GOMODCACHE=$CACHE/gopath/pkg/mod
  export GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 GOENV=off GOTOOLCHAIN=local GO111MODULE=on
  export GOSUMDB=off GOTELEMETRY=off
}

# Fix 3: pkg/generated/openapi/zz_generated.openapi.go is not shipped; generate it the way
# upstream's build/root/Makefile.generated_files does (openapi-gen in GOPATH mode).
gen_openapi() {
  local out=$SRC/pkg/generated/openapi/zz_generated.openapi.go
  [[ -s $out ]] && return
  local gp=$CACHE/gopath-openapi gen=$CACHE/tools/openapi-gen
  mkdir -p "$CACHE/tools" "$gp/src/k8s.io"
  (cd "$SRC" && go build -o "$gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen) ||
    die "building the vendored openapi-gen failed"
  ln -sfn "$SRC" "$gp/src/k8s.io/kubernetes"
  # Same selection as upstream's Makefile.generated_files: files with a +k8s: tag outside
  # ./vendor, ./_* and ./.*, staging/src named as vendor/, minus code-generator and sample-apiserver.
  local dirs
  dirs=$(cd "$gp/src/k8s.io/kubernetes" &&
    find -H . \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune -o -type f -name '*.go' -print0 |
    xargs -0 grep -l --null '^// *+k8s:' | xargs -0 grep -l '+k8s:openapi-gen=' |
    sed -e 's#/[^/]*$##' -e 's#^\./##' -e 's#^staging/src/#vendor/#' |
    grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' |
    LC_ALL=C sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd, -)
  [[ -n $dirs ]] || die "no package tagged +k8s:openapi-gen= found in $SRC"
  (cd "$gp/src/k8s.io/kubernetes" &&
    GO111MODULE=off GOPATH=$gp GOFLAGS='' "$gen" \
      --logtostderr -v 1 \
      -i "$dirs" \
      -p k8s.io/kubernetes/pkg/generated/openapi \
      -O zz_generated.openapi \
      -h hack/boilerplate/boilerplate.generatego.txt \
      -r "$CACHE/tools/openapi-violations.report" \
      -o "$gp/src") >"$CACHE/tools/openapi-gen.log" 2>&1 ||
    die "openapi-gen failed; see $CACHE/tools/openapi-gen.log"
  [[ -s $out ]] || die "openapi-gen produced no $out; see $CACHE/tools/openapi-gen.log"
}

build_binaries() {
  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version ld=() t
  local date
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in $pkg $cpkg; do
    ld+=("-X $p.gitVersion=$VERSION" "-X $p.gitMajor=1" "-X $p.gitMinor=20"
      "-X $p.gitTreeState=clean" "-X $p.buildDate=$date")
  done
  mkdir -p "$BIN"
  for t in kube-apiserver kube-controller-manager; do
    [[ -x $BIN/$t ]] && continue
    echo "build.sh: go build ./cmd/$t"
    (cd "$SRC" && go build -trimpath -ldflags "-s -w ${ld[*]}" -o "$BIN/$t.tmp" "./cmd/$t") ||
      die "go build ./cmd/$t failed (source in $SRC)"
    mv "$BIN/$t.tmp" "$BIN/$t"
  done
}

# kubectl: Debian's kubernetes-client, downloaded and unpacked, never installed.
fetch_kubectl() {
  [[ -x $BIN/kubectl ]] && return
  local dl=$CACHE/kubectl-deb
  rm -rf "$dl"
  mkdir -p "$dl/root" "$BIN"
  (cd "$dl" && apt-get -o APT::Sandbox::User=root download -qq kubernetes-client </dev/null) ||
    (apt-get update -qq && cd "$dl" && apt-get -o APT::Sandbox::User=root download -qq kubernetes-client </dev/null) ||
    die "apt-get download kubernetes-client failed"
  local deb
  deb=$(find "$dl" -maxdepth 1 -name 'kubernetes-client_*.deb' -print -quit)
  [[ -n $deb ]] || die "no kubernetes-client_*.deb in $dl"
  dpkg-deb -x "$deb" "$dl/root"
  [[ -x $dl/root/usr/bin/kubectl ]] || die "$deb holds no usr/bin/kubectl"
  cp "$dl/root/usr/bin/kubectl" "$BIN/kubectl.tmp"
  mv "$BIN/kubectl.tmp" "$BIN/kubectl"
  rm -rf "$dl"
}

main() {
  phase "checks"
  check_tools
  mkdir -p "$CACHE"
  phase_done checks
  phase "kubectl from kubernetes-client.deb"
  fetch_kubectl
  phase_done kubectl
  if [[ ! -x $BIN/kube-apiserver || ! -x $BIN/kube-controller-manager ]]; then
    phase "source (apt-get source kubernetes)"
    fetch_source
    phase_done source
    phase "vendor fixes (reflect2, modules.txt)"
    go_env
    fix_reflect2
    fix_modules_txt
    phase_done "vendor fixes"
    phase "openapi-gen"
    gen_openapi
    phase_done openapi-gen
    phase "go build"
    build_binaries
    phase_done "go build"
  fi
  "$BIN/kube-apiserver" --version
  "$BIN/kubectl" version --client --short 2>/dev/null || "$BIN/kubectl" version --client
  echo "build.sh: done in $(($(date +%s) - build_start)) s; binaries in $BIN"
  du -sh "$CACHE" 2>/dev/null || true
}

main "$@"
