"""One call of a business's HTTP tool: arguments checked, the request made, the answer bounded.

Gemini's arguments go nowhere until they match the tool's schema; undeclared ones are dropped.
Placeholders are percent-encoded as one path segment each, so no value can change the host or
add a segment. Who the customer is comes from the webhook alone (the customer header). The
answer is read to at most 8 KiB and a little; Gemini gets `{"status", "body"}` or `{"error"}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from domain.tools import PLACEHOLDER, HttpTool
from domain.types import ToolCallRecord
from ops.metrics import Metrics

C = TypeVar("C")  # a call's arguments, once checked

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8192
READ_LIMIT = MAX_BODY_BYTES + 512  # enough to know a body is larger than 8 KiB
INVALID_ARGUMENTS = "invalid arguments"
USER_AGENT = "whatsapp-gemini-assistant"


def tools_http_client(max_connections: int) -> httpx.AsyncClient:
    """The client every business's tools share: bounded pools, no redirects followed (a
    redirect could lead anywhere), explicit timeouts (each call sets its tool's own)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(5.0),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
            keepalive_expiry=30.0,
        ),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one call gives Gemini as the function's response, and what is kept of it."""

    response: dict[str, Any]
    record: ToolCallRecord
    outcome: str  # the `outcome` label of assistant_tool_calls_total


@dataclass(frozen=True, slots=True)
class Prepared:
    url: httpx.URL
    body: dict[str, Any] | None  # POST's JSON body


def segment(value: Any) -> str:
    """A placeholder's value as one path segment: every reserved character encoded (`/` and
    `?` too), and a value of dots alone (`..`) encoded, since clients resolve those."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    encoded = urllib.parse.quote(text, safe="")
    return encoded.replace(".", "%2E") if text and set(text) == {"."} else encoded


def _query_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def checked_arguments(schema: Mapping[str, Any], args: Mapping[str, Any]) -> dict[str, Any] | str:
    """The arguments the schema declares, when they match it, or what is wrong with them."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    declared = schema.get("properties") or {}
    kept = {name: value for name, value in args.items() if name in declared}
    error = best_match(Draft202012Validator(schema).iter_errors(kept))
    if error is not None:
        where = error.json_path.removeprefix("$.").removeprefix("$")
        return f"{where}: {error.message}" if where else error.message
    return kept


def prepare(tool: HttpTool, args: Mapping[str, Any]) -> Prepared | str:
    """The request for these arguments, or what is wrong with them (then nothing is sent)."""
    kept = checked_arguments(tool.parameters, args)
    if isinstance(kept, str):
        return kept
    missing = [name for name in tool.placeholders if kept.get(name) in (None, "")]
    if missing:
        return f"{missing[0]} is required"
    path = PLACEHOLDER.sub(lambda match: segment(kept[match[1]]), tool.url)
    rest = {name: value for name, value in kept.items() if name not in tool.placeholders}
    url = httpx.URL(path)
    if tool.method == "POST":
        return Prepared(url, rest)
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in rest.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((name, _query_value(item)) for item in values if item is not None)
    return Prepared(url.copy_merge_params(pairs) if pairs else url, None)


def body_of(data: bytes, encoding: str | None) -> Any:
    """The JSON when the body parses and is at most 8 KiB, else its text cut at 8,192 bytes."""
    if len(data) <= MAX_BODY_BYTES:
        try:
            return json.loads(data)
        except ValueError:
            pass
    try:
        return data[:MAX_BODY_BYTES].decode(encoding or "utf-8", errors="ignore")
    except LookupError:  # a charset Python does not know
        return data[:MAX_BODY_BYTES].decode("utf-8", errors="ignore")


async def _read_bounded(response: httpx.Response) -> bytes:
    """At most READ_LIMIT bytes of the body (decompressed); the rest is never read."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > READ_LIMIT:
            break
    return bytes(data[:READ_LIMIT])


async def measured(
    metrics: Metrics,
    business: str,
    name: str,
    checked: C | str,
    send: Callable[[C, float], Awaitable[ToolResult]],
) -> ToolResult:
    """One tool call, counted and timed by its outcome: arguments that failed their check
    (`checked` is then why) are answered to Gemini without a call."""
    started = time.perf_counter()
    if isinstance(checked, str):
        record = ToolCallRecord(name, None, INVALID_ARGUMENTS, 0.0)
        result = ToolResult({"error": checked}, record, "invalid_arguments")
    else:
        result = await send(checked, started)
        metrics.tool_call_seconds.labels(business, name).observe(time.perf_counter() - started)
    metrics.tool_calls.labels(business, name, result.outcome).inc()
    return result


class ToolCaller:
    """Makes tool calls over the service's own HTTP client (the answering lifespan owns it)."""

    def __init__(self, http: httpx.AsyncClient, metrics: Metrics) -> None:
        self._http = http
        self._metrics = metrics

    async def call(
        self, tool: HttpTool, args: Mapping[str, Any], *, customer: str, business: str
    ) -> ToolResult:
        """Call `tool` for `customer` (the webhook's sender); never raises for what the
        business's API does."""
        result = await measured(
            self._metrics,
            business,
            tool.name,
            prepare(tool, args),
            lambda prepared, started: self._send(tool, prepared, customer, started),
        )
        record = result.record
        log.info(
            "tool %s: %s in %.0f ms",
            tool.name,
            record.status if record.status is not None else record.error,
            record.duration_ms,
            extra={
                "stage": "tool",
                "tenant": business,
                "tool": tool.name,
                "status": record.status,
                "error": record.error,
                "duration_ms": record.duration_ms,
            },
        )
        return result

    async def _send(
        self, tool: HttpTool, prepared: Prepared, customer: str, started: float
    ) -> ToolResult:
        headers = {"Accept": "application/json"}
        if tool.auth is not None:
            name, value = tool.auth.header()
            headers[name] = value
        if tool.customer_header and customer:
            headers[tool.customer_header] = customer
        try:
            async with asyncio.timeout(tool.timeout_seconds):
                async with self._http.stream(
                    tool.method,
                    prepared.url,
                    json=prepared.body,
                    headers=headers,
                    timeout=tool.timeout_seconds,
                ) as response:
                    data = await _read_bounded(response)
        except (TimeoutError, httpx.TimeoutException):
            return self._failed(tool, "timeout", "timeout", started)
        except httpx.TransportError as exc:
            problem = f"connection problem ({type(exc).__name__})"
            return self._failed(tool, problem, "connection_error", started)
        status = response.status_code
        record = ToolCallRecord(tool.name, status, None, _ms(started))
        outcome = "ok" if 200 <= status < 300 else f"{status // 100}xx"
        body = body_of(data, response.charset_encoding)
        return ToolResult({"status": status, "body": body}, record, outcome)

    @staticmethod
    def _failed(tool: HttpTool, error: str, outcome: str, started: float) -> ToolResult:
        record = ToolCallRecord(tool.name, None, error, _ms(started))
        return ToolResult({"error": error}, record, outcome)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
