#!/usr/bin/env python3
"""Lists the longest functions in src/ (outside #[cfg(test)] modules), rustfmt-formatted code.

A function runs from its `fn` line to the first line holding only `}` at the same indent.
Usage: scripts/fn-lengths.py [--max N]  (exit 1 when one is longer than N lines)."""
import pathlib
import re
import sys

FN = re.compile(r"^(\s*)(?:pub(?:\([a-z]+\))? )?(?:const )?(?:async )?(?:unsafe )?(?:extern \"C\" )?fn (\w+)")


def functions(path):
    lines = path.read_text().splitlines()
    in_tests = None
    for i, line in enumerate(lines):
        if in_tests is None and line.strip() == "#[cfg(test)]":
            in_tests = i
        if in_tests is not None:
            break
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i, len(lines)):
            if lines[j] == indent + "}" or (j == i and line.rstrip().endswith("}")):
                yield m.group(2), j - i + 1, f"{path}:{i + 1}"
                break


def main():
    limit = int(sys.argv[sys.argv.index("--max") + 1]) if "--max" in sys.argv else None
    found = [f for p in sorted(pathlib.Path("src").rglob("*.rs")) for f in functions(p)]
    found.sort(key=lambda f: -f[1])
    for name, n, where in found[:15]:
        print(f"{n:4} {name:32} {where}")
    if limit is not None and found and found[0][1] > limit:
        sys.exit(1)


main()
