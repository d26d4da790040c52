"""/metrics as Prometheus reads it: `promtool check metrics` on each lab node's scrape (any
lint finding fails), then a real Prometheus (Debian's 2.42) started in the lab's API namespace
scrapes the nodes every second and is queried through its HTTP API.

Run with: WEFT_BUILD_DIR=build python3 -m unittest -v test_prometheus.Scrape
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import lab as labmod  # noqa: E402

BUILD = os.environ.get("WEFT_BUILD_DIR", os.path.join(labmod.ROOT, "build"))
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
PROM_LISTEN = "127.0.0.1:9091"  # inside the lab's API namespace: no clash with the host or another lab
# A target nothing listens on: its up must be 0, which shows the queries can see a failed scrape.
DEAD_PORT = labmod.HEALTHZ_PORT + 1


class ScrapeableLab(labmod.Lab):
    healthz_ip = "0.0.0.0"  # Prometheus, in the API namespace, scrapes the nodes over the underlay


class Scrape(unittest.TestCase):
    nodes = 2

    def setUp(self):
        for tool in (PROMTOOL, PROMETHEUS):
            if not os.access(tool, os.X_OK):
                self.fail(f"{tool} is missing: apt-get install prometheus (scripts/setup.sh)")
        self.lab = ScrapeableLab(f"p{os.getpid() % 100000}", BUILD, "double")
        self.addCleanup(self.lab.down)
        self.lab.up(self.nodes, pods=0)

    def targets(self):
        return {node: f"{info['ip']}:{labmod.HEALTHZ_PORT}" for node, info in self.lab.state["nodes"].items()}

    def scrape(self, node):
        return labmod.in_ns(self.lab.state["nodes"][node]["ns"], "curl", "-sf", "--max-time", "5",
                            f"http://127.0.0.1:{labmod.HEALTHZ_PORT}/metrics", capture=True).stdout

    def start_prometheus(self):
        d = os.path.join(self.lab.dir, "prometheus")  # under the lab: down() kills strays and removes it
        os.makedirs(os.path.join(d, "data"))
        dead = f"{labmod.API_IP}:{DEAD_PORT}"
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [
                      {"job_name": "weftd", "static_configs": [{"targets": sorted(self.targets().values())}]},
                      {"job_name": "dead", "static_configs": [{"targets": [dead]}]}]}
        with open(os.path.join(d, "prometheus.yml"), "w") as fh:
            json.dump(config, fh)  # JSON is YAML
        log = open(os.path.join(d, "prometheus.log"), "ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.lab.ns("api"), PROMETHEUS,
             "--config.file", os.path.join(d, "prometheus.yml"),
             "--storage.tsdb.path", os.path.join(d, "data"),
             "--web.listen-address", PROM_LISTEN],
            stdout=log, stderr=log, start_new_session=True)
        self.lab.state["pids"]["prometheus"] = proc.pid  # down() stops it with weftd
        self.lab.save()
        self.addCleanup(labmod.kill_group, proc.pid, signal.SIGTERM)  # runs before down()
        self.prom_log = os.path.join(d, "prometheus.log")
        labmod.wait_for(lambda: self.prom_get("/-/ready") is not None, 30,
                        f"Prometheus to start (log: {self.prom_log})")
        return dead

    def prom_get(self, path):
        res = labmod.in_ns(self.lab.ns("api"), "curl", "-sf", "--max-time", "2", f"http://{PROM_LISTEN}{path}",
                           check=False, capture=True)
        return res.stdout if res.returncode == 0 else None

    def query(self, expr):
        """{instance: value} of an instant query through /api/v1/query."""
        body = self.prom_get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if body is None:
            return {}
        data = json.loads(body)
        self.assertEqual(data["status"], "success", body)
        return {r["metric"].get("instance", ""): float(r["value"][1]) for r in data["data"]["result"]}

    def wait_query(self, expr, want, timeout=20, instances=None):
        instances = sorted(instances or self.targets().values())
        deadline = time.monotonic() + timeout
        got = {}
        while time.monotonic() < deadline:
            got = self.query(expr)
            if all(i in got and want(got[i]) for i in instances):
                return got
            time.sleep(0.5)
        self.fail(f"{expr}: {got} after {timeout}s, wanted every one of {instances} "
                  f"(Prometheus log: {self.prom_log})")

    def test_promtool_finds_nothing_and_prometheus_scrapes_every_node(self):
        for node, info in self.lab.state["nodes"].items():
            health = labmod.in_ns(info["ns"], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  f"http://127.0.0.1:{labmod.HEALTHZ_PORT}/healthz", capture=True).stdout
            self.assertEqual(health, "200", f"{node}: /healthz of a live weftd")
            text = self.scrape(node)
            res = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
            self.assertEqual((res.returncode, res.stdout + res.stderr), (0, ""),
                             f"promtool check metrics on {node}'s /metrics:\n{text}")
            self.assertNotRegex(text, r"\d[eE][-+]?\d", f"{node}: a number in exponent notation")
            for name in ("weft_build_info", "weft_peers", "weft_reconcile_duration_seconds_bucket",
                         "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"):
                self.assertRegex(text, rf"(?m)^{name}[{{ ]", f"{node}: {name} missing")

        dead = self.start_prometheus()
        self.wait_query("up", lambda v: v == 1)
        self.wait_query("weft_reconciles_total", lambda v: v > 0)
        self.wait_query("weft_build_info", lambda v: v == 1)
        self.wait_query('weft_peers{state="programmed"}', lambda v: v == self.nodes - 1)
        # Prometheus spreads its targets' first scrapes over the interval, and a busy CI machine
        # can start the dead job's later than the others: wait for it as for them.
        got = self.wait_query(f'up{{instance="{dead}"}}', lambda v: v == 0, instances=[dead])
        self.assertEqual(got, {dead: 0.0}, "the dead target is down")


if __name__ == "__main__":
    unittest.main()
