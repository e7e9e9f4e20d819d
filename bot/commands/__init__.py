"""The chat-agnostic command layer: grammar, execution, answers."""
