"""WhatsApp message templates: the approved ones the console can send, their body parameters, and
what a sent one said.

A template's body holds parameters, `{{1}}`, `{{2}}`, ... or, with `parameter_format: NAMED`,
`{{first_name}}`; each is one text the operator fills in. Only templates whose every variable
part is in the body are offered: a media header, a header parameter or a button that needs one
would make Meta refuse a send that fills the body alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
# Buttons whose sending needs a parameter (a code to copy, a one-time password, a catalogue).
BUTTONS_WITH_PARAMETERS = frozenset({"COPY_CODE", "OTP", "CATALOG", "MPM", "SPM"})
COMPONENTS_WITH_PARAMETERS = frozenset({"CAROUSEL", "LIMITED_TIME_OFFER"})


@dataclass(frozen=True, slots=True)
class Template:
    """An approved template in one language, as the console offers and sends it."""

    name: str
    language: str  # Meta's code, for example pt_BR
    category: str
    body: str
    parameters: tuple[str, ...]  # "1", "2", ... in order, or the names of a NAMED template
    named: bool = False

    @property
    def key(self) -> str:
        """What the console's form names it by: the name and the language together."""
        return f"{self.name}|{self.language}"

    @property
    def labels(self) -> tuple[str, ...]:
        """The label of each parameter's field: its name, or Parameter 1, Parameter 2, ..."""
        if self.named:
            return self.parameters
        return tuple(f"Parameter {index}" for index in range(1, len(self.parameters) + 1))

    def filled(self, values: Sequence[str]) -> str:
        """The body as the customer reads it, each parameter replaced by its value."""
        given = dict(zip(self.parameters, values, strict=True))
        return PLACEHOLDER.sub(lambda match: given.get(match.group(1), match.group(0)), self.body)

    def components(self, values: Sequence[str]) -> list[dict[str, Any]]:
        """The `components` of a send: the body's parameters as text (none without any)."""
        if not self.parameters:
            return []
        parameters: list[dict[str, Any]] = []
        for name, value in zip(self.parameters, values, strict=True):
            parameter: dict[str, Any] = {"type": "text", "text": value}
            if self.named:
                parameter = {"type": "text", "parameter_name": name, "text": value}
            parameters.append(parameter)
        return [{"type": "body", "parameters": parameters}]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _parameters(body: str, named: bool) -> tuple[str, ...]:
    found = list(dict.fromkeys(PLACEHOLDER.findall(body)))  # each once, in order of appearance
    if named:
        return tuple(found)
    return tuple(sorted((p for p in found if p.isdigit()), key=int))


def _sendable_with_body_alone(components: list[Mapping[str, Any]]) -> bool:
    for component in components:
        kind = _text(component.get("type")).upper()
        if kind in COMPONENTS_WITH_PARAMETERS:
            return False
        if kind == "HEADER":
            header_format = _text(component.get("format")).upper() or "TEXT"
            if header_format != "TEXT" or PLACEHOLDER.search(_text(component.get("text"))):
                return False
        if kind == "BUTTONS":
            for button in component.get("buttons") or []:
                if not isinstance(button, Mapping):
                    continue
                if _text(button.get("type")).upper() in BUTTONS_WITH_PARAMETERS:
                    return False
                if PLACEHOLDER.search(_text(button.get("url"))):
                    return False
    return True


def template_of(entry: Any) -> Template | None:
    """A template from one entry of Meta's `message_templates` list; None for one that is not
    approved, is malformed, or needs more than body parameters."""
    if not isinstance(entry, Mapping) or _text(entry.get("status")).upper() != "APPROVED":
        return None
    name, language = _text(entry.get("name")), _text(entry.get("language"))
    raw_components = entry.get("components")
    components = [c for c in raw_components if isinstance(c, Mapping)] if raw_components else []
    if not name or not language or not isinstance(raw_components, list):
        return None
    category = _text(entry.get("category")).upper()
    if category == "AUTHENTICATION" or not _sendable_with_body_alone(components):
        return None
    body = next((_text(c.get("text")) for c in components if _text(c.get("type")) == "BODY"), "")
    parameter_format = _text(entry.get("parameter_format")).upper()
    placeholders = PLACEHOLDER.findall(body)
    named = parameter_format == "NAMED" or (
        not parameter_format and any(not p.isdigit() for p in placeholders)
    )
    return Template(name, language, category, body, _parameters(body, named), named)


def templates_of(entries: Sequence[Any]) -> list[Template]:
    """The sendable approved templates of Meta's list, by name then language."""
    found = (template_of(entry) for entry in entries)
    return sorted((t for t in found if t is not None), key=lambda t: (t.name, t.language))
