"""Graph and Gemini faked with respx at the HTTP level (`FakeUpstreams`: queued replies first,
then a default; every message checked against Meta's OpenAPI description), and the answers they
give."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import math
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx
from fake_file_search import FakeFileSearch
from fake_upstreams import VERIFIED_NAME
from helpers import GEMINI_BASE, GRAPH_BASE, MEDIA_BASE
from meta_openapi import invalid_parameter, problems, rejection


def gemini_answer(text: str, prompt_tokens: int = 12, output_tokens: int = 7) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": prompt_tokens + output_tokens,
            },
            "modelVersion": "gemini-3.8-flash",
        },
    )


def sine_pcm(seconds: float, rate: int = 24000) -> bytes:
    """Signed 16-bit little-endian mono PCM of a 440 Hz tone, as Gemini's TTS answers."""
    samples = (
        int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))
    )
    return b"".join(struct.pack("<h", sample) for sample in samples)


def speech_answer(
    audio: bytes, mime_type: str = "audio/L16;codec=pcm;rate=24000"
) -> httpx.Response:
    """A text-to-speech answer: the audio inline, base64 as the API sends it."""
    return httpx.Response(
        200,
        json={
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "inlineData": {
                                    "mimeType": mime_type,
                                    "data": base64.b64encode(audio).decode(),
                                }
                            }
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 200},
        },
    )


def parse_multipart(request: httpx.Request) -> tuple[dict[str, str], dict[str, tuple[bytes, str]]]:
    """A multipart/form-data body: its plain fields, and its files as (bytes, content type)."""
    message = email.message_from_bytes(
        b"Content-Type: "
        + request.headers["content-type"].encode()
        + b"\r\n\r\n"
        + request.content,
        policy=email.policy.HTTP,
    )
    form: dict[str, str] = {}
    files: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_filename():
            files[name] = (payload, part.get_content_type())
        else:
            form[name] = payload.decode()
    return form, files


def gemini_error(status: int, name: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": status, "message": "test failure", "status": name}}
    )


def graph_error(status: int, code: int, kind: str = "OAuthException") -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {
                "message": "test failure",
                "type": kind,
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": "test"},
                "fbtrace_id": "AbCdEf",
            }
        },
    )


Reply = httpx.Response | Exception | Callable[[httpx.Request], Awaitable[httpx.Response]]


@dataclass
class FakeUpstreams:
    """Graph and Gemini faked at the HTTP level; queued replies first, then a default."""

    router: respx.Router
    gemini_queue: list[Reply] = field(default_factory=list)
    send_queue: list[Reply] = field(default_factory=list)
    read_queue: list[Reply] = field(default_factory=list)
    gemini_calls: list[httpx.Request] = field(default_factory=list)
    graph_calls: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    media_info_queue: list[Reply] = field(default_factory=list)
    download_queue: list[Reply] = field(default_factory=list)
    media_requests: list[httpx.Request] = field(default_factory=list)
    # (the business number id in the path, the bearer token) of each Graph message call
    senders: list[tuple[str, str]] = field(default_factory=list)
    # Text-to-speech: its requests, and queued replies before the default (one second of PCM)
    tts_calls: list[httpx.Request] = field(default_factory=list)
    tts_queue: list[Reply] = field(default_factory=list)
    # Media uploaded to send (a voice note): (its bytes, the form's fields, the file's type)
    uploads: list[tuple[bytes, dict[str, str], str]] = field(default_factory=list)
    upload_queue: list[Reply] = field(default_factory=list)
    # The business number's names (GET /{version}/{number id}?fields=...): requests, replies
    number_requests: list[httpx.Request] = field(default_factory=list)
    number_queue: list[Reply] = field(default_factory=list)
    # Gemini File Search: stores, documents, uploads (everything under GEMINI_BASE but answers)
    file_search: FakeFileSearch = field(default_factory=lambda: FakeFileSearch(GEMINI_BASE))
    # Messages Meta's OpenAPI description refuses, each explained; the fixture fails on any
    rejected: list[str] = field(default_factory=list)

    def install(self) -> None:
        self.router.post(url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<number_id>\d+)/messages$").mock(
            side_effect=self._graph
        )
        self.router.post(url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<number_id>\d+)/media$").mock(
            side_effect=self._upload
        )
        self.router.get(url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<number_id>\d+)\?fields=").mock(
            side_effect=self._number
        )
        # Any single path segment, as Meta answers any id (an error for one it does not know).
        self.router.get(url__regex=rf"^{GRAPH_BASE}/v25\.0/(?P<media_id>[^/?]+)$").mock(
            side_effect=self._media_info
        )
        self.router.get(url__regex=rf"^{MEDIA_BASE}/").mock(side_effect=self._download)
        self.router.post(
            url__regex=rf"^{GEMINI_BASE}/v1[a-z0-9]*/models/[^/:]+:generateContent$"
        ).mock(side_effect=self._gemini)
        # File Search held, then answered (a pattern of its own: respx merges routes of one)
        self.router.route(url__regex=rf"^{GEMINI_BASE}/").mock(
            side_effect=self.file_search.wait_if_held
        )
        self.router.route(url__startswith=GEMINI_BASE).mock(side_effect=self.file_search.handle)

    async def _reply(self, queue: list[Reply], request: httpx.Request) -> httpx.Response | None:
        if not queue:
            return None
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return await reply(request)

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        self.media[media_id] = (data, mime_type)

    async def _media_info(self, request: httpx.Request, media_id: str) -> httpx.Response:
        """Meta's media metadata: a short-lived URL (a new one each time), type, hash, size."""
        self.media_requests.append(request)
        queued = await self._reply(self.media_info_queue, request)
        if queued is not None:
            return queued
        if media_id not in self.media:
            return graph_error(404, 100, "GraphMethodException")
        data, mime_type = self.media[media_id]
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "url": f"{MEDIA_BASE}/{media_id}?ext=1&hash=h{len(self.media_requests)}",
                "mime_type": mime_type,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            },
        )

    async def _download(self, request: httpx.Request) -> httpx.Response:
        self.media_requests.append(request)
        queued = await self._reply(self.download_queue, request)
        if queued is not None:
            return queued
        media_id = request.url.path.rsplit("/", 1)[-1]
        data, mime_type = self.media[media_id]
        return httpx.Response(200, content=data, headers={"Content-Type": mime_type})

    async def _number(self, request: httpx.Request, number_id: str) -> httpx.Response:
        """The business number's fields asked for, as Meta answers them."""
        self.number_requests.append(request)
        queued = await self._reply(self.number_queue, request)
        if queued is not None:
            return queued
        fields = {"verified_name": VERIFIED_NAME, "display_phone_number": "15550783881"}
        wanted = request.url.params.get("fields", "").split(",")
        return httpx.Response(
            200, json={**{k: fields[k] for k in wanted if k in fields}, "id": number_id}
        )

    async def _upload(self, request: httpx.Request, number_id: str) -> httpx.Response:
        """Meta's media upload: a multipart form with messaging_product, type and file."""
        queued = await self._reply(self.upload_queue, request)
        if queued is not None:
            return queued
        form, files = parse_multipart(request)
        data, mime_type = files["file"]
        self.uploads.append((data, form, mime_type))
        return httpx.Response(200, json={"id": f"{len(self.uploads)}000111"})

    async def _gemini(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("generationConfig", {}).get("responseModalities") == ["AUDIO"]:
            self.tts_calls.append(request)
            queued = await self._reply(self.tts_queue, request)
            return queued or speech_answer(sine_pcm(1.0))
        self.gemini_calls.append(request)
        queued = await self._reply(self.gemini_queue, request)
        if queued is not None:
            return queued
        last_text = json.loads(request.content)["contents"][-1]["parts"][-1]["text"]
        return gemini_answer(f"You said: {last_text}")

    async def _graph(self, request: httpx.Request, number_id: str) -> httpx.Response:
        body = json.loads(request.content)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.senders.append((number_id, token))
        if found := problems(body):
            self.rejected.append(rejection(body, found))
            self.graph_calls.append((body, 400))
            return httpx.Response(400, json=invalid_parameter(found))
        queue = self.read_queue if body.get("status") == "read" else self.send_queue
        try:
            response = await self._reply(queue, request)
        except Exception:
            self.graph_calls.append((body, 0))
            raise
        if response is None:
            if body.get("status") == "read":
                response = httpx.Response(200, json={"success": True})
            else:
                response = httpx.Response(
                    200,
                    json={
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                        "messages": [{"id": f"wamid.out-{len(self.graph_calls)}"}],
                    },
                )
        self.graph_calls.append((body, response.status_code))
        return response

    def voice_notes(self) -> list[dict[str, Any]]:
        """Audio messages Meta accepted."""
        return [b for b, status in self.graph_calls if b.get("type") == "audio" and status == 200]

    def gemini_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.gemini_calls]

    def sent(self) -> list[dict[str, Any]]:
        """Text messages Meta accepted, in the order they were sent."""
        return [b for b, status in self.graph_calls if b.get("type") == "text" and status == 200]

    def send_attempts(self) -> list[dict[str, Any]]:
        return [b for b, _ in self.graph_calls if b.get("type") == "text"]

    def read_receipts(self) -> list[dict[str, Any]]:
        return [b for b, status in self.graph_calls if b.get("status") == "read" and status == 200]
