#!/usr/bin/env python3
"""Opens kiln's web page (a site written by `kiln web`) in headless Chromium and checks what it
computes in WebAssembly against the native build of the same code (kiln-web-check's JSON).

  web_page.py SITE_DIR IMAGE.png NATIVE.json [--expect-label K] [--passes P] [--recipe R] [--seed S]
              [--report OUT.json]

The page runs in test mode (?test=1&image=...): it classifies IMAGE.png as a dropped picture,
trains the 1989 network for P passes, and POSTs what it got to /report on the little server
this script runs. Checks: the label is K and the native one, the logits agree to 1e-4, and the
1989 run's misses per pass agree with the native run's (to 10 of 2,007 test digits, 0.5 point).
Exit 0 = pass, 1 = fail, 77 = skipped (no chromium)."""
import argparse
import http.server
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("site")
ap.add_argument("image")
ap.add_argument("native")
ap.add_argument("--expect-label", type=int)
ap.add_argument("--passes", type=int, default=1)
ap.add_argument("--recipe", type=int, default=0)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--timeout", type=float, default=240)
ap.add_argument("--report", help="also write the page's report (its JSON, plus wall_seconds) to this file")
ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
a = ap.parse_args()
if not a.chromium:
    print("SKIPPED: chromium not installed")
    sys.exit(77)

shutil.copy(a.image, os.path.join(a.site, "known.png"))
got = {}
done = threading.Event()


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kw):
        super().__init__(*args, directory=a.site, **kw)

    def do_POST(self):
        if self.path != "/report":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        got.update(json.loads(body))
        self.send_response(204)
        self.end_headers()
        done.set()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]
url = (f"http://127.0.0.1:{port}/index.html?test=1&image=known.png"
       f"&recipe={a.recipe}&passes={a.passes}&seed={a.seed}")
profile = tempfile.mkdtemp()
log = open(os.path.join(profile, "chromium.log"), "w+")
t0 = time.time()
browser = subprocess.Popen(
    [a.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
     "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
     "--remote-debugging-port=0", url], stdout=log, stderr=log)
try:
    ok = done.wait(a.timeout)
    seconds = time.time() - t0
finally:
    browser.terminate()
    try:
        browser.wait(10)
    except subprocess.TimeoutExpired:
        browser.kill()
    server.shutdown()
if not ok:
    log.seek(0)
    print("".join(log.readlines()[-15:]))
    print(f"FAIL: the page reported nothing within {a.timeout:.0f} s ({url})")
    sys.exit(1)
shutil.rmtree(profile, ignore_errors=True)

if a.report:
    with open(a.report, "w") as f:
        json.dump(dict(got, wall_seconds=seconds), f)
native = json.load(open(a.native))
fails = []
if "error" in got:
    print(f"FAIL: the page reported an error: {got['error']}")
    sys.exit(1)
print(f"browser: {got.get('userAgent', '?')}")
label = got.get("label")
print(f"browser: the picture is '{got.get('class_name')}' (class {label}); native: class {native['label']}; "
      f"expected: {a.expect_label}; one prediction takes {got.get('predict_ms_median', float('nan')):.2f} ms in the page "
      f"(median of 51)")
if label != native["label"]:
    fails.append(f"label {label} in the browser, {native['label']} natively")
if a.expect_label is not None and label != a.expect_label:
    fails.append(f"label {label}, expected {a.expect_label}")
# Both sides print float32 values (native with %.9g, the page as JavaScript doubles): compared as
# float32, so a difference is the arithmetic's, not the printing's.
f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
dl = max(abs(f32(x) - f32(y)) for x, y in zip(got["logits"], native["logits"]))
unequal = sum(f32(x) != f32(y) for x, y in zip(got["logits"], native["logits"]))
print(f"logits: largest |browser - native| = {dl:.2e} over {len(native['logits'])} classes, {unequal} not equal to the bit")
if len(got["logits"]) != len(native["logits"]) or not dl <= 1e-4:
    fails.append(f"logits differ by {dl}")
if got["info"]["params"] != native["info"]["params"] or got["info"]["int8"] != native["info"]["int8"]:
    fails.append("model info differs")
bm, nm = got.get("metrics", []), native.get("metrics", [])
if a.passes:
    if len(bm) != a.passes or len(nm) != a.passes:
        fails.append(f"{len(bm)} passes in the browser, {len(nm)} natively, {a.passes} asked")
    for b, n in zip(bm, nm):
        same = b["test_misses"] == n["test_misses"] and b["train_misses"] == n["train_misses"]
        print(f"1989 pass {b['pass']}: browser train loss {b['train_loss']:.6f}, test error {100 * b['test_error']:.2f}% "
              f"({b['test_misses']} misses), {b['seconds']:.2f} s in WebAssembly | native {n['train_loss']:.6f}, "
              f"{100 * n['test_error']:.2f}% ({n['test_misses']}), {n['seconds']:.2f} s | "
              f"{'identical misses' if same else 'misses differ'}")
        if abs(b["test_misses"] - n["test_misses"]) > 10 or not math.isclose(b["train_loss"], n["train_loss"], rel_tol=1e-3):
            fails.append(f"pass {b['pass']} differs from the native run")
    if bm and not bm[-1]["test_error"] < 0.5:
        fails.append("the 1989 network did not learn in the browser")
print(f"page opened, classified and trained in {seconds:.1f} s (Chromium start included)")
if fails:
    print("FAIL: " + "; ".join(fails))
    sys.exit(1)
print("PASS: the page's WebAssembly agrees with the native build")
