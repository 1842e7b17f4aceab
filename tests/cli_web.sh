#!/usr/bin/env bash
# kiln in the browser end to end (issue #8): a small Fashion-MNIST model trained briefly and
# exported as int8, `kiln web` writes the site (with the 1989 digits when MNIST is under
# KILN_DATA), then the same checks three ways: kiln-web-check (web/kiln_web.cpp built
# natively), node running kiln.js (its WebAssembly build), and headless Chromium opening the
# page, which classifies a known test image dropped as a PNG and trains the 1989 network for a
# pass; with CIFAR-10 under KILN_DATA, a narrow cifar10-94 net (3 channels, flip+translate TTA)
# classifies an RGB picture in the page as natively. Exit 77 = skipped.
set -u
kiln=$1; check=$2; here=$(cd "$(dirname "$0")" && pwd); web=$(cd "$here/../web" && pwd)
data=/usr/share/datasets
[ -d "$data/fashion-mnist" ] || { echo "SKIPPED: $data/fashion-mnist missing (apt-get install dataset-fashion-mnist)"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$kiln" train --preset fashion-mnist-tiny --device cpu --data "$data" --out "$d/run" --quiet \
  --set data.train_subset=6000 --set data.test_subset=1000 --set schedule.epochs=3 > /dev/null 2>&1 \
  || { echo "FAIL: training exited $?"; exit 1; }
"$kiln" export --checkpoint "$d/run/checkpoint.pt" --format kiln --int8 --data "$data" || { echo "FAIL: kiln export"; exit 1; }
mnist_root=${KILN_DATA:-$d/none}
"$kiln" web --model "$d/run/model-int8.kiln" --data "$mnist_root" --out "$d/site" 2>&1 | tee "$d/web.txt"
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ]; then
  grep -q "was not built" "$d/web.txt" && { echo "SKIPPED: no emscripten here, so no kiln.js"; exit 77; }
  echo "FAIL: kiln web exited $rc"; exit 1
fi
for f in index.html kiln_api.js kiln.js model.kiln site.json; do [ -s "$d/site/$f" ] || { echo "FAIL: the site lacks $f"; exit 1; }; done
passes=1
[ -s "$d/site/digits.bin" ] || { echo "note: no MNIST under KILN_DATA: the 1989 part is not checked"; passes=0; }
# A site without a digits file is still a page; a broken model is refused before anything is written.
printf 'KILNMDL1junk' > "$d/bad.kiln"
if "$kiln" web --model "$d/bad.kiln" --out "$d/bad-site" 2>"$d/bad.txt"; then echo "FAIL: a broken model was accepted"; exit 1; fi
grep -q "bad.kiln" "$d/bad.txt" && [ ! -e "$d/bad-site" ] || { echo "FAIL: the refusal does not name the file, or wrote a site"; cat "$d/bad.txt"; exit 1; }

gunzip -c "$data/fashion-mnist/t10k-images-idx3-ubyte.gz" > "$d/images" && gunzip -c "$data/fashion-mnist/t10k-labels-idx1-ubyte.gz" > "$d/labels" || exit 1
digits=$d/site/digits.bin; [ -s "$digits" ] || digits=$d/site/model.kiln  # unused when passes=0
# The known image: the first test image the native build classifies correctly.
k=-1
for i in $(seq 0 30); do
  "$check" "$d/site/model.kiln" "$d/images" "$i" "$digits" 0 0 0 > "$d/n.json" 2>/dev/null || continue
  if python3 -c "import json,sys; sys.exit(json.load(open('$d/n.json'))['label'] != open('$d/labels','rb').read()[8+$i])"; then k=$i; break; fi
done
[ "$k" -ge 0 ] || { echo "FAIL: the model gets none of the first 31 test images right"; exit 1; }
label=$(python3 -c "print(open('$d/labels','rb').read()[8+$k])")
echo "known image: Fashion-MNIST test image $k, class $label"
python3 "$here/idx_image_png.py" "$d/images" "$k" "$d/known.png" || exit 1
"$check" "$d/site/model.kiln" "$d/images" "$k" "$digits" 0 "$passes" 0 > "$d/native.json" || { echo "FAIL: kiln-web-check"; exit 1; }
if command -v node >/dev/null; then
  node "$web/node_check.js" "$d/site/kiln.js" "$d/site/model.kiln" "$d/images" "$k" "$digits" 0 "$passes" 0 > "$d/node.json" \
    || { echo "FAIL: node_check.js"; exit 1; }
  python3 - "$d/native.json" "$d/node.json" <<'PY' || exit 1
import json, re, struct, sys
n, w = (json.load(open(f)) for f in sys.argv[1:])
f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]  # both print float32 values (native %.9g)
unequal = sum(f32(x) != f32(y) for x, y in zip(n["logits"], w["logits"]))
print(f"node (WebAssembly) vs native: labels {w['label']}/{n['label']}, {unequal} of {len(n['logits'])} logits not equal to the bit")
assert w["label"] == n["label"] and unequal == 0 and len(n["logits"]) == len(w["logits"]), "node's WebAssembly disagrees with the native build"
for a, b in zip(w["metrics"], n["metrics"]):
    print(f"  1989 pass {a['pass']}: test misses {a['test_misses']} (node) / {b['test_misses']} (native); "
          f"{a['seconds']:.2f} s / {b['seconds']:.2f} s")
    assert abs(a["test_misses"] - b["test_misses"]) <= 10, "the 1989 run differs"
assert len(w["metrics"]) == len(n["metrics"])
# the page's model line says the file was checked, in kiln-classify's words (kiln::rt::integrity)
for j in (n, w):
    assert re.fullmatch(r"CRC-32 [0-9a-f]{8} checked", j["info"]["integrity"]), j["info"]
PY
  # The same run on the 4-bit grid, packed two values to a byte (dtype 2): the WebAssembly build
  # reads it as the native one does, and it is another model than the int8 file.
  "$kiln" export --checkpoint "$d/run/checkpoint.pt" --format kiln --int8 --bits 4 --out "$d/int4.kiln" --data "$data" > /dev/null \
    || { echo "FAIL: kiln export --bits 4"; exit 1; }
  "$check" "$d/int4.kiln" "$d/images" "$k" "$digits" 0 0 0 > "$d/native4.json" || { echo "FAIL: kiln-web-check (int4)"; exit 1; }
  node "$web/node_check.js" "$d/site/kiln.js" "$d/int4.kiln" "$d/images" "$k" "$digits" 0 0 0 > "$d/node4.json" \
    || { echo "FAIL: node_check.js (int4)"; exit 1; }
  python3 - "$d/native4.json" "$d/node4.json" "$d/native.json" <<'PY' || exit 1
import json, struct, sys
n, w, n8 = (json.load(open(f)) for f in sys.argv[1:])
f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
unequal = sum(f32(x) != f32(y) for x, y in zip(n["logits"], w["logits"]))
d8 = max(abs(x - y) for x, y in zip(n["logits"], n8["logits"]))
print(f"packed int4 file: node (WebAssembly) vs native {unequal} logits not equal to the bit; {d8:.3f} from the int8 file's")
assert unequal == 0, "node's WebAssembly reads the packed file otherwise than the native build"
assert d8 > 1e-3, "the 4-bit file gave the int8 file's logits"
PY
fi
python3 "$here/web_page.py" "$d/site" "$d/known.png" "$d/native.json" --expect-label "$label" --passes "$passes" || exit $?
# The checker must be able to fail: the same page, told to expect another class.
if python3 "$here/web_page.py" "$d/site" "$d/known.png" "$d/native.json" --expect-label $(( (label + 1) % 10 )) --passes 0 > "$d/neg.txt"; then
  echo "FAIL: web_page.py passed a wrong label"; cat "$d/neg.txt"; exit 1
fi
grep -q "FAIL: label" "$d/neg.txt" || { echo "FAIL: the wrong label was not the reason"; cat "$d/neg.txt"; exit 1; }
# A 3-channel model with its run's test-time augmentation: a narrow cifar10-94 (airbench, flip+
# translate) trained briefly on CIFAR-10 (KILN_DATA), one test image dropped as an RGB PNG; the
# page's logits (six network passes) must be the native build's, and it must read the TTA.
cifar=${KILN_DATA:-$d/none}/cifar10/test_batch.bin
if [ -s "$cifar" ]; then
  "$kiln" train --preset cifar10-94 --device cpu --data "$KILN_DATA" --out "$d/c" --quiet --set "model.widths=[16, 32, 32]" \
    --set data.train_subset=2048 --set data.test_subset=100 --set schedule.epochs=1 > /dev/null 2>&1 || { echo "FAIL: cifar10-94 training"; exit 1; }
  "$kiln" export --checkpoint "$d/c/checkpoint.pt" --format kiln --data "$KILN_DATA" > /dev/null || { echo "FAIL: kiln export (cifar10-94)"; exit 1; }
  "$kiln" web --model "$d/c/model.kiln" --out "$d/csite" > /dev/null || { echo "FAIL: kiln web (cifar10-94)"; exit 1; }
  "$check" "$d/c/model.kiln" "$cifar" 0 "$d/c/model.kiln" 0 0 0 > "$d/cnative.json" || { echo "FAIL: kiln-web-check on a CIFAR batch"; exit 1; }
  # GELU's erf is the runtime's own (+ and x only): under node, kiln.js gives the native logits
  # to the bit, on the first 3 test images (musl's erff and glibc's differ: 145 of 200 apart before).
  if command -v node >/dev/null; then
    for i in 0 1 2; do
      "$check" "$d/c/model.kiln" "$cifar" $i "$d/c/model.kiln" 0 0 0 > "$d/cn$i.json" &&
        node "$web/node_check.js" "$d/csite/kiln.js" "$d/c/model.kiln" "$cifar" $i "$d/c/model.kiln" 0 0 0 > "$d/cw$i.json" ||
        { echo "FAIL: kiln-web-check / node_check.js on CIFAR-10 test image $i"; exit 1; }
    done
    python3 - "$d" <<'PY' || exit 1
import json, struct, sys
f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]  # both print float32 values (native %.9g)
apart = [sum(f32(a) != f32(b) for a, b in zip(json.load(open(f"{sys.argv[1]}/cn{i}.json"))["logits"], json.load(open(f"{sys.argv[1]}/cw{i}.json"))["logits"])) for i in range(3)]
print(f"cifar10-94 (GELU) net: node (WebAssembly) vs native logits not equal to the bit: {sum(apart)} of 30")
assert sum(apart) == 0, ("kiln.js's GELU net differs from the native build's", apart)
PY
  fi
  python3 "$here/idx_image_png.py" --cifar "$cifar" 0 "$d/cifar.png" || exit 1
  python3 "$here/web_page.py" "$d/csite" "$d/cifar.png" "$d/cnative.json" --passes 0 --report "$d/cpage.json" || exit $?
  python3 - "$d/cpage.json" <<'PY' || exit 1
import json, sys
info = json.load(open(sys.argv[1]))["info"]
assert info["channels"] == 3 and info["meta"]["tta"] == "flip+translate", ("the page did not read the RGB model's TTA", info["channels"], info["meta"].get("tta"))
print("the page ran cifar10-94's narrow net (3 channels, flip+translate TTA) as the native build does")
PY
  # A picture of another size, with transparency, dropped on the page: prepared in the
  # WebAssembly as kiln-classify prepares it (alpha over data.background, data.resize to the
  # stored 32 x 32), so the page's logits are kiln.js's under node (node_classify.js, the path
  # cli.image_folder_any_size holds to kiln-classify). The same test image, enlarged to 45 x 38
  # (nearest neighbour) with alpha falling from 255 to 135 down the rows.
  if command -v node > /dev/null; then
    python3 "$here/idx_image_png.py" --cifar "$cifar" 0 "$d/big.png" --enlarge 45 38 --alpha-ramp || exit 1
    node "$web/node_classify.js" "$d/csite/kiln.js" "$d/c/model.kiln" "$d/big.png" > "$d/bignode.json" || { echo "FAIL: node_classify.js"; exit 1; }
    python3 -c "import json, sys; r = json.load(open(sys.argv[1]))[0]; json.dump({'label': r['label'], 'logits': r['logits'], 'info': json.load(open(sys.argv[3]))['info']}, open(sys.argv[2], 'w'))" \
      "$d/bignode.json" "$d/bigref.json" "$d/cnative.json" || exit 1
    python3 "$here/web_page.py" "$d/csite" "$d/big.png" "$d/bigref.json" --passes 0 || { echo "FAIL: the page on a 45 x 38 RGBA picture"; exit 1; }
  fi
else
  echo "note: no CIFAR-10 under KILN_DATA: the 3-channel page is not checked"
fi
echo "PASS: the page classifies and trains in headless Chromium exactly as the native build does"
