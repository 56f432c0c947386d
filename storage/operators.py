"""Console operators, their sign-in sessions and failed sign-ins, shared by every instance."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, update
from sqlalchemy.sql.elements import ColumnElement

from storage.database import Database
from storage.schema import console_sessions, login_failures, operators

SEEN_RESOLUTION_SECONDS = 60.0  # last_seen_at is written at most this often per session


@dataclass(frozen=True, slots=True)
class Operator:
    """Someone who signs in to the console; the admin serves every business."""

    id: int
    username: str
    is_admin: bool
    businesses: tuple[str, ...] = ()

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The businesses whose conversations this operator sees; None: all of them."""
        return None if self.is_admin else self.businesses


@dataclass(frozen=True, slots=True)
class Account:
    """An operator with the Argon2 hash their password is checked against."""

    operator: Operator
    password_hash: str


def _operator(row: Any) -> Operator:
    businesses = json.loads(row.businesses or "[]")
    return Operator(int(row.id), row.username, bool(row.is_admin), tuple(businesses))


def _businesses_json(businesses: Sequence[str]) -> str:
    return json.dumps(sorted(set(businesses)), ensure_ascii=False)


_OPERATOR_COLUMNS = (
    operators.c.id,
    operators.c.username,
    operators.c.is_admin,
    operators.c.businesses,
)

_ACCOUNT = select(*_OPERATOR_COLUMNS, operators.c.password_hash).where(
    operators.c.username == bindparam("username")
)

_ALL = select(*_OPERATOR_COLUMNS).order_by(operators.c.is_admin.desc(), operators.c.username)

_ONE = select(*_OPERATOR_COLUMNS).where(operators.c.id == bindparam("operator_id"))

_SESSION = (
    select(*_OPERATOR_COLUMNS, console_sessions.c.last_seen_at)
    .select_from(console_sessions.join(operators, operators.c.id == console_sessions.c.operator_id))
    .where(
        console_sessions.c.id == bindparam("session_id"),
        console_sessions.c.expires_at > bindparam("now"),
    )
)

_TOUCH = (
    update(console_sessions)
    .where(console_sessions.c.id == bindparam("session_id"))
    .values(last_seen_at=bindparam("now"))
)


def _nth_failure_by(column: ColumnElement[str]) -> Select[float]:
    """The failure whose leaving the window brings the count for `column`'s key (a name or an
    address) under the limit: the limit-th newest."""
    return (
        select(login_failures.c.failed_at)
        .where(column == bindparam("key"), login_failures.c.failed_at > bindparam("since"))
        .order_by(login_failures.c.failed_at.desc())
        .limit(1)
        .offset(bindparam("skip"))
    )


_NTH_FAILURE_OF_NAME = _nth_failure_by(login_failures.c.username)
_NTH_FAILURE_OF_ADDRESS = _nth_failure_by(login_failures.c.address)


class Operators:
    """Operators and their passwords' hashes, sessions by token hash, and the sign-in throttle."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- operators ----------------------------------------------------------------------------

    async def account(self, username: str) -> Account | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(_ACCOUNT, {"username": username})).first()
        return None if row is None else Account(_operator(row), row.password_hash)

    async def all(self) -> list[Operator]:
        """Every operator, the admin first, then by name."""
        async with self._db.connect() as conn:
            return [_operator(row) for row in (await conn.execute(_ALL)).all()]

    async def get(self, operator_id: int) -> Operator | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(_ONE, {"operator_id": operator_id})).first()
        return None if row is None else _operator(row)

    async def save_admin(self, username: str, password_hash: str, now: float) -> None:
        """Create the admin, or give the existing one this hash (and the admin's rights)."""
        insert = self._db.insert(operators).values(
            username=username,
            password_hash=password_hash,
            is_admin=True,
            businesses="[]",
            created_at=now,
        )
        upsert = insert.on_conflict_do_update(
            index_elements=["username"],
            set_={"password_hash": password_hash, "is_admin": True, "businesses": "[]"},
        )
        async with self._db.write() as conn:
            await conn.execute(upsert)

    async def add(
        self, username: str, password_hash: str, businesses: Sequence[str], now: float
    ) -> Operator | None:
        """A new operator (never an admin); None when the name is taken."""
        insert = (
            self._db.insert(operators)
            .values(
                username=username,
                password_hash=password_hash,
                is_admin=False,
                businesses=_businesses_json(businesses),
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["username"])
            .returning(operators.c.id)
        )
        async with self._db.write() as conn:
            new_id = (await conn.execute(insert)).scalar()
        if new_id is None:
            return None
        return Operator(int(new_id), username, False, tuple(sorted(set(businesses))))

    async def set_businesses(self, operator_id: int, businesses: Sequence[str]) -> bool:
        """Change what an operator (not the admin) serves; False when there is no such one."""
        statement = (
            update(operators)
            .where(operators.c.id == operator_id, operators.c.is_admin.is_(False))
            .values(businesses=_businesses_json(businesses))
        )
        async with self._db.write() as conn:
            return (await conn.execute(statement)).rowcount > 0

    async def set_password(self, operator_id: int, password_hash: str) -> bool:
        statement = (
            update(operators)
            .where(operators.c.id == operator_id)
            .values(password_hash=password_hash)
        )
        async with self._db.write() as conn:
            return (await conn.execute(statement)).rowcount > 0

    async def remove(self, operator_id: int) -> bool:
        """Remove an operator (never the admin) and end their sessions."""
        async with self._db.transaction() as conn:
            removed = await conn.execute(
                delete(operators).where(
                    operators.c.id == operator_id, operators.c.is_admin.is_(False)
                )
            )
            if removed.rowcount == 0:
                return False
            await conn.execute(
                delete(console_sessions).where(console_sessions.c.operator_id == operator_id)
            )
        return True

    # -- sessions -----------------------------------------------------------------------------

    async def start_session(
        self, session_id: str, operator_id: int, now: float, expires_at: float
    ) -> None:
        """Keep a new session under `session_id`, the hash of its token."""
        insert = console_sessions.insert().values(
            id=session_id,
            operator_id=operator_id,
            created_at=now,
            expires_at=expires_at,
            last_seen_at=now,
        )
        async with self._db.write() as conn:
            await conn.execute(insert)

    async def session(self, session_id: str, now: float) -> Operator | None:
        """The operator of a live session, or None; notes when it was last used."""
        params = {"session_id": session_id, "now": now}
        async with self._db.connect() as conn:
            row = (await conn.execute(_SESSION, params)).first()
        if row is None:
            return None
        if row.last_seen_at < now - SEEN_RESOLUTION_SECONDS:
            async with self._db.write() as conn:
                await conn.execute(_TOUCH, params)
        return _operator(row)

    async def end_session(self, session_id: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(delete(console_sessions).where(console_sessions.c.id == session_id))

    async def end_sessions(self, operator_id: int) -> int:
        """End every session of an operator (their password changed); how many there were."""
        statement = delete(console_sessions).where(console_sessions.c.operator_id == operator_id)
        async with self._db.write() as conn:
            return (await conn.execute(statement)).rowcount

    async def count_sessions(self, operator_id: int) -> int:
        statement = (
            select(func.count())
            .select_from(console_sessions)
            .where(console_sessions.c.operator_id == operator_id)
        )
        async with self._db.connect() as conn:
            return int(await conn.scalar(statement) or 0)

    # -- failed sign-ins ----------------------------------------------------------------------

    async def record_failure(self, username_key: str, address_key: str, at: float) -> None:
        insert = login_failures.insert().values(
            username=username_key, address=address_key, failed_at=at
        )
        async with self._db.write() as conn:
            await conn.execute(insert)

    async def retry_after(
        self, username_key: str, address_key: str, *, now: float, window: float, limit: int
    ) -> float:
        """Seconds until a sign-in may be tried again: 0 while either key has fewer than
        `limit` failures in the `window` seconds up to `now`."""
        since = now - window
        wait = 0.0
        async with self._db.connect() as conn:
            for statement, key in (
                (_NTH_FAILURE_OF_NAME, username_key),
                (_NTH_FAILURE_OF_ADDRESS, address_key),
            ):
                params = {"key": key, "since": since, "skip": limit - 1}
                nth = await conn.scalar(statement, params)
                if nth is not None:
                    wait = max(wait, float(nth) + window - now)
        return wait

    async def purge(self, *, now: float, failures_before: float) -> int:
        """Delete expired sessions and failures before `failures_before`; how many rows went."""
        async with self._db.write() as conn:
            sessions = await conn.execute(
                delete(console_sessions).where(console_sessions.c.expires_at <= now)
            )
            failures = await conn.execute(
                delete(login_failures).where(login_failures.c.failed_at < failures_before)
            )
        return sessions.rowcount + failures.rowcount
