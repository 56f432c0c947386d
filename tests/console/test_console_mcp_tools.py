"""MCP tool calls in the transcript, as HTTP ones: beside the answer that made them, the tool's
name, `ok` or the error, and how long it took; never what was asked or answered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from console_apps import ADMIN_PASSWORD, console_app
from console_support import signed_in, visible_text
from mcp_server import SERVER, TOKEN, McpShop
from respx_upstreams import FakeUpstreams
from strict_gemini import StrictGemini


async def test_the_console_shows_each_mcp_call_beside_the_answer(
    database_url: str,
    fakes: FakeUpstreams,
    mcp_seen: McpShop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_MCP_TOKEN", TOKEN)
    strict = StrictGemini()
    tools = tmp_path / "tools.toml"
    tools.write_text(SERVER.format(endpoint=mcp_seen.endpoint), encoding="utf-8")
    fakes.gemini_queue += [
        strict.calls(("my_orders", {}), ("broken", {})),
        strict.text("It is on its way."),
    ]
    async with console_app(database_url, fakes, tools_file=tools) as console:
        conversation = await console.write("Where is my order?", name="Ana")
        await signed_in(console.client, "admin", ADMIN_PASSWORD)
        html = (await console.client.get(f"/console/conversations/{conversation}")).text
    text = visible_text(html)
    assert re.search(r"Tool my_orders : ok, \d+ ms", text), text
    assert re.search(r"Tool broken : tool error, \d+ ms", text), text
    assert "stock system" not in text
