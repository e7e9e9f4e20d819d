#!/usr/bin/env bash
# Measure digest composition on the 10,000-object fleet with a day of recorded transitions.
# The last line is JSON.
source "$(dirname "$0")/bootstrap.sh"
exec python -m benchmarks.digest_bench "$@"
