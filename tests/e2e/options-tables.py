#!/usr/bin/python3
"""Hand-written option tables agree with the generated reference.

options-tables.py OPTIONS_MD PAGE...: in each PAGE, every table whose first
column is headed `key` or `option` lists keys (`name`, or `a` / `b`) that
doc/options.md has, and where the table has a `default` column and the
reference gives a default, the two agree. Prints each disagreement and exits
1 if there is any; a page without such tables passes."""
import re, sys

def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]

def reference(path):
    ref = {}  # key -> set of defaults over all sections
    for line in open(path, encoding="utf-8"):
        if line.startswith("| `"):
            c = cells(line)
            ref.setdefault(c[0].strip("`"), set()).add(c[2])
    return ref

def names(cell):
    return [m for m in re.findall(r"`([^`]+)`", cell)]

def main():
    ref = reference(sys.argv[1])
    bad, rows = [], 0
    for page in sys.argv[2:]:
        lines = open(page, encoding="utf-8").read().split("\n")
        i = 0
        while i < len(lines):
            head = lines[i]
            if head.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
                cols = [c.lower() for c in cells(head)]
                i += 2
                if cols[0] not in ("key", "option"):
                    continue
                dcol = cols.index("default") if "default" in cols else None
                while i < len(lines) and lines[i].startswith("|"):
                    c = cells(lines[i]); rows += 1
                    keys = names(c[0].split("(")[0])
                    defs = [d.strip().strip("`") for d in c[dcol].split(" / ")] if dcol is not None else []
                    for k_i, k in enumerate(keys):
                        if k not in ref:
                            bad.append(f"{page}:{i + 1}: `{k}` is not in the option reference")
                            continue
                        if dcol is None or len(defs) != len(keys):
                            continue
                        known = {d for d in ref[k] if d}
                        if known and defs[k_i] not in known:
                            bad.append(f"{page}:{i + 1}: `{k}` default {defs[k_i]}, "
                                       f"the reference says {' or '.join(sorted(known))}")
                    i += 1
            else:
                i += 1
    for b in bad:
        print(b)
    print(f"{rows} option rows checked, {len(bad)} disagreements", file=sys.stderr)
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main())
