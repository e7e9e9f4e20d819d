#!/usr/bin/env bash
# Set up fluxbot (first run only) and run every check CI runs: lint, format, types,
# layering contracts, then the test suite, on as many workers as cores (pytest-xdist;
# FLUXBOT_TEST_WORKERS=0 runs it in one process). Extra arguments go to pytest.
source "$(dirname "$0")/bootstrap.sh"
set -x
ruff check .
ruff format --check .
mypy
lint-imports
pytest -n "${FLUXBOT_TEST_WORKERS:-auto}" "$@"
