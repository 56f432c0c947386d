"""TENANTS_FILE: several businesses on one deployment, and every way the file can be wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT
from pydantic import SecretStr

from config import Settings
from domain.businesses import DEFAULT_BUSINESS, BusinessNames
from service.startup_settings import checked, load_settings

TOKEN_P = "EAAGpadaria-secret-token-value-1"
TOKEN_O = "EAAGoficina-secret-token-value-2"
BASE: dict[str, Any] = {
    "verify_token": "vt-8c1f0a7e55b94d2c",
    "app_secret": "3f9d2c7ab18e4e05b6a0c1d2e3f4a5b6",
    "gemini_api_key": "AQ.Ab8RN6Jq-geminikeyvalue",
    "system_prompt": "You are the service-wide assistant.",
    "rate_limit_per_minute": 12,
    "rate_limit_per_day": 300,
}
TWO_BUSINESSES = """
[[tenants]]
name = "Padaria Central"
phone_number_id = "111111111111111"
whatsapp_token_env = "WHATSAPP_TOKEN_PADARIA"
system_prompt = "You are the assistant of Padaria Central."
reply_language = "pt_BR"
rate_limit_per_minute = 5
daily_budget_usd = 2.5

[[tenants]]
name = "Oficina do Zé"
phone_number_id = 222222222222222
whatsapp_token_env = "WHATSAPP_TOKEN_OFICINA"
system_prompt_file = "prompts/oficina.txt"
knowledge_dir = "docs/oficina"
voice_replies = "off"
fallback_message = "Desculpe, volte mais tarde."
"""


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_TOKEN_PADARIA", TOKEN_P)
    monkeypatch.setenv("WHATSAPP_TOKEN_OFICINA", TOKEN_O)


def tenants_file(tmp_path: Path, text: str = TWO_BUSINESSES) -> Path:
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "prompts" / "oficina.txt").write_text("You fix cars at Oficina do Zé.\n")
    path = tmp_path / "tenants.toml"
    path.write_text(text, encoding="utf-8")
    return path


def settings(**values: Any) -> Settings:
    """The settings as start-up has them: the tenants file read."""
    return checked(Settings(_env_file=None, **{**BASE, **values}))  # type: ignore[call-arg]


def refusal(**values: Any) -> str:
    """Why start-up refuses: a ValidationError of the settings, or a ValueError of the file."""
    with pytest.raises(ValueError) as caught:
        settings(**values)
    return str(caught.value)


def test_each_business_gets_its_own_number_token_prompt_and_overrides(
    tmp_path: Path, tokens: None
) -> None:
    loaded = settings(tenants_file=tenants_file(tmp_path))
    padaria, oficina = list(loaded.businesses)
    assert (padaria.name, padaria.phone_number_id) == ("Padaria Central", "111111111111111")
    assert padaria.token.get_secret_value() == TOKEN_P
    assert padaria.system_prompt == "You are the assistant of Padaria Central."
    assert (padaria.reply_language, padaria.rate_limit_per_minute) == ("pt-BR", 5)
    assert padaria.rate_limit_per_day == 300  # not set: the service-wide value
    assert oficina.phone_number_id == "222222222222222"  # a TOML integer is accepted
    assert oficina.token.get_secret_value() == TOKEN_O
    assert oficina.system_prompt == "You fix cars at Oficina do Zé."  # relative to the file
    assert oficina.knowledge_dir == tmp_path / "docs" / "oficina"
    assert oficina.knowledge_setting == "knowledge_dir of business 'Oficina do Zé' in TENANTS_FILE"
    assert padaria.knowledge_setting == "KNOWLEDGE_DIR"  # not set: the service-wide folder
    assert (oficina.voice_replies, oficina.fallback_message) == (
        "off",
        "Desculpe, volte mais tarde.",
    )
    assert oficina.rate_limit_per_minute == 12
    assert (padaria.daily_budget_usd, oficina.daily_budget_usd) == (2.5, 0)  # 0: none of its own
    assert loaded.businesses.get("111111111111111") is padaria
    assert "999" not in loaded.businesses
    assert loaded.phone_number_id is None  # not needed with a tenants file


def test_phone_number_id_and_token_beside_the_file_are_one_more_business_named_default(
    tmp_path: Path, tokens: None
) -> None:
    loaded = settings(
        tenants_file=tenants_file(tmp_path),
        phone_number_id="106540352242922",
        whatsapp_token="EAAGdefault-token-value-3",
    )
    assert loaded.businesses.names() == [DEFAULT_BUSINESS, "Padaria Central", "Oficina do Zé"]
    default = loaded.businesses.get("106540352242922")
    assert default is not None and default.system_prompt == BASE["system_prompt"]


def test_without_a_file_there_is_one_business_from_the_two_settings() -> None:
    loaded = settings(phone_number_id="106540352242922", whatsapp_token="EAAGdefault-token-3")
    [only] = list(loaded.businesses)
    assert (only.name, only.phone_number_id) == (DEFAULT_BUSINESS, "106540352242922")
    assert only.token == SecretStr("EAAGdefault-token-3")
    message = refusal()
    assert "phone_number_id\n  Field required" in message
    assert "whatsapp_token\n  Field required" in message


def test_a_file_that_cannot_be_read_stops_start_up(tmp_path: Path) -> None:
    message = refusal(tenants_file=tmp_path / "missing.toml")
    assert "TENANTS_FILE" in message and "missing.toml cannot be read" in message
    broken = tmp_path / "broken.toml"
    broken.write_text("[[tenants]\nname = ", encoding="utf-8")
    assert "is not valid TOML" in refusal(tenants_file=broken)
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    assert "has no [[tenants]] entries" in refusal(tenants_file=empty)


def test_a_duplicate_phone_number_id_names_both_businesses(tmp_path: Path, tokens: None) -> None:
    text = TWO_BUSINESSES.replace("222222222222222", '"111111111111111"')
    message = refusal(tenants_file=tenants_file(tmp_path, text))
    assert "'Padaria Central' and 'Oficina do Zé' have the same phone_number_id" in message
    message = refusal(
        tenants_file=tenants_file(tmp_path),
        phone_number_id="111111111111111",
        whatsapp_token="EAAGdefault-token-value-3",
    )
    assert "'default' and 'Padaria Central' have the same phone_number_id" in message


def test_a_token_variable_that_is_not_set_names_the_business_never_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHATSAPP_TOKEN_PADARIA", TOKEN_P)
    monkeypatch.delenv("WHATSAPP_TOKEN_OFICINA", raising=False)
    monkeypatch.chdir(tmp_path)  # no developer's .env fills the gap
    message = refusal(tenants_file=tenants_file(tmp_path))
    assert (
        "business 'Oficina do Zé': whatsapp_token_env names WHATSAPP_TOKEN_OFICINA, "
        "which is not set"
    ) in message
    assert TOKEN_P not in message


def test_other_mistakes_in_an_entry_name_the_business_and_the_key(
    tmp_path: Path, tokens: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown_key = TWO_BUSINESSES.replace('voice_replies = "off"', 'voice_reply = "off"')
    message = refusal(tenants_file=tenants_file(tmp_path, unknown_key))
    assert "business 'Oficina do Zé'" in message and "voice_reply" in message
    token_in_file = TWO_BUSINESSES.replace('"WHATSAPP_TOKEN_PADARIA"', f'"{TOKEN_P}-x"')
    message = refusal(tenants_file=tenants_file(tmp_path, token_in_file))
    assert "business 'Padaria Central'" in message and "NAME of an environment variable" in message
    both = TWO_BUSINESSES.replace(
        'system_prompt_file = "prompts/oficina.txt"',
        'system_prompt_file = "prompts/oficina.txt"\nsystem_prompt = "x"',
    )
    assert "system_prompt or system_prompt_file" in refusal(
        tenants_file=tenants_file(tmp_path, both)
    )
    language = TWO_BUSINESSES.replace('"pt_BR"', '"klingon"')
    assert "REPLY_LANGUAGE must be one of" in refusal(tenants_file=tenants_file(tmp_path, language))
    monkeypatch.setenv("WHATSAPP_TOKEN_PADARIA", "change-me-padaria")
    assert "still a placeholder" in refusal(tenants_file=tenants_file(tmp_path))


@pytest.mark.parametrize(
    ("value", "reason"),
    [("change-me-EAAGrealtail42", "starts with 'change-me'"), (" TOKEN ", "is 'token'")],
)
def test_a_placeholder_token_variable_names_the_word_at_start_up_never_the_value(
    tmp_path: Path,
    tokens: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
    reason: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    for name in ("PHONE_NUMBER_ID", "WHATSAPP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WHATSAPP_TOKEN_OFICINA", value)

    with pytest.raises(SystemExit):
        load_settings(tenants_file=tenants_file(tmp_path), **BASE)

    err = capsys.readouterr().err
    assert (
        f"business 'Oficina do Zé': WHATSAPP_TOKEN_OFICINA is still a placeholder (it {reason})"
    ) in err
    assert "EAAGrealtail42" not in err and "change-me-" not in err
    assert TOKEN_P not in err


def test_the_example_tenants_file_is_valid(tokens: None) -> None:
    loaded = settings(tenants_file=ROOT / "examples" / "tenants.toml")
    assert loaded.businesses.names() == ["Padaria Central", "Oficina do Zé"]


def test_each_business_has_its_whatsapp_business_account_else_the_deployments(
    tmp_path: Path, tokens: None
) -> None:
    text = TWO_BUSINESSES.replace(
        "daily_budget_usd = 2.5\n", 'daily_budget_usd = 2.5\nwaba_id = " 555000111 "\n'
    )
    s = settings(tenants_file=tenants_file(tmp_path, text), whatsapp_business_account_id="777")
    assert [b.waba_id for b in s.businesses] == ["555000111", "777"]
    without = settings(tenants_file=tenants_file(tmp_path), whatsapp_business_account_id="")
    assert [b.waba_id for b in without.businesses] == [None, None]


@pytest.mark.parametrize("value", ["WABA-123", "12 34", "your-waba-id"])
def test_a_whatsapp_business_account_id_is_digits(value: str, tmp_path: Path, tokens: None) -> None:
    assert "WhatsApp Business Account ID" in refusal(
        tenants_file=tenants_file(tmp_path), whatsapp_business_account_id=value
    )
    text = TWO_BUSINESSES.replace("daily_budget_usd = 2.5\n", f'waba_id = "{value}"\n')
    assert "WhatsApp Business Account ID" in refusal(tenants_file=tenants_file(tmp_path, text))


def test_the_business_of_phone_number_id_is_shown_by_its_name_never_as_default(
    tmp_path: Path, tokens: None
) -> None:
    loaded = settings(
        tenants_file=tenants_file(tmp_path),
        phone_number_id="333333333333333",
        whatsapp_token=TOKEN_P,
    )
    names = BusinessNames(loaded.businesses.get("333333333333333"))
    assert names.to_learn is not None and names.to_learn.name == "default"
    assert names.shown("default") == ""  # nothing known yet: no name, rather than "default"
    names.learn("", "+55 11 5555-0100")
    assert names.shown("default") == "+55 11 5555-0100"
    names.learn("Mercadinho da Vila", "+55 11 5555-0100")
    assert names.shown("default") == "Mercadinho da Vila"
    assert names.shown("Padaria Central") == "Padaria Central"
    chosen = BusinessNames(loaded.businesses.get("333333333333333"), "  Mercado Bom  ")
    assert (chosen.to_learn, chosen.shown("default")) == (None, "Mercado Bom")
    only_tenants = BusinessNames(None)  # a tenant may be called "default" too
    assert only_tenants.shown("default") == "default" and only_tenants.to_learn is None
