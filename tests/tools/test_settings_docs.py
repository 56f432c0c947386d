"""docs/settings.md and .env.example: generated from the settings, up to date, and complete."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from helpers import ROOT

from config import Settings
from config.settings import SECTIONS
from domain.businesses import TenantSettings
from tools import settings_docs
from tools.settings_docs import OTHER_VARIABLES, OUTPUTS, extra, is_required

SETTINGS = {name.upper() for name in Settings.model_fields}
# How code outside tests/ reads a variable: os.environ.get("X"), environ["X"], os.getenv("X"),
# a `.env` read with dotenv_values(...).get("X"), "X" in os.environ.
READS = re.compile(
    r"""(?:environ|getenv|dotenv_values\([^)]*\))(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|["']([A-Z][A-Z0-9_]*)["']\s+in\s+os\.environ"""
)
# Make variables a person may set: `NAME ?= ...`, and `$(NAME)` never assigned in the file.
MAKE_DEFAULTS = re.compile(r"^([A-Z][A-Z0-9_]*)\s*\?=", re.MULTILINE)
MAKE_ASSIGNED = re.compile(r"^([A-Z][A-Z0-9_]*)\s*:?=", re.MULTILINE)
MAKE_USED = re.compile(r"\$\(([A-Z][A-Z0-9_]*)\)")


def sources() -> Iterator[Path]:
    """The project's own Python outside the test suite."""
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if not ({"tests", "data"} & set(parts)) and not parts[0].startswith("."):
            yield path


def read_by_code() -> set[str]:
    found: set[str] = set()
    for path in sources():
        for match in READS.finditer(path.read_text(encoding="utf-8")):
            found.add(match.group(1) or match.group(2))
    return found


def read_by_make() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assigned = set(MAKE_ASSIGNED.findall(makefile)) - set(MAKE_DEFAULTS.findall(makefile))
    return set(MAKE_DEFAULTS.findall(makefile)) | (set(MAKE_USED.findall(makefile)) - assigned)


def test_the_generated_files_are_up_to_date() -> None:
    for name, render in OUTPUTS.items():
        committed = (ROOT / name).read_text(encoding="utf-8")
        assert committed == render(), f"{name} is out of date: run `make docs`"
    assert settings_docs.main(["--check"]) == 0


def test_every_setting_is_in_one_section_and_described() -> None:
    in_sections = [name for section in SECTIONS for name in section.model_fields]
    assert sorted(in_sections) == sorted(Settings.model_fields)  # each once, none left out
    for model in (*SECTIONS, TenantSettings):
        assert model.model_config.get("title") and model.__doc__, model
        for name, field in model.model_fields.items():
            assert field.description and field.description.endswith((".", ")")), name


def test_the_reference_and_the_example_list_every_setting() -> None:
    reference = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        assert f"| `{variable}` |" in reference, variable
        line = f"{variable}=" if is_required(field) else f"# {variable}="
        assert re.search(rf"^{re.escape(line)}", example, re.MULTILINE), variable
    for key in TenantSettings.model_fields:
        assert f"| `{key}` |" in reference, key


def test_every_required_setting_says_where_to_get_it_and_has_a_placeholder() -> None:
    required = [f for f in Settings.model_fields.values() if is_required(f)]
    assert len(required) == 5
    for field in required:
        assert extra(field).get("where")
        assert field.examples and str(field.examples[0]).startswith("change-me-")


def test_every_variable_the_code_reads_is_a_setting_or_described() -> None:
    """What counts as a setting: a field of `Settings`, read by the service. Everything else
    read from the environment (by the Makefile, the tools, the benchmarks, the host) is listed
    as not a setting, with who reads it; the test suite's own variables are left out."""
    read = read_by_code() | read_by_make()
    assert {"PORT", "HOST", "TENANT", "DATABASE_URL"} <= read  # the search finds what it should
    unexplained = read - SETTINGS - set(OTHER_VARIABLES) - {"PATH", "LANG"}  # any process's
    assert not unexplained, f"document these in tools/settings_docs.py: {sorted(unexplained)}"
    assert not SETTINGS & set(OTHER_VARIABLES)


def test_no_variable_is_described_that_nothing_reads() -> None:
    everything = "\n".join(p.read_text(encoding="utf-8") for p in sources())
    for name in ("Makefile", "Dockerfile", "render.yaml"):
        everything += (ROOT / name).read_text(encoding="utf-8")
    for name in OTHER_VARIABLES:
        assert name in everything, name


def test_render_sets_only_settings() -> None:
    yaml: Any = pytest.importorskip("yaml")
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text(encoding="utf-8"))
    for service in blueprint["services"]:
        for entry in service.get("envVars", []):
            assert entry["key"] in SETTINGS | set(OTHER_VARIABLES), entry["key"]


def test_the_example_filled_in_starts_with_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `make run` users do: copy .env.example, replace the placeholders, start."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    values = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}
    assert set(values) == {n.upper() for n, f in Settings.model_fields.items() if is_required(f)}
    filled = example
    for name, value in values.items():
        real = "106540352242922" if name == "PHONE_NUMBER_ID" else f"real-{name.lower()}-7f3a"
        filled = filled.replace(f"{name}={value}", f"{name}={real}")
    (tmp_path / ".env").write_text(filled, encoding="utf-8")
    settings = Settings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]
    assert settings.phone_number_id == "106540352242922"
    for name, field in Settings.model_fields.items():
        if not is_required(field) and name != "system_prompt":
            assert getattr(settings, name) == field.default, name


def test_optional_settings_show_their_default_in_the_example() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert "# HISTORY_TURNS=20\n" in example
    assert "# WEB_SEARCH=false\n" in example
    assert "# CONSOLE_LANGUAGE=auto\n" in example
    assert "# KNOWLEDGE_DIR=knowledge\n" in example
    assert "# BUSINESS_NAME=" in example
