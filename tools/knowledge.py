"""`make knowledge`: each business's folder into Gemini File Search now, said file by file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from config import Settings
from documents.library import Library
from documents.sync import FileResult, scan
from domain.businesses import Business
from service.knowledge import file_search_client
from service.startup_settings import load_settings
from storage.store import Store

BAR_WIDTH = 24


def size_of(count: int) -> str:
    """1536 -> '1.5 KB': sizes as a person reads them."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Progress:
    """A bar on a terminal (redrawn in place), one line per file otherwise."""

    def __init__(self, total: int, out: TextIO) -> None:
        self._total, self._done, self._out = max(total, 1), 0, out
        self._live = out.isatty()

    def __call__(self, result: FileResult) -> None:
        self._done += 1
        if self._live:
            filled = BAR_WIDTH * min(self._done, self._total) // self._total
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self._out.write(f"\r  [{bar}] {self._done}/{self._total} {result.path[:40]:<40}")
            self._out.flush()
        else:
            self._out.write(f"  {result.action:<9} {result.path}\n")

    def close(self) -> None:
        if self._live:
            self._out.write("\n")


def print_report(results: Sequence[FileResult], out: TextIO) -> None:
    for result in results:
        reason = f"  ({result.reason})" if result.reason else ""
        out.write(f"  {result.action:<9} {size_of(result.size):>9}  {result.path}{reason}\n")


async def synchronise(settings: Settings, businesses: Sequence[Business], out: TextIO) -> int:
    """Synchronise each business; the number of files that failed."""
    store = await Store.open(
        settings.database_url,
        migrate=settings.auto_migrate,
        phone_number_id=settings.phone_number_id,
    )
    try:
        async with file_search_client(settings) as client:
            library = Library(client, store, prices=settings.prices)
            return await _synchronise_each(library, businesses, out)
    finally:
        await store.close()


async def _synchronise_each(library: Library, businesses: Sequence[Business], out: TextIO) -> int:
    failed = 0
    for business in businesses:
        out.write(f"{business.name}: {business.knowledge_dir}\n")
        files = await asyncio.to_thread(scan, business.knowledge_dir)
        progress = Progress(len(files), out)
        report = await library.synchronise(business, progress)
        progress.close()
        if report is None:
            if business.knowledge_dir.exists():
                out.write("  nothing to do: no files, and no documents uploaded before\n")
            else:
                out.write("  no such folder: nothing done, documents uploaded from it are kept\n")
            continue
        print_report(report.results, out)
        out.write(f"  {report.summary()}\n")
        failed += report.failed
    return failed


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="make knowledge", description=__doc__)
    parser.add_argument("--tenant", default="", help="only this business of TENANTS_FILE")
    args = parser.parse_args(argv)
    settings = load_settings()
    chosen = [b for b in settings.businesses if not args.tenant or b.name == args.tenant]
    if not chosen:
        print(f"knowledge: no business named {args.tenant!r}", file=sys.stderr)
        return 1
    failed = asyncio.run(synchronise(settings, chosen, out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
