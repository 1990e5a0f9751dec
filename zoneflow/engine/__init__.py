"""Engines and jobs: the shared executor, posting and reading jobs, the outbox relay."""
