"""Remediation actions, chat-agnostic: authorize, confirm, execute, follow, audit."""
