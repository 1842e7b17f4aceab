"""The statistics bench/'s scripts share, standard library only (no scipy on a bare machine or on
the GPU machine): a sample's mean, std and 95% interval from Student's t, Welch's two-sided
p-value, and a ratio of two means with its 95% interval.

Student's t is computed, not tabled: its tail through the regularised incomplete beta function
(continued fraction, modified Lentz), its 97.5% quantile by bisection on that tail. Checked
against the published table by tests/stats_check.py.
"""
import math
import statistics

_TINY = 1e-300


def _betacf(a, b, x):
    # Continued fraction of the incomplete beta function (modified Lentz).
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betai(a, b, x):
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t, df):
    """P(|T| >= |t|) for Student's t with df degrees of freedom (df may be fractional)."""
    return betai(df / 2.0, 0.5, df / (df + t * t))


def t_quantile_975(df):
    """The 97.5% quantile of Student's t with df degrees of freedom (the 95% two-sided one)."""
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > 0.05 else (lo, mid)
    return (lo + hi) / 2


def summary(v):
    """mean, std (n - 1), n and the 95% interval of the mean from Student's t; one value: std 0
    and the interval collapsed to it (no interval); none: mean nan."""
    n = len(v)
    m = statistics.fmean(v) if n else float("nan")
    sd = statistics.stdev(v) if n > 1 else 0.0
    half = t_quantile_975(n - 1) * sd / math.sqrt(n) if n > 1 else 0.0
    return dict(mean=m, std=sd, n=n, ci95_low=m - half, ci95_high=m + half)


def welch_p(a, b):
    """Welch's two-sided p-value for equal means of samples a and b (n >= 2 each)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return 0.0 if statistics.fmean(a) != statistics.fmean(b) else 1.0
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return t_two_sided_p(t, df)


def ratio(a, b):
    """mean(a) / mean(b) and its 95% interval, for two summary() dicts: the delta method on the log
    ratio, with Student's t at the Welch-Satterthwaite degrees of freedom of the two relative
    variances (the normal 1.96 when either side has n = 1: then there is no interval worth the name,
    and the caller should say n)."""
    r = a["mean"] / b["mean"]
    ua = (a["std"] / a["mean"]) ** 2 / a["n"]
    ub = (b["std"] / b["mean"]) ** 2 / b["n"]
    se = math.sqrt(ua + ub)
    if a["n"] > 1 and b["n"] > 1 and ua + ub > 0:
        df = (ua + ub) ** 2 / (ua ** 2 / (a["n"] - 1) + ub ** 2 / (b["n"] - 1))
        q = t_quantile_975(df)
    else:
        q = 1.96
    return r, r * math.exp(-q * se), r * math.exp(q * se)
