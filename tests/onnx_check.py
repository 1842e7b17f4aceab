#!/usr/bin/env python3
"""kiln export --format onnx, checked by the ecosystem's own tools (PyPI's onnx and onnxruntime,
independent of kiln): for an fp32 and an int8 export of one checkpoint,
- onnx.checker.check_model(full_check=True) passes;
- the graph's input is float32 [batch, C, H, W] with a symbolic batch, its output [batch, K], and
  metadata_props carry the classes, input shape and normalisation, and how an image file becomes
  the input (stored_shape, resize, background, eval_crop);
- int8: every trainable conv / Gemm weight is an INT8 initializer feeding DequantizeLinear, on
  the grid metadata_props' int8_grid names, which is --grid (default "int8 per-channel", kiln's
  default for a run without train.qat): one scale an output channel; per channel, every
  channel's largest |value| exactly qmax = 2^(bits-1) - 1 (127 at 8 bits, 7 at 4: symmetric,
  scale = max|w| / qmax) or 0 (an all-zero channel); per tensor, one scale repeated over the
  channels and the weight's largest |value| qmax, no channel's above it; the fp32 export names
  no grid;
- the graph's test-time augmentation (metadata tta, tta_views) is the one tests/onnx_reference
  applied (its tta.txt), and with one the graph batches its views through the network (Concat
  tta.views);
- ONNX Runtime's logits match LibTorch's (tests/onnx_reference: eval mode, the same test-time
  augmentation through kiln::predict_with_tta) to 1e-4 absolute on the first 256 test images,
  and its predicted classes are identical
  on every test image given (fp32 against LibTorch fp32; int8 against LibTorch with kiln
  quantize's weights on the same grid: tests/onnx_reference with its GRANULARITY and BITS);
- the int8 export run again with session.disable_quant_qdq = 1 (ONNX Runtime folds the
  dequantised weights; docs/onnx.md) matches LibTorch the same way;
and prints one row of docs/onnx.md's table (--json FILE also writes it, with ONNX Runtime's
milliseconds an image over the whole set: its default threads, batches of 500).

usage: onnx_check.py REF_DIR MODEL.onnx MODEL-INT8.onnx [--grid "int4 per-tensor"] [--name NAME] [--json FILE]
(exit 77: onnx or onnxruntime missing, outside CI)
"""
import argparse, json, os, sys, time

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except Exception as e:  # noqa: BLE001
    if os.environ.get("CI"):
        print(f"FAIL: onnx / onnxruntime not importable in CI ({e})")
        sys.exit(1)
    print(f"SKIPPED: onnx / onnxruntime not importable ({e})")
    sys.exit(77)

TOL = 1e-4  # absolute, on logits (issue #24)

ap = argparse.ArgumentParser()
ap.add_argument("ref")
ap.add_argument("fp32")
ap.add_argument("int8")
ap.add_argument("--grid", default="int8 per-channel")
ap.add_argument("--name", default="")
ap.add_argument("--json", default="")
a = ap.parse_args()
bits_name, per = a.grid.split(" ")
assert bits_name.startswith("int") and per in ("per-channel", "per-tensor"), f"--grid {a.grid!r}: want e.g. 'int4 per-tensor'"
qmax = 2 ** (int(bits_name[3:]) - 1) - 1

n, c, h, w, k = (int(v) for v in open(os.path.join(a.ref, "shape.txt")).read().split())
tta = open(os.path.join(a.ref, "tta.txt")).read().strip()
views = {"none": 1, "flip": 2, "flip+translate": 6}[tta]
pixels = np.fromfile(os.path.join(a.ref, "pixels.f32"), dtype="<f4").reshape(n, c, h, w)
labels = np.fromfile(os.path.join(a.ref, "labels.i64"), dtype="<i8")
ref = {"fp32": np.fromfile(os.path.join(a.ref, "logits.f32"), dtype="<f4").reshape(n, k),
       "int8": np.fromfile(os.path.join(a.ref, "logits-int8.f32"), dtype="<f4").reshape(n, k)}


def check_graph(path, int8):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    assert [i.name for i in g.input] == ["pixels"], [i.name for i in g.input]
    dims = g.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [c, h, w], dims
    odims = g.output[0].type.tensor_type.shape.dim
    assert odims[0].dim_param == "batch" and odims[1].dim_value == k, odims
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    meta = {p.key: p.value for p in model.metadata_props}
    assert len(json.loads(meta["classes"])) == k, meta["classes"]
    assert json.loads(meta["input_shape"]) == [c, h, w], meta["input_shape"]
    assert meta["normalisation"] == "in graph", meta["normalisation"]
    # how an image file becomes the input (these runs store their images at the input's size)
    assert json.loads(meta["stored_shape"]) == [c, h, w], meta["stored_shape"]
    assert meta["resize"] == "stretch" and meta["background"] == "0" and json.loads(meta["eval_crop"]) == 1, \
        (meta["resize"], meta["background"], meta["eval_crop"])
    assert meta["tta"] == tta and meta["tta_views"] == str(views), (meta["tta"], meta["tta_views"], tta)
    concat = [node for node in g.node if node.op_type == "Concat" and node.output[0] == "tta.views"]
    assert len(concat) == (0 if tta == "none" else 1) and (not concat or len(concat[0].input) == views), concat
    assert meta["int8"] == ("true" if int8 else "false"), meta["int8"]
    assert meta.get("int8_grid") == (a.grid if int8 else None), meta.get("int8_grid")
    inits = {t.name: t for t in g.initializer}
    producers = {o: node for node in g.node for o in node.output}
    weights = [node.input[1] for node in g.node if node.op_type in ("Conv", "Gemm")]
    trainable = [wname for wname in weights if not wname.startswith("whiten.")]  # the whitening is a fixed buffer
    for wname in trainable:
        if int8:
            src = producers.get(wname)
            assert src is not None and src.op_type == "DequantizeLinear", f"{wname} is not dequantised"
            assert inits[src.input[0]].data_type == onnx.TensorProto.INT8, src.input[0]
            q = onnx.numpy_helper.to_array(inits[src.input[0]]).astype(np.int32)
            scale = onnx.numpy_helper.to_array(inits[src.input[1]])
            assert scale.shape == (q.shape[0],), f"{wname}: {scale.shape} scales for {q.shape[0]} output channels"
            peak = np.abs(q.reshape(q.shape[0], -1)).max(1)
            if per == "per-channel":
                assert np.isin(peak, (0, qmax)).all(), f"{wname}: channels' largest |q| {sorted(set(peak.tolist()))}, not {qmax}"
            else:
                assert (scale == scale[0]).all(), f"{wname}: {len(set(scale.tolist()))} different scales on a per-tensor grid"
                assert peak.max() == qmax, f"{wname}: largest |q| {peak.max()}, not {qmax}"
        else:
            assert wname in inits and inits[wname].data_type == onnx.TensorProto.FLOAT, wname
    return meta, len(trainable)


# ONNX Runtime keeps DequantizeLinear nodes as they are (for its quantised kernels), so an int8
# file's convolutions read computed weights and miss its fp32 optimisations (BatchNorm folding,
# the NCHWc layout); session.disable_quant_qdq = 1 lets it fold them into constants first.
FOLD = {"session.disable_quant_qdq": "1"}


def run(path, config=None):
    """ONNX Runtime's logits on every test image, in batches of 500, and the seconds the runs took
    (the session made beforehand), with the session config entries `config`."""
    options = ort.SessionOptions()
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    out = [sess.run(["logits"], {"pixels": pixels[b:b + 500]})[0] for b in range(0, n, 500)]
    return np.concatenate(out), time.perf_counter() - start


def against_libtorch(got, want, what):
    """ONNX Runtime's logits `got` against LibTorch's `want`: the largest |difference| on the
    first 256 images and the predicted classes that differ on all; asserts both bounds."""
    assert got.shape == (n, k) and got.dtype == np.float32, (got.shape, got.dtype)
    diff = float(np.abs(got[:256] - want[:256]).max())
    differing = int((got.argmax(1) != want.argmax(1)).sum())
    assert diff <= TOL, f"{what}: ONNX Runtime's logits differ from LibTorch's by {diff} > {TOL}"
    assert differing == 0, f"{what}: {differing} of {n} predicted classes differ"
    return diff, differing


row = {"name": a.name, "n_test_images": n, "tta": tta}
for kind, path in (("fp32", a.fp32), ("int8", a.int8)):
    meta, nweights = check_graph(path, kind == "int8")
    got, seconds = run(path)
    row.update({f"{kind}_bytes": os.path.getsize(path),
                f"{kind}_kiln_acc": float((ref[kind].argmax(1) == labels).mean()),
                f"{kind}_ort_acc": float((got.argmax(1) == labels).mean()),
                f"{kind}_ort_ms_per_image": 1000 * seconds / n})
    print(f"{a.name or path} {kind}: {meta['model']}, tta {tta}, {nweights} conv/Gemm weights, {os.path.getsize(path)} bytes; "
          f"accuracy kiln {row[f'{kind}_kiln_acc']:.4f}, ONNX Runtime {row[f'{kind}_ort_acc']:.4f}")
    diff, differing = against_libtorch(got, ref[kind], kind)
    row.update({f"{kind}_max_abs_logit_diff_256": diff, f"{kind}_predictions_differing": differing})
    print(f"  max |logit diff| on {min(n, 256)} images {diff:.2e} (bound {TOL:g}); predictions differing {differing} / {n}")
    if kind == "int8":  # the same file with its weights folded by ONNX Runtime (docs/onnx.md)
        folded, folded_seconds = run(path, FOLD)
        fdiff, fdiffering = against_libtorch(folded, ref[kind], "int8 folded")
        row.update({"int8_folded_max_abs_logit_diff_256": fdiff, "int8_folded_predictions_differing": fdiffering,
                    "int8_folded_ort_ms_per_image": 1000 * folded_seconds / n})
        print(f"  with {FOLD}: max |logit diff| {fdiff:.2e}; predictions differing {fdiffering} / {n}")
row["onnxruntime"] = ort.__version__
row["onnx"] = onnx.__version__
if a.json:
    with open(a.json, "w") as f:
        json.dump(row, f, indent=1)
print("PASS")
