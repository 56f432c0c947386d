"""`python -m service.worker` on its own, beside a web process with EXTERNAL_WORKERS=true."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fake_upstreams import FakeServer
from helpers import ROOT, service_env
from running import children_of, post_text, start_uvicorn, wait_for


def start_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """The worker as an operator runs it: `python -m service.worker`, its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "service.worker"],
        cwd=cwd,  # no developer `.env` is read
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.kill()
    output, _ = process.communicate(timeout=30)
    return output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_web_process_with_external_workers_answers_nothing_itself_and_a_worker_does(
    fake: FakeServer, tmp_path: Path
) -> None:
    env = service_env(
        fake.url,
        f"sqlite:///{tmp_path}/assistant.db",
        EXTERNAL_WORKERS="true",
        WORKER_PROCESSES="2",  # ignored: answering is left to the operator's workers
        POLL_INTERVAL_SECONDS="0.2",
    )
    web, url = start_uvicorn(env, tmp_path)
    worker: subprocess.Popen[str] | None = None
    try:
        assert children_of(web.pid) == []
        assert post_text(url, "wamid.external-1", "16505550001") == 200
        # Recorded, not answered: nothing answers in the web process.
        wait_for(lambda: len(fake.recorded.sent) == 0, 1, "no answer yet")
        worker = start_worker(env, tmp_path)
        wait_for(lambda: len(fake.recorded.sent) == 1, 20, "the worker's answer")
        assert fake.recorded.sent[0]["to"] == "16505550001"
        assert post_text(url, "wamid.external-2", "16505550002") == 200
        wait_for(lambda: len(fake.recorded.sent) == 2, 20, "the next answer, found by polling")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, stop(worker)
    finally:
        if worker is not None:
            stop(worker)
        stop(web)


def test_a_worker_stopped_with_sigterm_mid_answer_sends_the_answer_first(tmp_path: Path) -> None:
    with FakeServer(gemini_delay=2.0) as fake:
        env = service_env(
            fake.url,
            f"sqlite:///{tmp_path}/assistant.db",
            EXTERNAL_WORKERS="true",
            POLL_INTERVAL_SECONDS="0.2",
            SHUTDOWN_GRACE_SECONDS="20",
        )
        web, url = start_uvicorn(env, tmp_path)
        worker = start_worker(env, tmp_path)
        try:
            assert post_text(url, "wamid.sigterm-1", "16505550003") == 200
            wait_for(lambda: len(fake.recorded.gemini) == 1, 20, "Gemini to be asked")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
            assert [m["to"] for m in fake.recorded.sent] == ["16505550003"]
        finally:
            stop(worker)
            stop(web)


def test_a_worker_without_its_settings_says_what_is_missing(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "GEMINI_API_KEY": "k-123456"}
    worker = start_worker(env, tmp_path)
    output = stop(worker) if worker.wait(timeout=30) is not None else ""
    assert worker.returncode == 1
    assert "Cannot start: some settings are missing or invalid." in output
    for name in ("WHATSAPP_TOKEN", "VERIFY_TOKEN", "APP_SECRET", "PHONE_NUMBER_ID"):
        assert name in output
    assert "k-123456" not in output
