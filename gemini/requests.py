"""The body of a generateContent request: the conversation, the instructions, the tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, cast

from domain.types import Role, Turn

if TYPE_CHECKING:
    from google.genai import types


class Inline(Protocol):
    """Bytes Gemini reads directly: an image, a voice note, a video or a document."""

    @property
    def data(self) -> bytes: ...

    @property
    def mime_type(self) -> str: ...


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


def file_search_tool(store_name: str) -> types.ToolDict:
    """Search the business's documents (Gemini File Search) while answering."""
    return {"file_search": {"file_search_store_names": [store_name]}}


def web_tools() -> list[types.ToolDict]:
    """Google Search grounding and URL context (pages named in the prompt or the message)."""
    return [{"google_search": {}}, {"url_context": {}}]


def build_request(
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
) -> tuple[list[types.ContentUnionDict], types.GenerateContentConfigDict]:
    """The contents and config of one generateContent call: history then the new message.

    Consecutive turns of one role are merged and a leading model turn is dropped, so the
    conversation always alternates and starts with the user, whatever the store held.
    Attachments (images, audio, video, PDF) go inline, before the message's text.
    `followups` come after the message as they are: the model's function calls, exactly as
    they came, and their responses. `calling` sets the function calling mode (`NONE`: answer
    in words). `before`: the messages of a burst written before this one (text and
    attachments), each as it would go alone, in one user turn with it.

    The SDK's TypedDicts rather than its pydantic models: it converts either into the same
    JSON, and from dicts at about half the CPU cost (bench/RESULTS.md, section 5).
    """
    if before:
        return _burst_request(
            history,
            [*before, (message, attachments)],
            config_of(system_prompt, max_output_tokens, tools, calling),
            followups,
        )
    contents = _alternating([*history, Turn(Role.USER, message)])
    if attachments:
        inline: list[types.PartDict] = [
            {"inline_data": {"data": a.data, "mime_type": a.mime_type}} for a in attachments
        ]
        if contents and contents[-1]["role"] == "user":
            contents[-1]["parts"] = [*inline, *(contents[-1].get("parts") or [])]
        else:
            contents.append({"role": "user", "parts": inline})
    config = config_of(system_prompt, max_output_tokens, tools, calling)
    return [*contents, *followups], config


def config_of(
    system_prompt: str,
    max_output_tokens: int,
    tools: Sequence[types.ToolDict],
    calling: str | None,
) -> types.GenerateContentConfigDict:
    config: types.GenerateContentConfigDict = {"max_output_tokens": max_output_tokens}
    if system_prompt:
        config["system_instruction"] = system_prompt
    if tools:  # declared, never called by the SDK itself: the caller decides what a call does
        config["tools"] = list(tools)
        config["automatic_function_calling"] = {"disable": True}
        if calling is not None:
            config["tool_config"] = {"function_calling_config": {"mode": calling}}  # type: ignore[typeddict-item]
    return config


def _burst_request(
    history: Sequence[Turn],
    messages: Sequence[tuple[str, Sequence[Inline]]],
    config: types.GenerateContentConfigDict,
    followups: Sequence[types.ContentUnionDict],
) -> tuple[list[types.ContentUnionDict], types.GenerateContentConfigDict]:
    """A burst's request: the history as `build_request` makes it, then one user turn holding
    each message in order, its attachments before its text."""
    contents = _alternating(history)
    parts: list[types.PartDict] = []
    for text, attachments in messages:
        parts += [{"inline_data": {"data": a.data, "mime_type": a.mime_type}} for a in attachments]
        if text.strip():
            parts.append({"text": text})
    if contents and contents[-1]["role"] == "user":
        contents[-1]["parts"] = [*(contents[-1].get("parts") or []), *parts]
    else:
        contents.append({"role": "user", "parts": parts})
    return [*contents, *followups], config


def _alternating(turns: Sequence[Turn]) -> list[types.ContentDict]:
    """Consecutive turns of one role merged, a leading model turn dropped, empty ones left out."""
    merged: list[Turn] = []
    for turn in turns:
        if not turn.text.strip():
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(turn.role, merged[-1].text + "\n\n" + turn.text)
        elif merged or turn.role is Role.USER:
            merged.append(turn)
    return [{"role": t.role.value, "parts": [{"text": t.text}]} for t in merged]


# Style goes in the text itself: text-to-speech models take no system instruction.
SPEAKING_STYLE = "Say this in a warm, natural, friendly voice, as in a voice message:"


def speech_request(
    text: str, voice: str
) -> tuple[list[types.ContentUnionDict], types.GenerateContentConfigDict]:
    """A text-to-speech request: the words (with their style) in, one voice's audio out."""
    contents: list[types.ContentUnionDict] = [
        {"role": "user", "parts": [{"text": f"{SPEAKING_STYLE}\n\n{text}"}]}
    ]
    config: types.GenerateContentConfigDict = {
        "response_modalities": ["AUDIO"],
        "speech_config": {"voice_config": {"prebuilt_voice_config": {"voice_name": voice}}},
    }
    return contents, config
