"""Tests for language.replies: every fixed reply in every language, with its fields filled in."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from language import replies
from language.choice import LANGUAGES
from language.replies import Reply, reply_text

TRANSLATED = [language for language in LANGUAGES if language != "en"]

# The English texts users and the existing tests already know; they must not change.
ENGLISH = {
    Reply.APOLOGY: "Sorry, I can't answer that right now. Please try again in a little while.",
    Reply.RATE_LIMITED: (
        "You're sending messages faster than I can answer them. Please wait a little, "
        "then try again."
    ),
    Reply.STICKER: "Nice sticker! Send me a question in a message, a voice note or a photo.",
    Reply.UNSUPPORTED: (
        "Sorry, I can't open that kind of message. I can read text, voice notes and other audio, "
        "photos (JPEG, PNG, WebP), videos (MP4, 3GP), PDF and plain-text documents, locations "
        "and shared contacts."
    ),
    Reply.DOCUMENT_DECLINED: (
        "Sorry, I can only read PDF and plain-text documents. Could you send it as a PDF, or "
        "paste the text?"
    ),
    Reply.TYPE_DECLINED: (
        "Sorry, I can't read that file format. I can read text, voice notes and other audio, "
        "photos (JPEG, PNG, WebP), videos (MP4, 3GP), PDF and plain-text documents, locations "
        "and shared contacts."
    ),
    Reply.TOO_LARGE: (
        "Sorry, that file is too large for me (the limit is 16 MB). Could you send a smaller one?"
    ),
    Reply.UNAVAILABLE: "Sorry, I couldn't open that file. Could you send it again?",
    Reply.RESET: "Done: we are starting a fresh conversation.",
    Reply.FORGET: "Done: everything stored about you here has been erased.",
    Reply.HANDOFF: (
        "I've asked a person from our team to join. They'll answer you here as soon as they can."
    ),
    Reply.BUDGET: "Sorry, I can't answer any more messages today. Please try again tomorrow.",
}


def test_every_reply_has_its_own_msgid() -> None:
    assert len({reply.value for reply in Reply}) == len(Reply) == len(ENGLISH)


@pytest.mark.parametrize("reply", list(Reply))
def test_english_texts_are_unchanged(reply: Reply) -> None:
    assert reply_text(reply, "en", limit="16 MB") == ENGLISH[reply]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("reply", list(Reply))
def test_every_reply_is_non_empty(reply: Reply, language: str) -> None:
    text = reply_text(reply, language, limit="16 MB")
    assert text.strip()
    assert text == text.strip()
    assert "{" not in text
    assert "}" not in text


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("reply", list(Reply))
def test_every_reply_is_translated(reply: Reply, language: str) -> None:
    assert reply_text(reply, language, limit="16 MB") != reply_text(reply, "en", limit="16 MB")


@pytest.mark.parametrize("language", LANGUAGES)
def test_too_large_formats_the_limit(language: str) -> None:
    text = reply_text(Reply.TOO_LARGE, language, limit="16 MB")
    assert "16 MB" in text
    assert "{limit}" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_too_large_needs_its_limit(language: str) -> None:
    with pytest.raises(KeyError, match="limit"):
        reply_text(Reply.TOO_LARGE, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_type_declined_lists_what_unsupported_lists(language: str) -> None:
    unsupported = reply_text(Reply.UNSUPPORTED, language)
    declined = reply_text(Reply.TYPE_DECLINED, language)
    assert unsupported.split(". ", 1)[1] == declined.split(". ", 1)[1]
    assert unsupported != declined


@pytest.mark.parametrize("language", ["fr", "", "pt", "pt_BR", "EN", "xx-YY"])
def test_an_unknown_language_gets_english(language: str) -> None:
    for reply in Reply:
        assert reply_text(reply, language, limit="16 MB") == ENGLISH[reply]


def test_portuguese_and_spanish_samples() -> None:
    assert reply_text(Reply.RESET, "pt-BR") == "Pronto: estamos começando uma conversa nova."
    assert reply_text(Reply.RESET, "es") == "Listo: empezamos una conversación nueva."
    assert "você" in reply_text(Reply.FORGET, "pt-BR")


def test_a_missing_catalogue_falls_back_to_english(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replies._load.cache_clear()
    try:
        with monkeypatch.context() as patch, caplog.at_level(logging.WARNING, replies.__name__):
            patch.setattr(replies, "LOCALE_DIR", tmp_path)
            assert reply_text(Reply.RESET, "pt-BR") == ENGLISH[Reply.RESET]
            assert reply_text(Reply.FORGET, "pt-BR") == ENGLISH[Reply.FORGET]
        warnings = [record.getMessage() for record in caplog.records]
        assert len(warnings) == 1, "the catalogue is looked up once, not once per reply"
        assert "pt_BR" in warnings[0]
    finally:
        replies._load.cache_clear()
    assert reply_text(Reply.RESET, "pt-BR") == "Pronto: estamos começando uma conversa nova."
