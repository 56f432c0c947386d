"""Operators' passwords: Argon2id hashes made and checked off the event loop."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # Argon2 takes any length; this bounds the work one request costs
# Each Argon2id hash holds 64 MiB while it runs: a burst of sign-ins must not add up to an
# instance's whole memory, so at most this many run at once (the others wait their turn).
AT_ONCE = 2


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
        self._turns = threading.BoundedSemaphore(AT_ONCE)
        # Checked when the name is unknown, so that a wrong name costs as long as a wrong
        # password; made on first need, in a worker thread.
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hash, password)

    def _hash(self, password: str) -> str:
        with self._turns:
            return self._hasher.hash(password)

    async def check(self, password_hash: str | None, password: str) -> Check:
        """Check `password` against `password_hash` (None: an unknown name, always False)."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return Check(False)
        return await asyncio.to_thread(self._check, password_hash, password)

    def _check(self, password_hash: str | None, password: str) -> Check:
        if password_hash is None and self._decoy is None:
            self._decoy = self._hash("not anyone's password")
        try:
            with self._turns:
                self._hasher.verify(password_hash or self._decoy or "", password)
        except (VerificationError, InvalidHashError):
            return Check(False)
        if password_hash is None:
            return Check(False)
        return Check(True, self._hasher.check_needs_rehash(password_hash))
