#!/usr/bin/env bash
# Measure /flux over HTTP: a burst of 100 signed slash commands in 10 s against a fake
# 10,000-object fleet (ack latency p99, full-answer latency p95). The last line is JSON.
source "$(dirname "$0")/bootstrap.sh"
exec python -m benchmarks.slack_burst_bench "$@"
