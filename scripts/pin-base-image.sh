#!/usr/bin/env bash
# Pin the Dockerfile's base image by digest: resolve the tag in PYTHON_IMAGE to the digest
# of its multi-platform index and write `tag@sha256:…` back into the Dockerfile.
#
#   scripts/pin-base-image.sh          # needs registry access and crane, skopeo or docker
#   scripts/pin-base-image.sh --check  # exit 1 unless the base is pinned by digest (no network)
#
# Run it where a registry is reachable (a release pipeline, a workstation), then commit the
# Dockerfile; re-run it (or let Renovate/Dependabot do it) to move to a rebuilt base. A release
# pipeline runs `--check` before `docker build`, so an image is never released on a bare tag.
set -euo pipefail
cd "$(dirname "$0")/.."
line=$(grep -E '^ARG PYTHON_IMAGE=' Dockerfile)
image=${line#ARG PYTHON_IMAGE=}
tag=${image%@*}
if [[ "${1:-}" == "--check" ]]; then
    if [[ "$image" =~ @sha256:[0-9a-f]{64}$ ]]; then
        echo "Dockerfile: PYTHON_IMAGE is pinned: $image"
        exit 0
    fi
    echo "pin-base-image: PYTHON_IMAGE=$image is pinned by tag only; run scripts/pin-base-image.sh where a registry is reachable" >&2
    exit 1
fi
if command -v crane >/dev/null; then
    digest=$(crane digest "$tag")
elif command -v skopeo >/dev/null; then
    digest=$(skopeo inspect --raw "docker://docker.io/library/$tag" | sha256sum | cut -d' ' -f1)
    digest="sha256:$digest"
elif command -v docker >/dev/null; then
    digest=$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest}}' \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["digest"])')
else
    echo "pin-base-image: needs crane, skopeo or docker (with buildx) and registry access" >&2
    exit 2
fi
if ! [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
    echo "pin-base-image: not a digest: $digest" >&2
    exit 1
fi
sed -i "s|^ARG PYTHON_IMAGE=.*|ARG PYTHON_IMAGE=$tag@$digest|" Dockerfile
echo "Dockerfile: PYTHON_IMAGE=$tag@$digest"
