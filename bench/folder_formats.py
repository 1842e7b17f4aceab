"""Times kiln's folder loader on the same images in several formats: `kiln data info folder --folder
DIR/FORMAT --set data.load_threads=T`, rounds interleaved (format by format, thread count by thread
count, round after round), the loader's own clock ("read in": listing, headers, reading, decoding,
copying into the tensor) for train/ and test/. Writes the runs as JSON.

  python3 bench/folder_formats.py KILN DIR OUT.json --formats png jpg heic avif --threads 1 2 --rounds 3 --note "..."

DIR/FORMAT holds train/ and test/ class folders (the same images in each format)."""
import argparse
import datetime
import json
import os
import re
import subprocess

ap = argparse.ArgumentParser()
ap.add_argument("kiln")
ap.add_argument("dir")
ap.add_argument("out")
ap.add_argument("--formats", nargs="+", required=True)
ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--note", default="")
a = ap.parse_args()
line = re.compile(r"^(train|test)/: (\d+) images, .*read in ([0-9.]+) s on (\d+) thread")
runs = []
for r in range(a.rounds):
    for fmt in a.formats:
        for t in a.threads:
            out = subprocess.run([a.kiln, "data", "info", "folder", "--folder", os.path.join(a.dir, fmt), "--set", f"data.load_threads={t}"],
                                 capture_output=True, text=True, check=True)
            out = out.stdout + out.stderr
            for m in map(line.match, out.splitlines()):
                if m:
                    n, s = int(m.group(2)), float(m.group(3))
                    runs.append({"round": r, "format": fmt, "threads": t, "split": m.group(1), "images": n, "seconds": s, "images_per_s": round(n / s)})
                    print(runs[-1])
size = {f: sum(os.path.getsize(os.path.join(p, x)) for p, _, xs in os.walk(os.path.join(a.dir, f, "test")) for x in xs) for f in a.formats}
json.dump({"what": a.note, "date": datetime.date.today().isoformat(), "kiln": subprocess.run([a.kiln, "--version"], capture_output=True, text=True).stdout.strip(),
           "test_bytes": size, "runs": runs}, open(a.out, "w"), indent=1)
