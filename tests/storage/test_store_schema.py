"""The store's database URLs and schema: the async driver chosen, the folder made, idempotence."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_support import msg

from domain.types import MessageState
from storage.database import async_database_url
from storage.store import Store

# ---------------------------------------------------------------------------------------------
# URLs and schema


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./data/x.db", "sqlite+aiosqlite:///./data/x.db"),
        ("sqlite:////abs/path/x.db", "sqlite+aiosqlite:////abs/path/x.db"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+asyncpg://u:p@h/db?ssl=require"),
        ("sqlite+aiosqlite:///./data/x.db", "sqlite+aiosqlite:///./data/x.db"),
        ("postgresql+asyncpg://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
    ],
)
def test_async_database_url(url: str, expected: str) -> None:
    assert async_database_url(url) == expected


async def test_open_creates_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "db.sqlite"
    store = await Store.open(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        await store.db.ping()
        assert path.exists()
    finally:
        await store.close()


async def test_create_schema_is_idempotent(store: Store) -> None:
    assert await store.recorder.record([msg("wamid.1")]) == ["wamid.1"]
    await store.db.migrate()
    await store.db.migrate()
    assert await store.inbox.state_of("wamid.1") == MessageState.PENDING
