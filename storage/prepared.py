"""SQLAlchemy Core statements compiled once for SQLite and run on its driver (`Database.rows`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled for SQLite once: its SQL, and where each positional value comes
    from (a named parameter, or the statement's own literal values and lists). A statement
    given a list at each run (`bindparam(..., expanding=True)`) is expanded at each run, as
    SQLAlchemy does (`sql` None)."""

    statement: Executable
    compiled: SQLCompiler
    sql: str | None
    order: tuple[str, ...]
    literals: dict[str, Any]

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> Prepared:
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"not a SQL statement: {statement!r}")
        compiled = _sql_compiler(statement.compile(dialect=dialect))
        binds = compiled.binds
        if any(bind.expanding and bind.required for bind in binds.values()):
            return cls(statement, compiled, None, (), {})
        named = {name: None for name, bind in binds.items() if bind.required}
        # The statement's own lists (`IN` of fixed values) expanded once, one placeholder each.
        expanded = compiled.construct_expanded_state(named)
        literals = {key: value for key, value in expanded.parameters.items() if key not in named}
        order = tuple(expanded.positiontup or ())
        return cls(statement, compiled, expanded.statement, order, literals)

    def run(self, parameters: Mapping[str, Any]) -> tuple[str, Sequence[Any]]:
        """The SQL and its positional values for these parameters."""
        if self.sql is None:
            expanded = self.compiled.construct_expanded_state(dict(parameters))
            return expanded.statement, expanded.positional_parameters
        literals = self.literals
        values = [parameters[key] if key in parameters else literals[key] for key in self.order]
        return self.sql, values


def named(names: Sequence[str], values: Sequence[Any]) -> SimpleNamespace:
    """A row of `Database.rows` with its values read by name, as SQLAlchemy's rows are."""
    return SimpleNamespace(**dict(zip(names, values, strict=True)))


def _sql_compiler(compiled: object) -> SQLCompiler:
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"not compiled SQL: {compiled!r}")
    return compiled
