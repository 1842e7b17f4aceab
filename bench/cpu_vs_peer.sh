#!/usr/bin/env bash
# kiln against its PyTorch peer (bench/airbench_peer.py) on this machine's CPU, interleaved (kiln
# seed 0, peer seed 0, kiln seed 1, ...) so that a drift in the machine's speed falls on both sides
# alike; both in what kiln's `auto` picks here (bf16 compute with fp32 master weights when the CPU
# has native bf16, else fp32), channels_last, 2 threads, freed host memory retained (kiln's default
# --host-memory retain; the peer through GLIBC_TUNABLES, the same two settings).
# Clock (both): whitening fit + training + final TTA evaluation; /usr/bin/time's lines are for the
# whole invocation. One raw JSON: every run's own JSON, the time lines, the CPU, and the summary by
# bench/kiln_stats.py (mean, std, 95% interval; kiln / peer time with its interval; Welch's p).
#
# Usage: bench/cpu_vs_peer.sh DATA_ROOT [N] [RECIPE] [SCALE]   (from the repository root, after a build)
#   N       runs each (default 4; seeds 0..N-1)
#   RECIPE  airbench94 (kiln's cifar10-94), airbench94_muon (cifar10-94-muon; the default), airbench95
#           (cifar10-95) or airbench96 (cifar10-96)
#   SCALE   smoke (6,000 training images, 1,000 test images, 2 epochs; the default), full, or tiny
#           (widths 16/32/32, 2,000 images, 1 epoch of batch 250: the rehearsal test's, no figure)
# Writes bench/results/<preset>-cpu-<scale>-vs-peer-<cpu>-<date>.json (OUT overrides); KILN (default
# build/kiln) and PYTHON (default $KILN_VENV/bin/python) name the two programs. RUNS (default 1) timed
# runs per invocation after WARMUP (default 0) untimed ones: with WARMUP=1 the first touch of the
# run's memory falls outside the clock (as airbench times itself); invocation I seeds its runs
# I*RUNS, I*RUNS+1, ...; the summary is over all N*RUNS runs a side.
set -euo pipefail
data=$1; n=${2:-4}; recipe=${3:-airbench94_muon}; scale=${4:-smoke}; runs=${RUNS:-1}; warmup=${WARMUP:-0}
py=${PYTHON:-${KILN_VENV:-.venv}/bin/python}; kiln_bin=${KILN:-build/kiln}
case $recipe in
  airbench94) preset=cifar10-94 ;;
  airbench94_muon) preset=cifar10-94-muon ;;
  airbench95) preset=cifar10-95 ;;
  airbench96) preset=cifar10-96 ;;
  *) echo "cpu_vs_peer.sh: RECIPE must be airbench94, airbench94_muon, airbench95 or airbench96, not '$recipe'" >&2; exit 2 ;;
esac
case $scale in
  smoke) kscale=(--set data.train_subset=6000 --set data.test_subset=1000 --set schedule.epochs=2)
         pscale=(--train-subset 6000 --test-subset 1000 --epochs 2) ;;
  full) kscale=(); pscale=() ;;
  tiny) kscale=(--set 'model.widths=[16, 32, 32]' --set data.train_subset=2000 --set data.test_subset=300
                --set schedule.epochs=1 --set data.batch_size=250)
        pscale=(--widths 16,32,32 --train-subset 2000 --test-subset 300 --epochs 1 --batch 250) ;;
  *) echo "cpu_vs_peer.sh: SCALE must be smoke, full or tiny, not '$scale'" >&2; exit 2 ;;
esac
vendor=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
case $vendor in *EPYC*) cpu=epyc ;; *Xeon*) cpu=xeon ;; *) cpu=$(uname -m) ;; esac
flags=$(grep -m1 '^flags' /proc/cpuinfo)
out=${OUT:-bench/results/$preset-cpu-$scale-vs-peer-$cpu-$(date -u +%Y-%m-%d).json}
start=$(date -u +"%Y-%m-%d %H:%M")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
tunables=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647
kiln=("$kiln_bin" bench --preset "$preset" --runs "$runs" --warmup "$warmup" --device cpu --data "$data" "${kscale[@]}"
      --set data.test_batch_size=500 --threads 2)
peer=("$py" bench/airbench_peer.py --data "$data" --recipe "$recipe" --runs "$runs" --warmup "$warmup" --device cpu
      --threads 2 --channels-last "${pscale[@]}")
timefmt='%e s wall %U user %S sys %R minflt %M KB'
[ -x /usr/bin/time ] || { echo "cpu_vs_peer.sh: needs GNU time for each run's peak memory and page faults: apt-get install time (scripts/install-deps.sh installs it)"; exit 1; }
for i in $(seq 0 $((n - 1))); do
  /usr/bin/time -f "kiln $i: $timefmt" -a -o "$tmp/time" "${kiln[@]}" --set train.seed=$((i * runs)) --out "$tmp/kiln-$i.json" \
    > "$tmp/kiln-$i.log" 2>&1 || { echo "kiln run $i failed:"; tail -5 "$tmp/kiln-$i.log"; exit 1; }
  # The peer in the precision kiln's `auto` picked here, as kiln's first JSON says (bf16 compute
  # with fp32 weights, or fp32): the rule stays kiln's, not copied here.
  [ "$i" -gt 0 ] || prec=$(python3 -c 'import json, sys; print("bf16" if json.load(open(sys.argv[1]))["precision"] == "BFloat16" else "fp32")' "$tmp/kiln-0.json")
  GLIBC_TUNABLES=$tunables /usr/bin/time -f "peer $i: $timefmt" -a -o "$tmp/time" "${peer[@]}" --precision "$prec" --first-seed $((i * runs)) \
    --out "$tmp/peer-$i.json" > "$tmp/peer-$i.log" 2>&1 || { echo "peer run $i failed:"; tail -5 "$tmp/peer-$i.log"; exit 1; }
  tail -2 "$tmp/time"
done
python3 - "$tmp" "$n" "$out" "$preset" "$recipe" "$scale" "$vendor" "$flags" "${kiln[*]}" "GLIBC_TUNABLES=$tunables ${peer[*]} --precision $prec" "$start" <<'PY'
import datetime, json, subprocess, sys
sys.path.insert(0, "bench")
import kiln_stats as ks
tmp, n, out, preset, recipe, scale, vendor, flags, kcmd, pcmd, start = sys.argv[1:]
n = int(n)
kr = [json.load(open(f"{tmp}/kiln-{i}.json")) for i in range(n)]
pr = [json.load(open(f"{tmp}/peer-{i}.json")) for i in range(n)]
ks_s = [t for r in kr for t in r["per_run"]["seconds"]]
ps_s = [t for r in pr for t in r["per_run"]["seconds"]]
ka = [a for r in kr for a in r["per_run"]["test_acc"]]
pa = [a for r in pr for a in r["per_run"]["test_acc"]]
k, p = ks.summary(ks_s), ks.summary(ps_s)
r, lo, hi = ks.ratio(k, p)
commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], capture_output=True, text=True).stdout.strip()
cpu_flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f" {f} " in flags + " "]
res = dict(
    what=f"{preset} at {scale} scale on the CPU, kiln against the PyTorch peer ({recipe}), interleaved invocations (kiln, peer, kiln, ...), "
         f"each {kr[0]['runs']} timed run(s) after {kr[0]['warmup_runs']} warm-up run(s); {n} invocations a side",
    machine=f"{vendor}; flags {' '.join(cpu_flags)}; {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores",
    date=start + datetime.datetime.now(datetime.timezone.utc).strftime("–%H:%M UTC"), kiln_commit=commit,
    kiln_binary_commit=kr[0]["provenance"].get("kiln_commit"),
    clock_includes="whitening fit + training + final TTA evaluation (both; data loading and model construction excluded); the time lines are for the whole invocation",
    commands=dict(kiln=kcmd + " --set train.seed=I*RUNS --out kiln-I.json", peer=pcmd + " --first-seed I*RUNS --out peer-I.json"),
    time_lines=open(f"{tmp}/time").read().splitlines(),
    kiln_runs=kr, peer_runs=pr,
    summary=dict(kiln_seconds=ks_s, peer_seconds=ps_s, kiln_acc=ka, peer_acc=pa,
                 kiln_time=k, peer_time=p, kiln_test_acc=ks.summary(ka), peer_test_acc=ks.summary(pa),
                 ratio_kiln_over_peer=dict(ratio=r, ci95_low=lo, ci95_high=hi),
                 welch_p_time=ks.welch_p(ks_s, ps_s) if n > 1 else None,
                 welch_p_acc=ks.welch_p(ka, pa) if n > 1 else None))
json.dump(res, open(out, "w"), indent=1)
f = lambda s: f"{s['mean']:.2f} ± {s['std']:.2f} s (95% CI {s['ci95_low']:.2f}–{s['ci95_high']:.2f})"
print(f"kiln {f(k)}, {100 * res['summary']['kiln_test_acc']['mean']:.2f}%")
print(f"peer {f(p)}, {100 * res['summary']['peer_test_acc']['mean']:.2f}%")
print(f"kiln / peer {r:.3f} (95% CI {lo:.3f}–{hi:.3f}), Welch p {res['summary']['welch_p_time']}")
PY
echo "wrote $out"
