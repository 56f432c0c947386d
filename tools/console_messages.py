"""The console's catalogues brought up to date with its words (`make messages`).

Every msgid is found in the console's templates (`_("...")`) and Python (`gettext`, `ngettext`,
`say` and `N_`, a word marked where it is defined and translated where it is shown), and in the
operator desk's refusals (answering/operators.py). `python -m tools.console_messages` adds the
new msgids to each `console/locales/<lang>/LC_MESSAGES/console.po` (untranslated), drops those no
longer used and lists what still needs a translation; `--check` changes nothing and exits 1 while
anything is missing, stale or untranslated (tests/console/test_console_catalogues.py checks the
same).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po

from console.languages import CATALOGUES, DOMAIN, catalogue_path

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "say": None, "N_": None}
# The desk's refusals an operator reads on the console (the rest of answering is the replies').
OTHER_SOURCES = ("answering/operators.py",)
WIDTH = 100


def sources() -> list[Path]:
    """Every file the console's words are taken from, in a stable order."""
    console = ROOT / "console"
    found = sorted(console.glob("*.py")) + sorted((console / "templates").glob("*.html"))
    return found + [ROOT / name for name in OTHER_SOURCES]


def extracted(paths: Iterable[Path] | None = None) -> Catalog:
    """The catalogue template: each msgid once, with the files it is in."""
    template = Catalog(domain=DOMAIN, project="console", fuzzy=False)
    for path in sources() if paths is None else paths:
        method = "jinja2.ext.babel_extract" if path.suffix == ".html" else "python"
        options = {"trimmed": "false"} if path.suffix == ".html" else {}
        with path.open("rb") as source:
            found = extract(method, source, keywords=KEYWORDS, options=options)
            for _line, message, _comments, _context in found:
                inside = path.is_relative_to(ROOT)
                where = ((path.relative_to(ROOT) if inside else path).as_posix(), 0)
                template.add(message, locations=[where])
    return template


def read(path: Path, locale: str) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale, domain=DOMAIN, abort_invalid=True)


def untranslated(catalog: Catalog) -> list[str]:
    """The msgids that still need a translation (fuzzy ones too: they are not used)."""
    missing = []
    for message in catalog:
        if not message.id:
            continue
        string = message.string
        strings = list(string) if isinstance(string, (tuple, list)) else [string]
        if message.fuzzy or not all(isinstance(s, str) and s.strip() for s in strings):
            missing.append(str(message.id if isinstance(message.id, str) else message.id[0]))
    return missing


def render(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=WIDTH, omit_header=False, include_lineno=False, no_location=False)
    return out.getvalue()


def new_catalogue(locale: str) -> Catalog:
    header = (
        f"# The assistant console's words in {locale}: fill in each msgstr.\n"
        "# `make messages` adds new msgids and drops unused ones; docs/console.md says more."
    )
    return Catalog(
        locale=locale,
        domain=DOMAIN,
        header_comment=header,
        project="assistant console",
        version="1",
        copyright_holder="",
        msgid_bugs_address="",
        last_translator="",
        language_team="",
        fuzzy=False,
    )


def updated(path: Path, locale: str, template: Catalog) -> Catalog:
    """The language's catalogue with exactly the template's msgids; translations kept."""
    catalog = read(path, locale) if path.exists() else new_catalogue(locale)
    catalog.update(
        template, no_fuzzy_matching=True, update_header_comment=False, update_creation_date=False
    )
    catalog.obsolete.clear()  # no longer used: dropped, not kept as comments
    return catalog


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    check = parser.parse_args(argv).check
    template = extracted()
    problems = 0
    for code, locale in CATALOGUES.items():
        path = catalogue_path(code)
        catalog = updated(path, locale, template)
        text = render(catalog)
        missing = untranslated(catalog)
        stale = not path.exists() or path.read_bytes() != text
        if check and stale:
            print(f"{path}: out of date with the console's words (`make messages`)")
            problems += 1
        elif stale:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text)
            print(f"{path}: updated")
        for msgid in missing:
            print(f"{path}: needs a translation: {msgid!r}")
        problems += len(missing)
    print(f"{len(template)} msgids; {problems} problem(s)")
    return 1 if check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
