"""What a document sync reads from its folder: skipped files, an emptied, missing or unreadable one.

The real google-genai client against the fake File Search (documents/sync.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_file_search import FakeFileSearch
from filesearch_support import by_display_name, run, write
from google import genai

from documents.filesearch import KnowledgeError


async def test_unsupported_hidden_and_empty_files(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    write(folder, "photo.jpg", b"\xff\xd8\xff")
    write(folder, "README", b"no extension")
    write(folder, "blank.txt", b"")
    write(folder, ".env", b"SECRET=1")
    write(folder, ".git/config", b"[core]")
    write(folder, "drafts/.hidden.md", b"# not yet")

    report = await run(genai_client, store_name, folder)

    skipped = {r.path: r.reason for r in report.results if r.action == "skipped"}
    assert skipped == {
        "photo.jpg": "unsupported file type .jpg",
        "README": "unsupported file without an extension",
        "blank.txt": "empty file",
    }
    assert report.uploaded == 4
    assert not any(
        ".env" in r.path or ".git" in r.path or "hidden" in r.path for r in report.results
    )
    assert set(by_display_name(file_search, store_name)) == {
        "hours.txt",
        "menu.md",
        "policies/returns.pdf",
        "policies/warranty.docx",
    }


async def test_an_emptied_folder_deletes_every_folder_document(
    genai_client: genai.Client,
    file_search: FakeFileSearch,
    store_name: str,
    folder: Path,
    tmp_path: Path,
) -> None:
    await run(genai_client, store_name, folder)
    file_search.add_document(store_name, "faq.md", b"console", metadata={"source": "console"})
    emptied = tmp_path / "emptied"
    emptied.mkdir()

    report = await run(genai_client, store_name, emptied)

    assert report.deleted == 4
    assert [doc.display_name for doc in file_search.documents(store_name)] == ["faq.md"]


async def test_a_missing_folder_deletes_nothing(
    genai_client: genai.Client,
    file_search: FakeFileSearch,
    store_name: str,
    folder: Path,
    tmp_path: Path,
) -> None:
    """Most often a mistyped path: emptying the store for it would lose every document."""
    await run(genai_client, store_name, folder)
    calls = len(file_search.calls)

    with pytest.raises(KnowledgeError) as refused:
        await run(genai_client, store_name, tmp_path / "nowhere")

    assert "does not exist" in refused.value.reason
    assert len(file_search.documents(store_name)) == 4
    assert file_search.calls[calls:] == []  # not even listed


async def test_folder_that_is_a_file_is_refused(
    genai_client: genai.Client, store_name: str, tmp_path: Path
) -> None:
    not_a_folder = write(tmp_path, "knowledge", b"oops")
    with pytest.raises(KnowledgeError):
        await run(genai_client, store_name, not_a_folder)


async def test_unreadable_subfolder_stops_the_sync_instead_of_deleting(
    genai_client: genai.Client,
    file_search: FakeFileSearch,
    store_name: str,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await run(genai_client, store_name, folder)
    real_walk = os.walk

    def walk(
        top: Path, onerror: Callable[[OSError], None]
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        for root, dirs, names in real_walk(top, onerror=onerror):
            if root.endswith("policies"):  # as os.walk does when it cannot list a folder
                onerror(PermissionError(13, "Permission denied", root))
                continue
            yield root, dirs, names

    monkeypatch.setattr(os, "walk", walk)
    with pytest.raises(KnowledgeError, match=r"cannot read .*policies: Permission denied"):
        await run(genai_client, store_name, folder)
    assert len(file_search.documents(store_name)) == 4


async def test_concurrency_must_be_positive(
    genai_client: genai.Client, store_name: str, folder: Path
) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await run(genai_client, store_name, folder, concurrency=0)
