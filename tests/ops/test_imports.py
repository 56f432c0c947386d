"""Each process imports only what it uses: memory is per process, and every worker pays for it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Heavy libraries and the processes that may hold them from the start.
HEAVY = ("av", "google.genai", "aiohttp", "jinja2", "argon2", "mcp")


def loaded_after(code: str) -> set[str]:
    """Which of HEAVY a fresh interpreter holds after running `code` in the project."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_web_app_module_loads_no_gemini_sdk_pyav_or_console_libraries() -> None:
    assert loaded_after("import main") == set()


def test_the_answering_side_loads_gemini_but_not_pyav_until_a_voice_note_is_made() -> None:
    loaded = loaded_after(
        "import service.worker, service.answering, answering.pipeline\n"
        "from llm import Gemini\n"
        "import httpx\n"
        "Gemini(api_key='k', model='m', http=httpx.AsyncClient())"
    )
    assert "google.genai" in loaded
    assert "av" not in loaded
    assert "mcp" not in loaded  # the MCP SDK waits for a business with an MCP server


def test_converting_a_voice_note_loads_pyav() -> None:
    loaded = loaded_after(
        "from voice.audio import to_voice_note\n"
        "to_voice_note(bytes(48_000), 'audio/L16;rate=24000')"
    )
    assert "av" in loaded


def test_a_business_with_an_mcp_server_loads_the_mcp_sdk() -> None:
    loaded = loaded_after(
        "from actions.mcp_tools import McpTools\n"
        "from ops.metrics import Metrics\n"
        "McpTools(Metrics(), 4)"
    )
    assert "mcp" in loaded
