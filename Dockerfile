# syntax=docker/dockerfile:1
# node-dns image. The build stage installs the pinned dependencies (image/requirements.lock: exact
# versions and wheel hashes) and the node-dns wheel into a virtualenv; the runtime stage copies
# only that virtualenv, so it carries no source tree, no pip, no build tools and no caches. It runs
# as a numeric non-root user and writes nothing at runtime (the chart mounts the root read-only);
# nothing is fetched at runtime.
#
#   make image                                         (tools/image.sh: picks the engine and base)
#   docker build -t node-dns .
#   podman build --isolation=chroot -t node-dns .
#
# PYTHON_IMAGE is any CPython 3.11 image with python3 on the PATH, the official one by default.
# BUILD_IMAGE may name a richer image of the same Python for the build stage: with a C compiler and
# Python's headers the wheel carries node-dns' compiled UDP batch (without them it builds anyway and
# answers with the pure-Python batch, saying so at start); with binutils, `strip` takes the debug
# symbols out of compiled extensions. tools/base-image.sh makes such an image; tools/image.sh uses
# the official non-slim image for the build stage where a registry serves it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG BUILD_IMAGE=${PYTHON_IMAGE}

# --- build: the virtualenv that runs ---------------------------------------------------------------
FROM ${BUILD_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first, in their own layer: rebuilt only when the lock changes. Pinned build tools
# live in /opt/build; /opt/node-dns gets no pip at all.
COPY image/build.lock image/requirements.lock image/
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r image/build.lock \
 && python3 -m venv --without-pip /opt/node-dns \
 && /opt/build/bin/pip --python /opt/node-dns/bin/python install \
      --require-hashes --only-binary=:all: --no-deps -r image/requirements.lock \
 && if command -v strip >/dev/null; then find /opt/node-dns -name '*.so' -exec strip --strip-unneeded {} +; fi
# Third-party code ships as bytecode only (no .py, no .pyi stubs): the Kubernetes client's
# generated models alone would be a third of the image. node-dns itself keeps its sources, so its
# tracebacks show the lines.
RUN site=$(/opt/node-dns/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
 && find "$site" -name '*.pyi' -delete \
 && /opt/node-dns/bin/python -m compileall -q -b "$site" \
 && find "$site" \( -name '*.py' -o -name __pycache__ -prune \) -exec rm -rf {} +
COPY pyproject.toml setup.py README.md ./
COPY node_dns ./node_dns
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/build/bin/pip --python /opt/node-dns/bin/python install --no-deps --no-index /wheels/node_dns-*.whl \
 && /opt/node-dns/bin/node-dns --version \
 && /opt/node-dns/bin/python -c 'from node_dns.transports import accel; c = accel.choose(); print("UDP:", c.path, c.reason)'

# --- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="node-dns" \
      org.opencontainers.image.description="Authoritative DNS for Kubernetes node areas" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/node-dns/bin:$PATH
COPY --from=build /opt/node-dns /opt/node-dns
# The user, the edge-mode interpreter (python-netbind) and a smoke test: image/runtime-setup.py,
# mounted for this step only. Python alone, so the runtime base needs no shell.
RUN --mount=type=bind,source=image/runtime-setup.py,target=/run/runtime-setup.py \
    ["python3", "/run/runtime-setup.py"]
USER 10001:10001
# DNS on an unprivileged port (the Service maps 53 to it); HTTP for /healthz, /readyz, /metrics.
EXPOSE 5353/udp 5353/tcp 8080/tcp
ENTRYPOINT ["node-dns"]
CMD ["serve"]
