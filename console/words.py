"""The console's words for delivery, WhatsApp's 24-hour window and templates, in one place to
translate: the pages' templates and routes take them from here (as `words` in a template)."""

from __future__ import annotations

from domain.delivery import Delivery, Status
from webhook.events import ErrorInfo

# A sent message's latest status, as one word beside it in the transcript.
STATUS_WORDS: dict[Status, str] = {
    Status.SENT: "Sent",
    Status.DELIVERED: "Delivered",
    Status.READ: "Read",
    Status.PLAYED: "Played",
    Status.FAILED: "Failed",
}

# WhatsApp's 24-hour window, on a conversation's page (the time follows "until").
WINDOW_OPEN_UNTIL = "Window open until"
WINDOW_CLOSED = "Window closed"

# The template form.
TEMPLATES_HEADING = "Send a template"
TEMPLATES_HINT = (
    "Templates are the messages WhatsApp allows outside the 24-hour window. Only templates "
    "approved in WhatsApp Manager are listed."
)
TEMPLATE = "Template"
CHOOSE_TEMPLATE = "Choose"
SEND_TEMPLATE = "Send template"
PARAMETER = "Parameter"  # "Parameter 1", "Parameter 2", ...
NO_PARAMETERS = "This template has no parameters."
TEMPLATES_NEED_ACCOUNT = (
    "Templates need WHATSAPP_BUSINESS_ACCOUNT_ID (a business of the tenants file: waba_id), the "
    "id of the WhatsApp Business Account whose approved templates the console lists."
)
NO_TEMPLATES = "This WhatsApp Business Account has no approved templates the console can send."
TEMPLATE_SENT = "Template sent."
NOT_SENT = "Not sent."
BUSINESS_GONE = "Not sent: this conversation's business is no longer served here."
# A business whose name is not known yet (the one of PHONE_NUMBER_ID, before Meta has said it).
THIS_BUSINESS = "this business"
UNKNOWN_TEMPLATE = "Not sent: choose one of the approved templates."
TEMPLATE_CHANGED = "Not sent: fill in the parameters of the template you chose."

# A transcript's file that cannot be shown (the page says which, in its own words, too).
MEDIA_GONE = "This file is no longer available from WhatsApp, which keeps media about 30 days."
MEDIA_TOO_LARGE = "This file is too large to show here."
MEDIA_NOT_NOW = "WhatsApp did not send this file just now. Try again in a moment."


def status_word(delivery: Delivery | None) -> str | None:
    """`Sent`, `Delivered`, `Read`, `Played`, or `Failed: <title> (<code>)`; None without one."""
    if delivery is None:
        return None
    word = STATUS_WORDS[delivery.status]
    if delivery.status is not Status.FAILED:
        return word
    title = delivery.error_title or ""
    code = f"({delivery.error_code})" if delivery.error_code else ""
    detail = " ".join(part for part in (title, code) if part)
    return f"{word}: {detail}" if detail else word


def empty_parameter(label: str) -> str:
    return f"Not sent: {label} is empty. Fill in every parameter."


def refused_by_meta(error: ErrorInfo) -> str:
    """Meta's refusal of a reply or a template, with its title and code; it is not retried."""
    if error.code is None and not error.title:
        return "WhatsApp could not be reached, so nothing was sent. Try again in a moment."
    code = f" ({error.code})" if error.code else ""
    return f"WhatsApp refused it: {error.title or 'an error'}{code}. It was not sent again."


def templates_unavailable(error: ErrorInfo) -> str:
    """Why the list of templates could not be had from Meta."""
    if error.code is None and not error.title:
        return "The templates could not be loaded: WhatsApp could not be reached."
    code = f" ({error.code})" if error.code else ""
    return f"The templates could not be loaded: {error.title or 'an error'}{code}."
