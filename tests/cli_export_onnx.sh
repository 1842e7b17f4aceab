#!/usr/bin/env bash
# `kiln export --format onnx` end to end, for every network kind kiln trains: checkpoints
# trained at smoke scale here, exported fp32 and int8, checked by PyPI's onnx
# (check_model(full_check=True)) and run by ONNX Runtime against LibTorch's own logits
# (tests/onnx_check.py), with the run's test-time augmentation in the graph (the CIFAR presets'
# flip and flip+translate) against kiln::predict_with_tta; the fashion-mnist-tiny run (no TTA of
# its own) also exported with --tta flip+translate at its translate weight of 0.3, per tensor and
# at 4 bits, and a QAT fine-tune of it on its own grid (int4 per tensor); an airbench94 run also
# with --tta none; then a corrupt checkpoint and a checkpoint that is not one, each
# refused with a message naming the file.
# usage: cli_export_onnx.sh KILN ONNX_REFERENCE PYTHON   (exit 77 = skipped)
set -u
kiln=$1; reference=$2; python=$3
here=$(cd "$(dirname "$0")" && pwd)
fm=/usr/share/datasets
[ -d "$fm/fashion-mnist" ] || { echo "SKIPPED: $fm/fashion-mnist missing"; exit 77; }
"$python" -c "import onnx, onnxruntime" 2>/dev/null || {
  [ -n "${CI:-}" ] && { echo "FAIL: onnx / onnxruntime missing from $python in CI"; exit 1; }
  echo "SKIPPED: onnx / onnxruntime not importable by $python"; exit 77; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
small="--set data.train_subset=512 --set data.test_subset=1000 --set schedule.epochs=1"

# name preset data-root extra settings...: train, export fp32 + int8, check.
check() {
  local name=$1 preset=$2 root=$3; shift 3
  "$kiln" train --preset "$preset" --device cpu --data "$root" --out "$d/$name" --quiet $small "$@" > "$d/$name.log" 2>&1 ||
    { cat "$d/$name.log"; echo "FAIL: training $name"; exit 1; }
  "$kiln" export -c "$d/$name/checkpoint.pt" --data "$root" --format onnx > /dev/null || { echo "FAIL: export $name"; exit 1; }
  "$kiln" export -c "$d/$name/checkpoint.pt" --data "$root" --format onnx --int8 > /dev/null || { echo "FAIL: export --int8 $name"; exit 1; }
  mkdir -p "$d/$name/ref"
  "$reference" "$d/$name/checkpoint.pt" "$root" "$d/$name/ref" || { echo "FAIL: onnx_reference $name"; exit 1; }
  "$python" "$here/onnx_check.py" "$d/$name/ref" "$d/$name/model.onnx" "$d/$name/model-int8.onnx" --name "$name" ||
    { echo "FAIL: $name"; exit 1; }
}

# The small nets (relu6; the dense one with GELU, written as its erf definition) and a
# quarter-width ResNet-9 with an EMA, on Fashion-MNIST.
check separable fashion-mnist-tiny "$fm" --set eval.tta_translate_weight=0.3
check dense fashion-mnist-tiny "$fm" --set model.name=dense --set "model.widths=[8,8,8]" --set model.depth=2 --set model.activation=gelu
check resnet9 fashion-mnist-demo "$fm" --set ema.enabled=true
if [ -n "${KILN_DATA:-}" ] && [ -d "$KILN_DATA/cifar10" ]; then
  narrow="--set data.batch_size=128 --set data.test_batch_size=500"
  # Myrtle's ResNet-9: 3x3 whitening, pool before BN, CELU, ghost BN, frozen BN scale.
  check myrtle cifar10-myrtle-94 "$KILN_DATA" $narrow --set "model.widths=[16,32,64,128]" --set model.ghost_bn_splits=4
  # airbench94: 2x2 whitening with its bias, GELU, output scale; airbench96's 3-conv residual
  # groups; airbench94_muon's head_norm; airbench94 with its whitening trained (model.whiten_trained).
  check airbench94 cifar10-94 "$KILN_DATA" $narrow --set "model.widths=[16,32,32]"
  check airbench96 cifar10-96 "$KILN_DATA" $narrow --set "model.widths=[16,32,32]"
  check airbench94_muon cifar10-94-muon "$KILN_DATA" $narrow --set "model.widths=[16,32,32]"
  # the airbench94 ablation's "no whitening" row: the whitening conv trained, a parameter (its 4
  # steps without Lookahead, which would end them at the initial weights)
  check airbench94_whiten_trained cifar10-94 "$KILN_DATA" $narrow --set "model.widths=[16,32,32]" \
    --set model.whiten_trained=true --set optim.lookahead=false
fi

# name data-root mode: the run's export fp32 + int8 again with --tta MODE, against LibTorch with
# the same test-time augmentation.
tta() {
  local name=$1 root=$2 mode=$3 ref="$d/$1/ref-tta-$3"
  for q in "" --int8; do
    "$kiln" export -c "$d/$name/checkpoint.pt" --data "$root" --format onnx $q --tta "$mode" --out "$d/$name/model$q-$mode.onnx" > "$d/tta.log" ||
      { echo "FAIL: export $q --tta $mode $name"; exit 1; }
  done
  grep -q "test-time augmentation $mode in the graph (--tta)\|the plain network, no test-time augmentation (--tta)" "$d/tta.log" ||
    { cat "$d/tta.log"; echo "FAIL: export --tta $mode does not say what the graph applies"; exit 1; }
  mkdir -p "$ref"
  "$reference" "$d/$name/checkpoint.pt" "$root" "$ref" --tta "$mode" || { echo "FAIL: onnx_reference $name --tta $mode"; exit 1; }
  "$python" "$here/onnx_check.py" "$ref" "$d/$name/model-$mode.onnx" "$d/$name/model--int8-$mode.onnx" --name "$name tta $mode" ||
    { echo "FAIL: $name with --tta $mode"; exit 1; }
}
tta separable "$fm" flip+translate
if [ -n "${KILN_DATA:-}" ] && [ -d "$KILN_DATA/cifar10" ]; then
  tta airbench94 "$KILN_DATA" none
else
  echo "note: no CIFAR-10 under KILN_DATA: the whitened ResNet-9 and the airbench nets (and their own TTA) are not exported here"
fi
if "$kiln" export -c "$d/separable/checkpoint.pt" --data "$fm" --format onnx --tta flop --out "$d/flop.onnx" > "$d/flop.log" 2>&1 ||
   ! grep -q "test-time augmentation 'flop' is not one of none | flip | flip+translate" "$d/flop.log" || [ -e "$d/flop.onnx" ]; then
  cat "$d/flop.log"; echo "FAIL: --tta flop was not refused by name, or left a file"; exit 1
fi

# The other grids: name granularity bits [export flags...]: the run's int8 export again on the
# grid asked (or, with no flags, the run's own train.qat grid), against LibTorch on that grid.
grid() {
  local name=$1 gran=$2 bits=$3; shift 3
  local ref="$d/$name/ref-$gran-$bits"
  "$kiln" export -c "$d/$name/checkpoint.pt" --data "$fm" --format onnx --int8 "$@" --out "$d/$name/model-$gran-$bits.onnx" > /dev/null ||
    { echo "FAIL: export --int8 $* $name"; exit 1; }
  mkdir -p "$ref"
  "$reference" "$d/$name/checkpoint.pt" "$fm" "$ref" "$gran" "$bits" || { echo "FAIL: onnx_reference $name $gran $bits"; exit 1; }
  local per=per-channel; [ "$gran" = tensor ] && per=per-tensor
  "$python" "$here/onnx_check.py" "$ref" "$d/$name/model.onnx" "$d/$name/model-$gran-$bits.onnx" --grid "int$bits $per" \
    --name "$name int$bits $per" || { echo "FAIL: $name on the int$bits $per grid"; exit 1; }
}
grid separable tensor 8 --granularity tensor
grid separable channel 4 --bits 4
# A run fine-tuned with train.qat on the 4-bit per-tensor grid exports on that grid unless told.
"$kiln" train --preset fashion-mnist-tiny --device cpu --data "$fm" --out "$d/qat" --quiet $small --init "$d/separable/checkpoint.pt" \
  --set train.qat=true --set train.qat_bits=4 --set train.qat_granularity=tensor > "$d/qat.log" 2>&1 ||
  { cat "$d/qat.log"; echo "FAIL: training qat"; exit 1; }
"$kiln" export -c "$d/qat/checkpoint.pt" --data "$fm" --format onnx > /dev/null || { echo "FAIL: export qat"; exit 1; }
grid qat tensor 4

# Bad checkpoints: a truncated one and a file that is not a checkpoint, each named in the error.
head -c 1000 "$d/separable/checkpoint.pt" > "$d/truncated.pt"
echo "not a checkpoint" > "$d/text.pt"
for bad in truncated.pt text.pt; do
  if "$kiln" export -c "$d/$bad" --data "$fm" --format onnx --out "$d/bad.onnx" > "$d/bad.log" 2>&1; then
    echo "FAIL: exporting $bad succeeded"; exit 1
  fi
  grep -q "$d/$bad" "$d/bad.log" || { cat "$d/bad.log"; echo "FAIL: the error for $bad does not name the file"; exit 1; }
  [ ! -e "$d/bad.onnx" ] || { echo "FAIL: a failed export left $d/bad.onnx"; exit 1; }
done
echo "PASS: kiln export --format onnx checked by onnx and run by ONNX Runtime"
