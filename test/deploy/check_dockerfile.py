#!/usr/bin/python3
"""Static checks of the Dockerfile (no container engine here):

- two stages: a Debian bookworm build stage and a bookworm-slim runtime stage;
- the runtime stage copies exactly weftd, weftctl and the weft CNI plugin from the build stage,
  to the paths the DaemonSet and the Debian package use, and runs weftd;
- every package either stage installs exists in Debian (apt-cache);
- the build stage installs the build dependencies scripts/setup.sh lists;
- the runtime stage installs the package of every shared library the built binaries load
  (readelf NEEDED -> dpkg -S), and no -dev package or build tool;
- .dockerignore keeps .git and build directories out of the build context.
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_lib import Checks  # noqa: E402

BINARIES = {"weftd": "/usr/bin/weftd", "weftctl": "/usr/bin/weftctl", "weft": "/opt/cni/bin/weft"}
# In every debian:bookworm-slim image already (apt itself needs them).
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1", "zlib1g"}
NOT_IN_IMAGE = {"git", "catch2"}  # setup.sh's build packages the image does not need (tests are off)


def instructions(path):
    """[(INSTRUCTION, text)] with line continuations joined and comments dropped."""
    out, cur = [], ""
    with open(path) as f:
        for line in f:
            s = line.rstrip("\n")
            if not cur and (not s.strip() or s.lstrip().startswith("#")):
                continue
            if s.lstrip().startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def stages(instrs):
    result = []
    for ins, rest in instrs:
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            result.append({"from": m.group(1), "name": m.group(2), "instrs": []})
        elif result:
            result[-1]["instrs"].append((ins, rest))
    return result


def apt_installs(stage):
    pkgs = []
    for ins, rest in stage["instrs"]:
        if ins != "RUN":
            continue
        for part in re.split(r"&&|;", rest):
            words = part.split()
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def setup_build_packages(setup):
    text = open(setup).read()
    block = re.search(r"packages=\((.*?)\n\)", text, re.S).group(1)
    section, out = None, []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("#"):
            section = line.lstrip("# ").split()[0] if line.lstrip("# ") else None
            continue
        if section == "build":
            out += line.split()
    return out


def existing_packages(names):
    """The subset of names Debian has (one apt-cache call; it names the missing ones on stderr)."""
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", *names], capture_output=True, text=True)
    return set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))


def needed_packages(binary, checks):
    """{package: [sonames]} for the shared libraries the binary names (NEEDED) directly."""
    dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    out = {}
    for soname in needed:
        path = where.get(soname)
        if not checks.expect(path and path != "not", f"{binary}: ldd cannot find {soname}"):
            continue
        candidates = {path, os.path.realpath(path)}
        for p in list(candidates):
            if p.startswith("/usr/lib/"):
                candidates.add(p[len("/usr"):])
            elif p.startswith("/lib/"):
                candidates.add("/usr" + p)
        pkg = None
        for p in candidates:
            r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0].strip()
                break
        if checks.expect(pkg, f"{binary}: no Debian package owns {soname} ({path})"):
            out.setdefault(pkg, []).append(soname)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--dockerfile", help="default: REPO/Dockerfile")
    ap.add_argument("binaries", nargs="*", help="the built weftd, weftctl and weft")
    a = ap.parse_args()
    checks = Checks("Dockerfile")
    dockerfile = a.dockerfile or os.path.join(a.repo, "Dockerfile")
    st = stages(instructions(dockerfile))
    if not checks.expect(len(st) == 2, f"expected two stages (build, runtime), found {len(st)}"):
        checks.finish()
    build, runtime = st
    # Fully qualified: buildah (the Vagrant lab's builder) will not guess a registry for short names.
    checks.expect(build["from"] == "docker.io/library/debian:bookworm" and build["name"],
                  f"the build stage should be `FROM docker.io/library/debian:bookworm AS build`, is "
                  f"{build['from']} AS {build['name']}")
    checks.expect(runtime["from"] == "docker.io/library/debian:bookworm-slim",
                  f"the runtime stage should be docker.io/library/debian:bookworm-slim, is {runtime['from']}")

    # The runtime stage: exactly the three binaries from the build stage, and weftd as the entry point.
    copies = {}
    for ins, rest in runtime["instrs"]:
        if ins in ("COPY", "ADD"):
            words = rest.split()
            from_build = f"--from={build['name']}" in words
            paths = [w for w in words if not w.startswith("--")]
            checks.expect(ins == "COPY" and from_build and len(paths) == 2,
                          f"runtime stage: `{ins} {rest}` should be `COPY --from={build['name']} SRC DST`")
            if len(paths) == 2:
                dst = paths[1] + (os.path.basename(paths[0]) if paths[1].endswith("/") else "")
                copies[os.path.basename(dst)] = dst
    checks.expect(copies == BINARIES, f"the runtime stage should copy exactly {BINARIES}, copies {copies}")
    entry = [rest for ins, rest in runtime["instrs"] if ins == "ENTRYPOINT"]
    checks.expect(entry and re.fullmatch(r'\[\s*"/usr/bin/weftd"\s*\]', entry[-1]),
                  f"the runtime stage should have ENTRYPOINT [\"/usr/bin/weftd\"], has {entry}")

    # Packages exist, the build stage has setup.sh's build dependencies, the runtime stage only libraries.
    build_pkgs, runtime_pkgs = apt_installs(build), apt_installs(runtime)
    checks.expect(build_pkgs and runtime_pkgs, "both stages should apt-get install their packages")
    known = existing_packages(sorted(set(build_pkgs + runtime_pkgs)))
    for p in sorted(set(build_pkgs + runtime_pkgs)):
        checks.expect(p in known, f"no Debian package {p!r} (apt-cache show; run apt-get update first)")
    for p in setup_build_packages(os.path.join(a.repo, "scripts", "setup.sh")):
        if p not in NOT_IN_IMAGE:
            checks.expect(p in build_pkgs, f"scripts/setup.sh builds with {p}, the Dockerfile's build stage lacks it")
    for p in runtime_pkgs:
        checks.expect(not p.endswith("-dev") and p not in ("build-essential", "cmake", "pkg-config", "g++", "gcc"),
                      f"the runtime stage installs {p}: only runtime libraries belong there")
    needed = {}
    for b in a.binaries:
        for pkg, sonames in needed_packages(b, checks).items():
            needed.setdefault(pkg, set()).update(sonames)
    for pkg, sonames in sorted(needed.items()):
        checks.expect(pkg in runtime_pkgs or pkg in BASE_IMAGE_PACKAGES,
                      f"the binaries load {', '.join(sorted(sonames))} from {pkg}: add {pkg} to the runtime stage")
    if a.binaries:
        unused = [p for p in runtime_pkgs if p not in needed]
        if unused:
            print(f"note: the runtime stage installs {' '.join(unused)}, which the binaries built now do not "
                  f"load directly (expected while weftd is not linked against all of its libraries)")

    # The build context.
    ignore_path = os.path.join(a.repo, ".dockerignore")
    ignore = open(ignore_path).read().split() if os.path.exists(ignore_path) else []
    checks.expect(".git" in ignore, ".dockerignore should exclude .git")
    checks.expect(any(i.startswith("build") for i in ignore), ".dockerignore should exclude the build directories")
    checks.finish()


if __name__ == "__main__":
    main()
