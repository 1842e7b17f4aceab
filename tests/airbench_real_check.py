#!/usr/bin/env python3
"""bench/airbench_real.py against what the real airbench scripts print and how they behave on
the GPU machine (issue #19; the window of 2026-12-04 lost every real-peer figure to the two
faults pinned here):

1. The parser on the recorded output of the real legacy/airbench94.py on the H200 (random data,
   one run: bench/results/airbench94-real-random-data-h200-2026-12-04.log): the scripts print a
   run's id on its first row only, so the final row, the one with tta_val_acc, has an empty run
   cell. Before the fix the parser found 0 runs in every real table.
2. `sample` prints as the scripts' main blocks do (a warm-up run only where the script has one,
   each run's id once), and its tables parse to the stand-in values.
3. The time figure of a script without a warm-up run leaves run 0 out (its accuracy stays in).
4. The deadline holds while the script prints nothing (torch.compile's minutes of silence) and
   while a child it started holds the pipe: before the fix the limit was checked only when a line
   arrived, and airbench96_faster ran past the call's end. A finished script's leftover children
   do not hold the run either, and SIGTERM (the campaign's hard stop) kills the script's group.
5. A script that closes its output before it exits has finished, not been cut: the window of
   2026-12-04 (second) marked both finished real scripts "cut at the limit" so.

  python3 tests/airbench_real_check.py REPO_DIR
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

repo = sys.argv[1]
bench = os.path.join(repo, "bench")
sys.path.insert(0, bench)
import airbench_real  # noqa: E402

peers = os.path.join(repo, "..", "shared", "peers", "airbench")
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


# 1. The recorded table of the real script.
recorded = open(os.path.join(bench, "results", "airbench94-real-random-data-h200-2026-12-04.log")).read()
check(airbench_real.parse_table(recorded) == [(0, 0.0969, 7.0311)],
      f"the real airbench94 table parses to {airbench_real.parse_table(recorded)}, not [(0, 0.0969, 7.0311)]")
# the same table with three runs, ids on first rows only, and a warm-up run before them
body = [l for l in recorded.splitlines() if l.startswith("|") and "tta_val_acc" not in l]
three = [recorded.splitlines()[1]]
for run, acc in (("warmup", "0.5000"), ("0", "0.9400"), ("1", "0.9410"), ("2", "0.9420")):
    for i, l in enumerate(body):
        cells = l.split("|")
        if i == 0:
            cells[1] = run.rjust(len(cells[1]) - 2) + "  "
        if "eval" in l:
            cells[6] = acc.rjust(len(cells[6]) - 2) + "  "
        three.append("|".join(cells))
rows = airbench_real.parse_table("\n".join(three))
check([r[:2] for r in rows] == [(0, 0.94), (1, 0.941), (2, 0.942)], f"runs carried across rows: {rows}")

# The script's own "Mean:" line as a check of the parse: it agrees on the recorded table, and a
# parser that reads no runs (as before the fix) or other accuracies fails it.
check(airbench_real.mean_check(recorded, airbench_real.parse_table(recorded)) is True, "the recorded table's Mean does not check")
check(airbench_real.mean_check(recorded, []) is False, "no runs parsed passes the Mean check")
check(airbench_real.mean_check(recorded, [(0, 0.0970, 7.0)]) is False, "a misread accuracy passes the Mean check")
check(airbench_real.mean_check("| table, cut |", [(0, 0.9, 1.0)]) is None, "a cut log has a Mean to check")

# 2. sample, as each script's main block prints.
scripts = {"airbench94_muon.py": True, "airbench96_faster.py": False, "legacy/airbench94.py": False}
for script, warm in scripts.items():
    path = os.path.join(peers, script)
    if not os.path.exists(path):
        print(f"note: no {path}; sample not checked for it")
        continue
    check(airbench_real.has_warmup(open(path).read()) == warm, f"{script}: warm-up run {not warm}")
    text = subprocess.run([sys.executable, os.path.join(bench, "airbench_real.py"), "sample", "--script", path, "--runs", "3"],
                          capture_output=True, text=True, check=True).stdout
    table = [l for l in text.splitlines() if l.startswith("|") and "tta_val_acc" not in l]
    named = [l.split("|")[1].strip() for l in table if l.split("|")[1].strip()]
    check(named == (["warmup"] if warm else []) + ["0", "1", "2"], f"{script}: sample names runs {named}")
    check(len(table) == 3 * len(named), f"{script}: sample prints {len(table)} rows for {len(named)} runs")
    name = os.path.splitext(os.path.basename(script))[0]
    acc0, sec0, _ = airbench_real.PUBLISHED[name]
    got = airbench_real.parse_table(text)
    check([r[0] for r in got] == [0, 1, 2] and abs(got[1][1] - (acc0 + 0.001)) < 1e-9 and abs(got[2][2] - (sec0 + 0.02)) < 1e-9,
          f"{script}: sample parses to {got}")

# 3. No warm-up run: seconds over runs 1 onwards, accuracy over all.
with tempfile.TemporaryDirectory() as d:
    rows = [(0, 0.93, 40.0), (1, 0.94, 3.0), (2, 0.95, 5.0)]
    j = airbench_real.write_json(os.path.join(d, "a.json"), "airbench96_faster", rows, 3, True, {}, warmup=False, compiled=True)
    check(j["seconds"]["n"] == 2 and abs(j["seconds"]["mean"] - 4.0) < 1e-12, f"no warm-up: seconds {j['seconds']}")
    check(j["test_acc"]["n"] == 3 and abs(j["test_acc"]["mean"] - 0.94) < 1e-12, f"no warm-up: test_acc {j['test_acc']}")
    check("run 0" in j["clock_excludes"] and "torch.compile" in j["clock_excludes"] and not j["warmup_run"], j["clock_excludes"])
    j = airbench_real.write_json(os.path.join(d, "b.json"), "airbench94_muon", rows, 3, True, {}, warmup=True, compiled=True)
    check(j["seconds"]["n"] == 3 and j["warmup_run"], f"warm-up run: seconds {j['seconds']}")

# 4. The deadline. A stand-in script: a header and one finished run, then a child that holds the
# pipe, then silence; its pids are written where the check can see them.
HEADER = "|  run     |  epoch  |  train_loss  |  train_acc  |  val_acc  |  tta_val_acc  |  total_time_seconds  |"
ROW0 = "|       0  |   eval  |      1.0000  |     0.9000  |   0.9300  |       0.9401  |              2.5900  |"
SCRIPT = '''import os, subprocess, sys, time
print({header!r}); print({row!r}, flush=True)
child = subprocess.Popen(["sleep", "300"])  # inherits stdout, as compile workers do
open("pids", "w").write(f"{{os.getpid()}} {{child.pid}}")
{tail}
for run in range(5):
    pass
'''


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for this purpose
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except OSError:
        return False


def stand_in(d, tail, limit, term_after=None):
    work = os.path.join(d, "work")
    os.makedirs(os.path.join(work, "cifar10"), exist_ok=True)
    for f in ("train.pt", "test.pt"):  # the data is made already: no conversion
        open(os.path.join(work, "cifar10", f), "w").close()
    script = os.path.join(d, "airbench94_muon.py")
    open(script, "w").write(SCRIPT.format(header=HEADER, row=ROW0, tail=tail))
    out = os.path.join(d, "real.json")
    t0 = time.time()
    p = subprocess.Popen([sys.executable, os.path.join(bench, "airbench_real.py"), "run", "--script", script, "--runs", "5",
                          "--peers", d, "--data", d, "--work", work, "--timeout", str(limit), "--python", sys.executable,
                          "--out", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if term_after is not None:  # SIGTERM once the script has started (its pids written), then term_after s
        while not os.path.exists(os.path.join(work, "pids")) and time.time() - t0 < limit and p.poll() is None:
            time.sleep(0.2)
        time.sleep(term_after)
        p.send_signal(signal.SIGTERM)
    text = p.communicate(timeout=limit + 60)[0]
    took = time.time() - t0
    time.sleep(0.5)
    pids = [int(x) for x in open(os.path.join(work, "pids")).read().split()] if os.path.exists(os.path.join(work, "pids")) else []
    return took, json.load(open(out)), pids, text


with tempfile.TemporaryDirectory() as d:
    limit = 10  # the torch probe (import torch) comes out of it too
    took, j, pids, text = stand_in(d, "time.sleep(300)", limit)
    check(took < limit + 10, f"a silent script held the run {took:.1f} s past a {limit} s limit:\n{text}")
    check(not j["complete"] and j["runs"] == 1 and j["per_run"]["test_acc"] == [0.9401], f"cut run's JSON: {j}")
    check(len(pids) == 2 and not any(alive(p) for p in pids), f"the script or its child outlived the cut: {pids}")
with tempfile.TemporaryDirectory() as d:
    took, j, pids, text = stand_in(d, "", 60)
    check(took < 30, f"a finished script's child held the run {took:.1f} s:\n{text}")
    check(len(pids) == 2 and not any(alive(p) for p in pids), f"the finished script's child outlived it: {pids}")
    check(j["runs"] == 1 and not j["complete"], f"finished script's JSON (1 of 5 runs printed): {j}")
with tempfile.TemporaryDirectory() as d:
    took, j, pids, text = stand_in(d, "time.sleep(300)", 120, term_after=1)
    check(took < 30, f"SIGTERM did not end the run ({took:.1f} s):\n{text}")
    check(len(pids) == 2 and not any(alive(p) for p in pids), f"SIGTERM left the script's group alive: {pids}")
    check(j["runs"] == 1, f"SIGTERM: the finished run was not kept: {j}")

# 5. A script that closes its output and only then exits (a CUDA process's teardown) finished: its
# JSON is complete, not cut (the window of 2026-12-04 marked both finished real scripts "cut").
DONE = """import os, time
print({header!r})
for run in range(5):
    print({row!r}.replace("|       0  |", f"|       {{run}}  |"))
print("Mean: 0.9401    Std: 0.0000", flush=True)
os.close(1); os.close(2)
time.sleep(3)
"""
with tempfile.TemporaryDirectory() as d:
    work = os.path.join(d, "work")
    os.makedirs(os.path.join(work, "cifar10"))
    for f in ("train.pt", "test.pt"):
        open(os.path.join(work, "cifar10", f), "w").close()
    script = os.path.join(d, "airbench94_muon.py")
    open(script, "w").write(DONE.format(header=HEADER, row=ROW0))
    out = os.path.join(d, "real.json")
    text = subprocess.run([sys.executable, os.path.join(bench, "airbench_real.py"), "run", "--script", script, "--runs", "5",
                           "--peers", d, "--data", d, "--work", work, "--timeout", "60", "--python", sys.executable,
                           "--out", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120).stdout
    j = json.load(open(out))
    check(j["complete"] and j["runs"] == 5 and "(complete;" in text, f"a script slow to exit after its output was marked cut:\n{text}\n{j}")

print("FAIL" if failures else "PASS", f"({len(failures)} failures)")
sys.exit(1 if failures else 0)
