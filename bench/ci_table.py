#!/usr/bin/env python3
"""CI's measured durations, from the raw file every run is recorded in
(bench/results/ci-cold-2026-12-01.json), as the markdown docs/ci.md shows: a summary by machine
and condition, then every run. docs/ci.md holds the output between its two marker lines;
`--check docs/ci.md` fails when they differ (test docs.ci_table), `--write docs/ci.md` replaces it.
  bench/ci_table.py [RAW.json] [--check|--write DOC.md]
"""
import json
import re
import statistics
import sys

BEGIN = "<!-- bench/ci_table.py: begin -->"
END = "<!-- bench/ci_table.py: end -->"


def machine(key, run):
    text = key + " " + run.get("machine", "")
    if "CI machine" in text:
        return "the project's CI, at landing"
    if "model 167" in text:
        return "Intel Xeon with AMX (lscpu model 167)"
    if "Xeon" in text:
        return "Intel Xeon with AMX (an earlier one)"
    if "family 25 model 1:" in text or "family 25 model 1)" in text:
        return "AMD EPYC, AVX2 only (lscpu family 25 model 1)"
    return "AMD EPYC (lscpu family 25 model 17)"  # the file's own machine, as its early runs


def condition(key):
    if "failed" in key:
        return "failed"
    if "cold ccache" in key:
        return "venv cached, ccache cold"
    if re.search(r"\bcold\b|from nothing", key):
        return "from nothing"
    return "venv cached"


def tests(run):
    m = re.search(r"out of (\d+)", run.get("ctest", ""))
    return m.group(1) if m else ""


def table(raw):
    runs = json.load(open(raw))["runs"]
    rows = []
    for key, run in runs.items():
        st = run.get("stages_s", {})
        rows.append({"commit": key.split()[0], "machine": machine(key, run), "condition": condition(key),
                     "total": run.get("total_s"), "build": st.get("configure + build"), "test": st.get("test"),
                     "sanitize": st.get("sanitize"), "tests": tests(run)})
    out = ["| machine (2 cores each) | condition | runs | total, minutes: least / median / most |", "|---|---|---|---|"]
    groups = {}
    for r in rows:
        if r["total"] is not None:
            groups.setdefault((r["machine"], r["condition"]), []).append(r["total"] / 60)
    for (m, c), t in groups.items():
        out.append(f"| {m} | {c} | {len(t)} | {min(t):.1f} / {statistics.median(t):.1f} / {max(t):.1f} |")
    out += ["", "| commit | machine | condition | total | build | tests stage | sanitized tests | tests |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        total = f"{r['total'] / 60:.1f} min ({r['total']:,} s)" if r["total"] is not None else "—"
        cell = lambda v: f"{v} s" if v is not None else "—"
        out.append(f"| {r['commit']} | {r['machine']} | {r['condition']} | {total} | {cell(r['build'])} | {cell(r['test'])} | "
                   f"{cell(r['sanitize'])} | {r['tests'] or '—'} |")
    return "\n".join(out) + "\n"


def main(argv):
    raw = next((a for a in argv if a.endswith(".json")), "bench/results/ci-cold-2026-12-01.json")
    text = table(raw)
    mode = next((a for a in argv if a in ("--check", "--write")), None)
    if mode is None:
        sys.stdout.write(text)
        return 0
    doc = argv[argv.index(mode) + 1]
    s = open(doc).read()
    if BEGIN not in s or END not in s:
        print(f"{doc}: no '{BEGIN}' ... '{END}' block")
        return 1
    head, rest = s.split(BEGIN, 1)
    old, tail = rest.split(END, 1)
    if mode == "--write":
        open(doc, "w").write(head + BEGIN + "\n" + text + END + tail)
        return 0
    if old.strip() != text.strip():
        print(f"{doc}: the table is not {raw}'s; run bench/ci_table.py --write {doc}")
        return 1
    print(f"{doc}: the table is {raw}'s ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
