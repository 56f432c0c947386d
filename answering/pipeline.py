"""Answering one claimed message: triage, commands, limits, the question, sending, closing.

Each step lives in a module of its own (`commands`, `limits`, `question`, `sending`); this is
the order they run in, and where a new step plugs in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace

from actions.calls import ToolCaller
from answering.budget import Budget
from answering.commands import command_of, run_command
from answering.handoff import Handoff
from answering.inbound import FixedReply, Question, interpret
from answering.job import Job, Outcome, log_fields
from answering.limits import rate_limited
from answering.notify import Notifier
from answering.question import Asker
from answering.sending import Sender
from answering.speaking import Speaker
from answering.token_refusal import token_refused
from answering.windows import outside_reply_window, written_at
from config import Settings
from domain.types import Command, ConversationState, MessageState, Role, Turn
from hours.schedule import Clock, system_clock
from llm import Gemini
from ops.logs import short_hash
from ops.metrics import Metrics
from storage.inbox import InboxRow
from storage.store import Store
from webhook.events import Kind
from whatsapp import GraphClient

log = logging.getLogger(__name__)

UNKNOWN_BUSINESS = "unknown"  # the metrics label of a message whose business is gone


class Pipeline:
    """Turns one claimed inbox row into a reply sent on WhatsApp, and closes the row.

    `answer` decides and sends; `close` records what happened. The dispatcher calls both and
    is the error boundary around them.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        graphs: Mapping[str, GraphClient],
        gemini: Gemini,
        metrics: Metrics,
        owner: str,
        notifier: Notifier | None = None,
        caller: ToolCaller | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._settings = settings
        self._store = store
        self._graphs = graphs
        self._metrics = metrics
        self.owner = owner
        self._handoff = Handoff(settings, store, notifier, clock)
        self._budget = Budget(settings, store, self._handoff)
        self._asker = Asker(
            settings=settings,
            store=store,
            gemini=gemini,
            metrics=metrics,
            owner=owner,
            handoff=self._handoff,
            caller=caller,
        )
        speaker = Speaker(settings=settings, gemini=gemini, metrics=metrics)
        self._sender = Sender(settings=settings, store=store, owner=owner, speaker=speaker)

    def log_fields(self, row: InboxRow, stage: str, **fields: object) -> dict[str, object]:
        return log_fields(row, stage, tenant=self._business_name(row), **fields)

    async def answer(self, row: InboxRow) -> Outcome:
        """Decide what the message gets, send it, and say how the row should be closed."""
        business = self._settings.businesses.get(row.phone_number_id)
        if business is None:  # taken out of the tenants file while the message waited
            return Outcome(None, MessageState.FAILED, "no business has this phone number id")
        job = Job(row, business, self._graphs[business.phone_number_id])
        plan = interpret(Kind.of(row.kind), row.text, row.payload, self._settings.max_input_chars)
        if isinstance(plan, FixedReply) and plan.reply is None:
            log.info(
                "message %s of kind %s needs no reply",
                short_hash(row.message_id),
                row.kind,
                extra=job.log_fields("triage"),
            )
            return Outcome(None, MessageState.DONE)
        conversation = await self._store.states.touch(row, written_at(row))
        remembered = plan.remembered_as if isinstance(plan, Question) else f"[{row.kind}]"
        if outside_reply_window(row, time.time()):  # shown in the console, never answered
            turns = (Turn(Role.USER, remembered),)
            return Outcome(None, MessageState.EXPIRED, "outside the 24-hour reply window", turns)
        job = replace(job, conversation=conversation)
        state = await self._handoff.settled(job, conversation)
        command = command_of(row, self._settings)
        if command is None and state is not ConversationState.ASSISTANT:
            return self._handoff.held(remembered)  # a person answers: no Gemini, no receipt
        limited = None if command else await rate_limited(job, self._store)
        if limited is not None:
            return await self._sender.deliver(job, limited)
        if not await self._sender.mark_read(job):  # Meta refused the business's token
            return await token_refused(job, self._store)
        if command:
            outcome = await run_command(job, command, self._store, self._settings)
        elif self._handoff.is_command(row):
            outcome = self._handoff.asked_by_command(job)
        elif isinstance(plan, FixedReply):
            outcome = Outcome(job.fixed(plan), MessageState.DONE)
        else:
            outcome = await self._budget.refusal(job, plan) or await self._asker.ask(job, plan)
        return await self._sender.deliver(job, outcome)

    async def close(self, row: InboxRow, outcome: Outcome) -> None:
        """Record the outcome on the row (with the turns it adds), then what follows from it."""
        handoff = outcome.handoff if outcome.state is MessageState.DONE else None
        if handoff is not None:
            await self._handoff.hand_over(row, self._business_name(row), handoff)
        closed = await self._store.inbox.finish(
            row.id,
            self.owner,
            outcome.state,
            error=outcome.error,
            new_turns=[t for t in outcome.turns if t.text],
        )
        self._metrics.messages.labels(self._business_name(row), row.kind, outcome.label).inc()
        await self._count_usage(row, outcome)
        if outcome.error:
            log.warning(
                "message %s closed as %s: %s",
                short_hash(row.message_id),
                outcome.state,
                outcome.error,
                extra=self.log_fields(row, "close", state=outcome.state.value),
            )
        if not closed:
            log.warning("message %s was taken over before it closed", short_hash(row.message_id))
        if handoff is not None:
            await self._handoff.tell_team(row, self._business_name(row), handoff)
        if outcome.command is Command.FORGET:  # even if the confirmation could not be sent
            await self._store.conversations.forget(row.conversation_key)

    async def _count_usage(self, row: InboxRow, outcome: Outcome) -> None:
        """The message, and what Gemini spent on it, added to today's usage and cost."""
        cost = outcome.use.cost(self._settings.prices)
        if cost:
            self._metrics.estimated_cost.labels(self._business_name(row)).inc(cost)
        done = outcome.state is MessageState.DONE
        await self._store.usage.add(
            row.phone_number_id,
            row.conversation_key,
            answered=done and outcome.spoken,
            handoff=done and outcome.handoff is not None,
            use=outcome.use,
            cost_usd=cost,
            per_user=self._settings.user_daily_token_limit > 0,
        )

    def _business_name(self, row: InboxRow) -> str:
        business = self._settings.businesses.get(row.phone_number_id)
        return business.name if business is not None else UNKNOWN_BUSINESS
