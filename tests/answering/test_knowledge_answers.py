"""Answers from the business's documents (File Search), or from the web (WEB_SEARCH), never both."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from fake_file_search import grounded_response
from helpers import PHONE_NUMBER_ID, Harness, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams

from console.conversations import transcript_entry
from service.startup_settings import checked
from storage.store import Store


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "delivery.md").write_text("We deliver within 5 km, for R$ 7.\n")
    return knowledge


async def synchronised(app: Harness) -> str:
    """The store's name, once the start-up synchronisation has counted its documents."""
    deadline = time.monotonic() + 15
    while (name := await app.services.store.knowledge.searchable(PHONE_NUMBER_ID)) is None:
        assert time.monotonic() < deadline, "the start-up synchronisation did not finish"
        await asyncio.sleep(0.05)
    return name


def tools_of(app: Harness) -> list[dict[str, Any]]:
    """The tools of the last request, but functions (offer_choices is always declared)."""
    tools = app.fakes.gemini_bodies()[-1].get("tools", [])
    return [t for t in tools if not ({"functionDeclarations", "function_declarations"} & set(t))]


def functions_of(app: Harness) -> list[str]:
    tools = app.fakes.gemini_bodies()[-1].get("tools", [])
    return [
        declaration["name"]
        for tool in tools
        for declaration in tool.get("functionDeclarations", tool.get("function_declarations", []))
    ]


async def test_answers_search_the_documents_and_keep_their_sources(
    database_url: str, fakes: FakeUpstreams, folder: Path
) -> None:
    settings = make_settings(database_url, knowledge_dir=folder)
    async with running_app(settings, fakes) as app:
        store_name = await synchronised(app)
        fakes.gemini_queue.append(
            grounded_response("Yes: within 5 km, for R$ 7.", ["delivery.md"], store_name=store_name)
        )
        await app.post(text_payload("Do you deliver?", message_id="wamid.k1"))
        await app.settle()
        metrics = (await app.client.get("/metrics")).text

    [tool] = tools_of(app)
    search = tool.get("fileSearch") or tool["file_search"]
    names = search.get("fileSearchStoreNames") or search["file_search_store_names"]
    assert names == [store_name]
    instructions = app.fakes.gemini_bodies()[-1]["systemInstruction"]["parts"][0]["text"]
    assert "never invent prices" in instructions
    assert app.fakes.sent()[-1]["text"]["body"] == "Yes: within 5 km, for R$ 7."
    assert [d.display_name for d in fakes.file_search.documents(store_name)] == ["delivery.md"]
    assert 'assistant_grounded_answers_total{business="default"} 1.0' in metrics


async def test_the_console_shows_the_sources_of_an_answer(
    database_url: str, fakes: FakeUpstreams, folder: Path
) -> None:
    settings = make_settings(
        database_url, knowledge_dir=folder, console_password="an-admin-password-for-tests"
    )
    async with running_app(settings, fakes) as app:
        store_name = await synchronised(app)
        fakes.gemini_queue.append(
            grounded_response("Within 5 km.", ["delivery.md", "faq.pdf"], store_name=store_name)
        )
        await app.post(text_payload("Do you deliver?", message_id="wamid.k2"))
        await app.settle()
        transcripts = app.services.store.transcripts
        [listed] = await transcripts.listed(
            phone_number_ids=None, state=None, search=None, limit=10
        )
        entries = await transcripts.entries(listed.conversation.conversation_key)
    [answer] = [transcript_entry(e, 24) for e in entries if e.role == "model"]
    assert answer.author == "assistant"
    assert answer.sources == ("delivery.md", "faq.pdf")
    tools = tools_of(app)
    assert any("fileSearch" in t or "file_search" in t for t in tools)
    assert "transfer_to_human" in functions_of(app)


async def test_without_documents_no_store_is_searched(
    database_url: str, fakes: FakeUpstreams, tmp_path: Path
) -> None:
    settings = make_settings(database_url, knowledge_dir=tmp_path / "missing")
    async with running_app(settings, fakes) as app:
        await app.post(text_payload("Hello", message_id="wamid.k3"))
        await app.settle()
    assert tools_of(app) == []
    assert fakes.file_search.stores == {}  # a fresh deployment uploads nothing


async def test_web_search_adds_google_search_and_url_context(
    database_url: str, fakes: FakeUpstreams, tmp_path: Path
) -> None:
    settings = make_settings(database_url, knowledge_dir=tmp_path / "missing", web_search=True)
    async with running_app(settings, fakes) as app:
        await app.post(text_payload("What's on your site's menu today?", message_id="wamid.k4"))
        await app.settle()
    kinds = sorted(next(iter(tool)) for tool in tools_of(app))
    assert kinds in (["googleSearch", "urlContext"], ["google_search", "url_context"])


def test_web_search_with_documents_in_a_folder_stops_start_up(folder: Path) -> None:
    settings = make_settings("sqlite:///:memory:", knowledge_dir=folder, web_search=True)
    with pytest.raises(ValueError, match="WEB_SEARCH=true cannot be combined with documents"):
        checked(settings)


async def test_web_search_with_documents_in_a_store_stops_start_up(
    database_url: str, fakes: FakeUpstreams, tmp_path: Path
) -> None:
    store = await Store.open(database_url)
    try:
        await store.knowledge.register(PHONE_NUMBER_ID, "fileSearchStores/uploaded-in-console")
        await store.knowledge.count(PHONE_NUMBER_ID, 3)
    finally:
        await store.close()
    settings = make_settings(database_url, knowledge_dir=tmp_path / "missing", web_search=True)
    with pytest.raises(RuntimeError, match="WEB_SEARCH=true cannot be combined with documents"):
        async with running_app(settings, fakes):
            pass
