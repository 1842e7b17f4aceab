#!/usr/bin/env bash
# bench/cpu_vs_peer.sh at its tiny scale, 2 invocations a side of RUNS = 2: it interleaves the two
# programs, each
# run is what it says (kiln's preset and seed, the peer's recipe and first seed, the same
# precision and layout), and the summary is the runs' own (mean, interval, ratio). No figure comes
# of it. (exit 77 = skipped)
#   tests/cpu_vs_peer_check.sh KILN PYTHON
set -u
kiln=$1; python=$2; here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
"$python" -c 'import torch' 2>/dev/null || { echo "SKIPPED: no torch in $python"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
cd "$here"
RUNS=2 OUT=$d/r.json KILN=$kiln PYTHON=$python bash bench/cpu_vs_peer.sh "$KILN_DATA" 2 airbench94_muon tiny > "$d/log" 2>&1 \
  || { cat "$d/log"; echo "FAIL: exit"; exit 1; }
cat "$d/log"
python3 - "$d/r.json" <<'PY' || { echo "FAIL: the summary"; exit 1; }
import json, math, statistics, sys
j = json.load(open(sys.argv[1]))
k, p, s = j["kiln_runs"], j["peer_runs"], j["summary"]
assert len(k) == len(p) == 2, (len(k), len(p))
# interleaved: kiln 0, peer 0, kiln 1, peer 1 (the order /usr/bin/time appended its lines)
assert [l.split(":")[0] for l in j["time_lines"]] == ["kiln 0", "peer 0", "kiln 1", "peer 1"], j["time_lines"]
for i in range(2):  # invocation i runs seeds 2i and 2i + 1 on both sides
    assert k[i]["preset"] == "cifar10-94-muon" and k[i]["config"]["train.seed"] == 2 * i, (i, k[i]["config"]["train.seed"])
    assert k[i]["config"]["model.widths"] == [16, 32, 32] and k[i]["runs"] == 2 and k[i]["warmup_runs"] == 0
    assert p[i]["recipe"] == "airbench94_muon" and p[i]["settings"]["first_seed"] == 2 * i and p[i]["runs"] == 2
    assert p[i]["settings"]["widths"] == [16, 32, 32] and p[i]["settings"]["train_subset"] == 2000
    # the same precision and layout on both sides: bf16 exactly where kiln's auto picked it
    bf16 = k[i]["precision"] == "BFloat16"
    assert p[i]["precision"] == ("bf16 autocast, fp32 weights" if bf16 else "fp32") + ", channels_last", (k[i]["precision"], p[i]["precision"])
    assert k[i]["layout"] == "channels_last"
ks = [t for r in k for t in r["per_run"]["seconds"]]; ps = [t for r in p for t in r["per_run"]["seconds"]]
assert len(ks) == len(ps) == 4 and len(set(ks)) == 4, (ks, ps)
assert s["kiln_seconds"] == ks and s["peer_seconds"] == ps
for side, v in (("kiln_time", ks), ("peer_time", ps)):
    t = s[side]
    assert t["n"] == 4 and math.isclose(t["mean"], statistics.fmean(v)) and math.isclose(t["std"], statistics.stdev(v))
    # Student's t at 3 degrees of freedom: 3.182
    assert math.isclose(t["ci95_high"] - t["mean"], 3.182 * t["std"] / math.sqrt(4), rel_tol=1e-3), t
r = s["ratio_kiln_over_peer"]
assert math.isclose(r["ratio"], statistics.fmean(ks) / statistics.fmean(ps)) and r["ci95_low"] < r["ratio"] < r["ci95_high"], r
assert 0 <= s["welch_p_time"] <= 1 and s["kiln_acc"] == [a for x in k for a in x["per_run"]["test_acc"]]
assert "GLIBC_TUNABLES=glibc.malloc.mmap_max=0" in j["commands"]["peer"] and "--first-seed I*RUNS" in j["commands"]["peer"]
assert "--set train.seed=I*RUNS" in j["commands"]["kiln"] and "--runs 2" in j["commands"]["kiln"] and j["machine"] and j["kiln_commit"] and j["kiln_binary_commit"]
print("cpu_vs_peer.sh ok: ratio", round(r["ratio"], 3))
PY
