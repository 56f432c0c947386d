"""The tests' databases: a PostgreSQL database made and dropped, emptied between tests or
migrated; a SQLite one copied from a migrated template."""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from storage.schema import head_revision, metadata
from storage.store import Store


@asynccontextmanager
async def fresh_postgres_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield str(make_url(server_url).set(database=name).render_as_string(hide_password=False))
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def need_postgres(postgres_url: str | None) -> str:
    if postgres_url is None:
        reason = (
            "PostgreSQL not found (no initdb/pg_ctl on PATH or under /usr/lib/postgresql): "
            "install it (apt-get install postgresql) or set TEST_DATABASE_URL"
        )
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    return postgres_url


async def migrate(database_url: str) -> None:
    """Bring a database's schema to the newest migration, as the app does at start-up."""
    store = await Store.open(database_url)
    await store.close()


# What TRUNCATE ... RESTART IDENTITY does, at a quarter of the server's work on the few rows a
# test leaves (the schema has no foreign keys, so the order does not matter).
EMPTY_POSTGRES = "; ".join(
    [
        *(str(delete(table)) for table in metadata.tables.values()),
        "SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'",
    ]
)


async def empty_database(url: str) -> None:
    """Remove every row of a PostgreSQL database, so each test starts clean; migrate it first
    unless it is at the newest migration already (a test may have taken it down)."""
    conn = await asyncpg.connect(url)
    try:
        try:
            current = await conn.fetchval("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            current = None
        if current != head():
            await migrate(url)
        await conn.execute(EMPTY_POSTGRES)
    finally:
        await conn.close()


@functools.cache
def head() -> str | None:
    """The newest migration (read once: Alembic parses every migration file to tell)."""
    return head_revision()


def copy_database(template: Path, target: Path) -> str:
    """A SQLite database at `target`, a copy of `template` (the file alone: its write-ahead
    log was folded back in when its last connection closed)."""
    if template.with_name(f"{template.name}-wal").exists():
        raise AssertionError(f"{template} is still open")
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"
