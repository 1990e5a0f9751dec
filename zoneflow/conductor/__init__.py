"""Conductor daemons: claim jobs from the board, run their flows, bound their attempts."""
