// report.html: one self-contained page per run directory (no network: the data is inline
// JSON, the charts are drawn as SVG by a small inline script, the pictures are data: URIs).
//
// What a page shows depends on what the directory holds:
//  - a run (metrics.jsonl): loss against steps (steps.csv) and epochs, accuracy against
//    epochs, LR against steps, images/s and the leak watch against epochs, the epoch table,
//    the resolved config (config.toml), provenance.json, final.json and every *.png;
//  - a multi-run set (summary.json + run-XX/): the statistics (mean, std, 95% CI) of accuracy
//    and time, a table of the runs (linked to their own reports), test accuracy of every run
//    against epochs;
//  - an lr-find directory (lr_find.csv): loss against LR on a log axis with the suggestion.
// The page marks itself when drawn: <body data-charts="N" data-errors="K">, so that a headless
// browser's DOM dump proves the charts were drawn (tests/cli_report.sh).
#pragma once
#include <string>

namespace kiln {

// Writes dir/report.html (atomically) from the files in dir; returns its path.
std::string write_report(const std::string& dir);

// RFC 4648 base64 (for data: URIs).
std::string base64(const void* data, size_t size);

}  // namespace kiln
