"""The Flux domain: object status, fleet views, and later digests and policy.

Nothing here imports a Slack or Kubernetes client; adapters translate to and from it.
"""
