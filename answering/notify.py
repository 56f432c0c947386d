"""Telling the team a customer waits for a person: a JSON POST to HANDOFF_WEBHOOK_URL."""

from __future__ import annotations

import logging

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from domain.businesses import BusinessNames

log = logging.getLogger(__name__)

ATTEMPTS = 3


def handoff_text(
    business: str, user_id: str, link: str | None, *, outside_hours: bool = False
) -> str:
    """The notice: which business (as people know it: "" when not yet known), the last digits
    of the number, whether it came while the business is closed, a console link; no content."""
    tail = user_id[-4:] if user_id[-4:].isdigit() else "user"
    customer = f"a customer (…{tail}) is waiting for a person."
    text = f"{business}: {customer}" if business else customer[0].upper() + customer[1:]
    if outside_hours:
        text += " They asked outside business hours."
    return f"{text} Open the conversation: {link}" if link else text


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


class Notifier:
    """Posts `{"text": ...}` (Slack's and Google Chat's incoming-webhook shape); never raises."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, names: BusinessNames | None = None
    ) -> None:
        self._http = http
        self._url = url
        self._names = names

    async def handoff(
        self, business: str, user_id: str, link: str | None, *, outside_hours: bool = False
    ) -> bool:
        """`business`: its key; the notice shows its name (BusinessNames)."""
        shown = self._names.shown(business) if self._names is not None else business
        payload = {"text": handoff_text(shown, user_id, link, outside_hours=outside_hours)}
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=0.5, max=4),
            retry=retry_if_exception(_worth_retrying),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._http.post(self._url, json=payload)
                    response.raise_for_status()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.warning("handoff notification failed (%s)", type(exc).__name__)
            return False
        return True
