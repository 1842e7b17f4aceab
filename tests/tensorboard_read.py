"""Reads a kiln run's TensorBoard events with TensorBoard's own reader and checks every scalar
against metrics.jsonl. Usage: tensorboard_read.py RUN_DIR. Exit 77 when tensorboard is absent."""
import json, math, os, sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:
    print("SKIPPED: the tensorboard package is not installed")
    sys.exit(77)

run = sys.argv[1]
acc = EventAccumulator(run)
acc.Reload()
metrics = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
tags = set(acc.Tags()["scalars"])
want = {"train/loss": "train_loss", "train/accuracy": "train_acc", "test/accuracy": "test_acc",
        "test/loss": "test_loss", "lr": "lr", "images_per_s": "images_per_s", "epoch": "epoch"}
bad = 0
for tag, key in want.items():
    if tag not in tags:
        print("missing tag", tag); bad += 1; continue
    got = [e.value for e in acc.Scalars(tag)]
    exp = [float(m[key]) for m in metrics if key in m]
    if len(got) != len(exp) or any(not math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-7) for g, e in zip(got, exp)):
        print("mismatch", tag, got, exp); bad += 1
steps = [e.step for e in acc.Scalars("epoch")]
if steps != sorted(steps) or len(set(steps)) != len(steps):
    print("steps not increasing", steps); bad += 1
images = acc.Tags().get("images", [])
import os
for tag, png in [("data/augmented_batch", "augmented_batch.png"), ("test/predictions", "predictions.png"),
                 ("test/confusion", "confusion.png")]:
    if tag not in images:
        print("missing image", tag, "; images:", images); bad += 1
        continue
    img = acc.Images(tag)[0]
    if not img.encoded_image_string.startswith(b"\x89PNG") or img.width < 64 or img.height < 32:
        print("bad image", tag, img.width, img.height); bad += 1
    # The same picture as the run directory's PNG, byte for byte.
    if img.encoded_image_string != open(os.path.join(sys.argv[1], png), "rb").read():
        print("image", tag, "differs from", png); bad += 1
print("checked", len(want), "tags x", len(metrics), "epochs and 3 images:", "FAIL" if bad else "all equal")
sys.exit(1 if bad else 0)
