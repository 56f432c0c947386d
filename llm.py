"""The Gemini client: one answer per call through google-genai, and every failure as LLMError."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import httpx

from domain.costs import NOTHING_USED, TokenUse
from domain.types import Backoff, Turn
from gemini.requests import Inline, build_request, speech_request
from gemini.responses import (
    FunctionCall,
    audio_of,
    blocked_reason,
    model_content,
    reply_of,
    searches_of,
    sources_of,
)
from gemini.sdk import genai_client
from ops.pools import ShardedTransport
from ops.sessions import aiohttp_session

if TYPE_CHECKING:  # imported when a client is made: the web process never loads the SDK
    import aiohttp
    from google.genai import errors, types

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    prompt_tokens: int
    output_tokens: int
    thinking_tokens: int = 0
    function_calls: tuple[FunctionCall, ...] = ()
    sources: tuple[str, ...] = ()  # titles of the documents or pages it drew on
    tool_prompt_tokens: int = 0  # what tools put into the prompt (retrieved text, pages)
    searches: int = 0  # Google Search queries Gemini ran for it
    content: types.Content | None = None  # the model's content as it came, to replay it

    def __add__(self, later: Answer) -> Answer:
        """`later`, with what this earlier round of the same answer cost added to it."""
        return replace(
            later,
            prompt_tokens=self.prompt_tokens + later.prompt_tokens,
            output_tokens=self.output_tokens + later.output_tokens,
            thinking_tokens=self.thinking_tokens + later.thinking_tokens,
            tool_prompt_tokens=self.tool_prompt_tokens + later.tool_prompt_tokens,
            searches=self.searches + later.searches,
            sources=(*self.sources, *(s for s in later.sources if s not in self.sources)),
        )

    @property
    def use(self) -> TokenUse:
        """What this answer is billed for."""
        return TokenUse(
            prompt=self.prompt_tokens + self.tool_prompt_tokens,
            output=self.output_tokens,
            thinking=self.thinking_tokens,
            searches=self.searches,
        )

    def called(self, name: str) -> FunctionCall | None:
        return next((call for call in self.function_calls if call.name == name), None)


@dataclass(frozen=True, slots=True)
class Speech:
    """Spoken audio from text-to-speech: raw PCM or a WAV, and the tokens it cost."""

    audio: bytes
    mime_type: str
    prompt_tokens: int
    output_tokens: int

    @property
    def use(self) -> TokenUse:
        """The text read is billed as input, the audio made at the text-to-speech price."""
        return TokenUse(prompt=self.prompt_tokens, tts=self.output_tokens)


def billed(usage: types.GenerateContentResponseUsageMetadata | None) -> TokenUse:
    """What a response's `usageMetadata` says was used, whatever the response holds."""
    if usage is None:
        return NOTHING_USED
    return TokenUse(
        prompt=(usage.prompt_token_count or 0) + (usage.tool_use_prompt_token_count or 0),
        output=usage.candidates_token_count or 0,
        thinking=usage.thoughts_token_count or 0,
    )


class LLMError(Exception):
    """Gemini gave no usable answer; `reason` says why (for logs, never for the user), `use`
    what Gemini billed all the same (a blocked answer's tokens, the rounds before a failure)."""

    def __init__(self, reason: str, use: TokenUse = NOTHING_USED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.use = use


GEMINI_BACKOFF = Backoff()

# What a request on a connection the server has just closed fails with, over httpx.
HTTPX_STALE_CONNECTION = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


def gemini_http_client(timeout_seconds: float, max_connections: int) -> httpx.AsyncClient:
    """An httpx client for Gemini (the SDK is handed it, so tests can fake it with respx)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds + 5, connect=10.0),
        transport=ShardedTransport(max_connections),
    )


def gemini_aiohttp_session(
    timeout_seconds: float, max_connections: int, base_url: str | None = None
) -> aiohttp.ClientSession:
    """An aiohttp session for Gemini: google-genai's aiohttp transport spends less CPU per
    call than httpx (bench/RESULTS.md, section 5). Made inside the running event loop; its
    owner closes it.

    The environment's proxy (HTTPS_PROXY, NO_PROXY), which httpx would honour, is read once
    here: aiohttp's `trust_env` reads it again on every request, which cost a fifth of a call.
    """
    import aiohttp

    return aiohttp_session(
        base_url or GEMINI_API_URL,
        max_connections,
        aiohttp.ClientTimeout(total=timeout_seconds + 5, connect=10.0),
    )


GEMINI_API_URL = "https://generativelanguage.googleapis.com"


async def close_gemini_http(http: httpx.AsyncClient | aiohttp.ClientSession) -> None:
    if isinstance(http, httpx.AsyncClient):
        await http.aclose()
    else:
        await http.close()


@dataclass(frozen=True, slots=True)
class TransportFailures:
    """What a failure to talk to Gemini raises, by HTTP library."""

    timeout: tuple[type[BaseException], ...]
    unreachable: tuple[type[BaseException], ...]
    stale: tuple[type[BaseException], ...]  # a kept-alive connection closed under a request


def transport_failures(http: httpx.AsyncClient | aiohttp.ClientSession) -> TransportFailures:
    if isinstance(http, httpx.AsyncClient):
        return TransportFailures(
            (httpx.TimeoutException,), (httpx.TransportError,), HTTPX_STALE_CONNECTION
        )
    import aiohttp

    return TransportFailures(
        (TimeoutError,), (aiohttp.ClientError,), (aiohttp.ServerDisconnectedError,)
    )


class Gemini:
    """The Gemini client, over an httpx client or an aiohttp session that the caller owns and
    closes."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        http: httpx.AsyncClient | aiohttp.ClientSession,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        backoff: Backoff = GEMINI_BACKOFF,
    ) -> None:
        from google.genai import errors

        self.model = model
        self._api_error: type[errors.APIError] = errors.APIError
        self._failures = transport_failures(http)
        self.client = genai_client(
            api_key=api_key,
            http=http,
            base_url=base_url,
            timeout_seconds=timeout_seconds,
            backoff=backoff,
        )

    async def generate(
        self,
        system_prompt: str,
        history: Sequence[Turn],
        message: str,
        *,
        max_output_tokens: int,
        attachments: Sequence[Inline] = (),
        tools: Sequence[types.ToolDict] = (),
        followups: Sequence[types.ContentUnionDict] = (),
        calling: str | None = None,
        before: Sequence[tuple[str, Sequence[Inline]]] = (),
    ) -> Answer:
        """One answer, or `LLMError` for every kind of failure (after the SDK's retries).

        An answer may be a function call with no text (`Answer.function_calls`); `followups`
        and `calling` carry on after one (`gemini.requests.build_request`).
        """
        contents, config = build_request(
            system_prompt,
            history,
            message,
            max_output_tokens=max_output_tokens,
            attachments=attachments,
            tools=tools,
            followups=followups,
            calling=calling,
            before=before,
        )
        response = await self._call(self.model, contents, config)
        text, calls = reply_of(response)
        usage = response.usage_metadata
        if not text and not calls:
            raise LLMError(blocked_reason(response), billed(usage))
        return Answer(
            text=text,
            prompt_tokens=(usage.prompt_token_count or 0) if usage else 0,
            output_tokens=(usage.candidates_token_count or 0) if usage else 0,
            thinking_tokens=(usage.thoughts_token_count or 0) if usage else 0,
            function_calls=calls,
            sources=sources_of(response),
            tool_prompt_tokens=(usage.tool_use_prompt_token_count or 0) if usage else 0,
            searches=searches_of(response),
            content=model_content(response) if calls else None,
        )

    async def speak(self, text: str, *, model: str, voice: str) -> Speech:
        """`text` read aloud by a text-to-speech model, or `LLMError`."""
        contents, config = speech_request(text, voice)
        response = await self._call(model, contents, config)
        audio = audio_of(response)
        usage = response.usage_metadata
        if audio is None:
            spent = billed(usage)
            raise LLMError(
                f"no audio: {blocked_reason(response)}", replace(spent, output=0, tts=spent.output)
            )
        return Speech(
            audio=audio[0],
            mime_type=audio[1],
            prompt_tokens=(usage.prompt_token_count or 0) if usage else 0,
            output_tokens=(usage.candidates_token_count or 0) if usage else 0,
        )

    async def _call(
        self,
        model: str,
        contents: list[types.ContentUnionDict],
        config: types.GenerateContentConfigDict,
    ) -> types.GenerateContentResponse:
        """The SDK's call with its failures as LLMError."""
        try:
            return await self._generate(model, contents, config)
        except self._api_error as exc:
            raise LLMError(f"Gemini API error {exc.code} {exc.status}") from exc
        except self._failures.timeout as exc:
            raise LLMError("Gemini timed out") from exc
        except self._failures.unreachable as exc:
            raise LLMError(f"Gemini unreachable: {type(exc).__name__}") from exc
        except ValueError as exc:  # a body that is not JSON, or not the documented shape
            raise LLMError(f"Gemini answered malformed data: {type(exc).__name__}") from exc

    async def _generate(
        self,
        model: str,
        contents: list[types.ContentUnionDict],
        config: types.GenerateContentConfigDict,
    ) -> types.GenerateContentResponse:
        """The SDK's call, made once more if a kept-alive connection was closed under it.

        A server may close an idle connection just as a request goes out on it; the SDK retries
        timeouts and refused connections but not that, and the request never got an answer.
        """
        try:
            return await self.client.aio.models.generate_content(
                model=model, contents=contents, config=config
            )
        except self._failures.stale as exc:
            log.info("Gemini connection closed under a request (%s); once more", type(exc).__name__)
            return await self.client.aio.models.generate_content(
                model=model, contents=contents, config=config
            )

    async def aclose(self) -> None:
        """Close the SDK's own resources; the shared httpx client is closed by its owner."""
        await self.client.aio.aclose()
