"""A business's opening hours: TIMEZONE and BUSINESS_HOURS read, and whether it is open at a time.

BUSINESS_HOURS reads like `mon-fri 08:00-12:00, 13:30-18:00; sat 08:00-12:00; sun closed`:
groups separated by `;`, each a day, a range of days or a comma list of them, then `closed` or
time ranges separated by `,`. `24:00` ends a day; a range that ends at or before its start runs
past midnight and belongs to the day it starts. Days not named are closed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 24 * 3600
WEEK = 7 * DAY

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, as an aware UTC datetime (tests inject another clock)."""
    return datetime.now(UTC)


def read_timezone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or ValueError saying it is not one."""
    text = name.strip()
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{text!r} is not a known IANA time zone name (for example UTC, "
            "America/Sao_Paulo, Europe/Lisbon)"
        ) from None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Open intervals of a week in seconds from Monday 00:00, sorted, merged, within the week."""

    intervals: tuple[tuple[int, int], ...]
    text: str  # the setting as written, for the system instruction

    @property
    def always_open(self) -> bool:
        return self.intervals == ((0, WEEK),)


def read_schedule(text: str) -> Schedule:
    """The week BUSINESS_HOURS describes, or ValueError saying which part cannot be read."""
    spans: list[tuple[int, int]] = []
    seen: set[int] = set()
    groups = [group.strip() for group in text.split(";")]
    for group in groups:
        if not group:
            continue
        days_part, _, times_part = group.partition(" ")
        days = _days(days_part.lower(), group)
        for day in days:
            if day in seen:
                raise ValueError(f"{DAYS[day]} is given more than once ({group!r})")
            seen.add(day)
        if times_part.strip().lower() == "closed":
            continue
        for start, end in _ranges(times_part, group):
            for day in days:
                first = day * DAY + start
                last = day * DAY + (end if end > start else end + DAY)
                spans.extend(_within_week(first, last))
    intervals = _merged(spans)
    if not intervals:
        raise ValueError("it opens on no day of the week")
    return Schedule(tuple(intervals), " ".join(text.split()))


def _days(spec: str, group: str) -> list[int]:
    """The days of `mon`, `mon-fri`, `sat,sun` or `fri-mon` (wrapping), as indexes."""
    if not spec:
        raise ValueError(f"{group!r} names no day")
    days: list[int] = []
    for item in spec.split(","):
        first, dash, last = item.partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise ValueError(
                f"{item!r} in {group!r} is not a day or a range of days "
                "(mon, tue, wed, thu, fri, sat, sun; for example mon-fri)"
            )
        start = DAYS.index(first)
        end = DAYS.index(last) if dash else start
        days.extend((start + offset) % 7 for offset in range((end - start) % 7 + 1))
    return days


def _ranges(spec: str, group: str) -> list[tuple[int, int]]:
    """`08:00-12:00, 13:30-18:00` as (start, end) seconds of the day."""
    if not spec.strip():
        raise ValueError(f"{group!r} gives no hours (write them, or `closed`)")
    ranges = []
    for item in spec.split(","):
        start_text, dash, end_text = item.strip().partition("-")
        if not dash:
            raise ValueError(f"{item.strip()!r} in {group!r} is not a range like 08:00-12:00")
        start, end = _time(start_text, group), _time(end_text, group)
        if start == DAY:
            raise ValueError(f"{item.strip()!r} in {group!r} starts at 24:00, the end of a day")
        if start == end:
            raise ValueError(f"{item.strip()!r} in {group!r} is empty")
        ranges.append((start, end))
    return ranges


def _time(text: str, group: str) -> int:
    match = _TIME.match(text.strip())
    hours, minutes = (int(match[1]), int(match[2])) if match else (99, 99)
    if not match or minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text.strip()!r} in {group!r} is not a time from 00:00 to 24:00")
    return hours * 3600 + minutes * 60


def _within_week(start: int, end: int) -> list[tuple[int, int]]:
    """A span that runs past Sunday midnight continues on Monday morning."""
    if end <= WEEK:
        return [(start, end)]
    return [(start, WEEK), (0, end - WEEK)]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True, slots=True)
class Status:
    """The business at one moment: its local time, open or not, and when that next changes."""

    local: datetime
    open: bool
    next_change: datetime | None  # local; None when it never changes (always open)


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """A business's time zone and week; `schedule` None is always open (BUSINESS_HOURS unset)."""

    zone: ZoneInfo
    schedule: Schedule | None = None

    @property
    def zone_name(self) -> str:
        return self.zone.key

    def at(self, now: datetime) -> Status:
        """Open or closed at `now` (an aware datetime), and the next opening or closing."""
        local = now.astimezone(self.zone)
        if self.schedule is None or self.schedule.always_open:
            return Status(local, True, None)
        second = local.weekday() * DAY + local.hour * 3600 + local.minute * 60 + local.second
        intervals = self.schedule.intervals
        for start, end in intervals:
            if start <= second < end:
                # An interval that ends at Sunday midnight may go on from Monday 00:00.
                if end == WEEK and intervals[0][0] == 0:
                    end = WEEK + intervals[0][1]
                return Status(local, True, _later(local, second, end))
        upcoming = next((start for start, _ in intervals if start > second), None)
        if upcoming is None:
            upcoming = intervals[0][0] + WEEK
        return Status(local, False, _later(local, second, upcoming))


def _later(local: datetime, second: int, target: int) -> datetime:
    """The local wall-clock time `target - second` seconds after `local` (the schedule is in
    wall-clock time, so a daylight-saving change in between moves nothing)."""
    wall = local.replace(tzinfo=None, microsecond=0) + timedelta(seconds=target - second)
    return wall.replace(tzinfo=local.tzinfo)


ALWAYS_OPEN_UTC = OpeningHours(ZoneInfo("UTC"))


def opening_hours(timezone: str, business_hours: str | None) -> OpeningHours:
    """TIMEZONE and BUSINESS_HOURS read together, or ValueError naming which is wrong and why."""
    try:
        zone = read_timezone(timezone)
    except ValueError as exc:
        raise ValueError(f"TIMEZONE: {exc}") from None
    if business_hours is None or not business_hours.strip():
        return OpeningHours(zone)
    try:
        return OpeningHours(zone, read_schedule(business_hours))
    except ValueError as exc:
        raise ValueError(f"BUSINESS_HOURS cannot be read: {exc}") from None
