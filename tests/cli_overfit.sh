#!/usr/bin/env bash
# `kiln overfit` memorises 1 and 10 real CIFAR-10 examples with every model of the zoo
# (narrow widths to stay fast on the CPU); exit 77 = skipped.
set -u
kiln=$1
if [ -z "${KILN_DATA:-}" ] || [ ! -d "$KILN_DATA/cifar10" ]; then
  echo "SKIPPED: CIFAR-10 not found (set KILN_DATA to a directory holding cifar10/)"; exit 77
fi
fail=0
for preset in cifar10-resnet9-baseline cifar10-myrtle-94; do
  for n in 1 10; do
    if out=$("$kiln" overfit --preset "$preset" --examples $n --device cpu --set 'model.widths=[16, 32, 64, 128]' 2>&1); then
      echo "ok   $preset n=$n: $(echo "$out" | tail -1)"
    else
      echo "FAIL $preset n=$n:"; echo "$out" | tail -5; fail=1
    fi
  done
done
# And it must fail loudly when memorising is impossible (a zero learning rate).
if "$kiln" overfit --preset cifar10-resnet9-baseline --examples 10 --lr 0 --max-steps 5 \
     --set 'model.widths=[8, 8, 8, 8]' >/dev/null 2>&1; then
  echo "FAIL: overfit with lr 0 claimed success"; fail=1
fi
exit $fail
