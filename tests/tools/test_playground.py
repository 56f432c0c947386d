"""The terminal playground: real pipeline, WhatsApp simulated, Gemini faked with respx."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import APP_SECRET, GEMINI_API_KEY, ROOT, make_settings
from respx_upstreams import FakeUpstreams, gemini_answer

from markup.whatsapp import markdown_to_whatsapp
from tools import playground

SECRETS = (APP_SECRET, GEMINI_API_KEY, *playground.STAND_INS.values())


async def run_chat(database_url: str, lines: str, **overrides: Any) -> str:
    output = io.StringIO()
    await playground.chat(make_settings(database_url, **overrides), io.StringIO(lines), output)
    return output.getvalue()


def printed_parts(output: str) -> list[str]:
    """Each text part the simulated WhatsApp showed, without the prefix and the newline."""
    chunks = output.split(playground.ASSISTANT)[1:]
    assert all(chunk.endswith("\n") for chunk in chunks)
    return [chunk[:-1] for chunk in chunks]


async def test_answers_are_printed_in_whatsapp_formatting_with_history(
    database_url: str, fakes: FakeUpstreams
) -> None:
    fakes.gemini_queue += [gemini_answer("**Hi** there"), gemini_answer("Still _here_, **yes**")]

    output = await run_chat(database_url, "Hello\nAre you there?\n")

    assert printed_parts(output) == ["*Hi* there", "Still _here_, *yes*"]
    second = fakes.gemini_bodies()[1]["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in second] == [
        ("user", "Hello"),
        ("model", "**Hi** there"),
        ("user", "Are you there?"),
    ]
    assert fakes.graph_calls == []  # Graph calls ended in the playground's fake, not the network
    assert not any(secret in output for secret in SECRETS)


async def test_it_says_first_what_it_runs_and_answers_in_this_process(
    database_url: str, fakes: FakeUpstreams
) -> None:
    settings = make_settings(database_url)

    # Worker processes asked for: the chat still answers here, as it says.
    output = await run_chat(database_url, "Hello\n", worker_processes=2)

    assert output.startswith(playground.describe(settings))
    assert printed_parts(output) == ["You said: Hello"]


def test_what_it_runs_is_said_in_full_without_the_database_password() -> None:
    settings = make_settings(
        "postgresql://playground:s3cret-pw@db.test:5432/chat", gemini_model="gemini-3.8-flash"
    )

    assert playground.describe(settings).splitlines() == [
        "Business: your settings' own (SYSTEM_PROMPT); TENANT=<name> picks one of TENANTS_FILE",
        "Model: gemini-3.8-flash (Gemini is called for real)",
        "WhatsApp: simulated; nothing goes to Meta, replies print here (text, buttons, lists)",
        "Answering: in this process, no worker processes (WORKER_PROCESSES is ignored)",
        "Database: postgresql://playground:***@db.test:5432/chat (PLAYGROUND_DATABASE_URL)",
        "Type /quit to leave.",
    ]
    assert playground.describe(settings, "Padaria Central").startswith(
        "Business: 'Padaria Central' of TENANTS_FILE (its prompt and overrides)\n"
    )


async def test_a_long_answer_prints_in_several_parts_in_order(
    database_url: str, fakes: FakeUpstreams
) -> None:
    long_answer = "\n\n".join(f"Paragraph {i}: " + "word " * 100 for i in range(25)).strip()
    fakes.gemini_queue.append(gemini_answer(long_answer))

    parts = printed_parts(await run_chat(database_url, "Tell me everything\n"))

    assert len(parts) >= 3
    assert all(len(part) <= 4096 for part in parts)
    assert "".join(parts) == markdown_to_whatsapp(long_answer)


async def test_blank_lines_are_skipped_and_quit_ends_the_chat(
    database_url: str, fakes: FakeUpstreams
) -> None:
    output = await run_chat(database_url, "\n   \nFirst\n/quit\nNever sent\n")

    assert printed_parts(output) == ["You said: First"]
    assert len(fakes.gemini_calls) == 1


async def test_each_line_is_a_new_message_even_with_the_same_text(
    database_url: str, fakes: FakeUpstreams
) -> None:
    output = await run_chat(database_url, "Again\nAgain\n")

    assert printed_parts(output) == ["You said: Again", "You said: Again"]


def test_settings_use_stand_ins_for_meta_and_a_separate_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEMINI_API_KEY", "real-looking-gemini-key-1")
    monkeypatch.setenv("APP_SECRET", "real-looking-app-secret-2")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///./data/assistant.db")
    monkeypatch.delenv("PLAYGROUND_DATABASE_URL", raising=False)
    monkeypatch.setenv("AUTO_MIGRATE", "false")
    monkeypatch.setenv("WORKER_PROCESSES", "4")
    monkeypatch.setenv("EXTERNAL_WORKERS", "true")

    settings = playground.build_settings()

    assert settings.gemini_api_key.get_secret_value() == "real-looking-gemini-key-1"
    assert settings.app_secret.get_secret_value() == playground.STAND_INS["app_secret"]
    assert settings.phone_number_id == playground.STAND_INS["phone_number_id"]
    assert settings.database_url == "sqlite:///./data/playground.db"
    assert settings.auto_migrate is True
    assert (settings.worker_processes, settings.external_workers) == (0, False)

    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", f"sqlite:///{tmp_path}/other.db")
    assert playground.build_settings().database_url == f"sqlite:///{tmp_path}/other.db"


def test_a_missing_gemini_key_stops_with_one_line_naming_where_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)

    with pytest.raises(SystemExit) as stopped:
        playground.build_settings()

    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "GEMINI_API_KEY" in err
    assert "https://aistudio.google.com/apikey" in err


def test_importing_main_needs_no_settings(tmp_path: Path) -> None:
    # The playground imports main without any Meta settings: the module builds no app on import.
    result = subprocess.run(
        [sys.executable, "-c", "import main; print(callable(main.create_app))"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "True"), result.stderr


def test_the_fake_whatsapp_answers_like_meta() -> None:
    output = io.StringIO()
    fake = playground.FakeWhatsApp(output)
    client = httpx.Client(transport=httpx.MockTransport(fake.handle), base_url="https://g.test")
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.1"}
    text = {"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": "Yo"}}

    assert client.post("/v25.0/1/messages", json=read).json() == {"success": True}
    sent = client.post("/v25.0/1/messages", json=text).json()
    image = client.post("/v25.0/1/messages", json={**text, "type": "image"})

    assert sent["messages"] == [{"id": "wamid.playground-1"}]
    assert image.status_code == 400
    assert json.loads(image.content)["error"]["code"] == 100
    assert output.getvalue() == "assistant> Yo\n"


def test_tenant_talks_to_that_business_prompt_without_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "padaria.txt").write_text("You are the bakery's assistant.")
    (tmp_path / "tenants.toml").write_text(
        "[[tenants]]\n"
        'name = "Padaria Central"\n'
        'phone_number_id = "111111111111111"\n'
        'whatsapp_token_env = "WHATSAPP_TOKEN_PADARIA"\n'
        'system_prompt_file = "prompts/padaria.txt"\n'
        "rate_limit_per_minute = 3\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("GEMINI_API_KEY", "real-looking-gemini-key-1")
    monkeypatch.setenv("TENANTS_FILE", "tenants.toml")
    monkeypatch.setenv("TENANT", "Padaria Central")
    monkeypatch.delenv("WHATSAPP_TOKEN_PADARIA", raising=False)  # not needed to chat

    [business] = list(playground.build_settings().businesses)
    assert business.system_prompt == "You are the bakery's assistant."
    assert business.rate_limit_per_minute == 3
    monkeypatch.setenv("TENANT", "Nobody")
    with pytest.raises(SystemExit):
        playground.build_settings()
