#!/usr/bin/env python3
"""A run's model classifying image files: `kiln predict` (LibTorch) against `kiln-classify` on the
model exported to kiln's format (the dependency-free runtime, one thread), on the same files.

Picks N files spread evenly over an image folder's sorted paths (FOLDER/<class>/*.png|jpg|jpeg|bmp;
the class folder's name is the label), runs the two commands alternately PASSES times, and writes
one JSON: each side's count right, how often their top classes agree, the largest difference of
their top-K probabilities, and each pass's wall time for all N files (the clock includes the
process's start: for kiln predict loading LibTorch and the checkpoint, for kiln-classify loading
the .kiln file; both decode and prepare every file, then print), and the same for the first file
alone. kiln predict computes in the run's precision (its provenance.json says which), kiln-classify
in fp32: a bf16 run's probabilities differ by bf16's rounding, not by the preparation.

  bench/classify_files.py RUN_DIR FOLDER N [OUT.json] [--passes P] [--data D] [--classify-threads T]

--data: for a checkpoint written before 2026-12-04 (no class names in it), the run's dataset root.
KILN_BIN and CLASSIFY override build/kiln and build/kiln-classify.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("folder")
ap.add_argument("n", type=int)
ap.add_argument("out", nargs="?", default=f"bench/results/classify-files-{datetime.date.today()}.json")
ap.add_argument("--passes", type=int, default=3)
ap.add_argument("--data", default="")
ap.add_argument("--classify-threads", type=int, default=1, help="kiln-classify --threads N (files at once)")
a = ap.parse_args()
kiln = os.environ.get("KILN_BIN", "build/kiln")
classify = os.environ.get("CLASSIFY", "build/kiln-classify")

paths = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(a.folder) for f in fs
               if f.lower().rsplit(".", 1)[-1] in ("png", "jpg", "jpeg", "bmp"))
if len(paths) < a.n:
    sys.exit(f"{a.folder}: {len(paths)} image files, fewer than {a.n}")
files = [paths[i * len(paths) // a.n] for i in range(a.n)]
label = {f: os.path.basename(os.path.dirname(f)) for f in files}

tmp = tempfile.mkdtemp()
model = os.path.join(tmp, "model.kiln")
data = ["--data", a.data] if a.data else []
subprocess.run([kiln, "export", "-c", f"{a.run}/checkpoint.pt", "--format", "kiln", "--out", model] + data, check=True,
               stdout=subprocess.DEVNULL)
cmds = {
    "kiln_predict": [kiln, "predict", "-c", f"{a.run}/checkpoint.pt", "--device", "cpu", "--json", os.path.join(tmp, "kiln_predict.json")] + data + files,
    "kiln_classify": [classify, model, "--threads", str(a.classify_threads), "--json", os.path.join(tmp, "kiln_classify.json")] + files,
}
seconds = {k: [] for k in cmds}
one_file = {k: [] for k in cmds}  # the first file alone: what a user classifying one photo waits
for _ in range(a.passes):
    for k, cmd in cmds.items():
        for n, into in ((len(files), seconds), (1, one_file)):
            t0 = time.perf_counter()
            subprocess.run(cmd[:len(cmd) - len(files) + n], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            into[k].append(round(time.perf_counter() - t0, 3))
    for k, cmd in cmds.items():  # the JSON of all the files last
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
res = {k: json.load(open(os.path.join(tmp, f"{k}.json"))) for k in cmds}
right = {k: sum(p["top"][0]["class"] == label[p["file"]] for p in r["predictions"]) for k, r in res.items()}
agree, worst = 0, 0.0
for p, c in zip(res["kiln_predict"]["predictions"], res["kiln_classify"]["predictions"]):
    assert p["file"] == c["file"]
    agree += p["top"][0]["class"] == c["top"][0]["class"]
    pp, cc = ({t["class"]: t["probability"] for t in x["top"]} for x in (p, c))
    worst = max([worst] + [abs(pp[k] - cc[k]) for k in set(pp) & set(cc)])


def lscpu():
    try:
        t = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        f = dict(l.split(":", 1) for l in t.splitlines() if ":" in l)
        return f"{f.get('Model name', '?').strip()}, family {f.get('CPU family', '?').strip()} model {f.get('Model', '?').strip()}"
    except OSError:
        return platform.processor()


try:  # kiln predict evaluates as the run did: its precision (kiln-classify: fp32)
    precision = json.load(open(f"{a.run}/provenance.json"))["precision"]["chosen"]
except (OSError, KeyError, ValueError):
    precision = "not recorded"
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
out = {
    "what": "kiln predict (LibTorch) and kiln-classify (the dependency-free runtime) on the same image files",
    "command": " ".join(sys.argv),
    "run": a.run,
    "folder": a.folder,
    "files": a.n,
    "input": res["kiln_classify"]["input"],
    "tta": res["kiln_classify"]["tta"],
    "right": right,
    "top_class_agrees": agree,
    "largest_probability_difference": worst,
    "seconds_per_pass_all_files": seconds,
    "least_ms_per_file": {k: round(1e3 * min(v) / a.n, 2) for k, v in seconds.items()},
    "seconds_one_file": one_file,
    "least_seconds_one_file": {k: min(v) for k, v in one_file.items()},
    "kiln_predict_precision": precision,
    "kiln_classify_precision": "fp32 (the runtime's only arithmetic)",
    "clock": "wall time of the whole process: start, loading the model (kiln predict: LibTorch and the checkpoint), "
             "decoding and preparing every file, the network with the run's TTA, printing; the two alternated",
    "threads": f"kiln predict: LibTorch's default ({os.cpu_count()} cores here, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); kiln-classify: --threads {a.classify_threads} (files at once; each image on one thread)",
    "cpu": lscpu(),
    "commit": commit,
    "date": str(datetime.date.today()),
}
with open(a.out, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(json.dumps({k: out[k] for k in ("files", "right", "top_class_agrees", "largest_probability_difference", "least_ms_per_file",
                                      "least_seconds_one_file", "kiln_predict_precision")}))
