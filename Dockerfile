# weft's container image: weftd (the daemon), weftctl (status) and the weft CNI plugin.
# Build from the repository root, tagged with the image reference of the DaemonSet (kept
# only in manifests/03-daemonset.yaml; vagrant/provision/image.sh reads it from there):
#   image=$(sed -n 's/^ *image: *//p' manifests/03-daemonset.yaml | sort -u)
#   buildah build -t "$image" .        (or: docker build -t "$image" .)

# --- build: Debian bookworm with the same -dev packages scripts/setup.sh installs ---------
FROM docker.io/library/debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libnl-3-dev libnl-route-3-dev libcpprest-dev libssl-dev libboost-dev \
      nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libnftables-dev libyaml-cpp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF \
 && cmake --build /build -j "$(nproc)" --target weftd weftctl weft \
 && install -D -s /build/cmd/weftd/weftd /out/usr/bin/weftd \
 && install -D -s /build/cmd/weftctl/weftctl /out/usr/bin/weftctl \
 && install -D -s /build/cmd/weft/weft /out/opt/cni/bin/weft

# --- runtime: bookworm-slim with only the shared libraries the three binaries load ------
FROM docker.io/library/debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libnl-3-200 libnl-route-3-200 libcpprest2.10 libspdlog1.10 libfmt9 libnftables1 libyaml-cpp0.7 libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/bin/weftd /usr/bin/weftd
COPY --from=build /out/usr/bin/weftctl /usr/bin/weftctl
COPY --from=build /out/opt/cni/bin/weft /opt/cni/bin/weft
ENTRYPOINT ["/usr/bin/weftd"]
