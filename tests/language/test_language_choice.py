"""Tests for language.choice: the reply language from REPLY_LANGUAGE or the country calling code."""

from __future__ import annotations

import pytest

from language.choice import LANGUAGES, language_for, normalise_language


@pytest.mark.parametrize(
    ("wa_id", "expected"),
    [
        pytest.param("5511987654321", "pt-BR", id="+55 Brazil"),
        pytest.param("351912345678", "pt-BR", id="+351 Portugal"),
        pytest.param("34612345678", "es", id="+34 Spain"),
        pytest.param("525512345678", "es", id="+52 Mexico"),
        pytest.param("5215512345678", "es", id="+52 1 Mexico, the old mobile prefix"),
        pytest.param("5491123456789", "es", id="+54 9 Argentina"),
        pytest.param("573001234567", "es", id="+57 Colombia"),
        pytest.param("240222123456", "es", id="+240 Equatorial Guinea"),
        pytest.param("12024561111", "en", id="+1 US"),
        pytest.param("14165550123", "en", id="+1 416 Canada"),
        pytest.param("17877220000", "es", id="+1 787 Puerto Rico"),
        pytest.param("19397220000", "es", id="+1 939 Puerto Rico"),
        pytest.param("18095551234", "es", id="+1 809 Dominican Republic"),
        pytest.param("15550000001", "en", id="+1 555 no region"),
        pytest.param("447911123456", "en", id="+44 UK"),
        pytest.param("4915112345678", "en", id="+49 Germany"),
        pytest.param("244923123456", "en", id="+244 Angola is not Brazil or Portugal"),
        pytest.param("+5511987654321", "pt-BR", id="a leading plus is tolerated"),
    ],
)
def test_auto_follows_the_calling_code(wa_id: str, expected: str) -> None:
    assert language_for(wa_id, "auto") == expected


@pytest.mark.parametrize(
    "wa_id",
    [
        pytest.param(None, id="None"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("0000", id="no country code"),
        pytest.param("999123456", id="unassigned country code"),
        pytest.param("55", id="a country code alone"),
        pytest.param("1", id="one digit"),
        pytest.param("9" * 40, id="too long"),
        pytest.param("55abc987654321", id="letters"),
        pytest.param("5511-98765-4321", id="punctuation"),
        pytest.param("٥٥١١٩٨٧٦٥٤٣٢١", id="non-ASCII digits"),
    ],
)
def test_auto_without_a_usable_number_is_english(wa_id: str | None) -> None:
    assert language_for(wa_id, "auto") == "en"


@pytest.mark.parametrize("setting", ["auto", "AUTO", " Auto "])
def test_auto_in_any_spelling(setting: str) -> None:
    assert language_for("5511987654321", setting) == "pt-BR"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("pt-BR", "pt-BR"),
        ("pt-br", "pt-BR"),
        ("pt_BR", "pt-BR"),
        ("PT_br", "pt-BR"),
        ("es", "es"),
        ("ES", "es"),
    ],
)
@pytest.mark.parametrize("wa_id", ["5511987654321", "34612345678", "12024561111", "", None])
def test_an_explicit_setting_applies_to_everyone(
    setting: str, expected: str, wa_id: str | None
) -> None:
    assert language_for(wa_id, setting) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", "auto"),
        ("Auto", "auto"),
        ("en", "en"),
        ("En", "en"),
        ("pt-BR", "pt-BR"),
        ("pt-br", "pt-BR"),
        ("pt_BR", "pt-BR"),
        ("pt_br", "pt-BR"),
        ("PT-BR", "pt-BR"),
        ("es", "es"),
        (" es ", "es"),
    ],
)
def test_normalise_language_accepts(value: str, expected: str) -> None:
    assert normalise_language(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", " ", "pt", "pt-PT", "pt_PT", "en-US", "en_GB", "es-MX", "english", "fr", "de", "ptBR"],
)
def test_normalise_language_refuses(value: str) -> None:
    with pytest.raises(ValueError, match=r"REPLY_LANGUAGE must be one of auto, en, pt-BR, es"):
        normalise_language(value)


def test_language_for_refuses_an_unknown_setting() -> None:
    with pytest.raises(ValueError, match="REPLY_LANGUAGE"):
        language_for("5511987654321", "fr")


def test_every_answer_is_a_known_language() -> None:
    wa_ids = ["5511987654321", "34612345678", "12024561111", "", None, "junk"]
    settings = ["auto", "en", "pt-BR", "es"]
    assert {language_for(w, s) for w in wa_ids for s in settings} == set(LANGUAGES)
