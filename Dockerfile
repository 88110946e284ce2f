# syntax=docker/dockerfile:1
# node-dns image: the wheel is built in one stage and installed into a virtualenv in the next, so the
# runtime image carries no source tree, no build tools and no caches. It runs as a numeric non-root
# user and writes nothing at runtime (the chart mounts the root filesystem read-only).
#
#   docker build -t node-dns .        (or: podman build --isolation=chroot -t node-dns .)

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: one wheel for node-dns and one for each dependency -----------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY node_dns ./node_dns
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="node-dns" \
      org.opencontainers.image.description="Authoritative DNS for Kubernetes node areas" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/node-dns/bin:$PATH
# Install from the build stage's wheels only (no index): what was built is what runs. The wheels
# are bind-mounted, not copied, so they never land in a layer. pip byte-compiles on install, so
# nothing needs writing at runtime.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/node-dns \
 && /opt/node-dns/bin/pip install --no-cache-dir --no-index --find-links=/wheels /wheels/node_dns-*.whl \
 && groupadd --system --gid 10001 node-dns \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin node-dns \
 && node-dns --version
USER 10001:10001
# DNS on an unprivileged port (the Service maps 53 to it); HTTP for /healthz, /readyz, /metrics.
EXPOSE 5353/udp 5353/tcp 8080/tcp
ENTRYPOINT ["node-dns"]
CMD ["serve"]
