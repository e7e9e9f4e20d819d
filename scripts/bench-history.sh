#!/usr/bin/env bash
# Measure the SQLite history store on a simulated week of a 10,000-object fleet's churn: the
# transitions recorded, the file's size, one environment's day read back. The last line is JSON.
# Extra arguments go to the driver, e.g. `scripts/bench-history.sh --days 1 --objects 200`.
source "$(dirname "$0")/bootstrap.sh"
exec python -m benchmarks.history_bench "$@"
