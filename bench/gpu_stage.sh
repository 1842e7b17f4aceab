#!/usr/bin/env bash
# Stages .device/ (ignored by git) for a GPU window (issue #19; docs/gpu.md), on your machine:
#   1. a device binary, built here against the same pip LibTorch (2.11.0+cu130) the GPU machine
#      has, CUDA sources on, the minimal build (no fetch, no tests, no WebAssembly, no
#      -march=native), stripped, in .device/bin/ with the non-torch shared libraries it links
#      (toml++, stb, libwebp) in .device/bin/lib/; at most 20 MB in all;
#   2. the three CIFAR-10 parts and the header-only .deb files of ../shared/device/stage.sh
#      (.device/cifar-{1,2,3}, .device/debs, .device/on-device.sh: the fallback build);
#   3. a copy of ../shared/peers (the real airbench scripts and airbench_data.py) in .device/peers
#      (../shared itself does not travel);
#   4. .device/COMMIT, the commit the binary and the results name.
# Idempotent: what is there is reused (STAGE_REBUILD=1 rebuilds the binary).
#   KILN_VENV  the venv with torch 2.11.0 (default .venv)
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
shared=$(cd "$root/../shared" && pwd)
venv=${KILN_VENV:-$root/.venv}
say() { echo "gpu_stage: $*"; }
grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
commit=$(git describe --always --dirty --abbrev=12)
mkdir -p .device/bin/lib

# 1. The device binary.
if [ ! -x .device/bin/kiln ] || [ "${STAGE_REBUILD:-0}" = 1 ] || [ "$(cat .device/COMMIT 2>/dev/null)" != "$commit" ]; then
  torch=$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  say "building the device binary (commit $commit) in .device/build"
  cmake -S . -B .device/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch" \
    -DKILN_WITH_FETCH=OFF -DKILN_WITH_ONNX=OFF -DKILN_WITH_HEIF=OFF -DKILN_BUILD_TESTS=OFF -DKILN_WASM=OFF -DKILN_NATIVE_LECUN=OFF -DKILN_CUDA=ON \
    -DKILN_GIT_COMMIT_OVERRIDE="$commit" > .device/build.log 2>&1 || { tail -20 .device/build.log; exit 1; }
  cmake --build .device/build --target kiln_cli >> .device/build.log 2>&1 || { tail -20 .device/build.log; exit 1; }
  strip -o .device/bin/kiln .device/build/kiln
fi
rm -f .device/bin/lib/*
for lib in libtomlplusplus.so.3 libstb.so.0 libwebp.so.7 libwebpdemux.so.2; do
  path=$(ldd .device/bin/kiln | awk -v l="$lib" '$1 == l { print $3 }')
  [ -n "$path" ] || { say "the binary does not link $lib: check .device/build.log"; exit 1; }
  cp -L "$path" .device/bin/lib/
done
size=$(du -sb .device/bin | cut -f1)
say "device binary: $(du -sh .device/bin | cut -f1) with its libraries ($(ls .device/bin/lib | tr '\n' ' '))"
[ "$size" -le $((20 * 1024 * 1024)) ] || { say "the binary and its libraries pass 20 MB"; exit 1; }
echo "$commit" > .device/COMMIT

# 2. The data parts and the fallback build's packages (zlib and gloo's headers as docs/gpu.md says).
say "staging CIFAR-10 in three parts and the .deb files (../shared/device/stage.sh; it reuses parts made before)"
bash "$shared/device/stage.sh" zlib1g-dev libgloo-dev libwebp-dev libwebp7 libwebpdemux2 libwebpmux3

# 3. The peers.
rm -rf .device/peers
cp -r "$shared/peers" .device/peers
say "peers: $(ls .device/peers/airbench .device/peers/airbench/legacy | tr '\n' ' ')"

# What each call carries (the run tool's carry, 64 MiB a call in all with the working tree).
for n in 1 2 3 4; do
  case $n in
    1) paths=".device/bin .device/cifar-1 .device/on-device.sh .device/debs .device/COMMIT";;
    2) paths=".device/cifar-2 .device/on-device.sh";;
    3) paths=".device/bin .device/cifar-3 .device/peers .device/on-device.sh .device/debs .device/COMMIT";;
    4) paths=".device/bin .device/peers .device/on-device.sh .device/COMMIT";;
  esac
  mib=$(du -scm $paths $(git ls-files) 2>/dev/null | tail -1 | cut -f1)
  say "call $n carries $paths (+ the working tree): ~$mib MiB of the 64"
  [ "$mib" -le 64 ] || { say "call $n carries more than 64 MiB"; exit 1; }
done
say "ok: .device/ is staged; docs/gpu.md has the calls"
