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
