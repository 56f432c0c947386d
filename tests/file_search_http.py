"""How the fake File Search speaks HTTP as Google does: its error bodies, pages of a list, and
request bodies read in camelCase or snake_case."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

PAGE_LIMIT = 20
DEFAULT_PAGE_SIZE = 10
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def error(status: int, message: str, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """Google's error body."""
    body = {
        "error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    }
    return httpx.Response(status, json=body, headers=headers)


def page(request: httpx.Request, items: list[dict[str, Any]], key: str) -> httpx.Response:
    size_text = request.url.params.get("pageSize", str(DEFAULT_PAGE_SIZE))
    token = request.url.params.get("pageToken", "")
    if not size_text.isdigit() or not 0 < int(size_text) <= PAGE_LIMIT:
        return error(400, f"pageSize must be between 1 and {PAGE_LIMIT}")
    if token and not re.fullmatch(r"offset-\d+", token):
        return error(400, "invalid pageToken")
    start = int(token.removeprefix("offset-")) if token else 0
    end = start + int(size_text)
    body: dict[str, Any] = {key: items[start:end]} if items[start:end] else {}
    if end < len(items):
        body["nextPageToken"] = f"offset-{end}"
    return httpx.Response(200, json=body)


def json_body(request: httpx.Request) -> dict[str, Any]:
    if not request.content:
        return {}
    body = json.loads(request.content)
    return body if isinstance(body, dict) else {}


def camel_field(body: Mapping[str, Any], camel: str) -> Any:
    """A field by its camelCase name or the snake_case one the SDK sometimes sends."""
    if camel in body:
        return body[camel]
    return body.get(re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), camel))


def metadata_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """One customMetadata entry, stored as Google echoes it (camelCase)."""
    normalised: dict[str, Any] = {"key": str(item.get("key", ""))}
    for name in ("stringValue", "numericValue", "stringListValue"):
        value = camel_field(item, name)
        if value is not None:
            normalised[name] = value
    return normalised


def forced(request: httpx.Request) -> bool:
    return str(request.url.params.get("force", "")).lower() == "true"
