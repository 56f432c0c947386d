"""The daily caps on Gemini spending: the deployment's, a business's, and one user's tokens."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from answering.handoff import Handoff
from answering.inbound import FixedReply
from answering.job import Job, Limit, Outcome
from config import Settings
from domain.types import MessageState, Role, Turn
from language.replies import Reply
from ops.logs import short_hash
from storage.store import Store
from storage.usage import ALL

log = logging.getLogger(__name__)

BUDGET_REACHED = "daily budget reached"


@dataclass(frozen=True, slots=True)
class Cap:
    """A cap that bites today: what it caps (for the log) and its once-a-day notice key."""

    what: str
    notice: str


class Budget:
    """Asked before each question goes to Gemini: is a cap reached today (UTC, every instance)?

    Costs nothing while every cap is off; each one on is one small query per question.
    """

    def __init__(self, settings: Settings, store: Store, handoff: Handoff) -> None:
        self._settings = settings
        self._store = store
        self._handoff = handoff

    async def refusal(self, job: Job) -> Outcome | None:
        """The pipeline's budget step: None while Gemini may be asked; else the short reply
        the user gets instead (with the console on, the conversation then waits for a person)."""
        if isinstance(job.plan, FixedReply) or job.row.reply is not None:
            return None  # no Gemini to pay for, or answered before a crash: nothing more spent
        cap = await self._reached(job)
        if cap is None:
            return None
        if await self._store.usage.first_bite(cap.notice):
            log.warning(
                "%s reached: Gemini is not asked again until tomorrow (UTC)",
                cap.what,
                extra=job.log_fields("budget"),
            )
        remembered = Turn(Role.USER, job.plan.remembered_as)
        if self._handoff.enabled:
            turns = (remembered, Turn(Role.MODEL, self._handoff.reply(job)))
            return replace(self._handoff.asked(job, BUDGET_REACHED, turns), limit=Limit.BUDGET)
        reply = job.fixed(FixedReply(Reply.BUDGET))
        return Outcome(reply, MessageState.DONE, turns=(remembered,), limit=Limit.BUDGET)

    async def _reached(self, job: Job) -> Cap | None:
        usage, settings, business = self._store.usage, self._settings, job.business
        if settings.daily_budget_usd > 0 and (
            await usage.spent_today() >= settings.daily_budget_usd
        ):
            return Cap(f"DAILY_BUDGET_USD (${settings.daily_budget_usd:g})", ALL)
        own = business.daily_budget_usd
        if own > 0 and await usage.spent_today([business.phone_number_id]) >= own:
            return Cap(
                f"the daily budget of business {business.name!r} (${own:g})",
                business.phone_number_id,
            )
        limit = settings.user_daily_token_limit
        if limit > 0 and await usage.user_tokens_today(job.row.conversation_key) >= limit:
            user = short_hash(job.row.conversation_key)
            return Cap(f"USER_DAILY_TOKEN_LIMIT ({limit} tokens) for user {user}", f"user:{user}")
        return None
