"""`[[mcp]]` tables of a tools file: a business's MCP servers read at start-up, and every bad one
stopping start-up with a message that names the server and the problem, never a secret nor the
URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from domain.tools_file import read_tools_file
from service.startup_settings import load_settings

SECRET = "mcp-live-4c1e9a0d7b"
GOOD_ENV = {
    "WHATSAPP_TOKEN": "EAAGm0PX4ZCpsBAKZAZBzq7tokenvalue9",
    "VERIFY_TOKEN": "vt-8c1f0a7e55b94d2c",
    "APP_SECRET": "3f9d2c7ab18e4e05b6a0c1d2e3f4a5b6",
    "PHONE_NUMBER_ID": "106540352242922",
    "GEMINI_API_KEY": "AQ.Ab8RN6Jq-geminikeyvalue",
}
URL = "https://mcp.shop.example/mcp?key=in-the-url"
SERVER = f"""
[[mcp]]
url = "{URL}"
customer_header = "X-Customer"
timeout_seconds = 10
allow = ["order_status", "book_table"]
prefix = "shop_"
[mcp.auth]
type = "bearer"
token_env = "SHOP_MCP_TOKEN"
"""
HTTP_TOOL = """
[[tools]]
name = "opening_hours"
description = "When the shop is open."
url = "https://shop.example/hours"
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The five required settings, the server's token, and no stray `.env`."""
    for name in list(os.environ):
        if name in GOOD_ENV or name in ("TOOLS_FILE", "TENANTS_FILE", "SHOP_MCP_TOKEN"):
            monkeypatch.delenv(name)
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHOP_MCP_TOKEN", SECRET)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tools.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_server_is_read_as_written_and_keeps_its_secret(tmp_path: Path) -> None:
    toolset = read_tools_file(write(tmp_path, SERVER))
    assert toolset.http == ()
    [server] = toolset.mcp
    assert (server.url, server.label, server.timeout_seconds) == (URL, "mcp 1", 10.0)
    assert server.customer_header == "X-Customer"
    assert server.allow == frozenset({"order_status", "book_table"})
    assert server.prefix == "shop_"
    assert server.headers() == {"Authorization": f"Bearer {SECRET}"}
    assert SECRET not in repr(server)


def test_the_defaults_and_a_file_with_both_kinds(tmp_path: Path) -> None:
    text = f'{HTTP_TOOL}\n[[mcp]]\nurl = "http://127.0.0.1:9000/mcp"\n'
    toolset = read_tools_file(write(tmp_path, text))
    assert [tool.name for tool in toolset.http] == ["opening_hours"]
    [server] = toolset.mcp
    assert (server.timeout_seconds, server.customer_header, server.auth) == (5.0, None, None)
    assert (server.allow, server.prefix, server.headers()) == (None, "", {})


def test_tools_file_gives_the_single_business_its_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLS_FILE", str(write(tmp_path, HTTP_TOOL + SERVER)))
    [business] = load_settings().businesses
    assert [tool.name for tool in business.tools] == ["opening_hours"]
    assert [server.url for server in business.mcp] == [URL]


def test_a_tenants_tools_file_gives_that_business_its_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, SERVER)
    (tmp_path / "tenants.toml").write_text(
        '[[tenants]]\nname = "Padaria"\nphone_number_id = "111111111111111"\n'
        'whatsapp_token_env = "WHATSAPP_TOKEN"\ntools_file = "tools.toml"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("TENANTS_FILE", str(tmp_path / "tenants.toml"))
    businesses = {b.name: b for b in load_settings().businesses}
    assert [server.prefix for server in businesses["Padaria"].mcp] == ["shop_"]
    assert businesses["default"].mcp == ()


BAD: list[tuple[str, str, str]] = [
    ("no url", "", "url is missing"),
    ("not http", 'url = "ftp://mcp.shop.example/mcp"', "url must be an absolute http://"),
    ("relative", 'url = "/mcp"', "url must be an absolute http://"),
    ("credentials", f'url = "https://u:{SECRET}@mcp.shop.example/mcp"', "use [mcp.auth]"),
    ("fragment", 'url = "https://mcp.shop.example/mcp#x"', "url has a #fragment"),
    ("unknown key", 'url = "https://m.example/mcp"\ntools = ["x"]', "unknown key 'tools'"),
    ("timeout", 'url = "https://m.example/mcp"\ntimeout_seconds = 60', "from 1 to 30"),
    ("allow empty", 'url = "https://m.example/mcp"\nallow = []', "allow must be a list"),
    ("allow name", 'url = "https://m.example/mcp"\nallow = ["get-order"]', "'get-order' is not"),
    ("prefix", 'url = "https://m.example/mcp"\nprefix = "shop-"', "prefix must start with"),
    ("header", 'url = "https://m.example/mcp"\ncustomer_header = "Host"', "customer_header cannot"),
    (
        "unset token",
        'url = "https://m.example/mcp"\n[mcp.auth]\ntype = "bearer"\ntoken_env = "NOT_SET_HERE"',
        "auth token_env names NOT_SET_HERE, which is not set",
    ),
    (
        "a secret for a name",
        f'url = "https://m.example/mcp"\n[mcp.auth]\ntype = "bearer"\ntoken_env = "{SECRET}"',
        "must be the NAME of an environment variable",
    ),
]


@pytest.mark.parametrize(("table", "problem"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_server_stops_start_up_naming_it_and_the_problem(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    problem: str,
) -> None:
    path = write(
        tmp_path, f'{HTTP_TOOL}\n[[mcp]]\nurl = "https://ok.example/mcp"\n\n[[mcp]]\n{table}\n'
    )
    monkeypatch.setenv("TOOLS_FILE", str(path))
    with pytest.raises(SystemExit):
        load_settings()
    printed = capsys.readouterr().err
    assert "Cannot start" in printed
    assert f"TOOLS_FILE {path}, mcp 2: " in printed
    assert problem in printed
    assert SECRET not in printed and "Traceback" not in printed
    assert "mcp.shop.example" not in printed and "m.example" not in printed


def test_a_file_with_neither_tools_nor_servers_stops_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLS_FILE", str(write(tmp_path, "mcp = 1\n")))
    with pytest.raises(SystemExit):
        load_settings()
    assert "has no [[tools]] tables (nor [[mcp]] servers)" in capsys.readouterr().err
