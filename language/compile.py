"""Compile the reply catalogues (`locale/*/LC_MESSAGES/*.po`) to the `.mo` files gettext reads.

A development tool, run after editing a `.po` file: `python -m language.compile`. It needs Babel
(requirements-dev.txt); the service itself reads the committed `.mo` files with `gettext` alone.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().with_name("locale")


def po_files() -> list[Path]:
    """Every source catalogue, in a stable order."""
    return sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))


def compile_po(po_path: Path) -> bytes:
    """The `.mo` bytes for one `.po` file; fuzzy and untranslated entries are left out."""
    with po_path.open("rb") as source:
        catalog = read_po(
            source,
            locale=po_path.parent.parent.name,
            domain=po_path.stem,
            abort_invalid=True,
        )
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    return compiled.getvalue()


def main() -> int:
    """Write each `.mo` next to its `.po`, rewriting only those whose bytes change."""
    paths = po_files()
    if not paths:
        print(f"no .po files under {LOCALE_DIR}", file=sys.stderr)
        return 1
    for po_path in paths:
        mo_path = po_path.with_suffix(".mo")
        data = compile_po(po_path)
        if mo_path.exists() and mo_path.read_bytes() == data:
            print(f"{mo_path}: up to date")
            continue
        mo_path.write_bytes(data)
        print(f"{mo_path}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
