"""TIMEZONE and BUSINESS_HOURS: read or refused, open or closed at a given moment across time
zones, midnight and weekends, and said in words for Gemini and for the user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from config import Settings
from hours.schedule import WEEK, OpeningHours, opening_hours, read_schedule, read_timezone
from hours.words import away_text, instruction

REQUIRED = {
    "verify_token": "vt-8c1f0a7e55b94d2c",
    "app_secret": "3f9d2c7ab18e4e05b6a0c1d2e3f4a5b6",
    "gemini_api_key": "AQ.Ab8RN6Jq-geminikeyvalue",
    "whatsapp_token": "EAAGm0PX4ZCpsBAKZAZBzq7tokenvalue9",
    "phone_number_id": "106540352242922",
}
SHOP = "mon-fri 08:00-12:00, 13:30-18:00; sat 08:00-12:00; sun closed"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
LISBON = ZoneInfo("Europe/Lisbon")


def at(text: str, zone: ZoneInfo = SAO_PAULO) -> datetime:
    """A local wall-clock time in `zone`, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def local(status_time: datetime | None) -> str | None:
    return status_time.strftime("%a %Y-%m-%d %H:%M") if status_time else None


SHOP_HOURS = opening_hours("America/Sao_Paulo", SHOP)


@pytest.mark.parametrize(
    ("moment", "is_open", "next_change"),
    [
        ("2026-12-07 07:59", False, "Mon 2026-12-07 08:00"),  # Monday before opening
        ("2026-12-07 08:00", True, "Mon 2026-12-07 12:00"),
        ("2026-12-07 12:00", False, "Mon 2026-12-07 13:30"),  # lunch: the end is not open
        ("2026-12-07 17:59", True, "Mon 2026-12-07 18:00"),
        ("2026-12-11 18:30", False, "Sat 2026-12-12 08:00"),  # Friday evening
        ("2026-12-12 12:00", False, "Mon 2026-12-14 08:00"),  # Saturday noon, over Sunday
        ("2026-12-13 23:59", False, "Mon 2026-12-14 08:00"),  # Sunday, one minute to midnight
        ("2026-12-14 00:00", False, "Mon 2026-12-14 08:00"),  # Monday at midnight
    ],
)
def test_open_or_closed_and_the_next_change_in_sao_paulo(
    moment: str, is_open: bool, next_change: str
) -> None:
    status = SHOP_HOURS.at(at(moment))
    assert (status.open, local(status.next_change)) == (is_open, next_change)


def test_the_same_instant_is_read_in_the_business_time_zone() -> None:
    instant = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)  # 07:30 in São Paulo, 10:30 in Lisbon
    assert not SHOP_HOURS.at(instant).open
    assert opening_hours("Europe/Lisbon", SHOP).at(instant).open
    assert SHOP_HOURS.at(instant).local.strftime("%H:%M") == "07:30"


def test_sao_paulo_keeps_minus_three_all_year() -> None:
    """Brazil has had no daylight saving time since 2019."""
    for month in (1, 4, 7, 10, 12):
        instant = datetime(2026, month, 5, 11, 0, tzinfo=UTC)  # 08:00 in São Paulo
        assert SHOP_HOURS.at(instant).local.utcoffset() == timedelta(hours=-3)


def test_a_range_past_midnight_belongs_to_the_day_it_starts() -> None:
    bar = opening_hours("Europe/Lisbon", "fri-sat 22:00-02:00")
    friday_late = bar.at(at("2026-12-11 23:00", LISBON))
    saturday_early = bar.at(at("2026-12-12 01:30", LISBON))
    sunday_early = bar.at(at("2026-12-13 01:30", LISBON))
    sunday_late = bar.at(at("2026-12-13 23:00", LISBON))
    assert (friday_late.open, local(friday_late.next_change)) == (True, "Sat 2026-12-12 02:00")
    assert saturday_early.open  # Friday's night, not Saturday's hours
    assert sunday_early.open  # Saturday's night
    assert (sunday_late.open, local(sunday_late.next_change)) == (False, "Fri 2026-12-18 22:00")
    assert not bar.at(at("2026-12-11 01:00", LISBON)).open  # Thursday had no night


def test_sunday_night_runs_into_monday_across_the_end_of_the_week() -> None:
    hours = opening_hours("UTC", "sun 20:00-24:00; mon 00:00-02:00, 09:00-10:00")
    status = hours.at(at("2026-12-13 22:00", ZoneInfo("UTC")))
    assert (status.open, local(status.next_change)) == (True, "Mon 2026-12-14 02:00")
    late = hours.at(at("2026-12-13 23:00", ZoneInfo("UTC")))
    assert local(late.next_change) == "Mon 2026-12-14 02:00"
    assert read_schedule("sun 22:00-03:00").intervals == ((0, 3 * 3600), (WEEK - 2 * 3600, WEEK))


def test_24_00_ends_a_day_and_a_whole_week_is_always_open() -> None:
    hours = opening_hours("UTC", "mon-sun 00:00-24:00")
    status = hours.at(datetime(2026, 12, 9, 3, 0, tzinfo=UTC))
    assert (status.open, status.next_change) == (True, None)
    assert read_schedule("sat 18:00-24:00").intervals == ((5 * 86400 + 18 * 3600, 6 * 86400),)


def test_unset_hours_are_always_open_in_the_time_zone() -> None:
    hours = opening_hours("America/Sao_Paulo", None)
    status = hours.at(datetime(2026, 12, 13, 3, 0, tzinfo=UTC))
    assert (status.open, status.next_change) == (True, None)
    assert status.local.strftime("%a %H:%M") == "Sun 00:00"


def test_days_may_be_listed_and_wrap_around_the_week() -> None:
    assert (
        read_schedule("Sat,sun 10:00-11:00").intervals
        == read_schedule("sat-sun 10:00-11:00").intervals
    )
    assert len(read_schedule("fri-mon 10:00-11:00").intervals) == 4


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("mon-fry 08:00-12:00", "'mon-fry' in 'mon-fry 08:00-12:00' is not a day or a range"),
        ("mon 8-12", "'8' in 'mon 8-12' is not a time from 00:00 to 24:00"),
        ("mon 08:00-24:30", "'24:30' in 'mon 08:00-24:30' is not a time"),
        ("mon 08:00-08:00", "'08:00-08:00' in 'mon 08:00-08:00' is empty"),
        ("mon 24:00-02:00", "starts at 24:00, the end of a day"),
        ("mon 08:00", "'08:00' in 'mon 08:00' is not a range like 08:00-12:00"),
        ("mon", "'mon' gives no hours"),
        ("mon 08:00-12:00; mon closed", "mon is given more than once"),
        ("sun closed", "it opens on no day of the week"),
    ],
)
def test_hours_that_cannot_be_read_say_where(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="BUSINESS_HOURS cannot be read") as caught:
        opening_hours("UTC", text)
    assert problem in str(caught.value)


def test_an_unknown_time_zone_is_named() -> None:
    for name in ("Mars/Olympus_Mons", "../etc/passwd", "America/Sao Paulo"):
        with pytest.raises(ValueError, match="is not a known IANA time zone"):
            read_timezone(name)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("timezone", "Brazil/Sao_Paulo_City", "is not a known IANA time zone name"),
        ("business_hours", "weekdays 9-5", "cannot be read: 'weekdays' in 'weekdays 9-5'"),
    ],
)
def test_a_bad_setting_stops_start_up_saying_which_and_why(
    setting: str, value: str, message: str
) -> None:
    values: dict[str, Any] = {**REQUIRED, setting: value}
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **values)  # type: ignore[call-arg]
    [problem] = caught.value.errors()
    assert problem["loc"] == (setting,)
    assert message in problem["msg"]


def test_empty_settings_count_as_unset() -> None:
    values: dict[str, Any] = {**REQUIRED, "timezone": " ", "business_hours": "", "tools_file": ""}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    [business] = settings.businesses
    assert (business.hours.zone_name, business.hours.schedule, business.tools) == ("UTC", None, ())


def test_gemini_is_told_the_local_time_and_when_the_business_opens() -> None:
    text = instruction(SHOP_HOURS, datetime(2026, 12, 11, 22, 15, tzinfo=UTC))  # Fri 19:15
    assert text == (
        "Now at the business: Friday 2026-12-11, 19:15 (America/Sao_Paulo time). "
        f"Opening hours: {SHOP}. "
        "The business is closed now; it opens tomorrow (Saturday 2026-12-12) at 08:00."
    )
    open_now = instruction(SHOP_HOURS, at("2026-12-07 09:00"))
    assert open_now.endswith("The business is open now; it closes today at 12:00.")
    unset = instruction(OpeningHours(LISBON), datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert unset == (
        "Now at the business: Wednesday 2026-07-01, 13:00 (Europe/Lisbon time). "
        "No opening hours are set: the business counts as open at any time."
    )


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "We're closed right now; our team is back on Monday at 08:00."),
        ("pt-BR", "Estamos fechados agora; nossa equipe volta na segunda-feira às 08:00."),
        ("es", "Ahora estamos cerrados; nuestro equipo vuelve el lunes a las 08:00."),
    ],
)
def test_the_user_is_told_when_staff_are_back_in_their_language(language: str, text: str) -> None:
    assert away_text(SHOP_HOURS, at("2026-12-12 13:00"), language) == text  # Saturday afternoon
    assert away_text(SHOP_HOURS, at("2026-12-07 09:00"), language) is None  # open


def test_every_weekday_has_its_words() -> None:
    every_day = opening_hours("UTC", "mon-sun 10:00-11:00")
    for day in range(7):
        moment = datetime(2026, 12, 7 + day, 12, 0, tzinfo=UTC)
        for language in ("en", "pt-BR", "es"):
            said = away_text(every_day, moment, language)
            assert said is not None and "10:00" in said and "{" not in said
