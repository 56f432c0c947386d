"""Shared pieces of the knowledge tests: the fake File Search behind respx, a real genai client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from fake_file_search import FakeFileSearch
from google import genai
from google.genai import types

from documents.filesearch import Polling

BASE_URL = "https://gemini.test"
API_KEY = "test-knowledge-key-9d1e"
FAST = Polling(timeout=5.0, first_delay=0.001, max_delay=0.01)


def make_client(http: httpx.AsyncClient, **options: Any) -> genai.Client:
    """google-genai over the given httpx client, pointed at the fake."""
    http_options = types.HttpOptions(base_url=BASE_URL, httpx_async_client=http, **options)
    return genai.Client(api_key=API_KEY, http_options=http_options)


@pytest.fixture(name="fake")
def fake_fixture() -> FakeFileSearch:
    return FakeFileSearch(BASE_URL, polls_until_done=2)


@pytest.fixture(name="router")
def router_fixture(fake: FakeFileSearch) -> Iterator[respx.Router]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.route(url__startswith=BASE_URL).mock(side_effect=fake.handle)
        yield mock


@pytest.fixture(name="client")
async def client_fixture(router: respx.Router) -> AsyncIterator[genai.Client]:
    async with httpx.AsyncClient() as http:
        gemini = make_client(http)
        yield gemini
        await gemini.aio.aclose()


@pytest.fixture(name="store")
def store_fixture(fake: FakeFileSearch) -> str:
    return fake.add_store("Acme docs")
