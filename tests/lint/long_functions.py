#!/usr/bin/env python3
"""Fails when a function in the shard crate or the S3 front end runs over
LINES_MAX lines (tests excepted).

A function that long does several things; it should be several functions,
each with a name that says what it does. Counts lines from the `fn` line to
its closing brace, braces in strings, chars and comments included (close
enough for a ceiling).

Usage: tests/lint/long_functions.py [dir ...] (default: shard/src src/s3).
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINES_MAX = 120
FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def long_functions(path: Path):
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, opened, j = 0, False, i
        while j < len(lines):
            code = lines[j].split("//", 1)[0]
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if ";" in code and not opened:
                break  # a declaration without a body
            if opened and depth <= 0:
                break
            j += 1
        length = j - i + 1
        if opened and length > LINES_MAX:
            yield m.group(1), i + 1, length
        i += 1


def is_test(path: Path) -> bool:
    return path.name in ("tests.rs",) or path.stem.endswith("_test") or "tests" in path.parts


def main(argv):
    dirs = argv or ["shard/src", "src/s3"]
    found = False
    for d in dirs:
        for path in sorted((ROOT / d).rglob("*.rs")):
            if is_test(path):
                continue
            text = path.read_text()
            # Functions inside `#[cfg(test)] mod tests { ... }` at the end
            # of a file are tests too.
            cut = text.find("#[cfg(test)]\nmod tests {")
            for name, line, length in long_functions(path):
                if cut >= 0 and line > text[:cut].count("\n"):
                    continue
                found = True
                print(f"{path.relative_to(ROOT)}:{line}: fn {name} is {length} lines "
                      f"(at most {LINES_MAX})")
    if not found:
        print(f"no function over {LINES_MAX} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
