"""A document sync's changes: new, unchanged, changed and deleted files; many and duplicate ones.

The real google-genai client against the fake File Search (documents/sync.py).
"""

from __future__ import annotations

from pathlib import Path

from fake_file_search import FakeFileSearch
from filesearch_support import actions, by_display_name, run, sha, write
from google import genai

from documents.sync import FileResult

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


async def test_first_sync_uploads_everything_with_metadata(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    seen: list[FileResult] = []

    report = await run(genai_client, store_name, folder, progress=seen.append)

    assert actions(report) == {
        "hours.txt": "uploaded",
        "menu.md": "uploaded",
        "policies/returns.pdf": "uploaded",
        "policies/warranty.docx": "uploaded",
    }
    assert (report.uploaded, report.unchanged, report.deleted, report.failed) == (4, 0, 0, 0)
    assert sorted(seen, key=lambda r: r.path) == report.results
    docs = {doc.display_name: doc for doc in file_search.documents(store_name)}
    assert set(docs) == set(actions(report))
    for path, doc in docs.items():
        content = (folder / path).read_bytes()
        assert doc.content == content
        assert doc.metadata == {"sha256": sha(content), "source": "folder"}
        assert doc.state == "STATE_ACTIVE"  # each upload was awaited until processed
    assert docs["menu.md"].mime_type == "text/markdown"
    assert docs["policies/returns.pdf"].mime_type == "application/pdf"
    assert docs["policies/warranty.docx"].mime_type == DOCX
    assert all(op.done and op.polls >= 2 for op in file_search.operations.values())
    assert report.results[0] == FileResult("hours.txt", 29, "uploaded", None)


async def test_resync_uploads_nothing(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    await run(genai_client, store_name, folder)
    calls_before = len(file_search.calls)

    report = await run(genai_client, store_name, folder)

    assert set(actions(report).values()) == {"unchanged"}
    assert report.unchanged == 4
    later = file_search.calls[calls_before:]
    assert [(c.method, c.path) for c in later] == [("GET", f"/v1/{store_name}/documents")]
    assert len(file_search.documents(store_name)) == 4


async def test_changed_file_is_uploaded_before_the_old_one_is_deleted(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    await run(genai_client, store_name, folder)
    old = next(
        doc.name for doc in file_search.documents(store_name) if doc.display_name == "menu.md"
    )
    write(folder, "menu.md", b"# Menu\nPizza 13 EUR\n")
    calls_before = len(file_search.calls)

    report = await run(genai_client, store_name, folder)

    assert actions(report)["menu.md"] == "uploaded"
    assert next(r for r in report.results if r.path == "menu.md").reason == (
        "replaced the previous version"
    )
    assert report.unchanged == 3
    assert by_display_name(file_search, store_name)["menu.md"] == [sha(b"# Menu\nPizza 13 EUR\n")]
    later = file_search.calls[calls_before:]
    finalize = next(i for i, c in enumerate(later) if c.upload_command == "upload, finalize")
    delete = next(i for i, c in enumerate(later) if c.method == "DELETE")
    assert later[delete].path == f"/v1/{old}"
    assert later[delete].query == "force=True"
    assert finalize < delete


async def test_deleted_file_loses_its_document(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    await run(genai_client, store_name, folder)
    (folder / "policies" / "returns.pdf").unlink()

    report = await run(genai_client, store_name, folder)

    assert actions(report)["policies/returns.pdf"] == "deleted"
    assert report.deleted == 1
    assert "policies/returns.pdf" not in by_display_name(file_search, store_name)
    assert len(file_search.documents(store_name)) == 3


async def test_console_documents_stay(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    console = file_search.add_document(
        store_name, "price list.pdf", b"%PDF console", metadata={"sha256": "x", "source": "console"}
    )
    studio = file_search.add_document(store_name, "menu.md", b"uploaded in AI Studio", metadata={})

    report = await run(genai_client, store_name, folder)
    (folder / "menu.md").unlink()
    again = await run(genai_client, store_name, folder)

    names = {doc.name for doc in file_search.documents(store_name)}
    assert {console, studio} <= names
    assert actions(report)["menu.md"] == "uploaded"  # its own document, next to AI Studio's
    assert actions(again)["menu.md"] == "deleted"
    assert "price list.pdf" not in actions(report) | actions(again)
    assert by_display_name(file_search, store_name)["menu.md"] == [
        ""
    ]  # only the AI Studio one is left


async def test_many_documents_are_read_page_by_page(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    for number in range(45):
        write(folder, f"notes/{number:02}.txt", f"note {number}".encode())
    await run(genai_client, store_name, folder, concurrency=8)
    calls_before = len(file_search.calls)

    report = await run(genai_client, store_name, folder)

    assert report.unchanged == 45
    pages = [c.query for c in file_search.calls[calls_before:]]
    assert pages == [
        "pageSize=20",
        "pageSize=20&pageToken=offset-20",
        "pageSize=20&pageToken=offset-40",
    ]


async def test_duplicates_of_one_file_are_reduced_to_one(
    genai_client: genai.Client, file_search: FakeFileSearch, store_name: str, folder: Path
) -> None:
    content = (folder / "hours.txt").read_bytes()
    metadata = {"sha256": sha(content), "source": "folder"}
    for _ in range(2):  # as if two instances had synchronised at once, without the lock
        file_search.add_document(store_name, "hours.txt", content, metadata=metadata)

    report = await run(genai_client, store_name, folder)

    assert actions(report)["hours.txt"] == "unchanged"
    assert by_display_name(file_search, store_name)["hours.txt"] == [sha(content)]
