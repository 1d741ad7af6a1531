#!/usr/bin/python3
"""layers - checks the layering of the tree from the built objects.

lib/ is the bottom layer: no lib/ object may use a symbol defined in cli/,
postfix-policyd/ or dovecot-plugin/, and no two lib/ modules may depend on
each other in a loop (a module depends on another when its object uses a
symbol the other defines). Also, no lib/ source includes a header from
above. Run from the top directory after `make` (make analyze does).
Exit 0 when the layers hold, 1 with one line per violation otherwise.
"""
import glob
import os
import re
import subprocess
import sys

BUILD = os.environ.get("BUILD", "build")


def symbols(obj):
    defined, used = set(), set()
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
    return defined, used


def main():
    problems = []
    lib = {os.path.basename(o)[:-2]: symbols(o) for o in glob.glob(f"{BUILD}/lib/*.o")}
    if not lib:
        print(f"layers: no objects in {BUILD}/lib (run make first)")
        return 1
    upper = {}
    for part in ("cli", "postfix-policyd", "dovecot-plugin"):
        for o in glob.glob(f"{BUILD}/{part}/**/*.o", recursive=True):
            for s in symbols(o)[0]:
                upper[s] = os.path.relpath(o, BUILD)
    owner = {s: m for m, (d, _) in lib.items() for s in d}
    deps = {}
    for m, (_, used) in lib.items():
        deps[m] = {owner[s] for s in used if s in owner and owner[s] != m}
        for s in sorted(used):
            if s in upper:
                problems.append(f"lib/{m}.c uses {s} from {upper[s]}")
    # A loop: a module that reaches itself.
    for start in sorted(deps):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(deps[node]):
                if nxt == start:
                    problems.append("lib/ loop: " + " -> ".join(path + [nxt]))
                    stack = []
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    for src in sorted(glob.glob("lib/*.[ch]")):
        for name in inc.findall(open(src, encoding="utf-8").read()):
            if not os.path.exists(os.path.join("lib", name)):
                problems.append(f"{src} includes \"{name}\", which is not in lib/")
    for p in problems:
        print("layers:", p)
    if not problems:
        print(f"layers: lib/ holds {len(lib)} modules, no loop, nothing from above")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
