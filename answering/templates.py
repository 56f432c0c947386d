"""Templates from the console: each business's approved ones (kept 10 minutes), and sending one.

A template is the only message WhatsApp allows outside the 24-hour window, so it is offered in
either state of the window. Sending one takes the conversation over, as an operator's reply
does, and goes into the transcript as its body with the parameters filled in.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from answering.operators import OperatorDesk, meta_error
from domain.businesses import Business
from domain.templates import Template, templates_of
from domain.types import ConversationState
from ops.logs import short_hash
from storage.states import Conversation
from storage.store import Store
from webhook.events import ErrorInfo
from whatsapp import GraphAPIError, GraphClient

log = logging.getLogger(__name__)

CACHE_SECONDS = 600.0  # Meta's list is asked for at most every 10 minutes per account
MAX_PARAMETER_CHARS = 1024


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What a business can send: its templates, or why there are none to offer."""

    templates: tuple[Template, ...] = ()
    configured: bool = True  # False: the business has no WhatsApp Business Account id
    error: ErrorInfo | None = None  # Meta's refusal to list them

    def find(self, key: str) -> Template | None:
        return next((t for t in self.templates if t.key == key), None)


class Refusal(enum.StrEnum):
    """Why a template was not sent; the console puts each in words."""

    NOT_CONFIGURED = "not_configured"
    NO_BUSINESS = "no_business"
    UNKNOWN_TEMPLATE = "unknown_template"
    PARAMETERS_CHANGED = "parameters_changed"
    EMPTY_PARAMETER = "empty_parameter"
    META = "meta"


@dataclass(frozen=True, slots=True)
class TemplateSent:
    """Whether the template went out; if not, why (the empty field's label, Meta's error)."""

    sent: bool
    refusal: Refusal | None = None
    label: str | None = None
    error: ErrorInfo | None = None


class TemplateDesk:
    """Lists and sends templates through each business's Graph client and token."""

    def __init__(
        self,
        store: Store,
        graphs: Mapping[str, GraphClient],
        desk: OperatorDesk,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._store = store
        self._graphs = graphs
        self._desk = desk
        self.clock = clock  # tests move it
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str], tuple[float, tuple[Template, ...]]] = {}

    async def catalogue(self, business: Business) -> Catalogue:
        """The business's approved templates that the console can send, from Meta at most every
        CACHE_SECONDS (a failure is not kept: the next page asks again)."""
        graph = self._graphs.get(business.phone_number_id)
        if business.waba_id is None or graph is None:
            return Catalogue(configured=False)
        key = (business.waba_id, business.phone_number_id)
        kept = self._cache.get(key)
        now = self.clock()
        if kept is not None and now - kept[0] < self._cache_seconds:
            return Catalogue(kept[1])
        try:
            entries = await graph.message_templates(business.waba_id)
        except GraphAPIError as exc:
            log.warning("templates of %s not listed: %s", business.name, exc)
            return Catalogue(error=meta_error(exc))
        templates = tuple(templates_of(entries))
        self._cache[key] = (now, templates)
        log.info("%d template(s) listed for %s", len(templates), business.name)
        return Catalogue(templates)

    async def send(
        self,
        conversation: Conversation,
        business: Business | None,
        operator: str,
        key: str,
        values: Sequence[str],
    ) -> TemplateSent:
        """Send the template named by `key` with these body parameters, once: Meta's refusal is
        reported, not retried. Nothing is sent while a parameter is empty."""
        if business is None or business.phone_number_id not in self._graphs:
            return TemplateSent(False, Refusal.NO_BUSINESS)
        catalogue = await self.catalogue(business)
        if not catalogue.configured:
            return TemplateSent(False, Refusal.NOT_CONFIGURED)
        if catalogue.error is not None:
            return TemplateSent(False, Refusal.META, error=catalogue.error)
        template = catalogue.find(key)
        if template is None:
            return TemplateSent(False, Refusal.UNKNOWN_TEMPLATE)
        values = [value.strip()[:MAX_PARAMETER_CHARS] for value in values]
        if len(values) != len(template.parameters):
            return TemplateSent(False, Refusal.PARAMETERS_CHANGED)
        for label, value in zip(template.labels, values, strict=True):
            if not value:
                return TemplateSent(False, Refusal.EMPTY_PARAMETER, label=label)
        if (
            conversation.state is not ConversationState.OPERATOR
            or conversation.operator != operator
        ):
            await self._desk.take_over(conversation, operator)
        graph = self._graphs[business.phone_number_id]
        try:
            wamid = await graph.send_template(
                conversation.recipient,
                template.name,
                template.language,
                template.components(values),
            )
        except GraphAPIError as exc:
            log.warning(
                "template %s to %s refused: %s",
                template.name,
                short_hash(conversation.conversation_key),
                exc,
            )
            return TemplateSent(False, Refusal.META, error=meta_error(exc))
        await self._desk.keep_sent(conversation, wamid, "template")
        await self._store.states.operator_wrote(
            conversation.conversation_key,
            operator,
            [template.filled(values)],
            sent=[wamid] if wamid else [],
            detail=f"template {template.name} ({template.language})",
        )
        log.info("template %s sent in %s", template.name, short_hash(conversation.conversation_key))
        return TemplateSent(True)
