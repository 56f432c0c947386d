"""A business's documents kept in step with the database: the store made once and remembered,
the folder synchronised, console uploads kept, several instances uploading each file once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import respx
from fake_file_search import FakeFileSearch
from filesearch_support import FAST, make_client
from google import genai

from documents.library import Library
from domain.businesses import Business
from domain.costs import Prices
from storage.store import Store

NUMBER = "111111111111111"


def business(folder: Path) -> Business:
    return Business(name="Padaria Central", phone_number_id=NUMBER, knowledge_dir=folder)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "hours.md").write_text("We open at 6:00, Monday to Saturday.\n")
    (folder / "prices.csv").write_text("item,price\npão francês,0.80\n")
    return folder


@pytest.fixture
def fake() -> FakeFileSearch:
    return FakeFileSearch("https://gemini.test", polls_until_done=1)


@pytest.fixture
async def client(fake: FakeFileSearch) -> AsyncIterator[genai.Client]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.route(url__startswith="https://gemini.test").mock(side_effect=fake.handle)
        async with httpx.AsyncClient() as http:
            made = make_client(http)
            yield made
            await made.aio.aclose()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


async def test_first_sync_makes_the_store_remembers_it_and_counts_the_documents(
    client: genai.Client, store: Store, fake: FakeFileSearch, files: Path
) -> None:
    library = Library(client, store, FAST)
    report = await library.synchronise(business(files))
    assert report is not None and report.uploaded == 2
    known = await store.knowledge.get(NUMBER)
    assert known is not None and known.documents == 2
    assert await store.knowledge.searchable(NUMBER) == known.store_name
    again = await Library(client, store, FAST).synchronise(business(files))  # a restart
    assert again is not None and (again.uploaded, again.unchanged) == (0, 2)
    assert len(fake.stores) == 1  # the same store, found in the database


async def test_nothing_happens_for_a_business_without_files_or_a_store(
    client: genai.Client, store: Store, fake: FakeFileSearch, tmp_path: Path
) -> None:
    assert await Library(client, store, FAST).synchronise(business(tmp_path / "none")) is None
    assert fake.stores == {} and await store.knowledge.searchable(NUMBER) is None


async def test_console_uploads_stay_through_a_sync_and_deletes_are_counted(
    client: genai.Client, store: Store, fake: FakeFileSearch, files: Path
) -> None:
    library = Library(client, store, FAST)
    await library.upload(business(files), "menu.pdf", b"%PDF-1.4 menu", "application/pdf")
    (files / "prices.csv").unlink()
    report = await library.synchronise(business(files))
    assert report is not None
    titles = sorted(d.display_name for d in await library.documents(business(files)))
    assert titles == ["hours.md", "menu.pdf"]  # the folder's gone file went; the upload stayed
    menu = next(d for d in await library.documents(business(files)) if d.source == "console")
    await library.delete(business(files), menu.name)
    known = await store.knowledge.get(NUMBER)
    assert known is not None and known.documents == 1


async def test_emptying_the_folder_stops_answers_from_searching(
    client: genai.Client, store: Store, files: Path
) -> None:
    library = Library(client, store, FAST)
    await library.synchronise(business(files))
    for path in files.iterdir():
        path.unlink()
    await library.synchronise(business(files))
    assert await store.knowledge.searchable(NUMBER) is None


async def test_two_instances_synchronising_at_once_upload_each_file_once(
    postgres_database: str, client: genai.Client, fake: FakeFileSearch, files: Path
) -> None:
    first, second = await Store.open(postgres_database), await Store.open(postgres_database)
    try:
        reports = await asyncio.gather(
            Library(client, first, FAST).synchronise(business(files)),
            Library(client, second, FAST).synchronise(business(files)),
        )
    finally:
        await first.close()
        await second.close()
    assert len(fake.stores) == 1
    starts = [
        c for c in fake.calls_to("POST", ":uploadToFileSearchStore") if c.upload_command == "start"
    ]
    assert len(starts) == 2  # two files, each uploaded once
    assert sorted(r.uploaded for r in reports if r is not None) == [0, 2]


async def test_an_emptied_folder_takes_its_documents_and_leaves_the_console_uploads(
    client: genai.Client, store: Store, fake: FakeFileSearch, files: Path
) -> None:
    library = Library(client, store, FAST)
    await library.synchronise(business(files))
    await library.upload(business(files), "menu.pdf", b"%PDF-1.4 menu", "application/pdf")
    for path in files.iterdir():
        path.unlink()
    report = await Library(client, store, FAST).synchronise(business(files))  # a restart
    assert report is not None and report.deleted == 2
    assert [d.display_name for d in await library.documents(business(files))] == ["menu.pdf"]
    known = await store.knowledge.get(NUMBER)
    assert known is not None and known.documents == 1


async def test_a_missing_folder_keeps_its_documents_and_says_so(
    client: genai.Client,
    store: Store,
    files: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    library = Library(client, store, FAST)
    await library.synchronise(business(files))
    mistyped = tmp_path / "knowlege"
    caplog.set_level(logging.WARNING)

    assert await library.synchronise(business(mistyped)) is None

    assert len(await library.documents(business(files))) == 2
    known = await store.knowledge.get(NUMBER)
    assert known is not None and known.documents == 2
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith(f"KNOWLEDGE_DIR {mistyped} does not exist: ")
    assert "the 2 document(s) of Padaria Central uploaded from it are kept" in warning


async def test_a_missing_folder_named_by_a_tenant_is_named_so(
    client: genai.Client,
    store: Store,
    fake: FakeFileSearch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = replace(
        business(tmp_path / "nowhere"),
        knowledge_setting="knowledge_dir of business 'Padaria Central' in TENANTS_FILE",
    )
    caplog.set_level(logging.WARNING)
    assert await Library(client, store, FAST).synchronise(tenant) is None
    said = (
        f"knowledge_dir of business 'Padaria Central' in TENANTS_FILE {tmp_path / 'nowhere'} "
        "does not exist: there are no documents of Padaria Central from a folder; correct the "
        "path, or create the folder"
    )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [said]
    assert fake.stores == {}


async def test_the_default_folder_missing_on_a_fresh_deployment_is_no_documents_and_no_news(
    client: genai.Client,
    store: Store,
    fake: FakeFileSearch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./knowledge here
    caplog.set_level(logging.INFO)
    fresh = Business(name="default", phone_number_id=NUMBER)  # KNOWLEDGE_DIR unset
    assert await Library(client, store, FAST).synchronise(fresh) is None
    assert caplog.records == [] and fake.stores == {}


async def test_indexing_counts_in_the_businesss_spend_for_the_day(
    client: genai.Client, store: Store, files: Path
) -> None:
    """File Search bills the tokens it embeds and does not report them: one per 4 bytes."""
    prices = Prices(input=0.5, output=3.0, thinking=3.0, tts=10.0, search=0.014, embedding=0.15)
    library = Library(client, store, FAST, prices=prices)
    await library.synchronise(business(files))  # 37 and 30 bytes: 10 and 8 tokens
    await library.synchronise(business(files))  # nothing new: nothing indexed
    await library.upload(business(files), "menu.pdf", b"%PDF-1.4 menu", "application/pdf")  # 4
    [day] = await store.usage.days([NUMBER], "2000-01-01")
    assert (day.embedding_tokens, day.messages, day.answers) == (10 + 8 + 4, 0, 0)
    assert day.cost_usd == pytest.approx(22 * 0.15 / 1e6)
    assert await store.usage.spent_today() == pytest.approx(22 * 0.15 / 1e6)
