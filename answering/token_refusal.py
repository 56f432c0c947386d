"""A business token Meta refuses (Graph error 190): said once, loudly, and nothing more asked."""

from __future__ import annotations

import logging

from answering.job import Job, Outcome
from domain.types import MessageState
from storage.store import Store

log = logging.getLogger(__name__)

TOKEN_REFUSED = 190  # Meta's code for an expired, revoked or invalid access token
REFUSED = "WhatsApp token refused (Graph error 190)"


async def token_refused(job: Job, store: Store) -> Outcome:
    """Remember the refusal for every instance (/ready turns unhealthy) and close the message
    without asking Gemini: no answer could be sent, so none is paid for."""
    if await store.tokens.record(job.business.phone_number_id, job.business.token):
        variable = "WHATSAPP_TOKEN" if job.business.name == "default" else "its whatsapp_token_env"
        log.error(
            "Meta refused the WhatsApp token of business %r (error 190: expired, revoked or "
            "invalid). Its messages are not answered until you put a new token in %s "
            "(docs/meta-setup.md, step 6: a system-user token that does not expire) and "
            "restart",
            job.business.name,
            variable,
            extra=job.log_fields("token"),
        )
    return Outcome(None, MessageState.FAILED, REFUSED)
