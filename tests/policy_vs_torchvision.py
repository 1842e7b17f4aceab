#!/usr/bin/env python3
"""kiln's augmentation operations (kiln/data/policy.h) against torchvision's, an independent
implementation of the same definitions (torchvision.transforms.autoaugment._apply_op on uint8
tensors, nearest interpolation, fill 128): every operation at several signed magnitudes on
random 32x32 RGB images and on real-looking smooth ones.

Allowed differences, each for a stated reason:
  exact:        Identity, TranslateX/Y, Posterize, Solarize, Invert, Equalize
  |diff| <= 1:  Brightness, AutoContrast (torchvision truncates its float result to uint8; kiln
                keeps the float)
  |diff| <= 2:  Color, Contrast, Sharpness (torchvision also truncates the grayscale, or rounds
                the smoothed image, before blending)
  geometric:    ShearX/Y, Rotate: >= 99% of pixels identical (the same nearest-pixel rule; a
                position within float rounding of a tie may go the other way)

usage: policy_vs_torchvision.py POLICY_DUMP_BINARY          (exit 77: torchvision missing)
"""
import os, subprocess, sys, tempfile

try:
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.autoaugment import _apply_op
except Exception as e:  # noqa: BLE001
    if os.environ.get("CI"):  # CI installs it (scripts/install-deps.sh): missing there is a failure
        print(f"FAIL: torchvision not importable in CI ({e})")
        sys.exit(1)
    print(f"SKIPPED: torchvision not importable ({e})")
    sys.exit(77)

OPS = ["Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
       "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize", "Invert"]
MAGS = {"Identity": [0.0], "ShearX": [0.3, -0.2, 0.1], "ShearY": [0.3, -0.2], "TranslateX": [14.0, -5.0, 1.0],
        "TranslateY": [12.0, -3.0], "Rotate": [30.0, -20.0, 6.666], "Brightness": [0.9, -0.5, 0.2],
        "Color": [0.9, -0.9, 0.3], "Contrast": [0.9, -0.6], "Sharpness": [0.9, -0.9, 0.5], "Posterize": [4.0, 6.0, 8.0],
        "Solarize": [255.0, 198.0, 100.0, 0.0], "AutoContrast": [0.0], "Equalize": [0.0], "Invert": [0.0]}
TOL = {"Brightness": 1, "Sharpness": 2, "AutoContrast": 1, "Color": 2, "Contrast": 2}
GEOMETRIC = {"ShearX", "ShearY", "Rotate"}

torch.manual_seed(0)
noise = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
# smooth images with a narrow range (AutoContrast and Equalize have work to do)
yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
smooth = torch.stack([torch.stack([60 + 40 * torch.sin(xx / (3 + k) + c) * torch.cos(yy / (4 + c)) for c in range(3)])
                      for k in range(4)]).round().clamp(0, 255).to(torch.uint8)
images = torch.cat([noise, smooth])

ops, mags = [], []
for i, name in enumerate(OPS):
    for m in MAGS[name]:
        ops.append(i)
        mags.append(m)
d = tempfile.mkdtemp()
torch.save((images, torch.tensor(ops), torch.tensor(mags, dtype=torch.float32)), os.path.join(d, "in.pt"))
subprocess.run([sys.argv[1], os.path.join(d, "in.pt"), os.path.join(d, "out.pt")], check=True)
kiln_out = torch.load(os.path.join(d, "out.pt"))

failed = 0
for k, (i, m) in enumerate(zip(ops, mags)):
    name = OPS[i]
    ref = torch.stack([_apply_op(img, name, m, InterpolationMode.NEAREST, [128.0, 128.0, 128.0]) for img in images]).float()
    got = kiln_out[k]
    diff = (got - ref).abs()
    same = (diff < 0.5).float().mean().item()
    if name in GEOMETRIC:
        ok = same >= 0.99
        detail = f"{100 * same:.2f}% of pixels identical"
    else:
        tol = TOL.get(name, 0)
        ok = diff.max().item() <= tol + 1e-4
        detail = f"max |diff| {diff.max().item():.3f} (allowed {tol}), {100 * same:.2f}% identical"
    print(f"{'ok  ' if ok else 'FAIL'} {name:12s} {m:+8.3f}: {detail}")
    failed += not ok
print(f"{len(ops) - failed}/{len(ops)} operation/magnitude pairs match torchvision")
sys.exit(1 if failed else 0)
