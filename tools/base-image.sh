#!/usr/bin/env bash
# Builds Python base images from Debian packages, for machines where no registry serves
# python:3.11-slim: debootstrap a minimal Debian with python3, python3-venv and binutils, apply the
# suite's updates, and import two images from it:
#   - the build image (PYTHON_IMAGE of the Dockerfile's build stage, via BUILD_IMAGE): all of it,
#     minus docs, man pages, locales and apt lists, plus a C compiler and Python's headers (gcc,
#     libc6-dev, libpython3.11-dev), which build node-dns' compiled UDP batch;
#   - the runtime image (PYTHON_IMAGE): only what a running node-dns reads — the interpreter, its
#     standard library, the shared libraries they link, TLS trust, /etc/passwd. No shell, no
#     package manager. Same Python at the same path, so a venv made in one runs in the other.
#
#   tools/base-image.sh ENGINE     ENGINE is docker or podman; prints "RUNTIME_REF BUILD_REF" last
#
# Cached: the tag carries a hash of this script and the pins in versions.env, and a tag that
# already exists is reused, so a second run costs a second. The root filesystem tarball is kept in
# the cache directory too, so a wiped image store re-imports it instead of bootstrapping again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
engine=${1:?usage: base-image.sh docker|podman}
cache=${IMAGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/node-dns/image}
mkdir -p "$cache"

key=$(cat "$0" "$here/versions.env" | sha256sum | cut -c1-12)
ref="localhost/node-dns-base:${BASE_DEBIAN_SUITE}-${key}"
build_ref="$ref-build"
tarball=$cache/base-${BASE_DEBIAN_SUITE}-${key}.tar
build_tarball=$cache/base-${BASE_DEBIAN_SUITE}-${key}-build.tar

# One bootstrap at a time per cache directory: a second caller waits and then finds the tag.
exec 9>"$cache/.base.lock"
flock 9

if "$engine" image inspect "$ref" >/dev/null 2>&1 && "$engine" image inspect "$build_ref" >/dev/null 2>&1; then
  echo "base-image: $ref and $build_ref cached" >&2
  echo "$ref $build_ref"; exit 0
fi

[ -s "$tarball" ] || [ "$(id -u)" -eq 0 ] \
  || { echo "base-image: debootstrap needs root (or build on a machine with a registry)" >&2; exit 1; }
root=$(mktemp -d "$cache/rootfs.XXXXXX")
trap 'rm -rf "$root" "$tarball.tmp" "$build_tarball.tmp"' EXIT
log=$cache/debootstrap.log
fail() { tail -20 "$log" >&2; exit 1; }

if [ ! -s "$build_tarball" ]; then
  echo "base-image: debootstrap $BASE_DEBIAN_SUITE (python3 $BASE_PYTHON_VERSION) into $root" >&2
  debootstrap --variant=minbase --include=python3,python3-venv \
    "$BASE_DEBIAN_SUITE" "$root" "$BASE_DEBIAN_MIRROR" >"$log" 2>&1 || fail
  # Security and point-release updates: debootstrap fetches only the suite as released.
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $BASE_DEBIAN_MIRROR $BASE_DEBIAN_SUITE main
deb $BASE_DEBIAN_MIRROR $BASE_DEBIAN_SUITE-updates main
deb $BASE_DEBIAN_SECURITY_MIRROR $BASE_DEBIAN_SUITE-security main
SOURCES
  chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils \
       gcc libc6-dev libpython3.11-dev \
    && apt-get clean' >>"$log" 2>&1 || fail
  have=$(chroot "$root" python3 -c 'import platform; print(platform.python_version())')
  if [ "$have" != "$BASE_PYTHON_VERSION" ]; then
    echo "base-image: $BASE_DEBIAN_SUITE ships Python $have, tools/versions.env pins $BASE_PYTHON_VERSION" >&2
    exit 1
  fi
  # What was installed, for the record.
  chroot "$root" dpkg-query -W -f='${Package}=${Version}\n' >"$cache/base-${key}.packages"
  # No image reads these; no container runs apt.
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
    "$root"/var/log/* "$root"/var/cache/debconf/*-old "$root"/tmp/* "$root"/dev/* "$root"/proc/* \
    "$root"/sys/* "$root"/run/*
  tar --numeric-owner --xattrs -C "$root" -cf "$build_tarball.tmp" .
  mv "$build_tarball.tmp" "$build_tarball"
else
  tar --numeric-owner --xattrs -C "$root" -xf "$build_tarball"
fi

if [ ! -s "$tarball" ]; then
  # The runtime root holds the interpreter, its standard library (minus tests, IDLE, ensurepip,
  # lib2to3, distutils), the shared libraries it and its extension modules link, the C/C++
  # runtime manylinux wheels expect, TLS trust, and an /etc/passwd to add a user to. No shell, no
  # package manager, no coreutils: the Dockerfile's runtime stage runs Python only.
  rt=$root.runtime
  trap 'umount "$root/usr/lib/python3.11" 2>/dev/null || true; rm -rf "$root" "$rt" "$tarball.tmp" "$build_tarball.tmp"' EXIT
  mkdir -p "$rt"/usr/bin "$rt"/usr/lib "$rt"/usr/lib64 "$rt"/etc "$rt"/tmp "$rt"/run "$rt"/proc \
    "$rt"/sys "$rt"/dev "$rt"/opt "$rt"/var/tmp "$rt"/usr/sbin
  chmod 1777 "$rt"/tmp "$rt"/var/tmp
  for link in bin lib lib64 sbin; do [ ! -L "$root/$link" ] || cp -a "$root/$link" "$rt/$link"; done
  copied=()
  copy() { # copy PATH... : each path (as seen inside the root) and what its symlinks point to
    local path
    copied+=("$@")
    for path in "$@"; do
      (cd "$root" && cp -a --parents ".$path" "$rt/")
      local real; real=$(chroot "$root" readlink -f "$path")
      [ "$real" = "$path" ] || (cd "$root" && cp -a --parents ".$real" "$rt/")
    done
  }
  copy /usr/bin/python3.11 /usr/bin/python3 \
    /etc/ssl/openssl.cnf /usr/lib/ssl/openssl.cnf /usr/lib/ssl/cert.pem /usr/lib/ssl/certs \
    /etc/ssl/certs/ca-certificates.crt /etc/os-release /etc/passwd /etc/group /etc/nsswitch.conf \
    /etc/debian_version
  (cd "$root" && cp -a --parents ./usr/lib/python3.11 "$rt/")
  rm -rf "$rt"/usr/lib/python3.11/{test,idlelib,ensurepip,lib2to3,distutils,pydoc_data,tkinter,turtledemo}
  # libpython3.11-dev's static library and build configuration: for compiling, never for running.
  rm -rf "$rt"/usr/lib/python3.11/config-3.11-*
  # The standard library as bytecode only, compiled by the same interpreter (tracebacks keep file
  # names and line numbers, not the source lines).
  mount --bind "$rt/usr/lib/python3.11" "$root/usr/lib/python3.11"
  chroot "$root" python3 -m compileall -q -b /usr/lib/python3.11 >>"$log" 2>&1 || fail
  umount "$root/usr/lib/python3.11"
  find "$rt/usr/lib/python3.11" \( -name '*.py' -o -name __pycache__ -prune \) -exec rm -rf {} +
  # Every library the interpreter and its extension modules link, plus glibc's own libraries
  # (librt, libdl, libpthread... which manylinux wheels link without bundling), libgcc_s and
  # libstdc++ (the same).
  mapfile -t libs < <(chroot "$root" sh -c 'ldd /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so' \
    | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*[^:]$/ {print $1}' | sort -u)
  mapfile -t cxx < <(chroot "$root" sh -c 'dpkg -L libc6 libgcc-s1 libstdc++6' | grep -E '/lib[^/]*\.so[.0-9]*$' | grep -v gconv)
  copy "${libs[@]}" "${cxx[@]}"
  # Which Debian packages those files come from, in the form distroless images use
  # (/var/lib/dpkg/status.d/<package>), so vulnerability scanners can see them.
  owners=(/usr/lib/python3.11/os.py /usr/lib/python3.11/asyncio/__init__.py)
  for path in "${copied[@]}"; do owners+=("$path" "${path#/usr}" "/usr${path#/usr}"); done
  mapfile -t packages < <(chroot "$root" dpkg -S "${owners[@]}" 2>/dev/null \
    | sed 's/: .*//' | tr ',' '\n' | sed 's/^ *//; s/:.*//' | sort -u)
  mkdir -p "$rt/var/lib/dpkg/status.d"
  for package in "${packages[@]}" ca-certificates; do
    chroot "$root" dpkg-query -s "$package" >"$rt/var/lib/dpkg/status.d/$package"
  done
  # The same Python in both images: a venv made in the build image runs in this one.
  tar --numeric-owner --xattrs -C "$rt" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

import_image() { # import TARBALL REF
  "$engine" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$1" "$2" >/dev/null
  echo "base-image: imported $2 ($(du -h "$1" | cut -f1) root filesystem)" >&2
}
import_image "$tarball" "$ref"
import_image "$build_tarball" "$build_ref"
echo "$ref $build_ref"
