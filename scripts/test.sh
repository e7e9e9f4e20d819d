#!/usr/bin/env bash
# Set up fluxbot (first run only) and run every check CI runs: lint, format, types,
# layering contracts, then the test suite. Extra arguments go to pytest.
source "$(dirname "$0")/bootstrap.sh"
set -x
ruff check .
ruff format --check .
mypy
lint-imports
pytest "$@"
