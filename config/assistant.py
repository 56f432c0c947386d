"""The settings of the assistant itself: Gemini, its instructions, languages, voice, documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from language.choice import normalise_language

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, helpful assistant answering customers on WhatsApp. "
    "Answer in the language the customer writes in. Keep answers short and clear, "
    "as one would in a chat: a few sentences, or a short list when it helps. "
    "If you do not know something, say so honestly instead of guessing."
)
Language = Literal["auto", "en", "pt-BR", "es"]


class AssistantSettings(BaseModel):
    """What Gemini is asked, and with how much of the conversation."""

    model_config = ConfigDict(title="The assistant and Gemini")

    gemini_model: str = Field(
        default="gemini-3.8-flash", description="The Gemini model that writes the answers."
    )
    system_prompt: str = Field(
        default=DEFAULT_SYSTEM_PROMPT,
        description="The assistant's instructions; a longer prompt is easier to keep in a file "
        f"(`SYSTEM_PROMPT_FILE`). The default: {DEFAULT_SYSTEM_PROMPT}",
        json_schema_extra={"shown_default": "a friendly assistant (see its meaning)"},
    )
    system_prompt_file: Path | None = Field(
        default=None,
        description="Read the instructions from this UTF-8 file instead of `SYSTEM_PROMPT`; "
        "start-up stops when it cannot be read or is empty.",
        examples=["prompt.txt"],
    )
    gemini_base_url: str | None = Field(
        default=None,
        description="Another address for the Gemini API: a proxy, or a local fake in tests. "
        "Unset: Google's own.",
        examples=["http://127.0.0.1:9000"],
    )
    history_turns: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="How many recent turns of the conversation go to Gemini (a turn is one "
        "message, the user's or the assistant's).",
    )
    history_max_chars: int = Field(
        default=16_000,
        ge=0,
        description="At most this many characters of those turns; the oldest are left out first.",
    )
    message_debounce_seconds: float = Field(
        default=3.0,
        ge=0,
        le=20,
        description="After a user's latest message the assistant waits this long for more "
        "before answering; what arrives meanwhile goes to Gemini together and gets one answer. "
        "`0`: each message is answered on its own as it comes (no waiting, no merging). At most "
        "20, so the typing indicator shown at the latest message (WhatsApp drops it after 25 "
        "seconds) lasts until the answer is being written.",
    )
    message_debounce_max_seconds: float = Field(
        default=15.0,
        ge=0,
        description="However long a user goes on writing, the answer to their unanswered "
        "messages starts at most this many seconds after the first of them.",
    )
    fallback_message: str | None = Field(
        default=None,
        description="What the user gets when Gemini gives no answer (errors after retries, or "
        "a blocked answer). Unset: a short apology in the user's language (`REPLY_LANGUAGE`); "
        "set: this text, for everyone.",
        examples=["Sorry, I can't answer that right now. Please try again in a little while."],
    )

    @field_validator("gemini_base_url")
    @classmethod
    def _gemini_base_url(cls, value: str | None) -> str | None:
        return (value or "").strip().rstrip("/") or None


class LanguageVoiceSettings(BaseModel):
    """The fixed replies' language and the console's, and voice notes answered with voice."""

    model_config = ConfigDict(title="Language and voice")

    reply_language: Language = Field(
        default="auto",
        description="The language of the fixed replies (apology, notices, `/reset`, handoff). "
        "`auto`: from the user's country calling code (`pt-BR` for Brazil and Portugal, `es` "
        "for Spanish-speaking countries, `en` otherwise and when there is no number); or `en`, "
        "`pt-BR`, `es` for everyone. Gemini's own answers follow the customer's language "
        "anyway. A business of `TENANTS_FILE` may set its own.",
    )
    console_language: Language = Field(
        default="auto",
        description="The console's language. `auto`: the operator's browser language "
        "(`Accept-Language`) among `en`, `pt-BR` and `es`, English otherwise; or one of those "
        "for everyone.",
    )
    voice_replies: Literal["auto", "always", "off"] = Field(
        default="auto",
        description="`auto`: a voice note is answered with a voice note; `always`: every "
        "answer is; `off`: answers are text. A business of `TENANTS_FILE` may set its own.",
    )
    gemini_tts_model: str = Field(
        default="gemini-3.8-flash-tts",
        description="The Gemini text-to-speech model that speaks voice answers.",
    )
    gemini_tts_voice: str = Field(
        default="Kore",
        description="One of Gemini's prebuilt voices (Kore, Puck, Charon, Aoede, Zephyr, ...).",
    )

    @field_validator("reply_language", mode="before")
    @classmethod
    def _reply_language(cls, value: Any) -> Any:
        return normalise_language(value) if isinstance(value, str) else value

    @field_validator("console_language", mode="before")
    @classmethod
    def _console_language(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return normalise_language(value)
        except ValueError:
            raise ValueError(
                "must be one of auto, en, pt-BR, es; auto follows the browser's language"
            ) from None


class KnowledgeSettings(BaseModel):
    """The business's documents, answered from through Gemini File Search, and the web."""

    model_config = ConfigDict(title="Business knowledge")

    knowledge_dir: Path = Field(
        default=Path("knowledge"),
        description="The business's documents (PDF, plain text, Markdown, HTML, CSV, Word and "
        "the other types Gemini File Search reads), answered from through File Search. "
        "Missing or empty: no documents; the repository ships none there. A business of "
        "`TENANTS_FILE` may have its own folder.",
    )
    knowledge_sync: Literal["startup", "off"] = Field(
        default="startup",
        description="`startup`: synchronise the folder at start-up, in the background; `off`: "
        "only with `make knowledge` or the console's Knowledge page.",
    )
    web_search: bool = Field(
        default=False,
        description="`true`: Gemini may search Google and read web pages named in the prompt "
        "or the message (Google Search grounding and URL context, billed per search). Gemini "
        "cannot combine it with documents: with both, start-up stops and says so.",
    )
