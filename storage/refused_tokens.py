"""Business tokens Meta refused: kept by hash for every instance, until the token is replaced."""

from __future__ import annotations

import hashlib
import time

from pydantic import SecretStr
from sqlalchemy import bindparam, select

from storage.database import Database
from storage.schema import refused_tokens


def token_hash(token: SecretStr) -> str:
    """A token's fingerprint: which token was refused, without keeping the token."""
    return hashlib.sha256(token.get_secret_value().encode()).hexdigest()


class RefusedTokens:
    """Which business's token Meta refused (Graph error 190), and whether it is still in use."""

    def __init__(self, db: Database) -> None:
        self._db = db
        insert = db.insert(refused_tokens).values(
            phone_number_id=bindparam("phone_number_id"),
            token_hash=bindparam("token_hash"),
            refused_at=bindparam("now"),
        )
        self._record = insert.on_conflict_do_update(
            index_elements=["phone_number_id"],
            set_={"token_hash": bindparam("token_hash"), "refused_at": bindparam("now")},
            where=refused_tokens.c.token_hash != bindparam("token_hash"),
        ).returning(refused_tokens.c.phone_number_id)

    async def record(self, phone_number_id: str, token: SecretStr) -> bool:
        """Remember the refusal; True the first time this token is refused (log it then)."""
        parameters = {
            "phone_number_id": phone_number_id,
            "token_hash": token_hash(token),
            "now": time.time(),
        }
        async with self._db.write() as conn:
            return (await conn.execute(self._record, parameters)).first() is not None

    async def refused(self) -> dict[str, str]:
        """phone number id -> the hash of its refused token."""
        query = select(refused_tokens.c.phone_number_id, refused_tokens.c.token_hash)
        async with self._db.connect() as conn:
            return {row.phone_number_id: row.token_hash for row in await conn.execute(query)}
