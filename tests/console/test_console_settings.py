"""The console's settings: defaults, checks, secrecy, and where they are listed."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import ROOT, make_settings
from pydantic import ValidationError

from config import Settings
from config.problems import describe_problems

NEW_SETTINGS = (
    "CONSOLE_PASSWORD",
    "CONSOLE_SESSION_HOURS",
    "HANDOFF_COMMAND",
    "HANDOFF_REPLY",
    "HANDOFF_TIMEOUT_HOURS",
    "HANDOFF_WEBHOOK_URL",
    "PUBLIC_URL",
)


def settings(**values: Any) -> Settings:
    return make_settings("sqlite:///unused.db", **values)


def problems(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**values)
    return "\n".join(describe_problems(caught.value))


def test_defaults_leave_the_console_off() -> None:
    s = settings()
    assert s.console_password is None and not s.console_enabled
    assert s.console_session_hours == 12
    assert s.handoff_command == "/human"
    assert s.handoff_reply is None
    assert s.handoff_timeout_hours == 24
    assert s.handoff_webhook_url is None
    assert s.public_url is None


def test_empty_values_mean_unset() -> None:
    s = settings(console_password="  ", handoff_reply="", public_url="", handoff_webhook_url=" ")
    assert s.console_password is None and not s.console_enabled
    assert s.handoff_reply is None and s.public_url is None and s.handoff_webhook_url is None


def test_public_url_loses_its_trailing_slash() -> None:
    assert settings(public_url=" https://name.onrender.com/ ").public_url == (
        "https://name.onrender.com"
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"console_password": "short"}, "CONSOLE_PASSWORD must be at least 8 characters"),
        ({"console_password": "change-me-console"}, "CONSOLE_PASSWORD is still the placeholder"),
        ({"public_url": "name.onrender.com"}, "PUBLIC_URL must start with https://"),
        ({"handoff_webhook_url": "hooks.slack.com/x"}, "HANDOFF_WEBHOOK_URL must start with"),
        ({"handoff_timeout_hours": 0}, "HANDOFF_TIMEOUT_HOURS is invalid"),
        ({"console_session_hours": -1}, "CONSOLE_SESSION_HOURS is invalid"),
        ({"handoff_command": "  "}, "HANDOFF_COMMAND must not be empty"),
    ],
)
def test_bad_values_are_named_without_their_value(values: dict[str, Any], expected: str) -> None:
    message = problems(**values)
    assert expected in message
    for value in values.values():
        if isinstance(value, str) and value.strip():
            assert value not in message


def test_the_console_password_and_webhook_url_never_print() -> None:
    s = settings(
        console_password="a-long-console-secret",
        handoff_webhook_url="https://hooks.example/T000/B000/secretpart",
    )
    assert s.console_enabled
    assert "a-long-console-secret" not in repr(s) and "a-long-console-secret" not in str(s)
    assert "secretpart" not in repr(s)
    assert s.handoff_command == "/human"


def test_every_new_setting_is_in_the_env_example() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in NEW_SETTINGS:
        assert f"# {name}=" in example, name


def test_the_console_screenshots_are_real_images() -> None:
    for image in (
        "console-list.png",
        "console-conversation-phone.png",
        "console-list-pt-BR-phone.png",  # README.md and README.pt-BR.md
        "console-conversation-pt-BR-phone.png",
    ):
        data = (ROOT / "docs" / "screenshots" / image).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), image
        assert len(data) > 10_000, image


def test_render_asks_for_the_console_password_and_public_url() -> None:
    yaml: Any = pytest.importorskip("yaml")
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text(encoding="utf-8"))
    [service] = [s for s in blueprint["services"] if s["type"] == "web"]
    variables = {entry["key"]: entry for entry in service["envVars"]}
    for name in ("CONSOLE_PASSWORD", "PUBLIC_URL"):
        assert variables[name] == {"key": name, "sync": False}


def test_the_image_carries_the_console() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY console/ ./console/" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert not any("console" in pattern for pattern in ignored)
