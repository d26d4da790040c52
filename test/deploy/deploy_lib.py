"""Shared helpers of the deploy checks: loading manifests, weftd's flags, failure reporting."""
import json
import os
import re
import shlex
import subprocess
import sys

import yaml


class Checks:
    """Collects failures; every check runs to the end so one run shows every problem."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.passed = 0

    def fail(self, msg):
        self.failures.append(msg)
        print(f"FAIL: {msg}")

    def expect(self, cond, msg):
        if cond:
            self.passed += 1
        else:
            self.fail(msg)
        return cond

    def finish(self):
        if self.failures:
            print(f"{self.name}: {len(self.failures)} failed, {self.passed} passed")
            sys.exit(1)
        print(f"{self.name}: all {self.passed} checks passed")
        sys.exit(0)


class Manifest:
    """One object from manifests/, with the file it came from."""

    def __init__(self, path, index, obj):
        self.path = path
        self.index = index
        self.obj = obj

    @property
    def kind(self):
        return self.obj.get("kind")

    @property
    def name(self):
        return (self.obj.get("metadata") or {}).get("name")

    def where(self):
        return f"{os.path.basename(self.path)}[{self.index}] {self.kind}/{self.name}"


def manifest_files(directory):
    """The files `kubectl apply -f DIR` reads, in the order it reads them."""
    return sorted(
        os.path.join(directory, f)
        for f in os.listdir(directory)
        if f.endswith((".yaml", ".yml", ".json")) and os.path.isfile(os.path.join(directory, f))
    )


def load_manifests(directory, checks):
    objs = []
    files = manifest_files(directory)
    checks.expect(files, f"no manifests in {directory}")
    for path in files:
        try:
            with open(path) as f:
                docs = list(yaml.safe_load_all(f))
        except yaml.YAMLError as e:
            checks.fail(f"{path} does not parse: {e}")
            continue
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                checks.fail(f"{path}[{i}] is not a mapping")
                continue
            objs.append(Manifest(path, i, doc))
    return objs


def one(objs, kind, checks):
    found = [m for m in objs if m.kind == kind]
    checks.expect(len(found) == 1, f"expected exactly one {kind}, found {len(found)}")
    return found[0] if found else None


def weftd_flags(weftd):
    """weftd's flags from its --help: {flag: {"default": str|None, "env": str|None, "takes_value": bool}}."""
    out = subprocess.run([weftd, "--help"], capture_output=True, text=True, check=True).stdout
    flags = {}
    for line in out.splitlines():
        m = re.match(r"^\s+(?:-\w,)?(--[a-z0-9-]+)(.*)$", line)
        if not m:
            continue
        flag, rest = m.group(1), m.group(2)
        env = re.search(r"\(Env:([A-Z0-9_]+)\)", rest)
        spec = rest.split("(Env:")[0].strip()
        default = spec.rsplit("=", 1)[1] if "=" in spec else None
        flags[flag] = {"default": default, "env": env.group(1) if env else None, "takes_value": bool(spec)}
    return flags


def effective_options(args, env, flags, checks, where):
    """What weftd will run with, given its argv and environment: {flag: value}."""
    values = {f: info["default"] for f, info in flags.items()}
    for f, info in flags.items():
        if info["env"] and info["env"] in env:
            values[f] = env[info["env"]]
    i = 0
    while i < len(args):
        arg = args[i]
        name, _, inline = arg.partition("=")
        if name not in flags:
            checks.fail(f"{where}: weftd has no flag {name} (weftd --help)")
            i += 1
            continue
        if flags[name]["takes_value"]:
            if inline:
                values[name] = inline
            elif i + 1 < len(args):
                values[name] = args[i + 1]
                i += 1
            else:
                checks.fail(f"{where}: {name} needs a value")
        else:
            values[name] = inline or "true"
        i += 1
    return values


def shell_commands(script):
    """Splits a small sh script into commands (lists of words), on newlines, ';' and '&&'."""
    cmds = []
    for line in script.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r";|&&", line):
            words = shlex.split(part, comments=True)
            if words:
                cmds.append(words)
    return cmds


def json_text(text, what, checks):
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        checks.fail(f"{what} is not valid JSON: {e}")
        return None
