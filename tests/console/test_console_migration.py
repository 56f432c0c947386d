"""Migration 0007: the console's tables come and go with it, and match the code."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from storage.schema import alembic_config
from storage.store import Store

CONSOLE_TABLES = {"operators", "console_sessions", "login_failures"}


def tables_and_indexes(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {
        table: {str(index["name"]) for index in inspector.get_indexes(table)}
        for table in inspector.get_table_names()
    }


async def test_console_tables_are_made_and_dropped_by_0007(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        async with store.engine.connect() as conn:
            found = await conn.run_sync(tables_and_indexes)
        assert set(found) >= CONSOLE_TABLES
        assert {"ix_login_failures_username", "ix_login_failures_address"} <= found[
            "login_failures"
        ]
        assert "ix_console_sessions_expires_at" in found["console_sessions"]

        def down(connection: Connection) -> None:
            command.downgrade(alembic_config(connection), "0006")

        async with store.engine.begin() as conn:
            await conn.run_sync(down)
        async with store.engine.connect() as conn:
            remaining = set(await conn.run_sync(tables_and_indexes))
        assert not CONSOLE_TABLES & remaining
        assert {"inbox", "turns", "rate_notices", "conversations"} <= remaining
        await store.db.migrate()
        await store.db.check_schema()
    finally:
        await store.close()


def test_the_console_revision_is_in_the_chain_below_head() -> None:
    from alembic.script import ScriptDirectory

    from storage.schema import alembic_config

    revisions = ScriptDirectory.from_config(alembic_config())
    assert revisions.get_revision("0007").down_revision == "0006"
    assert "0007" in {r.revision for r in revisions.iterate_revisions("head", "base")}
