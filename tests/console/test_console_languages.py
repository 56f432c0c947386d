"""The console's language for a request (CONSOLE_LANGUAGE, Accept-Language) and each language's
forms of dates, numbers, money and sizes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.languages import ENGLISH, load_languages, negotiate, preferred_tags

LANGUAGES = load_languages()
PT, ES = LANGUAGES["pt-BR"], LANGUAGES["es"]
NOON = datetime(2026, 12, 7, 12, 36, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7", "pt-BR"),  # Chrome in Brazil
        ("pt-PT,pt;q=0.9", "pt-BR"),  # Portugal: the one Portuguese there is
        ("pt", "pt-BR"),
        ("PT_br", "pt-BR"),
        ("es-MX,es;q=0.9,en;q=0.8", "es"),
        ("es-419", "es"),
        ("es", "es"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9", "en"),  # none the console speaks: English
        ("fr-FR,fr;q=0.9,es;q=0.5", "es"),  # the first it speaks, in the browser's order
        ("en;q=0.4, es;q=0.8", "es"),  # q decides, not the order written
        ("es;q=0, pt-BR;q=0.2", "pt-BR"),  # q=0: not wanted at all
        ("de, pt;q=0.7, es;q=0.7", "pt-BR"),  # equal q: the order written
        ("*", "en"),
        ("", "en"),
        (None, "en"),
        (";;;,,,q=,pt;q=abc", "en"),  # nonsense: English, no error
        ("es;q=2", "en"),  # q above 1 is not a weight
        ("x" * 5000 + ",es", "en"),  # only the first 1000 characters are read
    ],
)
def test_auto_follows_accept_language(header: str | None, expected: str) -> None:
    assert negotiate("auto", header) == expected


@pytest.mark.parametrize("setting", ["en", "pt-BR", "es"])
def test_a_fixed_language_overrides_the_browser(setting: str) -> None:
    for header in ("pt-BR,pt;q=0.9", "es-MX", "en-US", None):
        assert negotiate(setting, header) == setting


def test_at_most_thirty_tags_are_read() -> None:
    header = ",".join(["fr"] * 30 + ["es"])
    assert negotiate("auto", header) == "en"
    assert len(preferred_tags(",".join(["fr"] * 100))) == 30


def test_english_is_the_msgids_and_every_language_has_its_locale() -> None:
    assert [(code, str(lang.locale)) for code, lang in LANGUAGES.items()] == [
        ("en", "en"),
        ("pt-BR", "pt_BR"),
        ("es", "es"),
    ]
    assert LANGUAGES["en"].gettext("Take over") == "Take over"
    assert PT.gettext("Take over") == "Assumir conversa"
    assert ES.gettext("Hand back") == "Devolver al asistente"
    assert PT.gettext("a word no catalogue has") == "a word no catalogue has"


def test_values_are_put_into_the_translation() -> None:
    assert PT.gettext("With %(operator)s", operator="maria") == "Com maria"
    assert ES.ngettext(
        "Too many failed sign-ins. Try again in %(num)s minute.",
        "Too many failed sign-ins. Try again in %(num)s minutes.",
        5,
    ) == ("Demasiados intentos fallidos de entrar. Inténtalo de nuevo en 5 minutos.")
    assert PT.ngettext("%(num)s byte", "%(num)s bytes", 1) == "1 byte"


def test_money_in_each_locale() -> None:
    assert ENGLISH.money(1234.5) == "$1,234.50"
    assert PT.money(1234.5) == "US$\xa01.234,50"
    assert ES.money(1234.5) == "1.234,50\xa0US$"
    assert ENGLISH.money(0.0123, 4) == "$0.0123"
    assert PT.money(0.0123, 4) == "US$\xa00,0123"
    assert ES.money(12345.0, 4) == "12.345,0000\xa0US$"


def test_counts_and_percentages_in_each_locale() -> None:
    assert [lang.count(1_250_000) for lang in (ENGLISH, PT, ES)] == [
        "1,250,000",
        "1.250.000",
        "1.250.000",
    ]
    assert [lang.percent(0.25) for lang in (ENGLISH, PT, ES)] == ["25%", "25%", "25\xa0%"]


def test_moments_and_days_in_each_locale() -> None:
    assert ENGLISH.when(NOON) == "Dec 7, 2026, 12:36\u202fPM UTC"
    assert PT.when(NOON) == "7 de dez. de 2026 12:36 UTC"
    assert ES.when(NOON) == "7 dic 2026, 12:36 UTC"
    assert [lang.day("2026-12-07") for lang in (ENGLISH, PT, ES)] == [
        "Dec 7",
        "7 de dez.",
        "7 dic",
    ]


def test_sizes_in_each_locale() -> None:
    assert [PT.size(n) for n in (1, 999, 1500, 2_345_678)] == [
        "1 byte",
        "999 bytes",
        "1,5 KB",
        "2,3 MB",
    ]
    assert ES.size(100 * 1000 * 1000) == "100 MB"
