"""The settings of the operator console and of handing a conversation to a person."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from domain.secrets import refuse_placeholder

MIN_CONSOLE_PASSWORD_LENGTH = 8


class ConsoleSettings(BaseModel):
    """The console under `/console`, where operators read conversations and take them over."""

    model_config = ConfigDict(title="Operator console and handoff")

    console_password: SecretStr | None = Field(
        default=None,
        description="Unset or empty: the console is off and every `/console` address answers "
        "404. Set: the operator `admin` signs in with this password (at least 8 characters; "
        "created or updated at each start-up, and only its Argon2id hash is stored). For "
        "example the output of "
        '`python3 -c "import secrets; print(secrets.token_urlsafe(18))"`.',
    )
    console_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="How long a console sign-in lasts; then the operator signs in again.",
    )
    handoff_command: str = Field(
        default="/human",
        description="A message that is exactly this (case and surrounding spaces ignored) asks "
        "for a person.",
    )
    handoff_reply: str | None = Field(
        default=None,
        description="What the user gets once when a person is asked for. Unset: a short line "
        "in their language.",
        examples=["Ok, a person from our team will answer you here soon."],
    )
    handoff_timeout_hours: float = Field(
        default=24.0,
        gt=0,
        description="A conversation with no operator message for this many hours goes back to "
        "the assistant.",
    )
    handoff_webhook_url: str | None = Field(
        default=None,
        repr=False,  # such URLs carry their own secret
        description="A JSON POST with a `text` field (a Slack or Google Chat incoming webhook) "
        "each time a conversation starts waiting for a person. It holds no message content and "
        "no full phone number.",
        examples=["https://hooks.slack.com/services/..."],
    )
    public_url: str | None = Field(
        default=None,
        description="The service's public address, for example `https://name.onrender.com`: "
        "console links in notifications, and the origin the console accepts its forms from "
        "behind a proxy. A trailing `/` is dropped.",
        examples=["https://name.onrender.com"],
    )

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
            refuse_placeholder(value.get_secret_value())
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
