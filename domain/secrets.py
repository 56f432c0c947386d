"""Telling a real secret from a placeholder left over from `.env.example`."""

from __future__ import annotations

# Values that only ever come from copying `.env.example` without filling it in.
_PLACEHOLDER_PREFIXES = ("change-me", "changeme", "your-", "your_", "<", "replace")
_PLACEHOLDER_VALUES = frozenset({"xxx", "todo", "placeholder", "secret", "token", "..."})


def is_placeholder(value: str) -> bool:
    """True for a value that is empty or was obviously left over from `.env.example`."""
    v = value.strip().lower()
    return not v or v in _PLACEHOLDER_VALUES or v.startswith(_PLACEHOLDER_PREFIXES)
