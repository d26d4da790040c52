"""The weft CNI plugin under a real container runtime and the real reference plugins (issue #16).

Podman: Debian's podman (CNI backend, libcni) runs in a lab node's network namespace with the
shipped packaging/10-weft.conflist; its storage, run and config directories live in the lab's
state directory, so the machine's /var/lib/containers and /etc/cni/net.d stay as they were.
The image is built offline from Debian's busybox-static with `podman import`.

Check: CNI CHECK through weft and Debian's bridge + host-local (1.1.1), as a runtime calls it
(the config with the ADD result as prevResult), on a healthy pod and on broken ones.

Run one with: WEFT_BUILD_DIR=build python3 -m unittest -v test_podman.Podman
"""

import io
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import lab as labmod  # noqa: E402
from test_lab import BUILD, unique_name  # noqa: E402

CONFLIST = os.path.join(labmod.ROOT, "packaging", "10-weft.conflist")
BUSYBOX = "/bin/busybox"
IMAGE = "localhost/weft-busybox:test"
MACHINE_CNI_DIR = "/etc/cni/net.d"
# Directories podman, libcni or the OCI runtime create outside their configured roots.
MACHINE_DIRS = ["/run/runc", "/run/crun", "/run/libpod", "/run/containers", "/var/lib/containers",
                "/var/lib/cni"]


def dir_snapshot(path):
    """Names and contents of a directory's files (what a test must leave as it found)."""
    out = {}
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            with open(full, "rb") if os.path.isfile(full) else io.BytesIO() as fh:
                out[name] = fh.read()
    return out


def busybox_image_tar(path):
    """A root file system of busybox-static and an index page, as `podman import` takes it."""
    with tarfile.open(path, "w") as tar:
        for d in ("bin", "www", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "httpd", "ip", "sleep", "cat"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        page = b"hello from podman\n"
        info = tarfile.TarInfo("www/index.html")
        info.size, info.mode = len(page), 0o644
        tar.addfile(info, io.BytesIO(page))


def libpod_cgroups():
    return sorted(d for d in (os.path.join("/sys/fs/cgroup", c, "libpod_parent")
                              for c in os.listdir("/sys/fs/cgroup")) if os.path.isdir(d))


def remove_empty_tree(path):
    """rmdir bottom-up (cgroup directories can only be rmdir'ed; files in them are not real)."""
    for root, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            try:
                os.rmdir(os.path.join(root, d))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def oci_runtime():
    """crun refuses hybrid cgroup hierarchies (cgroup v1 + a v2 with controllers); runc takes them."""
    try:
        with open("/sys/fs/cgroup/unified/cgroup.controllers") as fh:
            hybrid = bool(fh.read().split())
    except OSError:
        hybrid = False
    return "runc" if hybrid or not shutil.which("crun") else "crun"


class Podman(unittest.TestCase):
    """podman run --network weft on node1; curl from a pod on node2; podman rm leaves nothing."""

    def setUp(self):
        if not shutil.which("podman") or not os.path.exists(BUSYBOX):
            self.fail("podman and busybox-static are needed (scripts/setup.sh installs them)")
        self.machine_cni = dir_snapshot(MACHINE_CNI_DIR)
        self.machine_dirs = [d for d in MACHINE_DIRS + libpod_cgroups() if os.path.exists(d)]
        self.lab = labmod.Lab(unique_name(), BUILD)
        self.addCleanup(self.lab.down)
        self.addCleanup(self.remove_machine_dirs)
        self.addCleanup(self.remove_podman_state)
        self.started = time.monotonic()
        self.lab.up(nodes=2, pods=1)
        self.node = "node1"
        self.node_ns = self.lab.state["nodes"][self.node]["ns"]
        self.dir = os.path.join(self.lab.dir, "podman")
        for d in ("net.d", "state", "ipam", "tmp"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.write_containers_conf()
        self.write_conflist()
        self.start_mount_namespace()

    def start_mount_namespace(self):
        """One mount namespace for every podman call, with the test's own directory over /var/lib.

        podman keeps its blob-info cache in /var/lib/containers/cache and libcni its results in
        /var/lib/cni whatever --root says; here they land in the test's directory. The namespace
        is a slave of the root one: podman's netns mounts under /run/netns stay in it, and one
        namespace for all calls lets `podman rm` find the netns that `podman run` mounted.
        """
        varlib = os.path.join(self.dir, "varlib")
        os.makedirs(varlib, exist_ok=True)
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "slave", "sh", "-c",
             'mount --bind "$1" /var/lib && exec sleep 100000', "sh", varlib], start_new_session=True)

        def mounted():
            try:
                with open(f"/proc/{self.holder.pid}/mountinfo") as fh:
                    return any(line.split()[4] == "/var/lib" for line in fh)
            except OSError:
                return False
        labmod.wait_for(mounted, 10, "the podman mount namespace")

    # ---- podman confined to the test's directory
    def write_containers_conf(self):
        self.containers_conf = os.path.join(self.dir, "containers.conf")
        with open(self.containers_conf, "w") as fh:
            fh.write(f"""[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[network]
network_backend = "cni"
network_config_dir = "{self.dir}/net.d"
cni_plugin_dirs = ["{self.lab.cni_bin_dir}"]
default_network = "weft"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "{oci_runtime()}"
tmp_dir = "{self.dir}/tmp"
""")

    def write_conflist(self):
        """The shipped conflist, with the node's paths (a node of the lab is not at /run/weft)."""
        with open(CONFLIST) as fh:
            conflist = json.load(fh)
        weft = conflist["plugins"][0]
        self.assertEqual(weft["type"], "weft")
        weft["subnetFile"] = os.path.join(self.lab.node_dir(self.node), "subnet.env")
        weft["dataDir"] = os.path.join(self.dir, "state")
        weft["ipamDataDir"] = os.path.join(self.dir, "ipam")
        with open(os.path.join(self.dir, "net.d", "10-weft.conflist"), "w") as fh:
            json.dump(conflist, fh, indent=2)
        self.network = conflist["name"]

    def podman(self, *args, check=True, timeout=120):
        env = dict(os.environ, CONTAINERS_CONF=self.containers_conf)
        res = subprocess.run(
            # nsenter, not `ip netns exec` (a new mount namespace per call): the node's network
            # namespace and the test's mount namespace.
            ["nsenter", f"--target={self.holder.pid}", "--mount", f"--net=/run/netns/{self.node_ns}",
             "podman", "--root", os.path.join(self.dir, "root"),
             "--runroot", os.path.join(self.dir, "run"), "--storage-driver", "vfs",
             "--tmpdir", os.path.join(self.dir, "tmp"), *args],
            capture_output=True, text=True, timeout=timeout, env=env)
        if check and res.returncode != 0:
            self.fail(f"podman {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")
        return res.stdout.strip()

    def remove_machine_dirs(self):
        """What podman, runc or crun made outside the test's directory is removed (when empty)."""
        for d in MACHINE_DIRS + libpod_cgroups():
            if d not in self.machine_dirs and os.path.isdir(d):
                remove_empty_tree(d)

    def remove_podman_state(self):
        if not os.path.isdir(getattr(self, "dir", "")) or not hasattr(self, "holder"):
            return
        self.podman("rm", "--all", "--force", "--time", "0", check=False)
        labmod.kill_group(self.holder.pid, 9)  # after rm: podman needs the namespace
        # Anything podman left mounted below its directories (a failed run's shm) goes first.
        with open("/proc/mounts") as fh:
            mounts = [line.split()[1] for line in fh if line.split()[1].startswith(self.dir + "/")]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)

    # ---- what the node has
    def node_links(self):
        out = labmod.in_ns(self.node_ns, "ip", "-o", "link", "show", "type", "veth", capture=True).stdout
        return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())

    def podman_netns(self):
        """podman 4.3 names a container's netns /run/netns/netns-<uuid>."""
        return sorted(n for n in os.listdir("/run/netns") if n.startswith("netns-"))

    def ipam_leases(self):
        d = os.path.join(self.dir, "ipam", self.network)
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d) if n[0].isdigit() or ":" in n)

    def curl_from_node2(self, ip):
        pod_ns = self.lab.state["pods"]["node2/p1"]["ns"]
        res = labmod.in_ns(pod_ns, "curl", "-s", "--max-time", "3", f"http://{ip}:8080/index.html",
                           check=False, capture=True)
        return res.stdout

    def container_ip(self, name):
        return self.podman("inspect", name, "--format",
                           "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % self.network)

    def wait_curl(self, ip):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "hello from podman" in self.curl_from_node2(ip):
                return
            time.sleep(0.2)
        self.fail(f"curl http://{ip}:8080/ from node2/p1 did not answer within 15 s")

    def test_run_curl_from_another_node_rm_and_nothing_leaks(self):
        links_before, netns_before = self.node_links(), self.podman_netns()
        subnet = ipaddress.ip_network(self.lab.node_annotations(self.node)["weft.io/subnet"])
        tar = os.path.join(self.dir, "busybox.tar")
        busybox_image_tar(tar)
        self.podman("import", "--change", "CMD=/bin/sh", tar, IMAGE)

        self.podman("run", "-d", "--name", "web", "--network", self.network, IMAGE,
                    "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www")
        ip = self.container_ip("web")
        self.assertIn(ipaddress.ip_address(ip), subnet)
        self.wait_curl(ip)

        # --ip and --mac-address: podman 4.3 (CNI backend) sends them as IP= and MAC= in CNI_ARGS
        # (its capability args carry only "aliases"); weft passes CNI_ARGS on to bridge and
        # host-local. runtimeConfig "ips" (what other runtimes send) is tested in Check.
        fixed, mac = str(subnet.network_address + 200), "0a:58:0a:f4:00:c8"
        self.podman("run", "-d", "--name", "fixed", "--network", self.network, "--ip", fixed,
                    "--mac-address", mac, IMAGE, "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www")
        self.assertEqual(self.container_ip("fixed"), fixed)
        self.wait_curl(fixed)
        self.assertEqual(self.podman("inspect", "fixed", "--format",
                                     "{{(index .NetworkSettings.Networks \"%s\").MacAddress}}" % self.network), mac)
        self.assertEqual(len(os.listdir(os.path.join(self.dir, "state"))), 2, "one state file per container")
        self.assertEqual(len(self.ipam_leases()), 2)
        self.assertEqual(len(self.podman_netns()), len(netns_before) + 2, "podman's netns names changed?")
        self.assertEqual(len(self.node_links()), len(links_before) + 2, "one veth per container")

        self.podman("rm", "--force", "--time", "0", "web", "fixed")
        self.assertEqual(self.node_links(), links_before, "veths left on the node")
        self.assertEqual(self.podman_netns(), netns_before, "network namespaces left by podman")
        self.assertEqual(self.ipam_leases(), [], "IPAM addresses left reserved")
        self.assertEqual(os.listdir(os.path.join(self.dir, "state")), [], "weft state files left")
        self.assertNotIn("hello from podman", self.curl_from_node2(ip), "the container still answers")
        self.assertEqual(dir_snapshot(MACHINE_CNI_DIR), self.machine_cni, "/etc/cni/net.d changed")
        self.assertFalse(os.path.exists("/var/lib/containers") and "/var/lib/containers" not in self.machine_dirs)
        self.assertFalse(os.path.exists("/var/lib/cni") and "/var/lib/cni" not in self.machine_dirs)
        print(f"\npodman test: {time.monotonic() - self.started:.1f} s including the lab", file=sys.stderr)


class Check(unittest.TestCase):
    """CHECK and runtimeConfig through weft with Debian's bridge + host-local, as a runtime drives them."""

    def setUp(self):
        self.lab = labmod.Lab(unique_name(), BUILD)
        self.addCleanup(self.lab.down)
        self.lab.up(nodes=1, pods=0)
        self.node = "node1"

    def invoke(self, pod, command, conf):
        info = self.lab.state["nodes"][self.node]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
               "CNI_CONTAINERID": (self.lab.name + pod).encode().hex().ljust(64, "0")[:64],
               "CNI_NETNS": f"/var/run/netns/{self.pod_ns(pod)}", "CNI_IFNAME": "eth0",
               "CNI_PATH": self.lab.cni_bin_dir}
        return labmod.in_ns(info["ns"], os.path.join(self.lab.cni_bin_dir, "weft"), env=env,
                            input_text=json.dumps(conf), check=False, capture=True)

    def pod_ns(self, pod):
        return self.lab.ns(f"n1-{pod}")

    def conf(self):
        d = self.lab.node_dir(self.node)
        return {"cniVersion": "1.0.0", "name": "weft", "type": "weft",
                "subnetFile": os.path.join(d, "subnet.env"), "dataDir": os.path.join(d, "cni-state"),
                "ipamDataDir": os.path.join(d, "ipam")}

    def add(self, pod, **extra):
        labmod.sh("ip", "netns", "add", self.pod_ns(pod))
        self.addCleanup(labmod.sh, "ip", "netns", "del", self.pod_ns(pod), check=False)
        self.addCleanup(self.invoke, pod, "DEL", self.conf())
        res = self.invoke(pod, "ADD", dict(self.conf(), **extra))
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        return json.loads(res.stdout)

    def check(self, pod, result):
        return self.invoke(pod, "CHECK", dict(self.conf(), prevResult=result))

    def test_check_passes_on_a_healthy_pod_and_fails_on_broken_ones(self):
        healthy = self.add("ok")
        res = self.check("ok", healthy)
        self.assertEqual(res.returncode, 0, f"CHECK on a healthy pod: {res.stdout} {res.stderr}")

        no_addr = self.add("noaddr")
        labmod.sh("ip", "-n", self.pod_ns("noaddr"), "addr", "flush", "dev", "eth0")
        res = self.check("noaddr", no_addr)
        self.assertNotEqual(res.returncode, 0, "CHECK passed on a pod without its address")
        self.assertIn(no_addr["ips"][0]["address"].split("/")[0], res.stdout + res.stderr)

        no_link = self.add("nolink")
        labmod.sh("ip", "-n", self.pod_ns("nolink"), "link", "del", "eth0")
        res = self.check("nolink", no_link)
        self.assertNotEqual(res.returncode, 0, "CHECK passed on a pod without its interface")
        self.assertIn("eth0", res.stdout + res.stderr)

        # The healthy pod is still healthy after its neighbours broke.
        self.assertEqual(self.check("ok", healthy).returncode, 0)

    def test_runtime_config_ips_reach_host_local(self):
        """What libcni injects for the "ips" capability (containerd, CRI-O) picks the address."""
        subnet = ipaddress.ip_network(self.lab.node_annotations(self.node)["weft.io/subnet"])
        wanted = f"{subnet.network_address + 77}/{subnet.prefixlen}"
        result = self.add("fixed", runtimeConfig={"ips": [wanted]})
        self.assertEqual(result["ips"][0]["address"], wanted)
        addrs = labmod.in_ns(self.pod_ns("fixed"), "ip", "-4", "-o", "addr", "show", "dev", "eth0",
                             capture=True).stdout
        self.assertIn(wanted, addrs)
        self.assertEqual(self.check("fixed", result).returncode, 0)


if __name__ == "__main__":
    unittest.main()
