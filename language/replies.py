"""The text of each fixed reply in a language, from the gettext catalogues under `locale/`."""

from __future__ import annotations

import enum
import functools
import gettext
import logging
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

DOMAIN: Final = "replies"
LOCALE_DIR: Final = Path(__file__).resolve().with_name("locale")
# Reply language -> gettext catalogue directory; English has none: its texts are the msgids.
CATALOGUES: Final = {"pt-BR": "pt_BR", "es": "es"}


def N_(message: str) -> str:
    """Mark `message` as a msgid for `pybabel extract` without translating it."""
    return message


class Reply(enum.StrEnum):
    """Every fixed reply the service sends; its value is its English text, the catalogues' msgid.

    String literals only, so that `pybabel extract` finds them.
    """

    APOLOGY = N_("Sorry, I can't answer that right now. Please try again in a little while.")
    RATE_LIMITED = N_(
        "You're sending messages faster than I can answer them. "
        "Please wait a little, then try again."
    )
    STICKER = N_("Nice sticker! Send me a question in a message, a voice note or a photo.")
    UNSUPPORTED = N_(
        "Sorry, I can't open that kind of message. I can read text, voice notes and other audio, "
        "photos (JPEG, PNG, WebP), videos (MP4, 3GP), PDF and plain-text documents, locations and "
        "shared contacts."
    )
    DOCUMENT_DECLINED = N_(
        "Sorry, I can only read PDF and plain-text documents. "
        "Could you send it as a PDF, or paste the text?"
    )
    TYPE_DECLINED = N_(
        "Sorry, I can't read that file format. I can read text, voice notes and other audio, "
        "photos (JPEG, PNG, WebP), videos (MP4, 3GP), PDF and plain-text documents, locations and "
        "shared contacts."
    )
    TOO_LARGE = N_(
        "Sorry, that file is too large for me (the limit is {limit}). Could you send a smaller one?"
    )
    UNAVAILABLE = N_("Sorry, I couldn't open that file. Could you send it again?")
    RESET = N_("Done: we are starting a fresh conversation.")
    FORGET = N_("Done: everything stored about you here has been erased.")
    HANDOFF = N_(
        "I've asked a person from our team to join. They'll answer you here as soon as they can."
    )
    BUDGET = N_("Sorry, I can't answer any more messages today. Please try again tomorrow.")


class Phrase(enum.StrEnum):
    """Words the service puts into a reply or a message of its own, in the user's language:
    when the team is back while the business is closed, and the label of a list's button."""

    AWAY = N_("We're closed right now; our team is back {when}.")
    BACK_MONDAY = N_("on Monday at {time}")
    BACK_TUESDAY = N_("on Tuesday at {time}")
    BACK_WEDNESDAY = N_("on Wednesday at {time}")
    BACK_THURSDAY = N_("on Thursday at {time}")
    BACK_FRIDAY = N_("on Friday at {time}")
    BACK_SATURDAY = N_("on Saturday at {time}")
    BACK_SUNDAY = N_("on Sunday at {time}")
    LIST_BUTTON = N_("See options")


# Phrase.BACK_* by weekday (Monday 0), as `datetime.weekday()` counts.
BACK_ON = (
    Phrase.BACK_MONDAY,
    Phrase.BACK_TUESDAY,
    Phrase.BACK_WEDNESDAY,
    Phrase.BACK_THURSDAY,
    Phrase.BACK_FRIDAY,
    Phrase.BACK_SATURDAY,
    Phrase.BACK_SUNDAY,
)


def phrase_text(phrase: Phrase, language: str, **fields: str) -> str:
    """The text of `phrase` in `language`, its placeholders filled in, as `reply_text`."""
    return _translation(language).gettext(phrase.value).format(**fields)


def reply_text(reply: Reply, language: str, **fields: str) -> str:
    """The text of `reply` in `language` ("en", "pt-BR", "es"; anything else gets English).

    `fields` fill the reply's placeholders, such as `limit` for Reply.TOO_LARGE ("16 MB").
    """
    return _translation(language).gettext(reply.value).format(**fields)


def _translation(language: str) -> gettext.NullTranslations:
    return _load(CATALOGUES.get(language))


@functools.cache
def _load(catalogue: str | None) -> gettext.NullTranslations:
    """One translation object per catalogue, read on first use; None (English) is the msgids."""
    if catalogue is None:
        return gettext.NullTranslations()
    translation = gettext.translation(
        DOMAIN, localedir=LOCALE_DIR, languages=[catalogue], fallback=True
    )
    if not isinstance(translation, gettext.GNUTranslations):
        log.warning(
            "no compiled %s catalogue under %s; its fixed replies will be in English "
            "(run `python -m language.compile`)",
            catalogue,
            LOCALE_DIR,
        )
    return translation
