"""Opening hours in words: for Gemini's system instruction, and for the user when staff are away."""

from __future__ import annotations

from datetime import datetime

from hours.schedule import OpeningHours, Status
from language.replies import BACK_ON, Phrase, phrase_text

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _moment(at: datetime, now: datetime) -> str:
    """`today at 18:00`, `tomorrow (Saturday 2026-12-05) at 08:00`, or the weekday and date."""
    clock = at.strftime("%H:%M")
    days = (at.date() - now.date()).days
    if days == 0:
        return f"today at {clock}"
    named = f"{WEEKDAYS[at.weekday()]} {at.date().isoformat()}"
    return f"tomorrow ({named}) at {clock}" if days == 1 else f"on {named} at {clock}"


def instruction(hours: OpeningHours, now: datetime) -> str:
    """What Gemini is told of the time and the business's hours, every request: its local
    date, weekday and time, open or closed now, and when that changes next."""
    status = hours.at(now)
    local = status.local
    day = f"{WEEKDAYS[local.weekday()]} {local.date().isoformat()}"
    lines = [f"Now at the business: {day}, {local.strftime('%H:%M')} ({hours.zone_name} time)."]
    if hours.schedule is None:
        lines.append("No opening hours are set: the business counts as open at any time.")
    else:
        lines.append(f"Opening hours: {hours.schedule.text}.")
        lines.append(_open_or_closed(status))
    return " ".join(lines)


def _open_or_closed(status: Status) -> str:
    if status.next_change is None:
        return "The business is open now (around the clock)."
    when = _moment(status.next_change, status.local)
    if status.open:
        return f"The business is open now; it closes {when}."
    return f"The business is closed now; it opens {when}."


def away_text(hours: OpeningHours, now: datetime, language: str) -> str | None:
    """`We're closed right now; our team is back on Monday at 08:00.` in the user's language
    while the business is closed; None while it is open."""
    status = hours.at(now)
    if status.open or status.next_change is None:
        return None
    back = status.next_change
    when = phrase_text(BACK_ON[back.weekday()], language, time=back.strftime("%H:%M"))
    return phrase_text(Phrase.AWAY, language, when=when)
