"""A tools file (TOOLS_FILE, a tenant's tools_file) read at start-up: HTTP tools, MCP servers.

TOML, `[[tools]]` tables (domain/tools.py) and `[[mcp]]` tables (domain/mcp_servers.py), at least
one of either (docs/tools.md). Messages name the file, the tool or server, and the problem.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.mcp_servers import McpServer, read_mcp_server
from domain.tools import HttpTool, read_tool


@dataclass(frozen=True, slots=True)
class Toolset:
    """What a business's tools file gives it: HTTP tools, and MCP servers whose tools it lists."""

    http: tuple[HttpTool, ...] = ()
    mcp: tuple[McpServer, ...] = ()


NO_TOOLS = Toolset()


def read_tools_file(path: Path, label: str = "TOOLS_FILE") -> Toolset:
    """The tools and servers of a tools file, or ValueError naming the file, the tool (or the
    server) and the problem."""
    where = f"{label} {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{where} cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where} is not valid TOML ({exc})") from None
    entries, servers = data.get("tools", []), data.get("mcp", [])
    if not _tables(entries) or not _tables(servers) or not (entries or servers):
        raise ValueError(f"{where} has no [[tools]] tables (nor [[mcp]] servers)")
    tools: list[HttpTool] = []
    for index, entry in enumerate(entries):
        name = entry.get("name")
        tool_label = f"tool {name!r}" if isinstance(name, str) and name else f"tool {index + 1}"
        try:
            tool = read_tool(entry)
        except ValueError as exc:
            raise ValueError(f"{where}, {tool_label}: {exc}") from None
        if any(t.name == tool.name for t in tools):
            raise ValueError(f"{where}, {tool_label}: two tools have this name")
        tools.append(tool)
    mcp: list[McpServer] = []
    for index, entry in enumerate(servers):
        server_label = f"mcp {index + 1}"
        try:
            mcp.append(read_mcp_server(entry, server_label))
        except ValueError as exc:
            raise ValueError(f"{where}, {server_label}: {exc}") from None
    return Toolset(tuple(tools), tuple(mcp))


def _tables(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(entry, dict) for entry in value)
