"""The console's words for delivery, WhatsApp's 24-hour window and templates, in one place: each
is a msgid (English) that the page translates into its language (`_(words.X)` in a template)."""

from __future__ import annotations

import re

from console.languages import N_, Language
from domain.delivery import Delivery, Status
from webhook.events import ErrorInfo

# A sent message's latest status, as one word beside it in the transcript.
STATUS_WORDS: dict[Status, str] = {
    Status.SENT: N_("Sent"),
    Status.DELIVERED: N_("Delivered"),
    Status.READ: N_("Read"),
    Status.PLAYED: N_("Played"),
    Status.FAILED: N_("Failed"),
}

# WhatsApp's 24-hour window, on a conversation's page (the time follows "until").
WINDOW_OPEN_UNTIL = N_("Window open until")
WINDOW_CLOSED = N_("Window closed")

# The template form.
TEMPLATES_HEADING = N_("Send a template")
TEMPLATES_HINT = N_(
    "Templates are the messages WhatsApp allows outside the 24-hour window. Only templates "
    "approved in WhatsApp Manager are listed."
)
TEMPLATE = N_("Template")
CHOOSE_TEMPLATE = N_("Choose")
SEND_TEMPLATE = N_("Send template")
PARAMETER = N_("Parameter %(number)s")  # "Parameter 1", "Parameter 2", ...
NO_PARAMETERS = N_("This template has no parameters.")
TEMPLATES_NEED_ACCOUNT = N_(
    "Templates need WHATSAPP_BUSINESS_ACCOUNT_ID (a business of the tenants file: waba_id), the "
    "id of the WhatsApp Business Account whose approved templates the console lists."
)
NO_TEMPLATES = N_("This WhatsApp Business Account has no approved templates the console can send.")
TEMPLATE_SENT = N_("Template sent.")
NOT_SENT = N_("Not sent.")
BUSINESS_GONE = N_("Not sent: this conversation's business is no longer served here.")
# A business whose name is not known yet (the one of PHONE_NUMBER_ID, before Meta has said it).
THIS_BUSINESS = N_("this business")
UNKNOWN_TEMPLATE = N_("Not sent: choose one of the approved templates.")
TEMPLATE_CHANGED = N_("Not sent: fill in the parameters of the template you chose.")
_NUMBERED = re.compile(r"Parameter ([0-9]{1,3})")  # domain.templates' English labels

# A transcript's file that cannot be shown (the page says which, in its own words, too).
MEDIA_GONE = N_("This file is no longer available from WhatsApp, which keeps media about 30 days.")
MEDIA_TOO_LARGE = N_("This file is too large to show here.")
MEDIA_NOT_NOW = N_("WhatsApp did not send this file just now. Try again in a moment.")


def status_word(delivery: Delivery | None, language: Language) -> str | None:
    """`Sent`, `Delivered`, `Read`, `Played`, or `Failed: <title> (<code>)` (in the page's
    language; Meta's title as Meta wrote it); None without one."""
    if delivery is None:
        return None
    word = language.gettext(STATUS_WORDS[delivery.status])
    if delivery.status is not Status.FAILED:
        return word
    title = delivery.error_title or ""
    code = f"({delivery.error_code})" if delivery.error_code else ""
    detail = " ".join(part for part in (title, code) if part)
    return language.gettext("%(word)s: %(detail)s", word=word, detail=detail) if detail else word


def parameter_label(label: str, language: Language) -> str:
    """A template parameter's field label: a named parameter's name as it is, `Parameter 1`
    in the page's language."""
    numbered = _NUMBERED.fullmatch(label)
    return language.gettext(PARAMETER, number=numbered[1]) if numbered else label


def parameter_labels(labels: tuple[str, ...], language: Language) -> list[str]:
    return [parameter_label(label, language) for label in labels]


def empty_parameter(label: str, language: Language) -> str:
    return language.gettext("Not sent: %(label)s is empty. Fill in every parameter.", label=label)


def refused_by_meta(error: ErrorInfo, language: Language) -> str:
    """Meta's refusal of a reply or a template, with its title and code; it is not retried."""
    if error.code is None and not error.title:
        return language.gettext(
            "WhatsApp could not be reached, so nothing was sent. Try again in a moment."
        )
    title = error.title or language.gettext("an error")
    code = f" ({error.code})" if error.code else ""
    return language.gettext(
        "WhatsApp refused it: %(title)s%(code)s. It was not sent again.", title=title, code=code
    )


def templates_unavailable(error: ErrorInfo, language: Language) -> str:
    """Why the list of templates could not be had from Meta."""
    if error.code is None and not error.title:
        return language.gettext("The templates could not be loaded: WhatsApp could not be reached.")
    title = error.title or language.gettext("an error")
    code = f" ({error.code})" if error.code else ""
    return language.gettext(
        "The templates could not be loaded: %(title)s%(code)s.", title=title, code=code
    )
