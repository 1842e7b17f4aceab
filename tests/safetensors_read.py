#!/usr/bin/env python3
"""kiln export's safetensors files opened with the `safetensors` package from PyPI (an
independent reader) and compared with the checkpoint's tensors as LibTorch itself saves them
(tests/tensors_dump): fp32 exactly; int8 as q * scale within half a quantisation step, with the
scale max|w| / 127 per output channel; the metadata rebuild what the model needs.

usage: safetensors_read.py TENSORS_DUMP.pt MODEL.safetensors MODEL-INT8.safetensors
(exit 77: the safetensors package is missing)
"""
import json, os, sys

try:
    import torch
    from safetensors import safe_open
except Exception as e:  # noqa: BLE001
    if os.environ.get("CI"):
        print(f"FAIL: safetensors not importable in CI ({e})")
        sys.exit(1)
    print(f"SKIPPED: safetensors not importable ({e})")
    sys.exit(77)

ref = torch.load(sys.argv[1], weights_only=False)  # written by our own tests/tensors_dump
fp32, int8 = sys.argv[2], sys.argv[3]

with safe_open(fp32, framework="pt") as f:
    meta = f.metadata()
    assert meta["format"] == "kiln" and meta["int8"] == "false", meta
    keys = set(f.keys())
    assert keys == set(ref.keys()), (sorted(keys ^ set(ref.keys())))
    for k in keys:
        t = f.get_tensor(k)
        want = ref[k]
        assert t.shape == want.shape, (k, t.shape, want.shape)
        if want.is_floating_point():
            assert t.dtype == torch.float32, (k, t.dtype)
            assert torch.equal(t, want.float()), k
        else:
            assert torch.equal(t, want.to(t.dtype)), k
    assert len(json.loads(meta["mean"])) == json.loads(meta["input_shape"])[0]
    assert len(json.loads(meta["classes"])) == 10
    assert "[model]" in meta["config"]
print(f"fp32: {len(keys)} tensors identical to the checkpoint's")

n_q = 0
with safe_open(int8, framework="pt") as f:
    meta = f.metadata()
    assert meta["int8"] == "true", meta
    for k in ref.keys():
        t = f.get_tensor(k)
        want = ref[k]
        if t.dtype == torch.int8:
            n_q += 1
            scale = f.get_tensor(k + ".scale")
            assert scale.shape == (want.shape[0],), (k, scale.shape)
            view = [-1] + [1] * (want.dim() - 1)
            amax = want.abs().reshape(want.shape[0], -1).amax(1)
            assert torch.allclose(scale, torch.where(amax > 0, amax / 127, torch.ones_like(amax)), rtol=1e-6), k
            err = (t.float() * scale.view(view) - want).abs()
            assert bool((err <= scale.view(view) / 2 + 1e-6).all()), (k, err.max())
            assert int(t.abs().max()) <= 127
        elif want.is_floating_point():
            assert torch.equal(t, want.float()), k
assert n_q > 0, "no int8 tensors"
print(f"int8: {n_q} weights as int8 within half a step of the fp32 ones; sizes {os.path.getsize(fp32)} -> {os.path.getsize(int8)} bytes")
