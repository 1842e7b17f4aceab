#!/usr/bin/env python3
"""The three rows of issue #25 from kiln's own records: supervised on the labeled split (the
round-1 teachers), the last round's students, and supervised on every label (a `kiln bench`
JSON of the same network and precision: the ceiling), with Welch's two-sided p-values between
them. Standard library only (Welch's t through the regularised incomplete beta function).

  python3 bench/selftrain_table.py RUN/selftrain.json CEILING_BENCH.json [--strength S4]
"""
import argparse
import json
import math
import statistics


def betacf(a, b, x):
    # Continued fraction of the incomplete beta function (modified Lentz).
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-15:
            break
    return h


def betai(a, b, x):
    # The regularised incomplete beta function I_x(a, b).
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * betacf(b, a, 1.0 - x) / b


def welch_p(a, b):
    """Welch's two-sided p-value for the means of samples a and b (n >= 2 each)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return 0.0 if statistics.mean(a) != statistics.mean(b) else 1.0
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return betai(df / 2.0, 0.5, df / (df + t * t))


def t_quantile_975(df):
    # Two-sided 95% quantile of Student's t by bisection on welch's tail function.
    lo, hi = 0.0, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        p = betai(df / 2.0, 0.5, df / (df + mid * mid))
        lo, hi = (mid, hi) if p > 0.05 else (lo, mid)
    return (lo + hi) / 2


def summary(xs):
    xs = [100 * x for x in xs]
    m = statistics.mean(xs)
    if len(xs) < 2:
        return f"{m:.2f} (n=1)"
    s = statistics.stdev(xs)
    h = t_quantile_975(len(xs) - 1) * s / math.sqrt(len(xs))
    return f"{m:.2f} ± {s:.2f} (n={len(xs)}, 95% CI {m - h:.2f}–{m + h:.2f})"


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
    labels = doc["labels"]
    rows = [("teachers", f"supervised, {labels} labels ({st.get('teacher_strength', st['name'])}; the round-1 teachers)", base),
            ("students", f"noisy student of round {len(st['rounds'])} ({st['name']}), {labels} labels + the unlabeled rest", stud),
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
    print(f"\nPseudo-labels (round {len(st['rounds'])}): accuracy {summary(rd['pseudo_accuracy'])} %, "
          f"coverage {summary(rd['pseudo_coverage'])} %. Device: {doc['device']}; ceiling device: {ceil.get('device_name', '?')}.")


if __name__ == "__main__":
    main()
