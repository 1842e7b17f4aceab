#!/usr/bin/env bash
# What quantisation-aware fine-tuning buys over post-training int8 (docs/small-models.md).
# Each trained run is fine-tuned twice from its checkpoint with the same settings, once with
# train.qat = true and once without (the control: the same extra epochs at the same LR, so that
# what the fine-tune does by itself is not credited to QAT), and every checkpoint, the trained one
# included, goes through `kiln quantize` (fp32 and int8 test accuracy on the whole test set).
#   [GRANULARITY=channel|tensor] [BITS=2..8] bench/qat_gain.sh BUILD_DIR DATA_ROOT OUT.json RUN_DIR... [-- KEY=VALUE...]
# GRANULARITY (default channel) and BITS (default 8): kiln quantize's --granularity and --bits and
# the QAT fine-tune's train.qat_granularity and train.qat_bits; the plain fine-tune depends on
# neither and is shared between all grids.
# RUN_DIR: a finished run (holds checkpoint.pt and config.toml). The fine-tune's settings
# (FT_EPOCHS epochs at a constant FT_LR, default 1 and 1e-4: the preset's last LR) are kiln's
# choice for this experiment, not a published recipe; KEY=VALUE pairs after `--` apply to both.
# QAT_WORK: a directory to keep the fine-tunes in (finished ones are reused).
set -euo pipefail
build=$1; data=$2; out=$3; shift 3
runs=(); extra=()
while (($#)); do
  if [[ $1 == -- ]]; then shift; extra=("$@"); break; fi
  runs+=("$1"); shift
done
epochs=${FT_EPOCHS:-1}; lr=${FT_LR:-0.0001}; g=${GRANULARITY:-channel}; bits=${BITS:-8}
# the grid's name in the work files ("channel", "tensor-int4"); kiln quantize writes its report where --out says
grid=$g; [[ $bits == 8 ]] || grid+=-int$bits
work=${QAT_WORK:-$(mktemp -d)}
mkdir -p "$work"
rows=()
for run in "${runs[@]}"; do
  name=$(echo "$run" | tr '/' '_')
  "$build/kiln" quantize -c "$run/checkpoint.pt" --data "$data" --granularity "$g" --bits "$bits" \
    --out "$work/$name-trained-$grid.json" > "$work/$name-trained-$grid.log"
  for ft in "$work/$name-ft-qat-false" "$work/$name-ft-qat-true-$grid"; do
    qat=false; [[ $ft == *-true-* ]] && qat=true
    [[ -f $ft/final.json ]] || { rm -rf "$ft"; "$build/kiln" train --preset "$run/config.toml" --data "$data" --out "$ft" \
      --init "$run/checkpoint.pt" --set schedule.epochs="$epochs" --set optim.lr="$lr" \
      --set 'schedule.knots=[[0,1.0],[1.0,1.0]]' --set train.qat="$qat" --set train.qat_granularity="$g" --set train.qat_bits="$bits" \
      "${extra[@]/#/--set=}" > "$ft.log" 2>&1; }
    "$build/kiln" quantize -c "$ft/checkpoint.pt" --data "$data" --granularity "$g" --bits "$bits" \
      --out "$work/$(basename "$ft")-quantized-$grid.json" > "$ft-quantize-$grid.log"
  done
  rows+=("$run")
done
KILN_COMMIT=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown) \
KILN_BENCH=$(cd "$(dirname "$0")" && pwd) python3 - "$out" "$work" "$epochs" "$lr" "$g" "$bits" "$grid" "${rows[@]}" <<'PY'
import datetime, json, os, platform, re, sys
out, work, epochs, lr, g, bits, grid, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7], sys.argv[8:]
sys.path.insert(0, os.environ["KILN_BENCH"])
from kiln_stats import summary
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
rows = []
for run in runs:
    name = run.replace("/", "_")
    q = {"trained": json.load(open(f"{work}/{name}-trained-{grid}.json")),
         "ft-qat-false": json.load(open(f"{work}/{name}-ft-qat-false-quantized-{grid}.json")),
         "ft-qat-true": json.load(open(f"{work}/{name}-ft-qat-true-{grid}-quantized-{grid}.json"))}
    assert all(x.get("granularity", "channel") == g and x.get("bits", 8) == bits for x in q.values()), q
    line = open(f"{work}/{name}-ft-qat-true-{grid}.log").readline()
    rows.append(dict(run=run, precision=re.search(r"precision ([^;,]*)", line).group(1),
                     **{f"{k.replace('-', '_')}_{w}": q[k][f"{w}_test_acc"] for k in q for w in ("fp32", "int8")},
                     **{f"{k.replace('-', '_')}_changed": q[k]["predictions_changed"] for k in q}))
def col(key): return [r[key] for r in rows]
def diff(a, b): return [x - y for x, y in zip(col(a), col(b))]
res = dict(
    cpu=cpu, kiln_commit=os.environ["KILN_COMMIT"], date=datetime.date.today().isoformat(), fine_tune=dict(epochs=epochs, lr=lr, schedule="constant", from_="each run's checkpoint.pt (--init)"),
    granularity=g, bits=bits, test_images=json.load(open(f"{work}/{runs[0].replace('/', '_')}-trained-{grid}.json"))["test_images"],
    rows=rows,
    summary={
        "trained_fp32": summary(col("trained_fp32")), "trained_int8": summary(col("trained_int8")),
        "ft_plain_fp32": summary(col("ft_qat_false_fp32")), "ft_plain_int8": summary(col("ft_qat_false_int8")), "ft_qat_int8": summary(col("ft_qat_true_int8")),
        "ft_qat_fp32": summary(col("ft_qat_true_fp32")),
        "ptq_loss_trained (int8 - fp32)": summary(diff("trained_int8", "trained_fp32")),
        "ptq_loss_ft_plain (int8 - fp32)": summary(diff("ft_qat_false_int8", "ft_qat_false_fp32")),
        "qat_int8 - ft_plain_int8 (the QAT gain, paired)": summary(diff("ft_qat_true_int8", "ft_qat_false_int8")),
        "qat_int8 - trained_int8 (QAT fine-tune vs none)": summary(diff("ft_qat_true_int8", "trained_int8")),
    })
res["fine_tune"]["from"] = res["fine_tune"].pop("from_")
json.dump(res, open(out, "w"), indent=1)
open(out, "a").write("\n")
for k, s in res["summary"].items():
    unit, sign = ("points", "+") if " - " in k else ("%", "")
    print(f"{k:52s} {100*s['mean']:{sign}.3f} ± {100*s['std']:.3f} {unit} (n = {s['n']}, 95% CI {100*s['ci95_low']:{sign}.3f} .. {100*s['ci95_high']:{sign}.3f})")
PY
