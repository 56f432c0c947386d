"""Operators' sessions: sign-in checks (throttle, password), the session a cookie opens, signing
out, and the admin made at start-up."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass

from console.passwords import Passwords
from ops.logs import short_hash
from storage.operators import Operator, Operators

log = logging.getLogger("console")

ADMIN = "admin"
THROTTLE_WINDOW_SECONDS = 15 * 60.0
THROTTLE_FAILURES = 10  # failures per username, or per client address, within the window
USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")


def normalise_username(value: str) -> str:
    """Usernames are compared without case and surrounding spaces."""
    return value.strip().lower()[:256]


def digest(value: str) -> str:
    """SHA-256 in hex: what a session token or a throttle key is stored as."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    operator: Operator
    token: str  # the cookie's value; only its digest is stored
    expires_at: float


@dataclass(frozen=True, slots=True)
class Throttled:
    retry_after: float  # seconds


@dataclass(frozen=True, slots=True)
class Refused:
    """A wrong name or password (which one is not said)."""


SignInOutcome = SignedIn | Throttled | Refused


async def sign_in(
    operators: Operators,
    passwords: Passwords,
    *,
    username: str,
    password: str,
    address: str,
    now: float,
    session_seconds: float,
) -> SignInOutcome:
    """Check a sign-in attempt and start a session; refused attempts are counted, throttled
    ones are not even checked (a right password is refused too until the window slides)."""
    name = normalise_username(username)
    name_key, address_key = digest("name:" + name), digest("address:" + address)
    wait = await operators.retry_after(
        name_key,
        address_key,
        now=now,
        window=THROTTLE_WINDOW_SECONDS,
        limit=THROTTLE_FAILURES,
    )
    if wait > 0:
        log.warning("console sign-in throttled for %s", short_hash(name))
        return Throttled(wait)
    account = await operators.account(name) if USERNAME.fullmatch(name) else None
    check = await passwords.check(account.password_hash if account else None, password)
    if account is None or not check.matches:
        await operators.record_failure(name_key, address_key, now)
        log.warning("console sign-in failed for %s", short_hash(name))
        return Refused()
    if check.rehash:
        await operators.set_password(account.operator.id, await passwords.hash(password))
    token = secrets.token_urlsafe(32)
    expires_at = now + session_seconds
    await operators.start_session(digest(token), account.operator.id, now, expires_at)
    log.info("console sign-in by %s", short_hash(name))
    return SignedIn(account.operator, token, expires_at)


async def session_operator(operators: Operators, token: str | None, now: float) -> Operator | None:
    """The operator whose live session this cookie value opens, or None."""
    if not token or len(token) > 256:
        return None
    return await operators.session(digest(token), now)


async def sign_out(operators: Operators, token: str | None) -> None:
    if token and len(token) <= 256:
        await operators.end_session(digest(token))


async def ensure_admin(
    operators: Operators, passwords: Passwords, password: str, now: float
) -> None:
    """The operator `admin` exists with this password (its hash only); untouched when the
    stored hash already matches it with the current parameters."""
    account = await operators.account(ADMIN)
    check = None
    if account is not None and account.operator.is_admin:
        check = await passwords.check(account.password_hash, password)
        if check.matches and not check.rehash:
            return
    await operators.save_admin(ADMIN, await passwords.hash(password), now)
    if account is not None and not (check and check.matches):  # a new password: sign out
        await operators.end_sessions(account.operator.id)
    log.info("console admin %s", "updated" if account else "created")
