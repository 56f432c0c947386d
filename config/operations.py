"""The settings of running the service: the database, processes, logs, metrics and retries."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class StorageSettings(BaseModel):
    """Where conversations are kept, for how long, and the commands that erase them."""

    model_config = ConfigDict(title="Storage and privacy")

    database_url: str = Field(
        default="sqlite:///./data/assistant.db",
        repr=False,  # a PostgreSQL URL carries its password
        description="Where messages and conversations are kept. The default, an SQLite file "
        "under `./data/`, suits one instance; for several, PostgreSQL: "
        "`postgresql://user:password@host:5432/dbname` (`postgres://...` and `?sslmode=require` "
        "are accepted too).",
    )
    auto_migrate: bool = Field(
        default=True,
        description="Apply the database migrations at start-up. `false`: run `alembic upgrade "
        "head` yourself before starting (`render.yaml` does, as its preDeployCommand).",
    )
    history_ttl_days: float = Field(
        default=30.0, gt=0, description="Conversation turns older than this many days are deleted."
    )
    purge_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often old turns and old answered messages are purged.",
    )
    reset_command: str = Field(
        default="/reset", description="The message that starts a fresh conversation."
    )
    forget_command: str = Field(
        default="/forget", description="The message that erases what is stored about the user."
    )
    reset_reply: str | None = Field(
        default=None,
        description="The answer to `RESET_COMMAND`. Unset: a line in the user's language; set: "
        "this text, for everyone.",
        examples=["Done: we are starting a fresh conversation."],
    )
    forget_reply: str | None = Field(
        default=None,
        description="The answer to `FORGET_COMMAND`. Unset: a line in the user's language; "
        "set: this text, for everyone.",
        examples=["Done: everything stored about you here has been erased."],
    )


class OperationsSettings(BaseModel):
    """How many processes answer, and what they tell the operator."""

    model_config = ConfigDict(title="Processes, logs and metrics")

    max_concurrency: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="How many conversations one process answers at the same time (each worker "
        "process).",
    )
    worker_processes: int = Field(
        default=1,
        ge=0,
        le=64,
        description="Processes that answer, beside the web process that records and "
        "acknowledges webhooks: about one per CPU core, each taking 90-120 MB. `0` answers in "
        "the web process itself.",
    )
    external_workers: bool = Field(
        default=False,
        description="`true`: this web process answers nothing; start `python -m "
        "service.worker` yourself, under any supervisor (a Render background worker, systemd, "
        "a second container), and `WORKER_PROCESSES` is ignored. On SQLite: exactly one.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="The least important log lines written."
    )
    log_format: Literal["json", "console"] = Field(
        default="console",
        description="`console`: readable lines; `json`: one JSON object per line (recommended "
        "on Render and other hosts; `render.yaml` sets it).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Set: `GET /metrics` requires the header `Authorization: Bearer <this "
        "value>`. Unset: it is open.",
        examples=["change-me-long-random-string"],
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class TuningSettings(BaseModel):
    """Timeouts, retries and intervals. The defaults suit most deployments."""

    model_config = ConfigDict(title="Tuning")

    gemini_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Seconds before one Gemini attempt is abandoned."
    )
    gemini_max_attempts: int = Field(
        default=2,
        ge=1,
        le=10,
        description="Gemini attempts in total, the first included (so a user waits about a "
        "minute at worst before the apology).",
    )
    gemini_transport: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp",
        description="The HTTP library under google-genai for answers and speech: `aiohttp` "
        "(less CPU per call) or `httpx` (what the tests fake with respx). Uploads to File "
        "Search always use httpx.",
    )
    graph_transport: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp",
        description="The HTTP library under the Graph API client: `aiohttp` (through "
        "httpx-aiohttp; less CPU per call) or `httpx`'s own (what the tests fake with respx).",
    )
    graph_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Seconds before one Graph API request is abandoned."
    )
    graph_max_attempts: int = Field(
        default=4, ge=1, le=10, description="Graph API attempts in total, the first included."
    )
    retry_base_delay_seconds: float = Field(
        default=0.5,
        ge=0,
        description="The first delay between retries, in seconds; it doubles each time, with "
        "jitter.",
    )
    retry_max_delay_seconds: float = Field(
        default=8.0, ge=0, description="The largest delay between retries, in seconds."
    )
    shutdown_grace_seconds: float = Field(
        default=20.0,
        ge=0,
        description="On shutdown, seconds that answers in progress may take to finish.",
    )
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long, in seconds, a claim on a message holds without renewal (a "
        "running answer renews it every third of this). After a crash, another instance takes "
        "the message over once this has passed.",
    )
    poll_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often, in seconds, a worker looks for messages recorded by other "
        "instances.",
    )
