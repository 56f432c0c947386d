"""Opening hours in answers: Gemini told the business's local time and whether it is open, and a
person asked for while it is closed (the reply says when staff are back; the team's notice says
it came outside hours)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import httpx
from helpers import Harness, make_settings, running_app, text_payload
from respx_upstreams import FakeUpstreams

from answering.handoff import Handoff
from answering.inbound import Question
from answering.job import Job
from domain.businesses import Business
from domain.types import ConversationState
from hours.schedule import DAYS, Clock, opening_hours
from hours.words import WEEKDAYS
from language.replies import Reply, reply_text
from storage.inbox import InboxRow
from storage.states import Conversation
from storage.store import Store
from whatsapp import GraphClient

HOOK = "https://hooks.test/services/T000/B000/XXXX"
BRAZILIAN = "5511987654321"
ZONE = "America/Sao_Paulo"
BACK_ON_PT = {
    0: "na segunda-feira",
    1: "na terça-feira",
    2: "na quarta-feira",
    3: "na quinta-feira",
    4: "na sexta-feira",
    5: "no sábado",
    6: "no domingo",
}


def opening_day() -> int:
    """A weekday the business is closed today and tomorrow before: the day after tomorrow."""
    return (datetime.now(ZoneInfo(ZONE)).weekday() + 2) % 7


async def say(app: Harness, text: str, message_id: str, wa_id: str = BRAZILIAN) -> None:
    payload = text_payload(text, message_id=message_id, wa_id=wa_id)
    assert (await app.post(payload)).status_code == 200
    await app.settle()


async def test_gemini_is_told_the_local_time_and_that_the_business_is_closed(
    fakes: FakeUpstreams, tmp_path: Path
) -> None:
    day = opening_day()
    settings = make_settings(
        f"sqlite:///{tmp_path}/hours.db",
        timezone=ZONE,
        business_hours=f"{DAYS[day]} 08:00-12:00",
    )
    async with running_app(settings, fakes) as app:
        await say(app, "Are you open?", "wamid.o1")
    instruction = fakes.gemini_bodies()[0]["systemInstruction"]["parts"][0]["text"]
    assert (
        f"Now at the business: {WEEKDAYS[datetime.now(ZoneInfo(ZONE)).weekday()]} " in instruction
    )
    assert f"({ZONE} time)" in instruction
    assert f"Opening hours: {DAYS[day]} 08:00-12:00." in instruction
    opens = (datetime.now(ZoneInfo(ZONE)) + timedelta(days=2)).date().isoformat()
    assert (
        f"The business is closed now; it opens on {WEEKDAYS[day]} {opens} at 08:00." in instruction
    )


async def test_a_person_asked_for_while_closed_hears_when_staff_are_back(
    fakes: FakeUpstreams, tmp_path: Path
) -> None:
    day = opening_day()
    hook = fakes.router.post(HOOK).mock(return_value=httpx.Response(200, text="ok"))
    settings = make_settings(
        f"sqlite:///{tmp_path}/closed.db",
        timezone=ZONE,
        business_hours=f"{DAYS[day]} 08:00-12:00",
        console_password="an-admin-password-for-tests",
        handoff_webhook_url=HOOK,
        business_name="Padaria Central",
    )
    async with running_app(settings, fakes) as app:
        await say(app, "/human", "wamid.h1")
    [reply] = [m["text"]["body"] for m in fakes.sent()]
    assert reply == (
        f"{reply_text(Reply.HANDOFF, 'pt-BR')} Estamos fechados agora; nossa equipe volta "
        f"{BACK_ON_PT[day]} às 08:00."
    )
    [notice] = [json.loads(call.request.content)["text"] for call in hook.calls]
    assert notice.startswith("Padaria Central: a customer (…4321) is waiting for a person. ")
    assert "They asked outside business hours." in notice


async def test_a_person_asked_for_while_open_gets_the_usual_reply(
    fakes: FakeUpstreams, tmp_path: Path
) -> None:
    hook = fakes.router.post(HOOK).mock(return_value=httpx.Response(200, text="ok"))
    settings = make_settings(
        f"sqlite:///{tmp_path}/open.db",
        timezone=ZONE,
        business_hours="mon-sun 00:00-24:00",
        console_password="an-admin-password-for-tests",
        handoff_webhook_url=HOOK,
    )
    async with running_app(settings, fakes) as app:
        await say(app, "/human", "wamid.h2", wa_id="16505551234")
    assert [m["text"]["body"] for m in fakes.sent()] == [reply_text(Reply.HANDOFF, "en")]
    [notice] = [json.loads(call.request.content)["text"] for call in hook.calls]
    assert "outside business hours" not in notice


def fixed(moment: datetime) -> Clock:
    return lambda: moment


def job_at(wa_id: str, business: Business) -> Job:
    row = InboxRow(
        id=1,
        message_id="wamid.x",
        conversation_key=f"{business.phone_number_id}:{wa_id}",
        phone_number_id=business.phone_number_id,
        recipient=wa_id,
        kind="text",
        text="/human",
        payload={},
        sent_at=0,
        received_at=0.0,
        attempts=1,
        reply=None,
        parts_sent=0,
    )
    conversation = Conversation(
        7,
        row.conversation_key,
        row.phone_number_id,
        wa_id,
        wa_id,
        None,
        ConversationState.ASSISTANT,
        None,
        0.0,
        None,
        None,
        0.0,
    )
    return Job(row, business, cast(GraphClient, None), conversation, Question("/human", "/human"))


def test_the_handoff_reads_the_clock_it_is_given_across_midnight_and_the_weekend(
    fakes: FakeUpstreams, tmp_path: Path
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/clock.db", console_password="a-long-password")
    business = Business(
        "Padaria",
        "111111111111111",
        hours=opening_hours(ZONE, "mon-fri 08:00-18:00; sat 08:00-12:00"),
    )
    job = job_at("5511900001111", business)
    moments = {  # UTC instants: São Paulo is three hours behind
        datetime(2026, 12, 12, 2, 59, tzinfo=UTC): "no sábado às 08:00",  # Fri 23:59
        datetime(2026, 12, 12, 3, 0, tzinfo=UTC): "no sábado às 08:00",  # Sat 00:00
        datetime(2026, 12, 12, 15, 1, tzinfo=UTC): "na segunda-feira às 08:00",  # Sat 12:01
        datetime(2026, 12, 14, 2, 0, tzinfo=UTC): "na segunda-feira às 08:00",  # Sun 23:00
    }
    for moment, back in moments.items():
        handoff = Handoff(settings, cast(Store, None), None, fixed(moment))
        outcome = handoff.asked(job, "asked")
        assert outcome.text is not None and outcome.text.endswith(f"volta {back}.")
        assert outcome.handoff is not None and outcome.handoff.outside_hours
    open_moment = datetime(2026, 12, 14, 11, 0, tzinfo=UTC)  # Monday 08:00
    handoff = Handoff(settings, cast(Store, None), None, fixed(open_moment))
    outcome = handoff.asked(job, "asked")
    assert outcome.reply == reply_text(Reply.HANDOFF, "pt-BR")
    assert outcome.handoff is not None and not outcome.handoff.outside_hours
