"""Renderers that turn answers into text for a medium."""
