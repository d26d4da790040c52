#!/usr/bin/env python3
"""The source folders form layers that point one way (README "Layout").

Every `#include "x/y.hpp"` of weft's own code is checked against the table below: a folder may
include itself and the folders listed for it, never a folder above it or a sibling. Also checks
that the README's layout table names each source folder, and the folder READMEs exist.

  check_layers.py --repo DIR        exit 1 and one line per offending include
  check_layers.py --selftest        proves the check fails on a planted upward include
"""
import argparse
import pathlib
import re
import sys
import tempfile

# folder -> folders it may include besides itself (bottom to top).
LAYERS = {
    "core": [],
    "subnet": ["core"],
    "backend": ["core"],
    "overlay/nftables": ["core"],
    "overlay": ["core", "subnet", "backend", "overlay/nftables"],
    "cmd/weft": ["core"],
    "cmd/weftctl": ["core", "backend"],
    "cmd/weftd": ["core", "subnet", "backend", "overlay", "overlay/nftables"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SOURCE_SUFFIXES = {".cpp", ".hpp", ".h", ".cc"}


def layer_of(rel: str) -> str | None:
    """The longest LAYERS key that is a folder prefix of rel."""
    best = None
    for layer in LAYERS:
        if rel.startswith(layer + "/") and (best is None or len(layer) > len(best)):
            best = layer
    return best


def include_violations(repo: pathlib.Path) -> list[str]:
    problems = []
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
            continue
        own = layer_of(rel)
        if own is None:
            continue  # test/, build trees and anything outside the layers
        allowed = {own, *LAYERS[own]}
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m or "/" not in m.group(1):
                continue
            target = layer_of(m.group(1))
            if target is None:
                problems.append(f"{rel}:{lineno}: includes \"{m.group(1)}\", which is in no layer "
                                f"(add its folder to LAYERS in test/deploy/check_layers.py)")
            elif target not in allowed:
                problems.append(f"{rel}:{lineno}: {own}/ includes \"{m.group(1)}\" from {target}/; "
                                f"{own}/ may include only {', '.join(sorted(allowed))}/ "
                                f"(move the shared part down to core/ or invert the call)")
    return problems


def readme_violations(repo: pathlib.Path) -> list[str]:
    problems = []
    readme = repo / "README.md"
    listed = set(re.findall(r"^\| `([a-z/]+)/` \|", readme.read_text(), re.M)) if readme.exists() else set()
    for top in sorted({layer.split("/")[0] for layer in LAYERS}):
        if top not in listed:
            problems.append(f"README.md: the layout table has no row for `{top}/`")
        if not (repo / top / "README.md").exists():
            problems.append(f"{top}/README.md is missing (one line: what lives here, what it may include)")
    for name in sorted(listed):
        if not (repo / name).is_dir():
            problems.append(f"README.md: the layout table lists `{name}/`, which is not in the tree")
    return problems


def check(repo: pathlib.Path) -> list[str]:
    return include_violations(repo) + readme_violations(repo)


def selftest() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for top in ["core", "subnet", "backend", "overlay", "cmd"]:
            (root / top).mkdir()
            (root / top / "README.md").write_text("x\n")
        (root / "README.md").write_text("".join(f"| `{t}/` | x |\n" for t in
                                                ["core", "subnet", "backend", "overlay", "cmd"]))
        (root / "core/ip.hpp").write_text('#include "core/result.hpp"\n')
        (root / "subnet/a.cpp").write_text('#include "core/ip.hpp"\n')
        if check(root):
            print("selftest: a clean tree was refused:", check(root))
            return 1
        (root / "core/ip.hpp").write_text('#include "overlay/agent.hpp"\n')
        (root / "subnet/a.cpp").write_text('#include "backend/vxlan/state.hpp"\n')
        found = check(root)
        if len(found) != 2 or "core/ip.hpp:1" not in found[0] or "subnet/a.cpp:1" not in found[1]:
            print("selftest: planted upward/sideways includes not both reported:", found)
            return 1
    print("selftest: ok (clean tree passes, 2 planted includes reported)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", type=pathlib.Path)
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    if args.selftest:
        return selftest()
    problems = check(args.repo)
    for p in problems:
        print(p)
    print(f"layers: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
