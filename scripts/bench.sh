#!/usr/bin/env bash
# Measure the watch cache against the naive reader on a fake fleet (20 clusters x 500 Flux
# objects by default) and print the figures; the last line is one JSON object.
# Extra arguments go to the driver, e.g. `scripts/bench.sh --clusters 2 --objects-per-cluster 50`.
source "$(dirname "$0")/bootstrap.sh"
exec python -m benchmarks.cache_bench "$@"
