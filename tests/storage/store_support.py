"""What the store's tests share: a recorded text message, the lease they claim with, claiming
the next row."""

from __future__ import annotations

from helpers import text_payload

from storage.store import Store
from webhook.events import InboundMessage, parse_webhook

LEASE = 60.0


def msg(
    message_id: str, *, user: str = "16505551234", ts: int = 0, body: str = "hi"
) -> InboundMessage:
    [message] = parse_webhook(text_payload(body, message_id=message_id, wa_id=user, ts=ts)).messages
    return message


async def claim_next(store: Store, owner: str = "w1", lease: float = LEASE) -> tuple[int, str]:
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, conversation_key, owner, lease)
    assert row is not None
    return row.id, row.message_id
