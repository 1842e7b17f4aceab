#!/usr/bin/env bash
# Installs everything kiln needs, idempotently: Debian packages and LibTorch (the one inside
# PyTorch 2.11.0 from PyPI) in a virtual environment, plus, on a machine without a CUDA toolkit,
# NVIDIA's toolkit pieces from PyPI that torch's CMake package needs to configure (docs/install.md).
# Every step says what it installs and how big it is; what is already there is reused.
#   KILN_VENV       where the venv lives (default: <repo>/.venv)
#   KILN_MINIMAL=1  skip the packages only tests, downloads and ONNX export need (curl, archive, onnx, gtest, ...;
#                   time and xz-utils: bench/cpu_vs_peer.sh's /usr/bin/time, the GPU staging's xz)
#   KILN_PYTHON     the interpreter that makes the venv (default: python3)
#   --packages      the distribution's packages only (e.g. as root, before a user makes the venv)
# Debian 12, Debian 13 and Ubuntu 24.04 (docs/install.md); tests/install_deps_check.sh runs the
# package logic against stand-ins for dpkg-query, apt-cache and apt-get (KILN_APT_LISTS: where it
# says apt's lists are).
set -euo pipefail
packages_only=0
case ${1:-} in
  --packages) packages_only=1;;
  "") ;;
  *) echo "usage: $0 [--packages]"; exit 2;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${KILN_VENV:-$here/.venv}
torch_version=2.11.0
say() { echo "install-deps: $*"; }

# ---- Debian packages -----------------------------------------------------------------------
pkgs=(cmake ninja-build g++ make python3-venv pkg-config zlib1g-dev libcli11-dev libtomlplusplus-dev
      nlohmann-json3-dev libstb-dev libwebp-dev libheif-dev libgloo-dev dataset-fashion-mnist)
[ "${KILN_MINIMAL:-0}" = 1 ] || pkgs+=(libcurl4-openssl-dev libarchive-dev libonnx-dev libprotobuf-dev libgtest-dev libbenchmark-dev
                                          ccache chromium emscripten node-acorn clang time xz-utils)
# clang's sanitizer and libFuzzer runtime is packaged under clang's major version: libclang-rt-14-dev
# on Debian 12, -19- on Debian 13, -18- on Ubuntu 24.04. The version is the installed clang's, else
# the one the distribution's `clang` package depends on (known once apt's lists are there).
clang_rt() {
  local v
  v=$(clang --version 2>/dev/null | sed -n '1s/.*clang version \([0-9][0-9]*\)\..*/\1/p' || true)
  [ -n "$v" ] || v=$(apt-cache depends clang 2>/dev/null | sed -n 's/^ *Depends: clang-\([0-9][0-9]*\)$/\1/p' | sed -n 1p || true)
  [ -z "$v" ] || echo "libclang-rt-$v-dev"
}
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
available() { local c; c=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p'); [ -n "$c" ] && [ "$c" != "(none)" ]; }
# What does without a package that only some tests or tools need (empty: kiln needs it).
optional() {
  case $1 in
    chromium) echo "the tests that render report.html and the web page in it skip";;
    emscripten|node-acorn) echo "the web page's kiln.js is not built; its tests skip";;
    libclang-rt-*) echo "make fuzz and make sanitize need it";;
  esac
}
# Leaves out of missing[] the optional packages this system's package lists do not have (Ubuntu
# 24.04 has chromium only as a snap), saying what does without each; with `final`, a package kiln
# needs that the lists lack stops here, naming it.
drop_unavailable() {
  local keep=() p
  for p in "${missing[@]}"; do
    if available "$p"; then
      keep+=("$p")
    elif [ -n "$(optional "$p")" ]; then
      say "this system has no '$p' package: left out ($(optional "$p"))"
    elif [ "$1" = final ]; then
      say "this system's package lists have no '$p', which kiln needs (apt-cache policy $p; kiln is tested on Debian 12 and 13, and Ubuntu 24.04)"
      exit 1
    else
      keep+=("$p")
    fi
  done
  missing=(${keep[@]+"${keep[@]}"})
}
rt=
if [ "${KILN_MINIMAL:-0}" != 1 ]; then
  rt=$(clang_rt)
  [ -z "$rt" ] || pkgs+=("$rt")
fi
# libheif's HEVC and AV1 decoders, where the distribution packages them apart from libheif (Debian
# 13, Ubuntu 24.04: Ubuntu's libheif1 brings an AV1 one and no HEVC one; Debian 12 builds them in).
heif_plugins=(libheif-plugin-libde265 libheif-plugin-dav1d)
add_heif_plugins() {
  local p
  for p in "${heif_plugins[@]}"; do
    case " ${pkgs[*]} " in *" $p "*) continue;; esac
    if available "$p"; then pkgs+=("$p"); installed "$p" || missing+=("$p"); fi
  done
}

missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
add_heif_plugins   # known where apt's lists are there; else again once they are fetched
# With apt's lists already fetched, an optional package they lack is left out without fetching
# them again (each run would otherwise update them for it).
if compgen -G "${KILN_APT_LISTS:-/var/lib/apt/lists}/*_Packages" > /dev/null && [ ${#missing[@]} -gt 0 ]; then drop_unavailable first; fi
rt_unknown=0
[ "${KILN_MINIMAL:-0}" = 1 ] || [ -n "$rt" ] || rt_unknown=1
if [ ${#missing[@]} -gt 0 ] || [ $rt_unknown = 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    say "these packages are missing, and this user is neither root nor has sudo:"
    [ $rt_unknown = 0 ] || missing+=("libclang-rt-N-dev")
    echo "  ${missing[*]}"
    [ $rt_unknown = 0 ] || echo "(N: the major version of the clang that 'apt-get install clang' installs, as in 'clang --version')"
    echo "Run as root:"
    echo "  apt-get update && apt-get install -y ${missing[*]}"
    echo "then run $0 again (it installs the rest, the Python side, without root)."
    exit 1
  fi
  say "updating apt's package lists"
  log=$(mktemp)
  if ! "${sudo[@]}" apt-get update -qq >"$log" 2>&1; then
    say "apt-get update failed:"; sed 's/^/  /' "$log" | tail -n 5; rm -f "$log"; exit 1
  fi
  rm -f "$log"
  if [ $rt_unknown = 1 ]; then
    rt=$(clang_rt)
    [ -n "$rt" ] || { say "apt has no 'clang' package that names its version (apt-cache depends clang): install clang and its libclang-rt-N-dev by hand"; exit 1; }
    installed "$rt" || missing+=("$rt")
  fi
  add_heif_plugins
  drop_unavailable final
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing packages: ${missing[*]}"
  log=$(mktemp)
  # What apt will fetch (the packages and their dependencies), before it fetches it.
  mib=$(apt-get install --print-uris -qq "${missing[@]}" 2>/dev/null | awk '{s += $3} END {printf "%.0f", s / 1048576}')
  say "  ${mib:-?} MiB to download from the package archive"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$log" 2>&1; then
    say "apt-get install failed for: ${missing[*]}:"; grep -E "^E:|rror" "$log" | tail -n 5 | sed 's/^/  /'; rm -f "$log"; exit 1
  fi
  rm -f "$log"
fi
[ $packages_only = 0 ] || { say "ok (the distribution's packages)"; exit 0; }

# ---- the virtual environment and LibTorch ----------------------------------------------------
py=${KILN_PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  say "creating virtual environment $venv"
  "$py" -m venv "$venv" || { say "'$py -m venv $venv' failed (Debian: apt-get install python3-venv)"; exit 1; }
fi
# pip_install ARGS...: pip install into the venv, saying what and how much disk it took; on a
# failure, which packages and pip's own last words.
pip_install() {
  local before after log
  before=$(du -sm "$venv" | cut -f1)
  say "installing into $venv: $*"
  log=$(mktemp)
  if ! "$venv/bin/pip" install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    say "pip could not install $*:"; tail -n 5 "$log" | sed 's/^/  /'; rm -f "$log"; exit 1
  fi
  rm -f "$log"
  after=$(du -sm "$venv" | cut -f1)
  say "  done: $((after - before)) MiB on disk"
}
has() { "$venv/bin/python" -c "import $1" 2>/dev/null; }

have=$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
# torch 2.11.0 from PyPI is its CUDA 13.0 build: ~0.9 GB of wheels (torch and NVIDIA's CUDA
# libraries), ~4.8 GB on disk. kiln uses only its LibTorch.
[ "$have" = "$torch_version" ] || pip_install "torch==$torch_version"
# numpy: torch's Python side warns without it, and the PyTorch peer in bench/ uses it.
has numpy || pip_install numpy
if [ "${KILN_MINIMAL:-0}" != 1 ]; then
  # tensorboard: the tests read kiln's event files back with TensorBoard's own reader.
  has tensorboard || pip_install tensorboard
  # torchvision (without its dependencies: torch is already here): tests/policy_vs_torchvision.py
  # checks kiln's augmentation operations against it.
  has torchvision || pip_install --no-deps "torchvision==0.26.0"
  # safetensors: tests/safetensors_read.py opens kiln's exported weights with it.
  has safetensors || pip_install safetensors
  # onnx and onnxruntime: tests/onnx_check.py checks kiln's ONNX exports with ONNX's checker and
  # runs them with ONNX Runtime (the versions they were checked with).
  has onnx || pip_install onnx==1.23.2
  has onnxruntime || pip_install onnxruntime==1.32.0
fi

# ---- a CUDA toolkit for torch's CMake package, where none is installed -------------------------
# torch's Caffe2Config.cmake stops with "Your installed Caffe2 version uses CUDA but I cannot find
# the CUDA libraries" when it finds no toolkit, even on a machine without a GPU. NVIDIA publishes
# the toolkit's pieces on PyPI; the 13.0 ones (torch's CUDA) go beside torch's own CUDA libraries
# in site-packages/nvidia/cu13, and cmake/torch_cuda_toolkit.cmake points CMake there: nvcc and
# its crt headers, CCCL's headers, nvvm (cicc: CMake compiles a test program with nvcc). ~98 MiB
# to download, ~270 MiB on disk. CUDA code compiled this way is as CI's; it never runs here.
toolkit_installed() {
  nvcc --version >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] ||
    { [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; }
}
torch_cuda=$("$venv/bin/python" -c 'import torch; print(torch.version.cuda or "")')
if [ -n "$torch_cuda" ] && ! toolkit_installed; then
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cu=$site/nvidia/cu13
  if [ ! -x "$cu/bin/nvcc" ] || [ ! -x "$cu/nvvm/bin/cicc" ] || [ ! -d "$cu/include/crt" ] || [ ! -d "$cu/include/cccl" ]; then
    say "no CUDA toolkit on this machine: installing NVIDIA's CUDA 13.0 compiler wheels for torch's CMake package (~98 MiB download)"
    pip_install --no-deps nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85 nvidia-nvvm==13.0.88
  fi
  # The wheels ship versioned libraries only (libcudart.so.13); CMake's CUDA search wants the
  # plain names, and nvcc's own profile looks in lib64.
  (cd "$cu/lib" && for f in lib*.so.*; do b=${f%%.so.*}.so; [ -e "$b" ] || ln -s "$f" "$b"; done)
  [ -e "$cu/lib64" ] || ln -s lib "$cu/lib64"
  say "CUDA toolkit for CMake: NVIDIA's wheels in $cu (no toolkit installed here)"
fi
say "ok (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)'), venv $(du -sm "$venv" | cut -f1) MiB)"
