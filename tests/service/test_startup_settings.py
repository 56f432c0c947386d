"""Start-up's settings: files read after the model, empty values unset, pasted `Bearer ` removed,
and the console's two new settings; each with what a person sees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT
from running import start_uvicorn

from config import Settings
from service.startup_settings import checked, load_settings

GOOD = {
    "VERIFY_TOKEN": "vt-8c1f0a7e55b94d2c",
    "APP_SECRET": "3f9d2c7ab18e4e05b6a0c1d2e3f4a5b6",
    "GEMINI_API_KEY": "AQ.Ab8RN6Jq-geminikeyvalue",
}
TOKEN = "EAAGm0PX4ZCpsBAKZAZBzq7tokenvalue9"
TENANTS = """
[[tenants]]
name = "Padaria Central"
phone_number_id = "111111111111111"
whatsapp_token_env = "TOKEN_PADARIA"
system_prompt = "You are the bakery's assistant."
"""
EMPTIES = "PHONE_NUMBER_ID=\nWHATSAPP_TOKEN=\n"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No setting from the outer environment and no stray `.env`; a tenants file at hand."""
    for name in {n.upper() for n in Settings.model_fields} | {"TOKEN_PADARIA"}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tenants.toml").write_text(TENANTS, encoding="utf-8")
    yield tmp_path


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in {**GOOD, **values}.items():
        monkeypatch.setenv(name, value)


def refused(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        load_settings()
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and TOKEN not in err
    return err


def settings(**values: Any) -> Settings:
    given = {name.lower(): value for name, value in GOOD.items()}
    return Settings(_env_file=None, **{**given, **values})  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------------------
# Files and folders are read at start-up, not by the model


def test_the_model_reads_no_file_start_up_does(tmp_path: Path) -> None:
    built = settings(tenants_file=tmp_path / "missing.toml", system_prompt_file=tmp_path / "no")
    assert not built.files_read
    with pytest.raises(RuntimeError, match="read at start-up"):
        _ = built.businesses
    with pytest.raises(ValueError, match="SYSTEM_PROMPT_FILE cannot be read"):
        checked(built)


def test_checked_settings_know_their_businesses_and_checking_again_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKEN_PADARIA", TOKEN)
    once = checked(settings(tenants_file=Path("tenants.toml")))
    assert once.businesses.names() == ["Padaria Central"]
    assert checked(once) is once


# ---------------------------------------------------------------------------------------------
# An optional setting left empty is unset


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_empty_number_and_token_beside_a_tenants_file_do_not_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, where: str
) -> None:
    set_env(monkeypatch, TENANTS_FILE="tenants.toml", TOKEN_PADARIA=TOKEN)
    if where == ".env":
        (clean_env / ".env").write_text(EMPTIES, encoding="utf-8")
    else:
        set_env(monkeypatch, PHONE_NUMBER_ID="", WHATSAPP_TOKEN="")
    loaded = load_settings()
    assert (loaded.phone_number_id, loaded.whatsapp_token) == (None, None)
    assert loaded.businesses.names() == ["Padaria Central"]


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_empty_number_and_token_do_not_hide_the_tenants_files_own_mistake(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: Path,
    where: str,
) -> None:
    set_env(monkeypatch, TENANTS_FILE="tenants.toml")  # TOKEN_PADARIA is not set
    if where == ".env":
        (clean_env / ".env").write_text(EMPTIES, encoding="utf-8")
    else:
        set_env(monkeypatch, PHONE_NUMBER_ID="", WHATSAPP_TOKEN="")
    err = refused(capsys)
    assert (
        "  TENANTS_FILE, business 'Padaria Central': whatsapp_token_env names TOKEN_PADARIA, "
        "which is not set\n"
    ) in err
    assert "PHONE_NUMBER_ID" not in err and "WHATSAPP_TOKEN " not in err


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_empty_optional_settings_take_their_defaults(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, where: str
) -> None:
    empty = ("HISTORY_TURNS", "LOG_LEVEL", "WEB_SEARCH", "CONSOLE_LANGUAGE", "KNOWLEDGE_DIR")
    set_env(monkeypatch, PHONE_NUMBER_ID="106540352242922", WHATSAPP_TOKEN=TOKEN)
    if where == ".env":
        (clean_env / ".env").write_text("".join(f"{n}=\n" for n in empty), encoding="utf-8")
    else:
        set_env(monkeypatch, **dict.fromkeys(empty, ""))
    loaded = load_settings()
    assert (loaded.history_turns, loaded.log_level, loaded.web_search) == (20, "INFO", False)
    assert (loaded.console_language, loaded.knowledge_dir) == ("auto", Path("knowledge"))


def test_an_empty_required_value_is_not_set_and_says_where_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    (clean_env / ".env").write_text("APP_SECRET=\n", encoding="utf-8")
    set_env(monkeypatch, PHONE_NUMBER_ID="106540352242922", WHATSAPP_TOKEN=TOKEN)
    monkeypatch.delenv("APP_SECRET")
    err = refused(capsys)
    assert "  APP_SECRET is not set\n      get it from: Meta app dashboard" in err


# ---------------------------------------------------------------------------------------------
# A token pasted with `Bearer `


@pytest.mark.parametrize("pasted", [f"Bearer {TOKEN}", f"  bearer {TOKEN}\n", f"BEARER  {TOKEN}"])
def test_a_bearer_prefix_is_removed_with_a_warning_that_never_shows_the_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pasted: str
) -> None:
    set_env(monkeypatch, PHONE_NUMBER_ID="106540352242922", WHATSAPP_TOKEN=pasted)
    loaded = load_settings()
    assert loaded.whatsapp_token is not None
    assert loaded.whatsapp_token.get_secret_value() == TOKEN
    [business] = loaded.businesses
    assert business.token.get_secret_value() == TOKEN
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1  # logged once, after logging was set up by the settings
    assert "WHATSAPP_TOKEN starts with 'Bearer ': the prefix is removed" in err
    assert TOKEN not in err and TOKEN[:8] not in err


def test_a_tenants_token_variable_with_bearer_is_removed_with_a_warning_naming_the_business(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, TENANTS_FILE="tenants.toml", TOKEN_PADARIA=f"Bearer {TOKEN}")
    [business] = load_settings().businesses
    assert business.token.get_secret_value() == TOKEN
    err = capsys.readouterr().err
    assert (
        "TENANTS_FILE, business 'Padaria Central': TOKEN_PADARIA starts with 'Bearer ': the "
        "prefix is removed"
    ) in err
    assert TOKEN not in err


@pytest.mark.parametrize(
    ("pasted", "reason"), [("Bearer ", "is empty"), ("Bearer change-me-x", "")]
)
def test_bearer_and_nothing_real_after_it_is_still_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pasted: str, reason: str
) -> None:
    set_env(monkeypatch, PHONE_NUMBER_ID="106540352242922", WHATSAPP_TOKEN=pasted)
    err = refused(capsys)
    assert f"  WHATSAPP_TOKEN {reason or 'is still the placeholder'}" in err
    if reason != "is empty":  # the warning is not lost when start-up stops
        assert "WARNING: WHATSAPP_TOKEN starts with 'Bearer '" in err


# ---------------------------------------------------------------------------------------------
# CONSOLE_LANGUAGE and BUSINESS_NAME


@pytest.mark.parametrize(
    ("given", "expected"),
    [("pt_BR", "pt-BR"), ("PT-br", "pt-BR"), (" es ", "es"), ("EN", "en"), ("Auto", "auto")],
)
def test_console_language_spellings(given: str, expected: str) -> None:
    loaded = settings(phone_number_id="1", whatsapp_token=TOKEN, console_language=given)
    assert loaded.console_language == expected


def test_an_unknown_console_language_is_named_with_the_choices(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, PHONE_NUMBER_ID="1", WHATSAPP_TOKEN=TOKEN, CONSOLE_LANGUAGE="fr")
    err = refused(capsys)
    assert "  CONSOLE_LANGUAGE must be one of auto, en, pt-BR, es" in err


@pytest.mark.parametrize(
    ("given", "expected"), [(" Padaria Central ", "Padaria Central"), ("  ", None)]
)
def test_business_name(given: str, expected: str | None) -> None:
    loaded = settings(phone_number_id="1", whatsapp_token=TOKEN, business_name=given)
    assert loaded.business_name == expected
    assert settings(phone_number_id="1", whatsapp_token=TOKEN).business_name is None


@pytest.mark.parametrize("given", ["default", " Default "])
def test_business_name_is_never_the_word_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    set_env(monkeypatch, PHONE_NUMBER_ID="1", WHATSAPP_TOKEN=TOKEN, BUSINESS_NAME=given)
    assert "  BUSINESS_NAME must not be 'default'" in refused(capsys)


# ---------------------------------------------------------------------------------------------
# The real thing: `uvicorn main:app` with a `.env` a person left half-filled


def test_uvicorn_starts_with_empty_values_and_a_bearer_token_in_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"{EMPTIES}TENANTS_FILE=tenants.toml\nTOKEN_PADARIA=Bearer {TOKEN}\nCONSOLE_LANGUAGE=\n",
        encoding="utf-8",
    )
    env = {"PATH": os.environ.get("PATH", ""), **GOOD}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/assistant.db"
    env["WORKER_PROCESSES"] = "0"
    process, _ = start_uvicorn(env, tmp_path)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert "WARNING" in output and "TOKEN_PADARIA starts with 'Bearer '" in output
    assert "1 business(es): Padaria Central" in output
    assert TOKEN not in output


def test_uvicorn_names_the_tenants_files_mistake_despite_empty_values(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"{EMPTIES}TENANTS_FILE=tenants.toml\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(ROOT)],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), **GOOD},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Cannot start: some settings are missing or invalid.\n")
    assert "business 'Padaria Central': whatsapp_token_env names TOKEN_PADARIA" in result.stderr
    assert "PHONE_NUMBER_ID" not in result.stderr
    assert "Traceback" not in result.stderr
