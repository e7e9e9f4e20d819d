"""Kubernetes access through the official client: one API client per cluster, errors in words."""
