"""Live incidents: when to open, update, resolve and re-announce them, and the loop that does."""
