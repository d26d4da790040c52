#!/usr/bin/env bash
# The weft image in containerd's k8s.io namespace, under the reference the DaemonSet uses
# (read from manifests/03-daemonset.yaml, the only place it is written).
#   image.sh build CP_IP   on the control plane: build it from /weft/Dockerfile with buildah,
#                          import it, and serve the archive to the workers on CP_IP:8099
#   image.sh fetch CP_IP   on a worker: download that archive (checksum verified) and import
#                          it; build it here instead if the control plane cannot serve it
set -euo pipefail

mode=$1
cp_ip=$2
src=/weft
dir=/var/lib/weft-image
archive=$dir/weft-image.tar
port=8099
export DEBIAN_FRONTEND=noninteractive

image=$(sed -n 's/^[[:space:]]*image:[[:space:]]*//p' "$src/manifests/03-daemonset.yaml" | sort -u)
if [[ -z $image || $image == *$'\n'* ]]; then
  echo "image: expected one image reference in manifests/03-daemonset.yaml, found: ${image:-none}" >&2
  exit 1
fi
mkdir -p "$dir"

build() {
  echo "image: building $image from $src/Dockerfile with buildah (several minutes)"
  apt-get install -y -qq --no-install-recommends buildah >/dev/null
  # chroot isolation: no OCI runtime or CNI network needed for the RUN steps.
  buildah build --isolation chroot --layers -f "$src/Dockerfile" -t "$image" "$src"
  rm -f "$archive"
  buildah push "$image" "docker-archive:$archive:$image"
  (cd "$dir" && sha256sum "$(basename "$archive")" >"$archive.sha256")
}

fetch() {
  echo "image: fetching $image from http://$cp_ip:$port/"
  curl -fsS --retry 5 --retry-connrefused -o "$archive.sha256" "http://$cp_ip:$port/weft-image.tar.sha256" &&
    curl -fsS --retry 5 --retry-connrefused -o "$archive" "http://$cp_ip:$port/weft-image.tar" &&
    (cd "$dir" && sha256sum --check --quiet "$archive.sha256")
}

serve() {
  apt-get install -y -qq --no-install-recommends python3 >/dev/null
  systemctl stop weft-image-server.service 2>/dev/null || true
  systemctl reset-failed weft-image-server.service 2>/dev/null || true
  # Only for the lab's own bring-up: stops by itself after two hours.
  systemd-run --quiet --unit weft-image-server --property RuntimeMaxSec=7200 \
    python3 -m http.server "$port" --bind "$cp_ip" --directory "$dir"
  echo "image: serving $archive on http://$cp_ip:$port/ for the workers"
}

case $mode in
  build)
    build
    serve
    ;;
  fetch)
    if ! fetch; then
      echo "image: cannot fetch from the control plane; building here instead"
      build
    fi
    ;;
  *)
    echo "usage: image.sh build|fetch CONTROL_PLANE_IP" >&2
    exit 2
    ;;
esac

ctr --namespace k8s.io images import "$archive" >/dev/null
if ! ctr --namespace k8s.io images list --quiet | grep -qxF "$image"; then
  echo "image: $image is not in containerd after the import" >&2
  exit 1
fi
echo "image: $image is in containerd (namespace k8s.io)"
