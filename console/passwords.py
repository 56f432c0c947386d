"""Operators' passwords: Argon2id hashes made and checked off the event loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # Argon2 takes any length; this bounds the work one request costs


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of checking a password: whether it matched, and whether to store a new hash
    (the hasher's parameters changed since this one was made)."""

    matches: bool
    rehash: bool = False


class Passwords:
    """Hash and check passwords; each call runs in a thread (tens of milliseconds of CPU),
    so webhooks are acknowledged meanwhile."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Checked when the name is unknown, so that a wrong name costs as long as a wrong password.
        self._decoy = self._hasher.hash("not anyone's password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def check(self, password_hash: str | None, password: str) -> Check:
        """Check `password` against `password_hash` (None: an unknown name, always False)."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return Check(False)
        return await asyncio.to_thread(self._check, password_hash, password)

    def _check(self, password_hash: str | None, password: str) -> Check:
        try:
            self._hasher.verify(password_hash or self._decoy, password)
        except (VerificationError, InvalidHashError):
            return Check(False)
        if password_hash is None:
            return Check(False)
        return Check(True, self._hasher.check_needs_rehash(password_hash))
