"""Alembic environment: the app's own connection, or DATABASE_URL from the command line."""

from __future__ import annotations

import asyncio
import logging.config
import os

from alembic import context
from dotenv import load_dotenv
from sqlalchemy.engine import Connection

from config import Settings
from storage.database import create_engine
from storage.schema import metadata

config = context.config


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line() -> None:
    """`alembic upgrade head`: the database named by DATABASE_URL (environment, then `.env`)."""
    load_dotenv(".env")
    default = Settings.model_fields["database_url"].default
    engine = create_engine(os.environ.get("DATABASE_URL") or default)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


shared_connection = config.attributes.get("connection")
if shared_connection is not None:
    run_on(shared_connection)  # called by Store.migrate(): the app's logging stays as it is
else:
    if config.config_file_name:
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(run_from_command_line())
