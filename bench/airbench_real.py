"""Runs one of the real airbench scripts (KellerJordan/cifar10-airbench, carried unmodified in
../shared/peers/airbench) as its author runs it, and turns the table it prints into JSON that
bench/perf_table.py reads beside kiln's: the measuring stick of kiln's speed goal.

  python3 bench/airbench_real.py run --script PEERS/airbench/airbench94_muon.py --runs 10 \
      --peers PEERS --data DATA/cifar10 --work SCRATCH --out RESULTS/real-airbench94_muon.json
  python3 bench/airbench_real.py edit --script S.py --runs 10 --out SCRATCH/S.py       (no GPU)
  python3 bench/airbench_real.py sample --script S.py --runs 3 > LOG                   (no GPU)
  python3 bench/airbench_real.py parse LOG --script S.py --out J.json                   (no GPU)

`run` copies the script into a scratch directory and changes only its run count (the one
`for run in range(N)` of its main block: 200 or 25 as published), writes the train.pt/test.pt
its CifarLoader("cifar10") reads from the same CIFAR-10 binary files kiln trains on (the
peers' airbench_data.py), runs it with a time limit, and parses the table it prints: per run,
the final row's tta_val_acc and its time column (time_seconds or total_time_seconds: CUDA events
around training and the final TTA evaluation, the whitening fit included, data loading and the
warm-up run excluded, the scripts' own convention). A run cut by the time limit keeps the runs
it finished ("complete": false). The scripts run only on CUDA; on a CPU machine only `parse`
(and the scratch-copy edit, `edit`) can be rehearsed.

Only the standard library (the scripts themselves need torch and a GPU).
"""
import argparse, json, os, re, shutil, subprocess, sys, time

from kiln_stats import summary

RUN_COUNT = re.compile(r"for run in range\((\d+)\)")
# published figures, from each script's header (what the measured rows stand beside)
PUBLISHED = {"airbench94": (0.9401, 3.83, 1000), "airbench94_muon": (0.9401, 2.59, 200), "airbench95": (0.9501, 10.4, 200),
             "airbench96": (0.9603, 34.7, 400), "airbench96_faster": (0.9600, 27.3, 200)}  # accuracy, A100 seconds, n


def edit_run_count(text, runs):
    """The script with its run count set to `runs`; exactly one `for run in range(N)` must be there."""
    found = RUN_COUNT.findall(text)
    if len(found) != 1:
        raise SystemExit(f"expected one 'for run in range(N)' in the script, found {len(found)}: has the script changed?")
    return RUN_COUNT.sub(f"for run in range({runs})", text), int(found[0])


def parse_table(text):
    """Per finished run: (run, tta_val_acc, seconds) from the script's table, in run order.
    The table: a header row of |-separated column names, then one row per epoch; the scripts print
    a run's id on its first row only (`run = None # Only print the run number once`), so a row
    with an empty run cell belongs to the run last named; the last row of each run carries
    tta_val_acc. The warm-up run (id "warmup") is left out."""
    cols, last, current = None, {}, None
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("|") and line.endswith("|")):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if "tta_val_acc" in cells:
            cols, current = cells, None
            continue
        if cols is None or len(cells) != len(cols):
            continue
        row = dict(zip(cols, cells))
        if row.get("run"):
            current = row["run"]
        if not row.get("tta_val_acc") or current is None or current == "warmup":
            continue
        t = row.get("time_seconds") or row.get("total_time_seconds")
        if not t:
            continue
        try:
            last[int(current)] = (int(current), float(row["tta_val_acc"]), float(t))
        except ValueError:
            continue
    return [last[k] for k in sorted(last)]


WARMUP = re.compile(r"^[ \t]*main\(\s*['\"]warmup['\"]", re.M)


def has_warmup(text):
    """Whether the script's main block runs a warm-up first (an uncommented main("warmup", ...)):
    airbench94_muon does; legacy/airbench94.py has the line commented out and airbench96_faster.py
    none, so their run 0 carries cuDNN's autotuning and, for airbench96_faster, torch.compile."""
    return bool(WARMUP.search(text))


SCRIPT_MEAN = re.compile(r"^Mean: ([0-9.]+|nan)\s+Std: ", re.M)


def mean_check(text, rows):
    """The parsed runs against the script's own last line, `Mean: M    Std: S` (the mean of every
    run's tta_val_acc, printed to 4 decimals when all runs finished): None when the script did not
    print it (cut), else whether the parsed accuracies' mean rounds to it. Catches a parser that
    misreads the table (on 2026-12-04 it read 0 runs of every real script)."""
    found = SCRIPT_MEAN.findall(text)
    if not found:
        return None
    if not rows or found[-1] == "nan":
        return False
    return abs(sum(r[1] for r in rows) / len(rows) - float(found[-1])) <= 0.00005 + 1e-9


def write_json(path, name, rows, asked, complete, extra, warmup=True, compiled=False):
    """The JSON perf_table.py reads. `warmup`: whether the script ran a warm-up run first; when it
    did not, its run 0 carries the start-up costs (cuDNN's autotuning, torch.compile) that a
    warm-up would have taken, so the time figure is over runs 1 onwards (as the published means
    over 25 or 200 runs all but leave it out) while the accuracy is over every run."""
    timed = rows if warmup else [r for r in rows if r[0] >= 1]
    excludes = "data loading, the warm-up run (and airbench94_muon's torch.compile, done in its warm-up)" if warmup else \
        ("data loading, and run 0, whose time is not in `seconds` (the script has no warm-up run: its run 0 carries "
         "cuDNN's autotuning" + (" and torch.compile's compilation" if compiled else "") + "); its accuracy is in `test_acc`")
    out = dict(peer=f"{name}.py, the real airbench script (KellerJordan/cifar10-airbench f1c599c, unmodified but its run count)",
               recipe=name, real=True, published=("%.2f%% in %.2f s (A100, n = %d)" % (100 * PUBLISHED[name][0], PUBLISHED[name][1], PUBLISHED[name][2])
                          if name in PUBLISHED else ""), kiln_commit=os.environ.get("KILN_COMMIT", "unknown"),
               runs=len(rows), runs_asked=asked, complete=complete, warmup_run=warmup,
               test_acc=summary([r[1] for r in rows]), seconds=summary([r[2] for r in timed]),
               per_run=dict(run=[r[0] for r in rows], test_acc=[r[1] for r in rows], seconds=[r[2] for r in rows]),
               clock_includes="the script's own: CUDA events around training (the whitening fit included) and the final TTA evaluation",
               clock_excludes=excludes, compiled=compiled, **extra)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, path)
    return out


def cmd_edit(a):
    text, was = edit_run_count(open(a.script).read(), a.runs)
    with open(a.out, "w") as f:
        f.write(text)
    print(f"{os.path.basename(a.script)}: run count {was} -> {a.runs} in {a.out}")


def script_facts(text):
    """(warm-up run?, compiled?) of a script's text: what write_json states beside the figures."""
    return has_warmup(text), "torch.compile" in text


def cmd_sample(a):
    """What the script prints for `runs` runs, made by the script's own table functions
    (print_columns, print_training_details and logging_columns_list, taken out of it with ast)
    with stand-in values, as its main block calls them: a warm-up run first only when the script
    runs one, and each run's id on its first row only (the scripts' `run = None`). The
    rehearsal's input to `parse`, since the scripts run only on CUDA."""
    import ast
    src = open(a.script).read()
    keep = [n for n in ast.parse(src).body
            if (isinstance(n, ast.FunctionDef) and n.name in ("print_columns", "print_training_details"))
            or (isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "logging_columns_list" for t in n.targets))]
    ns = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), a.script, "exec"), ns)
    ns["print_columns"](ns["logging_columns_list"], is_head=True)
    name = os.path.splitext(os.path.basename(a.script))[0]
    acc0, sec0, _ = PUBLISHED.get(name, (0.94, 2.5, 0))  # stand-ins near the published figures
    for run in (["warmup"] if has_warmup(src) else []) + list(range(a.runs)):
        i = 0 if run == "warmup" else run
        shown = run
        for epoch in range(2):
            ns["print_training_details"](dict(run=shown, epoch=epoch, train_loss=1.5 - 0.1 * epoch, train_acc=0.5 + 0.1 * epoch,
                                              val_acc=0.6, time_seconds=1.0 + epoch, total_time_seconds=1.0 + epoch), False)
            shown = None
        t = sec0 + 0.01 * i
        ns["print_training_details"](dict(run=None, epoch="eval", train_acc=0.7, val_acc=0.93, tta_val_acc=acc0 + 0.001 * (i % 3),
                                          time_seconds=t, total_time_seconds=t), True)
    accs = [acc0 + 0.001 * (i % 3) for i in range(a.runs)]  # the main block's last line
    mean = sum(accs) / len(accs)
    std = (sum((v - mean) ** 2 for v in accs) / (len(accs) - 1)) ** 0.5 if len(accs) > 1 else float("nan")
    print("Mean: %.4f    Std: %.4f" % (mean, std))


def cmd_parse(a):
    name = os.path.splitext(os.path.basename(a.script))[0]
    rows = parse_table(open(a.log, errors="replace").read())
    extra = dict(device=a.device)
    if a.rehearsal:
        extra["rehearsal"] = "not a measurement: the table was made by the script's print functions with stand-in values"
    warmup, compiled = script_facts(open(a.script).read()) if os.path.exists(a.script) else (True, False)
    agrees = mean_check(open(a.log, errors="replace").read(), rows)
    extra["mean_check"] = {None: "the log has no Mean line", True: "the parsed runs' mean is the script's printed Mean",
                           False: "FAILED: the parsed runs' mean is not the script's printed Mean"}[agrees]
    out = write_json(a.out, name, rows, a.runs or len(rows), a.runs is None or len(rows) >= a.runs, extra, warmup, compiled)
    print(f"{name}: {out['runs']} runs, accuracy {100 * out['test_acc']['mean']:.2f}%, time {out['seconds']['mean']:.3f} s")


def cmd_run(a):
    """The scratch copy, the data, the run: everything within `a.timeout` seconds of the start.
    The script runs in its own process group; at the deadline (a timer, not the next printed
    line: torch.compile prints nothing for minutes) or on SIGTERM/SIGINT the whole group is
    killed (the compile workers too), and the runs finished so far are kept."""
    import signal, threading
    start = time.time()
    name = os.path.splitext(os.path.basename(a.script))[0]
    os.makedirs(a.work, exist_ok=True)
    text, was = edit_run_count(open(a.script).read(), a.runs)
    warmup, compiled = script_facts(text)
    script = os.path.join(a.work, os.path.basename(a.script))
    with open(script, "w") as f:
        f.write(text)
    log_path = a.out[:-5] + ".log" if a.out.endswith(".json") else a.out + ".log"
    facts = dict(warmup=warmup, compiled=compiled)
    extra = dict(torch_version="?", device="?")
    cached = os.path.join(a.work, "cifar10")
    try:
        if not (os.path.exists(os.path.join(cached, "train.pt")) and os.path.exists(os.path.join(cached, "test.pt"))):
            subprocess.run([a.python, os.path.join(a.peers, "airbench_data.py"), a.data, cached], check=True,
                           timeout=max(1.0, a.timeout - (time.time() - start)))
        info = subprocess.run([a.python, "-c", "import torch; print(torch.__version__); print(torch.version.cuda); "
                               "print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"],
                              capture_output=True, text=True, timeout=60).stdout.split("\n")
        extra = dict(torch_version=info[0], cuda_version=info[1], device=info[2])
    except subprocess.TimeoutExpired:
        write_json(a.out, name, [], a.runs, False, extra, **facts)
        print(f"{name}: the data conversion or the torch probe passed the {a.timeout} s limit")
        return 1
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    left = a.timeout - (time.time() - start)
    print(f"{name}: {a.runs} runs (published script: {was}), {left:.0f} s of the {a.timeout} s limit left, log {log_path}", flush=True)
    cut = threading.Event()
    with open(log_path, "w") as log:
        p = subprocess.Popen([a.python, os.path.basename(script)], cwd=a.work, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)

        def kill_group(*_):
            cut.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        def reap():  # the script done, what it left holding the pipe (compile workers) goes too
            p.wait()
            time.sleep(2)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(max(0.0, left), kill_group)
        timer.start()
        threading.Thread(target=reap, daemon=True).start()
        old = {s: signal.signal(s, lambda *_: kill_group()) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for line in p.stdout:  # ends when the group is killed: no process holds the pipe then
                log.write(line)
                log.flush()
                if line.strip().startswith("|") and "eval" in line:  # a run just finished: keep it
                    write_json(a.out, name, parse_table(open(log_path).read()), a.runs, False, dict(extra), **facts)
        finally:
            # The pipe's end is not the script's: a CUDA process closes its output and then takes
            # its time to exit (the H200 window of 2026-12-04 marked two finished scripts "cut" so).
            # The timer still bounds the wait; the script is cut only when the timer fires.
            rc = p.wait()
            timer.cancel()
            for s, h in old.items():
                signal.signal(s, h)
    complete = not cut.is_set() and rc == 0
    text = open(log_path, errors="replace").read()
    rows = parse_table(text)
    agrees = mean_check(text, rows)
    extra["mean_check"] = {None: "the script printed no Mean (cut before its end)", True: "the parsed runs' mean is the script's printed Mean",
                           False: "FAILED: the parsed runs' mean is not the script's printed Mean"}[agrees]
    if agrees is False:
        print(f"{name}: the parsed table disagrees with the script's own 'Mean:' line: the parser misreads it (log {log_path})")
        complete = False
    out = write_json(a.out, name, rows, a.runs, complete and len(rows) >= a.runs, extra, **facts)
    print(f"{name}: {out['runs']} of {a.runs} runs, accuracy {100 * out['test_acc']['mean']:.2f}%, "
          f"time {out['seconds']['mean']:.3f} ± {out['seconds']['std']:.3f} s "
          f"({'complete' if out['complete'] else 'cut at the limit' if cut.is_set() else f'exit {rc}'}; {time.time() - start:.0f} s)")
    return 0 if rows else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--script", required=True)
    r.add_argument("--runs", type=int, required=True)
    r.add_argument("--peers", required=True, help="the folder holding airbench_data.py")
    r.add_argument("--data", required=True, help="the CIFAR-10 binary files' folder")
    r.add_argument("--work", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--timeout", type=float, default=600)
    r.add_argument("--python", default=sys.executable)
    e = sub.add_parser("edit")
    e.add_argument("--script", required=True)
    e.add_argument("--runs", type=int, required=True)
    e.add_argument("--out", required=True)
    p = sub.add_parser("parse")
    p.add_argument("log")
    p.add_argument("--script", required=True)
    p.add_argument("--runs", type=int)
    p.add_argument("--device", default="?")
    p.add_argument("--rehearsal", action="store_true")
    p.add_argument("--out", required=True)
    sa = sub.add_parser("sample")
    sa.add_argument("--script", required=True)
    sa.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    sys.exit({"run": cmd_run, "edit": cmd_edit, "parse": cmd_parse, "sample": cmd_sample}[a.cmd](a) or 0)


if __name__ == "__main__":
    main()
