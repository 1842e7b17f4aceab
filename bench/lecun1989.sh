#!/usr/bin/env bash
# kiln lecun1989 against PyTorch eager on the same machine: N runs each (default 5), median,
# reported per pass (training + the evaluation of both splits). kiln always runs its 23 passes;
# PyTorch runs PASSES (default 23; a PyTorch run of 23 passes takes minutes here, so fewer
# passes give the same per-pass figure sooner).
# Usage: bench/lecun1989.sh DATA_ROOT [N] [PASSES]   (from the repository root, after a build)
set -euo pipefail
data=$1; n=${2:-5}; passes=${3:-23}
py=${KILN_VENV:-.venv}/bin/python
out=bench/results/lecun1989-$(date -u +%Y-%m-%d).json
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "[" > "$tmp/all"
for i in $(seq 1 "$n"); do
  # kiln prints the wall time since the start of training after every pass (evaluations included).
  build/kiln lecun1989 --data "$data" --out "$tmp/k$i" >/dev/null 2>"$tmp/k$i.err"
  s=$(grep -E '^pass +23 ' "$tmp/k$i.err" | awk '{print $NF}' | tr -d s)
  echo "{\"impl\": \"kiln\", \"run\": $i, \"passes\": 23, \"seconds\": $s}," >> "$tmp/all"
  echo "kiln run $i: $s s"
done
for i in $(seq 1 "$n"); do
  j=$(OMP_NUM_THREADS=1 "$py" bench/lecun1989_pytorch.py "$data" --passes "$passes" --threads 1)
  echo "$j," >> "$tmp/all"
  echo "pytorch run $i: $j"
done
sed -i '$ s/,$//' "$tmp/all"; echo "]" >> "$tmp/all"
python3 - "$tmp/all" "$out" <<'PY'
import json, statistics, sys, platform
rows = json.load(open(sys.argv[1]))
res = {"machine": platform.processor() or platform.machine(), "runs": rows}
for impl in ("kiln", "pytorch-eager"):
    s = [r["seconds"] / r["passes"] for r in rows if r["impl"] == impl]
    res[impl] = {"n": len(s), "median_s_per_pass": statistics.median(s), "min_s_per_pass": min(s),
                 "max_s_per_pass": max(s), "median_s_23_passes": 23 * statistics.median(s)}
json.dump(res, open(sys.argv[2], "w"), indent=1)
print(json.dumps({k: res[k] for k in ("kiln", "pytorch-eager")}))
PY
echo "wrote $out"
