#!/usr/bin/env python3
"""The runtime's erf (src/kiln/runtime/runtime.cpp, erf_poly): how its coefficients were found,
and how far it is from the exact erf.

Two polynomials, fitted by least squares in double on 4,000 Chebyshev nodes each, then rounded to
float32: below 0.875, erf(x) = x + x P(x^2) with P (degree 5) fitted to erf(x)/x - 1 weighted by
x/erf(x) (relative error); from 0.875 to 3.92, erf(x) = Q(x - 2.3975), degree 16, fitted to erf
(absolute error: the values lie in [0.78, 1)); above 3.92 erf rounds to 1 in float32. The
evaluation is emulated in float32 exactly as the C++ does it (Horner, no fused multiply-add), and
its error measured in units of the float32 spacing at the exact value (math.erf in double) on
2,000,000 uniform draws and 400,001 evenly spaced points of [-6, 6].

  python3 bench/runtime_erf_fit.py [--check src/kiln/runtime/runtime.cpp] [--json OUT]
--check measures the file's kInner and kOuter instead, and fails unless each is within one float32
step of the fit and they are within 2 ulp of erf everywhere measured (CTest
bench.runtime_erf_coefficients). Needs numpy.
"""
import argparse, json, math, re, sys
import numpy as np

A, B, MID = 0.875, 3.92, np.float32(2.3975)
erf = np.vectorize(math.erf)


def nodes(a, b, n=4000):
    k = np.arange(n)
    return (a + b) / 2 + (b - a) / 2 * np.cos((2 * k + 1) * np.pi / (2 * n))


def fit():  # in double; the source holds each rounded to float32
    x = nodes(1e-6, A)
    w = 1 / np.abs(erf(x) / x)
    inner = np.linalg.lstsq(np.vander(x * x, 6, increasing=True) * w[:, None], (erf(x) / x - 1) * w, rcond=None)[0]
    x = nodes(A, B)
    outer = np.linalg.lstsq(np.vander(x - (A + B) / 2, 17, increasing=True), erf(x), rcond=None)[0]
    return inner, outer


def horner(c, t):
    p = c[-1]
    for ci in c[-2::-1]:
        p = p * t + ci
    return p


def erf32(x, inner, outer):  # the C++ in float32: fabs, Horner, the two selects, copysign
    ax = np.abs(x.astype(np.float32))
    p, q = horner(inner, ax * ax), horner(outer, ax - MID)
    r = np.where(ax < np.float32(A), ax + ax * p, np.where(ax > np.float32(B), np.float32(1), q))
    return np.copysign(r, x).astype(np.float32)


def ulps(got, exact):
    return np.abs(got.astype(np.float64) - exact) / np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)


def literal(c):
    s = np.format_float_positional(c, unique=True) if abs(c) > 1e-4 else np.format_float_scientific(c, unique=True)
    assert np.float32(s) == c
    return s + "f"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check")
    ap.add_argument("--json")
    a = ap.parse_args()
    inner64, outer64 = fit()
    inner, outer = [np.float32(c) for c in inner64], [np.float32(c) for c in outer64]
    if a.check:  # the source's coefficients are the ones measured
        src = open(a.check).read()
        have = {}
        for name, want in (("kInner", inner64), ("kOuter", outer64)):
            m = re.search(name + r"\[\] = \{([^}]*)\}", src)
            if not m:
                sys.exit(f"{a.check}: no {name}[] = {{...}}")
            have[name] = [np.float32(v.strip().rstrip("f")) for v in m.group(1).split(",")]
            # Each within one float32 step of the fit: the fit's double values move with the
            # LAPACK build (4e-8 relative between two solvers here), which may flip a rounding.
            off = [abs(float(h) - float(w)) / float(np.spacing(np.abs(np.float32(w)))) for h, w in zip(have[name], want)]
            if len(have[name]) != len(want) or max(off) > 1:
                sys.exit(f"{a.check}: {name} is not the fit's coefficients (float32 steps from each: {off}); the fit: "
                         + ", ".join(literal(np.float32(w)) for w in want))
        inner, outer = have["kInner"], have["kOuter"]
    x = np.concatenate([np.random.default_rng(2).uniform(-6, 6, 2000000), np.linspace(-6, 6, 400001)]).astype(np.float32)
    exact = erf(x.astype(np.float64))
    got = erf32(x, inner, outer)
    e = ulps(got, exact)
    out = {"inner": [literal(c) for c in inner], "outer": [literal(c) for c in outer], "points": int(x.size),
           "max_ulp": float(e.max()), "at": float(x[e.argmax()]), "mean_ulp": float(e.mean()),
           "fraction_over_1_ulp": float((e > 1).mean()),
           "fraction_correctly_rounded": float((got == exact.astype(np.float32)).mean())}
    print(json.dumps(out, indent=1))
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)
    if a.check:
        if not out["max_ulp"] <= 2:
            sys.exit(f"the fit is {out['max_ulp']:.3f} ulp from erf at x = {out['at']}: over 2")
        print(f"{a.check}: kInner and kOuter are the fit's coefficients, within {out['max_ulp']:.2f} ulp of erf")


if __name__ == "__main__":
    main()
