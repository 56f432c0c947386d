"""Asking Gemini one question: the media, the conversation so far, the answer or the apology."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from actions.calling import FunctionCalling
from actions.calls import ToolCaller
from actions.mcp_tools import McpTools
from answering.handoff import PROMPT_HINT, Handoff
from answering.inbound import FixedReply, Question, interpret, refusal
from answering.job import Answer, Job, Outcome
from answering.media import Attachment, MediaRef, MediaRefused, size_limit
from answering.media import fetch as fetch_media
from config import Settings
from domain.types import MessageState, Role, ToolCallRecord, Turn
from gemini.requests import (
    TRANSFER_TO_HUMAN,
    file_search_tool,
    transfer_to_human_tool,
    web_tools,
)
from language.replies import Reply
from llm import Gemini, LLMError
from markup.whatsapp import markdown_to_whatsapp
from ops.logs import short_hash
from ops.metrics import Metrics
from storage.store import Store
from webhook.events import Kind

if TYPE_CHECKING:
    from google.genai import types

log = logging.getLogger(__name__)

# Appended to the system prompt while the business has documents.
KNOWLEDGE_HINT = (
    "Answer from the business's documents (File Search) whenever they cover the question. "
    "When they do not, say so plainly and offer to pass the question to a person: never "
    "invent prices, stock, opening hours or policies."
)


class Asker:
    """Turns a question into Gemini's answer, saved on the row before anything is sent."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        gemini: Gemini,
        metrics: Metrics,
        owner: str,
        handoff: Handoff,
        caller: ToolCaller | None = None,
        mcp: McpTools | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._owner = owner
        self._handoff = handoff
        self._functions = FunctionCalling(
            gemini=gemini,
            caller=caller,
            interactive=settings.interactive_replies == "on",
            handoff=handoff.enabled,
            clock=handoff.clock,
            mcp=mcp,
        )

    async def ask(self, job: Job) -> Outcome:
        """The pipeline's last step: Gemini's answer (or one saved before a crash), else a
        refusal or the apology."""
        row, question = job.row, job.question
        if row.reply is not None:  # answered before a crash; only the sending was cut short
            return answered(question, row.reply)
        attachments: list[Attachment] = []
        if question.media is not None:
            fetched = await self._fetched(job, question.media, row.message_id)
            if isinstance(fetched, MediaRefused):
                reply = job.fixed(refusal(fetched))
                return Outcome(reply, MessageState.DONE, f"media {fetched.reason}")
            attachments.append(fetched)
        before = await self._earlier(job)
        settings = self._settings
        history = await self._store.conversations.history(
            row.conversation_key, settings.history_turns, settings.history_max_chars
        )
        prompt, tools = await self._instructions(job)
        started = time.perf_counter()
        try:
            acted = await self._functions.answer(
                job.business,
                row.recipient,  # who the business's API may hear of: the sender, only
                prompt,
                history,
                question.text,
                max_output_tokens=settings.max_output_tokens,
                attachments=attachments,
                tools=tools,
                before=before,
            )
        except LLMError as exc:
            self._metrics.gemini_failures.labels(job.business.name).inc()
            return replace(self._apology(job, question, exc.reason), use=exc.use)
        finally:
            self._metrics.gemini_latency.observe(time.perf_counter() - started)
        answer, calls = acted.answer, acted.tool_calls
        self._metrics.count_tokens(job.business.name, answer)
        transfer = answer.called(TRANSFER_TO_HUMAN) if self._handoff.enabled else None
        if transfer is not None:
            reason = str(transfer.args.get("reason") or "Gemini could not help")
            reply = self._handoff.reply(job)
            said = Turn(Role.MODEL, reply, tool_calls=calls)
            turns = (Turn(Role.USER, question.remembered_as), said)
            return replace(self._handoff.asked(job, reason[:255], turns), use=answer.use)
        if not markdown_to_whatsapp(answer.text).strip():
            apology = self._apology(job, question, "answer empty once formatted for WhatsApp")
            return replace(apology, use=answer.use)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "gemini answered message %s in %.0f ms (%d prompt, %d output tokens)",
            short_hash(row.message_id),
            duration_ms,
            answer.prompt_tokens,
            answer.output_tokens,
            extra=job.log_fields(
                "gemini",
                duration_ms=duration_ms,
                prompt_tokens=answer.prompt_tokens,
                output_tokens=answer.output_tokens,
            ),
        )
        if answer.sources:  # counted, never logged: titles can say what was asked
            self._metrics.grounded.labels(job.business.name).inc()
        written_after = await self._store.inbox.save_reply(row, self._owner, answer.text)
        if written_after and settings.message_debounce_seconds > 0 and not row.parts_sent:
            # The user wrote again while this was prepared: one answer will cover it all.
            return Outcome(None, MessageState.PENDING, "superseded", use=answer.use)
        outcome = answered(question, answer.text, answer.sources, calls)
        to_send = Answer(answer.text, written_after, acted.choices)
        return replace(outcome, reply=to_send, use=answer.use)

    async def _earlier(self, job: Job) -> list[tuple[str, list[Attachment]]]:
        """A burst's messages before the latest, each as it would go to Gemini alone; a
        sticker or a media file that cannot be read goes as what the history calls it."""
        messages: list[tuple[str, list[Attachment]]] = []
        for row in job.earlier:
            plan = interpret(
                Kind.of(row.kind), row.text, row.payload, self._settings.max_input_chars
            )
            if isinstance(plan, FixedReply):
                messages.append((f"[{row.kind}]", []))
                continue
            if plan.media is None:
                messages.append((plan.text, []))
                continue
            fetched = await self._fetched(job, plan.media, row.message_id)
            if isinstance(fetched, MediaRefused):
                messages.append((plan.remembered_as, []))
                continue
            messages.append((plan.text, [fetched]))
        return messages

    async def _instructions(self, job: Job) -> tuple[str, list[types.ToolDict]]:
        """The system prompt and the tools for this business: its documents (or the web),
        and handing over to a person while the console is on."""
        prompt, tools = job.business.system_prompt, []
        store_name = await self._store.knowledge.searchable(job.business.phone_number_id)
        if store_name is not None:
            prompt, tools = f"{prompt}\n\n{KNOWLEDGE_HINT}", [file_search_tool(store_name)]
        elif self._settings.web_search:
            tools = web_tools()
        if self._handoff.enabled:
            prompt, tools = f"{prompt}\n\n{PROMPT_HINT}", [*tools, transfer_to_human_tool()]
        return prompt, tools

    async def _fetched(
        self, job: Job, media: MediaRef, message_id: str
    ) -> Attachment | MediaRefused:
        """A message's file from Meta, within its kind's size limit, or why not (logged)."""
        try:
            return await fetch_media(job.graph, media, size_limit(self._settings, media.kind))
        except MediaRefused as exc:
            log.info(
                "media of message %s refused: %s",
                short_hash(message_id),
                exc.reason,
                extra=job.log_fields("media"),
            )
            return exc

    def _apology(self, job: Job, question: Question, reason: str) -> Outcome:
        """The user gets a short apology rather than silence; the cause goes to the log."""
        log.warning(
            "gemini gave no answer for message %s: %s",
            short_hash(job.row.message_id),
            reason,
            extra=job.log_fields("gemini"),
        )
        user_turn = (Turn(Role.USER, question.remembered_as),)
        apology = job.fixed(FixedReply(Reply.APOLOGY), job.business.fallback_message)
        return Outcome(apology, MessageState.FAILED, reason[:255], user_turn)


def answered(
    question: Question,
    reply: str,
    sources: tuple[str, ...] = (),
    tool_calls: tuple[ToolCallRecord, ...] = (),
) -> Outcome:
    turns = (Turn(Role.USER, question.remembered_as), Turn(Role.MODEL, reply, sources, tool_calls))
    return Outcome(Answer(reply), MessageState.DONE, None, turns)
