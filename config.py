"""Settings for the service: from the environment, then `.env`, checked once at start-up."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.businesses import (
    DEFAULT_BUSINESS,
    Business,
    Businesses,
    read_tenants_file,
    refuse_duplicates,
)
from domain.costs import Prices
from domain.secrets import placeholder_problem
from domain.setting_problems import describe_problems
from domain.types import Backoff
from language.choice import normalise_language

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, helpful assistant answering customers on WhatsApp. "
    "Answer in the language the customer writes in. Keep answers short and clear, "
    "as one would in a chat: a few sentences, or a short list when it helps. "
    "If you do not know something, say so honestly instead of guessing."
)
MIN_CONSOLE_PASSWORD_LENGTH = 8


class Settings(BaseSettings):
    """Every setting of the contract; required secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    verify_token: SecretStr
    app_secret: SecretStr
    gemini_api_key: SecretStr
    # A TOML file of businesses; without it, one business from the two settings below.
    tenants_file: Path | None = None
    # Required unless TENANTS_FILE is set (then, when set, they are one more business).
    whatsapp_token: SecretStr | None = Field(default=None, validate_default=True)
    phone_number_id: str | None = Field(default=None, validate_default=True)

    gemini_model: str = "gemini-3.8-flash"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    system_prompt_file: Path | None = None
    graph_api_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v25.0"
    gemini_base_url: str | None = None
    # repr=False: a PostgreSQL URL carries its password.
    database_url: str = Field(default="sqlite:///./data/assistant.db", repr=False)
    history_turns: int = Field(default=20, ge=0, le=1000)
    history_max_chars: int = Field(default=16_000, ge=0)
    max_concurrency: int = Field(default=32, ge=1, le=10_000)
    fallback_message: str | None = None  # None: a short apology in the user's language
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "console"
    metrics_token: SecretStr | None = None

    # Tuning knobs beyond the contract; the defaults suit most deployments.
    max_output_tokens: int = Field(default=4096, ge=1)
    gemini_timeout_seconds: float = Field(default=30.0, gt=0)
    gemini_max_attempts: int = Field(default=2, ge=1, le=10)
    # The HTTP library under google-genai for answers and speech: its aiohttp transport costs
    # less CPU per call; httpx lets respx fake Gemini in tests.
    gemini_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    graph_timeout_seconds: float = Field(default=15.0, gt=0)
    graph_max_attempts: int = Field(default=4, ge=1, le=10)
    retry_base_delay_seconds: float = Field(default=0.5, ge=0)
    retry_max_delay_seconds: float = Field(default=8.0, ge=0)
    # Processes that answer, beside the web process that records and acknowledges webhooks;
    # 0 answers in the web process itself. MAX_CONCURRENCY applies to each.
    worker_processes: int = Field(default=1, ge=0, le=64)
    # True: this web process does not answer at all; `python -m service.worker` processes
    # started by the operator do (WORKER_PROCESSES is then ignored).
    external_workers: bool = False
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    poll_interval_seconds: float = Field(default=2.0, gt=0)

    # Media, abuse and cost limits (0 turns a rate limit off).
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=0)
    max_audio_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    max_video_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=0)
    rate_limit_per_minute: int = Field(default=12, ge=0)
    rate_limit_per_day: int = Field(default=300, ge=0)
    max_input_chars: int = Field(default=4000, ge=1)
    part_interval_seconds: float = Field(default=1.0, ge=0)

    # Storage and privacy.
    auto_migrate: bool = True
    history_ttl_days: float = Field(default=30.0, gt=0)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    reset_command: str = "/reset"
    forget_command: str = "/forget"
    # None: the catalogue's line in the user's language (REPLY_LANGUAGE); set, it is for all.
    reset_reply: str | None = None
    forget_reply: str | None = None

    # Operator console and handing a conversation to a person (README, "Console and handoff").
    # Unset or empty: the console is off and every /console path answers 404. Set: the operator
    # `admin` has this password (created or updated at start-up; only its Argon2 hash is kept).
    console_password: SecretStr | None = None
    # Hours a console sign-in lasts; then the operator signs in again.
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # A message that is exactly this (case and surrounding spaces ignored) asks for a person.
    handoff_command: str = "/human"
    # What the user gets once when a person is asked for; None: a default in their language.
    handoff_reply: str | None = None
    # A conversation with no operator message for this long goes back to the assistant.
    handoff_timeout_hours: float = Field(default=24.0, gt=0)
    # A JSON POST (`{"text": ...}`, Slack/Google Chat style) each time a conversation starts
    # waiting; repr=False: such URLs carry their own secret.
    handoff_webhook_url: str | None = Field(default=None, repr=False)
    # The service's public base URL (https://name.onrender.com), for console links in
    # notifications; no trailing slash.
    public_url: str | None = None

    # Business knowledge: `startup` synchronises KNOWLEDGE_DIR at start-up, `off` only on demand.
    knowledge_sync: Literal["startup", "off"] = "startup"
    # Google Search grounding and URL context (billed per search); not with documents.
    web_search: bool = False

    # Voice notes answered with voice notes (VOICE_REPLIES, below): the text-to-speech model and
    # its prebuilt voice.
    gemini_tts_model: str = "gemini-3.8-flash-tts"
    gemini_tts_voice: str = "Kore"

    # What answers cost (README, "What it costs"): USD per million tokens of the default models
    # at Google's list prices when this was written, and per Google Search query.
    price_input_per_million_usd: float = Field(default=0.50, ge=0)
    price_output_per_million_usd: float = Field(default=3.00, ge=0)
    price_thinking_per_million_usd: float = Field(default=3.00, ge=0)
    price_tts_per_million_usd: float = Field(default=10.00, ge=0)
    price_per_search_usd: float = Field(default=0.014, ge=0)
    # Daily spending caps (UTC days, every instance): 0 is off.
    daily_budget_usd: float = Field(default=0.0, ge=0)
    user_daily_token_limit: int = Field(default=0, ge=0)

    # What a business of the tenants file falls back to (see TenantSettings).
    reply_language: str = "auto"
    knowledge_dir: Path = Path("knowledge")
    voice_replies: Literal["auto", "always", "off"] = "auto"

    _businesses: Businesses = PrivateAttr()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("verify_token", "app_secret", "gemini_api_key")
    @classmethod
    def _refuse_placeholder_secret(cls, value: SecretStr) -> SecretStr:
        _refuse_placeholder(value.get_secret_value())
        return value

    @field_validator("whatsapp_token")
    @classmethod
    def _token_of_the_default_business(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is None:
            _required_without_tenants(info)
            return None
        _refuse_placeholder(value.get_secret_value())
        return value

    @field_validator("phone_number_id")
    @classmethod
    def _refuse_bad_phone_number_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            _required_without_tenants(info)
            return None
        value = value.strip()
        problem = placeholder_problem(value)
        if problem is not None or not value.isdigit():
            raise ValueError(
                "must be the numeric Phone number ID from the Meta dashboard"
                + (f"; this one {problem}" if problem else "")
            )
        return value

    @field_validator("reply_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        return normalise_language(value)

    @field_validator("graph_api_base_url")
    @classmethod
    def _graph_base_url(cls, value: str) -> str:
        return value.strip().rstrip("/") or "https://graph.facebook.com"

    @field_validator("gemini_base_url")
    @classmethod
    def _gemini_base_url(cls, value: str | None) -> str | None:
        return (value or "").strip().rstrip("/") or None

    @field_validator("console_password", mode="before")
    @classmethod
    def _console_off_when_empty(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("console_password")
    @classmethod
    def _refuse_weak_console_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _refuse_placeholder(value.get_secret_value())
            if len(value.get_secret_value()) < MIN_CONSOLE_PASSWORD_LENGTH:
                raise ValueError(f"must be at least {MIN_CONSOLE_PASSWORD_LENGTH} characters")
        return value

    @field_validator("handoff_reply", mode="before")
    @classmethod
    def _default_reply_when_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("handoff_command")
    @classmethod
    def _handoff_command(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("handoff_webhook_url", "public_url", mode="before")
    @classmethod
    def _web_address(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip().rstrip("/")
        if not value:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http://)")
        return value

    @property
    def console_enabled(self) -> bool:
        return self.console_password is not None

    @model_validator(mode="after")
    def _read_system_prompt_file(self) -> Settings:
        if self.system_prompt_file is not None:
            try:
                prompt = self.system_prompt_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"SYSTEM_PROMPT_FILE cannot be read ({exc.strerror})") from None
            if not prompt:
                raise ValueError("SYSTEM_PROMPT_FILE is empty")
            object.__setattr__(self, "system_prompt", prompt)
        return self

    @model_validator(mode="after")
    def _resolve_businesses(self) -> Settings:
        businesses = (
            []
            if self.tenants_file is None
            else read_tenants_file(self.tenants_file, self._default_business())
        )
        if self.phone_number_id is not None or self.whatsapp_token is not None:
            if self.phone_number_id is None or self.whatsapp_token is None:
                raise ValueError(
                    "PHONE_NUMBER_ID and WHATSAPP_TOKEN make the business `default` together: "
                    "set both, or neither (the tenants file names the others)"
                )
            businesses.insert(0, self._default_business())
        refuse_duplicates(businesses)
        self._businesses = Businesses(businesses)
        return self

    def _default_business(self) -> Business:
        """The business of PHONE_NUMBER_ID and WHATSAPP_TOKEN; the others' fallbacks too."""
        return Business(
            name=DEFAULT_BUSINESS,
            phone_number_id=self.phone_number_id or "",
            token=self.whatsapp_token or SecretStr(""),
            system_prompt=self.system_prompt,
            reply_language=self.reply_language,
            knowledge_dir=self.knowledge_dir,
            voice_replies=self.voice_replies,
            rate_limit_per_minute=self.rate_limit_per_minute,
            rate_limit_per_day=self.rate_limit_per_day,
            fallback_message=self.fallback_message,
        )

    @model_validator(mode="after")
    def _web_search_or_documents(self) -> Settings:
        """Gemini cannot search the web and a File Search store in one request (400)."""
        if self.web_search:
            from documents.library import has_files

            with_files = [b.name for b in self.businesses if has_files(b.knowledge_dir)]
            if with_files:
                raise ValueError(
                    "WEB_SEARCH=true cannot be combined with documents: Gemini does not yet "
                    "search the web and a File Search store in one request, and "
                    f"{', '.join(with_files)} has documents in its KNOWLEDGE_DIR. Set "
                    "WEB_SEARCH=false, or empty the folder"
                )
        return self

    @property
    def businesses(self) -> Businesses:
        """Every business this deployment answers for (one without a tenants file)."""
        return self._businesses

    @property
    def prices(self) -> Prices:
        return Prices(
            input=self.price_input_per_million_usd,
            output=self.price_output_per_million_usd,
            thinking=self.price_thinking_per_million_usd,
            tts=self.price_tts_per_million_usd,
            search=self.price_per_search_usd,
        )

    def backoff(self, attempts: int) -> Backoff:
        """The retry delays of the settings, for an upstream allowed `attempts` in all."""
        return Backoff(attempts, self.retry_base_delay_seconds, self.retry_max_delay_seconds)

    def as_environment(self) -> dict[str, str]:
        """These settings as the environment variables that give them back (for a child).

        Secrets included: only for a process of this service's own, never for a log.
        """
        environment: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            environment[name.upper()] = str(value)
        return environment


def _refuse_placeholder(value: str) -> None:
    """ValueError for a secret that is empty or still a placeholder; the message never
    carries the value."""
    problem = placeholder_problem(value)
    if problem is not None:
        raise ValueError(problem)


def _required_without_tenants(info: ValidationInfo) -> None:
    """A missing PHONE_NUMBER_ID or WHATSAPP_TOKEN is only an error without a tenants file."""
    if info.data.get("tenants_file") is None:
        raise PydanticCustomError("missing", "Field required")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, or stop the process with one readable message and exit code 1."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        message = "\n".join(
            [
                "Cannot start: some settings are missing or invalid.",
                *describe_problems(error),
                (
                    "Set them in the environment or in a .env file in the working directory "
                    "(cp .env.example .env). README.md, 'Settings', explains each one."
                ),
                "Meanwhile, `make chat` talks to the assistant here (only GEMINI_API_KEY needed).",
            ]
        )
        print(message, file=sys.stderr)
        raise SystemExit(1) from None
