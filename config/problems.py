"""A bad setting told to the operator: which variable, what is wrong, where to get its value."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from config.settings import Settings


def where_to_get() -> dict[str, str]:
    """Where an operator finds each required value (its field's `where`), by variable name."""
    found: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, Mapping) and isinstance(extra.get("where"), str):
            found[name.upper()] = str(extra["where"])
    return found


WHERE_TO_GET: Mapping[str, str] = where_to_get()


def describe_problems(error: ValidationError) -> list[str]:
    """One line per bad setting, naming the variable and where to get it, never its value."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        name = "_".join(str(part) for part in problem["loc"]).upper()
        if problem["type"] == "missing":
            reason = "is not set"
        elif problem["type"] == "value_error":
            reason = problem["msg"].removeprefix("Value error, ")
        else:
            reason = "is invalid: " + problem["msg"][:1].lower() + problem["msg"][1:]
        where = WHERE_TO_GET.get(name)
        line = f"  {name} {reason}" if name else f"  {reason}"
        lines.append(line + (f"\n      get it from: {where}" if where else ""))
    return lines


def start_up_message(problems: list[str]) -> str:
    """The one message that stops start-up: every problem, then where settings go."""
    return "\n".join(
        [
            "Cannot start: some settings are missing or invalid.",
            *problems,
            (
                "Set them in the environment or in a .env file in the working directory "
                "(cp .env.example .env). docs/settings.md explains each one."
            ),
            "Meanwhile, `make chat` talks to the assistant here (only GEMINI_API_KEY needed).",
        ]
    )
