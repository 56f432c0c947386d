"""`Settings`: every setting of the service in one model, read from the environment then `.env`."""

from __future__ import annotations

from pydantic import PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.actions import ActionSettings
from config.assistant import AssistantSettings, KnowledgeSettings, LanguageVoiceSettings
from config.console import ConsoleSettings
from config.limits import LimitSettings, SpendingSettings
from config.meta import GraphSettings, RequiredSettings
from config.operations import OperationsSettings, StorageSettings, TuningSettings
from domain.businesses import DEFAULT_BUSINESS, Business, Businesses, refuse_duplicates
from domain.costs import Prices
from domain.tools_file import NO_TOOLS, Toolset
from domain.types import Backoff
from hours.schedule import opening_hours

# The sections of the settings, in the order docs/settings.md and .env.example show them.
SECTIONS = (
    RequiredSettings,
    GraphSettings,
    AssistantSettings,
    LanguageVoiceSettings,
    KnowledgeSettings,
    ActionSettings,
    ConsoleSettings,
    LimitSettings,
    SpendingSettings,
    StorageSettings,
    OperationsSettings,
    TuningSettings,
)


# Bases last to first: pydantic orders the fields from the last base, so the required ones
# come first, in the model and in the start-up message.
class Settings(
    TuningSettings,
    OperationsSettings,
    StorageSettings,
    SpendingSettings,
    LimitSettings,
    ConsoleSettings,
    ActionSettings,
    KnowledgeSettings,
    LanguageVoiceSettings,
    AssistantSettings,
    GraphSettings,
    RequiredSettings,
    BaseSettings,
):
    """Every setting, each described once in its section; required secrets are `SecretStr`.

    Checking values is all the model does: the files and folders the settings name are read at
    start-up (service/startup_settings.py), which then knows the businesses.
    """

    model_config = SettingsConfigDict(
        title="Settings",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `NAME=` left empty is unset, in the environment and in .env
        extra="ignore",
        frozen=True,
    )

    _businesses: Businesses | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _the_default_business(self) -> Settings:
        """PHONE_NUMBER_ID and WHATSAPP_TOKEN are one business; without files to read, the
        only one."""
        if (self.phone_number_id is None) != (self.whatsapp_token is None):
            raise ValueError(
                "PHONE_NUMBER_ID and WHATSAPP_TOKEN make the business `default` together: "
                "set both, or neither (the tenants file names the others)"
            )
        if self.tenants_file is None and self.system_prompt_file is None and not self.tools_file:
            self._businesses = Businesses([self.default_business()])
        return self

    def default_business(self, tools: Toolset = NO_TOOLS) -> Business:
        """The business of PHONE_NUMBER_ID and WHATSAPP_TOKEN (with the tools start-up read
        from TOOLS_FILE); the others' fallbacks too (tools are not: they are a business's own)."""
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
            tools=tools.http,
            mcp=tools.mcp,
            hours=opening_hours(self.timezone, self.business_hours),
            waba_id=self.whatsapp_business_account_id,
        )

    def with_prompt(self, system_prompt: str) -> Settings:
        """A copy with the prompt start-up read from SYSTEM_PROMPT_FILE."""
        return self.model_copy(update={"system_prompt": system_prompt})

    def with_businesses(self, tenants: list[Business], tools: Toolset = NO_TOOLS) -> Settings:
        """A copy that knows its businesses: the `default` one when PHONE_NUMBER_ID is set
        (with `tools`, from TOOLS_FILE), then those start-up read from TENANTS_FILE.
        ValueError for two businesses with one number or one name."""
        settings = self.model_copy()
        businesses = list(tenants)
        if settings.phone_number_id is not None:
            businesses.insert(0, settings.default_business(tools))
        refuse_duplicates(businesses)
        settings._businesses = Businesses(businesses)
        return settings

    @property
    def files_read(self) -> bool:
        """Whether the businesses are known: no file to read, or start-up has read them."""
        return self._businesses is not None

    @property
    def businesses(self) -> Businesses:
        """Every business this deployment answers for (one without a tenants file)."""
        # From pydantic's own dict of private values: `self._businesses` first looks the name
        # up through every class of the settings and fails, several times per webhook.
        businesses: Businesses | None = (self.__pydantic_private__ or {}).get("_businesses")
        if businesses is None:
            raise RuntimeError(
                "TENANTS_FILE and SYSTEM_PROMPT_FILE are read at start-up: "
                "service.startup_settings.checked(settings) before settings.businesses"
            )
        return businesses

    @property
    def command_words(self) -> frozenset[str]:
        """What a user sends as a command, lower case: RESET_COMMAND, FORGET_COMMAND and,
        while the console is on, HANDOFF_COMMAND."""
        words = [self.reset_command, self.forget_command]
        if self.console_enabled:
            words.append(self.handoff_command)
        return frozenset(word.strip().lower() for word in words)

    @property
    def prices(self) -> Prices:
        return Prices(
            input=self.price_input_per_million_usd,
            output=self.price_output_per_million_usd,
            thinking=self.price_thinking_per_million_usd,
            tts=self.price_tts_per_million_usd,
            search=self.price_per_search_usd,
            embedding=self.price_embedding_per_million_usd,
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
