#!/usr/bin/env bash
# Measure remediation: click to annotation written, and controller acknowledgement to the Slack
# message updated (fake Slack, fake cluster, fake Flux controller). The last line is JSON.
source "$(dirname "$0")/bootstrap.sh"
exec python -m benchmarks.action_bench "$@"
