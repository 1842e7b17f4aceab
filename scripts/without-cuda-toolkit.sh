#!/usr/bin/env bash
# Runs a command as it would run on a machine without the CUDA toolkit (issue #21): in a private
# mount namespace (unshare -m, root), every /usr/local/cuda* directory is covered by an empty
# tmpfs, every PATH directory that holds CUDA tools (nvcc, ptxas, ...) is replaced by a view
# without them, and the CUDA variables (CUDA_HOME, CUDA_PATH, CUDACXX, LIBRARY_PATH into CUDA)
# are dropped. Nothing outside the command sees a change. If the namespace cannot be made, it
# fails (CI must not silently skip the check).
# Usage: scripts/without-cuda-toolkit.sh COMMAND [ARGS...]
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]"; exit 2; }
if [ "${KILN_NO_CUDA_NS:-}" != 1 ]; then
  exec unshare -m env KILN_NO_CUDA_NS=1 bash "$0" "$@" ||
    { echo "without-cuda-toolkit: unshare -m failed (it needs root or CAP_SYS_ADMIN)"; exit 1; }
fi
fail() { echo "without-cuda-toolkit: $*"; exit 1; }
mount --make-rprivate / || fail "cannot make the mounts private"
for d in /usr/local/cuda*; do
  [ -d "$d" ] && [ ! -L "$d" ] && { mount -t tmpfs -o size=1m,mode=755 none "$d" || fail "cannot hide $d"; }
done
tools=(nvcc ptxas nvlink fatbinary cudafe++ bin2c cicc cuobjdump nvdisasm __nvcc_device_query)
keep=$(mktemp -d /tmp/kiln-no-cuda-XXXXXX)
i=0
IFS=: read -ra dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  has=0; for t in "${tools[@]}"; do [ -e "$dir/$t" ] && has=1; done
  [ $has = 1 ] || continue
  # The directory as it was, kept aside; in its place a tmpfs of links to everything but the CUDA tools.
  i=$((i + 1)); mkdir -p "$keep/$i"
  mount --bind "$dir" "$keep/$i" || fail "cannot keep $dir aside"
  mount -t tmpfs -o mode=755 none "$dir" || fail "cannot cover $dir"
  for f in "$keep/$i"/* "$keep/$i"/.[!.]*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    n=$(basename "$f"); skip=0
    for t in "${tools[@]}"; do [ "$n" = "$t" ] && skip=1; done
    [ $skip = 1 ] || ln -s "$f" "$dir/$n"
  done
done
unset CUDA_HOME CUDA_PATH CUDACXX CUDAToolkit_ROOT CUDA_TOOLKIT_ROOT_DIR
[[ "${LIBRARY_PATH:-}" == *cuda* ]] && unset LIBRARY_PATH
[[ "${LD_LIBRARY_PATH:-}" == *cuda* ]] && export LD_LIBRARY_PATH=$(tr : '\n' <<<"$LD_LIBRARY_PATH" | grep -v cuda | paste -sd:)
PATH=$(tr : '\n' <<<"$PATH" | grep -v cuda | paste -sd:)
export PATH
if nvcc --version >/dev/null 2>&1 || [ -e /usr/local/cuda/bin/nvcc ]; then fail "nvcc is still reachable"; fi
exec "$@"
