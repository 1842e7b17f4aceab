"""The behaviour lock's CI half (issue #22): the numbers of scripts/reference-outputs.sh's runs
against the values committed in tests/reference/values.json, to a tolerance.

  reference_check.py extract OUTPUT_DIR VALUES_JSON OTHER_ISA_DIR
                                                      # write the committed values and spreads
  reference_check.py check   OUTPUT_DIR VALUES_JSON   # exit 1 when a number is out of bounds
  reference_check.py add     OUTPUT_DIR VALUES_JSON   # commit the numbers a new output adds (the
                                                      # committed ones and the spreads stay as they are)
  reference_check.py diff    DIR_A DIR_B              # the largest differences between two output sets

On the machine that recorded them the runs reproduce bit for bit (scripts/reference-outputs.sh
compare); another CPU model picks other kernels, so the check allows the spread that changing
the kernels produced, measured when the values were recorded: the same runs with ATen, oneDNN and
MKL limited to AVX2 (the instruction set of an AMD EPYC of this project's other machine kind)
against the native kernels of an Intel Xeon with AMX (OTHER_ISA_DIR). Each run's bound for each
kind of number is TOLERANCE_FACTOR times that run's measured spread, never below FLOOR: Muon's
Newton-Schulz steps spread most (a relative 0.6% in a step's loss, 4 of 200 test images), the
SGD recipes least (1e-7). The LeCun 1989 table comes from kiln's own Net1989, compiled with
-march=native (KILN_NATIVE_LECUN): its table was identical, digit for digit, between that build
(AVX-512) and a generic x86-64 build (SSE2) on the same Xeon (2026-11-30), so its floor stands.
"""
import json, math, os, re, sys

TOLERANCE_FACTOR = 10
# Losses and LRs relative (to max(1, |value|)); accuracies as fractions (200 test images: steps
# of 0.005); table cells in their own units (the ablation's % on 100 images: steps of 1).
FLOOR = {"loss": 1e-4, "acc": 0.0051, "lr": 1e-9, "table": 1.01}


def kind(field):
    if field in ("lr",):
        return "lr"
    if "acc" in field or field in ("coverage", "accuracy"):
        return "acc"
    return "loss"


def numbers(path, rel):
    """(key, kind, value) of every number a reference output holds."""
    out = []
    name = os.path.basename(path)
    if name == "metrics.jsonl":
        for i, line in enumerate(open(path)):
            for f, v in json.loads(line).items():
                if isinstance(v, (int, float)) and f != "epoch":
                    out.append((f"{rel}:{i + 1}:{f}", kind(f), float(v)))
    elif name == "final.json":
        def walk(prefix, o):
            if isinstance(o, dict):
                for k, v in o.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            elif isinstance(o, (int, float)) and not isinstance(o, bool):
                f = prefix.split(".")[-1]
                out.append((f"{rel}:{prefix}", kind(f), float(o)))
        walk("", json.load(open(path)))
    elif name == "steps.csv":
        for i, line in enumerate(open(path)):
            if i == 0:
                continue
            step, epoch, lr, loss = line.strip().split(",")
            out.append((f"{rel}:{step}:lr", "lr", float(lr)))
            out.append((f"{rel}:{step}:loss", "loss", float(loss)))
    elif name.endswith(".md"):
        for i, line in enumerate(open(path)):
            if not line.startswith("|"):
                continue
            for j, m in enumerate(re.findall(r"[-+]?\d+(?:\.\d+)?", line)):
                out.append((f"{rel}:{i + 1}:{j}", "table", float(m)))
    return out


def collect(d):
    vals = {}
    for root, _, files in os.walk(d):
        for f in sorted(files):
            p = os.path.join(root, f)
            for key, k, v in numbers(p, os.path.relpath(p, d)):
                vals[key] = [k, v]
    return vals


def scaled(k, v):
    return max(1.0, abs(v)) if k in ("loss", "lr") else 1.0


def spreads(a, b):
    """The largest scaled |difference| per (run, kind) between two output sets."""
    out = {}
    for key, (k, v) in a.items():
        if key in b:
            group = f"{key.split('/')[0]}|{k}"
            out[group] = max(out.get(group, 0.0), abs(v - b[key][1]) / scaled(k, v))
    return out


def bound(key, k, ref, spread):
    measured = spread.get(f"{key.split('/')[0]}|{k}", 0.0)
    return max(TOLERANCE_FACTOR * measured, FLOOR[k]) * scaled(k, ref)


def main():
    mode, a, b = sys.argv[1:4]
    if mode == "extract":
        vals, other = collect(a), collect(sys.argv[4])
        doc = {"recorded": "scripts/reference-outputs.sh record (native kernels) and the same with ATEN_CPU_CAPABILITY=avx2 "
                           "ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2; tests/reference_check.py extract",
               "spread": spreads(vals, other), "values": vals}
        json.dump(doc, open(b, "w"), indent=0, sort_keys=True)
        print(f"{len(vals)} numbers from {a} into {b}; spreads: " +
              ", ".join(f"{g} {v:.3g}" for g, v in sorted(doc["spread"].items()) if v > 0))
    elif mode == "add":
        # A change that adds outputs (a new metrics field) and must not move the old ones: check
        # first (every committed number within its bound), then add only the keys not committed.
        doc = json.load(open(b))
        now = collect(a)
        new = {key: kv for key, kv in now.items() if key not in doc["values"]}
        doc["values"].update(new)
        json.dump(doc, open(b, "w"), indent=0, sort_keys=True)
        print(f"added {len(new)} numbers to {b}: {sorted(new)[:6]}{' ...' if len(new) > 6 else ''}")
    elif mode == "diff":
        va, vb = collect(a), collect(b)
        worst = {}
        for key, (k, v) in va.items():
            if key in vb:
                d = abs(v - vb[key][1]) / scaled(k, v)
                if d > worst.get(k, (0, ""))[0]:
                    worst[k] = (d, key)
        missing = sorted(set(va) ^ set(vb))
        for k, (d, key) in sorted(worst.items()):
            print(f"{k}: largest difference {d:.3g} at {key}")
        if missing:
            print(f"{len(missing)} numbers in one set only, e.g. {missing[:3]}")
    elif mode == "check":
        doc = json.load(open(b))
        ref, spread = doc["values"], doc["spread"]
        now = collect(a)
        bad, worst = [], {}
        for key, (k, v) in ref.items():
            if key not in now:
                bad.append(f"{key}: missing (expected {v})")
                continue
            d, lim = abs(now[key][1] - v), bound(key, k, v, spread)
            worst[k] = max(worst.get(k, 0.0), d / lim)
            if not d <= lim:
                bad.append(f"{key}: {now[key][1]!r}, committed {v!r} (|difference| {d:.3g} > bound {lim:.3g})")
        extra = sorted(set(now) - set(ref))
        if extra:
            bad.append(f"{len(extra)} numbers not in the committed values, e.g. {extra[:3]} (re-extract them)")
        print(f"{len(ref)} committed numbers; largest |difference| / bound per kind: " +
              ", ".join(f"{k} {w:.3g}" for k, w in sorted(worst.items())))
        if bad:
            print("FAIL: " + str(len(bad)) + " out of bounds:\n  " + "\n  ".join(bad[:30]))
            sys.exit(1)
        print("PASS: every number within its bound")
    else:
        sys.exit("mode: extract | check | diff")


if __name__ == "__main__":
    main()
