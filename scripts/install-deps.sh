#!/usr/bin/env bash
# Installs everything kiln needs, idempotently: Debian packages and LibTorch
# (the one inside PyTorch 2.11.0 from PyPI) in a virtual environment.
#   KILN_VENV   where the venv lives (default: <repo>/.venv)
#   KILN_MINIMAL=1  skip the packages only tests/downloads need (curl, archive, gtest)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${KILN_VENV:-$here/.venv}
torch_version=2.11.0

pkgs=(cmake ninja-build g++ make python3-venv pkg-config zlib1g-dev libcli11-dev libtomlplusplus-dev
      nlohmann-json3-dev libstb-dev libgloo-dev dataset-fashion-mnist)
[ "${KILN_MINIMAL:-0}" = 1 ] || pkgs+=(libcurl4-openssl-dev libarchive-dev libgtest-dev libbenchmark-dev ccache chromium emscripten node-acorn
                                          clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

py=${KILN_PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "install-deps: creating virtual environment $venv"
  "$py" -m venv "$venv"
fi
have=$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
if [ "$have" != "$torch_version" ]; then
  echo "install-deps: installing torch==$torch_version into $venv (LibTorch for kiln)"
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==$torch_version"
fi
# numpy: torch's Python side warns without it, and the PyTorch peer in bench/ uses it.
"$venv/bin/python" -c 'import numpy' 2>/dev/null || "$venv/bin/pip" install -q --disable-pip-version-check numpy
# tensorboard: the tests read kiln's event files back with TensorBoard's own reader.
if [ "${KILN_MINIMAL:-0}" != 1 ]; then
  "$venv/bin/python" -c 'import tensorboard' 2>/dev/null || "$venv/bin/pip" install -q --disable-pip-version-check tensorboard
  # torchvision (without its dependencies: torch is already here): tests/policy_vs_torchvision.py
  # checks kiln's augmentation operations against it.
  "$venv/bin/python" -c 'import torchvision' 2>/dev/null ||
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "torchvision==0.26.0"
  # safetensors: tests/safetensors_read.py opens kiln's exported weights with it.
  "$venv/bin/python" -c 'import safetensors' 2>/dev/null ||
    "$venv/bin/pip" install -q --disable-pip-version-check safetensors
fi
echo "install-deps: ok (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)'))"
