"""Shared pieces of the knowledge tests: the fake File Search behind respx, a real genai client."""

from __future__ import annotations

from typing import Any

import httpx
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
