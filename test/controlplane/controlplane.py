#!/usr/bin/env python3
"""A real Kubernetes 1.20.2 control plane (etcd, kube-apiserver, kube-controller-manager) run
inside a network namespace, for weft's tests. Python 3 standard library only, plus the
`openssl` and `curl` commands.

The binaries come from test/controlplane/build.sh (built from Debian's `kubernetes` source
package, cached in $WEFT_KUBE_CACHE/bin, default /var/cache/weft/kube-v1.20.2/bin).

    cp = ControlPlane("/tmp/cp", "mynetns", "192.0.2.254", allocate_node_cidrs=True)
    cp.start()                       # etcd, apiserver (waits for /readyz), controller-manager
    cp.apply("manifests/01-rbac.yaml")
    cp.create_node("n1", "192.0.2.1")
    cp.stop()

Dual stack (issue #19): ControlPlane(..., dual_stack=True) turns on the IPv6DualStack feature
gate (alpha in 1.20, off by default) on kube-apiserver and kube-controller-manager; with
allocate_node_cidrs the node-ipam controller then gives every Node one IPv4 /24 from
cluster_cidr and one IPv6 /64 from cluster_cidr_v6 (spec.podCIDRs, IPv4 first). Both
components need the gate: without it on the apiserver, Node updates silently keep only
podCIDRs[0] (pkg/registry/core/node/strategy.go dropDisabledFields), and without it on the
controller-manager a two-CIDR --cluster-cidr makes node-ipam fail to start
(cmd/kube-controller-manager/app/core.go startNodeIpamController). The Service range may stay
IPv4 only; --node-cidr-mask-size is refused with two cluster CIDRs, hence the -ipv4/-ipv6 pair.

IPv6 only (issue #19): ControlPlane(..., "2001:db8::fe", ipv6_only=True) advertises that address
(kube-apiserver binds ::, URL https://[2001:db8::fe]:PORT), uses an IPv6 Service range
(fd00:10:96::/108: 1.20 refuses a range of more than 20 bits, so /108 is the widest for IPv6)
and, with allocate_node_cidrs, runs single-stack node-ipam: --cluster-cidr=cluster_cidr_v6
--node-cidr-mask-size=node_cidr_mask_v6 (a single-stack cluster refuses the -ipv4/-ipv6 masks,
cmd/kube-controller-manager/app/core.go setNodeCIDRMaskSizes). No feature gate: single-stack
IPv6 needs none in 1.20. etcd stays on the namespace's 127.0.0.1 (loopback, not the underlay).

CLI for manual use:
    controlplane.py up --dir D --netns NS --ip IP [--allocate-node-cidrs] [--dual-stack | --ipv6-only]
    controlplane.py down --dir D
"""
import argparse
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time

VERSION = "v1.20.2"
HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_SCRIPT = os.path.join(HERE, "build.sh")
SERVICE_CIDR = "10.96.0.0/12"
SERVICE_IP = "10.96.0.1"  # first address of SERVICE_CIDR: the `kubernetes` Service
SERVICE_CIDR_V6 = "fd00:10:96::/108"  # ipv6_only; 1.20's widest: at most 20 host bits
SERVICE_IP_V6 = "fd00:10:96::1"
ADMIN_USER = "kubernetes-admin"
CM_USER = "system:kube-controller-manager"
IPAM_LOG_LINE = "Starting ipam controller"
CLUSTER_CIDR_V6 = "fd00:10:244::/56"  # flannel's and weft's default IPv6Network
DUAL_STACK_GATE = "IPv6DualStack=true"  # alpha in 1.20: both the apiserver and node-ipam need it
# Controllers that expect kubelets: without any, Nodes turn NotReady and tainted after ~40 s
# and watch streams fill with churn that has nothing to do with weft (FACTS.md).
CM_CONTROLLERS = "*,-nodelifecycle,-ttl"
# Inside the namespace, loopback is private: two control planes in two namespaces never clash.
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
CM_HEALTH_PORT = 10252


class ControlPlaneError(Exception):
    """A control plane that cannot be set up or started; the message says what to do."""


def cache_dir():
    return os.environ.get("WEFT_KUBE_CACHE", "/var/cache/weft/kube-v1.20.2")


def binary(name):
    """Path of a cached binary (kube-apiserver, kube-controller-manager, kubectl) or etcd."""
    if name == "etcd":
        for d in os.environ.get("PATH", "/usr/bin").split(os.pathsep) + ["/usr/bin"]:
            p = os.path.join(d, "etcd")
            if os.access(p, os.X_OK):
                return p
        raise ControlPlaneError("etcd not found in PATH: apt-get install etcd-server "
                                "(or run scripts/setup.sh)")
    p = os.path.join(cache_dir(), "bin", name)
    if not os.access(p, os.X_OK):
        raise ControlPlaneError(
            "%s missing (%s): run test/controlplane/build.sh as root to build it "
            "(%s; cache dir from $WEFT_KUBE_CACHE)" % (name, p, BUILD_SCRIPT))
    return p


def missing_binaries():
    """Names of the binaries that are not there yet (empty when all are)."""
    out = []
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl"):
        try:
            binary(name)
        except ControlPlaneError:
            out.append(name)
    return out


def run(*args, check=True, input_text=None, timeout=60):
    p = subprocess.run(list(args), input=input_text, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise ControlPlaneError("command failed (exit %d): %s\n%s%s" % (
            p.returncode, " ".join(args), p.stdout[-2000:], p.stderr[-2000:]))
    return p


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_runs_in(pid, state_dir):
    """True when pid is still one of ours: its command line names our state dir."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return state_dir.encode() in f.read()
    except OSError:
        return False


def stop_pid(pid, sig=signal.SIGTERM, timeout=15.0):
    """Signals pid's process group (each process runs in a session of its own), waits for it to
    exit, and SIGKILLs it after timeout. Returns the seconds it took."""
    t0 = time.monotonic()
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return 0.0
    except PermissionError:
        os.kill(pid, sig)
    while pid_alive(pid):
        if time.monotonic() - t0 > timeout:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            break
        time.sleep(0.05)
    return time.monotonic() - t0


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager inside network namespace `netns`.

    state_dir holds the certificates, tokens, kubeconfigs, etcd's data, the logs
    (etcd.log, kube-apiserver.log, kube-controller-manager.log) and state.json (the PIDs,
    for `controlplane.py down`). Starting again on the same state_dir reuses all of it:
    same CA, same tokens, same etcd data — a restart, not a new cluster.
    """

    def __init__(self, state_dir, netns, advertise_ip, port=6443, cluster_cidr="10.244.0.0/16",
                 allocate_node_cidrs=False, node_cidr_mask=24, weft_namespace="kube-weft",
                 extra_service_accounts=(), dual_stack=False, cluster_cidr_v6=CLUSTER_CIDR_V6,
                 node_cidr_mask_v6=64, ipv6_only=False):
        if not netns:
            raise ControlPlaneError("a network namespace is required (the control plane never "
                                    "runs in the root namespace)")
        self.dir = os.path.abspath(state_dir)
        self.netns = netns
        self.ip = advertise_ip
        self.port = int(port)
        self.cluster_cidr = cluster_cidr
        self.allocate_node_cidrs = allocate_node_cidrs
        self.node_cidr_mask = int(node_cidr_mask)
        self.dual_stack = bool(dual_stack)
        self.cluster_cidr_v6 = cluster_cidr_v6
        self.node_cidr_mask_v6 = int(node_cidr_mask_v6)
        self.ipv6_only = bool(ipv6_only)
        if self.ipv6_only and self.dual_stack:
            raise ControlPlaneError("dual_stack and ipv6_only exclude each other")
        if self.ipv6_only and ":" not in self.ip:
            raise ControlPlaneError("ipv6_only needs an IPv6 advertise address, not %s" % self.ip)
        # The repo's manifests bind ServiceAccount kube-weft/weft; extra ones ("ns:name") get a
        # token too, e.g. to show that an unbound identity is refused.
        self.weft_user = "system:serviceaccount:%s:weft" % weft_namespace
        self.extra_users = ["system:serviceaccount:%s" % sa for sa in extra_service_accounts]
        self.procs = {}  # name -> subprocess.Popen
        self.started_at = {}  # name -> time.monotonic() of its start
        self.timings = {}  # what took how long, in seconds
        self.tokens = {}
        os.makedirs(self.dir, exist_ok=True)

    # ---- files -------------------------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def url(self):
        host = "[%s]" % self.ip if ":" in self.ip else self.ip
        return "https://%s:%d" % (host, self.port)

    @property
    def service_cidr(self):
        return SERVICE_CIDR_V6 if self.ipv6_only else SERVICE_CIDR

    @property
    def service_ip(self):
        return SERVICE_IP_V6 if self.ipv6_only else SERVICE_IP

    @property
    def admin_kubeconfig(self):
        return self.path("admin.kubeconfig")

    @property
    def weft_kubeconfig(self):
        return self.path("weft.kubeconfig")

    @property
    def admin_token(self):  # test/lab/lab.py's --api real reads these two
        return self.tokens[ADMIN_USER]

    @property
    def weft_token(self):
        return self.tokens[self.weft_user]

    @property
    def ca_file(self):
        return self.path("pki", "ca.crt")

    def prepare(self):
        """Certificates, tokens and kubeconfigs; existing ones are kept (a restart reuses them)."""
        self._make_pki()
        self._make_tokens()
        self._write_kubeconfig(self.admin_kubeconfig, ADMIN_USER, self.tokens[ADMIN_USER])
        self._write_kubeconfig(self.weft_kubeconfig, self.weft_user, self.tokens[self.weft_user])
        self._write_kubeconfig(self.path("controller-manager.kubeconfig"), CM_USER,
                               self.tokens[CM_USER])

    def _openssl(self, *args):
        run("openssl", *args)

    def _make_pki(self):
        pki = self.path("pki")
        os.makedirs(pki, exist_ok=True)
        ca_key, ca_crt = self.path("pki", "ca.key"), self.ca_file
        if not os.path.exists(ca_crt):
            self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
                          "-out", ca_crt, "-days", "3650", "-subj", "/CN=weft-test-kubernetes-ca",
                          "-addext", "basicConstraints=critical,CA:TRUE",
                          "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
        san = self._server_sans()
        crt, key = self.path("pki", "apiserver.crt"), self.path("pki", "apiserver.key")
        san_file = self.path("pki", "apiserver.san")
        old_san = open(san_file).read() if os.path.exists(san_file) else None
        if not os.path.exists(crt) or old_san != san:
            csr = self.path("pki", "apiserver.csr")
            ext = self.path("pki", "apiserver.ext")
            self._openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                          "-out", csr, "-subj", "/CN=kube-apiserver")
            with open(ext, "w") as f:
                f.write("basicConstraints=critical,CA:FALSE\n"
                        "keyUsage=critical,digitalSignature,keyEncipherment\n"
                        "extendedKeyUsage=serverAuth\n"
                        "subjectAltName=%s\n" % san)
            self._openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                          "-CAcreateserial", "-out", crt, "-days", "3650", "-extfile", ext)
            with open(san_file, "w") as f:
                f.write(san)
        sa_key, sa_pub = self.path("pki", "sa.key"), self.path("pki", "sa.pub")
        if not os.path.exists(sa_pub):
            self._openssl("genrsa", "-out", sa_key, "2048")
            self._openssl("rsa", "-in", sa_key, "-pubout", "-out", sa_pub)

    def _server_sans(self):
        names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local", "localhost"]
        ips = [self.ip, "127.0.0.1", self.service_ip]
        return ",".join(["IP:" + i for i in dict.fromkeys(ips)] + ["DNS:" + n for n in names])

    def _users(self):
        """user -> (uid, groups) for --token-auth-file."""
        def sa_groups(user):
            ns = user.split(":")[2]
            return ["system:serviceaccounts", "system:serviceaccounts:" + ns,
                    "system:authenticated"]
        users = {ADMIN_USER: ("admin", ["system:masters"]),
                 CM_USER: ("kube-controller-manager", []),
                 self.weft_user: ("weft", sa_groups(self.weft_user))}
        for u in self.extra_users:
            users[u] = (u.rsplit(":", 1)[1] + "-" + u.split(":")[2], sa_groups(u))
        return users

    def _make_tokens(self):
        tokens_json = self.path("tokens.json")
        if os.path.exists(tokens_json):
            with open(tokens_json) as f:
                self.tokens = json.load(f)
        users = self._users()
        changed = False
        for user in users:
            if user not in self.tokens:
                self.tokens[user] = secrets.token_hex(16)
                changed = True
        if changed or not os.path.exists(tokens_json):
            write_file(tokens_json, json.dumps(self.tokens, indent=1) + "\n", 0o600)
        lines = []
        for user, (uid, groups) in users.items():
            line = "%s,%s,%s" % (self.tokens[user], user, uid)
            if groups:
                line += ',"%s"' % ",".join(groups)
            lines.append(line)
        write_file(self.path("tokens.csv"), "\n".join(lines) + "\n", 0o600)

    def _write_kubeconfig(self, path, user, token):
        with open(self.ca_file, "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        text = ("apiVersion: v1\n"
                "kind: Config\n"
                "clusters:\n"
                "- name: weft-test\n"
                "  cluster:\n"
                "    server: %s\n"
                "    certificate-authority-data: %s\n"
                "users:\n"
                "- name: '%s'\n"
                "  user:\n"
                "    token: %s\n"
                "contexts:\n"
                "- name: weft-test\n"
                "  context:\n"
                "    cluster: weft-test\n"
                "    user: '%s'\n"
                "current-context: weft-test\n") % (self.url, ca, user, token, user)
        write_file(path, text, 0o600)

    # ---- processes ---------------------------------------------------------------------------

    def _spawn(self, name, argv):
        """Starts argv inside the namespace, in a session of its own, logging to NAME.log."""
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise ControlPlaneError("%s is already running (pid %d)" % (name, old.pid))
        log = open(self.path(name + ".log"), "ab")
        log.write(("\n==== %s start %s\n" % (name, time.strftime("%H:%M:%S"))).encode())
        log.flush()
        # `ip netns exec` execs the command, so the PID is the server's own.
        p = subprocess.Popen(["ip", "netns", "exec", self.netns] + argv, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                             cwd=self.dir)
        log.close()
        self.procs[name] = p
        self.started_at[name] = time.monotonic()
        self._save_state()
        return p

    def _check_alive(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            code = None if p is None else p.returncode
            raise ControlPlaneError("%s exited (status %s); last log lines:\n%s" % (
                name, code, self.log_tail(name)))

    def log_tail(self, name, lines=25):
        try:
            with open(self.path(name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, controller_manager=True, timeout=90):
        """etcd, then kube-apiserver (waits for /readyz), then the controller-manager."""
        for name in missing_binaries():
            binary(name)  # raises with the build hint
        self.prepare()
        self.start_etcd()
        self.start_apiserver()
        self.wait_ready(timeout)
        if controller_manager:
            self.start_controller_manager()

    def start_etcd(self, timeout=30):
        os.makedirs(self.path("etcd"), mode=0o700, exist_ok=True)
        client = "http://127.0.0.1:%d" % ETCD_CLIENT_PORT
        peer = "http://127.0.0.1:%d" % ETCD_PEER_PORT
        self._spawn("etcd", [
            binary("etcd"), "--name", "weft-test", "--data-dir", self.path("etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "weft-test=" + peer, "--initial-cluster-state", "new",
            "--log-level", "warn", "--logger", "zap"])
        t0 = time.monotonic()
        while True:
            self._check_alive("etcd")
            p = self.netns_run("curl", "-s", "-m", "2", client + "/health", check=False)
            if p.returncode == 0 and '"health":"true"' in p.stdout.replace(" ", ""):
                break
            if time.monotonic() - t0 > timeout:
                raise ControlPlaneError("etcd not healthy after %.0f s: %s\n%s" % (
                    timeout, p.stdout + p.stderr, self.log_tail("etcd")))
            time.sleep(0.1)
        self.timings["etcd_ready"] = time.monotonic() - t0

    def apiserver_argv(self):
        pki = self.path("pki")
        # Dual stack: without the gate the apiserver keeps only podCIDRs[0] of the Nodes it stores.
        gates = ["--feature-gates=" + DUAL_STACK_GATE] if self.dual_stack else []
        return [
            binary("kube-apiserver"),
            "--advertise-address=" + self.ip,
            "--bind-address=" + ("::" if ":" in self.ip else "0.0.0.0"),
            "--secure-port=%d" % self.port,
            "--etcd-servers=http://127.0.0.1:%d" % ETCD_CLIENT_PORT,
            "--tls-cert-file=" + os.path.join(pki, "apiserver.crt"),
            "--tls-private-key-file=" + os.path.join(pki, "apiserver.key"),
            "--client-ca-file=" + self.ca_file,
            "--token-auth-file=" + self.path("tokens.csv"),
            "--authorization-mode=Node,RBAC",
            "--service-cluster-ip-range=" + self.service_cidr,
            # 1.20 requires an issuer and a signing key for ServiceAccount tokens.
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file=" + os.path.join(pki, "sa.pub"),
            "--service-account-signing-key-file=" + os.path.join(pki, "sa.key"),
            # weft's DaemonSet is privileged; the default (false) rejects it even in a dry run.
            "--allow-privileged=true",
            "--cert-dir=" + os.path.join(pki, "generated"),
            "--profiling=false",
            "--v=1",
        ] + gates

    def start_apiserver(self):
        self._spawn("kube-apiserver", self.apiserver_argv())

    def controller_manager_argv(self):
        pki = self.path("pki")
        argv = [
            binary("kube-controller-manager"),
            "--kubeconfig=" + self.path("controller-manager.kubeconfig"),
            "--controllers=" + CM_CONTROLLERS,
            # One instance: no leader election, so a restart does not wait for a lease to expire.
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            "--service-account-private-key-file=" + os.path.join(pki, "sa.key"),
            "--root-ca-file=" + self.ca_file,
            "--service-cluster-ip-range=" + self.service_cidr,
            # Health on plain HTTP, loopback of the namespace only; no HTTPS serving.
            "--port=%d" % CM_HEALTH_PORT, "--address=127.0.0.1", "--secure-port=0",
            "--cert-dir=" + os.path.join(pki, "generated"),
            "--profiling=false",
            "--v=1",
        ]
        if self.dual_stack:
            argv.append("--feature-gates=" + DUAL_STACK_GATE)
        if self.allocate_node_cidrs and self.dual_stack:
            # Two cluster CIDRs refuse --node-cidr-mask-size: one mask per family instead.
            argv += ["--allocate-node-cidrs=true",
                     "--cluster-cidr=%s,%s" % (self.cluster_cidr, self.cluster_cidr_v6),
                     "--node-cidr-mask-size-ipv4=%d" % self.node_cidr_mask,
                     "--node-cidr-mask-size-ipv6=%d" % self.node_cidr_mask_v6]
        elif self.allocate_node_cidrs and self.ipv6_only:
            argv += ["--allocate-node-cidrs=true", "--cluster-cidr=" + self.cluster_cidr_v6,
                     "--node-cidr-mask-size=%d" % self.node_cidr_mask_v6]
        elif self.allocate_node_cidrs:
            argv += ["--allocate-node-cidrs=true", "--cluster-cidr=" + self.cluster_cidr,
                     "--node-cidr-mask-size=%d" % self.node_cidr_mask]
        return argv

    def start_controller_manager(self):
        """Can run any time after the apiserver is up, and stop and start on its own."""
        self._ipam_log_offset = self._log_size("kube-controller-manager")
        self._spawn("kube-controller-manager", self.controller_manager_argv())

    def _log_size(self, name):
        try:
            return os.path.getsize(self.path(name + ".log"))
        except OSError:
            return 0

    # ---- readiness ---------------------------------------------------------------------------

    def wait_ready(self, timeout=90):
        """Polls /readyz with the admin token until 200; records apiserver_ready."""
        t0 = self.started_at.get("kube-apiserver", time.monotonic())
        last = ""
        while True:
            self._check_alive("kube-apiserver")
            status, body = self.request("GET", "/readyz", timeout=5)
            if status == 200:
                break
            last = "%s %s" % (status, body[-500:])
            if time.monotonic() - t0 > timeout:
                raise ControlPlaneError("kube-apiserver not ready after %.0f s (last: %s)\n%s" % (
                    timeout, last, self.log_tail("kube-apiserver")))
            time.sleep(0.2)
        self.timings["apiserver_ready"] = time.monotonic() - t0
        return self.timings["apiserver_ready"]

    def wait_controller_manager(self, timeout=60):
        """Waits for the controller-manager's /healthz and, with allocate_node_cidrs, for its
        node-ipam controller to start; records controller_manager_healthy / ipam_started."""
        name = "kube-controller-manager"
        t0 = self.started_at[name]
        offset = getattr(self, "_ipam_log_offset", 0)
        healthy = False
        while True:
            self._check_alive(name)
            if not healthy:
                p = self.netns_run("curl", "-s", "-m", "2",
                                   "http://127.0.0.1:%d/healthz" % CM_HEALTH_PORT, check=False)
                if p.stdout.strip() == "ok":
                    healthy = True
                    self.timings["controller_manager_healthy"] = time.monotonic() - t0
            ipam = not self.allocate_node_cidrs or self._log_has(name, IPAM_LOG_LINE, offset)
            if healthy and ipam:
                break
            if time.monotonic() - t0 > timeout:
                raise ControlPlaneError("%s not ready after %.0f s (healthz %s, %r logged: %s)\n%s"
                                        % (name, timeout, healthy, IPAM_LOG_LINE, ipam,
                                           self.log_tail(name)))
            time.sleep(0.2)
        if self.allocate_node_cidrs:
            self.timings["ipam_started"] = time.monotonic() - t0
        return time.monotonic() - t0

    def _log_has(self, name, text, offset=0):
        try:
            with open(self.path(name + ".log"), "rb") as f:
                f.seek(offset)
                return text.encode() in f.read()
        except OSError:
            return False

    # ---- stop and restart --------------------------------------------------------------------

    def _stop(self, name, sig=signal.SIGTERM, timeout=15.0):
        p = self.procs.get(name)
        if p is None:
            return 0.0
        took = stop_pid(p.pid, sig, timeout)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.procs.pop(name, None)
        self._save_state()
        return took

    def stop_apiserver(self, sig=signal.SIGTERM, timeout=75.0):
        """Stops kube-apiserver (etcd and the certificates stay); start_apiserver() restarts it.
        On SIGTERM it drains requests for up to --request-timeout (60 s) while clients hold
        watches; SIGKILL follows after timeout. Returns the seconds it took to exit."""
        return self._stop("kube-apiserver", sig, timeout)

    def kill_apiserver(self):
        return self._stop("kube-apiserver", signal.SIGKILL)

    def stop_controller_manager(self, sig=signal.SIGTERM):
        return self._stop("kube-controller-manager", sig)

    def stop_etcd(self, sig=signal.SIGTERM):
        return self._stop("etcd", sig)

    def stop(self):
        """Stops everything, in reverse order, and waits for each process to exit."""
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            self._stop(name)
        # PIDs a previous ControlPlane object on this dir left behind (state.json).
        stop_saved(self.dir)

    def pids(self):
        """name -> PID of every running process (the server itself, not a wrapper)."""
        return {n: p.pid for n, p in self.procs.items() if p.poll() is None}

    def _save_state(self):
        state = {"netns": self.netns, "ip": self.ip, "port": self.port, "url": self.url,
                 "pids": self.pids(), "admin_kubeconfig": self.admin_kubeconfig,
                 "weft_kubeconfig": self.weft_kubeconfig, "ca": self.ca_file}
        write_file(self.path("state.json"), json.dumps(state, indent=1) + "\n")

    # ---- clients -----------------------------------------------------------------------------

    def netns_run(self, *args, check=True, input_text=None, timeout=60):
        return run("ip", "netns", "exec", self.netns, *args, check=check, input_text=input_text,
                   timeout=timeout)

    def kubectl(self, *args, input_text=None, kubeconfig=None, check=True, timeout=120):
        """Debian's kubectl 1.20.2 inside the namespace, as admin unless kubeconfig is given.
        Returns the CompletedProcess; raises ControlPlaneError on failure when check."""
        return self.netns_run(binary("kubectl"), "--kubeconfig", kubeconfig or self.admin_kubeconfig,
                              *args, check=check, input_text=input_text, timeout=timeout)

    def apply(self, path, *extra):
        return self.kubectl("apply", "-f", path, *extra)

    def request(self, method, path, body=None, user=ADMIN_USER, content_type="application/json",
                timeout=30):
        """One HTTPS request from inside the namespace as `user` (a name with a token here).
        Returns (HTTP status, body text); status 0 when no answer came."""
        if not self.tokens:
            self._make_tokens()
        args = ["curl", "-sg", "-m", str(timeout), "--cacert", self.ca_file, "-X", method,
                "-H", "Authorization: Bearer " + self.tokens[user],
                "-w", "\n%{http_code}", self.url + path]
        if body is not None:
            args += ["-H", "Content-Type: " + content_type, "--data-binary", "@-"]
            if not isinstance(body, str):
                body = json.dumps(body)
        p = self.netns_run(*args, check=False, input_text=body, timeout=timeout + 5)
        text, _, code = p.stdout.rpartition("\n")
        return (int(code) if code.isdigit() else 0), text

    def create_node(self, name, internal_ip, pod_cidr=None, labels=None):
        """A Node as kubelet registers it: hostname label, InternalIP and Hostname addresses,
        optionally spec.podCIDR(s). Returns the created object."""
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": dict({
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64"}, **(labels or {}))},
            "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": internal_ip},
                                     {"type": "Hostname", "address": name}]},
        }
        if pod_cidr:
            node["spec"] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
        status, body = self.request("POST", "/api/v1/nodes", node)
        if status != 201:
            raise ControlPlaneError("creating Node %s failed: HTTP %d %s" % (name, status, body))
        return json.loads(body)

    def get_node(self, name, user=ADMIN_USER):
        status, body = self.request("GET", "/api/v1/nodes/" + name, user=user)
        if status != 200:
            raise ControlPlaneError("GET Node %s: HTTP %d %s" % (name, status, body))
        return json.loads(body)


def write_file(path, text, mode=0o644):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def stop_saved(state_dir):
    """Stops the processes recorded in STATE_DIR/state.json that still run from that dir."""
    state_file = os.path.join(os.path.abspath(state_dir), "state.json")
    try:
        with open(state_file) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return {}
    stopped = {}
    for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
        pid = state.get("pids", {}).get(name)
        if pid and pid_alive(pid) and pid_runs_in(pid, os.path.abspath(state_dir)):
            stopped[name] = stop_pid(pid)
    state["pids"] = {}
    write_file(state_file, json.dumps(state, indent=1) + "\n")
    return stopped


def main(argv=None):
    ap = argparse.ArgumentParser(description="A real Kubernetes %s control plane in a network "
                                             "namespace (binaries: test/controlplane/build.sh)"
                                             % VERSION)
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start etcd, kube-apiserver and kube-controller-manager")
    up.add_argument("--dir", required=True, help="state directory (certs, kubeconfigs, logs)")
    up.add_argument("--netns", required=True, help="existing network namespace to run in")
    up.add_argument("--ip", required=True, help="advertise address (an address in the netns)")
    up.add_argument("--port", type=int, default=6443)
    up.add_argument("--allocate-node-cidrs", action="store_true")
    up.add_argument("--cluster-cidr", default="10.244.0.0/16")
    up.add_argument("--node-cidr-mask", type=int, default=24)
    stack = up.add_mutually_exclusive_group()
    stack.add_argument("--dual-stack", action="store_true",
                    help="IPv6DualStack gate on; with --allocate-node-cidrs every Node gets an "
                         "IPv4 and an IPv6 podCIDR")
    stack.add_argument("--ipv6-only", action="store_true",
                       help="--ip is IPv6: an IPv6 Service range; with --allocate-node-cidrs every "
                            "Node gets one IPv6 podCIDR (--cluster-cidr-v6, --node-cidr-mask-v6)")
    up.add_argument("--cluster-cidr-v6", default=CLUSTER_CIDR_V6)
    up.add_argument("--node-cidr-mask-v6", type=int, default=64)
    up.add_argument("--no-controller-manager", action="store_true")
    down = sub.add_parser("down", help="stop what `up` started in --dir")
    down.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "up":
            cp = ControlPlane(a.dir, a.netns, a.ip, port=a.port, cluster_cidr=a.cluster_cidr,
                              allocate_node_cidrs=a.allocate_node_cidrs,
                              node_cidr_mask=a.node_cidr_mask, dual_stack=a.dual_stack,
                              cluster_cidr_v6=a.cluster_cidr_v6,
                              node_cidr_mask_v6=a.node_cidr_mask_v6, ipv6_only=a.ipv6_only)
            try:
                cp.start(controller_manager=not a.no_controller_manager)
                if not a.no_controller_manager:
                    cp.wait_controller_manager()
            except BaseException:
                cp.stop()
                raise
            print(json.dumps({"url": cp.url, "pids": cp.pids(), "timings": cp.timings,
                              "admin_kubeconfig": cp.admin_kubeconfig,
                              "weft_kubeconfig": cp.weft_kubeconfig,
                              "kubectl": binary("kubectl")}, indent=1))
        else:
            stopped = stop_saved(a.dir)
            print("stopped: %s" % (", ".join("%s (%.1f s)" % kv for kv in stopped.items())
                                   or "nothing was running"))
    except ControlPlaneError as e:
        print("controlplane: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
