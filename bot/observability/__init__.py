"""Operating fluxbot: Prometheus metrics, health and readiness endpoints, structured logs.

Used by every adapter (Slack, Kubernetes, the command line), so it imports none of their
client libraries: only the standard library, `prometheus_client` and the domain types.
"""
