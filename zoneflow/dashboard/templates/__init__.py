"""Package data: the dashboard's Jinja2 templates (a package, so wheels carry them)."""
