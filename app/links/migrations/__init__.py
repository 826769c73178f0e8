"""Alembic migrations for phoenix-links (``script_location = links:migrations``)."""
