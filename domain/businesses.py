"""The businesses one deployment answers for: read from TENANTS_FILE, found by phone number id."""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from domain.mcp_servers import McpServer
from domain.secrets import placeholder_reason, without_bearer
from domain.tools import HttpTool
from domain.tools_file import NO_TOOLS, Toolset, read_tools_file
from hours.schedule import ALWAYS_OPEN_UTC, OpeningHours, read_schedule, read_timezone
from language.choice import normalise_language

log = logging.getLogger(__name__)

DEFAULT_BUSINESS = "default"
NO_TOKEN = SecretStr("")
DEFAULT_KNOWLEDGE_DIR = Path("knowledge")


@dataclass(frozen=True, slots=True)
class Business:
    """One business number and everything answering its customers needs, settings resolved."""

    name: str
    phone_number_id: str
    token: SecretStr = NO_TOKEN
    system_prompt: str = ""
    reply_language: str = "auto"
    knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR
    # The setting that named the folder, for messages about it.
    knowledge_setting: str = "KNOWLEDGE_DIR"
    voice_replies: str = "auto"
    rate_limit_per_minute: int = 0
    rate_limit_per_day: int = 0
    fallback_message: str | None = None
    daily_budget_usd: float = 0.0  # 0: no budget of its own (the deployment's may still bite)
    tools: tuple[HttpTool, ...] = ()  # its HTTP tools (TOOLS_FILE, a tenant's tools_file)
    mcp: tuple[McpServer, ...] = ()  # the MCP servers whose tools it may call (the same file)
    hours: OpeningHours = ALWAYS_OPEN_UTC  # TIMEZONE and BUSINESS_HOURS
    waba_id: str | None = None  # its WhatsApp Business Account, whose templates it can send


class Businesses:
    """Every business of the deployment, by phone number id; iteration keeps the file's order."""

    def __init__(self, businesses: list[Business]) -> None:
        self._by_number = {b.phone_number_id: b for b in businesses}

    def get(self, phone_number_id: str) -> Business | None:
        return self._by_number.get(phone_number_id)

    def __contains__(self, phone_number_id: object) -> bool:
        return phone_number_id in self._by_number

    def __iter__(self) -> Iterator[Business]:
        return iter(self._by_number.values())

    def __len__(self) -> int:
        return len(self._by_number)

    def names(self) -> list[str]:
        return [b.name for b in self]

    def named(self, name: str) -> Business | None:
        return next((b for b in self if b.name == name), None)


def account_id(value: Any) -> Any:
    """A WhatsApp Business Account id as Meta shows it (digits), or None when empty."""
    text = str(value).strip() if isinstance(value, str | int) else value
    if text is None or text == "":
        return None
    if not isinstance(text, str) or not text.isdigit():
        raise ValueError("must be the numeric WhatsApp Business Account ID from WhatsApp Manager")
    return text


_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TenantSettings(BaseModel):
    """One `[[tenants]]` entry of TENANTS_FILE; optional keys fall back to the service's own.

    Paths in the file (prompt files, knowledge folders) are relative to the file's folder.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, title="The tenants file")

    name: str = Field(
        min_length=1,
        max_length=80,
        description="The business's name, shown in the console and in the logs' `tenant` field.",
    )
    phone_number_id: str = Field(
        description="The business number's id in Meta (WhatsApp > API Setup > Phone number "
        "ID); each business has its own.",
    )
    whatsapp_token_env: str = Field(
        description="The NAME of the environment variable (or `.env` entry) that holds the "
        "business's token, never the token itself. A pasted `Bearer ` prefix is removed, with "
        "a warning.",
    )
    system_prompt: str | None = Field(
        default=None, description="The business's instructions for the assistant."
    )
    system_prompt_file: Path | None = Field(
        default=None,
        description="Read the instructions from this UTF-8 file instead (one of the two).",
    )
    reply_language: str | None = Field(default=None, description="The business's `REPLY_LANGUAGE`.")
    knowledge_dir: Path | None = Field(
        default=None, description="The business's own documents folder (`KNOWLEDGE_DIR`)."
    )
    voice_replies: Literal["auto", "always", "off"] | None = Field(
        default=None, description="The business's `VOICE_REPLIES`."
    )
    rate_limit_per_minute: int | None = Field(
        default=None, ge=0, description="The business's `RATE_LIMIT_PER_MINUTE`."
    )
    rate_limit_per_day: int | None = Field(
        default=None, ge=0, description="The business's `RATE_LIMIT_PER_DAY`."
    )
    fallback_message: str | None = Field(
        default=None, description="The business's `FALLBACK_MESSAGE`."
    )
    daily_budget_usd: float | None = Field(
        default=None,
        ge=0,
        description="A daily budget of the business's own, in USD (`DAILY_BUDGET_USD` still "
        "applies to all businesses together). Unset: none of its own.",
    )
    tools_file: Path | None = Field(
        default=None,
        description="The business's tools file (`TOOLS_FILE`'s format, docs/tools.md: HTTP "
        "tools and MCP servers). Unset: no tools; `TOOLS_FILE` is not a fallback.",
    )
    timezone: str | None = Field(default=None, description="The business's `TIMEZONE`.")
    business_hours: str | None = Field(default=None, description="The business's `BUSINESS_HOURS`.")
    waba_id: str | None = Field(
        default=None,
        description="The business's WhatsApp Business Account id, whose approved templates "
        "the console sends (`WHATSAPP_BUSINESS_ACCOUNT_ID`).",
    )

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("phone_number_id", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        text = str(value).strip() if isinstance(value, str | int) else value
        if not isinstance(text, str) or not text.isdigit():
            raise ValueError("must be the numeric Phone number ID from the Meta dashboard")
        return text

    @field_validator("waba_id", mode="before")
    @classmethod
    def _account_digits(cls, value: Any) -> Any:
        return account_id(value)

    @field_validator("whatsapp_token_env")
    @classmethod
    def _environment_name(cls, value: str) -> str:
        if not _ENVIRONMENT_NAME.match(value):
            raise ValueError("must be the NAME of an environment variable, not a token")
        return value

    @field_validator("reply_language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        return None if value is None else normalise_language(value)


def tenant_entries(path: Path) -> list[Any]:
    """The raw `[[tenants]]` entries of a tenants file, or ValueError naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"TENANTS_FILE {path} cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"TENANTS_FILE {path} is not valid TOML ({exc})") from None
    entries = data.get("tenants")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"TENANTS_FILE {path} has no [[tenants]] entries")
    return entries


def read_tenants_file(path: Path, defaults: Business) -> list[Business]:
    """The businesses of TENANTS_FILE, or ValueError naming the file or business and the problem.

    Paths in the file (prompt files, knowledge folders) are relative to the file's folder.
    Tokens are read from the environment variables the file names (then from `.env`).
    """
    entries = tenant_entries(path)
    return [_business(defaults, path.parent, index, entry) for index, entry in enumerate(entries)]


def _business(defaults: Business, folder: Path, index: int, entry: Any) -> Business:
    label = f"business {entry.get('name')!r}" if isinstance(entry, dict) else f"entry {index + 1}"
    try:
        tenant = TenantSettings.model_validate(entry)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, p['loc'])) or 'entry'}: {p['msg'].removeprefix('Value error, ')}"
            for p in error.errors(include_input=False, include_url=False)
        )
        raise ValueError(f"TENANTS_FILE, {label}: {problems}") from None
    label = f"business {tenant.name!r}"
    toolset = _tools(tenant, folder, label)
    return Business(
        name=tenant.name,
        phone_number_id=tenant.phone_number_id,
        token=_token(tenant.whatsapp_token_env, label),
        system_prompt=_prompt(tenant, folder, label) or defaults.system_prompt,
        reply_language=tenant.reply_language or defaults.reply_language,
        knowledge_dir=folder / tenant.knowledge_dir
        if tenant.knowledge_dir
        else defaults.knowledge_dir,
        knowledge_setting=f"knowledge_dir of {label} in TENANTS_FILE"
        if tenant.knowledge_dir
        else defaults.knowledge_setting,
        voice_replies=tenant.voice_replies or defaults.voice_replies,
        rate_limit_per_minute=_or(tenant.rate_limit_per_minute, defaults.rate_limit_per_minute),
        rate_limit_per_day=_or(tenant.rate_limit_per_day, defaults.rate_limit_per_day),
        fallback_message=tenant.fallback_message or defaults.fallback_message,
        daily_budget_usd=tenant.daily_budget_usd or 0.0,
        tools=toolset.http,
        mcp=toolset.mcp,
        hours=_hours(tenant, defaults.hours, label),
        waba_id=tenant.waba_id or defaults.waba_id,
    )


def _tools(tenant: TenantSettings, folder: Path, label: str) -> Toolset:
    if tenant.tools_file is None:
        return NO_TOOLS
    return read_tools_file(folder / tenant.tools_file, f"TENANTS_FILE, {label}: tools_file")


def _hours(tenant: TenantSettings, defaults: OpeningHours, label: str) -> OpeningHours:
    """The business's time zone and hours, each falling back to TIMEZONE and BUSINESS_HOURS."""
    zone, schedule = defaults.zone, defaults.schedule
    try:
        if tenant.timezone is not None:
            zone = read_timezone(tenant.timezone)
    except ValueError as exc:
        raise ValueError(f"TENANTS_FILE, {label}: timezone {exc}") from None
    try:
        if tenant.business_hours is not None:
            schedule = read_schedule(tenant.business_hours) if tenant.business_hours else None
    except ValueError as exc:
        raise ValueError(f"TENANTS_FILE, {label}: business_hours cannot be read: {exc}") from None
    return OpeningHours(zone, schedule)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _token(name: str, label: str) -> SecretStr:
    """The business's token from the variable the file names; never echoed in an error."""
    value = os.environ.get(name) or dotenv_values(".env").get(name) or ""
    if not value.strip():
        raise ValueError(
            f"TENANTS_FILE, {label}: whatsapp_token_env names {name}, which is not set"
        )
    token, had_prefix = without_bearer(value)
    if had_prefix:
        log.warning(
            "TENANTS_FILE, %s: %s starts with 'Bearer ': the prefix is removed (set the token "
            "alone; the service adds that word itself)",
            label,
            name,
        )
    reason = placeholder_reason(token)
    if reason is not None:  # the matched word only: the rest of the value may be real
        raise ValueError(f"TENANTS_FILE, {label}: {name} is still a placeholder (it {reason})")
    return SecretStr(token)


def _prompt(tenant: TenantSettings, folder: Path, label: str) -> str | None:
    if tenant.system_prompt is not None and tenant.system_prompt_file is not None:
        raise ValueError(
            f"TENANTS_FILE, {label}: set system_prompt or system_prompt_file, not both"
        )
    if tenant.system_prompt_file is None:
        return tenant.system_prompt
    path = folder / tenant.system_prompt_file
    try:
        prompt = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"TENANTS_FILE, {label}: {path} cannot be read ({exc.strerror})") from None
    if not prompt:
        raise ValueError(f"TENANTS_FILE, {label}: {path} is empty")
    return prompt


def refuse_duplicates(businesses: list[Business]) -> None:
    seen: dict[str, str] = {}
    names: set[str] = set()
    for business in businesses:
        earlier = seen.setdefault(business.phone_number_id, business.name)
        if earlier != business.name:
            raise ValueError(
                f"TENANTS_FILE: businesses {earlier!r} and {business.name!r} have the same "
                f"phone_number_id {business.phone_number_id}"
            )
        if business.name in names:
            raise ValueError(f"TENANTS_FILE: two businesses are named {business.name!r}")
        names.add(business.name)


class BusinessNames:
    """The names people see (console pages, handoff notifications) for the businesses' keys.

    A business of TENANTS_FILE is shown by its name. The business of PHONE_NUMBER_ID is kept
    as `default` in the database and logs, and shown as BUSINESS_NAME, else as the name Meta
    verified for its number, else as the number as dialled; "" until one of those is known.
    """

    def __init__(self, default: Business | None, business_name: str | None = None) -> None:
        self.default = default  # the business of PHONE_NUMBER_ID, if there is one
        self._set = (business_name or "").strip()
        self._learned = ""

    @property
    def to_learn(self) -> Business | None:
        """The business whose name is to be asked of Meta: no BUSINESS_NAME names it."""
        return None if self._set else self.default

    def learn(self, verified_name: str, display_phone_number: str) -> None:
        self._learned = verified_name.strip() or display_phone_number.strip()

    def shown(self, name: str) -> str:
        if self.default is None or name != self.default.name:
            return name
        return self._set or self._learned
