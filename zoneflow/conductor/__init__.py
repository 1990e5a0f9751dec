"""Conductor daemons, the jobboard connection and TaskFlow persistence setup."""
