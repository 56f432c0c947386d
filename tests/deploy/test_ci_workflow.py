"""CI on GitHub (.github/workflows/ci.yml) checks what `.ci/run` checks on a bare machine."""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
CI_RUN = ROOT / ".ci" / "run"
SUITES = {"test", "faults"}  # the make targets that run tests, PostgreSQL's among them
MAKE = re.compile(r"(?:^|&&|;|\|\|)\s*make\s+([\w.-]+)")  # a command's first word: make


def make_targets(commands: str) -> list[str]:
    """The `make` targets a shell script runs, in order (comments left out)."""
    lines = (line.split("#", 1)[0] for line in commands.splitlines())
    return [target for line in lines for target in MAKE.findall(line)]


@pytest.fixture
def workflow() -> dict[Any, Any]:
    yaml: Any = pytest.importorskip("yaml")
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return loaded


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def step_targets(step: dict[str, Any]) -> list[str]:
    """The make targets a step runs, `.ci/run`'s if it runs that."""
    run = step.get("run", "")
    return (
        make_targets(CI_RUN.read_text(encoding="utf-8")) if ".ci/run" in run else make_targets(run)
    )


def test_the_workflow_runs_on_every_push_and_pull_request(workflow: dict[Any, Any]) -> None:
    triggers = workflow["on" if "on" in workflow else True]  # YAML 1.1 reads a bare `on` as True
    events = {triggers} if isinstance(triggers, str) else set(triggers)
    assert events >= {"push", "pull_request"}


def test_the_workflow_runs_the_make_targets_of_ci_run_in_the_same_order(
    workflow: dict[Any, Any],
) -> None:
    expected = make_targets(CI_RUN.read_text(encoding="utf-8"))
    assert set(expected) >= SUITES
    assert [t for step in steps(workflow) for t in step_targets(step)] == expected


def test_the_suites_on_github_cannot_skip_postgresql(workflow: dict[Any, Any]) -> None:
    """Without a server the PostgreSQL tests are skipped; `.ci/run` sets REQUIRE_POSTGRES, a
    workflow step that runs the suites itself points them at the workflow's PostgreSQL service
    (the port it publishes on the runner)."""
    published = {
        port.split(":")[0]
        for job in workflow["jobs"].values()
        for service in job.get("services", {}).values()
        for port in service.get("ports", [])
    }
    suites = [s for s in steps(workflow) if SUITES & set(make_targets(s.get("run", "")))]
    for step in suites:
        env = step.get("env", {})
        url = env.get("TEST_DATABASE_URL", "")
        port = re.search(r"@(?:localhost|127\.0\.0\.1):(\d+)/", url)
        assert env.get("REQUIRE_POSTGRES") or (port and port.group(1) in published), step
