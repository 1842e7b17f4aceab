#!/usr/bin/env python3
"""The three rows of issue #25 from kiln's own records: supervised on the labeled split (the
round-1 teachers), the last round's students, and supervised on every label (a `kiln bench`
JSON of the same network and precision: the ceiling), with Welch's two-sided p-values between
them. Standard library only (bench/kiln_stats.py).

  python3 bench/selftrain_table.py RUN/selftrain.json CEILING_BENCH.json [--strength S4]
"""
import argparse
import json
import statistics

import kiln_stats
from kiln_stats import welch_p


def summary(xs):
    xs = [x for x in xs if x is not None]  # null: a folder's pseudo-labels (no labels to score them)
    if not xs:
        return "unknown (no labels)"
    s = kiln_stats.summary([100 * x for x in xs])
    if s["n"] < 2:
        return f"{s['mean']:.2f} (n=1)"
    return f"{s['mean']:.2f} ± {s['std']:.2f} (n={s['n']}, 95% CI {s['ci95_low']:.2f}–{s['ci95_high']:.2f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("selftrain_json")
    ap.add_argument("ceiling_json", help="kiln bench JSON of the same network on every label")
    ap.add_argument("--strength", default=None, help="the student strength (default: the first)")
    args = ap.parse_args()
    doc = json.load(open(args.selftrain_json))
    st = doc["strengths"][0] if args.strength is None else next(s for s in doc["strengths"] if s["name"] == args.strength)
    base = st["baseline"]["test_acc"]
    stud = st["rounds"][-1]["test_acc"]
    ceil = json.load(open(args.ceiling_json))
    top = ceil["per_run"]["test_acc"]
    labels = doc["labels"] or "all"  # 0: every training example labeled (the unlabeled images from a folder)
    rows = [("teachers", f"supervised, {labels} labels ({st.get('teacher_strength', st['name'])}; the round-1 teachers)", base),
            ("students", f"noisy student of round {len(st['rounds'])} ({st['name']}), {labels} labels + "
                         + (f"the images of {doc['unlabeled_folder']}" if doc.get("unlabeled_folder") else "the unlabeled rest"), stud),
            ("ceiling", f"supervised, all labels ({ceil['preset']}; the ceiling)", top)]
    print("| row | test accuracy, % |\n|---|---|")
    for _, name, xs in rows:
        print(f"| {name} | {summary(xs)} |")
    print("\n| comparison | difference, points | Welch p (two-sided) |\n|---|---|---|")
    for (na, _, a), (nb, _, b) in [(rows[1], rows[0]), (rows[2], rows[1]), (rows[2], rows[0])]:
        d = 100 * (statistics.mean(a) - statistics.mean(b))
        p = f"{welch_p(a, b):.3g}" if len(a) >= 2 and len(b) >= 2 else "n/a (n < 2)"
        print(f"| {na} − {nb} | {d:+.2f} | {p} |")
    rd = st["rounds"][-1]
    acc = summary(rd["pseudo_accuracy"])
    print(f"\nPseudo-labels (round {len(st['rounds'])}): accuracy {acc}{'' if 'unknown' in acc else ' %'}, "
          f"coverage {summary(rd['pseudo_coverage'])} %. Device: {doc['device']}; ceiling device: {ceil.get('device_name', '?')}.")


if __name__ == "__main__":
    main()
