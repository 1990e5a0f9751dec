"""Designate's v2 resources: one module per collection."""
