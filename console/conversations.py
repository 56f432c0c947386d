"""The console's conversation pages: the list, one conversation, and what an operator does there."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Form, Request, Response

from answering.handoff import HANDOFF_REQUESTED, TIMED_OUT
from answering.operators import HANDED_BACK, TAKEN_OVER
from console.languages import ENGLISH, N_, Language
from console.media import MediaView, media_view
from console.previews import preview
from console.template_form import template_context
from console.web import (
    PREFIX,
    OperatorDep,
    console_of,
    language_of,
    not_found,
    now_of,
    redirect_with_flash,
    render,
)
from console.words import refused_by_meta, status_word
from domain.businesses import Businesses
from domain.types import ConversationState, Role, ToolCallRecord
from markup.whatsapp import markdown_to_whatsapp
from ops.logs import short_hash
from storage.conversations import RESET_EVENT
from storage.operators import Operator
from storage.states import Conversation
from storage.transcripts import Entry

log = logging.getLogger("console")

WINDOW_SECONDS = 24 * 3600  # WhatsApp's customer-service window
MAX_REPLY_CHARS = 8000  # the operator desk splits a reply into parts of at most 4096
MAX_SEARCH_CHARS = 100
LIST_LIMIT = 200
FILTERS: list[tuple[str, str]] = [
    ("", N_("All")),
    (ConversationState.WAITING.value, N_("Waiting")),
    (ConversationState.OPERATOR.value, N_("With a person")),
    (ConversationState.ASSISTANT.value, N_("Assistant")),
]


# ---------------------------------------------------------------------------------------------
# A stored conversation as the pages show it


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One conversation as the list and its page head show it."""

    id: int
    business: str  # the business's name (its number id once it is no longer configured)
    name: str  # the profile name; else the number; else the username or business-scoped id
    number: str  # the user's WhatsApp number (`wa_id`), digits; "" when Meta sent none
    state: ConversationState
    operator: str | None  # the operator who has it (state OPERATOR)
    last_activity: float  # epoch seconds
    preview: str  # the newest message on one line, as WhatsApp showed it (console/previews.py)
    last_user_at: float | None  # when the user last wrote (WhatsApp's 24-hour window)


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One line of a transcript: a message, or an event (a takeover, say) in words."""

    id: int
    at: float  # epoch seconds
    author: Literal["user", "assistant", "operator", "event"]
    text: str
    operator: str | None = None  # who sent it (operator messages) or did it (events)
    sources: tuple[str, ...] = ()  # titles of the documents an assistant answer drew on
    tool_calls: tuple[ToolCallRecord, ...] = ()  # the business's API, called for an answer
    delivery: str | None = None  # a sent message's latest status, in words (console/words.py)
    media: MediaView | None = None  # the customer's file, or the voice note an answer went as


def summary(
    conversation: Conversation, businesses: Businesses, preview: str = ""
) -> ConversationSummary:
    business = businesses.get(conversation.phone_number_id)
    # `recipient` is the wa_id whenever Meta sent one; `user_id` may be a business-scoped id.
    number = conversation.recipient if conversation.recipient.isdigit() else ""
    return ConversationSummary(
        id=conversation.id,
        business=business.name if business else conversation.phone_number_id,
        name=conversation.profile_name or number or conversation.user_id,
        number=number,
        state=conversation.state,
        operator=conversation.operator,
        last_activity=conversation.last_activity_at,
        preview=preview,
        last_user_at=conversation.last_user_at,
    )


def event_text(entry: Entry, timeout_hours: float, language: Language) -> str:
    """An event in words, for the transcript (the page adds who did it)."""
    say = language.gettext
    if entry.text == HANDOFF_REQUESTED:
        if entry.detail:
            return say("Asked for a person: %(reason)s", reason=entry.detail)
        return say("Asked for a person")
    if entry.text == TAKEN_OVER:
        return say("Taken over")
    if entry.text == HANDED_BACK:
        return say("Handed back to the assistant")
    if entry.text == TIMED_OUT:
        hours = language.decimal(timeout_hours)
        return say("Back to the assistant: no operator message for %(hours)s hours", hours=hours)
    if entry.text == RESET_EVENT:
        return say("The customer started a fresh conversation")
    return entry.text


def transcript_entry(
    entry: Entry, timeout_hours: float, language: Language = ENGLISH, now: float | None = None
) -> TranscriptEntry:
    """A stored line as the operator reads it: answers as the customer saw them on WhatsApp
    (the voice note an answer went as beside its text), a customer's file with their words."""
    if entry.role == "event":
        text = event_text(entry, timeout_hours, language)
        return TranscriptEntry(entry.id, entry.at, "event", text, entry.author)
    media = media_view(entry.media, time.time() if now is None else now)
    if entry.role == Role.USER.value:
        return TranscriptEntry(entry.id, entry.at, "user", entry.text, media=media)
    text = markdown_to_whatsapp(entry.text)
    delivery = status_word(entry.delivery, language)
    if entry.author:
        return TranscriptEntry(
            entry.id, entry.at, "operator", text, entry.author, delivery=delivery
        )
    return TranscriptEntry(
        entry.id,
        entry.at,
        "assistant",
        text,
        sources=entry.sources,
        tool_calls=entry.tool_calls,
        delivery=delivery,
        media=media,
    )


# ---------------------------------------------------------------------------------------------
# The list


def list_query(state: str, search: str) -> str:
    return urlencode({k: v for k, v in (("state", state), ("q", search)) if v})


def parse_filters(state: str, q: str) -> tuple[ConversationState | None, str]:
    try:
        chosen: ConversationState | None = ConversationState(state) if state else None
    except ValueError:
        chosen = None
    return chosen, q.strip()[:MAX_SEARCH_CHARS]


async def list_context(request: Request, operator: Operator, state: str, q: str) -> dict[str, Any]:
    chosen, search = parse_filters(state, q)
    console = console_of(request)
    businesses = console.settings.businesses
    numbers = None  # the admin: every business, those since taken out of the tenants file too
    if operator.scope is not None:
        numbers = [b.phone_number_id for b in businesses if b.name in operator.scope]
    listed = await console.store.transcripts.listed(
        phone_number_ids=numbers, state=chosen, search=search or None, limit=LIST_LIMIT
    )
    return {
        "conversations": [
            summary(item.conversation, businesses, preview(item.preview, item.preview_role))
            for item in listed
        ],
        "show_business": len(businesses) > 1,
        "filtered": bool(chosen or search),
    }


async def conversation_list(
    request: Request, operator: OperatorDep, state: str = "", q: str = ""
) -> Response:
    """Every conversation this operator may see, the most recent activity first."""
    chosen, search = parse_filters(state, q)
    current = chosen.value if chosen else ""
    say = language_of(request).gettext
    filters = [
        (say(label), f"{PREFIX}?{list_query(value, search)}".rstrip("?"), value == current)
        for value, label in FILTERS
    ]
    return render(
        request,
        "conversations.html",
        state=current,
        search=search,
        filters=filters,
        live_url=f"{PREFIX}/live/list?{list_query(current, search)}".rstrip("?"),
        **await list_context(request, operator, current, search),
    )


async def conversation_rows(
    request: Request, operator: OperatorDep, state: str = "", q: str = ""
) -> Response:
    """The list's rows alone, which the page's script swaps in every few seconds."""
    context = await list_context(request, operator, state, q)
    return render(request, "_conversation_rows.html", partial=True, **context)


# ---------------------------------------------------------------------------------------------
# One conversation


async def visible(request: Request, operator: Operator, conversation_id: int) -> Conversation:
    """The conversation, if this operator serves its business; otherwise 404, as if absent."""
    found = await console_of(request).store.states.get(conversation_id)
    if found is None:
        raise not_found()
    if operator.scope is not None:
        business = console_of(request).settings.businesses.get(found.phone_number_id)
        if business is None or business.name not in operator.scope:
            raise not_found()
    return found


async def conversation_context(
    request: Request, operator: Operator, conversation_id: int
) -> dict[str, Any]:
    conversation = await visible(request, operator, conversation_id)
    console = console_of(request)
    timeout = console.settings.handoff_timeout_hours
    stored = await console.store.transcripts.entries(conversation.conversation_key)
    last_user_at = conversation.last_user_at
    return {
        "conversation": conversation,
        "c": summary(conversation, console.settings.businesses),
        "entries": [
            transcript_entry(entry, timeout, language_of(request), now_of(request))
            for entry in stored
        ],
        "show_business": len(console.settings.businesses) > 1,
        "window_closed": last_user_at is None or now_of(request) - last_user_at > WINDOW_SECONDS,
        "window_until": window_until(last_user_at, now_of(request)),
        "mine": conversation.state == ConversationState.OPERATOR
        and conversation.operator == operator.username,
    }


def window_until(last_user_at: float | None, now: float) -> float | None:
    """When WhatsApp's 24-hour window closes, while it is open."""
    if last_user_at is None or now - last_user_at > WINDOW_SECONDS:
        return None
    return last_user_at + WINDOW_SECONDS


async def conversation_page(
    request: Request, operator: OperatorDep, conversation_id: int, template: str = ""
) -> Response:
    context = await conversation_context(request, operator, conversation_id)
    conversation = context.pop("conversation")
    forms = await template_context(request, conversation, template)
    return render(request, "conversation.html", max_reply=MAX_REPLY_CHARS, **context, **forms)


async def conversation_live(
    request: Request, operator: OperatorDep, conversation_id: int
) -> Response:
    """The conversation's state, transcript and actions alone, for the page's live updates."""
    context = await conversation_context(request, operator, conversation_id)
    return render(request, "_conversation_live.html", partial=True, **context)


# ---------------------------------------------------------------------------------------------
# Actions


def back_to(request: Request, conversation_id: int, kind: str, text: str) -> Response:
    return redirect_with_flash(request, f"{PREFIX}/conversations/{conversation_id}", kind, text)


async def take_over(request: Request, operator: OperatorDep, conversation_id: int) -> Response:
    conversation = await visible(request, operator, conversation_id)
    say = language_of(request).gettext
    if not await console_of(request).desk.take_over(
        conversation, operator.username, unless_held=True
    ):
        text = say("Not taken over: another operator has this conversation now.")
        return back_to(request, conversation_id, "error", text)
    log.info("conversation %d taken over by %s", conversation_id, _who(operator))
    return back_to(request, conversation_id, "ok", say("You took over this conversation."))


async def hand_back(request: Request, operator: OperatorDep, conversation_id: int) -> Response:
    conversation = await visible(request, operator, conversation_id)
    say = language_of(request).gettext
    if not await console_of(request).desk.hand_back(conversation, operator.username):
        text = say("Nothing to hand back: no operator has this conversation now.")
        return back_to(request, conversation_id, "error", text)
    log.info("conversation %d handed back by %s", conversation_id, _who(operator))
    return back_to(request, conversation_id, "ok", say("Handed back: the assistant answers again."))


async def reply(
    request: Request,
    operator: OperatorDep,
    conversation_id: int,
    text: Annotated[str, Form()] = "",
) -> Response:
    conversation = await visible(request, operator, conversation_id)
    text, language = text.strip(), language_of(request)
    say = language.gettext
    if not text:
        return back_to(request, conversation_id, "error", say("Write a reply first."))
    if len(text) > MAX_REPLY_CHARS:
        message = say(
            "Not sent: a reply can have at most %(max)s characters.",
            max=MAX_REPLY_CHARS,
        )
        return back_to(request, conversation_id, "error", message)
    desk = console_of(request).desk
    sent = await desk.reply(conversation, operator.username, text, now=now_of(request))
    log.info(
        "reply to conversation %d by %s %s",
        conversation_id,
        _who(operator),
        "sent" if sent.sent else "refused",
    )
    if not sent.sent:
        reason = say("WhatsApp did not accept it.")
        if sent.refused:
            reason = refused_by_meta(sent.refused, language)
        elif sent.reason:
            reason = say(sent.reason, **sent.values)
        return back_to(
            request, conversation_id, "error", say("Not sent. %(reason)s", reason=reason)
        )
    return back_to(request, conversation_id, "sent", say("Sent."))


def _who(operator: Operator) -> str:
    return short_hash(operator.username)
