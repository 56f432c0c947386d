"""The Dockerfile and .dockerignore, checked by reading them (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass

import pytest
from helpers import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, `\\` continuations joined into one line."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # a comment or blank line inside a continuation is skipped, as Docker does
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def ignore_patterns(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `*` and `?` stop at `/`, `**` crosses directories."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out)


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        regex = pattern_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def index_of(instructions: list[Instruction], keyword: str, contains: str = "") -> int:
    for i, instruction in enumerate(instructions):
        if instruction.keyword == keyword and contains in instruction.args:
            return i
    raise AssertionError(f"no {keyword} {contains!r} in the Dockerfile")


def the(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_the_user_the_image_runs_as_is_created_in_it(instructions: list[Instruction]) -> None:
    """`USER app` fails at run time unless an earlier RUN created `app` (its `useradd` is on a
    continuation line, so this also needs the continuations joined as Docker joins them)."""
    user = [i for i in instructions if i.keyword == "USER"][-1].args.split(":")[0]
    created = index_of(instructions, "RUN", "useradd")
    assert created < index_of(instructions, "USER")
    useradd = instructions[created].args.split("&&")[-1]
    words = shlex.split(useradd)
    assert words[0] == "useradd" and words[-1] == user
    assert "--system" in words


def test_base_image_is_the_pinned_slim_python_of_the_project(
    instructions: list[Instruction],
) -> None:
    version = (ROOT / ".python-version").read_text(encoding="utf-8").strip()
    assert instructions[0].keyword == "FROM"
    assert re.fullmatch(r"python:3\.11\.\d+-slim", instructions[0].args)
    assert instructions[0].args == f"python:{version}-slim"


def test_cmd_execs_uvicorn_on_main_app_with_the_port_from_the_environment(
    instructions: list[Instruction],
) -> None:
    cmd = the(instructions, "CMD").args
    assert not cmd.startswith("["), "shell form is needed for $PORT to expand"
    words = shlex.split(cmd)
    assert words[:3] == ["exec", "uvicorn", "main:app"]
    assert words[words.index("--port") + 1] in ("$PORT", "${PORT}")
    assert words[words.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert "--proxy-headers" in words
    assert "--forwarded-allow-ips=*" in words  # quoted in the file, so no glob expands it
    assert "--workers" not in words  # one process per SQLite file
    assert "PORT=8000" in the(instructions, "ENV").args.split()
    assert the(instructions, "EXPOSE").args == "8000"


def test_a_non_root_user_is_set_before_cmd(instructions: list[Instruction]) -> None:
    users = [i for i in instructions[: index_of(instructions, "CMD")] if i.keyword == "USER"]
    assert users, "no USER before CMD"
    assert users[-1].args.split(":")[0] not in ("root", "0")


def test_the_healthcheck_calls_health_with_python(instructions: list[Instruction]) -> None:
    check = the(instructions, "HEALTHCHECK").args
    assert "CMD python" in check
    assert "urllib.request" in check
    assert "/health" in check
    assert "curl" not in check and "wget" not in check


def test_requirements_are_installed_before_the_code_is_copied(
    instructions: list[Instruction],
) -> None:
    copy_requirements = index_of(instructions, "COPY", "requirements.txt")
    install = index_of(instructions, "RUN", "pip install")
    copy_code = index_of(instructions, "COPY", "*.py")
    assert copy_requirements < install < copy_code
    assert "--no-cache-dir" in instructions[install].args
    assert "-r requirements.txt" in instructions[install].args


def copied_sources(instructions: list[Instruction]) -> list[str]:
    """Every source path of every COPY/ADD, without `./` and trailing `/`."""
    sources: list[str] = []
    for instruction in instructions:
        if instruction.keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
            sources += [w.removeprefix("./").rstrip("/") for w in words[:-1]]
    return sources


def served_packages() -> set[str]:
    """The repository's own packages that the web and worker processes import, as run."""
    program = (
        "import sys, main, service.worker, service.answering, storage.migrations;"
        "from pathlib import Path;"
        f"root = Path({str(ROOT)!r});"
        "files = (Path(m.__file__).resolve() for m in list(sys.modules.values())"
        " if getattr(m, '__file__', None));"
        "venv = Path(sys.prefix).resolve();"
        "print('\\n'.join(sorted({f.relative_to(root).parts[0] for f in files"
        " if f.is_relative_to(root) and not f.is_relative_to(venv)"
        " and len(f.relative_to(root).parts) > 1})))"
    )
    found = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(found.stdout.split())


def test_every_package_the_service_runs_on_is_in_the_image_and_the_tools_are_not(
    instructions: list[Instruction],
) -> None:
    sources = copied_sources(instructions)
    patterns = ignore_patterns(DOCKERIGNORE.read_text("utf-8"))
    packages = served_packages()
    assert {"answering", "storage", "ops"} <= packages
    for needed in (*packages, "alembic.ini"):
        assert needed in sources, f"{needed} is imported when serving but not copied"
        assert not is_ignored(needed, patterns)
    for tool in ("tools", "bench", "tests"):
        assert tool not in sources
        assert is_ignored(f"{tool}/anything.py", patterns)
    assert is_ignored("storage/migrations/__pycache__/env.cpython-311.pyc", patterns)


def test_no_copy_brings_in_secrets_or_data(instructions: list[Instruction]) -> None:
    for name in copied_sources(instructions):
        assert name not in (".", "", "*", "data") and not name.startswith(".env"), name


def test_the_data_directory_is_a_volume_owned_by_the_app_user(
    instructions: list[Instruction],
) -> None:
    user = [i for i in instructions if i.keyword == "USER"][-1].args
    assert json.loads(the(instructions, "VOLUME").args) == ["/app/data"]
    assert any(
        i.keyword == "RUN" and "mkdir -p /app/data" in i.args and f"chown {user}" in i.args
        for i in instructions
    )


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.example",
        ".env.production",
        "sub/.env",
        "data/assistant.db",
        "data",
        ".venv/bin/python",
        ".git/HEAD",
        "__pycache__/main.cpython-311.pyc",
        "storage/migrations/versions/__pycache__/0001_initial.cpython-311.pyc",
        "deep/er/.env.local",
        "tests/test_main.py",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/main.data.json",
        "bench/results.json",
        "assistant.db",
    ],
)
def test_dockerignore_keeps_secrets_state_and_caches_out(path: str) -> None:
    assert is_ignored(path, ignore_patterns(DOCKERIGNORE.read_text(encoding="utf-8"))), path


@pytest.mark.parametrize(
    "path",
    [
        "main.py",
        "requirements.txt",
        "storage/inbox.py",
        "alembic.ini",
        "storage/migrations/env.py",
        "storage/migrations/versions/0001_initial.py",
    ],
)
def test_dockerignore_keeps_what_the_image_needs(path: str) -> None:
    assert not is_ignored(path, ignore_patterns(DOCKERIGNORE.read_text(encoding="utf-8"))), path


def test_dockerignore_names_env_data_and_venv_explicitly() -> None:
    patterns = {p.rstrip("/") for p in ignore_patterns(DOCKERIGNORE.read_text(encoding="utf-8"))}
    assert {".env", ".env.*", "data", ".venv", ".git"} <= patterns
