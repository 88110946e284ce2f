#!/usr/bin/env bash
# Builds the node-dns image (`make image`) and reports its size and layers.
#
#   tools/image.sh [TAG]          default TAG: localhost/node-dns:<version from pyproject.toml>
#
# Engine: Docker when a Docker *engine* answers (`docker info`, not just the client), else
# podman with --isolation=chroot (builds need no daemon and no user namespaces; `podman run` is
# not needed). IMAGE_ENGINE=docker|podman overrides the choice.
#
# Base: PYTHON_IMAGE when set (e.g. python:3.11-slim-bookworm, the Dockerfile's default). Unset,
# the official image is used when the engine has it or can pull it; otherwise tools/base-image.sh
# bootstraps one from Debian packages (cached). PYTHON_IMAGE=debian forces that.
#
# The last line printed is the image reference; the report goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
wanted_base=${PYTHON_IMAGE:-}   # the caller's choice, before versions.env sets the pinned default
# shellcheck source=versions.env
source "$here/versions.env"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
tag=${1:-localhost/node-dns:$version}

engine() {
  if [ -n "${IMAGE_ENGINE:-}" ]; then echo "$IMAGE_ENGINE"; return; fi
  if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then echo docker; return; fi
  if command -v podman >/dev/null; then echo podman; return; fi
  echo "image: no container engine: start a Docker engine or install podman (tools/apt.sh)" >&2
  exit 1
}
engine=$(engine)

build_args=()
base=$wanted_base
if [ -z "$base" ]; then
  if "$engine" image inspect "$PYTHON_IMAGE" >/dev/null 2>&1 \
    || timeout 60 "$engine" pull -q "$PYTHON_IMAGE" >/dev/null 2>&1; then
    base=$PYTHON_IMAGE
  else
    echo "image: $PYTHON_IMAGE is not available from a registry; building a base from Debian packages" >&2
    base=debian
  fi
fi
if [ "$base" = debian ]; then
  bases=$("$here/base-image.sh" "$engine")   # a failure stops here (set -e), with its message
  read -r runtime_base build_base <<<"${bases##*$'\n'}"
  build_args+=(--build-arg "PYTHON_IMAGE=$runtime_base" --build-arg "BUILD_IMAGE=$build_base")
else
  build_args+=(--build-arg "PYTHON_IMAGE=$base")
  # The build stage compiles node-dns' UDP batch: the official image without "-slim" has a C
  # compiler and Python's headers. Without it the image still builds and answers UDP with the
  # pure-Python batch (the build log's "UDP:" line says which).
  full=${base/-slim/}
  if [ "$full" != "$base" ] && { "$engine" image inspect "$full" >/dev/null 2>&1 \
    || timeout 300 "$engine" pull -q "$full" >/dev/null 2>&1; }; then
    build_args+=(--build-arg "BUILD_IMAGE=$full")
  else
    echo "image: no build image with a C compiler for $base: UDP answers from the pure-Python batch" >&2
  fi
fi

engine_args=()
[ "$engine" = podman ] && engine_args+=(--isolation=chroot --layers)
# Behind a TLS-intercepting proxy the host trusts through PIP_CERT/SSL_CERT_FILE, the build's pip
# must trust the same bundle: mounted over the build image's bundle for the RUN steps only, never
# copied into a layer. (Docker's builder has no such mount; there, trust is the base image's.)
bundle=${PIP_CERT:-${SSL_CERT_FILE:-}}
if [ "$engine" = podman ] && [ -n "$bundle" ] && [ -f "$bundle" ]; then
  engine_args+=(-v "$bundle:/etc/ssl/certs/ca-certificates.crt:ro")
fi
start=$(date +%s)
echo "image: $engine build ${build_args[*]} -t $tag" >&2
"$engine" build "${engine_args[@]}" "${build_args[@]}" -t "$tag" "$repo" >&2
took=$(( $(date +%s) - start ))

size=$("$engine" image inspect --format '{{.Size}}' "$tag")
layers=$("$engine" image inspect --format '{{len .RootFS.Layers}}' "$tag")
echo "image: $tag built in ${took}s: $(( size / 1000000 )) MB, $layers layers" >&2
echo "$tag"
