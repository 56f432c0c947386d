"""render.yaml: the Blueprint Render reads, checked for what a deploy depends on."""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers import ROOT

yaml = pytest.importorskip("yaml")

REQUIRED = ("WHATSAPP_TOKEN", "VERIFY_TOKEN", "APP_SECRET", "PHONE_NUMBER_ID", "GEMINI_API_KEY")


@pytest.fixture(scope="module")
def blueprint() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "render.yaml").read_text(encoding="utf-8"))
    return data


def web_service(blueprint: dict[str, Any]) -> dict[str, Any]:
    [service] = [s for s in blueprint["services"] if s["type"] == "web"]
    assert isinstance(service, dict)
    return service


def env(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["key"]: entry for entry in service["envVars"]}


def test_web_service_runs_main_app_on_port(blueprint: dict[str, Any]) -> None:
    service = web_service(blueprint)
    assert service["runtime"] == "python"
    assert service["healthCheckPath"] == "/health"
    assert "pip install -r requirements.txt" in service["buildCommand"]
    assert re.search(r"uvicorn main:app .*--host 0\.0\.0\.0 --port \$PORT", service["startCommand"])
    assert "env" not in service and "autoDeploy" not in service  # deprecated spellings


def test_secrets_are_asked_for_never_committed(blueprint: dict[str, Any]) -> None:
    variables = env(web_service(blueprint))
    for name in REQUIRED:
        assert variables[name] == {"key": name, "sync": False}


def test_python_version_is_fully_qualified_and_matches(blueprint: dict[str, Any]) -> None:
    version = env(web_service(blueprint))["PYTHON_VERSION"]["value"]
    assert re.fullmatch(r"3\.11\.\d+", str(version))
    assert (ROOT / ".python-version").read_text().strip() == version


def test_database_comes_from_the_blueprints_postgres(blueprint: dict[str, Any]) -> None:
    variables = env(web_service(blueprint))
    source = variables["DATABASE_URL"]["fromDatabase"]
    assert source["property"] == "connectionString"
    assert source["name"] in {db["name"] for db in blueprint["databases"]}
    # Migrations run once per deploy instead of in every instance.
    assert web_service(blueprint)["preDeployCommand"] == "alembic upgrade head"
    assert variables["AUTO_MIGRATE"]["value"] == "false"
