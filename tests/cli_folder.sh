#!/usr/bin/env bash
# Your own images (issue #26): CIFAR-10 written as an image folder twice (tests/folder_from_cifar):
# as it is (32 x 32 RGB PNGs) and mixed as a user's folder might be (each image enlarged to
# 40..96 px a side, one in ten greyscale, two in ten RGBA). The mixed folder, loaded with
# data.image_size = [32, 32], trains to within 4 points of the plain one (mean of 2 runs each,
# the same seeds, a narrow airbench94 at smoke scale). The bound is not the issue's 2 points:
# the folder's own losses cost more than that at this scale (measured on an Intel Xeon,
# 2026-12-01: plain 61.40%, mixed 59.10% with the box filter kiln shrinks with, 59.17% with
# Catmull-Rom; the runs of a pair differ by 0.1-0.9 points; at 8 epochs the gap is 1.58 points,
# n = 3, docs/folders.md); 4 points still fails a loader that mangles images (swapped channels, misplaced crops, wrong labels). Then the folder without test/ trains with
# data.val_fraction, and mixed sizes without image_size are refused naming the key. And a
# self-training student pseudo-labels an unlabeled folder, and the runtime classifies image
# files and folders as kiln predict does (below).
# usage: cli_folder.sh KILN FOLDER_FROM_CIFAR [KILN_CLASSIFY]   (needs $KILN_DATA/cifar10; exit 77 = skipped)
set -u
kiln=$1; make_folder=$2; classify=${3:-}; kiln_js=${4:-}; web=$(cd "$(dirname "$0")/../web" && pwd)
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then echo "SKIPPED: no CIFAR-10 under KILN_DATA"; exit 77; fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
for kind in plain mixed; do
  "$make_folder" "$KILN_DATA" "$d/$kind" 5000 2000 $kind || { echo "FAIL: writing the $kind folder"; exit 1; }
done
small=(--preset cifar10-94 --device cpu --quiet --set data.dataset=folder --set "model.widths=[32,64,64]"
       --set schedule.epochs=4 --set data.batch_size=250 --set data.test_batch_size=500 --set train.precision=fp32
       --set train.eval_every=4)
"$kiln" train "${small[@]}" --runs 2 --set data.folder="$d/plain" --out "$d/run-plain" > "$d/plain.log" 2>&1 ||
  { cat "$d/plain.log"; echo "FAIL: training on the plain folder"; exit 1; }
"$kiln" train "${small[@]}" --runs 2 --set data.folder="$d/mixed" --set "data.image_size=[32,32]" --out "$d/run-mixed" > "$d/mixed.log" 2>&1 ||
  { cat "$d/mixed.log"; echo "FAIL: training on the mixed folder"; exit 1; }
grep -q "train/: 5000 images, 3 x 32 x 32, 14.6 MiB decoded, 5000 resized" "$d/mixed.log" ||
  { cat "$d/mixed.log"; echo "FAIL: the mixed run does not report its resizing"; exit 1; }
python3 - "$d/run-plain/summary.json" "$d/run-mixed/summary.json" <<'PY' || exit 1
import json, sys
plain, mixed = (json.load(open(p)) for p in sys.argv[1:3])
a, b = plain["final_test_acc"], mixed["final_test_acc"]
print(f"plain 32x32 folder: {100*a['mean']:.2f}% (runs {[round(100*x, 2) for x in plain['per_run_test_acc']]}); "
      f"mixed folder at image_size [32, 32]: {100*b['mean']:.2f}% (runs {[round(100*x, 2) for x in mixed['per_run_test_acc']]})")
if abs(a["mean"] - b["mean"]) > 0.04:
    print("FAIL: the mixed folder's mean accuracy is more than 4 points from the plain one's"); sys.exit(1)
PY
# The runtime on image files (kiln-classify MODEL.kiln IMAGE...): 30 of the mixed test images (40..96
# px, grey, RGB and RGBA) prepared without LibTorch as kiln predict prepares them, so both give
# the same classes and probabilities (to 1e-4: fp32 in another order). Two models: the mixed run
# (stretched to the stored 32 x 32, the preset's flip+translate TTA) and a short one that pads
# onto a white background at 40 x 40 and looks at the central 0.875 resized to 32 x 32
# (data.input_size, data.eval_crop). Then a file exported before the image metadata: an image
# of the input's size still runs, another size is refused, naming the file and the remedy.
if [ -n "$classify" ]; then
  "$kiln" train "${small[@]}" --set data.folder="$d/mixed" --set "data.image_size=[40,40]" --set data.resize=pad \
    --set data.background=255 --set "data.input_size=[32,32]" --set data.eval_crop=0.875 --set data.train_subset=500 \
    --set schedule.epochs=1 --set train.eval_every=1 --out "$d/run-view" > "$d/view.log" 2>&1 ||
    { cat "$d/view.log"; echo "FAIL: training with data.input_size and data.eval_crop"; exit 1; }
  mapfile -t files < <(find "$d/mixed/test" -name '*.png' | sort | awk 'NR % 66 == 1' | head -30)
  for m in run-mixed/run-00 run-view; do
    "$kiln" export -c "$d/$m/checkpoint.pt" --format kiln --out "$d/$m/model.kiln" > /dev/null || { echo "FAIL: kiln export ($m)"; exit 1; }
    "$kiln" predict -c "$d/$m/checkpoint.pt" --device cpu --top 3 --json "$d/$m/predict.json" "${files[@]}" > "$d/$m/predict.txt" ||
      { cat "$d/$m/predict.txt"; echo "FAIL: kiln predict ($m)"; exit 1; }
    "$classify" "$d/$m/model.kiln" "${files[@]}" --json "$d/$m/classify.json" > "$d/$m/classify.txt" ||
      { cat "$d/$m/classify.txt"; echo "FAIL: kiln-classify on image files ($m)"; exit 1; }
  done
  python3 - "$d" "${files[@]}" <<'PY' || exit 1
import json, re, sys
d, files = sys.argv[1], sys.argv[2:]
def png_channels(p):  # colour type byte of the IHDR chunk: 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA
    return {0: 1, 2: 3, 4: 2, 6: 4}[open(p, "rb").read(26)[25]]
kinds = sorted({png_channels(f) for f in files})
assert kinds == [1, 3, 4], ("the images are not a mix of grey, RGB and RGBA", kinds)
for m, want in (("run-mixed/run-00", {"channels": 3, "height": 32, "width": 32, "resize": "stretch"}),
                ("run-view", {"channels": 3, "height": 40, "width": 40, "resize": "pad"})):
    p, c = (json.load(open(f"{d}/{m}/{k}.json")) for k in ("predict", "classify"))
    assert p["input"] == want and c["input"] == want, (m, p["input"], c["input"])
    assert p["tta"] == c["tta"] == "flip+translate", (p["tta"], c["tta"])
    assert [r["file"] for r in p["predictions"]] == [r["file"] for r in c["predictions"]] == files
    worst, same = 0.0, 0
    for a, b in zip(p["predictions"], c["predictions"]):
        pa = {t["class"]: t["probability"] for t in a["top"]}
        pb = {t["class"]: t["probability"] for t in b["top"]}
        same += a["top"][0]["class"] == b["top"][0]["class"]
        for k in set(pa) & set(pb):
            worst = max(worst, abs(pa[k] - pb[k]))
        # a class in one top 3 and not the other only where it ties the third to 1e-4
        for k in set(pa) ^ set(pb):
            third = min(pa.values()) if k in pa else min(pb.values())
            assert abs((pa[k] if k in pa else pb[k]) - third) < 1e-4, (m, a, b)
        gap = a["top"][0]["probability"] - a["top"][1]["probability"]
        assert a["top"][0]["class"] == b["top"][0]["class"] or gap < 1e-4, (m, a, b)
    text = open(f"{d}/{m}/classify.txt").read().splitlines()
    assert len(text) == 31 and re.search(rf"30 image\(s\) as 3 x {want['height']} x {want['width']} \(data.resize = {want['resize']}\), eval.tta = flip\+translate; CRC-32 [0-9a-f]{{8}} checked$", text[0]), text[0]
    print(f"{m}: kiln-classify on 30 image files, top class the same as kiln predict's on {same}, largest probability difference {worst:.1e}")
    assert worst < 1e-4, (m, worst)
PY
  # The web page's picture path: kiln.js (the same preparation and runtime compiled to
  # WebAssembly) under node on the same 30 files gives kiln-classify's classes and probabilities
  # (to 1e-5: the same code, compiled twice), and its RGBA path (pictures a browser decoded)
  # gives the PNG path's input to the bit.
  if [ -s "$kiln_js" ] && command -v node > /dev/null; then
    for m in run-mixed/run-00 run-view; do
      node "$web/node_classify.js" $([ "$m" = run-view ] && echo --rgba-check) "$kiln_js" "$d/$m/model.kiln" "${files[@]}" \
        > "$d/$m/node.json" || { echo "FAIL: node_classify.js ($m)"; exit 1; }
    done
    python3 - "$d" <<'PY' || exit 1
import json, sys
d = sys.argv[1]
for m in ("run-mixed/run-00", "run-view"):
    c, w = json.load(open(f"{d}/{m}/classify.json")), json.load(open(f"{d}/{m}/node.json"))
    assert [r["file"] for r in c["predictions"]] == [r["file"] for r in w], m
    worst = max(abs(t["probability"] - r["probabilities"][t["index"]]) for a, r in zip(c["predictions"], w) for t in a["top"])
    same = sum(a["top"][0]["index"] == r["label"] for a, r in zip(c["predictions"], w))
    print(f"{m}: the web page's path (kiln.js under node) on 30 image files: top class kiln-classify's on {same}, largest probability difference {worst:.1e}")
    assert same == 30 and worst < 1e-5, (m, same, worst)
PY
  else
    echo "note: no kiln.js or no node: the web page's picture path is not checked"
  fi
  # a file exported before the image metadata (and before its CRC-32): the keys taken out; the
  # CRC-32 first checked by Python's zlib as docs/kiln-format.md defines it
  python3 - "$d/run-view/model.kiln" "$d/old.kiln" <<'PY' || exit 1
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[16:29] == struct.pack("<I", 5) + b"crc32" + struct.pack("<I", 8), "crc32 is not the first metadata entry"
assert b[29:37].decode() == "%08x" % zlib.crc32(b[:29] + b"00000000" + b[37:]), "the file's crc32 is not its CRC-32 by zlib"
n_meta, n_t = struct.unpack_from("<II", b, 8)
at, meta = 16, []
for _ in range(n_meta):
    kv = []
    for _ in range(2):
        (n,) = struct.unpack_from("<I", b, at); kv.append(b[at + 4:at + 4 + n]); at += 4 + n
    meta.append(kv)
meta = [kv for kv in meta if kv[0] not in (b"crc32", b"stored", b"resize", b"background", b"eval_crop")]
assert len(meta) == n_meta - 5
out = b[:8] + struct.pack("<II", len(meta), n_t) + b"".join(struct.pack("<I", len(x)) + x for kv in meta for x in kv) + b[at:]
open(sys.argv[2], "wb").write(out)
PY
  python3 "$(dirname "$0")/idx_image_png.py" --cifar "$KILN_DATA/cifar10/test_batch.bin" 0 "$d/c0.png" || { echo "FAIL: writing a 32 x 32 PNG"; exit 1; }
  "$classify" "$d/old.kiln" "$d/c0.png" > "$d/old.txt" || { cat "$d/old.txt"; echo "FAIL: an old file on an image of its input size"; exit 1; }
  grep -q "(data.resize = not recorded), eval.tta = .*; no CRC-32 (exported before 2026-12-05): unchecked$" "$d/old.txt" || { cat "$d/old.txt"; echo "FAIL: the old file's header line"; exit 1; }
  "$classify" "$d/old.kiln" "${files[0]}" > "$d/bad.txt" 2>&1 && { echo "FAIL: an old file took an image of another size"; exit 1; }
  grep -q "without saying how its run fitted other sizes (exported before 2026-12-04): export it again" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: no message for the old file"; exit 1; }
  "$classify" "$d/run-view/model.kiln" "${files[0]}" "$d/notes.txt" > "$d/bad.txt" 2>&1 && { echo "FAIL: an image file mixed with another file"; exit 1; }
  grep -q "'$d/notes.txt' is not an image file" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: no message for the mixed files"; exit 1; }
  "$classify" "$d/run-view/model.kiln" "${files[0]}" --limit 3 > "$d/bad.txt" 2>&1 && { echo "FAIL: --limit with image files"; exit 1; }
  grep -q "is for IDX and CIFAR files, not image files" "$d/bad.txt" || { cat "$d/bad.txt"; echo "FAIL: no message for --limit with image files"; exit 1; }
  # --threads 3: the same lines and JSON as one thread (only the order of the work changes)
  "$classify" "$d/run-view/model.kiln" "${files[@]}" --threads 3 --json "$d/t3.json" > "$d/t3.txt" || { echo "FAIL: kiln-classify --threads 3 on image files"; exit 1; }
  cmp -s "$d/t3.txt" "$d/run-view/classify.txt" && python3 -c "import json, sys; a, b = (json.load(open(p)) for p in sys.argv[1:]); sys.exit(a != b)" "$d/t3.json" "$d/run-view/classify.json" ||
    { diff "$d/t3.txt" "$d/run-view/classify.txt"; echo "FAIL: --threads 3 changed the predictions"; exit 1; }
  # A folder given instead of files: the images under it at any depth, sorted by path (here the 30
  # files again, linked as 00.png ... 14.png and deeper/15.png ... 29.png), hidden entries passed
  # over silently, other files counted on stderr; both tools give the predictions the files named
  # one by one got. A folder with no image is refused, saying what it holds.
  mkdir -p "$d/pick/deeper" "$d/pick/.ipynb_checkpoints" "$d/nothing"
  for i in "${!files[@]}"; do
    at=$d/pick; [ "$i" -ge 15 ] && at=$d/pick/deeper
    ln -s "${files[$i]}" "$at/$(printf %02d "$i").png"
  done
  cp "${files[0]}" "$d/pick/.ipynb_checkpoints/00.png"; printf 'xx' > "$d/pick/._00.png"; printf 'II*' > "$d/pick/a.tiff"; printf 'II*' > "$d/nothing/a.tiff"
  "$classify" "$d/run-view/model.kiln" "$d/pick" --json "$d/pick-classify.json" > "$d/pick.txt" 2> "$d/pick.err" || { cat "$d/pick.txt" "$d/pick.err"; echo "FAIL: kiln-classify on a folder"; exit 1; }
  "$kiln" predict -c "$d/run-view/checkpoint.pt" --device cpu --top 3 --json "$d/pick-predict.json" "$d/pick" > /dev/null 2>> "$d/pick.err" ||
    { cat "$d/pick.err"; echo "FAIL: kiln predict on a folder"; exit 1; }
  [ "$(grep -c "^note: passed over 1 file of a format kiln does not read (1 .tiff; kiln reads .png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif) and 1 hidden folder ($d/pick/.ipynb_checkpoints), not read$" "$d/pick.err")" = 2 ] ||
    { cat "$d/pick.err"; echo "FAIL: what a folder's walk passed over is not said by both tools"; exit 1; }
  python3 - "$d" <<'PY' || exit 1
import json, sys
d = sys.argv[1]
want = [f"{d}/pick/{i:02d}.png" for i in range(15)] + [f"{d}/pick/deeper/{i:02d}.png" for i in range(15, 30)]
for tool in ("classify", "predict"):
    got, one_by_one = json.load(open(f"{d}/pick-{tool}.json")), json.load(open(f"{d}/run-view/{tool}.json"))
    assert [r["file"] for r in got["predictions"]] == want, (tool, [r["file"] for r in got["predictions"]])
    assert [r["top"] for r in got["predictions"]] == [r["top"] for r in one_by_one["predictions"]], tool
print("a folder: kiln-classify and kiln predict read its 30 images at two depths in path order, as the files named one by one")
PY
  for tool in "$classify $d/run-view/model.kiln" "$kiln predict -c $d/run-view/checkpoint.pt --device cpu"; do
    $tool "$d/nothing" > "$d/bad.txt" 2>&1 && { echo "FAIL: a folder without images was accepted ($tool)"; exit 1; }
    grep -q "folder '$d/nothing' has no .png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif images (at any depth): passed over 1 file of a format kiln does not read (1 .tiff" "$d/bad.txt" ||
      { cat "$d/bad.txt"; echo "FAIL: no message for a folder without images ($tool)"; exit 1; }
  done
  # WebP (tests/webp/: Pillow's files, still and animated, RGB and RGBA, lossy and lossless, one
  # with an EXIF orientation, of three sizes): both tools read the folder's 7 in path order and
  # give the same classes and probabilities (to 1e-4, as above).
  webp=$(cd "$(dirname "$0")/webp" && pwd)
  "$classify" "$d/run-view/model.kiln" "$webp" --json "$d/webp-classify.json" > "$d/webp.txt" 2>&1 || { cat "$d/webp.txt"; echo "FAIL: kiln-classify on WebP files"; exit 1; }
  "$kiln" predict -c "$d/run-view/checkpoint.pt" --device cpu --top 3 --json "$d/webp-predict.json" "$webp" > "$d/webp.txt" 2>&1 ||
    { cat "$d/webp.txt"; echo "FAIL: kiln predict on WebP files"; exit 1; }
  python3 - "$d" "$webp" <<'PY' || exit 1
import json, os, sys
d, webp = sys.argv[1:3]
want = sorted(f"{webp}/{f}" for f in os.listdir(webp) if f.endswith(".webp"))
assert len(want) == 7, want
c, p = (json.load(open(f"{d}/webp-{tool}.json"))["predictions"] for tool in ("classify", "predict"))
assert [r["file"] for r in c] == [r["file"] for r in p] == want, ([r["file"] for r in c], [r["file"] for r in p])
worst = 0.0
for a, b in zip(c, p):
    pa, pb = ({t["class"]: t["probability"] for t in r["top"]} for r in (a, b))
    assert a["top"][0]["class"] == b["top"][0]["class"] or a["top"][0]["probability"] - a["top"][1]["probability"] < 1e-4, (a, b)
    worst = max([worst] + [abs(pa[k] - pb[k]) for k in set(pa) & set(pb)])
print(f"WebP: kiln-classify and kiln predict on the 7 files of tests/webp, largest probability difference {worst:.1e}")
assert worst < 1e-4, worst
PY
fi
# A self-training student whose unlabeled images are a folder (selftrain.unlabeled_folder): both
# test/ folders, reached through symbolic links, pseudo-labeled by the plain run's first model
# with its evaluation's TTA. pseudo_labels.csv, scored against the class folders in its paths
# (which kiln ignores): on the plain images exactly as often right as the teacher's run counted,
# on the mixed ones far above chance (10%).
mkdir "$d/unlabeled" && ln -s "$d/plain/test" "$d/unlabeled/plain" && ln -s "$d/mixed/test" "$d/unlabeled/mixed"
"$kiln" train "${small[@]}" --set data.folder="$d/plain" --set schedule.epochs=1 --set train.eval_every=1 \
  --set selftrain.teacher="$d/run-plain/run-00/checkpoint.pt" --set selftrain.tta=flip+translate \
  --set selftrain.unlabeled_folder="$d/unlabeled" --out "$d/run-student" > "$d/student.log" 2>&1 ||
  { cat "$d/student.log"; echo "FAIL: a student on an unlabeled folder"; exit 1; }
python3 - "$d/run-student/pseudo_labels.csv" "$d/run-plain/run-00/final.json" "$d/run-student/pseudo_labels.json" <<'PY' || exit 1
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
teacher = json.load(open(sys.argv[2]))["final_test_acc"]
pl = json.load(open(sys.argv[3]))
if pl["unlabeled"] != 4000 or pl["kept"] != 4000 or pl["accuracy"] is not None:
    print("FAIL: pseudo_labels.json:", pl); sys.exit(1)
right = {"plain": 0, "mixed": 0}
for r in rows:
    part, cls = r["path"].split("/")[:2]
    right[part] += r["pseudo_label"] == cls
print(f"pseudo-labels of the plain test/ right {right['plain']} of 2000 (the teacher's run counted {round(teacher * 2000)}), "
      f"of the mixed test/ {right['mixed']} of 2000")
if len(rows) != 4000: print("FAIL: pseudo_labels.csv has", len(rows), "rows, not 4000"); sys.exit(1)
if right["plain"] != round(teacher * 2000): print("FAIL: the plain images' pseudo-labels are not the teacher's predictions"); sys.exit(1)
if right["mixed"] < 0.3 * 2000: print("FAIL: the mixed images' pseudo-labels are barely above chance"); sys.exit(1)
PY
# No test/: the hold-out, said in the run's first lines.
rm -rf "$d/plain/test"
"$kiln" train "${small[@]}" --set data.folder="$d/plain" --set data.val_fraction=0.1 --set schedule.epochs=1 \
  --set train.eval_every=1 --out "$d/run-val" > "$d/val.log" 2>&1 || { cat "$d/val.log"; echo "FAIL: training with val_fraction"; exit 1; }
grep -q "evaluating on 502 images held out of train/ (no test/; data.val_fraction = 0.1" "$d/val.log" ||
  { cat "$d/val.log"; echo "FAIL: the hold-out is not reported"; exit 1; }
# Mixed sizes without image_size: refused, naming the key.
if "$kiln" train "${small[@]}" --set data.folder="$d/mixed" --out "$d/run-refused" > "$d/refused.log" 2>&1; then
  echo "FAIL: mixed sizes without data.image_size trained"; exit 1
fi
grep -q "set data.image_size = \[H, W\]" "$d/refused.log" || { cat "$d/refused.log"; echo "FAIL: the refusal does not name data.image_size"; exit 1; }
echo "PASS: image folders of any size"
