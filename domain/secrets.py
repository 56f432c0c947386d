"""Telling a real secret from a placeholder left over from `.env.example` or a pasted header."""

from __future__ import annotations

# Values that only ever come from copying `.env.example` without filling it in (docs/settings.md
# lists them, generated from here).
PLACEHOLDER_PREFIXES = ("change-me", "changeme", "your-", "your_", "<", "replace")
PLACEHOLDER_VALUES = ("xxx", "todo", "placeholder", "secret", "token", "...")


def placeholder_reason(value: str) -> str | None:
    """Why `value` is refused as a placeholder ("is empty", "starts with 'change-me'",
    "is 'token'"), or None for a real value.

    The reason names only the matched word of the lists above, in their spelling, never the
    value itself: what follows a `change-me-` may be something real.
    """
    v = value.strip().lower()
    if not v:
        return "is empty"
    if v in PLACEHOLDER_VALUES:
        return f"is {v!r}"
    for prefix in PLACEHOLDER_PREFIXES:
        if v.startswith(prefix):
            return f"starts with {prefix!r}"
    return None


def is_placeholder(value: str) -> bool:
    """True for a value that is empty or was obviously left over from `.env.example`."""
    return placeholder_reason(value) is not None


def placeholder_problem(value: str) -> str | None:
    """What is wrong with a placeholder value ("is empty", "is still the placeholder from
    .env.example (it starts with 'change-me')"), naming only the matched word; None if real."""
    reason = placeholder_reason(value)
    if reason is None:
        return None
    if not value.strip():
        return "is empty"
    return f"is still the placeholder from .env.example (it {reason})"


def refuse_placeholder(value: str) -> None:
    """ValueError for a secret that is empty or still a placeholder; the message never carries
    the value."""
    problem = placeholder_problem(value)
    if problem is not None:
        raise ValueError(problem)


def without_bearer(value: str) -> tuple[str, bool]:
    """A token with surrounding spaces and a pasted `Bearer ` prefix removed (the service adds
    that word itself), and whether there was one."""
    token = value.strip()
    word, _, rest = token.partition(" ")
    if word.lower() == "bearer":
        return rest.strip(), True
    return token, False
