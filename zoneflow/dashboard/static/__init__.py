"""Package data: the dashboard's script and style sheet (a package, so wheels carry them)."""
