"""Supervisor and operator web console (and the health endpoint of the stack)."""
