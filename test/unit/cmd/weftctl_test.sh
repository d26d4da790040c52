#!/usr/bin/env bash
# weftctl status against a stand-in for weftd's health endpoint (python3 on loopback):
# what it prints and its exit code for ready, not ready and not running.
set -euo pipefail
weftctl=$1
tmp=$(mktemp -d)
server_pid=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
check() {  # check WHAT EXPECTED_RC OUTPUT_SUBSTRING... -- runs weftctl status with $args
  local what=$1 want_rc=$2
  shift 2
  local out rc=0
  out=$("$weftctl" status --subnet-file "$tmp/subnet.env" --endpoint "127.0.0.1:$port" --timeout-ms 3000 2>&1) || rc=$?
  if [[ $rc != "$want_rc" ]]; then
    echo "FAIL $what: exit $rc, want $want_rc; output:"; echo "$out"; fails=$((fails + 1)); return
  fi
  for s in "$@"; do
    if [[ $out != *"$s"* ]]; then
      echo "FAIL $what: output lacks '$s':"; echo "$out"; fails=$((fails + 1)); return
    fi
  done
  echo "ok   $what"
}
start_server() {  # start_server READYZ_STATUS READYZ_BODY
  cat >"$tmp/server.py" <<PY
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/readyz":
            code, body = $1, "$2\n"
        elif self.path == "/metrics":
            code, body = 200, open("$tmp/metrics").read()
        elif self.path == "/status" and __import__("os").path.exists("$tmp/status.json"):
            code, body = 200, open("$tmp/status.json").read()
        else:
            code, body = 404, "no\n"
        self.send_response(code); self.end_headers(); self.wfile.write(body.encode())
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open("$tmp/port.tmp", "w").write(str(s.server_port)); __import__("os").rename("$tmp/port.tmp", "$tmp/port")
s.serve_forever()
PY
  rm -f "$tmp/port"
  python3 "$tmp/server.py" &
  server_pid=$!
  for _ in $(seq 100); do [[ -s $tmp/port ]] && break; sleep 0.05; done
  port=$(cat "$tmp/port")
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=; }

printf 'WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.7.1/24\nWEFT_MTU=1450\nWEFT_IPMASQ=true\n' >"$tmp/subnet.env"
cat >"$tmp/metrics" <<'M'
# HELP weft_peers_programmed Peers whose routes are in the kernel.
# TYPE weft_peers_programmed gauge
weft_peers_programmed 41
weft_peers_skipped 2
weft_reconciles_total 7
weft_kube_relists_total 1
weft_kube_nodes_skipped 2
M

start_server 200 ok
check "ready node" 0 "10.244.7.0/24 (network 10.244.0.0/16, MTU 1450, masquerade on)" "ready       yes" \
  "41 programmed, 2 skipped" "7 reconciles" "1 relists" "2 nodes skipped"
stop_server

start_server 503 "VXLAN device unusable: weft.1 is a veth, not a VXLAN device"
check "VTEP broken" 1 "ready       no: VXLAN device unusable: weft.1 is a veth"
stop_server

# weftd writes another --subnet-file: weftctl asks weftd instead of reading the default path.
rm "$tmp/subnet.env"
cat >"$tmp/status.json" <<'J'
{"ready":true,"subnet_file":"/var/lib/other/subnet.env","lease":{"subnet":"10.244.9.0/24","public_ip":"192.0.2.9",
 "vtep_mac":"0e:00:00:00:00:09","network":"10.244.0.0/16","mtu":1400,"ipmasq":false}}
J
start_server 200 ok
check "lease from weftd's /status" 0 "10.244.9.0/24 (network 10.244.0.0/16, MTU 1400, masquerade off)" \
  "subnet file /var/lib/other/subnet.env" "public IP 192.0.2.9, VTEP MAC 0e:00:00:00:00:09" "ready       yes"
stop_server
rm "$tmp/status.json"

check "weftd not running" 2 "not reachable" "Connection refused" "subnet      unknown"

if "$weftctl" status --endpoint nonsense >/dev/null 2>&1; then
  echo "FAIL a bad --endpoint is accepted"; fails=$((fails + 1))
else
  echo "ok   a bad --endpoint is refused"
fi
exit $((fails > 0))
