#!/usr/bin/python3
"""Every relative link in the documentation resolves.

doc-links.py SRCDIR [FILE...]: checks README.md, doc/*.md and every
plugins/**/README.md under SRCDIR (or only the FILEs given). A link's file
must exist; a #anchor must name a heading of the target page (GitHub's
rule: lower case, punctuation dropped, spaces to hyphens, -1 -2 ... for
repeats). With no FILE given, every doc/*.md must also be reachable from
README.md by following links. Prints one line per broken link (or page out
of reach) and exits 1 if there is any."""
import glob, os, re, sys
from urllib.parse import unquote

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)*?\1")

def slug(heading):
    h = heading.strip().lower()
    h = re.sub(r"<[^>]+>", "", h)
    h = h.replace("`", "")
    h = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", h)
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")

def lines_outside_code(path):
    infence = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                infence = not infence
                continue
            if not infence and not line.startswith("    "):
                yield n, line

_anchors = {}
def anchors(path):
    if path not in _anchors:
        seen, out = {}, set()
        for _, line in lines_outside_code(path):
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not m:
                continue
            s = slug(m.group(1))
            k = seen.get(s, 0)
            seen[s] = k + 1
            out.add(s if k == 0 else f"{s}-{k}")
        for _, line in lines_outside_code(path):
            for a in re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line):
                out.add(a)
        _anchors[path] = out
    return _anchors[path]

def targets_of(path):
    """the local files path links to"""
    out = []
    for _, line in lines_outside_code(path):
        text = CODE_SPAN.sub("", line)
        found = INLINE_LINK.findall(text)
        m = REF_DEF.match(text)
        if m:
            found.append(m.group(1))
        for t in found:
            file = t.partition("#")[0]
            if file and not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I):
                out.append(os.path.normpath(os.path.join(os.path.dirname(path), unquote(file))))
    return out

def unreachable(src):
    """doc/*.md pages no chain of links from README.md leads to"""
    start = os.path.normpath(os.path.join(src, "README.md"))
    seen, todo = {start}, [start]
    while todo:
        page = todo.pop()
        for t in targets_of(page):
            if t.endswith(".md") and os.path.isfile(t) and t not in seen:
                seen.add(t)
                todo.append(t)
    docs = sorted(os.path.normpath(p) for p in glob.glob(os.path.join(src, "doc", "*.md")))
    return [os.path.relpath(d, src) for d in docs if d not in seen]

def check(path, src):
    bad = []
    for n, line in lines_outside_code(path):
        text = CODE_SPAN.sub("", line)
        targets = INLINE_LINK.findall(text)
        m = REF_DEF.match(text)
        if m:
            targets.append(m.group(1))
        for t in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I):
                continue  # http:, https:, mailto: ...
            file, _, frag = t.partition("#")
            target = path if not file else os.path.normpath(
                os.path.join(os.path.dirname(path), unquote(file)))
            where = f"{os.path.relpath(path, src)}:{n}: {t}"
            if not os.path.exists(target):
                bad.append(f"{where}: no such file")
            elif frag and target.endswith(".md") and os.path.isfile(target):
                if unquote(frag) not in anchors(target):
                    bad.append(f"{where}: no heading #{frag} in "
                               f"{os.path.relpath(target, src)}")
    return bad

def main():
    src = sys.argv[1]
    files = sys.argv[2:] or (
        [os.path.join(src, "README.md")]
        + sorted(glob.glob(os.path.join(src, "doc", "*.md")))
        + sorted(glob.glob(os.path.join(src, "plugins", "**", "README.md"), recursive=True)))
    bad, links = [], 0
    for f in files:
        bad += check(f, src)
    if not sys.argv[2:]:
        bad += [f"{p}: no link from README.md leads here" for p in unreachable(src)]
    for b in bad:
        print(b)
    print(f"{len(files)} pages checked, {len(bad)} broken links", file=sys.stderr)
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main())
