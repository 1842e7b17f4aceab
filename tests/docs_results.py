#!/usr/bin/env python3
"""Every raw-results file the docs cite exists: each `bench/results/...` path (or glob) named in
README.md and docs/*.md must match at least one file in the tree, so a figure never points at
data that is not there (issue #20).

usage: docs_results.py SOURCE_DIR
"""
import glob, os, re, sys

src = sys.argv[1]
docs = [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))
cited, missing = 0, []
for doc in docs:
    text = open(doc, encoding="utf-8").read()
    for m in re.finditer(r"bench/results/[A-Za-z0-9_.*?\-/]+", text):
        path = m.group(0).rstrip(".,;:)")
        if path.endswith("/"):
            continue
        cited += 1
        if not glob.glob(os.path.join(src, path)):
            line = text.count("\n", 0, m.start()) + 1
            missing.append(f"{os.path.relpath(doc, src)}:{line}: {path}")
for m in missing:
    print("MISSING", m)
print(f"{cited} citations of bench/results/ in {len(docs)} documents, {len(missing)} missing")
sys.exit(1 if missing or cited == 0 else 0)
