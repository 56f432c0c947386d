"""Which language a user's fixed replies are in: REPLY_LANGUAGE, or their country calling code."""

from __future__ import annotations

import functools

import phonenumbers

ENGLISH = "en"
PORTUGUESE = "pt-BR"
SPANISH = "es"
LANGUAGES = (ENGLISH, PORTUGUESE, SPANISH)
AUTO = "auto"

# Regions (ISO 3166-1, as phonenumbers names them) whose users get Portuguese or Spanish.
_PORTUGUESE_REGIONS = frozenset({"BR", "PT"})
_SPANISH_REGIONS = frozenset(
    {
        "ES",  # Spain
        "MX",  # Mexico
        "AR",  # Argentina
        "CO",  # Colombia
        "CL",  # Chile
        "PE",  # Peru
        "VE",  # Venezuela
        "EC",  # Ecuador
        "GT",  # Guatemala
        "CU",  # Cuba
        "BO",  # Bolivia
        "DO",  # Dominican Republic (+1 809, 829, 849)
        "HN",  # Honduras
        "PY",  # Paraguay
        "SV",  # El Salvador
        "NI",  # Nicaragua
        "CR",  # Costa Rica
        "PA",  # Panama
        "UY",  # Uruguay
        "GQ",  # Equatorial Guinea
        "PR",  # Puerto Rico (+1 787, 939)
    }
)
# Accepted spellings of each setting, compared after stripping, lower-casing and "_" -> "-".
_SETTINGS = {AUTO: AUTO, "en": ENGLISH, "pt-br": PORTUGUESE, "es": SPANISH}
# A wa_id is at most 15 digits (E.164); anything much longer is not a number.
_MAX_DIGITS = 20


def normalise_language(value: str) -> str:
    """The REPLY_LANGUAGE setting in its canonical spelling: "auto", "en", "pt-BR" or "es".

    Accepts any letter case and "pt_BR"; raises ValueError for anything else.
    """
    setting = _SETTINGS.get(value.strip().lower().replace("_", "-"))
    if setting is None:
        raise ValueError(
            f"REPLY_LANGUAGE must be one of auto, en, pt-BR, es (got {value!r}); "
            "auto picks the language from the user's country calling code"
        )
    return setting


def language_for(wa_id: str | None, setting: str) -> str:
    """The language ("en", "pt-BR" or "es") of the fixed replies to the user `wa_id`.

    `setting` is REPLY_LANGUAGE. With "auto", the country calling code of `wa_id` (digits only,
    as Meta sends it) decides; a missing or unparsable number gets English. Raises ValueError for
    a setting that `normalise_language` refuses.
    """
    language = _normalised(setting)
    if language != AUTO:
        return language
    if not wa_id:
        return ENGLISH
    digits = wa_id.strip().removeprefix("+")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_DIGITS:
        return ENGLISH
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return ENGLISH
    shared = _language_for_calling_code(number.country_code)
    if shared is not None:
        return shared
    # A calling code shared by regions of different languages (+1: the US, Puerto Rico, the
    # Dominican Republic...): the number's own region decides.
    return _language_for_region(phonenumbers.region_code_for_number(number))


@functools.lru_cache(maxsize=16)
def _normalised(setting: str) -> str:
    return normalise_language(setting)


@functools.lru_cache(maxsize=512)
def _language_for_calling_code(calling_code: int | None) -> str | None:
    """The language of every region on this calling code, or None when they differ."""
    if calling_code is None:
        return ENGLISH
    regions = phonenumbers.region_codes_for_country_code(calling_code)
    languages = {_language_for_region(region) for region in regions} or {ENGLISH}
    return languages.pop() if len(languages) == 1 else None


def _language_for_region(region: str | None) -> str:
    if region in _PORTUGUESE_REGIONS:
        return PORTUGUESE
    if region in _SPANISH_REGIONS:
        return SPANISH
    return ENGLISH
