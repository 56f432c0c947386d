"""The daily caps on Gemini spending: the deployment's, a business's, and one user's tokens.

The budgets in USD hold: before Gemini is asked, the answer's worst case (answering.estimate)
is reserved against them in the database (storage.holds), for every instance at once, and
closing the message settles it to what Gemini reported (answering.pipeline, storage.usage).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from answering.estimate import worst_case
from answering.handoff import Handoff
from answering.inbound import FixedReply
from answering.job import Job, Limit, Outcome
from answering.speaking import wants_voice
from config import Settings
from domain.types import MessageState, Role, Turn
from language.replies import Reply
from ops.logs import short_hash
from storage.holds import Limits
from storage.inbox import InboxRow
from storage.store import Store
from storage.usage import ALL

log = logging.getLogger(__name__)

BUDGET_REACHED = "daily budget reached"


def hold_of(settings: Settings, row: InboxRow, owner: str) -> tuple[int, str] | None:
    """The key of the hold a message may have on the budgets (None: no budget is set for it,
    so closing it has no hold to settle)."""
    business = settings.businesses.get(row.phone_number_id)
    own = business.daily_budget_usd if business is not None else 0.0
    return (row.id, owner) if settings.daily_budget_usd > 0 or own > 0 else None


@dataclass(frozen=True, slots=True)
class Cap:
    """A cap that bites today: what it caps (for the log) and its once-a-day notice key."""

    what: str
    notice: str


class Budget:
    """Asked before each question goes to Gemini: is a cap reached today (UTC, every instance)?

    Costs nothing while every cap is off; the user's is one small query per question, the
    budgets in USD one statement that reserves the answer's worst case or refuses.
    """

    def __init__(self, settings: Settings, store: Store, handoff: Handoff, owner: str) -> None:
        self._settings = settings
        self._store = store
        self._handoff = handoff
        self._owner = owner  # the worker's claim: a hold counts while its lease does

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
        """The cap that bites; None once the answer's worst case is held against the budgets."""
        settings, business, row = self._settings, job.business, job.row
        limit = settings.user_daily_token_limit
        if limit > 0 and await self._store.usage.user_tokens_today(row.conversation_key) >= limit:
            user = short_hash(row.conversation_key)
            return Cap(f"USER_DAILY_TOKEN_LIMIT ({limit} tokens) for user {user}", f"user:{user}")
        limits = Limits(settings.daily_budget_usd, business.daily_budget_usd)
        if not limits.any:
            return None
        worst = worst_case(business, settings, job.question, spoken=wants_voice(job))
        refused = await self._store.holds.reserve(
            row.id, self._owner, business.phone_number_id, worst.cost_usd, limits
        )
        if refused is None:
            log.debug("$%.4f held for the answer", worst.cost_usd, extra=job.log_fields("budget"))
            return None
        if refused == ALL:
            return Cap(f"DAILY_BUDGET_USD (${settings.daily_budget_usd:g})", ALL)
        own = business.daily_budget_usd
        return Cap(
            f"the daily budget of business {business.name!r} (${own:g})", business.phone_number_id
        )
