#!/usr/bin/env python3
"""Creates Node objects in a real kube-apiserver, many requests at once (stdlib only).

    create_nodes.py --url https://IP:PORT --ca CA --token-file F --nodes-file nodes.json [--workers 8]

nodes.json is a JSON array of Node objects (metadata.annotations and status.addresses are kept:
on create, the API server stores a Node's status as given). Run it where the server is
reachable (bench_daemon.py runs it inside the API's network namespace). Prints the count and
the seconds taken; exits 1 on the first refused create, naming it.
"""

import argparse
import http.client
import json
import queue
import ssl
import sys
import threading
import time
import urllib.parse


def worker(url, ctx, token, jobs, errors):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    while not errors:
        try:
            node = jobs.get_nowait()
        except queue.Empty:
            return
        conn.request("POST", "/api/v1/nodes", body=json.dumps(node), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 201:
            errors.append(f"Node {node['metadata']['name']}: HTTP {resp.status} {body[:300]!r}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--nodes-file", required=True)
    p.add_argument("--workers", type=int, default=8)
    args = p.parse_args(argv)
    with open(args.token_file) as f:
        token = f.read().strip()
    with open(args.nodes_file) as f:
        nodes = json.load(f)
    ctx = ssl.create_default_context(cafile=args.ca)
    jobs = queue.Queue()
    for n in nodes:
        jobs.put(n)
    errors = []
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(args.url, ctx, token, jobs, errors))
               for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"create_nodes: {errors[0]}", file=sys.stderr)
        return 1
    print(f"create_nodes: {len(nodes)} Nodes in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
