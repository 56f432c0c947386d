"""The documentation holds together: every relative link and anchor leads somewhere, every page of
docs/ is reachable from both front pages, and the `make` commands they name exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ROOT

FRONT_PAGES = (ROOT / "README.md", ROOT / "README.pt-BR.md")
DOCS = sorted((ROOT / "docs").glob("*.md"))
GENERATED = {ROOT / "docs" / "settings.md"}  # written by a generator from the code, not by hand
PAGES = [*FRONT_PAGES, ROOT / "CHANGELOG.md", *DOCS, *sorted((ROOT / "bench").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}```.*?^ {0,3}```[^\n]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+([a-z][\w.-]*)", re.MULTILINE)
MAKE_TARGET = re.compile(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", re.MULTILINE)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def prose(path: Path) -> str:
    """The page without its fenced code blocks, where brackets are code, not links."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def anchors(path: Path) -> set[str]:
    """The fragments GitHub gives the page's headings: lower case, punctuation dropped, spaces
    as hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(path)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> Iterator[str]:
    """The page's relative link targets; a code span that shows a link's syntax is code."""
    text = re.sub(r"`[^`\n]*\]\([^`\n]*`", "", prose(path))
    for target in LINK.findall(text):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:, ...
            yield target


def make_commands(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    code = [block for block in FENCE.findall(text)] + CODE_SPAN.findall(FENCE.sub("", text))
    return {target for snippet in code for target in MAKE.findall(snippet)}


def test_there_are_pages_to_check() -> None:
    assert all(page.is_file() for page in PAGES)
    assert len(DOCS) >= 5


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in links(page):
        file_part, _, fragment = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.is_relative_to(ROOT) or not destination.exists():
            broken.append(f"{target}: no such file")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target}: no heading #{fragment} in {relative(destination)}")
    assert not broken, f"{relative(page)}: {broken}"


@pytest.mark.parametrize("front", FRONT_PAGES, ids=relative)
def test_every_docs_page_is_linked_from_each_front_page(front: Path) -> None:
    linked = {(front.parent / t.partition("#")[0]).resolve() for t in links(front)}
    missing = [relative(page) for page in DOCS if page.resolve() not in linked]
    assert not missing, f"{relative(front)} does not link {missing}"


def test_the_two_commands_of_the_front_pages_are_makefile_targets() -> None:
    targets = set(MAKE_TARGET.findall((ROOT / "Makefile").read_text(encoding="utf-8")))
    assert {"run", "test"} <= targets
    for front in FRONT_PAGES:
        assert {"run", "test"} <= make_commands(front), relative(front)


@pytest.mark.parametrize("page", [p for p in PAGES if p not in GENERATED], ids=relative)
def test_every_make_command_named_in_the_docs_is_a_makefile_target(page: Path) -> None:
    targets = set(MAKE_TARGET.findall((ROOT / "Makefile").read_text(encoding="utf-8")))
    unknown = sorted(make_commands(page) - targets)
    assert not unknown, f"{relative(page)} names make targets that do not exist: {unknown}"


def test_every_docs_page_the_code_points_to_exists() -> None:
    """Comments, log lines and configuration name docs pages (`docs/meta-setup.md, step 6`)."""
    sources = [
        path
        for pattern in ("*.py", "*/*.py", "*.yaml", "*.toml", "*.txt", "examples/*", "Dockerfile")
        for path in ROOT.glob(pattern)
        if path.is_file() and not path.is_relative_to(ROOT / ".venv")
    ]
    named = {
        (path, page)
        for path in sources
        for page in re.findall(r"\bdocs/[\w./-]+\.md\b", path.read_text(encoding="utf-8"))
    }
    assert any(relative(path) == "answering/token_refusal.py" for path, _ in named)
    missing = sorted(
        f"{relative(path)}: {page}" for path, page in named if not (ROOT / page).is_file()
    )
    assert not missing
