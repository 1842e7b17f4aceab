"""The docs/perf.md table from a results folder of bench/gpu.sh (or any `kiln bench --out` and
bench/airbench_peer.py --out JSON files in one folder): one row per preset or peer with
accuracy and time (mean ± std, n, 95% CI), TFLOP/s, device, torch version and commit, then
kiln's time against each peer of the same recipe as a ratio with its 95% interval (#6's goal:
at most 0.75x the best peer's time, each at its target accuracy).

Usage: python3 bench/perf_table.py RESULTS_DIR [--date YYYY-MM-DD] > table.md
Only the standard library: it runs wherever the results land.
"""
import argparse, glob, json, math, os, sys
from datetime import date

# the accuracy each peer recipe of bench/airbench_peer.py and each kiln preset chases: kiln's time
# is compared with every peer of the same target (the goal is against the best of them)
PEER_TARGET = {"airbench94": 0.94, "airbench94_muon": 0.94, "airbench95": 0.95, "airbench96": 0.96}
TARGET = {"cifar10-94": 0.94, "cifar10-94-muon": 0.94, "cifar10-95": 0.95, "cifar10-96": 0.96, "cifar10-96-faster": 0.96}


def pct(s):
    return f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}% (n={s['n']}, 95% CI {100 * s['ci95_low']:.2f}–{100 * s['ci95_high']:.2f})"


def secs(s):
    return f"{s['mean']:.3f} ± {s['std']:.3f} s"


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
        if "preset" in j and "provenance" in j:  # kiln bench
            pv = j["provenance"]
            rows.append(dict(kind="kiln", name=j["preset"], file=os.path.basename(p), j=j,
                             device=j.get("device_name", j.get("device")), torch=f"LibTorch {pv.get('libtorch_version')}"
                             + (f" (CUDA {pv['libtorch_cuda']})" if pv.get("libtorch_cuda") else ""),
                             commit=pv.get("kiln_commit", "?"), asked=j.get("runs_requested", j["runs"])))
        elif "peer" in j:  # bench/airbench_peer.py (its first version wrote no "recipe": airbench94)
            rows.append(dict(kind="peer", name=j.get("recipe", "airbench94"), file=os.path.basename(p), j=j, device=j["device"],
                             torch=f"PyTorch {j['torch_version']}" + (" + compile" if j.get("compiled") else " eager"),
                             commit=j.get("kiln_commit", "?"), asked=j.get("runs_asked", j["runs"])))
    return rows


def ratio(a, b):
    """mean(a) / mean(b) with a 95% interval from the delta method on the log ratio."""
    r = a["mean"] / b["mean"]
    se = math.sqrt((a["std"] / a["mean"]) ** 2 / a["n"] + (b["std"] / b["mean"]) ** 2 / b["n"])
    return r, r * math.exp(-1.96 * se), r * math.exp(1.96 * se)


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
        what = f"kiln `{r['name']}`" if r["kind"] == "kiln" else f"peer {r['name']} (`bench/airbench_peer.py`)"
        out.append(f"| {what}{n_note} | {pct(j['test_acc'])} | {secs(j['seconds'])} | {tf_text} | {r['device']} | "
                   f"{r['torch']} | {r['commit']} |")
    lines = []
    peers = {r["name"]: r for r in rows if r["kind"] == "peer"}
    for r in rows:
        if r["kind"] != "kiln":
            continue
        target = TARGET.get(r["name"])
        acc = r["j"]["test_acc"]["mean"]
        for recipe, p in sorted(peers.items()):
            if target is None or PEER_TARGET.get(recipe) != target:
                continue
            x, lo, hi = ratio(r["j"]["seconds"], p["j"]["seconds"])
            pa = p["j"]["test_acc"]["mean"]
            reached = acc >= target and pa >= target
            lines.append(f"- kiln `{r['name']}` / peer {recipe}: time ratio {x:.2f} (95% CI {lo:.2f}–{hi:.2f}); "
                         f"accuracy {100 * acc:.2f}% against {100 * pa:.2f}% (target {100 * target:.0f}%: "
                         + ("both reached; goal ≤ 0.75: " + ("met" if hi <= 0.75 else "not met") if reached
                            else "not both reached, so this ratio is not the goal's") + ")")
    if lines:
        out += ["", "kiln against the peers on the same device:", ""] + lines
    print("\n".join(out))


if __name__ == "__main__":
    main()
