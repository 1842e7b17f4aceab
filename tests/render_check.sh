#!/usr/bin/env bash
# Opens a report.html in headless Chromium and checks that every chart was drawn and no
# script error happened: the page marks <body data-charts=N data-charts-expected=M
# data-errors=K> after drawing; Chromium's console log must hold no "Uncaught" error.
# Usage: render_check.sh REPORT.html MIN_CHARTS   (exit 0 = rendered, 1 = not)
set -u
page=$1; min=$2
ud=$(mktemp -d); trap 'rm -rf "$ud"' EXIT
timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$ud" --enable-logging=stderr --v=0 \
  --virtual-time-budget=5000 --dump-dom "file://$(realpath "$page")" >"$ud/dom.html" 2>"$ud/log" || {
  echo "render_check: chromium failed on $page"; tail -5 "$ud/log"; exit 1; }
body=$(grep -o '<body[^>]*>' "$ud/dom.html" | head -1)
charts=$(echo "$body" | sed -nE 's/.*data-charts="([0-9]+)".*/\1/p')
expected=$(echo "$body" | sed -nE 's/.*data-charts-expected="([0-9]+)".*/\1/p')
errors=$(echo "$body" | sed -nE 's/.*data-errors="([0-9]+)".*/\1/p')
paths=$(grep -o '<path[^>]*class="series"' "$ud/dom.html" | wc -l)
console=$(grep -E 'CONSOLE|Uncaught' "$ud/log" | grep -ciE 'error|uncaught' || true)
echo "render_check: $page: $body; $paths series paths; $console console errors"
[ -n "$charts" ] && [ "$charts" = "$expected" ] && [ "$charts" -ge "$min" ] && [ "${errors:-1}" = 0 ] &&
  [ "$paths" -ge "$charts" ] && [ "$console" = 0 ] || { grep -E 'CONSOLE|Uncaught' "$ud/log" | head -5; exit 1; }
