"""The GitHub Actions workflow runs the suite against PostgreSQL, then the linters."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
TEST_DATABASE_URL = "postgresql://postgres:postgres@localhost:5432/postgres"


def test_the_workflow_runs_make_test_faults_then_lint() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    runs = [line.strip() for line in text.splitlines() if line.strip().startswith("run:")]
    assert runs == ["run: make test", "run: make faults", "run: make lint"]
    assert text.count(f"TEST_DATABASE_URL: {TEST_DATABASE_URL}") == 2
    assert "image: postgres:16" in text
    assert "pg_isready" in text


def test_the_workflow_is_valid_yaml_with_the_expected_job() -> None:
    yaml: Any = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the bare key `on` as True.
    assert set(workflow.get("on", workflow.get(True))) == {"push", "pull_request"}
    job = workflow["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["services"]["postgres"]["ports"] == ["5432:5432"]
    steps = job["steps"]
    assert [s.get("uses") for s in steps[:2]] == ["actions/checkout@v4", "actions/setup-python@v5"]
    assert steps[1]["with"]["python-version"] == "3.11"
    assert steps[1]["with"]["cache"] == "pip"
    test_step = next(s for s in steps if s.get("run") == "make test")
    assert test_step["env"] == {"TEST_DATABASE_URL": TEST_DATABASE_URL}
