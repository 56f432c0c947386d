"""Answering one claimed message: the steps it goes through, in order, then closing its row.

Each step lives with what it needs to know (`windows`, `handoff`, `rate_limits`, `sending`,
`commands`, `budget`, `question`) and has one shape (`answering.job.Step`): it takes the Job
and returns the Outcome it decides, or None to go on. A new step plugs into `Pipeline.steps`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from actions.calls import ToolCaller
from actions.mcp_tools import McpTools
from answering.budget import Budget, hold_of
from answering.bursts import Burst, Typing, remembered_as
from answering.commands import Commands, command_of
from answering.handoff import Handoff
from answering.inbound import SILENT, FixedReply, interpret
from answering.job import Answer, Erase, Job, Outcome, Step, log_fields
from answering.media import media_note
from answering.notify import Notifier
from answering.question import Asker
from answering.rate_limits import RateLimits
from answering.sending import Sender
from answering.speaking import Speaker
from answering.windows import outside_the_window, written_at
from config import Settings
from domain.types import MessageState, Role, Turn
from hours.schedule import Clock, system_clock
from llm import Gemini
from ops.logs import short_hash
from ops.metrics import Metrics
from storage.inbox import InboxRow
from storage.media import MediaNote
from storage.store import Store
from webhook.arrivals import Arrival
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
        mcp: McpTools | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._settings = settings
        self._store = store
        self._graphs = graphs
        self._metrics = metrics
        self.owner = owner
        self._handoff = handoff = Handoff(settings, store, notifier, clock)
        speaker = Speaker(settings=settings, gemini=gemini, metrics=metrics)
        self.typing = Typing()
        self._sender = Sender(
            settings=settings, store=store, owner=owner, speaker=speaker, typing=self.typing
        )
        asker = Asker(
            settings=settings,
            store=store,
            gemini=gemini,
            metrics=metrics,
            owner=owner,
            handoff=handoff,
            caller=caller,
            mcp=mcp,
        )
        # The steps in order; the first that decides an outcome ends the list, the last always
        # decides. Each takes the Job and returns an Outcome, or None to go on.
        self.steps: tuple[Step, ...] = (
            outside_the_window,  # over 24 hours old: kept for the console, never answered
            handoff.held,  # a person has the conversation: kept for them, not answered
            RateLimits(store).refusal,  # over a rate limit: one notice, then silence
            self._sender.read_receipt,  # blue ticks; a token Meta refuses stops here
            Commands(settings, handoff).run,  # /reset, /forget, /human
            fixed_reply,  # stickers, unsupported kinds, media that cannot be read
            Budget(settings, store, handoff, owner).refusal,  # no room today: Gemini not asked
            asker.ask,  # Gemini's answer, or the apology
        )

    def log_fields(self, row: InboxRow, stage: str, **fields: object) -> dict[str, object]:
        return log_fields(row, stage, tenant=self._business_name(row), **fields)

    async def answer(self, row: InboxRow, burst: Burst | None = None) -> Outcome:
        """Decide what the message (or the burst it ends) gets, send it, and say how the rows
        should be closed. A burst's typing indicator is kept up from its read receipt until
        the reply went out."""
        job = await self._job(row, burst)
        if isinstance(job, Outcome):
            return job
        typing: asyncio.Task[None] | None = None
        try:
            for step in self.steps:
                outcome = await step(job)
                if outcome is not None:
                    return await self._sender.deliver(job, outcome)
                if burst is not None and step == self._sender.read_receipt:
                    typing = asyncio.create_task(self.typing.keep(job.graph, row.message_id))
        finally:
            if typing is not None:
                typing.cancel()
        raise RuntimeError("no answering step decided")  # the last step always decides

    async def arrived(self, arrival: Arrival) -> None:
        """A message just recorded: its read receipt and typing indicator, at once, unless a
        person has its conversation (one indexed read, here rather than on the web process's
        acknowledgement path)."""
        graph = self._graphs.get(arrival.phone_number_id)
        if graph is None or await self._store.states.held_for(arrival.message_id):
            return
        await self.typing.arrived(graph, arrival)

    async def _job(self, row: InboxRow, burst: Burst | None) -> Job | Outcome:
        """The message as a Job for the steps, with its conversation; or the outcome of one
        that never gets that far: its business gone, or nothing to answer."""
        business = self._settings.businesses.get(row.phone_number_id)
        if business is None:  # taken out of the tenants file while the message waited
            return Outcome(None, MessageState.FAILED, "no business has this phone number id")
        plan = interpret(Kind.of(row.kind), row.text, row.payload, self._settings.max_input_chars)
        if isinstance(plan, FixedReply) and plan.reply is None:
            log.info(
                "message %s of kind %s needs no reply",
                short_hash(row.message_id),
                row.kind,
                extra=log_fields(row, "triage", tenant=business.name),
            )
            return Outcome(None, MessageState.DONE)
        conversation = await self._store.states.touch(row, written_at(row))
        graph = self._graphs[business.phone_number_id]
        command = command_of(row, self._settings)
        if burst is None:
            return Job(row, business, graph, conversation, plan, command)
        return Job(row, business, graph, conversation, plan, command, burst.earlier, burst.quote)

    async def close(self, row: InboxRow, outcome: Outcome, burst: Burst | None = None) -> None:
        """Record the outcome on the row (with the turns it adds), then what follows from it.

        What the user's next message must find (a conversation waiting for a person, a fresh
        start) is in place before the row closes: closing it lets any instance claim that one.
        A burst's messages close together; an answer overtaken by a newer message
        (`MessageState.PENDING`) gives them back, to be answered with it.
        """
        rows = burst.closing if burst is not None else (row,)
        if outcome.state is MessageState.PENDING:
            await self._store.bursts.release([r.id for r in rows], self.owner)
            log.info(
                "answer to %s dropped unsent: the user wrote again",
                short_hash(row.conversation_key),
                extra=self.log_fields(row, "close", messages=len(rows)),
            )
            await self._count_usage(row, outcome, messages=0)
            return
        handoff = outcome.handoff
        new_turns = [t for t in outcome.turns if t.text]
        if handoff is not None:  # the message that asked for a person first, then the event
            await self._store.inbox.add_turns(row.id, self.owner, new_turns)
            await self._handoff.hand_over(row, self._business_name(row), handoff)
        if outcome.then is Erase.HISTORY:  # even if the confirmation could not be sent
            await self._store.conversations.reset(row.conversation_key)
        if len(rows) == 1:
            closed = await self._store.inbox.finish(
                row.id,
                self.owner,
                outcome.state,
                error=outcome.error,
                new_turns=new_turns,
                media_note=media_note(row.kind, row.payload),
            )
        else:
            closed = bool(await self._finish_burst(rows, row, outcome, new_turns))
        for each in rows:
            self._metrics.messages.labels(self._business_name(each), each.kind, outcome.label).inc()
        await self._count_usage(row, outcome, messages=len(rows))
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
        if outcome.then is Erase.EVERYTHING:  # once closed, so that its own row is scrubbed too
            await self._store.conversations.forget(row.conversation_key)

    async def _finish_burst(
        self, rows: tuple[InboxRow, ...], row: InboxRow, outcome: Outcome, new_turns: list[Turn]
    ) -> int:
        """Close a burst: each earlier message keeps its own user turn when the outcome keeps
        the latest's (an answer, a hand-over); `/reset`, `/forget` and limits keep none."""
        earlier: list[tuple[int, Turn]] = []
        notes: list[tuple[int, MediaNote]] = []
        if any(t.role is Role.USER for t in new_turns):
            max_chars = self._settings.max_input_chars
            earlier = [
                (r.id, Turn(Role.USER, remembered_as(r, max_chars)))
                for r in rows
                if r is not row and r.kind not in SILENT
            ]
            kept = {row.id, *(row_id for row_id, _ in earlier)}
            notes = [
                (r.id, note)
                for r in rows
                if r.id in kept and (note := media_note(r.kind, r.payload)) is not None
            ]
        return await self._store.bursts.finish(
            [r.id for r in rows],
            self.owner,
            outcome.state,
            error=outcome.error,
            new_turns=[*earlier, *((row.id, t) for t in new_turns)],
            media_notes=notes,
        )

    async def _count_usage(self, row: InboxRow, outcome: Outcome, messages: int = 1) -> None:
        """The message, and what Gemini spent on it, added to today's usage and cost."""
        cost = outcome.use.cost(self._settings.prices)
        if cost:
            self._metrics.estimated_cost.labels(self._business_name(row)).inc(cost)
        done = outcome.state is MessageState.DONE
        await self._store.usage.add(
            row.phone_number_id,
            row.conversation_key,
            answered=done and isinstance(outcome.reply, Answer),
            handoff=outcome.handoff is not None,
            use=outcome.use,
            cost_usd=cost,
            per_user=self._settings.user_daily_token_limit > 0,
            settles=hold_of(self._settings, row, self.owner),  # its hold on the budgets
            messages=messages,
        )

    def _business_name(self, row: InboxRow) -> str:
        business = self._settings.businesses.get(row.phone_number_id)
        return business.name if business is not None else UNKNOWN_BUSINESS


async def fixed_reply(job: Job) -> Outcome | None:
    """The step for messages Gemini is not asked about: a sticker, an unsupported kind."""
    if isinstance(job.plan, FixedReply):
        return Outcome(job.fixed(job.plan), MessageState.DONE)
    return None
