#!/usr/bin/env bash
# `kiln quantize` end to end: a small depthwise-separable net (fashion-mnist-tiny) trained
# briefly on Fashion-MNIST (Debian's dataset-fashion-mnist), then its accuracy with int8
# weights against fp32; then the same model exported to kiln's format and run by the
# dependency-free runtime (kiln-classify), which must agree with LibTorch's accuracies on the
# same 1,000 test images (fp32 and int8); at the end the same for a ResNet-9. Exit 77 = skipped.
set -u
kiln=$1
classify=${2:-}
data=/usr/share/datasets
[ -d "$data/fashion-mnist" ] || { echo "SKIPPED: $data/fashion-mnist missing (apt-get install dataset-fashion-mnist)"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" train --preset fashion-mnist-tiny --device cpu --data "$data" --out "$d/run" --quiet \
  --set data.train_subset=6000 --set data.test_subset=1000 --set schedule.epochs=4 > /dev/null 2>&1 \
  || { echo "FAIL: training exited $?"; exit 1; }
"$kiln" quantize --checkpoint "$d/run/checkpoint.pt" --device cpu --data "$data" | tee "$d/out.txt" \
  || { echo "FAIL: kiln quantize exited $?"; exit 1; }
grep -q '^| int8 (per-channel, symmetric; 14 tensors) |' "$d/out.txt" || { echo "FAIL: no int8 row for the 14 conv/linear weights"; exit 1; }
python3 - "$d/run/quantize.json" <<'PY' || exit 1
import json, sys
j = json.load(open(sys.argv[1]))
assert j["test_images"] == 1000, j
assert j["fp32_test_acc"] > 0.6, ("the model did not learn", j)
assert abs(j["int8_test_acc"] - j["fp32_test_acc"]) <= 0.02, ("int8 lost more than 2 points", j)
assert j["int8_bytes"] < 0.4 * j["fp32_bytes"], j  # BN parameters and statistics stay fp32
print("quantize.json: ok", j["fp32_test_acc"], "->", j["int8_test_acc"], j["fp32_bytes"], "->", j["int8_bytes"], "bytes")
PY
# The 4-bit grid (7 steps each side, held in int8): its own file and row, the same bytes.
"$kiln" quantize --checkpoint "$d/run/checkpoint.pt" --device cpu --data "$data" --bits 4 > "$d/out4.txt" \
  || { echo "FAIL: kiln quantize --bits 4 exited $?"; exit 1; }
grep -q '^| int4 (per-channel, symmetric, held as int8; 14 tensors) |' "$d/out4.txt" || { cat "$d/out4.txt"; echo "FAIL: no int4 row"; exit 1; }
python3 - "$d/run/quantize.json" "$d/run/quantize-int4.json" <<'PY' || exit 1
import json, sys
j8, j4 = (json.load(open(p)) for p in sys.argv[1:])
assert j8["bits"] == 8 and j4["bits"] == 4 and j4["granularity"] == "channel", (j8, j4)
assert j4["fp32_test_acc"] == j8["fp32_test_acc"] and j4["int8_bytes"] == j8["int8_bytes"], (j8, j4)
# the step is 127 / 7 = 18 times int8's, and the largest error half a step of the widest channel
assert j4["max_abs_weight_error"] > 5 * j8["max_abs_weight_error"], (j8, j4)
print("quantize-int4.json: ok", j4["int8_test_acc"], "max error", j4["max_abs_weight_error"], "vs", j8["max_abs_weight_error"])
PY
# bench/qat_gain.sh on that run, its fine-tunes shortened to 600 images: both fine-tunes start
# from the run's weights (one with train.qat, one without), all three checkpoints quantized;
# then per tensor and at 4 bits, which each train only a QAT fine-tune of their own (the plain
# one is reused).
for grid in channel:8 tensor:8 channel:4; do
  GRANULARITY=${grid%:*} BITS=${grid#*:} QAT_WORK="$d/qat" FT_LR=0.0002 bash "$(dirname "$0")/../bench/qat_gain.sh" "$(dirname "$kiln")" \
    "$data" "$d/qat-${grid/:/-}.json" "$d/run" -- data.train_subset=600 > "$d/qat.txt" 2>&1 \
    || { cat "$d/qat.txt"; echo "FAIL: bench/qat_gain.sh ($grid) exited $?"; exit 1; }
done
python3 - "$d" <<'PY' || exit 1
import glob, json, sys
d = sys.argv[1]
assert sorted(p.split("-ft-")[1] for p in glob.glob(f"{d}/qat/*-ft-*/final.json")) == \
    ["qat-false/final.json", "qat-true-channel-int4/final.json", "qat-true-channel/final.json", "qat-true-tensor/final.json"], glob.glob(f"{d}/qat/*")
for g, bits, grid in (("channel", 8, "channel"), ("tensor", 8, "tensor"), ("channel", 4, "channel-int4")):
    j = json.load(open(f"{d}/qat-{g}-{bits}.json"))
    assert j["fine_tune"] == {"epochs": 1, "lr": 0.0002, "schedule": "constant", "from": "each run's checkpoint.pt (--init)"}, j
    assert j["granularity"] == g and j["bits"] == bits and j["test_images"] == 1000 and len(j["rows"]) == 1, j
    r = j["rows"][0]
    for k in ("trained", "ft_qat_false", "ft_qat_true"):
        for w in ("fp32", "int8"):
            assert 0.5 < r[f"{k}_{w}"] <= 1, (k, w, r)
    # kiln quantize's report, written where qat_gain.sh's --out said, is the row's and the grid's
    own = json.load(open(glob.glob(f"{d}/qat/*-trained-{grid}.json")[0]))
    assert own["granularity"] == g and own["bits"] == bits and r["trained_int8"] == own["int8_test_acc"], (own, r)
    cfg = open(glob.glob(f"{d}/qat/*-ft-qat-true-{grid}/config.toml")[0]).read()
    assert "qat = true" in cfg and f"qat_granularity = '{g}'" in cfg and f"qat_bits = {bits}" in cfg, cfg
    assert "train_subset = 600" in cfg and "lr = 0.0002" in cfg, cfg
    s = j["summary"]["qat_int8 - ft_plain_int8 (the QAT gain, paired)"]
    assert s["n"] == 1 and abs(s["mean"] - (r["ft_qat_true_int8"] - r["ft_qat_false_int8"])) < 1e-12, s
    print(f"bench/qat_gain.sh ({g}, {bits} bits): ok", {k: r[k] for k in r if k.endswith("int8")})
cfg = open(glob.glob(f"{d}/qat/*-ft-qat-false/config.toml")[0]).read()
assert "qat = false" in cfg, cfg
import os
assert not os.path.exists(f"{d}/run/quantize-tensor.json"), "kiln quantize --out wrote beside the checkpoint too"
PY
# Without --out the report goes beside the checkpoint, under the grid's name.
"$kiln" quantize --checkpoint "$d/run/checkpoint.pt" --device cpu --data "$data" --granularity tensor > "$d/outt.txt" \
  || { echo "FAIL: kiln quantize --granularity tensor exited $?"; exit 1; }
grep -qx "wrote $d/run/quantize-tensor.json" "$d/outt.txt" && [ -f "$d/run/quantize-tensor.json" ] \
  || { cat "$d/outt.txt"; echo "FAIL: the per-tensor report is not quantize-tensor.json beside the checkpoint"; exit 1; }
[ -n "$classify" ] || exit 0
gunzip -c "$data/fashion-mnist/t10k-images-idx3-ubyte.gz" > "$d/images" && gunzip -c "$data/fashion-mnist/t10k-labels-idx1-ubyte.gz" > "$d/labels" \
  || { echo "FAIL: gunzip"; exit 1; }
# A run's fp32 and int8 exports in the runtime agree with kiln quantize's LibTorch accuracies
# (RUN/quantize.json) on the first N test images: the same weights and images, so at most one
# near-tie may go the other way. Usage: runtime_agrees RUN N WHAT
runtime_agrees() {
  local run=$1 n=$2 what=$3
  for q in "" --int8; do
    "$kiln" export --checkpoint "$run/checkpoint.pt" --format kiln $q --data "$data" || { echo "FAIL: kiln export --format kiln $q ($what)"; exit 1; }
  done
  "$classify" "$run/model.kiln" "$d/images" "$d/labels" --limit "$n" | tee "$run/rt32.txt" || { echo "FAIL: kiln-classify fp32 ($what)"; exit 1; }
  "$classify" "$run/model-int8.kiln" "$d/images" "$d/labels" --limit "$n" | tee "$run/rt8.txt" || { echo "FAIL: kiln-classify int8 ($what)"; exit 1; }
  python3 - "$run/quantize.json" "$n" "$what" "$run/rt32.txt" "$run/rt8.txt" <<'PY' || exit 1
import json, re, sys
j, n, what = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
rt = [int(re.search(rf"\((\d+) of {n}\)", open(f).read()).group(1)) for f in sys.argv[4:]]
lt = [round(j["fp32_test_acc"] * n), round(j["int8_test_acc"] * n)]
assert j["test_images"] == n and lt[0] > 3 * n // 10, (what, "did not learn (chance: a tenth)", j)
assert abs(rt[0] - lt[0]) <= 1, ("runtime fp32 disagrees with LibTorch", what, rt[0], lt[0])
assert abs(rt[1] - lt[1]) <= 1, ("runtime int8 disagrees with LibTorch's int8", what, rt[1], lt[1])
print(f"runtime, {what}: fp32 {rt[0]}/{n} (LibTorch {lt[0]}), int8 {rt[1]}/{n} (LibTorch {lt[1]})")
PY
}
runtime_agrees "$d/run" 1000 "fashion-mnist-tiny"
# --threads 3 classifies the same 1,000 images in three slices: the same count right, said so;
# --threads 0 and values that are not whole numbers in range are refused, named.
"$classify" "$d/run/model.kiln" "$d/images" "$d/labels" --limit 1000 --threads 3 > "$d/rt3.txt" || { echo "FAIL: kiln-classify --threads 3"; exit 1; }
grep -q "$(grep -o "([0-9]* of 1000)" "$d/run/rt32.txt").*(3 threads, wall clock" "$d/rt3.txt" ||
  { cat "$d/run/rt32.txt" "$d/rt3.txt"; echo "FAIL: kiln-classify --threads 3 is not the one thread's count"; exit 1; }
"$classify" "$d/run/model.kiln" "$d/images" "$d/labels" --threads 0 > "$d/bad.txt" 2>&1 && { echo "FAIL: kiln-classify took --threads 0"; exit 1; }
grep -q -- "--threads 0: give a whole number from 1 to 1024" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: no message for --threads 0"; exit 1; }
for bad in "--threads abc" "--threads 2x" "--limit 0" "--limit -3"; do
  "$classify" "$d/run/model.kiln" "$d/images" "$d/labels" $bad > "$d/bad.txt" 2>&1 && { echo "FAIL: kiln-classify took $bad"; exit 1; }
  grep -q -- "$bad: give a whole number" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: no message naming $bad"; exit 1; }
done
# kiln predict on image files: the first 20 test images written as PNGs are classified from the
# checkpoint as its run evaluates, with no dataset to read (the checkpoint holds the class names
# and the stored size: KILN_DATA points nowhere); as many right as the runtime counts on the same 20 (its fp32
# arithmetic against the run's precision: at most one near-tie apart). A colour image for this
# grey model and a missing file are refused, named.
for i in $(seq 0 19); do python3 "$(dirname "$0")/idx_image_png.py" "$d/images" "$i" "$d/p$i.png" || { echo "FAIL: writing PNG $i"; exit 1; }; done
KILN_DATA="$d/no-data-here" "$kiln" predict -c "$d/run/checkpoint.pt" --device cpu --top 2 --json "$d/pred.json" $(for i in $(seq 0 19); do echo "$d/p$i.png"; done) > "$d/pred.txt" ||
  { cat "$d/pred.txt"; echo "FAIL: kiln predict"; exit 1; }
"$classify" "$d/run/model.kiln" "$d/images" "$d/labels" --limit 20 > "$d/rt20.txt" || { echo "FAIL: kiln-classify --limit 20"; exit 1; }
python3 - "$d/pred.txt" "$d/labels" "$d/rt20.txt" "$d" <<'PY' || exit 1
import json, re, sys
pred, labels, rt, d = open(sys.argv[1]).read(), open(sys.argv[2], "rb").read()[8:28], open(sys.argv[3]).read(), sys.argv[4]
# --json: the same predictions, in order, each top 2 with its class, index and probability, best first.
j = json.load(open(f"{d}/pred.json"))
assert j["input"] == {"channels": 1, "height": 28, "width": 28, "resize": "stretch"} and len(j["predictions"]) == 20, j["input"]
for i, r in enumerate(j["predictions"]):
    t = r["top"]
    assert r["file"] == f"{d}/p{i}.png" and len(t) == 2 and 1 >= t[0]["probability"] >= t[1]["probability"] >= 0, r
    line = f"{d}/p{i}.png: {t[0]['class']} {100 * t[0]['probability']:.1f}% (then {t[1]['class']} {100 * t[1]['probability']:.1f}%)"
    assert line in pred.splitlines(), ("--json disagrees with the printed line", line)
names = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
got = {int(m.group(1)): m.group(2) for m in re.finditer(rf"^{re.escape(d)}/p(\d+)\.png: (\S+) [0-9.]+% \(then \S+ [0-9.]+%\)$", pred, re.M)}
assert sorted(got) == list(range(20)), ("not one line per image, with its top 2", pred)
right = sum(got[i] == names[labels[i]] for i in range(20))
rt_right = int(re.search(r"\((\d+) of 20\)", rt).group(1))
assert abs(right - rt_right) <= 1 and right >= 12, ("kiln predict on the PNGs disagrees with the runtime on the same images", right, rt_right, pred)
print(f"kiln predict: {right} of 20 PNGs right (the runtime on the IDX images: {rt_right})")
PY
# A folder of 1,030 images (the 20 linked round-robin, f0000.png ... f1029.png): read in chunks of
# 1,024 (never held whole), every image gets the probabilities it got alone, in path order, the
# last chunk's 6 included (to 1e-5: batches of other sizes may sum in another order).
mkdir -p "$d/many"
for i in $(seq 0 1029); do ln -s "$d/p$((i % 20)).png" "$d/many/$(printf f%04d "$i").png"; done
"$kiln" predict -c "$d/run/checkpoint.pt" --device cpu --top 2 --json "$d/many.json" "$d/many" > "$d/many.txt" || { tail -3 "$d/many.txt"; echo "FAIL: kiln predict on a folder of 1,030 images"; exit 1; }
python3 - "$d" <<'PY' || exit 1
import json, sys
d = sys.argv[1]
one, many = json.load(open(f"{d}/pred.json"))["predictions"], json.load(open(f"{d}/many.json"))["predictions"]
assert [r["file"] for r in many] == [f"{d}/many/f{i:04d}.png" for i in range(1030)], "not the folder's 1,030 images in path order"
for i, r in enumerate(many):
    a, b = r["top"], one[i % 20]["top"]
    assert [t["index"] for t in a] == [t["index"] for t in b] and all(abs(x["probability"] - y["probability"]) < 1e-5 for x, y in zip(a, b)), (i, a, b)
print("kiln predict on a folder of 1,030 images (two chunks): each image's top 2 as alone")
PY
# a mid-grey RGB image: one CIFAR-format record written as a PNG by the same script
python3 -c "import sys; open(sys.argv[1], 'wb').write(bytes(1) + bytes([128]) * 3072)" "$d/rgb.bin" &&
  python3 "$(dirname "$0")/idx_image_png.py" --cifar "$d/rgb.bin" 0 "$d/rgb.png" || { echo "FAIL: writing an RGB PNG"; exit 1; }
"$kiln" predict -c "$d/run/checkpoint.pt" --device cpu --data "$data" "$d/rgb.png" > "$d/bad.txt" 2>&1 && { echo "FAIL: kiln predict took a colour image for a grey model"; exit 1; }
grep -q "image '$d/rgb.png' has 3 channels (colour), and this model takes grey images (1 channel)" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: no message for the colour image"; exit 1; }
# --grey takes it by BT.601 luma: a 32 x 32 colour picture (test image 0 enlarged, its three
# channels apart) gives kiln predict --grey exactly what kiln predict gives the grey PNG of its
# luma computed here, (299 R + 587 G + 114 B + 500) // 1000, and kiln-classify --grey exactly what
# kiln-classify gives that PNG (each exact within its own arithmetic: this run evaluates in its
# precision, bf16 where the CPU has it, the runtime in fp32); without --grey the same refusal.
python3 - "$d/images" "$d" <<'PY' || { echo "FAIL: writing the colour picture"; exit 1; }
import struct, sys
im, d = open(sys.argv[1], "rb").read(), sys.argv[2]
g = [im[16 + min(y * 28 // 32, 27) * 28 + min(x * 28 // 32, 27)] for y in range(32) for x in range(32)]
r, gr, b = g, [255 - v for v in g], [(v * 7 + 40) % 256 for v in g]
open(f"{d}/colour.bin", "wb").write(bytes([0] + r + gr + b))
luma = [(299 * p + 587 * q + 114 * t + 500) // 1000 for p, q, t in zip(r, gr, b)]
open(f"{d}/luma.idx", "wb").write(struct.pack(">IIII", 2051, 1, 32, 32) + bytes(luma))
PY
python3 "$(dirname "$0")/idx_image_png.py" --cifar "$d/colour.bin" 0 "$d/colour.png" && python3 "$(dirname "$0")/idx_image_png.py" "$d/luma.idx" 0 "$d/luma.png" ||
  { echo "FAIL: writing the colour and luma PNGs"; exit 1; }
"$kiln" predict -c "$d/run/checkpoint.pt" --device cpu --top 10 --grey --json "$d/g.json" "$d/colour.png" > "$d/g.txt" || { cat "$d/g.txt"; echo "FAIL: kiln predict --grey"; exit 1; }
"$kiln" predict -c "$d/run/checkpoint.pt" --device cpu --top 10 --json "$d/l.json" "$d/luma.png" > "$d/l.txt" || { cat "$d/l.txt"; echo "FAIL: kiln predict on the luma PNG"; exit 1; }
"$classify" "$d/run/model.kiln" --top 10 --grey --json "$d/c.json" "$d/colour.png" > "$d/c.txt" || { cat "$d/c.txt"; echo "FAIL: kiln-classify --grey"; exit 1; }
"$classify" "$d/run/model.kiln" --top 10 --json "$d/cl.json" "$d/luma.png" > "$d/cl.txt" || { cat "$d/cl.txt"; echo "FAIL: kiln-classify on the luma PNG"; exit 1; }
"$classify" "$d/run/model.kiln" "$d/colour.png" > "$d/bad.txt" 2>&1 && { echo "FAIL: kiln-classify took a colour image for a grey model"; exit 1; }
grep -q "image '$d/colour.png' has 3 channels (colour), and this model takes grey images (1 channel): convert it to grey first, or pass --grey" "$d/bad.txt" ||
  { cat "$d/bad.txt"; echo "FAIL: kiln-classify's message for the colour image"; exit 1; }
python3 - "$d" <<'PY' || exit 1
import json, sys
d = sys.argv[1]
g, l, c, cl = (json.load(open(f"{d}/{k}.json"))["predictions"][0]["top"] for k in ("g", "l", "c", "cl"))
assert len(g) == 10 and g == l, ("kiln predict --grey is not the luma picture's prediction", g, l)
assert len(c) == 10 and c == cl, ("kiln-classify --grey is not the luma picture's prediction", c, cl)
pc = {t["class"]: t["probability"] for t in c}
worst = max(abs(t["probability"] - pc[t["class"]]) for t in g)
print(f"--grey: kiln predict's and kiln-classify's 10 probabilities those of the luma PNG exactly ({g[0]['class']} {g[0]['probability']:.3f}; "
      f"the two apart by up to {worst:.1e}, the run's precision against fp32)")
PY
"$kiln" predict -c "$d/run/checkpoint.pt" --device cpu --data "$data" "$d/none.png" > "$d/bad.txt" 2>&1 && { echo "FAIL: kiln predict took a missing file"; exit 1; }
grep -q "$d/none.png" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: the missing file is not named"; exit 1; }
# --tta overrides the file's test-time augmentation (this run's: none) and says so; a mode that
# is not one is refused, naming it.
"$classify" "$d/run/model.kiln" "$d/images" "$d/labels" --limit 50 --tta flip+translate > "$d/rtt.txt" || { echo "FAIL: kiln-classify --tta"; exit 1; }
grep -q "of 50) with fp32 weights, tta flip+translate (6 network passes an image)" "$d/rtt.txt" || { cat "$d/rtt.txt"; echo "FAIL: kiln-classify --tta flip+translate"; exit 1; }
grep -q "loops); CRC-32 [0-9a-f]\{8\} checked$" "$d/rtt.txt" || { cat "$d/rtt.txt"; echo "FAIL: kiln-classify does not say the file's CRC-32 was checked"; exit 1; }
"$classify" "$d/run/model.kiln" "$d/images" "$d/labels" --tta flop > "$d/bad.txt" 2>&1 && { echo "FAIL: kiln-classify took --tta flop"; exit 1; }
grep -q "tta 'flop' is not none | flip | flip+translate" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: no message for --tta flop"; exit 1; }
# kiln export --tta writes the mode into the file, which the runtime then applies unprompted
# (no dataset read either: KILN_DATA points nowhere).
KILN_DATA="$d/no-data-here" "$kiln" export --checkpoint "$d/run/checkpoint.pt" --format kiln --tta flip --out "$d/flip.kiln" > "$d/fe.txt" ||
  { echo "FAIL: kiln export --tta flip"; exit 1; }
grep -q "test-time augmentation flip applied by the runtime (--tta): 2 network passes an image" "$d/fe.txt" || { cat "$d/fe.txt"; echo "FAIL: export --tta flip did not say so"; exit 1; }
"$classify" "$d/flip.kiln" "$d/images" "$d/labels" --limit 50 > "$d/rf.txt" || { echo "FAIL: kiln-classify of the --tta flip export"; exit 1; }
grep -q "of 50) with fp32 weights, tta flip (2 network passes an image)" "$d/rf.txt" || { cat "$d/rf.txt"; echo "FAIL: the runtime did not apply the exported --tta flip"; exit 1; }
# A run trained with train.qat keeps its grid: kiln quantize and kiln export --int8 take the
# 4-bit QAT fine-tune's own grid (int4 per channel) unless told, and the runtime running the
# exported file agrees with kiln quantize on it.
ft=$(ls -d "$d"/qat/*-ft-qat-true-channel-int4)
"$kiln" quantize --checkpoint "$ft/checkpoint.pt" --device cpu --data "$data" > "$d/ftq.txt" || { echo "FAIL: kiln quantize (QAT run)"; exit 1; }
grep -q "grid: int4 per-channel, the run's train.qat grid" "$d/ftq.txt" || { cat "$d/ftq.txt"; echo "FAIL: the QAT run's grid was not the default"; exit 1; }
"$kiln" export --checkpoint "$ft/checkpoint.pt" --format kiln --int8 --data "$data" | tee "$d/fte.txt" || { echo "FAIL: kiln export --int8 (QAT run)"; exit 1; }
grep -q "int8 weights on the int4 per-channel grid (the run's train.qat grid)" "$d/fte.txt" || { echo "FAIL: the export did not take the QAT run's grid"; exit 1; }
"$kiln" export --checkpoint "$ft/checkpoint.pt" --format kiln --bits 4 --data "$data" > "$d/bad.txt" 2>&1 && { echo "FAIL: --bits without --int8 was taken"; exit 1; }
grep -q "choose the grid of the --int8 weights: add --int8" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: no message for --bits without --int8"; exit 1; }
"$classify" "$ft/model-int8.kiln" "$d/images" "$d/labels" --limit 1000 | tee "$d/rt4.txt" || { echo "FAIL: kiln-classify int4"; exit 1; }
python3 - "$ft/quantize-int4.json" "$d/rt4.txt" <<'PY' || exit 1
import json, re, sys
j = json.load(open(sys.argv[1]))
assert j["bits"] == 4 and j["granularity"] == "channel", j
rt = int(re.search(r"\((\d+) of 1000\)", open(sys.argv[2]).read()).group(1))
lt = round(j["int8_test_acc"] * 1000)
assert abs(rt - lt) <= 1, ("runtime on the QAT run's int4 export disagrees with kiln quantize at 4 bits", rt, lt)
print(f"runtime, QAT run's int4 export: {rt}/1000 (kiln quantize --bits 4: {lt})")
PY
# ResNet-9 (model.name = resnet9, the demo's network: max-pooling, residual blocks, a bias-free
# scaled head) the same way: a quarter-width fashion-mnist-demo trained for one epoch on 3,000
# images; the runtime running its fp32 and int8 exports agrees with kiln quantize's LibTorch
# accuracies on the same 500 test images.
"$kiln" train --preset fashion-mnist-demo --device cpu --data "$data" --out "$d/r9" --quiet \
  --set data.train_subset=3000 --set data.test_subset=500 --set schedule.epochs=1 > /dev/null 2>&1 \
  || { echo "FAIL: training the ResNet-9 exited $?"; exit 1; }
"$kiln" quantize --checkpoint "$d/r9/checkpoint.pt" --device cpu --data "$data" > /dev/null || { echo "FAIL: kiln quantize (ResNet-9)"; exit 1; }
runtime_agrees "$d/r9" 500 "ResNet-9"
