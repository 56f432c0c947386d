"""The console's conversation pages: the list, one conversation, and what an operator does there."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Request, Response

from console.data import ConversationState, ConversationSummary
from console.template_form import template_context
from console.web import (
    PREFIX,
    OperatorDep,
    data_of,
    not_found,
    now_of,
    redirect_with_flash,
    render,
)
from ops.logs import short_hash
from storage.operators import Operator

log = logging.getLogger("console")

WINDOW_SECONDS = 24 * 3600  # WhatsApp's customer-service window
MAX_REPLY_CHARS = 8000  # the data layer splits a reply into parts of at most 4096
MAX_SEARCH_CHARS = 100
FILTERS: list[tuple[str, str]] = [
    ("", "All"),
    (ConversationState.WAITING.value, "Waiting"),
    (ConversationState.OPERATOR.value, "With a person"),
    (ConversationState.ASSISTANT.value, "Assistant"),
]


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
    data = data_of(request)
    conversations = await data.conversations(
        businesses=operator.scope, state=chosen, search=search or None
    )
    return {
        "conversations": conversations,
        "show_business": len(data.business_names()) > 1,
        "filtered": bool(chosen or search),
    }


async def conversation_list(
    request: Request, operator: OperatorDep, state: str = "", q: str = ""
) -> Response:
    """Every conversation this operator may see, the most recent activity first."""
    chosen, search = parse_filters(state, q)
    current = chosen.value if chosen else ""
    filters = [
        (label, f"{PREFIX}?{list_query(value, search)}".rstrip("?"), value == current)
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


async def visible(
    request: Request, operator: Operator, conversation_id: int
) -> ConversationSummary:
    """The conversation, if this operator serves its business; otherwise 404, as if absent."""
    summary = await data_of(request).conversation(conversation_id)
    if summary is None:
        raise not_found()
    if operator.scope is not None and summary.business not in operator.scope:
        raise not_found()
    return summary


async def conversation_context(
    request: Request, operator: Operator, conversation_id: int
) -> dict[str, Any]:
    summary = await visible(request, operator, conversation_id)
    data = data_of(request)
    last_user_at = summary.last_user_at
    return {
        "c": summary,
        "entries": await data.transcript(conversation_id),
        "show_business": len(data.business_names()) > 1,
        "window_closed": last_user_at is None or now_of(request) - last_user_at > WINDOW_SECONDS,
        "window_until": window_until(last_user_at, now_of(request)),
        "mine": summary.state == ConversationState.OPERATOR
        and summary.operator == operator.username,
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
    forms = await template_context(request, context["c"], template)
    return render(request, "conversation.html", max_reply=MAX_REPLY_CHARS, **context, **forms)


async def conversation_live(
    request: Request, operator: OperatorDep, conversation_id: int
) -> Response:
    """The conversation's state and transcript alone, for the page's live updates."""
    context = await conversation_context(request, operator, conversation_id)
    return render(request, "_conversation.html", partial=True, **context)


def back_to(request: Request, conversation_id: int, kind: str, text: str) -> Response:
    return redirect_with_flash(request, f"{PREFIX}/conversations/{conversation_id}", kind, text)


async def take_over(request: Request, operator: OperatorDep, conversation_id: int) -> Response:
    await visible(request, operator, conversation_id)
    await data_of(request).take_over(conversation_id, operator.username)
    log.info("conversation %d taken over by %s", conversation_id, _who(operator))
    return back_to(request, conversation_id, "ok", "You took over this conversation.")


async def hand_back(request: Request, operator: OperatorDep, conversation_id: int) -> Response:
    await visible(request, operator, conversation_id)
    await data_of(request).hand_back(conversation_id, operator.username)
    log.info("conversation %d handed back by %s", conversation_id, _who(operator))
    return back_to(request, conversation_id, "ok", "Handed back: the assistant answers again.")


async def reply(
    request: Request,
    operator: OperatorDep,
    conversation_id: int,
    text: Annotated[str, Form()] = "",
) -> Response:
    await visible(request, operator, conversation_id)
    text = text.strip()
    if not text:
        return back_to(request, conversation_id, "error", "Write a reply first.")
    if len(text) > MAX_REPLY_CHARS:
        message = f"Not sent: a reply can have at most {MAX_REPLY_CHARS} characters."
        return back_to(request, conversation_id, "error", message)
    result = await data_of(request).send_reply(conversation_id, operator.username, text)
    log.info(
        "reply to conversation %d by %s %s",
        conversation_id,
        _who(operator),
        "sent" if result.sent else "refused",
    )
    if not result.sent:
        reason = result.reason or "WhatsApp did not accept it."
        return back_to(request, conversation_id, "error", f"Not sent. {reason}")
    return back_to(request, conversation_id, "sent", "Sent.")


def _who(operator: Operator) -> str:
    return short_hash(operator.username)
