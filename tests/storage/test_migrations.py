"""Alembic migrations: from empty, from the first schema, one step down, in line with the code."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from helpers import ROOT, make_settings
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ops.logs import configure_logging
from storage.database import create_engine
from storage.schema import alembic_config, head_revision, metadata
from storage.store import Store


def index_names(connection: Connection, table: str) -> set[str]:
    return {str(index["name"]) for index in inspect(connection).get_indexes(table)}


def column_names(connection: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns(table)}


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def schema_diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, metadata))


async def test_upgrade_from_empty_matches_the_code(empty_url: str) -> None:
    store = Store.over(create_engine(empty_url))
    try:
        await store.db.migrate()
        async with store.engine.connect() as conn:
            assert await conn.run_sync(schema_diff) == []
            assert "ix_inbox_received_at" in await conn.run_sync(index_names, "inbox")
        await store.db.check_schema()  # at head: passes
    finally:
        await store.close()


async def test_upgrade_from_the_first_schema_keeps_the_data(empty_url: str) -> None:
    store = Store.over(create_engine(empty_url))
    try:
        await store.db.migrate("0001")
        async with store.engine.begin() as conn:
            assert "ix_inbox_received_at" not in await conn.run_sync(index_names, "inbox")
            await conn.execute(
                text(
                    "INSERT INTO turns (user_key, role, text, created_at) "
                    "VALUES ('u', 'user', 'kept across upgrades', :now)"
                ),
                {"now": time.time()},
            )
        await store.db.migrate(phone_number_id="106540352242922")
        async with store.engine.connect() as conn:
            assert await conn.run_sync(schema_diff) == []
        history = await store.conversations.history("106540352242922:u", 5, 1000)
        assert [t.text for t in history] == ["kept across upgrades"]
    finally:
        await store.close()


async def test_downgrade_of_the_last_step(empty_url: str) -> None:
    store = await Store.open(empty_url)
    try:

        def downgrade(connection: Connection) -> None:
            # Down through 0004's step (and those above it, which test_console_migration.py
            # covers on their own).
            command.downgrade(alembic_config(connection), "0003")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with store.engine.connect() as conn:
            assert "ux_turns_inbox_role" not in await conn.run_sync(index_names, "turns")
            assert "inbox_id" not in await conn.run_sync(column_names, "turns")
            assert "rate_notices" in await conn.run_sync(table_names)  # 0003 stays
            assert "ix_inbox_user_received" in await conn.run_sync(index_names, "inbox")
        try:
            await store.db.check_schema()
        except RuntimeError as error:
            assert "alembic upgrade head" in str(error)
        else:
            raise AssertionError("a schema behind head must be refused when not migrating")
        await store.db.migrate()
        await store.db.check_schema()
    finally:
        await store.close()


def test_alembic_command_line_upgrades_the_database_url(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{database}",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Running upgrade 0002 -> 0003" in result.stderr
    assert "Running upgrade 0003 -> 0004" in result.stderr
    assert "Running upgrade 0004 -> 0005" in result.stderr
    import sqlite3

    with sqlite3.connect(database) as conn:
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == head_revision()


async def test_a_database_made_before_migrations_is_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/legacy.db"
    store = Store.over(create_engine(url))
    try:
        # The first version made its tables with create_all, without Alembic's version table.
        await store.db.migrate("0001")
        async with store.engine.begin() as conn:
            await conn.execute(text("DROP TABLE alembic_version"))
        await store.db.migrate()
        await store.db.check_schema()
    finally:
        await store.close()


async def test_a_single_business_database_moves_to_its_business_without_losing_a_row(
    empty_url: str,
) -> None:
    """0005: every row keyed by (business, user); a turn whose message is gone gets the
    business of PHONE_NUMBER_ID; downgrading gives the old keys back."""
    store = Store.over(create_engine(empty_url))
    now = time.time()
    try:
        await store.db.migrate("0004")
        async with store.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO inbox (id, message_id, user_key, recipient, phone_number_id, "
                    "kind, text, payload, sent_at, received_at, state, attempts, parts_sent, "
                    "updated_at) VALUES (7, 'wamid.a', '5511', '5511', '106540352242922', "
                    "'text', 'oi', '{}', 1, :now, 'done', 1, 0, :now)"
                ),
                {"now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO turns (user_key, role, text, created_at, inbox_id) VALUES "
                    "('5511', 'user', 'oi', :now, 7), ('5511', 'model', 'olá', :now, 7), "
                    "('5511', 'user', 'older, its message purged', :now, NULL)"
                ),
                {"now": now},
            )
            await conn.execute(
                text(
                    'INSERT INTO rate_notices (user_key, "window", notified_at) '
                    "VALUES ('5511', 'day', :now)"
                ),
                {"now": now},
            )
        await store.db.migrate(phone_number_id="106540352242922")

        async def keys(table: str) -> list[str]:
            async with store.engine.connect() as conn:
                rows = await conn.execute(text(f"SELECT conversation_key FROM {table}"))  # noqa: S608
                return sorted(r[0] for r in rows)

        assert await keys("inbox") == ["106540352242922:5511"]
        assert await keys("turns") == ["106540352242922:5511"] * 3
        assert await keys("rate_notices") == ["106540352242922:5511"]
        history = await store.conversations.history("106540352242922:5511", 10, 1000)
        assert [t.text for t in history] == ["oi", "olá", "older, its message purged"]

        def downgrade(connection: Connection) -> None:
            command.downgrade(alembic_config(connection), "0004")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with store.engine.connect() as conn:
            turns = (await conn.execute(text("SELECT user_key FROM turns"))).all()
        assert [t[0] for t in turns] == ["5511"] * 3
    finally:
        await store.close()


@pytest.fixture
def service_logging(tmp_path: Path) -> None:
    """The service's logging, as its processes configure it (before the test's capture)."""
    configure_logging(make_settings(f"sqlite:///{tmp_path}/unused.db"))


async def test_migrating_says_in_one_line_what_it_did_and_alembic_nothing(
    tmp_path: Path, service_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    store = Store.over(create_engine(f"sqlite:///{tmp_path}/quiet.db"))
    try:
        await store.db.migrate("0009")
        await store.db.migrate()
        await store.db.migrate()  # nothing to do: nothing said
    finally:
        await store.close()
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("storage.database", "database schema created at revision 0009"),
        ("storage.database", f"database schema migrated from revision 0009 to {head_revision()}"),
    ]
