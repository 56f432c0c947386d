"""The console's language for a request (CONSOLE_LANGUAGE, else the browser's Accept-Language),
its words from the catalogues under `locales/`, and its forms of dates, numbers and money."""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

from language import choice
from language.choice import AUTO, LANGUAGES, PORTUGUESE, SPANISH

DOMAIN: Final = "console"
LOCALES_DIR: Final = Path(__file__).resolve().with_name("locales")
# Console language -> its catalogue's folder; English has none: its words are the msgids.
CATALOGUES: Final = {PORTUGUESE: "pt_BR", SPANISH: "es"}
# A language tag's first part -> the console language it gets (pt-PT and plain pt: pt-BR).
_PRIMARY: Final = {"en": choice.ENGLISH, "pt": PORTUGUESE, "es": SPANISH}
MAX_HEADER_CHARS = 1000  # of Accept-Language; browsers send a few dozen
MAX_TAGS = 30


def N_(message: str) -> str:
    """Mark `message` as a msgid for extraction without translating it (it is translated where
    it is shown, in the request's language)."""
    return message


# ---------------------------------------------------------------------------------------------
# Which language


def preferred_tags(header: str | None) -> list[str]:
    """The language tags of an Accept-Language header, most wanted first (by `q`, then in the
    order written); tags with `q=0` or an unreadable `q` are left out."""
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate((header or "")[:MAX_HEADER_CHARS].split(",")[:MAX_TAGS]):
        tag, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and 0 < weight <= 1:
            weighted.append((-weight, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(setting: str, header: str | None) -> str:
    """The console language ("en", "pt-BR" or "es") for a request: the setting, unless it is
    "auto"; then the first tag of Accept-Language the console speaks (any Portuguese gets
    pt-BR, any Spanish es), English when none is."""
    if setting != AUTO:
        return setting
    for tag in preferred_tags(header):
        found = _PRIMARY.get(tag.replace("_", "-").split("-")[0].lower())
        if found is not None:
            return found
    return choice.ENGLISH


# ---------------------------------------------------------------------------------------------
# One language's words and forms


@dataclass(frozen=True, slots=True)
class Language:
    """The console in one language: its words (gettext) and its forms of numbers and dates.

    `gettext` formats like Jinja2's newstyle gettext in the templates: the translation is
    always %-formatted with the named values, so a literal percent sign is written `%%`.
    """

    code: str  # "en", "pt-BR" or "es": <html lang>
    locale: Locale
    translations: gettext.NullTranslations

    def gettext(self, message: str, **values: object) -> str:
        return self.translations.gettext(message) % values

    def ngettext(self, singular: str, plural: str, num: int, **values: object) -> str:
        return self.translations.ngettext(singular, plural, num) % {"num": num, **values}

    def count(self, value: int) -> str:
        """A whole number: 12,345 / 12.345."""
        return format_decimal(value, locale=self.locale)

    def decimal(self, value: float, places: int = 2) -> str:
        """A number with at most `places` decimals: 1.5 / 1,5; 2."""
        return format_decimal(value, format="#,##0." + "#" * places, locale=self.locale)

    def money(self, value: float, places: int = 2) -> str:
        """US dollars with exactly `places` decimals, as the locale writes them:
        $1.23 / US$ 1,23 / 1,23 US$."""
        pattern = self.locale.currency_formats["standard"].pattern.split(";")[0]
        pattern = pattern.replace("0.00", "0." + "0" * places if places else "0")
        return format_currency(
            value, "USD", format=pattern, locale=self.locale, currency_digits=False
        )

    def percent(self, share: float) -> str:
        """A share (0.25) as a percentage: 25% / 25 %."""
        return format_percent(share, locale=self.locale)

    def when(self, at: float) -> str:
        """A moment (epoch seconds) in UTC, as the locale writes a date and a time:
        "Dec 7, 2026, 12:36 PM UTC" / "7 de dez. de 2026 12:36 UTC"."""
        moment = datetime.fromtimestamp(at, UTC)
        day = format_date(moment, "medium", locale=self.locale)
        time = format_time(moment, "short", tzinfo=UTC, locale=self.locale)
        return f"{self.locale.datetime_formats['medium'].format(time, day)} UTC"

    def day(self, iso: str) -> str:
        """A day ("2026-12-07") by its month's name, never a month-first "12/7": "Dec 7" /
        "7 de dez." / "7 dic"."""
        return format_skeleton("MMMd", date.fromisoformat(iso), locale=self.locale)

    def size(self, size: int) -> str:
        """Bytes as a person reads them, in the decimal units Google's limits are written in:
        "1 byte", "900 bytes", "1.5 MB" / "1,5 MB", "5000 GB"."""
        if size < 1000:
            return self.ngettext("%(num)s byte", "%(num)s bytes", size)
        value = float(size)
        for unit in ("KB", "MB", "GB"):
            value /= 1000
            shown = round(value, 1)
            if shown < 1000 or unit == "GB":
                break
        return f"{format_decimal(shown, format='0.#', locale=self.locale)} {unit}"


def catalogue_path(code: str) -> Path:
    """Where a translated language's catalogue is kept."""
    return LOCALES_DIR / CATALOGUES[code] / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_translations(code: str) -> gettext.NullTranslations:
    """A language's catalogue, read from its `.po` file (made gettext's form in memory: no
    compiled file to keep up to date); English: the msgids themselves."""
    if code not in CATALOGUES:
        return gettext.NullTranslations()
    path = catalogue_path(code)
    with path.open("rb") as source:
        catalog = read_po(source, locale=CATALOGUES[code], domain=DOMAIN, abort_invalid=True)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def english() -> Language:
    """English, which needs no catalogue."""
    return Language(choice.ENGLISH, Locale.parse("en"), gettext.NullTranslations())


ENGLISH: Final = english()


def load_languages() -> Mapping[str, Language]:
    """Every console language, its catalogue read once (at start-up)."""
    return {
        code: Language(code, Locale.parse(code, sep="-"), read_translations(code))
        for code in LANGUAGES
    }
