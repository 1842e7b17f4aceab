#!/usr/bin/env python3
"""bench/kiln_stats.py against references it does not share code with: Student's t quantiles
against the published two-sided 95% table; its tail probabilities (integer and fractional degrees
of freedom) and Welch's p against mpmath's numerical integral of the t density (mpmath comes with
PyTorch's sympy; without it those checks are skipped and said so); summary's interval against its
definition; ratio's interval against the delta method's definition.

  python3 tests/stats_check.py BENCH_DIR
"""
import math
import statistics
import sys

sys.path.insert(0, sys.argv[1])
import kiln_stats as ks  # noqa: E402

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


# 1. The published table of t(0.975, df), df = 1..30, and the normal limit (3 decimals).
TABLE = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042]
for df, want in enumerate(TABLE, start=1):
    got = ks.t_quantile_975(df)
    check(abs(got - want) <= 0.0005 + 1e-9, f"t_quantile_975({df}) = {got:.5f}, the table says {want}")
for df, want in ((40, 2.021), (60, 2.000), (120, 1.980), (1e7, 1.960)):
    got = ks.t_quantile_975(df)
    check(abs(got - want) <= 0.0005 + 1e-9, f"t_quantile_975({df:g}) = {got:.5f}, the table says {want}")

# 2. Tail probabilities and Welch's p against mpmath's integral of the density.
try:
    import mpmath
except ImportError:
    mpmath = None
    print("mpmath not importable: tail and Welch checks against the integral skipped")
if mpmath is not None:
    mpmath.mp.dps = 30

    def tail(t, df):
        df = mpmath.mpf(df)
        c = mpmath.gamma((df + 1) / 2) / (mpmath.sqrt(df * mpmath.pi) * mpmath.gamma(df / 2))
        return float(2 * mpmath.quad(lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2), [abs(t), mpmath.inf]))

    for df in (1, 2, 2.7, 5, 11.3, 30, 200):
        for t in (0.0, 0.3, 1.0, 2.0, 3.5, 8.0):
            got, want = ks.t_two_sided_p(t, df), tail(t, df)
            check(abs(got - want) <= 1e-9 + 1e-7 * want, f"t_two_sided_p({t}, {df}) = {got:.10g}, the integral {want:.10g}")
    # Welch on two samples of unequal spread and size: t and the Satterthwaite df by hand.
    a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4, 22.3, 21.0]
    sa, sb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / (sa ** 2 / (len(a) - 1) + sb ** 2 / (len(b) - 1))
    got, want = ks.welch_p(a, b), tail(t, df)
    check(abs(got - want) <= 1e-9, f"welch_p = {got:.10g}, the integral at t = {t:.4f}, df = {df:.3f}: {want:.10g}")
    check(abs(ks.welch_p(b, a) - got) <= 1e-12, "welch_p is not symmetric")
check(ks.welch_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) > 0.999, "welch_p of identical samples is not 1")
check(ks.welch_p([5.0, 5.0], [5.0, 5.0]) == 1.0 and ks.welch_p([5.0, 5.0], [6.0, 6.0]) == 0.0, "welch_p without spread")

# 3. summary: mean, sample std, and mean ± t(0.975, n - 1) · std / sqrt(n).
v = [863.5, 864.2, 918.0]
s = ks.summary(v)
half = 4.303 * statistics.stdev(v) / math.sqrt(3)
check(s["n"] == 3 and abs(s["mean"] - statistics.fmean(v)) < 1e-9 and abs(s["std"] - statistics.stdev(v)) < 1e-9,
      f"summary's mean or std: {s}")
check(abs(s["ci95_high"] - s["mean"] - half) <= 0.0005 * half and abs(s["mean"] - s["ci95_low"] - half) <= 0.0005 * half,
      f"summary's interval: {s}, half-width should be {half:.4f}")
one = ks.summary([0.94])
check(one["n"] == 1 and one["std"] == 0.0 and one["ci95_low"] == one["ci95_high"] == 0.94, f"summary of one value: {one}")
check(math.isnan(ks.summary([])["mean"]), "summary of nothing has a mean")

# 4. ratio: r = mean(a) / mean(b); its interval r · exp(±q · se), se² the sum of the squared
# relative standard errors, q = t(0.975) at the Welch-Satterthwaite df (1.96 when a side has n = 1).
a, b = ks.summary([10.0, 11.0, 12.0, 10.5]), ks.summary([20.0, 19.0, 23.0])
r, lo, hi = ks.ratio(a, b)
ua, ub = (a["std"] / a["mean"]) ** 2 / 4, (b["std"] / b["mean"]) ** 2 / 3
df = (ua + ub) ** 2 / (ua ** 2 / 3 + ub ** 2 / 2)
q = ks.t_quantile_975(df)
check(abs(r - a["mean"] / b["mean"]) < 1e-12, "ratio's point")
check(abs(math.log(hi / r) - q * math.sqrt(ua + ub)) < 1e-9 and abs(math.log(r / lo) - q * math.sqrt(ua + ub)) < 1e-9,
      f"ratio's interval ({lo}, {hi}) with df {df:.3f}")
check(lo < r < hi, "ratio's interval does not hold its point")
r1, lo1, hi1 = ks.ratio(ks.summary([10.0]), b)
check(abs(math.log(hi1 / r1) - 1.96 * math.sqrt(ub)) < 1e-9, "ratio with n = 1 on one side is not the normal interval")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("kiln_stats: every check passed")
