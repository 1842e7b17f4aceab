"""Prints a metrics.jsonl without its wall-clock and memory fields (what may differ between two
runs that must agree), one sorted JSON object a line. Usage: strip_times.py METRICS_JSONL"""
import json, sys

for line in open(sys.argv[1]):
    m = json.loads(line)
    for k in ("epoch_seconds", "eval_seconds", "images_per_s", "train_seconds", "live_allocations", "live_bytes"):
        m.pop(k, None)
    print(json.dumps(m, sort_keys=True))
