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
# A self-training student's two loss parts (only its runs have them).
student = {"student/labeled_loss": "student_labeled_loss", "student/pseudo_loss": "student_pseudo_loss"}
if any("student_labeled_loss" in m for m in metrics):
    for tag, key in student.items():
        got = [e.value for e in acc.Scalars(tag)] if tag in tags else []
        exp = [float(m[key]) for m in metrics]
        if len(got) != len(exp) or any(not math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-7) for g, e in zip(got, exp)):
            print("mismatch", tag, got, exp); bad += 1
    want.update(student)
elif tags & set(student):
    print("a run without a teacher has", sorted(tags & set(student))); bad += 1
# Per class: test_class_accuracy/<class> against metrics.jsonl's test_class_acc; weighted by the
# classes' test images (per_class.csv), they make up test/accuracy; the last equal per_class.csv.
import csv
per_class = list(csv.DictReader(open(os.path.join(run, "per_class.csv"))))
names, counts = [r["class"] for r in per_class], [int(r["images"]) for r in per_class]
evaluated = [m for m in metrics if "test_acc" in m]
class_checks = 0
for c, name in enumerate(names):
    tag = "test_class_accuracy/" + name
    exp = [m["test_class_acc"][c] for m in evaluated if m["test_class_acc"][c] is not None]
    got = [e.value for e in acc.Scalars(tag)] if tag in tags else []
    if len(got) != len(exp) or any(not math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-7) for g, e in zip(got, exp)):
        print("mismatch", tag, got, exp); bad += 1
    class_checks += 1
for m in evaluated:
    mix = sum((a or 0) * n for a, n in zip(m["test_class_acc"], counts)) / sum(counts)
    if not math.isclose(mix, m["test_acc"], rel_tol=0, abs_tol=1e-9):
        print("epoch", m["epoch"], "per-class accuracies weighted by their images:", mix, "but test_acc", m["test_acc"]); bad += 1
last = evaluated[-1]["test_class_acc"]
for c, r in enumerate(per_class):
    if r["accuracy"] and not math.isclose(float(r["accuracy"]), last[c], abs_tol=1e-6):
        print("per_class.csv", r["class"], r["accuracy"], "but the last epoch's", last[c]); bad += 1
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
print("checked", len(want), "tags x", len(metrics), "epochs,", class_checks, "classes' accuracies and 3 images:", "FAIL" if bad else "all equal")
sys.exit(1 if bad else 0)
