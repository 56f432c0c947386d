"""The start-up synchronisation: an emptied folder's documents go, a missing folder's stay."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from helpers import make_settings, running_app
from respx_upstreams import FakeUpstreams

import main
from config import Settings


@pytest.fixture(autouse=True)
def captured_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The apps here are built during the test: their logging set-up would drop caplog's."""
    monkeypatch.setattr(main, "configure_logging", lambda settings: None)
    caplog.set_level(logging.INFO)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "delivery.md").write_text("We deliver within 5 km, for R$ 7.\n")
    return knowledge


async def started(settings: Settings, fakes: FakeUpstreams) -> None:
    """Start the app, let the start-up synchronisation finish, stop."""
    async with running_app(settings, fakes):
        syncs = [t for t in asyncio.all_tasks() if t.get_name() == "knowledge-sync"]
        if syncs:
            await asyncio.wait(syncs, timeout=15)
            assert all(sync.done() for sync in syncs)


def titles(fakes: FakeUpstreams) -> list[str]:
    [store] = fakes.file_search.stores
    return sorted(d.display_name for d in fakes.file_search.documents(store))


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_emptied_folder_loses_its_documents_at_the_next_start(
    database_url: str, fakes: FakeUpstreams, folder: Path
) -> None:
    """With the console off too: the folder has no files, the database remembers the store."""
    settings = make_settings(database_url, knowledge_dir=folder)
    await started(settings, fakes)
    [store] = fakes.file_search.stores
    fakes.file_search.add_document(store, "menu.pdf", b"%PDF", metadata={"source": "console"})
    (folder / "delivery.md").unlink()

    await started(settings, fakes)

    assert titles(fakes) == ["menu.pdf"]  # an operator's upload stays


async def test_a_missing_knowledge_dir_keeps_the_documents_and_start_up_warns(
    database_url: str,
    fakes: FakeUpstreams,
    folder: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await started(make_settings(database_url, knowledge_dir=folder), fakes)
    mistyped = tmp_path / "knowlege"

    await started(make_settings(database_url, knowledge_dir=mistyped), fakes)

    assert titles(fakes) == ["delivery.md"]
    said = (
        f"KNOWLEDGE_DIR {mistyped} does not exist: the 1 document(s) uploaded from it are kept; "
        "correct the path, or create the folder (an empty folder removes them)"
    )
    assert [w for w in warnings(caplog) if "does not exist" in w] == [said]


async def test_a_missing_knowledge_dir_is_named_at_start_up_before_any_document(
    database_url: str, fakes: FakeUpstreams, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await started(make_settings(database_url, knowledge_dir=tmp_path / "typo"), fakes)
    assert fakes.file_search.stores == {}
    said = (
        f"KNOWLEDGE_DIR {tmp_path / 'typo'} does not exist: there are no documents from a "
        "folder; correct the path, or create the folder"
    )
    assert warnings(caplog) == [said]


@pytest.mark.parametrize("console", [{}, {"console_password": "a-console-secret-71"}])
async def test_no_knowledge_folder_on_a_fresh_deployment_is_simply_no_documents(
    database_url: str,
    fakes: FakeUpstreams,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    console: dict[str, Any],
) -> None:
    monkeypatch.chdir(tmp_path)  # the default ./knowledge: not here
    await started(make_settings(database_url, **console), fakes)
    assert fakes.file_search.stores == {}
    assert warnings(caplog) == []
