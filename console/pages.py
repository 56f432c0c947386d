"""The console's pages in each of its languages: one Jinja2 environment per language, its
gettext installed (`_("Hello %(name)s", name=...)` in a template, Jinja2's newstyle) and its
forms of times, numbers and money at hand."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from console import words
from console.languages import Language

TEMPLATES = Path(__file__).resolve().with_name("templates")


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def environment(
    language: Language, shared: Mapping[str, Any], shown: Callable[[str, Language], str]
) -> Environment:
    """The pages in `language`, with the `shared` globals of every language and the `shown`
    filter (a business as people know it)."""
    made = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    translations = language.translations
    made.install_gettext_callables(  # type: ignore[attr-defined]
        translations.gettext, translations.ngettext, newstyle=True
    )
    made.globals.update(
        shared,
        iso=iso_time,
        utc=language.when,
        lang=language,
        words=words,
        labels=lambda labels: words.parameter_labels(labels, language),
    )
    made.filters["shown"] = lambda business: shown(business, language)
    return made
