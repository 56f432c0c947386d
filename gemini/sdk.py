"""The google-genai SDK set up for this service: its client over our HTTP client, made cheaper."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from domain.types import Backoff

if TYPE_CHECKING:
    import aiohttp
    from google import genai


def genai_client(
    *,
    api_key: str,
    http: httpx.AsyncClient | aiohttp.ClientSession,
    base_url: str | None,
    timeout_seconds: float,
    backoff: Backoff,
) -> genai.Client:
    """A google-genai client that sends through `http`, an httpx client (tests fake it with
    respx) or an aiohttp session (the SDK's documented aiohttp transport), which the caller
    owns and closes; with a time limit and the SDK's own retries."""
    from google import genai
    from google.genai import types

    speed_up_sdk_field_lookups()
    options = types.HttpOptions(
        base_url=base_url,
        timeout=int(timeout_seconds * 1000),
        httpx_async_client=http if isinstance(http, httpx.AsyncClient) else None,
        aiohttp_client=None if isinstance(http, httpx.AsyncClient) else http,
        retry_options=types.HttpRetryOptions(
            attempts=backoff.attempts,
            initial_delay=backoff.first_delay,
            max_delay=backoff.max_delay,
        ),
    )
    return genai.Client(api_key=api_key, http_options=options)


def speed_up_sdk_field_lookups() -> None:
    """Make `name in model` answer at once for google-genai's models, with the same answer.

    google-genai (3.x) turns every request into JSON by probing each field it knows of with
    `key in model` (`_common.get_value_by_path`). pydantic models have no `__contains__`, so
    Python answers by iterating the model's (name, value) pairs, which never equal a string:
    every probe walks every field to say False. That was most of the SDK's CPU per request
    (bench/RESULTS.md, section 5); the bytes sent are the same with and without it.
    Strings get False at once; anything else is still compared pair by pair, as before.

    Upstream: no report of this was found in googleapis/python-genai's tracker when this was
    written; the fix belongs in `_common.get_value_by_path`. This can go when the SDK's models
    define `__contains__` (then this steps aside by itself, and tests/test_llm.py says so) or
    stop being probed with `in`, and `make bench` shows the same CPU per request without it.
    """
    from google.genai import _common

    if getattr(_common.BaseModel, "__contains__", None) is not None:
        return

    def contains(self: object, item: object) -> bool:
        if isinstance(item, str):
            return False
        return any(item == pair for pair in self)  # type: ignore[attr-defined]

    setattr(_common.BaseModel, "__contains__", contains)  # noqa: B010 - a method, not a field
