#!/usr/bin/env python3
"""Rebuild vendor/modules.txt of an unpacked Debian kubernetes source tree.

Debian's source package ships vendor/modules.txt sorted line by line, so package lines sit
under the wrong "# module" header and "go build -mod=vendor" refuses the tree. The content
is all there; this puts it back in the shape "go mod vendor" writes:

    # module version [=> replacement]      one block per vendored module, sorted by path
    ## explicit                            exactly when go.mod requires that module@version
    package/path ...                       each package under its longest-prefix module
    # module => replacement                wildcard replacements, at the end

Usage: fix_modules_txt.py SOURCE_DIR   (writes SOURCE_DIR/vendor/modules.txt in place)
"""
import os
import re
import sys


def fail(msg):
    sys.stderr.write("fix_modules_txt: " + msg + "\n")
    sys.exit(1)


def go_mod_requires(path):
    """Returns the set of (module, version) pairs listed in go.mod's require directives."""
    requires = set()
    in_block = False
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("//", 1)[0].strip()
            if in_block:
                if line == ")":
                    in_block = False
                elif line:
                    fields = line.split()
                    requires.add((fields[0], fields[1]))
                continue
            if re.match(r"^require\s*\($", line):
                in_block = True
            elif line.startswith("require "):
                fields = line.split()
                requires.add((fields[1], fields[2]))
    return requires


def parse_header(line, where):
    """'# path [version] [=> replacement]' -> (path, version or '', replacement or '')."""
    body = line[2:].strip()
    left, _, right = body.partition(" => ")
    fields = left.split()
    if not fields or len(fields) > 2:
        fail("%s: cannot read module header %r" % (where, line))
    version = fields[1] if len(fields) == 2 else ""
    return fields[0], version, right.strip()


def read_modules_txt(path):
    modules = {}  # (path, version) -> replacement, for vendored modules
    wildcards = {}  # path -> replacement, for "# path => ..." lines
    packages = set()
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            where = "%s:%d" % (path, n)
            if not line.strip() or line.startswith("## "):
                continue  # "## explicit" is recomputed from go.mod
            if line.startswith("# "):
                mod, version, repl = parse_header(line, where)
                if version:
                    modules[(mod, version)] = repl
                else:
                    wildcards[mod] = repl
            elif line.startswith("#"):
                fail("%s: unexpected line %r" % (where, line))
            else:
                packages.add(line.strip())
    return modules, wildcards, packages


def owner(pkg, module_paths):
    """The module whose path is the longest prefix of pkg, or None."""
    best = None
    for mod in module_paths:
        if pkg == mod or pkg.startswith(mod + "/"):
            if best is None or len(mod) > len(best):
                best = mod
    return best


def render(modules, wildcards, packages, requires):
    by_path = {}
    for (mod, version) in modules:
        if mod in by_path:
            fail("module %s is listed with two versions (%s, %s)" % (mod, by_path[mod], version))
        by_path[mod] = version
    grouped = {mod: [] for mod in by_path}
    for pkg in sorted(packages):
        mod = owner(pkg, by_path)
        if mod is None:
            fail("package %s belongs to no module listed in modules.txt" % pkg)
        grouped[mod].append(pkg)
    out = []
    for mod in sorted(by_path):
        version = by_path[mod]
        repl = modules[(mod, version)]
        out.append("# %s %s%s" % (mod, version, " => " + repl if repl else ""))
        if (mod, version) in requires:
            out.append("## explicit")
        out.extend(grouped[mod])
    for mod in sorted(wildcards):
        out.append("# %s => %s" % (mod, wildcards[mod]))
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 2:
        fail("usage: fix_modules_txt.py SOURCE_DIR")
    src = sys.argv[1]
    go_mod = os.path.join(src, "go.mod")
    modules_txt = os.path.join(src, "vendor", "modules.txt")
    for p in (go_mod, modules_txt):
        if not os.path.isfile(p):
            fail("%s not found: is %s an unpacked kubernetes source tree?" % (p, src))
    requires = go_mod_requires(go_mod)
    modules, wildcards, packages = read_modules_txt(modules_txt)
    missing = sorted(r for r in requires if r not in modules)
    if missing:
        fail("go.mod requires modules absent from modules.txt: %s" % ", ".join("%s@%s" % m for m in missing[:5]))
    text = render(modules, wildcards, packages, requires)
    tmp = modules_txt + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, modules_txt)
    print("fix_modules_txt: %d modules (%d explicit), %d packages, %d wildcard replacements"
          % (len(modules), len(requires), len(packages), len(wildcards)))


if __name__ == "__main__":
    main()
