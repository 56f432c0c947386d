"""Delivery and templates in tests: Meta's statuses webhook, its list of a WhatsApp Business
Account's templates faked at the HTTP level (respx). Every template the service sends is checked
against Meta's OpenAPI description by the fake Graph itself (meta_openapi.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx
from helpers import GRAPH_BASE, load_payload
from respx_upstreams import FakeUpstreams

WABA_ID = "102290129340398"


def template_entry(
    name: str,
    body: str,
    *,
    language: str = "pt_BR",
    category: str = "UTILITY",
    status: str = "APPROVED",
    named: bool = False,
    more: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One entry of `GET /{version}/{WABA id}/message_templates`, as Meta lists it."""
    entry: dict[str, Any] = {
        "id": f"9{abs(hash((name, language))) % 10**14}",
        "name": name,
        "language": language,
        "status": status,
        "category": category,
        "components": [{"type": "BODY", "text": body}, *(more or [])],
    }
    if named:
        entry["parameter_format"] = "NAMED"
    return entry


@dataclass
class FakeTemplates:
    """The templates endpoint, in pages of `page_size`, following Meta's cursors."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    requests: list[httpx.Request] = field(default_factory=list)
    queue: list[httpx.Response] = field(default_factory=list)

    def install(self, router: respx.Router) -> None:
        router.get(
            url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<waba>\d+)/message_templates(\?.*)?$"
        ).mock(side_effect=self._list)

    def _list(self, request: httpx.Request, waba: str) -> httpx.Response:
        self.requests.append(request)
        if self.queue:
            return self.queue.pop(0)
        if waba != WABA_ID:
            return httpx.Response(400, json={"error": {"message": "Unknown WABA", "code": 100}})
        after = request.url.params.get("after", "")
        start = int(after.removeprefix("cursor-")) if after else 0
        page = self.entries[start : start + self.page_size]
        paging: dict[str, Any] = {
            "cursors": {"before": f"cursor-{start}", "after": f"cursor-{start + len(page)}"}
        }
        if start + len(page) < len(self.entries):
            # Meta's next address; the client follows the cursor under its own base URL instead.
            paging["next"] = f"https://elsewhere.test/v25.0/{waba}/message_templates?after=x"
        return httpx.Response(200, json={"data": copy.deepcopy(page), "paging": paging})


def template_sends(graph_calls: list[tuple[dict[str, Any], int]]) -> list[dict[str, Any]]:
    """Template messages posted to Meta, accepted or not."""
    return [body for body, _ in graph_calls if body.get("type") == "template"]


def statuses_payload(*events: tuple[str, str] | tuple[str, str, int, str]) -> dict[str, Any]:
    """Meta's statuses webhook with these (wamid, status[, error code, error title]) events."""
    payload = copy.deepcopy(load_payload("statuses"))
    value = payload["entry"][0]["changes"][0]["value"]
    template = value["statuses"][0]
    value["statuses"] = []
    for event in events:
        status = {**copy.deepcopy(template), "id": event[0], "status": event[1]}
        if len(event) == 4:
            status["errors"] = [{"code": event[2], "title": event[3], "message": event[3]}]
        value["statuses"].append(status)
    return payload


def last_wamid(fakes: FakeUpstreams) -> str:
    """The id the fake Meta gave the latest message sent (`wamid.out-<its call's index>`)."""
    sends = [i for i, (body, _) in enumerate(fakes.graph_calls) if body.get("type")]
    return f"wamid.out-{sends[-1]}"
