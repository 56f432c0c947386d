"""The settings of what the assistant does for the business: its tools, choices, its hours."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hours.schedule import read_schedule, read_timezone

ON_WORDS = frozenset({"on", "true", "1", "yes"})
OFF_WORDS = frozenset({"off", "false", "0", "no"})


class ActionSettings(BaseModel):
    """The business's HTTP tools (and MCP servers) Gemini may call, choices offered as buttons,
    and when the business is open (docs/tools.md)."""

    model_config = ConfigDict(title="Tools, choices and business hours")

    tools_file: Path | None = Field(
        default=None,
        description="A TOML file of the business's HTTP tools that Gemini may call while it "
        "answers (`examples/tools.toml`; docs/tools.md), and of the MCP servers whose tools it "
        "may call (`[[mcp]]`, `examples/mcp-tools.toml`). Unset: no tools. For the business of "
        "`PHONE_NUMBER_ID` only: with `TENANTS_FILE`, each business names its own "
        "`tools_file`. Start-up stops, naming the tool or server and the problem, when one is "
        "wrong or a variable its `auth` names is not set.",
        examples=["tools.toml"],
    )
    interactive_replies: Literal["on", "off"] = Field(
        default="on",
        description="`on`: Gemini may offer the customer choices as WhatsApp reply buttons (up "
        "to 3) or a list (up to 10), the taps coming back as text; `off`: it writes them out.",
    )
    timezone: str = Field(
        default="UTC",
        description="The business's IANA time zone, for its opening hours and the local date "
        "and time Gemini is told. A business of `TENANTS_FILE` may set its own (`timezone`).",
        examples=["America/Sao_Paulo"],
    )
    business_hours: str | None = Field(
        default=None,
        description="When the business is open, in its `TIMEZONE`: day ranges and time ranges "
        "separated by `;`, several ranges a day allowed, `24:00` the end of a day, a range "
        "past midnight belonging to the day it starts. Unset: always open. Gemini is told "
        "whether it is open now; a person asked for while it is closed is told when staff are "
        "back. A business of `TENANTS_FILE` may set its own (`business_hours`).",
        examples=["mon-fri 08:00-12:00, 13:30-18:00; sat 08:00-12:00; sun closed"],
    )

    @field_validator("tools_file", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("interactive_replies", mode="before")
    @classmethod
    def _on_or_off(cls, value: Any) -> Any:
        word = str(value).strip().lower() if isinstance(value, str | bool) else value
        if word in ON_WORDS:
            return "on"
        return "off" if word in OFF_WORDS else value

    @field_validator("timezone", mode="before")
    @classmethod
    def _known_timezone(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return read_timezone(value).key if value.strip() else "UTC"

    @field_validator("business_hours")
    @classmethod
    def _readable_business_hours(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            try:
                read_schedule(value)
            except ValueError as exc:
                raise ValueError(f"cannot be read: {exc}") from None
        return value or None
