"""The app's other routes over ASGI: /health, the OpenAPI document, and the front door at GET /."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from helpers import PHONE_NUMBER_ID, Harness, make_settings

from main import create_app


async def test_health_is_ok(harness: Harness) -> None:
    response = await harness.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_openapi_document_describes_every_route(harness: Harness) -> None:
    """POST /webhook is served by a PlainRoute (no FastAPI handler); it stays documented,
    which Schemathesis in the fault suite depends on."""
    response = await harness.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {path: sorted(operations) for path, operations in paths.items()} == {
        "/health": ["get"],
        "/ready": ["get"],
        "/metrics": ["get"],
        "/webhook": ["get", "post"],
    }
    assert paths["/webhook"]["post"]["operationId"] == "receive_webhook_webhook_post"


# --- GET /: the front door ---------------------------------------------------------------


async def front_door(settings: Any, path: str) -> httpx.Response:
    """`path` of an app that was built and not started: the front door needs nothing else."""
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


async def test_the_front_door_says_the_service_runs_and_nothing_about_it(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/a.db", system_prompt="Padaria's assistant")
    response = await front_door(settings, "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "running" in response.text
    assert len(response.text) < 300
    told = response.text.lower()
    for setting_value in (PHONE_NUMBER_ID, "v25.0", "gemini-3", "padaria", "sqlite", "graph.test"):
        assert setting_value not in told
    assert not any(character.isdigit() for character in told)  # no version of anything


async def test_the_front_door_opens_the_console_when_it_is_on(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/a.db", console_password="a-console-secret")
    response = await front_door(settings, "/")
    assert (response.status_code, response.headers["location"]) == (307, "/console")
    slash = await front_door(settings, "/console/")
    assert (slash.status_code, slash.headers["location"]) == (308, "/console")
    off = make_settings(f"sqlite:///{tmp_path}/b.db")
    assert (await front_door(off, "/console/")).status_code == 404
