"""Types every layer shares: message states, roles and turns, rate-limit verdicts, commands."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class MessageState(enum.StrEnum):
    """Where an inbound message is in its life: pending -> processing -> done/failed/expired."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


UNFINISHED = (MessageState.PENDING, MessageState.PROCESSING)


class Role(enum.StrEnum):
    """Who said a turn of a conversation, in Gemini's words."""

    USER = "user"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """A call to the business's API made while answering, as the console shows it beside the
    answer: never its arguments nor its result."""

    name: str
    status: int | None  # the HTTP status; None when there was no answer
    error: str | None  # timeout, connection problem, invalid arguments
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a conversation as Gemini gets it back: who said it, and the text."""

    role: Role
    text: str
    sources: tuple[str, ...] = ()  # titles of the documents or pages an answer drew on
    tool_calls: tuple[ToolCallRecord, ...] = ()  # the business's API, called for an answer


class RateVerdict(enum.StrEnum):
    """What the rate limits say of a message: answer it, tell the user once, or stay silent."""

    OK = "ok"
    NOTICE = "notice"
    SILENT = "silent"


class Command(enum.StrEnum):
    """Messages that are orders to the service rather than questions for Gemini."""

    RESET = "reset"
    FORGET = "forget"
    HANDOFF = "handoff"


@dataclass(frozen=True, slots=True)
class Backoff:
    """How an upstream call is retried: attempts in all, the first delay (doubling), the cap."""

    attempts: int = 3
    first_delay: float = 0.5
    max_delay: float = 8.0


class ConversationState(enum.StrEnum):
    """Who answers a conversation: Gemini, nobody yet (a person was asked for), or a person."""

    ASSISTANT = "assistant"
    WAITING = "waiting"
    OPERATOR = "operator"
