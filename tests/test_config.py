"""Tests for config/: defaults, sources, precedence, refusals and the start-up message."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT
from pydantic import SecretStr, ValidationError

from config import Settings
from config.problems import WHERE_TO_GET
from domain.secrets import PLACEHOLDER_PREFIXES, PLACEHOLDER_VALUES, placeholder_reason
from service.startup_settings import load_settings

REQUIRED = ("WHATSAPP_TOKEN", "VERIFY_TOKEN", "APP_SECRET", "PHONE_NUMBER_ID", "GEMINI_API_KEY")
OPTIONAL = (
    "GEMINI_MODEL",
    "SYSTEM_PROMPT",
    "SYSTEM_PROMPT_FILE",
    "GRAPH_API_BASE_URL",
    "GRAPH_API_VERSION",
    "GEMINI_BASE_URL",
    "DATABASE_URL",
    "HISTORY_TURNS",
    "HISTORY_MAX_CHARS",
    "MAX_CONCURRENCY",
    "FALLBACK_MESSAGE",
    "LOG_LEVEL",
    "LOG_FORMAT",
)
# Real-looking values, so a leak of any of them into output is detectable.
GOOD: dict[str, str] = {
    "WHATSAPP_TOKEN": "EAAGm0PX4ZCpsBAKZAZBzq7tokenvalue9",
    "VERIFY_TOKEN": "vt-8c1f0a7e55b94d2c",
    "APP_SECRET": "3f9d2c7ab18e4e05b6a0c1d2e3f4a5b6",
    "PHONE_NUMBER_ID": "106540352242922",
    "GEMINI_API_KEY": "AQ.Ab8RN6Jq-geminikeyvalue",
}
SECRETS = ("WHATSAPP_TOKEN", "VERIFY_TOKEN", "APP_SECRET", "GEMINI_API_KEY")


def kwargs(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {name.lower(): value for name, value in GOOD.items()}
    values.update(overrides)
    return values


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No setting from the outer environment (conftest sets the five) and no stray `.env`."""
    for name in (*REQUIRED, *OPTIONAL):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def set_good_env(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    for name, value in {**GOOD, **overrides}.items():
        monkeypatch.setenv(name, value)


def start(capsys: pytest.CaptureFixture[str]) -> str:
    """`load_settings()` must refuse; returns what it printed to stderr."""
    with pytest.raises(SystemExit) as caught:
        load_settings()
    assert caught.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    return captured.err


# ---------------------------------------------------------------------------------------------
# Defaults and secrecy


def test_defaults() -> None:
    settings = Settings(_env_file=None, **kwargs())  # type: ignore[call-arg]
    assert settings.gemini_model == "gemini-3.8-flash"
    assert not settings.gemini_model.startswith("gemini-2")
    assert settings.graph_api_version == "v25.0"
    assert settings.graph_api_base_url == "https://graph.facebook.com"
    assert settings.gemini_base_url is None
    assert settings.database_url.startswith("sqlite:///./data/")
    assert settings.history_turns == 20
    assert settings.max_concurrency == 32
    assert settings.worker_processes == 1
    assert settings.log_level == "INFO"
    assert settings.log_format == "console"
    assert settings.phone_number_id == "106540352242922"
    assert settings.system_prompt and settings.fallback_message is None  # the catalogue's


def test_secrets_are_secret_str_and_never_printed() -> None:
    settings = Settings(_env_file=None, **kwargs())  # type: ignore[call-arg]
    for name in SECRETS:
        value = getattr(settings, name.lower())
        assert isinstance(value, SecretStr)
        assert value.get_secret_value() == GOOD[name]
        assert GOOD[name] not in repr(settings)
        assert GOOD[name] not in str(settings)


def test_settings_are_frozen() -> None:
    settings = Settings(_env_file=None, **kwargs())  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        settings.history_turns = 3


# ---------------------------------------------------------------------------------------------
# Sources


def test_environment_beats_dotenv_and_dotenv_fills_gaps(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    set_good_env(monkeypatch, GEMINI_MODEL="gemini-from-env")
    (clean_env / ".env").write_text(
        "GEMINI_MODEL=gemini-from-dotenv\nHISTORY_TURNS=7\nLOG_FORMAT=json\n", encoding="utf-8"
    )
    settings = load_settings()
    assert settings.gemini_model == "gemini-from-env"
    assert settings.history_turns == 7
    assert settings.log_format == "json"


def test_required_values_from_dotenv_only(clean_env: Path) -> None:
    lines = [f"{name}={value}" for name, value in GOOD.items()]
    (clean_env / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings()
    assert settings.app_secret.get_secret_value() == GOOD["APP_SECRET"]
    assert settings.phone_number_id == GOOD["PHONE_NUMBER_ID"]


def test_nothing_set_names_every_variable_and_where(capsys: pytest.CaptureFixture[str]) -> None:
    err = start(capsys)
    for name in REQUIRED:
        assert f"{name} is not set" in err
        assert WHERE_TO_GET[name] in err
    assert "aistudio" in err
    assert "System user" in err
    assert ".env" in err


def test_copied_env_example_is_refused(capsys: pytest.CaptureFixture[str], clean_env: Path) -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    (clean_env / ".env").write_text(example, encoding="utf-8")
    err = start(capsys)
    for name in REQUIRED:
        assert name in err
    assert err.count("(it starts with 'change-me')") == len(REQUIRED)  # the word matched...
    for line in example.splitlines():  # ...never the rest of the value
        name, _, value = line.partition("=")
        if name in REQUIRED:
            assert value.removeprefix("change-me") not in err


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("change-me-system-user-token", "starts with 'change-me'"),
        ("CHANGE-ME", "starts with 'change-me'"),
        ("your-app-secret", "starts with 'your-'"),
        ("<token>", "starts with '<'"),
        (" Token ", "is 'token'"),
        ("", None),
        ("   ", None),
    ],
)
def test_placeholder_secrets_refused_naming_the_word(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    reason: str | None,
) -> None:
    set_good_env(monkeypatch, **{name: value})
    err = start(capsys)
    if reason is None:  # an empty value is unset; spaces are empty
        assert f"  {name} {'is not set' if value == '' else 'is empty'}\n" in err
    else:
        assert f"  {name} is still the placeholder from .env.example (it {reason})\n" in err
    assert WHERE_TO_GET[name] in err
    others = [n for n in REQUIRED if n != name]
    assert not any(f"  {n} " in err for n in others)


@pytest.mark.parametrize("name", [*SECRETS, "PHONE_NUMBER_ID", "CONSOLE_PASSWORD"])
def test_a_placeholder_with_something_real_after_it_prints_only_the_word(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """`change-me-` may be followed by a real value: only the matched word is printed."""
    set_good_env(monkeypatch, **{name: "change-me-106540352242922-Xq7sEcReTtail"})
    err = start(capsys)
    assert f"  {name} " in err and "(it starts with 'change-me')" in err
    assert "106540352242922-Xq7sEcReTtail" not in err and "Xq7sEcReTtail" not in err
    assert "change-me-" not in err


@pytest.mark.parametrize("value", ["12ab", "+1 555 0100"])
def test_bad_phone_number_id_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    set_good_env(monkeypatch, PHONE_NUMBER_ID=value)
    err = start(capsys)
    assert "  PHONE_NUMBER_ID must be the numeric Phone number ID from the Meta dashboard\n" in err


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("   ", "is empty"),
        (
            "your-phone-number-id",
            "is still the placeholder from .env.example (it starts with 'your-')",
        ),
        ("xxx", "is still the placeholder from .env.example (it is 'xxx')"),
    ],
)
def test_placeholder_phone_number_id_refused_naming_the_word(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, reason: str
) -> None:
    set_good_env(monkeypatch, PHONE_NUMBER_ID=value)
    err = start(capsys)
    assert (
        f"  PHONE_NUMBER_ID must be the numeric Phone number ID from the Meta dashboard; "
        f"this one {reason}\n"
    ) in err
    assert "phone-number-id" not in err


def test_placeholder_console_password_refused_naming_the_word(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_good_env(monkeypatch, CONSOLE_PASSWORD="replace-with-a-long-password")
    err = start(capsys)
    assert (
        "  CONSOLE_PASSWORD is still the placeholder from .env.example (it starts with 'replace')"
    ) in err
    assert "with-a-long-password" not in err


@pytest.mark.parametrize("word", [*PLACEHOLDER_PREFIXES, *PLACEHOLDER_VALUES])
def test_every_placeholder_word_is_refused_naming_only_the_word(word: str) -> None:
    """Case and surrounding spaces do not matter; what follows a prefix is never repeated."""
    value = f"  {word.upper()}Kept-Quiet " if word in PLACEHOLDER_PREFIXES else f" {word.upper()} "
    reason = placeholder_reason(value)
    assert reason is not None
    assert repr(word) in reason
    assert "kept-quiet" not in reason.lower()


def test_the_settings_reference_lists_every_placeholder_word() -> None:
    """docs/settings.md names what is refused, generated from domain/secrets.py."""
    reference = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    for word in (*PLACEHOLDER_PREFIXES, *PLACEHOLDER_VALUES):
        assert f"`{word}`" in reference


def test_phone_number_id_is_stripped() -> None:
    settings = Settings(_env_file=None, **kwargs(phone_number_id=" 123 "))  # type: ignore[call-arg]
    assert settings.phone_number_id == "123"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HISTORY_TURNS", "abc"),
        ("HISTORY_TURNS", "-1"),
        ("MAX_CONCURRENCY", "0"),
        ("WORKER_PROCESSES", "-1"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "loud"),
    ],
)
def test_invalid_value_named_and_no_secret_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    set_good_env(monkeypatch, **{name: value})
    err = start(capsys)
    assert f"{name} is invalid" in err
    for secret in SECRETS:
        assert GOOD[secret] not in err


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        ("log_level", "debug", "DEBUG"),
        ("log_level", " warning ", "WARNING"),
        ("log_format", "JSON", "json"),
        ("log_format", "Console", "console"),
        ("graph_api_base_url", "http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
        ("gemini_base_url", "https://proxy.test/gemini//", "https://proxy.test/gemini"),
    ],
)
def test_normalised_values(field: str, given: str, expected: str) -> None:
    settings = Settings(_env_file=None, **kwargs(**{field: given}))  # type: ignore[call-arg]
    assert getattr(settings, field) == expected


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        ("graph_api_base_url", "", "https://graph.facebook.com"),
        ("graph_api_base_url", "  ", "https://graph.facebook.com"),
        ("gemini_base_url", "", None),
        ("gemini_base_url", " ", None),
    ],
)
def test_empty_base_urls_fall_back(field: str, given: str, expected: str | None) -> None:
    settings = Settings(_env_file=None, **kwargs(**{field: given}))  # type: ignore[call-arg]
    assert getattr(settings, field) == expected


def test_system_prompt_file_is_read_and_stripped(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    prompt = clean_env / "prompt.txt"
    prompt.write_text("\n  You sell bicycles in Recife.\nBe kind.  \n\n", encoding="utf-8")
    set_good_env(monkeypatch, SYSTEM_PROMPT="ignored", SYSTEM_PROMPT_FILE=str(prompt))
    assert load_settings().system_prompt == "You sell bicycles in Recife.\nBe kind."


@pytest.mark.parametrize("content", [None, "  \n"])
def test_missing_or_empty_system_prompt_file_refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: Path,
    content: str | None,
) -> None:
    path = clean_env / "prompt.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    set_good_env(monkeypatch, SYSTEM_PROMPT_FILE=str(path))
    err = start(capsys)
    assert "SYSTEM_PROMPT_FILE" in err


def test_loading_the_app_without_settings_exits_cleanly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import main; main.app"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    for name in REQUIRED:
        assert f"{name} is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_start_up_message_points_to_the_playground(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        load_settings()
    assert "make chat" in capsys.readouterr().err


def test_prices_and_budgets_default_to_the_default_models_and_no_caps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(_env_file=None, **kwargs())  # type: ignore[call-arg]
    prices = settings.prices
    assert (prices.input, prices.output, prices.thinking) == (0.50, 3.00, 3.00)
    assert (prices.tts, prices.search) == (10.00, 0.014)
    assert (settings.daily_budget_usd, settings.user_daily_token_limit) == (0, 0)
    monkeypatch.setenv("PRICE_INPUT_PER_MILLION_USD", "1.25")
    monkeypatch.setenv("DAILY_BUDGET_USD", "20")
    monkeypatch.setenv("USER_DAILY_TOKEN_LIMIT", "200000")
    settings = Settings(_env_file=None, **kwargs())  # type: ignore[call-arg]
    assert settings.prices.input == 1.25
    assert (settings.daily_budget_usd, settings.user_daily_token_limit) == (20.0, 200_000)


@pytest.mark.parametrize(
    "field", ["price_output_per_million_usd", "daily_budget_usd", "user_daily_token_limit"]
)
def test_negative_prices_and_caps_are_refused(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(_env_file=None, **kwargs(**{field: -1}))  # type: ignore[call-arg]
