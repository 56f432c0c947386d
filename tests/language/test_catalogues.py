"""Tests for the gettext catalogues: complete, placeholders kept, committed .mo files current."""

from __future__ import annotations

import gettext
import io
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from language import replies
from language.compile import compile_po, po_files
from language.replies import CATALOGUES, DOMAIN, LOCALE_DIR, Phrase, Reply

PO_FILES = po_files()
MSGIDS = {reply.value for reply in Reply} | {phrase.value for phrase in Phrase}


def _read(po_path: Path) -> Catalog:
    with po_path.open("rb") as source:
        return read_po(source, abort_invalid=True)


def _translations(catalog: Catalog) -> dict[str, str]:
    """msgid -> msgstr for every message but the header, all singular here."""
    pairs: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue
        assert isinstance(message.id, str), f"{message.id!r}: no plural forms expected"
        assert isinstance(message.string, str)
        pairs[message.id] = message.string
    return pairs


def _fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def test_one_catalogue_per_translated_language() -> None:
    expected = {LOCALE_DIR / name / "LC_MESSAGES" / f"{DOMAIN}.po" for name in CATALOGUES.values()}
    assert set(PO_FILES) == expected


@pytest.mark.parametrize("po_path", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_catalogue_has_exactly_the_reply_msgids(po_path: Path) -> None:
    assert set(_translations(_read(po_path))) == MSGIDS


@pytest.mark.parametrize("po_path", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_every_msgid_has_a_translation(po_path: Path) -> None:
    catalog = _read(po_path)
    assert not catalog.fuzzy
    for message in catalog:
        if message.id:
            assert not message.fuzzy, f"{message.id!r} is fuzzy, so it would not be compiled"
            assert isinstance(message.string, str)
            assert message.string.strip(), f"{message.id!r} has no translation"


@pytest.mark.parametrize("po_path", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_placeholders_survive_translation(po_path: Path) -> None:
    for msgid, msgstr in _translations(_read(po_path)).items():
        assert _fields(msgstr) == _fields(msgid), f"placeholders differ in {msgstr!r}"


def test_pybabel_extract_finds_every_msgid() -> None:
    with Path(replies.__file__).open("rb") as source:
        found = {message for _, message, _, _ in extract("python", source)}
    assert found == MSGIDS


def test_too_large_has_a_limit_placeholder() -> None:
    assert any(_fields(msgid) == ["limit"] for msgid in (reply.value for reply in Reply))


@pytest.mark.parametrize("po_path", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_committed_mo_is_up_to_date(po_path: Path) -> None:
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.is_file(), f"{mo_path} is missing: run `python -m language.compile`"
    committed = mo_path.read_bytes()
    fresh = compile_po(po_path)
    stale = "is out of date with its .po: run `python -m language.compile`"
    assert _translations(read_mo(io.BytesIO(committed))) == _translations(
        read_mo(io.BytesIO(fresh))
    ), f"{mo_path} {stale}"
    # And as the service reads it: the standard library's gettext.
    runtime = gettext.GNUTranslations(io.BytesIO(committed))
    for msgid, msgstr in _translations(_read(po_path)).items():
        assert runtime.gettext(msgid) == msgstr, f"{mo_path} {stale}"
