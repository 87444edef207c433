"""Persistence: SQLAlchemy models, repository functions, migrations, importers and exporters (no torch)."""
