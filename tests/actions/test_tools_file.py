"""TOOLS_FILE (tenants: tools_file): a good file read, and every bad tool stopping start-up with
a message that names the tool and the problem, never a secret."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ROOT

from domain.tools import HttpTool
from domain.tools_file import read_tools_file
from service.startup_settings import load_settings

SECRET = "sk-live-8f2a61c0b9d34e7f"
GOOD_ENV = {
    "WHATSAPP_TOKEN": "EAAGm0PX4ZCpsBAKZAZBzq7tokenvalue9",
    "VERIFY_TOKEN": "vt-8c1f0a7e55b94d2c",
    "APP_SECRET": "3f9d2c7ab18e4e05b6a0c1d2e3f4a5b6",
    "PHONE_NUMBER_ID": "106540352242922",
    "GEMINI_API_KEY": "AQ.Ab8RN6Jq-geminikeyvalue",
}
ORDER_STATUS = """
[[tools]]
name = "order_status"
description = "Delivery status of an order, by its number."
method = "GET"
url = "https://api.example.com/orders/{order_id}"
timeout_seconds = 5
customer_header = "X-Customer"
[tools.auth]
type = "bearer"
token_env = "SHOP_API_TOKEN"
[tools.parameters]
type = "object"
required = ["order_id"]
properties.order_id = { type = "string", description = "The order number" }
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The five required settings, the shop's token, and no stray `.env`."""
    for name in list(os.environ):
        if name in GOOD_ENV or name in ("TOOLS_FILE", "TENANTS_FILE", "SHOP_API_TOKEN"):
            monkeypatch.delenv(name)
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHOP_API_TOKEN", SECRET)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tools.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, path: Path) -> str:
    """What start-up prints when it refuses TOOLS_FILE."""
    monkeypatch.setenv("TOOLS_FILE", str(path))
    with pytest.raises(SystemExit):
        load_settings()
    printed = capsys.readouterr().err
    assert SECRET not in printed
    assert "Traceback" not in printed
    return printed


def test_the_contracts_example_is_read_as_written(tmp_path: Path) -> None:
    [tool] = read_tools_file(write(tmp_path, ORDER_STATUS)).http
    assert (tool.name, tool.method, tool.timeout_seconds) == ("order_status", "GET", 5.0)
    assert tool.url == "https://api.example.com/orders/{order_id}"
    assert tool.placeholders == ("order_id",)
    assert tool.customer_header == "X-Customer"
    assert tool.auth is not None and tool.auth.header() == ("Authorization", f"Bearer {SECRET}")
    assert SECRET not in repr(tool)


def test_tools_file_gives_the_single_business_its_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLS_FILE", str(write(tmp_path, ORDER_STATUS)))
    [business] = load_settings().businesses
    assert [tool.name for tool in business.tools] == ["order_status"]


def test_the_secret_may_come_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_API_TOKEN")
    (tmp_path / ".env").write_text(f"SHOP_API_TOKEN={SECRET}\n", encoding="utf-8")
    [tool] = read_tools_file(write(tmp_path, ORDER_STATUS)).http
    assert tool.auth is not None and tool.auth.header()[1] == f"Bearer {SECRET}"


def test_the_example_tools_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_API_TOKEN", SECRET)
    tools = read_tools_file(ROOT / "examples" / "tools.toml").http
    assert [tool.name for tool in tools] == ["order_status", "book_table"]
    assert [tool.method for tool in tools] == ["GET", "POST"]


BAD: list[tuple[str, str, str]] = [
    ("name", 'name = "order status"', "name must start with a letter"),
    ("reserved name", 'name = "transfer_to_human"', "is the service's own function"),
    ("method", 'method = "DELETE"', "method must be GET or POST"),
    (
        "placeholder in the host",
        'url = "https://{order_id}.example.com/orders"',
        "placeholder in its scheme or host",
    ),
    (
        "placeholder in the scheme",
        'url = "{order_id}://api.example.com/orders"',
        "url must be an absolute http:// or https:// address",
    ),
    (
        "placeholder not among the parameters",
        'url = "https://api.example.com/orders/{order}"',
        "url placeholder {order} is not among the parameters' properties",
    ),
    ("timeout too long", "timeout_seconds = 31", "timeout_seconds must be a number from 1 to 30"),
    ("timeout too short", "timeout_seconds = 0.5", "timeout_seconds must be a number from 1 to 30"),
    ("unknown key", 'headers = "x"', "unknown key 'headers'"),
    ("customer header", 'customer_header = "Authorization"', "customer_header cannot be"),
    ("credentials in the url", f'url = "https://u:{SECRET}@api.example.com/x"', "user name or"),
]


@pytest.mark.parametrize(
    ("replace", "problem"), [(b[1], b[2]) for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_tool_stops_start_up_naming_the_tool_and_the_problem(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    replace: str,
    problem: str,
) -> None:
    key = replace.split(" =")[0]
    lines = [line for line in ORDER_STATUS.splitlines() if not line.startswith(f"{key} =")]
    text = "\n".join([lines[0], lines[1], replace, *lines[2:]])
    printed = refusal(capsys, monkeypatch, write(tmp_path, text))
    assert "Cannot start" in printed
    assert f"TOOLS_FILE {tmp_path / 'tools.toml'}, tool " in printed
    assert problem in printed


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ('type = "array"', 'parameters must be a JSON schema of type "object"'),
        ('type = "object"\nproperties = "x"', "parameters is not a valid JSON schema"),
        (
            'type = "object"\nproperties.a = { type = "string" }\noneOf = [{}]',
            "Gemini's function declarations do not take the keyword 'oneOf'",
        ),
        (
            'type = "object"\nproperties.a = { type = ["string", "null"] }',
            "properties.a.type: must be one of",
        ),
    ],
)
def test_a_schema_gemini_cannot_take_stops_start_up(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    parameters: str,
    problem: str,
) -> None:
    text = ORDER_STATUS.split("[tools.parameters]")[0].replace("{order_id}", "all")
    printed = refusal(
        capsys, monkeypatch, write(tmp_path, f"{text}[tools.parameters]\n{parameters}\n")
    )
    assert "tool 'order_status'" in printed
    assert problem in printed


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ('type = "oauth"', "auth type 'oauth' is unknown (bearer, basic or header)"),
        (
            'type = "bearer"\ntoken_env = "UNSET_TOKEN"',
            "auth token_env names UNSET_TOKEN, which is not set",
        ),
        ('type = "bearer"\ntoken_env = "' + SECRET + '"', "names UNSET"),
        (
            'type = "basic"\nusername_env = "SHOP_API_TOKEN"\npassword_env = "NO_PASSWORD"',
            "auth password_env names NO_PASSWORD, which is not set",
        ),
        ('type = "header"\nvalue_env = "SHOP_API_TOKEN"', "auth name must be a header name"),
        ('type = "bearer"\ntoken = "abc"', "auth of type bearer takes token_env, not 'token'"),
    ],
)
def test_bad_auth_stops_start_up_without_printing_a_secret(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    auth: str,
    problem: str,
) -> None:
    before, after = ORDER_STATUS.split("[tools.auth]")
    after = after.split("[tools.parameters]")[1]
    text = f"{before}[tools.auth]\n{auth}\n[tools.parameters]{after}"
    printed = refusal(capsys, monkeypatch, write(tmp_path, text))
    assert "tool 'order_status'" in printed
    if problem == "names UNSET":  # a secret pasted where a variable's name goes
        assert "must be the NAME of an environment variable" in printed
    else:
        assert problem in printed


def test_two_tools_of_one_name_and_a_file_that_is_not_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = refusal(capsys, monkeypatch, write(tmp_path, ORDER_STATUS + ORDER_STATUS))
    assert "tool 'order_status': two tools have this name" in printed
    printed = refusal(capsys, monkeypatch, write(tmp_path, "[[tools]\nname="))
    assert "is not valid TOML" in printed
    printed = refusal(capsys, monkeypatch, tmp_path / "missing.toml")
    assert "cannot be read" in printed


def test_with_tenants_each_business_names_its_own_tools_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, ORDER_STATUS)
    (tmp_path / "tenants.toml").write_text(
        """
[[tenants]]
name = "Padaria"
phone_number_id = "111111111111111"
whatsapp_token_env = "WHATSAPP_TOKEN"
tools_file = "tools.toml"
timezone = "America/Sao_Paulo"
business_hours = "mon-sat 07:00-19:00"

[[tenants]]
name = "Oficina"
phone_number_id = "222222222222222"
whatsapp_token_env = "WHATSAPP_TOKEN"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("TENANTS_FILE", str(tmp_path / "tenants.toml"))
    monkeypatch.setenv("TIMEZONE", "Europe/Lisbon")
    businesses = {b.name: b for b in load_settings().businesses}
    tools: dict[str, tuple[HttpTool, ...]] = {name: b.tools for name, b in businesses.items()}
    assert [t.name for t in tools["Padaria"]] == ["order_status"]
    assert tools["Oficina"] == ()  # the service-wide TOOLS_FILE is not a fallback
    assert tools["default"] == ()
    assert businesses["Padaria"].hours.zone_name == "America/Sao_Paulo"
    assert businesses["Oficina"].hours.zone_name == "Europe/Lisbon"  # TIMEZONE's fallback

    monkeypatch.delenv("PHONE_NUMBER_ID")
    monkeypatch.delenv("WHATSAPP_TOKEN")
    monkeypatch.setenv("WHATSAPP_TOKEN_X", "EAAGm0PX4ZCpsBAKZAZBzq7tokenvalue9")
    tenants = (
        (tmp_path / "tenants.toml").read_text().replace('"WHATSAPP_TOKEN"', '"WHATSAPP_TOKEN_X"')
    )
    (tmp_path / "tenants.toml").write_text(tenants.replace('"tools.toml"', '"nope.toml"'))
    printed = refusal(capsys, monkeypatch, tmp_path / "tools.toml")
    assert "business 'Padaria': tools_file " in printed
    assert "nope.toml cannot be read" in printed

    (tmp_path / "tenants.toml").write_text(tenants)
    printed = refusal(capsys, monkeypatch, tmp_path / "tools.toml")
    assert "TOOLS_FILE is the tools of the business of PHONE_NUMBER_ID, which is not set" in printed
