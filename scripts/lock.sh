#!/usr/bin/env bash
# Regenerate requirements.lock: every Python package the container image installs (fluxbot's
# dependencies from pyproject.toml, and the setuptools its build backend needs), pinned to
# one version with the SHA-256 of every published file, for Linux and Python 3.11.
#
#   scripts/lock.sh             # re-resolve to the newest versions pyproject.toml allows
#
# Needs the package index (PyPI). The resolver is uv (astral-sh/uv, from PyPI), installed
# at the version below into a throw-away virtual environment. The Dockerfile installs the
# result with `pip install --require-hashes`, so a changed or substituted file fails the
# build. Commit the new lock file together with the pyproject.toml change that needed it.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3}
tools=$(mktemp -d "${TMPDIR:-/tmp}/fluxbot-lock.XXXXXX")
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
# The build backend's requirements, as pyproject.toml declares them.
"$PYTHON" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
    > "$tools/build-requirements.in"
"$tools/venv/bin/uv" pip compile pyproject.toml "$tools/build-requirements.in" \
    --generate-hashes --python-version 3.11 --python-platform linux \
    --no-annotate --custom-compile-command "scripts/lock.sh" \
    --output-file requirements.lock
echo "wrote requirements.lock"
