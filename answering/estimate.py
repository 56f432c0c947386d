"""An answer's worst case, held against the daily budgets before Gemini is asked: the most its
requests (every round of function calling, and speaking it) can use, at the configured prices.

Gemini reports the real counts only afterwards; until then the request's size stands for them.
What the estimate assumes is written out here and in docs/costs.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from actions.calling import MAX_TOOL_CALLS
from actions.calls import MAX_BODY_BYTES
from answering.inbound import Question
from config import Settings
from domain.businesses import Business
from domain.costs import TokenUse
from markup.spoken import MAX_SPOKEN_CHARS
from webhook.events import Kind

CHARS_PER_TOKEN = 3  # a Gemini token is about 4 characters of English text; 3 leaves room
INSTRUCTION_CHARS = 3_000  # what answering adds to the system prompt: hints, hours, choices
RETRIEVED_TOKENS = 8_000  # what File Search or URL context may add to one request's prompt
SEARCHES_PER_REQUEST = 4  # Google Search queries one request may run (WEB_SEARCH)
CONTEXT_TOKENS = 1_048_576  # no request's prompt holds more
IMAGE_TOKENS = 1_120  # a photo at Gemini 3's highest default resolution
AUDIO_BYTES_PER_TOKEN = 64  # 32 tokens a second of sound, at 16 kbit/s (a voice note's least)
VIDEO_BYTES_PER_TOKEN = 128  # 263 tokens a second of video, at about 270 kbit/s
DOCUMENT_BYTES_PER_TOKEN = 2  # a PDF page is 560 tokens; a page of plain text about 1 KB
ERROR_RESPONSE_CHARS = 200  # a call answered with an error (no such tool, choices malformed)
SPOKEN_TOKENS_PER_CHAR = 4  # 32 audio tokens a second, speech at 8 characters a second or more


@dataclass(frozen=True, slots=True)
class WorstCase:
    """An answer's most: the tokens and searches, and what they cost."""

    use: TokenUse
    cost_usd: float


def tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def media_tokens(kind: Kind, settings: Settings) -> int:
    """A media file's prompt tokens at most, from its kind's size limit (its real size is
    known only once it is downloaded, after the hold)."""
    if kind is Kind.IMAGE:
        return IMAGE_TOKENS
    if kind is Kind.AUDIO:
        most = settings.max_audio_bytes // AUDIO_BYTES_PER_TOKEN
    elif kind is Kind.VIDEO:
        most = settings.max_video_bytes // VIDEO_BYTES_PER_TOKEN
    else:
        most = settings.max_document_bytes // DOCUMENT_BYTES_PER_TOKEN
    return min(most, CONTEXT_TOKENS)


def rounds(business: Business, settings: Settings) -> int:
    """Requests one answer may take: one, or with functions to call (the business's tools,
    choices offered) one per call and a last one that answers in words."""
    calls = bool(business.tools) or settings.interactive_replies == "on"
    return MAX_TOOL_CALLS + 1 if calls else 1


def first_prompt(business: Business, settings: Settings, question: Question) -> int:
    """The first request's prompt tokens at most: instructions, tools, history, the message,
    its media, what retrieval adds."""
    declared = sum(
        len(tool.name) + len(tool.description) + len(str(tool.parameters))
        for tool in business.tools
    )
    chars = (
        len(business.system_prompt)
        + INSTRUCTION_CHARS
        + declared
        + settings.history_max_chars
        + len(question.text)
    )
    media = media_tokens(question.media.kind, settings) if question.media else 0
    return min(tokens(chars) + media + RETRIEVED_TOKENS, CONTEXT_TOKENS)


def answer_use(business: Business, settings: Settings, question: Question) -> TokenUse:
    """Every round's prompt (each one carries the last one's, what the model wrote and the
    calls' responses) and output (thinking included: both count in MAX_OUTPUT_TOKENS)."""
    n = rounds(business, settings)
    first = first_prompt(business, settings, question)
    responses = MAX_BODY_BYTES if business.tools else ERROR_RESPONSE_CHARS
    growth = settings.max_output_tokens + tokens(MAX_TOOL_CALLS * responses)
    prompt = sum(min(first + k * growth, CONTEXT_TOKENS) for k in range(n))
    written = n * settings.max_output_tokens
    prices = settings.prices
    searches = n * SEARCHES_PER_REQUEST if settings.web_search else 0
    if prices.thinking > prices.output:
        return TokenUse(prompt=prompt, thinking=written, searches=searches)
    return TokenUse(prompt=prompt, output=written, searches=searches)


SPEECH = TokenUse(
    prompt=tokens(MAX_SPOKEN_CHARS), tts=MAX_SPOKEN_CHARS * SPOKEN_TOKENS_PER_CHAR
)  # the longest answer spoken: the text read (input) and the audio made


def worst_case(
    business: Business, settings: Settings, question: Question, *, spoken: bool
) -> WorstCase:
    """The answer's most, and speaking it when it will be a voice note (`spoken`)."""
    use = answer_use(business, settings, question) + (SPEECH if spoken else TokenUse())
    return WorstCase(use, use.cost(settings.prices))
