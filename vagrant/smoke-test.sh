#!/usr/bin/env bash
# The lab's smoke test, run on the control plane (vagrant ssh weft-cp -c "sudo bash
# /weft/vagrant/smoke-test.sh"): two nginx pods on two different nodes ping and curl each
# other by pod IP, and a third pod curls them through a ClusterIP Service by DNS name.
# Everything lives in the namespace weft-smoke, made anew on every run. Exit 0 = PASS.
set -euo pipefail

# On the lab's control plane (as root) use the admin kubeconfig; elsewhere kubectl's own.
if [[ -z ${KUBECONFIG:-} && -r /etc/kubernetes/admin.conf ]]; then
  export KUBECONFIG=/etc/kubernetes/admin.conf
fi
ns=weft-smoke
nodes_expected=${WEFT_SMOKE_NODES:-3}
failures=0
say() { echo "smoke: $*"; }
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then
    say "ok   $what"
  else
    say "FAIL $what"
    failures=$((failures + 1))
  fi
}

say "waiting for ${nodes_expected} Ready nodes and weft on each"
for _ in $(seq 60); do
  ready=$(kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)
  ((ready >= nodes_expected)) && break
  sleep 5
done
kubectl get nodes -o wide
kubectl wait --for=condition=Ready nodes --all --timeout=120s >/dev/null
kubectl -n kube-weft rollout status daemonset/kube-weft-ds --timeout=300s
kubectl -n kube-weft get pods -o wide

kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$ns" >/dev/null
kubectl -n "$ns" apply -f - >/dev/null <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
spec:
  replicas: 2
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      affinity:
        podAntiAffinity:  # one per node
          requiredDuringSchedulingIgnoredDuringExecution:
            - labelSelector:
                matchLabels: {app: nginx}
              topologyKey: kubernetes.io/hostname
      containers:
        - name: nginx
          image: docker.io/library/nginx:1.27
          ports: [{containerPort: 80}]
        - name: tools  # shares the nginx pod's network namespace: ping and curl from it
          image: docker.io/curlimages/curl:8.10.1
          command: ["sleep", "86400"]
          securityContext:
            runAsUser: 0  # busybox ping needs a raw socket
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  selector: {app: nginx}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
    - name: curl
      image: docker.io/curlimages/curl:8.10.1
      command: ["sleep", "86400"]
YAML
kubectl -n "$ns" rollout status deployment/nginx --timeout=300s >/dev/null
kubectl -n "$ns" wait --for=condition=Ready pod/client --timeout=300s >/dev/null

mapfile -t pods < <(kubectl -n "$ns" get pods -l app=nginx \
  -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP}{"\n"}{end}')
if ((${#pods[@]} != 2)); then
  say "FAIL expected 2 nginx pods, found ${#pods[@]}"
  exit 1
fi
read -r pod_a node_a ip_a <<<"${pods[0]}"
read -r pod_b node_b ip_b <<<"${pods[1]}"
client_node=$(kubectl -n "$ns" get pod client -o jsonpath='{.spec.nodeName}')
say "nginx pod ${pod_a} on ${node_a} has ${ip_a}"
say "nginx pod ${pod_b} on ${node_b} has ${ip_b}"
say "client pod on ${client_node}"
check "the two nginx pods are on different nodes" test "$node_a" != "$node_b"

ping_pod() { kubectl -n "$ns" exec "$1" -c tools -- ping -c 3 -W 2 "$2" >/dev/null; }
curl_pod() { kubectl -n "$ns" exec "$1" -c tools -- curl -fsS -m 5 -o /dev/null "http://$2/"; }
curl_svc() {
  kubectl -n "$ns" exec client -- curl -fsS -m 5 -o /dev/null "http://nginx.${ns}.svc.cluster.local/"
}
check "ping ${ip_a} (${node_a}) -> ${ip_b} (${node_b})" ping_pod "$pod_a" "$ip_b"
check "ping ${ip_b} (${node_b}) -> ${ip_a} (${node_a})" ping_pod "$pod_b" "$ip_a"
check "curl ${ip_a} (${node_a}) -> http://${ip_b}/" curl_pod "$pod_a" "$ip_b"
check "curl ${ip_b} (${node_b}) -> http://${ip_a}/" curl_pod "$pod_b" "$ip_a"
check "curl client (${client_node}) -> http://nginx.${ns}.svc.cluster.local/ (ClusterIP, DNS)" curl_svc

# Each node's weftctl reads its own kernel: one peer per other node, route/neighbour/FDB in place
# (weftctl peers exits 1 when any is missing or wrong; -o json: one "vtep_mac" per peer).
weft_peers_ok() {
  local out count
  if ! out=$(kubectl -n kube-weft exec "$1" -c weftd -- weftctl peers --output json); then
    echo "$out"
    return 1
  fi
  count=$(grep -c '"vtep_mac"' <<<"$out" || true)
  if ((count != nodes_expected - 1)); then
    echo "$out"
    return 1
  fi
}
mapfile -t weft_pods < <(kubectl -n kube-weft get pods -l app=weft -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
for p in "${weft_pods[@]}"; do
  check "weftctl peers in ${p}: $((nodes_expected - 1)) peers, every route/neighbour/FDB in the kernel" weft_peers_ok "$p"
done

if ((failures)); then
  say "FAIL (${failures} checks failed; the pods stay in namespace ${ns} for a look)"
  exit 1
fi
kubectl delete namespace "$ns" --wait=false >/dev/null
say "PASS"
