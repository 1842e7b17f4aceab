#!/usr/bin/env bash
# bench/gpu.sh end to end in its CPU dry-run mode (tiny networks and subsets: the CUDA checks,
# which on the CPU run the eager static step for the graph and check no synchronisation, then
# bench/perf_table.py on what it wrote: the GPU campaign's plumbing (budgeting, kiln bench and the
# PyTorch peers, JSON, the docs table) checked before a GPU window is spent on it.
# (exit 77 = skipped)
set -u
kiln=$1; python=$2; here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
"$python" -c 'import torch' 2>/dev/null || { echo "SKIPPED: no torch in $python"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
KILN_GPU_DRY=1 KILN_GPU_DEVICE=cpu KILN_BUILD=$(dirname "$kiln") KILN_PYTHON=$python KILN_COMMIT=test-commit \
  KILN_GPU_PRESETS="cifar10-94:2:15 peer-airbench94:2:15 cifar10-94-muon:2:15 peer-airbench94_muon:2:15 cifar10-96-faster:2:20 peer-airbench96:2:20 cifar10-96:25:100000" \
  bash "$here/bench/gpu.sh" "$d/results" 600 "$KILN_DATA" > "$d/out.txt" 2>&1 || { cat "$d/out.txt"; echo "FAIL: gpu.sh exit"; exit 1; }
for f in bench-cifar10-94 peer-airbench94 bench-cifar10-94-muon peer-airbench94_muon bench-cifar10-96-faster peer-airbench96; do
  [ -s "$d/results/$f.json" ] || { cat "$d/out.txt"; echo "FAIL: no $f.json"; exit 1; }
done
grep -q "skip cifar10-96: " "$d/results/gpu.log" || { cat "$d/results/gpu.log"; echo "FAIL: a preset over the budget was not skipped"; exit 1; }
grep -q "done; results in" "$d/results/gpu.log" || { echo "FAIL: gpu.sh did not finish"; exit 1; }
[ -s "$d/results/kernels-cifar10-94.csv" ] || { cat "$d/results/gpu.log"; echo "FAIL: no kernel profile"; exit 1; }
for c in "check eager: ok" "check static: ok" "check graph: ok" "static vs graph, epoch 2"; do
  grep -q "$c" "$d/results/gpu.log" || { cat "$d/results/gpu.log"; echo "FAIL: no '$c' in gpu.log"; exit 1; }
done
"$python" "$here/bench/perf_table.py" "$d/results" > "$d/table.md" || { echo "FAIL: perf_table.py"; exit 1; }
cat "$d/table.md"
for row in '| kiln `cifar10-94` |' '| kiln `cifar10-94-muon` |' '| kiln `cifar10-96-faster` |' \
           '| peer airbench94 (' '| peer airbench94_muon (' '/ peer airbench94_muon: time ratio' \
           '| peer airbench96 (' '`cifar10-96-faster` / peer airbench96: time ratio'; do
  grep -qF -- "$row" "$d/table.md" || { echo "FAIL: the table lacks '$row'"; exit 1; }
done
grep -q "test-commit" "$d/table.md" || { echo "FAIL: the peers' rows do not carry KILN_COMMIT"; exit 1; }
echo "PASS: gpu.sh dry run and perf_table.py"
