"""Agent roles, one module each."""
