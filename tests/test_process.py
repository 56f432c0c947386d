"""The real thing: `uvicorn main:app` as a process, against a local fake of Graph and Gemini."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from fake_upstreams import FakeServer
from helpers import (
    APP_SECRET,
    GEMINI_API_KEY,
    ROOT,
    VERIFY_TOKEN,
    WHATSAPP_TOKEN,
    load_payload,
    service_env,
)
from running import start_uvicorn, wait_for

from webhook.signature import sign


def test_uvicorn_turns_a_signed_webhook_into_a_sent_reply(fake: FakeServer, tmp_path: Path) -> None:
    env = service_env(
        fake.url, f"sqlite:///{tmp_path}/assistant.db", LOG_FORMAT="json", LOG_LEVEL="DEBUG"
    )
    process, url = start_uvicorn(env, tmp_path)
    try:
        verify = httpx.get(
            f"{url}/webhook",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "424242",
            },
        )
        assert (verify.status_code, verify.text) == (200, "424242")

        body = json.dumps(load_payload("text")).encode()
        unsigned = httpx.post(f"{url}/webhook", content=body)
        assert unsigned.status_code == 401
        signed = httpx.post(
            f"{url}/webhook", content=body, headers={"X-Hub-Signature-256": sign(body, APP_SECRET)}
        )
        assert signed.status_code == 200

        wait_for(lambda: len(fake.recorded.sent) >= 1, 20, "the reply")
        assert fake.recorded.sent == [
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "text",
                "text": {"body": "*Echo:* Does it come in another color?", "preview_url": False},
            }
        ]
        assert len(fake.recorded.read) == 1
        assert len(fake.recorded.gemini) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # A clean shutdown: uvicorn re-raises the SIGTERM it handled once the app has stopped.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert '"message": "stopped"' in output

    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line.get("logger") == "uvicorn.access" for line in lines)
    for secret in (VERIFY_TOKEN, APP_SECRET, WHATSAPP_TOKEN, GEMINI_API_KEY):
        assert secret not in output
    assert "16505551234" not in output
    assert "another color" not in output


def test_missing_settings_stop_start_up_with_one_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(ROOT)],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "APP_SECRET": "a-real-looking-secret-9f8e"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    for name in ("WHATSAPP_TOKEN", "VERIFY_TOKEN", "PHONE_NUMBER_ID", "GEMINI_API_KEY"):
        assert name in result.stderr
    assert "APP_SECRET" not in result.stderr  # it is set and valid
    assert "a-real-looking-secret-9f8e" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) < 20


TWO_BUSINESSES = """
[[tenants]]
name = "Padaria Central"
phone_number_id = "111111111111111"
whatsapp_token_env = "TOKEN_PADARIA"
system_prompt = "You are the bakery's assistant."

[[tenants]]
name = "Oficina do Zé"
phone_number_id = "222222222222222"
whatsapp_token_env = "TOKEN_OFICINA"
system_prompt = "You are the garage's assistant."
"""


def post_to(url: str, phone_number_id: str, message_id: str, text: str) -> int:
    payload = load_payload("text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = phone_number_id
    value["messages"][0].update({"id": message_id, "text": {"body": text}})
    body = json.dumps(payload).encode()
    headers = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
    return httpx.post(f"{url}/webhook", content=body, headers=headers).status_code


def test_a_tenants_file_serves_two_businesses_through_a_worker_process(
    fake: FakeServer, tmp_path: Path
) -> None:
    """The worker process gets TENANTS_FILE and the tokens' variables from its web process."""
    (tmp_path / "tenants.toml").write_text(TWO_BUSINESSES, encoding="utf-8")
    env = service_env(fake.url, f"sqlite:///{tmp_path}/assistant.db", WORKER_PROCESSES="1")
    del env["PHONE_NUMBER_ID"], env["WHATSAPP_TOKEN"]
    env.update(TENANTS_FILE="tenants.toml", TOKEN_PADARIA="tok-p-5d1", TOKEN_OFICINA="tok-o-77a")
    process, url = start_uvicorn(env, tmp_path)
    try:
        assert post_to(url, "111111111111111", "wamid.t1", "pão de queijo?") == 200
        assert post_to(url, "222222222222222", "wamid.t2", "troca de óleo?") == 200
        assert post_to(url, "333333333333333", "wamid.t3", "anyone?") == 200
        wait_for(lambda: len(fake.recorded.sent) >= 2, 20, "two replies")
        assert sorted(fake.recorded.sent_from) == [
            ("111111111111111", "tok-p-5d1"),
            ("222222222222222", "tok-o-77a"),
        ]
        prompts = sorted(  # each business's own prompt, before the time and hours follow it
            g["systemInstruction"]["parts"][0]["text"].split("\n\n")[0]
            for g in fake.recorded.gemini
        )
        assert prompts == ["You are the bakery's assistant.", "You are the garage's assistant."]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert len(fake.recorded.sent) == 2  # nothing for the number no business has
    assert "tok-p-5d1" not in output and "tok-o-77a" not in output


def test_a_tenants_file_naming_an_unset_token_variable_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "tenants.toml").write_text(TWO_BUSINESSES, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "VERIFY_TOKEN": "vt-8c1f0a7e55b94d2c",
        "APP_SECRET": "a-real-looking-secret-9f8e",
        "GEMINI_API_KEY": "AQ.gemini-key-value-1",
        "TENANTS_FILE": "tenants.toml",
        "TOKEN_PADARIA": "tok-p-5d1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(ROOT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "business 'Oficina do Zé'" in result.stderr
    assert "TOKEN_OFICINA, which is not set" in result.stderr
    assert "tok-p-5d1" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_reported_before_any_start_up_work(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "hours.md").write_text("Open 9-18\n", encoding="utf-8")
    env = service_env("http://127.0.0.1:9", f"sqlite:///{tmp_path}/data/assistant.db")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(ROOT)]
        result = subprocess.run(
            [*command, "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert f"--port {port + 1}" in output and f"make run PORT={port + 1}" in output
    assert not (tmp_path / "data").exists()  # no migration: not even the database's folder
    assert "knowledge" not in output.lower() and "migrat" not in output
    assert "Traceback" not in output
    assert len(output.splitlines()) < 5


def test_a_first_start_says_where_the_console_is_and_a_group_sigterm_stops_it_quietly(
    fake: FakeServer, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C, `timeout` or a supervisor signal the whole process group: the
    worker process must not look as if it had crashed."""
    env = service_env(
        fake.url,
        f"sqlite:///{tmp_path}/assistant.db",
        WORKER_PROCESSES="1",
        CONSOLE_PASSWORD="a-console-secret-5e1",
        LOG_LEVEL="INFO",
    )
    process, url = start_uvicorn(env, tmp_path, new_session=True)
    try:
        wait_for(lambda: worker_reported(url), 30, "the worker process")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGTERM), output
    assert [line for line in output.splitlines() if " ERROR " in line] == []
    assert "exited with code" not in output  # the web process stopped it, in order
    assert "Traceback" not in output
    assert f"console at {url}/console (sign in as admin" in output
    assert "a-console-secret-5e1" not in output
    assert "alembic" not in output
    migrations = [line for line in output.splitlines() if "database schema" in line]
    assert len(migrations) == 1 and "created at revision" in migrations[0]


def worker_reported(url: str) -> bool:
    """The worker process answers: it has sent the web process its first metrics."""
    try:
        metrics = httpx.get(f"{url}/metrics", timeout=2).text
    except httpx.TransportError:
        return False
    return "assistant_worker_processes 1.0" in metrics
