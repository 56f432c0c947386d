"""The settings of the Meta app, the business numbers and Gemini's key: the required ones."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from domain.businesses import account_id
from domain.secrets import placeholder_problem, refuse_placeholder, without_bearer

log = logging.getLogger("config")

DEFAULT_GRAPH_API_BASE_URL = "https://graph.facebook.com"


class RequiredSettings(BaseModel):
    """Start-up stops until these are set. A value that is missing, empty or still a placeholder
    stops it with one message that names every such variable and where to get it; no secret is
    ever printed. With `TENANTS_FILE`, `WHATSAPP_TOKEN` and `PHONE_NUMBER_ID` are optional."""

    model_config = ConfigDict(title="Required")

    # Before the two below: whether they are required depends on it.
    tenants_file: Path | None = Field(
        default=None,
        description="A TOML file of several businesses on this one deployment: each one's "
        "name, phone number id, the NAME of the variable holding its token, and its prompt "
        "(`examples/tenants.toml`; the keys are listed in docs/settings.md). With it, "
        "`WHATSAPP_TOKEN` and `PHONE_NUMBER_ID` are optional; when set, they are one more "
        "business, named `default`. Put each business's token in the variable its "
        "`whatsapp_token_env` names, for example `WHATSAPP_TOKEN_PADARIA=...`.",
        examples=["tenants.toml"],
    )
    whatsapp_token: SecretStr | None = Field(
        default=None,
        validate_default=True,
        description="The Graph API access token the service sends replies with: a system "
        "user's token, which does not expire. For a first try, the temporary 24-hour token "
        "from the app's WhatsApp > API Setup page works too. The token alone: a pasted "
        "`Bearer ` prefix is removed, with a warning.",
        examples=["change-me-system-user-token"],
        json_schema_extra={
            "required_unless": "TENANTS_FILE",
            "where": "Meta Business Settings > Users > System users > Generate token "
            "(permissions whatsapp_business_messaging, whatsapp_business_management)",
        },
    )
    phone_number_id: str | None = Field(
        default=None,
        validate_default=True,
        description="The id (digits only) of the business phone number the assistant answers "
        "on, not the phone number itself. Events for other numbers are acknowledged and "
        "ignored.",
        examples=["change-me-phone-number-id"],
        json_schema_extra={
            "required_unless": "TENANTS_FILE",
            "where": "Meta app dashboard > WhatsApp > API Setup > Phone number ID "
            "(the id, not the phone number itself)",
        },
    )
    verify_token: SecretStr = Field(
        description="A secret you make up; Meta sends it back when it verifies the webhook. "
        "For example the output of "
        '`python3 -c "import secrets; print(secrets.token_urlsafe(32))"`.',
        examples=["change-me-long-random-string"],
        json_schema_extra={
            "where": "any long random string you choose; enter the same one as the "
            "webhook's Verify token in the Meta app dashboard (WhatsApp > Configuration)",
        },
    )
    app_secret: SecretStr = Field(
        description="The Meta app's secret: every webhook POST must be signed with it "
        "(`X-Hub-Signature-256`), or it is refused with 401.",
        examples=["change-me-meta-app-secret"],
        json_schema_extra={"where": "Meta app dashboard > App settings > Basic > App secret"},
    )
    gemini_api_key: SecretStr = Field(
        description="The Gemini API key. `make chat` needs only this one.",
        examples=["change-me-gemini-api-key"],
        json_schema_extra={
            "where": "Google AI Studio > Get API key (https://aistudio.google.com/apikey)"
        },
    )

    @field_validator("verify_token", "app_secret", "gemini_api_key")
    @classmethod
    def _refuse_placeholder_secret(cls, value: SecretStr) -> SecretStr:
        refuse_placeholder(value.get_secret_value())
        return value

    @field_validator("whatsapp_token", mode="before")
    @classmethod
    def _without_bearer(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            return value
        token, had_prefix = without_bearer(value)
        if had_prefix:
            log.warning(
                "WHATSAPP_TOKEN starts with 'Bearer ': the prefix is removed (set the token "
                "alone; the service adds that word itself)"
            )
        return token

    @field_validator("whatsapp_token")
    @classmethod
    def _token_of_the_default_business(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is None:
            _required_without_tenants(info)
            return None
        refuse_placeholder(value.get_secret_value())
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


def _required_without_tenants(info: ValidationInfo) -> None:
    """A missing PHONE_NUMBER_ID or WHATSAPP_TOKEN is only an error without a tenants file."""
    if info.data.get("tenants_file") is None:
        raise PydanticCustomError("missing", "Field required")


class GraphSettings(BaseModel):
    """Where the Graph API is, and how the business is named where Meta does not say."""

    model_config = ConfigDict(title="Meta and the Graph API")

    graph_api_base_url: str = Field(
        default=DEFAULT_GRAPH_API_BASE_URL,
        description="The Graph API's address (tests point it at a local fake).",
    )
    graph_api_version: str = Field(
        default="v25.0",
        description="The Graph API version. Meta publishes a new one every few months and "
        "keeps each usable for about two years.",
    )
    business_name: str | None = Field(
        default=None,
        max_length=80,
        description="The name shown for a single business (no `TENANTS_FILE`) on the "
        "console's signed-in pages and in handoff notifications. Unset: the verified name Meta "
        "reports for the number, else its display number. Never the word `default`.",
        examples=["Padaria Central"],
    )

    whatsapp_business_account_id: str | None = Field(
        default=None,
        description="The WhatsApp Business Account id (digits), whose approved templates the "
        "console lists and sends: the only messages WhatsApp allows outside the 24-hour "
        "window (docs/delivery-and-templates.md). A business of `TENANTS_FILE`: `waba_id`, "
        "else this one. Unset: no templates.",
        examples=["102290129340398"],
        json_schema_extra={
            "where": "WhatsApp Manager > Account tools, under the account's name; or the Meta "
            "app dashboard > WhatsApp > API Setup > WhatsApp Business Account ID",
        },
    )

    @field_validator("whatsapp_business_account_id", mode="before")
    @classmethod
    def _account_id(cls, value: Any) -> Any:
        return account_id(value)

    @field_validator("graph_api_base_url")
    @classmethod
    def _graph_base_url(cls, value: str) -> str:
        return value.strip().rstrip("/") or DEFAULT_GRAPH_API_BASE_URL

    @field_validator("business_name", mode="before")
    @classmethod
    def _business_name(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip().lower() == "default":
            raise ValueError(
                "must not be 'default', the service's own name for the business of "
                "PHONE_NUMBER_ID; leave it unset to show the name Meta verified"
            )
        return value.strip() or None
