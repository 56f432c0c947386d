"""The payload files exactly as stored, for the tests of signing and parsing them, and the
business number id they name."""

from __future__ import annotations

import json
from typing import Any

from helpers import PAYLOADS

PNID = "106540352242922"


def load_payload(name: str) -> Any:
    """A payload file exactly as stored (conftest's loader moves timestamps to now)."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
