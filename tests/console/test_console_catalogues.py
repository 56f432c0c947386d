"""The console's catalogues: every word of its templates and Python translated into Brazilian
Portuguese and Spanish, none left over, placeholders kept, read as the service reads them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message

from console.languages import CATALOGUES, catalogue_path, read_translations
from tools import console_messages
from tools.console_messages import extracted, read, sources, untranslated

CODES = list(CATALOGUES)
PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
TEMPLATE = extracted()


def catalogue(code: str) -> Catalog:
    return read(catalogue_path(code), CATALOGUES[code])


def ids(catalog: Catalog) -> set[str | tuple[str, ...]]:
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


def strings(message: Message) -> tuple[str, ...]:
    string = message.string
    found = tuple(string) if isinstance(string, (tuple, list)) else (string,)
    assert all(isinstance(s, str) for s in found)
    return tuple(str(s) for s in found)


def singulars(message: Message) -> tuple[str, ...]:
    return (message.id,) if isinstance(message.id, str) else tuple(message.id)


def test_the_words_are_found_in_templates_python_and_the_operator_desk() -> None:
    names = {path.relative_to(console_messages.ROOT).as_posix() for path in sources()}
    assert {"console/templates/conversation.html", "console/words.py"} <= names
    assert "answering/operators.py" in names
    found = ids(TEMPLATE)
    # One of each way a word is marked: a template's _(), gettext in Python, N_, a plural.
    assert {"Take over", "Wrong username or password.", "Window open until"} <= found
    assert ("%(num)s byte", "%(num)s bytes") in found
    assert "Write a reply first." in found
    assert len(found) > 150


@pytest.mark.parametrize("code", CODES)
def test_every_word_is_translated(code: str) -> None:
    catalog = catalogue(code)
    assert not catalog.fuzzy
    assert untranslated(catalog) == []
    missing = ids(TEMPLATE) - ids(catalog)
    assert not missing, f"not in {code}'s catalogue (make messages): {sorted(map(str, missing))}"


@pytest.mark.parametrize("code", CODES)
def test_no_catalogue_keeps_a_word_no_longer_used(code: str) -> None:
    stale = ids(catalogue(code)) - ids(TEMPLATE)
    assert not stale, f"no longer used (make messages): {sorted(map(str, stale))}"


@pytest.mark.parametrize("code", CODES)
def test_placeholders_survive_translation(code: str) -> None:
    for message in catalogue(code):
        if not message.id:
            continue
        wanted = sorted(set(PLACEHOLDER.findall(singulars(message)[-1])))
        for string in strings(message):
            assert sorted(set(PLACEHOLDER.findall(string))) == wanted, string


@pytest.mark.parametrize("code", CODES)
def test_translations_format_as_the_pages_format_them(code: str) -> None:
    """Jinja2's newstyle gettext %-formats every translation: a stray % would break a page."""
    for message in catalogue(code):
        if not message.id:
            continue
        for text in (*singulars(message), *strings(message)):
            names = {name for name in PLACEHOLDER.findall(text) if name}
            assert text % dict.fromkeys(names, "x") is not None


@pytest.mark.parametrize("code", CODES)
def test_the_service_reads_each_translation(code: str) -> None:
    runtime = read_translations(code)
    for message in catalogue(code):
        if message.id and isinstance(message.id, str):
            assert runtime.gettext(message.id) == message.string


def test_make_messages_has_nothing_to_change() -> None:
    assert console_messages.main(["--check"]) == 0


def test_the_check_fails_on_a_new_word(tmp_path: Path) -> None:
    page = tmp_path / "new.html"
    page.write_text('<p>{{ _("A word nobody translated yet") }}</p>', encoding="utf-8")
    template = extracted([*sources(), page])
    for code in CODES:
        updated = console_messages.updated(catalogue_path(code), CATALOGUES[code], template)
        assert untranslated(updated) == ["A word nobody translated yet"]
