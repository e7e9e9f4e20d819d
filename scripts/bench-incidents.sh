#!/usr/bin/env bash
# Measure live incidents: 500 objects failing behind 5 root causes within a (compressed) minute,
# then recovering, against a fake Slack that enforces 1 post/s/channel. The last line is JSON.
source "$(dirname "$0")/bootstrap.sh"
exec python -m benchmarks.incident_bench "$@"
