# DockWarden's image: `make image`, or `docker build --build-arg BASE_IMAGE=<Debian-based image
# with Python 3.11+> .` The builder stage makes a virtualenv; the runtime stage gets only that
# virtualenv (no pip, no compilers, no caches, no test tools) on the same base.

# The Python of Debian bookworm (and of the wheels `make image` collects on such a machine).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
# 1: install only from build/wheels in the build context (filled from the host's own pip
# configuration by `make image`); 0: from the package index the base image's pip reaches.
ARG WHEELS_ONLY=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
COPY . /src
# pip compiles the bytecode as it installs; then the installers themselves go (the runtime has
# no use for them).
RUN set -eu; \
    if [ "$WHEELS_ONLY" = 1 ]; then set -- --no-index --find-links /src/build/wheels; fi; \
    python3 -m venv /opt/dockwarden; \
    /opt/dockwarden/bin/python -m pip install -q "$@" /src; \
    /opt/dockwarden/bin/python -m pip uninstall -q -y pip setuptools wheel 2>/dev/null || true; \
    rm -rf /opt/dockwarden/bin/pip* /opt/dockwarden/bin/activate* /opt/dockwarden/bin/Activate*

FROM ${BASE_IMAGE}
# What does not change with the code comes first, so that the engine's build cache keeps
# it from one build to the next; only the virtualenv and the labels are new each time.
ENV PATH=/opt/dockwarden/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DOCKWARDEN_DB=/data/dockwarden.db \
    DOCKWARDEN_HTTP_LISTEN=0.0.0.0:8080
# WORKDIR makes /data; a relative DOCKWARDEN_DB (as in .env.example) lands there too. As a
# VOLUME, the state outlives the container even when it was started without -v, and an
# update of DockWarden's own container (which keeps volumes) keeps it.
WORKDIR /data
VOLUME /data
EXPOSE 8080
# urllib raises on anything but a 2xx, so python exits 1 on a 503 or no answer: no curl needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; port = os.environ.get('DOCKWARDEN_HTTP_LISTEN', ':8080').rpartition(':')[2]; u.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=4)"]
ENTRYPOINT ["dockwarden"]
CMD ["run"]
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=
COPY --from=builder /opt/dockwarden /opt/dockwarden
LABEL org.opencontainers.image.title="DockWarden" \
      org.opencontainers.image.description="Chat-ops bot that checks Docker containers for newer image digests and updates them on approval" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
