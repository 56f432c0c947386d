"""A document sync's store, made once per business and reused, and the report it gives.

The real google-genai client against the fake File Search (documents/sync.py).
"""

from __future__ import annotations

from fake_file_search import FakeFileSearch
from google import genai

from documents.sync import FileResult, SyncReport, ensure_store


class MemoryRegistry:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    async def get(self, business: str) -> str | None:
        return self.names.get(business)

    async def set(self, business: str, store_name: str) -> None:
        self.names[business] = store_name


async def test_ensure_store_creates_once_and_reuses(
    genai_client: genai.Client, file_search: FakeFileSearch
) -> None:
    registry = MemoryRegistry()

    first = await ensure_store(genai_client, registry, "Acme Bakery")
    second = await ensure_store(genai_client, registry, "Acme Bakery")
    other = await ensure_store(genai_client, registry, "Other shop")

    assert first == second != other
    assert registry.names == {"Acme Bakery": first, "Other shop": other}
    assert len(file_search.calls_to("POST", "/v1/fileSearchStores")) == 2
    assert file_search.stores[first].display_name == "WhatsApp assistant: Acme Bakery"
    assert first.startswith("fileSearchStores/whatsapp-assistant-acme-bak-")


def test_report_counts_and_summary() -> None:
    report = SyncReport(
        [
            FileResult("a.md", 1, "uploaded"),
            FileResult("b.md", 1, "uploaded"),
            FileResult("c.md", 1, "skipped", "empty file"),
        ]
    )
    assert (report.uploaded, report.skipped, report.failed) == (2, 1, 0)
    assert report.summary() == "2 uploaded, 0 unchanged, 0 deleted, 0 failed, 1 skipped"
