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
run() {  # run WHAT EXPECTED_RC OUTPUT_SUBSTRING... -- weftctl "${cmd[@]}"
  local what=$1 want_rc=$2
  shift 2
  local out rc=0
  out=$("$weftctl" "${cmd[@]}" 2>&1) || rc=$?
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
check() {  # check WHAT EXPECTED_RC OUTPUT_SUBSTRING... -- weftctl status against the fake server
  local -a cmd=(status --subnet-file "$tmp/subnet.env" --endpoint "127.0.0.1:$port" --timeout-ms 3000)
  run "$@"
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

# ---- peers and doctor against a fake /status (a VTEP name no namespace has, so the kernel
# holds none of the peers' entries), status --output json, exit codes.
json_has() {  # json_has WHAT PYTHON_EXPR -- the expression over `j` (weftctl's JSON) must be true
  local what=$1 expr=$2 out
  out=$("$weftctl" "${cmd[@]}" 2>&1) || true
  if python3 -c "import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if ($expr) else 1)" "$out" 2>/dev/null; then
    echo "ok   $what"
  else
    echo "FAIL $what: not ($expr):"; echo "$out"; fails=$((fails + 1))
  fi
}
write_status() {  # write_status PUBLIC_IP
  cat >"$tmp/status.json" <<J
{"ready":true,"subnet_file":"$tmp/subnet.env","network":"10.244.0.0/16",
 "lease":{"subnet":"10.244.9.0/24","public_ip":"$1","vtep_mac":"0e:00:00:00:00:09","network":"10.244.0.0/16","mtu":1450,"ipmasq":true},
 "vtep":{"name":"wctl-none.7","vni":7,"port":8472,"local_ip":"$1","mtu_wanted":1450,"backend_mtu":null,
         "learning":false,"gbp":false,"direct_routing":false},
 "underlay":{"name":"lo","ifindex":1,"address":"$1","public_ip":"$1","mtu":1500},
 "peers":[{"node":"node2","subnet":"10.244.2.0/24","gateway":"10.244.2.0","public_ip":"192.0.2.2","vtep_mac":"0e:00:00:00:00:02"}],
 "skipped":[{"node":"node5","reason":"subnet 10.244.2.0/25 overlaps node node2's","by":"node watch"}],
 "kubernetes":{"kubeconfig_file":"","api_url":"https://127.0.0.1:1"}}
J
}
write_status 192.0.2.9
cmd=(peers --status-file "$tmp/status.json")
run "peers: text, one line per peer and the skipped" 1 \
  "node2  10.244.2.0/24  192.0.2.2  0e:00:00:00:00:02  missing  missing  missing" \
  "skipped node5: subnet 10.244.2.0/25 overlaps node node2's (node watch)" "no device wctl-none.7"
cmd=(peers --status-file "$tmp/status.json" --output json)
json_has "peers --output json" \
  "j['peers'][0]['node']=='node2' and j['peers'][0]['route']['state']=='missing' and j['peers'][0]['fdb']['state']=='missing' and j['skipped'][0]['node']=='node5' and not j['vtep_present']"
cmd=(peers --endpoint 127.0.0.1:1 --timeout-ms 500)
run "peers: weftd not running" 2 "weftd not reachable"
cmd=(peers --status-file "$tmp/status.json" --output yaml)
run "peers: a bad --output is a usage error" 2
echo '{"ready":true,"subnet_file":"x"}' >"$tmp/old-status.json"
cmd=(peers --status-file "$tmp/old-status.json")
run "peers: a weftd without the datapath in /status" 2 "is weftd older than weftctl?"

# doctor's host checks, each made to pass, then to fail.
mkdir -p "$tmp/sys/net/ipv4/conf/all" "$tmp/sys/net/ipv4/conf/lo" "$tmp/net.d" "$tmp/bin"
echo 1 >"$tmp/sys/net/ipv4/ip_forward"
echo 0 >"$tmp/sys/net/ipv4/conf/all/rp_filter"
echo 2 >"$tmp/sys/net/ipv4/conf/lo/rp_filter"
printf '{"cniVersion":"1.0.0","name":"weft","plugins":[{"type":"weft"},{"type":"portmap"}]}\n' >"$tmp/net.d/10-weft.conflist"
printf '#!/bin/sh\n' >"$tmp/bin/weft" && chmod 755 "$tmp/bin/weft"
printf 'WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.9.1/24\nWEFT_MTU=1450\nWEFT_IPMASQ=true\n' >"$tmp/subnet.env"
doctor=(doctor --status-file "$tmp/status.json" --proc-sys "$tmp/sys" --cni-conf-dir "$tmp/net.d"
  --cni-bin-dir "$tmp/bin" --timeout-ms 1000)
check_names() {  # check_names WHAT PASS|FAIL NAME... -- doctor --output json names each check so
  local what=$1 want=$2
  shift 2
  local names
  names=$(printf "'%s'," "$@")
  cmd=("${doctor[@]}" --output json)
  json_has "$what" "all(any(c['name']==n and c['pass']==('$want'=='PASS') and ('$want'=='PASS' or c['fix']) for c in j['checks']) for n in [$names]) and not j['pass']"
}
check_names "doctor: host checks pass" PASS "subnet.env" "cni conflist" "cni binary" "ip_forward" "rp_filter" "underlay not NAT"
check_names "doctor: kernel and API checks fail here" FAIL "vtep exists" "peer entries" "api server"
cmd=("${doctor[@]}")
run "doctor: text, exit 1 on any FAIL" 1 "PASS  ip_forward" "FAIL  vtep exists" "fix: " "checks FAIL"
echo 1 >"$tmp/sys/net/ipv4/conf/all/rp_filter"  # the kernel takes the larger of all and lo: 2, loose
check_names "doctor: rp_filter all=1 with lo=2 is loose" PASS "rp_filter"
echo 0 >"$tmp/sys/net/ipv4/conf/lo/rp_filter"  # now strict
echo 0 >"$tmp/sys/net/ipv4/ip_forward"
printf '{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge"}]}\n' >"$tmp/net.d/05-other.conflist"
chmod 644 "$tmp/bin/weft"
printf 'WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.8.1/24\nWEFT_MTU=1450\nWEFT_IPMASQ=true\n' >"$tmp/subnet.env"
write_status 10.0.2.15
check_names "doctor: each host check fails when broken" FAIL "subnet.env" "cni conflist" "cni binary" "ip_forward" "rp_filter" "underlay not NAT"
cmd=("${doctor[@]}")
run "doctor: the reasons" 1 "net.ipv4.ip_forward = 0" "rp_filter all = 1, lo = 0: strict" \
  "05-other.conflist sorts first and is not weft's" "is not executable" "subnet 10.244.8.0/24, lease 10.244.9.0/24" \
  "10.0.2.15 on lo is a VirtualBox/QEMU NAT address"
rm "$tmp/net.d/"*
check_names "doctor: no conflist at all" FAIL "cni conflist"
cmd=(doctor --endpoint 127.0.0.1:1 --timeout-ms 500)
run "doctor: weftd not running" 2 "weftd not reachable"
cmd=(doctor --no-such-flag)
run "doctor: an unknown flag is a usage error" 2

# ---- dual stack (EnableIPv6): the IPv6 lease and VTEP in status, the IPv6 columns in peers,
# the IPv6 checks in doctor. node2 has an IPv6 half over the IPv6 underlay; node3's was refused.
write_status_dual() {  # write_status_dual WEFT_IPV6_SUBNET_IN_THE_LEASE
  cat >"$tmp/status.json" <<J
{"ready":true,"subnet_file":"$tmp/subnet.env","network":"10.244.0.0/16","network_v6":"fd00:10:244::/48",
 "lease":{"subnet":"10.244.9.0/24","public_ip":"192.0.2.9","vtep_mac":"0e:00:00:00:00:09","network":"10.244.0.0/16","mtu":1430,"ipmasq":true,
          "subnet_v6":"$1","network_v6":"fd00:10:244::/48","vtep_mac_v6":"0e:00:00:00:06:09","public_ip_v6":"2001:db8::9"},
 "vtep":{"name":"wctl-none.7","vni":7,"port":8472,"local_ip":"192.0.2.9","mtu_wanted":1450,"backend_mtu":null,
         "learning":false,"gbp":false,"direct_routing":false},
 "vtep6":{"name":"wctl-none6.7","vni":7,"port":8472,"local_ip":"2001:db8::9","mtu_wanted":1430,"backend_mtu":null,
          "learning":false,"gbp":false},
 "underlay":{"name":"lo","ifindex":1,"address":"192.0.2.9","public_ip":"192.0.2.9","mtu":1500,
             "address_v6":"2001:db8::9","public_ip_v6":"2001:db8::9"},
 "peers":[{"node":"node2","subnet":"10.244.2.0/24","gateway":"10.244.2.0","public_ip":"192.0.2.2","vtep_mac":"0e:00:00:00:00:02",
           "subnet_v6":"fd00:10:244:2::/64","gateway_v6":"fd00:10:244:2::","vtep_mac_v6":"0e:00:00:00:06:02","public_ip_v6":"2001:db8::2"},
          {"node":"node3","subnet":"10.244.3.0/24","gateway":"10.244.3.0","public_ip":"192.0.2.3","vtep_mac":"0e:00:00:00:00:03"}],
 "skipped":[{"node":"node3","reason":"IPv6 half refused, IPv4 routed: public IPv6 address 2001:db8::9 is this node's","by":"backend"}],
 "kubernetes":{"kubeconfig_file":"","api_url":"https://127.0.0.1:1"}}
J
}
write_status_dual fd00:10:244:9::/64
start_server 200 ok
check "dual stack: status shows the IPv6 lease and VTEP" 0 "subnet      10.244.9.0/24 (network 10.244.0.0/16, MTU 1430" \
  "subnet v6   fd00:10:244:9::/64 (network fd00:10:244::/48)" "lease v6    public IP 2001:db8::9, VTEP MAC 0e:00:00:00:06:09" \
  "vtep6       wctl-none6.7 (VNI 7, local 2001:db8::9, MTU 1430)"
stop_server
cmd=(peers --status-file "$tmp/status.json")
run "dual stack: peers shows each peer's IPv6 half" 1 "SUBNET-V6           PUBLIC-IP-V6  VTEP-MAC-V6        ROUTE6   NEIGH6   FDB6" \
  "0e:00:00:00:00:02  missing  missing  missing  fd00:10:244:2::/64  2001:db8::2   0e:00:00:00:06:02  missing  missing  missing" \
  "0e:00:00:00:00:03  missing  missing  missing  -                   -             -                  -        -        -" \
  "no device wctl-none6.7: no IPv6 entry can be in the kernel" "skipped node3: IPv6 half refused, IPv4 routed:"
cmd=(peers --status-file "$tmp/status.json" --output json)
json_has "dual stack: peers --output json" \
  "j['vtep6']=='wctl-none6.7' and not j['vtep6_present'] and j['peers'][0]['v6']['route']['state']=='missing' and j['peers'][0]['v6']['public_ip']=='2001:db8::2' and 'v6' not in j['peers'][1]"
mkdir -p "$tmp/sys/net/ipv6/conf/all"
echo 1 >"$tmp/sys/net/ipv4/ip_forward"
echo 1 >"$tmp/sys/net/ipv6/conf/all/forwarding"
echo 2 >"$tmp/sys/net/ipv4/conf/all/rp_filter"
printf '{"cniVersion":"1.0.0","name":"weft","plugins":[{"type":"weft"}]}\n' >"$tmp/net.d/10-weft.conflist"
chmod 755 "$tmp/bin/weft"
printf 'WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.9.1/24\nWEFT_IPV6_NETWORK=fd00:10:244::/48\nWEFT_IPV6_SUBNET=fd00:10:244:9::1/64\nWEFT_MTU=1430\nWEFT_IPMASQ=true\n' >"$tmp/subnet.env"
check_names "dual stack: doctor's host checks pass, IPv6 ones too" PASS "subnet.env" "ip_forward" "ipv6 forwarding" "rp_filter"
check_names "dual stack: doctor's IPv6 kernel checks fail here" FAIL "vtep6 exists" "peer entries v6"
cmd=("${doctor[@]}" --output json)
json_has "dual stack: doctor checks the ip6 nftables table" "any(c['name']=='nftables table v6' for c in j['checks'])"
echo 0 >"$tmp/sys/net/ipv6/conf/all/forwarding"
write_status_dual fd00:10:244:8::/64
check_names "dual stack: IPv6 forwarding off, subnet.env's IPv6 subnet not the lease's" FAIL "ipv6 forwarding" "subnet.env"
cmd=("${doctor[@]}")
run "dual stack: doctor's IPv6 reasons and fixes" 1 "net.ipv6.conf.all.forwarding = 0" \
  "fix: sysctl -w net.ipv6.conf.all.forwarding=1" "IPv6 subnet fd00:10:244:9::/64, lease fd00:10:244:8::/64" \
  "FAIL  vtep6 exists" "no device wctl-none6.7"
write_status 192.0.2.9
check_names "v4 only: no IPv6 check even with IPv6 forwarding off" PASS "ip_forward"
json_has "v4 only: no IPv6 check at all" "not any(c['name'] in ('ipv6 forwarding','vtep6 exists','peer entries v6','nftables table v6') for c in j['checks'])"

# status --output json, through the fake weftd.
rm -f "$tmp/status.json"
start_server 503 "peers not programmed yet"
cmd=(status --subnet-file "$tmp/subnet.env" --endpoint "127.0.0.1:$port" --timeout-ms 3000 --output json)
json_has "status --output json" "j['reachable'] and j['ready'] is False and j['not_ready_reason']=='peers not programmed yet' and j['metrics']['weft_peers_programmed']==41"
stop_server
exit $((fails > 0))
