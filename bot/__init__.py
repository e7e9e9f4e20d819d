"""fluxbot: Slack chat-ops for Kubernetes fleets reconciled by FluxCD."""
