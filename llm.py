"""A thin async wrapper over Google's google-genai SDK: build the request, make the call."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpx

from domain.types import Backoff, Role, Turn
from ops.pools import ShardedTransport

if TYPE_CHECKING:  # imported when a client is made: the web process never loads the SDK
    from google.genai import errors, types

log = logging.getLogger(__name__)


class Inline(Protocol):
    """Bytes Gemini reads directly: an image, a voice note, a video or a document."""

    @property
    def data(self) -> bytes: ...

    @property
    def mime_type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A function Gemini asked to be called instead of (or beside) writing its answer."""

    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    prompt_tokens: int
    output_tokens: int
    thinking_tokens: int = 0
    function_calls: tuple[FunctionCall, ...] = ()

    def called(self, name: str) -> FunctionCall | None:
        return next((call for call in self.function_calls if call.name == name), None)


TRANSFER_TO_HUMAN = "transfer_to_human"


def transfer_to_human_tool() -> types.ToolDict:
    """The function Gemini calls to hand the conversation to a person (console on)."""
    return {
        "function_declarations": [
            {
                "name": TRANSFER_TO_HUMAN,
                "description": (
                    "Hand this conversation to a person on the business's team. Call it when "
                    "the customer asks for a person, or when you cannot help with what they need."
                ),
                "parameters": cast(
                    "types.SchemaDict",
                    {
                        "type": "OBJECT",
                        "properties": {
                            "reason": {
                                "type": "STRING",
                                "description": "Why a person is needed, in a few words, with no "
                                "personal details.",
                            }
                        },
                        "required": ["reason"],
                    },
                ),
            }
        ]
    }


class LLMError(Exception):
    """Gemini gave no usable answer; `reason` says why (for logs, never for the user)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


GEMINI_BACKOFF = Backoff()

# What a request on a connection the server has just closed fails with.
STALE_CONNECTION = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


def speed_up_sdk_field_lookups() -> None:
    """Make `name in model` answer at once for google-genai's models, with the same answer.

    google-genai (3.x) turns every request into JSON by probing each field it knows of with
    `key in model` (`_common.get_value_by_path`). pydantic models have no `__contains__`, so
    Python answers by iterating the model's (name, value) pairs, which never equal a string:
    every probe walks every field to say False. That was most of the SDK's CPU per request
    (bench/RESULTS.md, section 5); the bytes sent are the same with and without it.
    Strings get False at once; anything else is still compared pair by pair, as before.

    Upstream: no report of this was found in googleapis/python-genai's tracker when this was
    written; the fix belongs in `_common.get_value_by_path`. This can go when the SDK's models
    define `__contains__` (then this steps aside by itself, and tests/test_llm.py says so) or
    stop being probed with `in`, and `make bench` shows the same CPU per request without it.
    """
    from google.genai import _common

    if getattr(_common.BaseModel, "__contains__", None) is not None:
        return

    def contains(self: object, item: object) -> bool:
        if isinstance(item, str):
            return False
        return any(item == pair for pair in self)  # type: ignore[attr-defined]

    setattr(_common.BaseModel, "__contains__", contains)  # noqa: B010 - a method, not a field


def gemini_http_client(timeout_seconds: float, max_connections: int) -> httpx.AsyncClient:
    """The app's HTTP client for Gemini (the SDK is handed it, so tests can fake it)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds + 5, connect=10.0),
        transport=ShardedTransport(max_connections),
    )


def build_request(
    system_prompt: str,
    history: Sequence[Turn],
    message: str,
    *,
    max_output_tokens: int,
    attachments: Sequence[Inline] = (),
    tools: Sequence[types.ToolDict] = (),
) -> tuple[list[types.ContentDict], types.GenerateContentConfigDict]:
    """The contents and config of one generateContent call: history then the new message.

    Consecutive turns of one role are merged and a leading model turn is dropped, so the
    conversation always alternates and starts with the user, whatever the store held.
    Attachments (images, audio, video, PDF) go inline, before the message's text.

    The SDK's TypedDicts rather than its pydantic models: it converts either into the same
    JSON, and from dicts at about half the CPU cost (bench/RESULTS.md, section 5).
    """
    turns = [*history, Turn(Role.USER, message)]
    merged: list[Turn] = []
    for turn in turns:
        if not turn.text.strip():
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(turn.role, merged[-1].text + "\n\n" + turn.text)
        elif merged or turn.role is Role.USER:
            merged.append(turn)
    contents: list[types.ContentDict] = [
        {"role": t.role.value, "parts": [{"text": t.text}]} for t in merged
    ]
    if attachments:
        inline: list[types.PartDict] = [
            {"inline_data": {"data": a.data, "mime_type": a.mime_type}} for a in attachments
        ]
        if contents and contents[-1]["role"] == "user":
            contents[-1]["parts"] = [*inline, *(contents[-1].get("parts") or [])]
        else:
            contents.append({"role": "user", "parts": inline})
    config: types.GenerateContentConfigDict = {"max_output_tokens": max_output_tokens}
    if system_prompt:
        config["system_instruction"] = system_prompt
    if tools:  # declared, never called by the SDK itself: the caller decides what a call does
        config["tools"] = list(tools)
        config["automatic_function_calling"] = {"disable": True}
    return contents, config


def _reply_of(response: types.GenerateContentResponse) -> tuple[str, tuple[FunctionCall, ...]]:
    """The answer's text (its thoughts left out) and the functions it asked to call."""
    texts: list[str] = []
    calls: list[FunctionCall] = []
    candidates = response.candidates or []
    content = candidates[0].content if candidates else None
    parts = content.parts if content is not None else None
    for part in parts or []:
        if part.text and not part.thought:
            texts.append(part.text)
        if part.function_call is not None and part.function_call.name:
            calls.append(FunctionCall(part.function_call.name, dict(part.function_call.args or {})))
    return "".join(texts).strip(), tuple(calls)


def _blocked_reason(response: types.GenerateContentResponse) -> str:
    """Why a response carries no text: a block, a safety stop, or an empty candidate."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        return f"prompt blocked: {feedback.block_reason}"
    for candidate in response.candidates or []:
        if candidate.finish_reason is not None:
            return f"no text, finish reason {candidate.finish_reason}"
    return "empty response"


class Gemini:
    """The Gemini client, over an `httpx.AsyncClient` that the caller owns and closes."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        backoff: Backoff = GEMINI_BACKOFF,
    ) -> None:
        from google import genai
        from google.genai import errors, types

        speed_up_sdk_field_lookups()
        self.model = model
        self._api_error: type[errors.APIError] = errors.APIError
        options = types.HttpOptions(
            base_url=base_url,
            timeout=int(timeout_seconds * 1000),
            httpx_async_client=http,
            retry_options=types.HttpRetryOptions(
                attempts=backoff.attempts,
                initial_delay=backoff.first_delay,
                max_delay=backoff.max_delay,
            ),
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    async def generate(
        self,
        system_prompt: str,
        history: Sequence[Turn],
        message: str,
        *,
        max_output_tokens: int,
        attachments: Sequence[Inline] = (),
        tools: Sequence[types.ToolDict] = (),
    ) -> Answer:
        """One answer, or `LLMError` for every kind of failure (after the SDK's retries).

        An answer may be a function call with no text (`Answer.function_calls`).
        """
        contents, config = build_request(
            system_prompt,
            history,
            message,
            max_output_tokens=max_output_tokens,
            attachments=attachments,
            tools=tools,
        )
        try:
            response = await self._generate(contents, config)
        except self._api_error as exc:
            raise LLMError(f"Gemini API error {exc.code} {exc.status}") from exc
        except httpx.TimeoutException as exc:
            raise LLMError("Gemini timed out") from exc
        except httpx.TransportError as exc:
            raise LLMError(f"Gemini unreachable: {type(exc).__name__}") from exc
        except ValueError as exc:  # a body that is not JSON, or not the documented shape
            raise LLMError(f"Gemini answered malformed data: {type(exc).__name__}") from exc
        text, calls = _reply_of(response)
        if not text and not calls:
            raise LLMError(_blocked_reason(response))
        usage = response.usage_metadata
        return Answer(
            text=text,
            prompt_tokens=(usage.prompt_token_count or 0) if usage else 0,
            output_tokens=(usage.candidates_token_count or 0) if usage else 0,
            thinking_tokens=(usage.thoughts_token_count or 0) if usage else 0,
            function_calls=calls,
        )

    async def _generate(
        self, contents: list[types.ContentDict], config: types.GenerateContentConfigDict
    ) -> types.GenerateContentResponse:
        """The SDK's call, made once more if a kept-alive connection was closed under it.

        A server may close an idle connection just as a request goes out on it; the SDK retries
        timeouts and refused connections but not that, and the request never got an answer.
        """
        try:
            return await self._client.aio.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        except STALE_CONNECTION as exc:
            log.info("Gemini connection closed under a request (%s); once more", type(exc).__name__)
            return await self._client.aio.models.generate_content(
                model=self.model, contents=contents, config=config
            )

    async def aclose(self) -> None:
        """Close the SDK's own resources; the shared httpx client is closed by its owner."""
        await self._client.aio.aclose()
