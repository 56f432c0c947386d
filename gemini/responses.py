"""What a generateContent response says: the text, the functions to call, the sources used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.genai import types


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A function Gemini asked to be called instead of (or beside) writing its answer."""

    name: str
    args: dict[str, Any]
    id: str | None = None  # answered with the same id in the function's response


def reply_of(response: types.GenerateContentResponse) -> tuple[str, tuple[FunctionCall, ...]]:
    """The answer's text (its thoughts left out) and the functions it asked to call."""
    texts: list[str] = []
    calls: list[FunctionCall] = []
    candidates = response.candidates or []
    content = candidates[0].content if candidates else None
    parts = content.parts if content is not None else None
    for part in parts or []:
        if part.text and not part.thought:
            texts.append(part.text)
        call = part.function_call
        if call is not None and call.name:
            calls.append(FunctionCall(call.name, dict(call.args or {}), call.id))
    return "".join(texts).strip(), tuple(calls)


def model_content(response: types.GenerateContentResponse) -> types.Content | None:
    """The model's content as it came (thought signatures included), to send back after its
    function calls: Gemini 3 refuses a call replayed any other way."""
    candidates = response.candidates or []
    return candidates[0].content if candidates else None


def blocked_reason(response: types.GenerateContentResponse) -> str:
    """Why a response carries no text: a block, a safety stop, or an empty candidate."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        return f"prompt blocked: {feedback.block_reason}"
    for candidate in response.candidates or []:
        if candidate.finish_reason is not None:
            return f"no text, finish reason {candidate.finish_reason}"
    return "empty response"


def sources_of(response: types.GenerateContentResponse) -> tuple[str, ...]:
    """The titles of what Gemini's answer drew on (documents, or web pages), each once."""
    candidates = response.candidates or []
    grounding = candidates[0].grounding_metadata if candidates else None
    titles: list[str] = []
    for chunk in (grounding.grounding_chunks if grounding else None) or []:
        context, web = chunk.retrieved_context, chunk.web
        title = (context.title if context else None) or (web.title or web.uri if web else None)
        if title and title not in titles:
            titles.append(title)
    return tuple(titles)


def searches_of(response: types.GenerateContentResponse) -> int:
    """How many Google Search queries the answer ran (each is billed)."""
    candidates = response.candidates or []
    grounding = candidates[0].grounding_metadata if candidates else None
    return len(grounding.web_search_queries or []) if grounding else 0


def audio_of(response: types.GenerateContentResponse) -> tuple[bytes, str] | None:
    """The spoken audio of a text-to-speech answer and its MIME type (PCM or WAV), if any."""
    candidates = response.candidates or []
    content = candidates[0].content if candidates else None
    for part in (content.parts if content is not None else None) or []:
        blob = part.inline_data
        if blob is not None and blob.data:
            return blob.data, blob.mime_type or "audio/L16;codec=pcm;rate=24000"
    return None
