# fluxbot's container image.
#
#   docker build -t fluxbot .
#   docker run --rm -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN fluxbot serve --demo
#
# Without a configuration (mounted at $FLUXBOT_CONFIG) or --demo, `serve` exits 2.
#
# Three stages on one pinned base: `build` installs every Python package from
# requirements.lock (exact versions, each file checked against its SHA-256 with pip's
# --require-hashes, binary wheels only), then builds a wheel of the checkout with the locked
# setuptools and installs it; `helm` fetches a pinned Helm 4 client and verifies its SHA-256;
# the final image copies both in and runs as uid 10001, writing only to /tmp (and to the
# history file the configuration names), so it runs with a read-only root filesystem.
# scripts/lock.sh regenerates the lock file; scripts/check-image-steps.sh runs the build
# stage's steps without Docker, and tests/test_dockerfile.py checks the invariants below.

# The base, by tag (Python 3.11 on Debian 13). The tag moves when Docker rebuilds it; for a
# reproducible release build, pin its digest too, resolved where a registry is reachable
# (this repository's tooling had none, so no digest is committed here):
#   scripts/pin-base-image.sh      # crane, skopeo or `docker buildx imagetools` resolve it
# or pass it at build time: --build-arg PYTHON_IMAGE=python:3.11.15-slim-trixie@sha256:…
# A release pipeline runs `scripts/pin-base-image.sh --check` first: it fails while this
# argument has no digest. Every stage below is built FROM this one argument.
ARG PYTHON_IMAGE=python:3.11.15-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY bot ./bot
RUN python -m venv /opt/fluxbot \
 && /opt/fluxbot/bin/python -m pip install --require-hashes --no-deps --only-binary=:all: \
        -r requirements.lock \
 && /opt/fluxbot/bin/python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/fluxbot/bin/python -m pip install --no-deps /wheels/fluxbot-*.whl \
 && /opt/fluxbot/bin/python -m pip check \
 && /opt/fluxbot/bin/fluxbot --help >/dev/null \
 && /opt/fluxbot/bin/fluxbot status --demo >/dev/null

FROM ${PYTHON_IMAGE} AS helm
# Helm 4 for emergency HelmRelease rollbacks (`actions.helm_path`). The checksum is the one
# published next to the release archive (helm-<version>-linux-amd64.tar.gz.sha256sum); a
# build for another architecture must set HELM_ARCH and that architecture's HELM_SHA256.
ARG HELM_VERSION=v4.2.3
ARG HELM_ARCH=amd64
ARG HELM_SHA256=e9b88b4ee95b18c706839c28d3a0220e5bc470e9cd9262410c90793c45ff8b7c
# The slim image has no curl: Python downloads, sha256sum verifies before anything unpacks.
RUN set -eu; \
    test -n "${HELM_SHA256}" || { echo "HELM_SHA256 must be set" >&2; exit 1; }; \
    archive="helm-${HELM_VERSION}-linux-${HELM_ARCH}.tar.gz"; \
    python -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
        "https://get.helm.sh/${archive}" "/tmp/${archive}"; \
    echo "${HELM_SHA256}  /tmp/${archive}" | sha256sum --check --strict -; \
    tar -xzf "/tmp/${archive}" -C /tmp "linux-${HELM_ARCH}/helm"; \
    install -m 0755 "/tmp/linux-${HELM_ARCH}/helm" /usr/local/bin/helm; \
    rm -rf "/tmp/${archive}" "/tmp/linux-${HELM_ARCH}"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="fluxbot" \
      org.opencontainers.image.description="Slack chat-ops for Kubernetes fleets reconciled by FluxCD" \
      org.opencontainers.image.licenses="Apache-2.0"
# HOME and Helm's directories live in /tmp, writable in the pod (an emptyDir), as is
# /var/lib/fluxbot for the history (deploy/base/deployment.yaml).
ENV PATH=/opt/fluxbot/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HELM_CACHE_HOME=/tmp/helm/cache \
    HELM_CONFIG_HOME=/tmp/helm/config \
    HELM_DATA_HOME=/tmp/helm/data \
    FLUXBOT_HEALTH_PORT=8080
RUN groupadd --system --gid 10001 fluxbot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin fluxbot
COPY --from=build /opt/fluxbot /opt/fluxbot
COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm
WORKDIR /tmp
# Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
# 3000: Slack's requests in HTTP mode (`serve --http`); 8080: /healthz, /readyz, /metrics.
EXPOSE 3000 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('FLUXBOT_HEALTH_PORT', '8080') + '/healthz', timeout=4)"]
ENTRYPOINT ["fluxbot"]
CMD ["serve"]
