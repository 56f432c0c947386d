"""simulate.py: its payload and signature are what the real app accepts and answers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import APP_SECRET, PHONE_NUMBER_ID, FakeUpstreams, Harness, load_payload

from tools import simulate
from whatsapp import Kind, parse_webhook, verify_signature

SIM_URL = "http://sim.test/webhook"


def test_the_payload_has_the_documented_shape() -> None:
    payload = simulate.build_payload(
        "Hi", phone_number_id="42", wa_id="15550000009", message_id="wamid.x", timestamp=7
    )
    documented = load_payload("text")

    assert payload.keys() == documented.keys()
    value = payload["entry"][0]["changes"][0]["value"]
    assert value.keys() == documented["entry"][0]["changes"][0]["value"].keys()
    [message] = parse_webhook(payload).messages
    assert (message.id, message.kind, message.text) == ("wamid.x", Kind.TEXT, "Hi")
    assert (message.wa_id, message.phone_number_id, message.timestamp) == ("15550000009", "42", 7)


def test_message_ids_are_unique_and_non_ascii_is_escaped_like_meta() -> None:
    first = simulate.build_payload("é", phone_number_id="42")
    second = simulate.build_payload("é", phone_number_id="42")
    ids = [p["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for p in (first, second)]

    assert ids[0] != ids[1]
    assert b"\\u00e9" in simulate.encode(first)


async def test_a_simulated_webhook_is_accepted_and_answered(harness: Harness) -> None:
    payload = simulate.build_payload("hello there", phone_number_id=PHONE_NUMBER_ID)
    body = simulate.encode(payload)

    response = await harness.client.post(
        "/webhook", content=body, headers=simulate.signed_headers(body, APP_SECRET)
    )
    await harness.settle()

    assert response.status_code == 200
    assert [(m["to"], m["text"]["body"]) for m in harness.fakes.sent()] == [
        (simulate.DEFAULT_WA_ID, "You said: hello there")
    ]


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.delenv("APP_SECRET", raising=False)
    monkeypatch.delenv("PHONE_NUMBER_ID", raising=False)
    monkeypatch.delenv("TENANTS_FILE", raising=False)
    monkeypatch.delenv("TENANT", raising=False)
    return tmp_path


def test_main_posts_a_signed_webhook_and_prints_the_status(
    clean_env: Path, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / ".env").write_text(f"APP_SECRET={APP_SECRET}\nPHONE_NUMBER_ID=123\n")
    received: list[httpx.Request] = []

    def accept(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200, json={"status": "ok", "recorded": 1})

    fakes.router.post(SIM_URL).mock(side_effect=accept)

    code = simulate.main(["--url", SIM_URL, "--text", "Ping", "--from", "15550000077"])

    assert code == 0
    [request] = received
    assert verify_signature(request.content, request.headers["X-Hub-Signature-256"], APP_SECRET)
    message = json.loads(request.content)["entry"][0]["changes"][0]["value"]["messages"][0]
    assert (message["from"], message["text"]["body"]) == ("15550000077", "Ping")
    out = capsys.readouterr().out
    assert out.startswith("200 OK")
    assert APP_SECRET not in out


def test_main_refuses_without_the_app_secret(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / ".env").write_text("PHONE_NUMBER_ID=123\n")

    assert simulate.main(["--text", "Ping"]) == 1
    assert "APP_SECRET" in capsys.readouterr().err


def test_main_refuses_an_empty_text(clean_env: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        simulate.main(["--text", "  "])
    assert stopped.value.code == 2


def test_main_reports_an_unreachable_service(
    clean_env: Path, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / ".env").write_text(f"APP_SECRET={APP_SECRET}\nPHONE_NUMBER_ID=123\n")
    fakes.router.post(SIM_URL).mock(side_effect=httpx.ConnectError("refused"))

    assert simulate.main(["--url", SIM_URL, "--text", "Ping"]) == 1
    assert "is it running?" in capsys.readouterr().out


TENANTS = """
[[tenants]]
name = "Padaria Central"
phone_number_id = "111111111111111"
whatsapp_token_env = "WHATSAPP_TOKEN_PADARIA"

[[tenants]]
name = "Oficina do Zé"
phone_number_id = "222222222222222"
whatsapp_token_env = "WHATSAPP_TOKEN_OFICINA"
"""


def test_tenant_sends_to_that_business_number(
    clean_env: Path, fakes: FakeUpstreams, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / "tenants.toml").write_text(TENANTS, encoding="utf-8")
    (clean_env / ".env").write_text(f"APP_SECRET={APP_SECRET}\nTENANTS_FILE=tenants.toml\n")
    received: list[httpx.Request] = []

    def accept(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200, json={})

    fakes.router.post(SIM_URL).mock(side_effect=accept)

    def number_of(request: httpx.Request) -> str:
        value = json.loads(request.content)["entry"][0]["changes"][0]["value"]
        return str(value["metadata"]["phone_number_id"])

    assert simulate.main(["--url", SIM_URL, "--text", "Oi", "--tenant", "Oficina do Zé"]) == 0
    assert simulate.main(["--url", SIM_URL, "--text", "Oi"]) == 0  # the file's first business
    assert [number_of(r) for r in received] == ["222222222222222", "111111111111111"]
    assert simulate.main(["--url", SIM_URL, "--text", "Oi", "--tenant", "Nobody"]) == 1
    error = capsys.readouterr().err
    assert "no business named 'Nobody'" in error and "Padaria Central, Oficina do Zé" in error
