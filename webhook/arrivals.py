"""A message just recorded, as the web process tells the answering side about it (in process,
or one line on a worker process's stdin), so that it is marked read at once."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from webhook.events import InboundMessage, Kind

WAKE = b"\n"  # an empty line: look for work, nothing new to mark read


@dataclass(frozen=True, slots=True)
class Arrival:
    """Which business, which message, its kind, Meta's timestamp, and whether it is a command
    (never delayed)."""

    phone_number_id: str
    message_id: str
    kind: str
    sent_at: int
    command: bool = False

    @classmethod
    def of(cls, message: InboundMessage, commands: Collection[str] = ()) -> Arrival:
        """`commands`: the command words, lower case (`answering.commands` decides for good)."""
        said = message.text.strip().lower() if message.kind is Kind.TEXT and message.text else ""
        return cls(
            message.phone_number_id,
            message.id,
            message.kind.value,
            message.timestamp,
            bool(said) and said in commands,
        )

    def line(self) -> bytes:
        """Tab-separated on one line; the ids Meta sends hold neither tabs nor newlines."""
        fields = (self.phone_number_id, self.message_id, self.kind, str(self.sent_at))
        return ("\t".join((*fields, "1" if self.command else "0")) + "\n").encode()

    @classmethod
    def parse(cls, line: bytes) -> Arrival | None:
        """The Arrival a line carries, or None for anything else (a bare wake-up)."""
        fields = line.decode(errors="replace").split("\t")
        if len(fields) != 5 or not fields[3].isdigit():
            return None
        return cls(fields[0], fields[1], fields[2], int(fields[3]), fields[4] == "1")


def lines_of(arrivals: Iterable[Arrival]) -> bytes:
    """Arrivals to write on a worker's stdin; ids with a tab or a newline are left out."""
    return (
        b"".join(a.line() for a in arrivals if not any(c in a.message_id for c in "\t\n\r")) or WAKE
    )
