"""The settings that bound what one user or one day may cost: sizes, rates, prices, caps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class LimitSettings(BaseModel):
    """Abuse and cost limits on each message and each user; 0 turns a rate limit off."""

    model_config = ConfigDict(title="Limits")

    max_image_bytes: int = Field(
        default=5 * MIB, ge=0, description="The largest photo downloaded for Gemini (5 MiB)."
    )
    max_audio_bytes: int = Field(
        default=16 * MIB, ge=0, description="The largest voice note or audio file (16 MiB)."
    )
    max_video_bytes: int = Field(default=16 * MIB, ge=0, description="The largest video (16 MiB).")
    max_document_bytes: int = Field(
        default=20 * MIB, ge=0, description="The largest PDF or other document (20 MiB)."
    )
    rate_limit_per_minute: int = Field(
        default=12,
        ge=0,
        description="Messages one user may send in any 60 seconds; `0` turns the limit off. The "
        "first message over a limit gets one notice per window, later ones nothing. A business "
        "of `TENANTS_FILE` may set its own.",
    )
    rate_limit_per_day: int = Field(
        default=300,
        ge=0,
        description="Messages one user may send in any 24 hours; `0` turns the limit off. A "
        "business of `TENANTS_FILE` may set its own.",
    )
    max_input_chars: int = Field(
        default=4000,
        ge=1,
        description="Longer texts and captions are cut to this many characters, and Gemini is "
        "told so.",
    )
    max_output_tokens: int = Field(
        default=4096,
        ge=1,
        description="The most tokens one Gemini answer may have (thinking tokens may count "
        "against it).",
    )
    part_interval_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Seconds between the parts of one long reply (Meta limits messages per "
        "user per second).",
    )


class SpendingSettings(BaseModel):
    """An estimate of Gemini's bill at list prices, and daily caps on it (UTC days, every
    instance). Google's bill is the truth."""

    model_config = ConfigDict(title="Spending")

    daily_budget_usd: float = Field(
        default=0.0,
        ge=0,
        description="Once today's estimated Gemini spend of every business together (answers, "
        "speech, File Search indexing), with the worst case of the answers under way, reaches "
        "this many USD, Gemini is not called until the next UTC day: users get a short reply "
        "in their language, or, with the console on, the conversation waits for a person. "
        "The day ends at most one answer's worst case above it. `0` turns it off. A business "
        "of `TENANTS_FILE` may set its own (`daily_budget_usd`).",
    )
    user_daily_token_limit: int = Field(
        default=0,
        ge=0,
        description="Gemini tokens (prompt, output, thinking, speech) one user's messages may "
        "use per UTC day, then the same as above for that user; `0`: no limit. Counted from "
        "when it is set.",
    )
    price_input_per_million_usd: float = Field(
        default=0.50,
        ge=0,
        description="USD per million prompt tokens (tool-use prompt tokens and text read aloud "
        "included); the defaults are Google's list prices for the default models: change them "
        "with the models.",
    )
    price_output_per_million_usd: float = Field(
        default=3.00, ge=0, description="USD per million output tokens."
    )
    price_thinking_per_million_usd: float = Field(
        default=3.00,
        ge=0,
        description="USD per million thinking tokens (Google bills them as output).",
    )
    price_tts_per_million_usd: float = Field(
        default=10.00, ge=0, description="USD per million audio tokens of text-to-speech."
    )
    price_per_search_usd: float = Field(
        default=0.014, ge=0, description="USD per Google Search query (`WEB_SEARCH`)."
    )
    price_embedding_per_million_usd: float = Field(
        default=0.15,
        ge=0,
        description="USD per million tokens File Search embeds when it indexes a document "
        "(estimated from the document's size: Google does not report them).",
    )
