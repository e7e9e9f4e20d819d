#!/usr/bin/env bash
# Run the Dockerfile's build steps without a Docker engine, so CI exercises them: take the
# build context the Dockerfile copies (as .dockerignore leaves it), check requirements.lock,
# build a wheel of the checkout, install it into a fresh virtual environment, then run
# `fluxbot --help` and `fluxbot status --demo` from there, outside the checkout.
#
#   scripts/check-image-steps.sh            # offline: needs only .venv (the test suite's way)
#   scripts/check-image-steps.sh --online   # the Dockerfile's exact commands; needs the index
#
# Offline, the lock file is checked (one pinned version and SHA-256 hashes per package, every
# dependency and build requirement of pyproject.toml in it at an allowed version); the wheel
# is built with .venv's setuptools (--no-build-isolation, with the build requirements
# checked) and installed with --no-deps; its dependencies are then made visible from .venv
# by a path entry, and `pip check` proves the wheel's declared requirements are met. Online,
# the packages come from the index through the lock file with --require-hashes, exactly as
# `docker build` installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# What the build stage COPYs: keep in step with the Dockerfile (tests/test_dockerfile.py).
CONTEXT=(requirements.lock pyproject.toml README.md bot)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
mode=offline
case "${1:-}" in
    "") ;;
    --online) mode=online ;;
    *) echo "usage: $0 [--online]" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/fluxbot-image-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1

step() { printf '== %s\n' "$*"; }

step "build context: ${CONTEXT[*]}"
mkdir -p "$work/src"
tar --exclude='__pycache__' --exclude='*.pyc' -cf - "${CONTEXT[@]}" | tar -xf - -C "$work/src"

step "requirements.lock: pinned, hashed, and what pyproject.toml asks for"
"$PYTHON" - "$work/src" <<'PY'
import re, sys, tomllib
from pathlib import Path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
src = Path(sys.argv[1])
text = (src / "requirements.lock").read_text()
entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2].strip())
pins = {}
for entry in entries:
    head = entry.split()[0]
    name, _, version = head.partition("==")
    if not version:
        sys.exit(f"requirements.lock: {head} is not pinned to one version")
    if "--hash=sha256:" not in entry:
        sys.exit(f"requirements.lock: {head} has no hash")
    pins[canonicalize_name(name)] = version
project = tomllib.loads((src / "pyproject.toml").read_text())
wanted = project["project"]["dependencies"] + project["build-system"]["requires"]
for line in wanted:
    req = Requirement(line)
    version = pins.get(canonicalize_name(req.name))
    if version is None or not req.specifier.contains(version, prereleases=True):
        sys.exit(f"requirements.lock lacks {line} (has {version}): run scripts/lock.sh")
print(f"   {len(pins)} packages, each pinned with hashes")
PY

step "fresh virtual environment"
"$PYTHON" -m venv "$work/venv"
venv_python="$work/venv/bin/python"

step "wheel ($mode)"
if [ "$mode" = online ]; then
    # The Dockerfile's commands: every package from the lock, hashes checked, wheels only.
    "$venv_python" -m pip install --quiet --require-hashes --no-deps --only-binary=:all: \
        -r "$work/src/requirements.lock"
    (cd "$work/src" && "$venv_python" -m pip wheel --quiet --no-deps --no-build-isolation \
        --wheel-dir "$work/wheels" .)
else
    "$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation --check-build-dependencies \
        --wheel-dir "$work/wheels" "$work/src"
fi
wheels=("$work"/wheels/fluxbot-*.whl)
[ -f "${wheels[0]}" ] || { echo "no fluxbot wheel was built" >&2; exit 1; }
step "built $(basename "${wheels[0]}")"

step "install the wheel"
if [ "$mode" = online ]; then
    "$venv_python" -m pip install --quiet --no-deps "${wheels[0]}"
    "$venv_python" -m pip check
else
    # Install the wheel first, while pip sees no other fluxbot; then lend .venv's packages.
    "$venv_python" -m pip install --quiet --no-deps "${wheels[0]}"
    site=$("$venv_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    deps=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # A plain path line: .venv's own .pth files (its editable fluxbot) are not run.
    echo "$deps" > "$site/zz-fluxbot-image-check-deps.pth"
    "$venv_python" -m pip check
fi

step "run from the fresh environment, outside the checkout"
cd "$work"
location=$("$venv_python" -c 'import bot; print(bot.__file__)')
case "$location" in
    "$work/venv/"*) ;;
    *) echo "bot was imported from $location, not from the installed wheel" >&2; exit 1 ;;
esac
"$work/venv/bin/fluxbot" --help > "$work/help.txt"
grep -q "serve" "$work/help.txt" || { echo "fluxbot --help does not list serve" >&2; exit 1; }
"$work/venv/bin/fluxbot" status --demo > "$work/status.txt"
grep -q "production" "$work/status.txt" || { echo "the demo fleet did not answer" >&2; exit 1; }
step "ok: the wheel installs and answers (fluxbot --help, fluxbot status --demo)"
