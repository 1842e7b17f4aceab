#!/usr/bin/env bash
# Checks that kiln installs, builds and passes its tests on another distribution than the one at
# hand: a bare system made by debootstrap (its minimal variant, with git, python3 and CA
# certificates) in a folder, kiln cloned into it from this repository's HEAD, and a command run
# there as root with a clean environment, as on a fresh machine. CI runs on Debian 12; this is how
# Debian 13 and Ubuntu 24.04 were checked (docs/install.md).
#   sudo scripts/distro-check.sh DISTRO WORKDIR [COMMAND]
#     DISTRO   bookworm (Debian 12) | trixie (Debian 13) | noble (Ubuntu 24.04)
#     WORKDIR  where the system goes (WORKDIR/DISTRO, ~12 GiB once kiln's dependencies are in it);
#              kept between calls, so a second call reuses the system, apt's packages and the venv
#     COMMAND  run in the clone (default: CI=true bash .ci/run); its output goes to
#              WORKDIR/DISTRO-DATE-TIME.log
#   KILN_SHARED=DIR  the folder CI has beside the clone as ../shared (data/, peers/, device/), mounted
#                    read-only there (default: ../shared, when it holds data/)
#   KILN_CLONE=keep  run in the clone already there instead of a fresh clone of HEAD
# Where this machine reaches the network through a proxy with its own certificate authority, the
# CAs in /usr/local/share/ca-certificates and /etc/pip.conf are copied in, as they are the
# machine's and not kiln's. Needs root (debootstrap, chroot, mounts) and debootstrap; for noble,
# Ubuntu's archive key (Debian 12 does not package it: pass its keyring as UBUNTU_KEYRING).
set -euo pipefail
distro=${1:?usage: sudo scripts/distro-check.sh bookworm|trixie|noble WORKDIR [COMMAND]}
work=${2:?usage: sudo scripts/distro-check.sh bookworm|trixie|noble WORKDIR [COMMAND]}
cmd=${3:-CI=true bash .ci/run}
here=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "distro-check: $*"; }
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot and bind mounts)"; exit 1; }
command -v debootstrap > /dev/null || { say "needs debootstrap: apt-get install debootstrap"; exit 1; }

case $distro in
  bookworm|trixie)
    mirror=http://deb.debian.org/debian; boot=(--components=main); script=
    sources="deb $mirror $distro main
deb $mirror $distro-updates main
deb http://deb.debian.org/debian-security $distro-security main";;
  noble)
    mirror=http://archive.ubuntu.com/ubuntu; boot=(--components=main,universe)
    keyring=${UBUNTU_KEYRING:-/usr/share/keyrings/ubuntu-archive-keyring.gpg}
    [ -f "$keyring" ] || { say "no Ubuntu archive keyring at $keyring: set UBUNTU_KEYRING (the ubuntu-keyring package's ubuntu-archive-keyring.gpg)"; exit 1; }
    boot+=(--keyring="$keyring")
    # debootstrap 1.0.128 (Debian 12) has no script named noble; Ubuntu's releases share gutsy's
    script=/usr/share/debootstrap/scripts/gutsy
    sources="deb $mirror noble main universe
deb $mirror noble-updates main universe
deb $mirror noble-security main universe";;
  *) say "unknown DISTRO '$distro' (bookworm | trixie | noble)"; exit 1;;
esac

root=$work/$distro
mkdir -p "$work"
if [ ! -x "$root/usr/bin/apt-get" ]; then
  say "debootstrap $distro into $root (minbase + ca-certificates, git, python3)"
  debootstrap --variant=minbase "${boot[@]}" --include=ca-certificates,git,python3 "$distro" "$root" "$mirror" $script \
    > "$work/$distro-debootstrap.log" 2>&1 || { tail -n 20 "$work/$distro-debootstrap.log"; say "debootstrap failed"; exit 1; }
fi
echo "$sources" > "$root/etc/apt/sources.list"
rm -f "$root/etc/apt/sources.list.d/ubuntu.sources"
cp /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates > /dev/null
fi
[ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$root/etc/pip.conf"

mounts=()
cleanup() {
  local m
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R "${mounts[$i]}" 2> /dev/null || umount -l "${mounts[$i]}" 2> /dev/null || true; done
}
trap cleanup EXIT
# The system's root a mount point of its own, as on a machine: `unshare -m` (scripts/without-cuda-toolkit.sh,
# CI's build and tests) changes the propagation of / and fails where / is a plain folder.
mountpoint -q "$root" || { mount --bind "$root" "$root"; mounts+=("$root"); }
for m in proc sys dev; do
  mountpoint -q "$root/$m" || { mount --rbind "/$m" "$root/$m"; mount --make-rslave "$root/$m"; mounts+=("$root/$m"); }
done
shared=${KILN_SHARED:-$here/../shared}
mkdir -p "$root/work"
if [ -d "$shared/data" ]; then
  mkdir -p "$root/work/shared"
  mountpoint -q "$root/work/shared" || {
    mount --bind "$shared" "$root/work/shared"; mount -o remount,bind,ro "$root/work/shared"; mounts+=("$root/work/shared"); }
fi
if [ "${KILN_CLONE:-}" != keep ] || [ ! -d "$root/work/main/.git" ]; then
  rm -rf "$root/work/main"
  git clone -q "$here" "$root/work/main"
fi
say "$distro ($(. "$root/etc/os-release" && echo "$PRETTY_NAME")), kiln $(git -C "$root/work/main" rev-parse --short HEAD): $cmd"
log=$work/$distro-$(date -u +%Y%m%d-%H%M%S).log
t0=$(date +%s)
set +e
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb \
  bash -c "cd /work/main && $cmd" > "$log" 2>&1
rc=$?
set -e
# The versions that differ most between distributions, for the record (a package not installed is left out).
chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' g++ cmake ninja-build python3 libheif-dev libwebp-dev libstb-dev \
  libonnx-dev libprotobuf-dev libgtest-dev clang emscripten nodejs chromium > "$work/$distro-packages.txt" 2> /dev/null || true
say "exit $rc after $(( $(date +%s) - t0 )) s; the output: $log; package versions: $work/$distro-packages.txt"
exit $rc
