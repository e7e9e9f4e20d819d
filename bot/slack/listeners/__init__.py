"""Bolt listeners, one package per kind of Slack request, each with `register(app, bot)`."""
