"""simulate.py: its payload and signature are what the real app accepts and answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from helpers import APP_SECRET, PHONE_NUMBER_ID, ROOT, Harness, load_payload
from respx_upstreams import FakeUpstreams

from language.replies import Reply, reply_text
from tools import simulate
from webhook.events import Kind, parse_webhook
from webhook.signature import verify_signature

# The English fixed replies: the users of these tests have US numbers.
STICKER_REPLY = reply_text(Reply.STICKER, "en")
UNAVAILABLE_REPLY = reply_text(Reply.UNAVAILABLE, "en")

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
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
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


# ---------------------------------------------------------------------------------------------
# TYPE: a sticker, an image or a voice note, shaped like Meta's


@pytest.mark.parametrize(
    ("kind", "meta_type", "mime_type", "parsed"),
    [
        ("sticker", "sticker", "image/webp", Kind.STICKER),
        ("image", "image", "image/jpeg", Kind.IMAGE),
        ("voice", "audio", "audio/ogg; codecs=opus", Kind.AUDIO),
    ],
)
def test_each_media_type_has_metas_shape(
    kind: str, meta_type: str, mime_type: str, parsed: Kind
) -> None:
    payload = simulate.build_payload(phone_number_id="42", kind=kind)

    [message] = parse_webhook(payload).messages
    assert (message.kind, message.raw_type, message.text) == (parsed, meta_type, None)
    media = message.raw[meta_type]
    assert media["mime_type"] == mime_type
    assert media["id"].isdigit() and len(media["id"]) == 16  # like Meta's, and made up
    assert media["sha256"]
    assert media.get("voice") is (True if kind == "voice" else None)
    assert media.get("animated") is (False if kind == "sticker" else None)
    other = simulate.build_payload(phone_number_id="42", kind=kind)
    assert other["entry"][0]["changes"][0]["value"]["messages"][0][meta_type]["id"] != media["id"]


def test_an_image_carries_the_text_as_its_caption() -> None:
    payload = simulate.build_payload("Is this the blue one?", phone_number_id="42", kind="image")
    [message] = parse_webhook(payload).messages
    assert (message.kind, message.text) == (Kind.IMAGE, "Is this the blue one?")
    bare = simulate.build_payload(phone_number_id="42", kind="image")
    [uncaptioned] = parse_webhook(bare).messages
    assert uncaptioned.text is None and "caption" not in uncaptioned.raw["image"]


def test_text_is_required_only_for_a_text_message(clean_env: Path) -> None:
    assert simulate.parse_args(["--type", "sticker"]).kind == "sticker"
    assert simulate.parse_args(["--type", "image"]).text == ""
    assert simulate.parse_args(["--text", "Hi"]).kind == "text"  # the default
    for refused in (["--type", "text"], ["--type", "voice", "--text", "Hi"], ["--type", "video"]):
        with pytest.raises(SystemExit) as stopped:
            simulate.parse_args(refused)
        assert stopped.value.code == 2


@pytest.mark.parametrize(
    ("kind", "reply"),
    [("sticker", STICKER_REPLY), ("image", UNAVAILABLE_REPLY), ("voice", UNAVAILABLE_REPLY)],
)
async def test_a_simulated_media_message_gets_the_documented_reply(
    harness: Harness, kind: str, reply: str
) -> None:
    """The made-up media id is not Meta's: the file cannot be opened, a sticker needs none."""
    body = simulate.encode(simulate.build_payload(phone_number_id=PHONE_NUMBER_ID, kind=kind))

    response = await harness.client.post(
        "/webhook", content=body, headers=simulate.signed_headers(body, APP_SECRET)
    )
    await harness.settle()

    assert response.status_code == 200
    assert [m["text"]["body"] for m in harness.fakes.sent()] == [reply]
    assert harness.fakes.gemini_calls == []


# ---------------------------------------------------------------------------------------------
# HOST and PORT, like `make run`


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, "http://127.0.0.1:8000/webhook"),
        ({"PORT": "8080"}, "http://127.0.0.1:8080/webhook"),
        ({"HOST": "localhost", "PORT": " 9000 "}, "http://localhost:9000/webhook"),
        ({"HOST": "0.0.0.0", "PORT": ""}, "http://127.0.0.1:8000/webhook"),  # noqa: S104
        ({"HOST": "::1"}, "http://[::1]:8000/webhook"),
    ],
)
def test_the_default_url_follows_host_and_port(environ: dict[str, str], url: str) -> None:
    assert simulate.default_url(environ) == url
    assert simulate.DEFAULT_URL == "http://127.0.0.1:8000/webhook"


def test_main_posts_to_host_and_port_from_the_environment_unless_url_is_given(
    clean_env: Path,
    fakes: FakeUpstreams,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (clean_env / ".env").write_text(f"APP_SECRET={APP_SECRET}\nPHONE_NUMBER_ID=123\n")
    monkeypatch.setenv("HOST", "localhost")
    monkeypatch.setenv("PORT", "9000")
    on_port = fakes.router.post("http://localhost:9000/webhook").mock(
        return_value=httpx.Response(200, json={"status": "ok", "recorded": 1})
    )
    given = fakes.router.post(SIM_URL).mock(return_value=httpx.Response(200, json={}))

    assert simulate.main(["--type", "voice"]) == 0
    assert simulate.main(["--text", "Hi", "--url", SIM_URL]) == 0  # --url wins

    assert (on_port.call_count, given.call_count) == (1, 1)
    [sent] = parse_webhook(json.loads(on_port.calls.last.request.content)).messages
    assert sent.kind is Kind.AUDIO and sent.raw["audio"]["voice"] is True
    out = capsys.readouterr().out
    assert "couldn't open that file" in out  # said once, for the voice note
    assert out.count("couldn't open") == 1 and "service's log" in out


def test_main_refuses_a_port_that_is_not_a_number(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / ".env").write_text(f"APP_SECRET={APP_SECRET}\nPHONE_NUMBER_ID=123\n")
    monkeypatch.setenv("PORT", "http")

    assert simulate.main(["--text", "Hi"]) == 1
    assert "PORT must be a number" in capsys.readouterr().err


def make_simulate(*variables: str) -> str:
    """The command `make simulate` would run (make -n: nothing runs), on one line."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    scrubbed = ("HOST", "PORT", "TEXT", "TYPE", "TENANT", "MAKEFLAGS", "MAKELEVEL")
    environ = {k: v for k, v in os.environ.items() if k not in scrubbed}
    shown = subprocess.run(
        ["make", "--no-print-directory", "-n", "simulate", *variables],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    [command] = [
        line for line in shown.replace("\\\n", " ").splitlines() if "tools.simulate" in line
    ]
    return " ".join(command.split())


def test_make_simulate_passes_host_port_type_and_text() -> None:
    assert make_simulate("PORT=9000", "TEXT=hi") == (
        '.venv/bin/python -m tools.simulate --url "http://127.0.0.1:9000/webhook" --text "hi"'
    )
    command = make_simulate("HOST=0.0.0.0", "TYPE=sticker", "TENANT=Padaria")
    assert '--url "http://127.0.0.1:8000/webhook"' in command  # a bind-all address: this machine
    assert '--type "sticker"' in command and '--tenant "Padaria"' in command
    assert "--text" not in command
