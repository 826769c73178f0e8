"""Alembic environment: reads ``sqlalchemy.url`` from the ini's main section."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from links.models import Base

config = context.config
target_metadata = Base.metadata


def configure_logging() -> None:
    """Apply the ini's logging config, only when it has one."""
    if config.config_file_name and config.file_config.has_section("loggers"):
        fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """Return the database URL or fail clearly."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set in the [alembic] section")
    return url


def run_migrations_offline() -> None:
    """Emit SQL without a database connection (``--sql``)."""
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations against the database."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


configure_logging()
if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
