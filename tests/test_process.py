"""The real thing: `uvicorn main:app` as a process, against a local fake of Graph and Gemini."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from conftest import (
    APP_SECRET,
    GEMINI_API_KEY,
    ROOT,
    VERIFY_TOKEN,
    WHATSAPP_TOKEN,
    load_payload,
    service_env,
)
from fake_upstreams import FakeServer
from running import start_uvicorn, wait_for

from whatsapp import sign


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
