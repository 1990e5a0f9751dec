"""One module per schema revision; alembic reads them by file, not by import."""
