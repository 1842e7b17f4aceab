"""The docs/perf.md table from a results folder of bench/gpu.sh (or any `kiln bench --out`,
bench/airbench_real.py and bench/airbench_peer.py JSON files in one folder): one row per preset
or peer with accuracy and time (mean ± std, n, 95% CI), TFLOP/s, device, software and commit,
then, per target accuracy, kiln's time against the fastest real peer that reaches it.

The one rule (issue #19): for each target (94%, 96%), the yardstick is the fastest **real**
airbench script (bench/airbench_real.py: KellerJordan's own code, run unmodified but its run
count on the same GPU) whose mean accuracy reaches the target: airbench94_muon for 94%,
airbench96_faster for 96%, when they do. kiln's preset for that target meets the goal when its
mean accuracy is at least the target and its mean time is at most 0.75x the yardstick's (the
ratio's 95% interval, bench/kiln_stats.py's `ratio`, is printed beside it). kiln's own PyTorch transcriptions
(bench/airbench_peer.py) are CPU-side checks of the recipes: listed, never the yardstick.

Usage: python3 bench/perf_table.py RESULTS_DIR [--date YYYY-MM-DD] > table.md
Only the standard library (and bench/kiln_stats.py beside it): it runs wherever the results land.
"""
import argparse, glob, json, os, sys
from datetime import date

from kiln_stats import ratio

# the accuracy each peer recipe of bench/airbench_peer.py and each kiln preset chases: kiln's time
# is compared with every peer of the same target (the goal is against the best of them)
PEER_TARGET = {"airbench94": 0.94, "airbench94_muon": 0.94, "airbench95": 0.95, "airbench96": 0.96, "airbench96_faster": 0.96}
TARGET = {"cifar10-94": 0.94, "cifar10-94-muon": 0.94, "cifar10-95": 0.95, "cifar10-96": 0.96, "cifar10-96-faster": 0.96}
# each kiln preset's own recipe among the real scripts: shown beside the rule, never instead of it
RECIPE = {"cifar10-94": "airbench94", "cifar10-94-muon": "airbench94_muon", "cifar10-95": "airbench95",
          "cifar10-96": "airbench96", "cifar10-96-faster": "airbench96_faster"}


def pct(s):
    if s["n"] == 0:
        return "no run finished"
    if s["n"] < 2 or s.get("ci95_low") is None:  # kiln bench writes null for the interval of one run
        return f"{100 * s['mean']:.2f}% (n={s['n']}, no interval)"
    return f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}% (n={s['n']}, 95% CI {100 * s['ci95_low']:.2f}–{100 * s['ci95_high']:.2f})"


def secs(s):
    if s["n"] == 0:
        return "—"
    if s["n"] < 2:
        return f"{s['mean']:.3f} s"
    return f"{s['mean']:.3f} ± {s['std']:.3f} s"


def classify(p, j):
    """The row of one JSON file, or None when it is none of the three kinds (a file gathering several
    invocations' records, say); a KeyError when it looks like one of them but lacks a field."""
    if not isinstance(j, dict) or not all(isinstance(j.get(k), dict) for k in ("test_acc", "seconds")):
        return None
    for k in ("test_acc", "seconds"):  # what the table reads of each summary, checked before any row is printed
        need = ("mean", "n") + (("std",) if j[k].get("n", 0) >= 2 else ())
        for f in need:
            if not isinstance(j[k].get(f), (int, float)):
                raise KeyError(f"{k}.{f}")
    name = os.path.basename(p)
    if "preset" in j and "provenance" in j:  # kiln bench
        pv = j["provenance"]
        return dict(kind="kiln", name=j["preset"], file=name, j=j, device=j.get("device_name", j.get("device")),
                    torch=f"LibTorch {pv.get('libtorch_version')}"
                    + (f" (CUDA {pv['libtorch_cuda']})" if pv.get("libtorch_cuda") else ""),
                    commit=pv.get("kiln_commit", "?"), asked=j.get("runs_requested", j["runs"]))
    if j.get("real"):  # bench/airbench_real.py: the real script
        return dict(kind="real", name=j["recipe"], file=name, j=j, device=j.get("device", "?"),
                    torch=f"PyTorch {j.get('torch_version', '?')}" + (" + compile" if j.get("compiled") else ""),
                    commit=j.get("kiln_commit", "?"), asked=j.get("runs_asked", j["runs"]), rehearsal=j.get("rehearsal"))
    if "peer" in j:  # bench/airbench_peer.py (its first version wrote no "recipe": airbench94)
        return dict(kind="peer", name=j.get("recipe", "airbench94"), file=name, j=j, device=j["device"],
                    torch=f"PyTorch {j['torch_version']}" + (" + compile" if j.get("compiled") else " eager"),
                    commit=j.get("kiln_commit", "?"), asked=j.get("runs_asked", j["runs"]))
    return None


def variant(r):
    """What a kiln row ran with beyond its preset: the CUDA graph (a "-graph" file) and the fused GPU
    operator (its JSON's "fused_cuda", since 2026-12-05)."""
    if r["kind"] != "kiln":
        return ""
    parts = (["`train.cuda_graph`"] if r["file"].endswith("-graph.json") else []) + \
            (["`train.fused_cuda`"] if r["j"].get("fused_cuda", "off") != "off" else [])
    return " with " + " and ".join(parts) if parts else ""


def fused_check_lines(folder):
    """`kiln fused-check --time`'s verdict and timings (fused-check.json), where the campaign ran it."""
    p = os.path.join(folder, "fused-check.json")
    if not os.path.exists(p):
        return []
    j = json.load(open(p))
    cases = j["cases"]
    bad = [c["case"] for c in cases if not c["ok"]]
    out = ["", f"The fused GPU operator (`train.fused_cuda`, `kiln fused-check`, {j['backend']}, batch {j['batch']}): "
           + (f"{len(cases)} of {len(cases)} cases within their bounds" if not bad else
              f"FAILED {len(bad)} of {len(cases)}: " + "; ".join(bad))]
    timed = [c for c in cases if c.get("fused_ms", -1) >= 0]
    if timed:
        copy = j.get("copy_gbps", -1)
        # the fused kernels' bytes by their count (kiln fused-check's JSON since 2026-12-05), against a
        # measured device-to-device copy
        counted = all(c.get("fused_bytes", 0) > 0 for c in timed)
        head = "| case | fused ms | LibTorch's ms | ratio |"
        if counted:
            head += " fused GB/s (bytes by the count) |" + (f" of the copy's {copy:.0f} GB/s |" if copy > 0 else "")
        out += [f"({j['timing']})", "", head, "|" + "---|" * head.count(" |")]
        for c in timed:
            if c["plain_ms"] <= 0:
                continue
            line = f"| {c['case']} | {c['fused_ms']:.3f} | {c['plain_ms']:.3f} | {c['fused_ms'] / c['plain_ms']:.2f} |"
            if counted:
                gbps = c["fused_bytes"] / (c["fused_ms"] * 1e-3) / 1e9
                line += f" {gbps:.0f} |" + (f" {100 * gbps / copy:.0f}% |" if copy > 0 else "")
            out.append(line)
    return out


def load(folder):
    rows = []
    for p in sorted(glob.glob(os.path.join(folder, "*.json"))):
        if os.path.basename(p).startswith("profile-"):  # the profiled run: not a measurement
            continue
        try:
            j = json.load(open(p))
        except (OSError, ValueError) as e:
            print(f"skipping {p}: {e}", file=sys.stderr)
            continue
        try:
            row = classify(p, j)
        except (KeyError, TypeError, AttributeError) as e:
            row = None
            print(f"skipping {p}: not a whole kiln bench, airbench_real or airbench_peer JSON ({type(e).__name__}: {e})",
                  file=sys.stderr)
        if row is not None:
            rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--date", default=date.today().isoformat())
    args = ap.parse_args()
    rows = load(args.folder)
    if not rows:
        raise SystemExit(f"no kiln bench or peer JSON in {args.folder}")
    out = [f"Measured {args.date}; clock: whitening fit + training + final TTA evaluation (data loading, model "
           "construction, per-epoch evaluation and the warm-up runs excluded); raw JSON beside this table.", "",
           "| what | test accuracy | time per run | TFLOP/s | device | software | commit |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        j = r["j"]
        n_note = "" if j.get("complete", True) else f" — cut: {j['runs']} of {r['asked']} runs"
        tf = j.get("tflops", {}).get("mean")
        frac = j.get("fraction_of_peak")
        tf_text = "—" if tf is None else f"{tf:.3g}" + (f" ({100 * frac:.0f}% of {j['matmul_peak_tflops']:.3g})" if frac else "")
        if tf is not None and j.get("fraction_of_conv_peak"):  # kiln's JSON since 2026-12-01
            tf_text += f"; {100 * j['fraction_of_conv_peak']:.0f}% of the conv peak {j['conv_peak_tflops']:.3g}"
        if j.get("peak_yardstick") == "convolution":  # since 2026-12-03: products far below convolutions here
            tf_text += " — the conv peak is the yardstick (matrix products slow in this precision here)"
        what = {"kiln": f"kiln `{r['name']}`", "peer": f"peer {r['name']} (`bench/airbench_peer.py`, kiln's transcription)",
                "real": f"real {r['name']}.py" + (" (REHEARSAL: stand-in values, not measured)" if r.get("rehearsal") else "")}[r["kind"]]
        if r["kind"] == "kiln":
            what += variant(r)
        out.append(f"| {what}{n_note} | {pct(j['test_acc'])} | {secs(j['seconds'])} | {tf_text} | {r['device']} | "
                   f"{r['torch']} | {r['commit']} |")
    warned = [(r, w) for r in rows if r["kind"] == "kiln" for w in r["j"].get("warnings", [])]
    if warned:  # kiln bench's JSON since 2026-12-06: a run too short for Lookahead or its EMA
        out += [""] + [f"Warning (kiln `{r['name']}`{variant(r)}): {w}" for r, w in warned]
    lines = []
    reals = [r for r in rows if r["kind"] == "real" and r["j"]["runs"] > 0]
    for target in sorted({t for t in TARGET.values()}):
        kilns = [r for r in rows if r["kind"] == "kiln" and TARGET.get(r["name"]) == target]
        cands = [p for p in reals if PEER_TARGET.get(p["name"]) == target]
        unfinished = [r for r in rows if r["kind"] == "real" and r["j"]["runs"] == 0 and PEER_TARGET.get(r["name"]) == target]
        if kilns and not cands and unfinished:
            lines.append(f"- {100 * target:.0f}%: no real peer finished a run here (" +
                         ", ".join(f"{p['name']}: 0 of {p['asked']} runs" for p in unfinished) + "): no yardstick")
            continue
        if not kilns or not cands:
            continue
        reaching = [p for p in cands if p["j"]["test_acc"]["mean"] >= target]
        if not reaching:
            lines.append(f"- {100 * target:.0f}%: no real peer reached it here (" +
                         ", ".join(f"{p['name']} {100 * p['j']['test_acc']['mean']:.2f}%" for p in cands) + "): no yardstick")
            continue
        y = min(reaching, key=lambda p: p["j"]["seconds"]["mean"])
        note = " (REHEARSAL: not a measurement)" if y.get("rehearsal") else ""
        lines.append(f"- {100 * target:.0f}%: yardstick real {y['name']}.py, {100 * y['j']['test_acc']['mean']:.2f}% in "
                     f"{y['j']['seconds']['mean']:.3f} s (n={y['j']['seconds']['n']}){note}")
        for r in kilns:
            x, lo, hi = ratio(r["j"]["seconds"], y["j"]["seconds"])
            acc = r["j"]["test_acc"]["mean"]
            graph = variant(r)
            met = acc >= target and x <= 0.75
            lines.append(f"  - kiln `{r['name']}`{graph}: time ratio {x:.2f} (95% CI {lo:.2f}–{hi:.2f}), accuracy "
                         f"{100 * acc:.2f}%: goal (≥ {100 * target:.0f}% and ≤ 0.75×) " + ("met" if met else "not met"))
    same = []  # beside the rule: each kiln preset against the real script of its own recipe, whatever it reached
    for r in rows:
        own = [p for p in reals if p["name"] == RECIPE.get(r["name"]) and p["j"]["seconds"]["n"] > 0]
        if r["kind"] == "kiln" and own:
            p = own[0]
            x, lo, hi = ratio(r["j"]["seconds"], p["j"]["seconds"])
            graph = variant(r)
            same.append(f"- kiln `{r['name']}`{graph} / real {p['name']}.py: time ratio {x:.2f} (95% CI {lo:.2f}–{hi:.2f}); "
                        f"accuracy {100 * r['j']['test_acc']['mean']:.2f}% / {100 * p['j']['test_acc']['mean']:.2f}%")
    if lines:
        out += ["", "kiln against the real airbench scripts on the same device (the goal's one rule: the fastest real "
                "peer reaching each target is the yardstick; met when kiln's mean accuracy reaches the target and its "
                "mean time is at most 0.75x the yardstick's):", ""] + lines
    if same:
        out += ["", "Beside the rule, each kiln preset against the real script of its own recipe (not the goal):", ""] + same
    out += fused_check_lines(args.folder)
    print("\n".join(out))


if __name__ == "__main__":
    main()
