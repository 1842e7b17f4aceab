#!/usr/bin/env bash
# scripts/install-deps.sh's package logic (--packages) on the distributions kiln is checked on
# (docs/install.md), against stand-ins for dpkg-query, apt-cache, apt-get, id and clang that
# play a machine's package state: which packages are installed, which the lists have, which clang
# `clang` depends on, whether apt's lists were fetched. What apt-get is asked to do is logged and
# checked: nothing is installed.
# usage: install_deps_check.sh REPO
set -u
repo=${1:?usage: install_deps_check.sh REPO}
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
mkdir -p "$d/bin" "$d/lists-none" "$d/lists"
touch "$d/lists/deb.example.org_dists_x_main_binary-amd64_Packages"
# STUB_INSTALLED, STUB_ABSENT: space-separated package names; STUB_CLANG: the major version the
# distribution's clang package depends on; STUB_CLANG_INSTALLED: the installed clang's version line.
cat > "$d/bin/dpkg-query" <<'EOF'
#!/bin/bash
p=${!#}; case " $STUB_INSTALLED " in *" $p "*) printf 'install ok installed';; *) exit 1;; esac
EOF
cat > "$d/bin/apt-cache" <<'EOF'
#!/bin/bash
[ -f "$STUB_DIR/updated" ] || [ -n "${STUB_LISTS:-}" ] || exit 0   # no lists: apt knows nothing
case $1 in
  policy) case " $STUB_ABSENT " in *" $2 "*) ;; *) printf '%s:\n  Installed: (none)\n  Candidate: 1.0-1\n' "$2";; esac;;
  depends) [ "$2" = clang ] && printf 'clang\n  Depends: clang-%s\n  Depends: libc6\n' "$STUB_CLANG";;
esac
EOF
cat > "$d/bin/apt-get" <<'EOF'
#!/bin/bash
case " $* " in
  *" update "*) echo update >> "$STUB_DIR/apt.log"; touch "$STUB_DIR/updated";;
  *" --print-uris "*) ;;
  *" install "*) shift 3; echo "install $*" >> "$STUB_DIR/apt.log";;
esac
EOF
printf '#!/bin/bash\necho 0\n' > "$d/bin/id"
cat > "$d/bin/clang" <<'EOF'
#!/bin/bash
[ -n "${STUB_CLANG_INSTALLED:-}" ] || exit 127; echo "$STUB_CLANG_INSTALLED"
EOF
chmod +x "$d/bin/"*
export PATH="$d/bin:$PATH" STUB_DIR=$d
fail() { echo "FAIL: $*"; echo "--- output:"; cat "$d/out"; echo "--- apt-get:"; cat "$d/apt.log" 2> /dev/null; exit 1; }
run() {  # run NAME: install-deps.sh --packages with the stand-ins' state; its exit status in $rc
  rm -f "$d/apt.log"
  bash "$repo/scripts/install-deps.sh" --packages > "$d/out" 2>&1; rc=$?
  echo "== $1: exit $rc, apt-get: $( (tr '\n' ';' < "$d/apt.log") 2> /dev/null)"
}
# 1. A fresh Ubuntu 24.04: nothing installed, apt's lists not fetched, no chromium package, clang
# 18, libheif's decoders as plugin packages. The lists are fetched once, clang's runtime is named
# by the version apt then reports, the HEVC and AV1 plugins are asked for, and chromium is left
# out with what does without it.
export STUB_INSTALLED="" STUB_ABSENT="chromium" STUB_CLANG=18 KILN_APT_LISTS=$d/lists-none
run "fresh Ubuntu 24.04"
[ $rc = 0 ] || fail "install-deps --packages failed on a fresh Ubuntu-like system"
[ "$(grep -c '^update$' "$d/apt.log")" = 1 ] || fail "apt's lists were not fetched exactly once"
inst=$(grep '^install ' "$d/apt.log")
for p in libclang-rt-18-dev time xz-utils libheif-dev libheif-plugin-libde265 libheif-plugin-dav1d emscripten; do
  case " $inst " in *" $p "*) ;; *) fail "'$p' is not among the packages installed";; esac
done
case " $inst " in *" chromium "*) fail "chromium, which the lists lack, was asked of apt-get";; esac
grep -q "no 'chromium' package: left out (the tests that render report.html and the web page in it skip)" "$d/out" || fail "no note for the chromium left out"
# every package install-deps asks for, as it asked (no copy of its list here to drift from it)
asked=${inst#install }

# 2. The same system afterwards (all but chromium installed, the lists there): no apt-get at all,
# not even an update for the package it can never have.
export STUB_INSTALLED="$asked" KILN_APT_LISTS=$d/lists STUB_LISTS=1
run "the same, installed"
[ $rc = 0 ] || fail "a second run failed"
[ ! -s "$d/apt.log" ] || fail "a second run called apt-get"
grep -q "no 'chromium' package: left out" "$d/out" || fail "no note for the chromium left out on the second run"

# 3. Debian 12: clang 14 installed; its runtime missing is named by the installed clang's version;
# libheif's decoders are built in (no plugin packages), and none is asked for.
export STUB_INSTALLED="${asked/ccache /} chromium" STUB_ABSENT="libheif-plugin-libde265 libheif-plugin-dav1d" STUB_CLANG=19 STUB_CLANG_INSTALLED="Debian clang version 14.0.6"
run "Debian 12, ccache and clang's runtime missing"
[ $rc = 0 ] || fail "install-deps --packages failed"
[ "$(grep '^install ' "$d/apt.log")" = "install ccache libclang-rt-14-dev" ] || fail "not the two missing packages, with clang 14's runtime"
unset STUB_CLANG_INSTALLED

# 4. A package kiln needs that the lists lack: stops, naming it, before installing anything.
export STUB_INSTALLED="" STUB_ABSENT="libheif-dev chromium" STUB_CLANG=19 KILN_APT_LISTS=$d/lists-none
unset STUB_LISTS; rm -f "$d/updated"
run "libheif-dev not in the lists"
[ $rc = 1 ] || fail "install-deps went on without libheif-dev"
grep -q "this system's package lists have no 'libheif-dev', which kiln needs" "$d/out" || fail "the refusal does not name libheif-dev"
grep -q '^install ' "$d/apt.log" && fail "packages were installed before the refusal"

# 5. Neither root nor sudo (a PATH of the stand-ins and the few tools the script uses, no sudo):
# the one apt-get line to run as root, clang's runtime as N while apt cannot say which.
printf '#!/bin/bash\necho 1000\n' > "$d/bin/id"
mkdir -p "$d/tools"
for t in bash sed grep mktemp cat rm dirname awk env tr tail; do ln -s "$(command -v $t)" "$d/tools/$t"; done
export STUB_ABSENT="chromium"; rm -f "$d/updated"
PATH="$d/bin:$d/tools" run "no root, no sudo, fresh"
[ $rc = 1 ] || fail "a user without root or sudo went on"
grep -q "^  apt-get update && apt-get install -y cmake .*libclang-rt-N-dev$" "$d/out" || fail "no apt-get line naming libclang-rt-N-dev"
grep -q "^(N: the major version of the clang" "$d/out" || fail "N is not explained"
[ ! -s "$d/apt.log" ] || fail "apt-get was called without root"
echo "PASS: install-deps --packages on fresh and installed Ubuntu 24.04, Debian 12, a missing required package, and no root"
