"""Shared fixtures: a PostgreSQL server (one for all of xdist's workers, started by the hooks
below), a database per test on SQLite and PostgreSQL, the respx fakes of Graph and Gemini, a
running app, a local fake server. Helpers live in `helpers.py`."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import certifi
import httpx
import pytest
import respx
from business_api import BusinessApi
from db_support import (
    copy_database,
    empty_database,
    fresh_postgres_database,
    migrate,
    need_postgres,
)
from fake_file_search import FakeFileSearch
from fake_upstreams import FakeServer
from filesearch_support import BASE_URL, knowledge_folder, make_client
from google import genai
from helpers import Harness, first_certificate, make_settings, running_app
from meta_openapi import GraphRequestRejected, read_ahead
from pg_server import PostgresServer, find_postgres_bin, start_in_background, wait_until_started
from respx_upstreams import FakeUpstreams

from storage.store import Store

if TYPE_CHECKING:
    from mcp_server import McpShop

pytest_plugins = ["browser_support"]  # the browser tests' fixtures: browser, served


@pytest.fixture(scope="session", autouse=True)
def small_trust_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One certificate to trust instead of certifi's bundle (SSL_CERT_FILE, which httpx and
    google-genai read). Every app a test starts makes four TLS contexts, for upstreams that
    are all faked over plain HTTP; each load of the whole bundle costs about 18 ms of CPU."""
    path = tmp_path_factory.mktemp("trust") / "ca.pem"
    path.write_text(first_certificate(certifi.where()), encoding="ascii")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(path))
        yield


SHARED_POSTGRES = pytest.StashKey[tuple[PostgresServer, threading.Thread]]()


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, the controller starts one PostgreSQL server for all its workers, while they
    start and collect (rather than each worker one of its own, at its first test that needs it)."""
    workers = config.getoption("numprocesses", default=None)
    if hasattr(config, "workerinput") or not workers or os.environ.get("TEST_DATABASE_URL"):
        return
    bin_dir = find_postgres_bin()
    if bin_dir is not None:
        server = PostgresServer(bin_dir)
        config.stash[SHARED_POSTGRES] = (server, start_in_background(server))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, for each worker: where the shared server is, and where it says it is up."""
    shared = node.config.stash.get(SHARED_POSTGRES, None)
    if shared is not None:
        node.workerinput["postgres_url"] = shared[0].url
        node.workerinput["postgres_status"] = str(shared[0].status)


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(SHARED_POSTGRES, None)
    if shared is not None:
        server, starting = shared
        starting.join()
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A PostgreSQL server for the session: TEST_DATABASE_URL, or the one the xdist controller
    started, or one started here, or None."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    shared: dict[str, str] = getattr(request.config, "workerinput", {})
    if "postgres_url" in shared:
        wait_until_started(Path(shared["postgres_status"]))
        yield shared["postgres_url"]
        return
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        yield None
        return
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_postgres_database(postgres_url: str | None) -> Iterator[str | None]:
    """One migrated database for the app and store tests, emptied before each of them."""
    if postgres_url is None:
        yield None
        return
    runner = asyncio.Runner()
    context = fresh_postgres_database(postgres_url)
    url = runner.run(context.__aenter__())
    try:
        yield url
    finally:
        runner.run(context.__aexit__(None, None, None))
        runner.close()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per test process, which tests get copies of (the
    migrations themselves are tests/storage/test_migrations.py's)."""
    path = tmp_path_factory.mktemp("migrated") / "assistant.db"
    asyncio.run(migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    shared_postgres_database: str | None,
    migrated_sqlite: Path,
) -> str:
    """Every store and app test runs on the embedded SQLite default and on PostgreSQL, each
    database at the newest migration and empty."""
    if request.param == "sqlite":
        return copy_database(migrated_sqlite, tmp_path / "assistant.db")
    url = need_postgres(shared_postgres_database)
    await empty_database(url)
    return url


@pytest.fixture
async def postgres_database(shared_postgres_database: str | None) -> str:
    """For the tests that only make sense with several instances on one server."""
    url = need_postgres(shared_postgres_database)
    await empty_database(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None
) -> AsyncIterator[str]:
    """A database with nothing in it, not even the tables, on each backend (the migrations'
    tests; the shared databases are at head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    async with fresh_postgres_database(need_postgres(postgres_url)) as url:
        yield url


@pytest.fixture(scope="session")
def meta_description() -> None:
    """Meta's OpenAPI description, which the fake Graphs check every request against, read
    once per test process before any test's clock runs."""
    read_ahead()


@pytest.fixture
def fakes(meta_description: None) -> Iterator[FakeUpstreams]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        upstreams = FakeUpstreams(router)
        upstreams.install()
        yield upstreams
    if upstreams.rejected:
        raise GraphRequestRejected("\n\n".join(upstreams.rejected))


@pytest.fixture
async def harness(database_url: str, fakes: FakeUpstreams) -> AsyncIterator[Harness]:
    async with running_app(make_settings(database_url), fakes) as running:
        yield running


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A store opened on the test's database (SQLite and PostgreSQL)."""
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


@pytest.fixture
def fake(meta_description: None) -> Iterator[FakeServer]:
    """A local fake of Graph and Gemini on 127.0.0.1, for tests of real service processes."""
    with FakeServer() as server:
        yield server


# The knowledge tests: the fake File Search behind respx, a real google-genai client over it.


@pytest.fixture(name="file_search")
def fake_fixture() -> FakeFileSearch:
    return FakeFileSearch(BASE_URL, polls_until_done=2)


@pytest.fixture(name="file_search_router")
def router_fixture(file_search: FakeFileSearch) -> Iterator[respx.Router]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.route(url__startswith=BASE_URL).mock(side_effect=file_search.handle)
        yield mock


@pytest.fixture(name="genai_client")
async def client_fixture(file_search_router: respx.Router) -> AsyncIterator[genai.Client]:
    async with httpx.AsyncClient() as http:
        gemini = make_client(http)
        yield gemini
        await gemini.aio.aclose()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A knowledge folder of four files (`filesearch_support.knowledge_folder`)."""
    return knowledge_folder(tmp_path)


@pytest.fixture(name="store_name")
def store_fixture(file_search: FakeFileSearch) -> str:
    return file_search.add_store("Acme docs")


# The business's API that the tools tests call: a real HTTP server, one per test module.


@pytest.fixture(scope="module")
def api() -> Iterator[BusinessApi]:
    with BusinessApi() as server:
        yield server


@pytest.fixture
def seen(api: BusinessApi) -> BusinessApi:
    """The business's API with nothing recorded yet."""
    api.requests.clear()
    return api


# The business's MCP server that the MCP tools tests list and call, one per test module.


@pytest.fixture(scope="module")
def mcp_shop() -> Iterator[McpShop]:
    from mcp_server import McpShop  # the mcp SDK, for the tests that use it only

    with McpShop() as server:
        yield server


@pytest.fixture
def mcp_seen(mcp_shop: McpShop) -> McpShop:
    """The MCP server with no call recorded yet."""
    mcp_shop.calls.seen.clear()
    return mcp_shop
