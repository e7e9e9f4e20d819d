#!/usr/bin/env bash
# Set up fluxbot (first run only) and show the built-in demo fleet's status.
# Extra arguments go to `fluxbot status`, e.g. `scripts/demo.sh production --failing`.
source "$(dirname "$0")/bootstrap.sh"
exec fluxbot status --demo "$@"
