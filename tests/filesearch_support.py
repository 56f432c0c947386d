"""Shared pieces of the knowledge tests: the fake File Search behind respx, a real genai client,
a knowledge folder, a document sync run against them and its report read back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
from fake_file_search import FakeFileSearch
from google import genai
from google.genai import types

from documents.filesearch import Polling
from documents.sync import SyncReport, synchronise

BASE_URL = "https://gemini.test"
API_KEY = "test-knowledge-key-9d1e"
FAST = Polling(timeout=5.0, first_delay=0.001, max_delay=0.01)


def make_client(http: httpx.AsyncClient, **options: Any) -> genai.Client:
    """google-genai over the given httpx client, pointed at the fake."""
    http_options = types.HttpOptions(base_url=BASE_URL, httpx_async_client=http, **options)
    return genai.Client(api_key=API_KEY, http_options=http_options)


def write(folder: Path, path: str, content: bytes) -> Path:
    location = folder / path
    location.parent.mkdir(parents=True, exist_ok=True)
    location.write_bytes(content)
    return location


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def actions(report: SyncReport) -> dict[str, str]:
    return {result.path: result.action for result in report.results}


def by_display_name(file_search: FakeFileSearch, store_name: str) -> dict[str, list[str]]:
    """Display name -> the sha256 metadata of each document of that name."""
    names: dict[str, list[str]] = {}
    for doc in file_search.documents(store_name):
        names.setdefault(doc.display_name, []).append(doc.metadata.get("sha256", ""))
    return names


async def run(
    genai_client: genai.Client, store_name: str, folder: Path, **kwargs: object
) -> SyncReport:
    return await synchronise(genai_client, store_name, folder, polling=FAST, **kwargs)  # type: ignore[arg-type]


def knowledge_folder(tmp_path: Path) -> Path:
    """A knowledge folder of four files: Markdown, text, PDF and DOCX, two in a subfolder."""
    root = tmp_path / "knowledge"
    write(root, "menu.md", b"# Menu\nPizza 12 EUR\n")
    write(root, "hours.txt", b"Open 9-18, closed on Sundays\n")
    write(root, "policies/returns.pdf", b"%PDF-1.7 returns within 30 days")
    write(root, "policies/warranty.docx", b"PK\x03\x04 two years")
    return root
