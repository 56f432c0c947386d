"""The console's Knowledge page: a business's documents, listed, uploaded and deleted."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Request, Response

from console.knowledge_upload import Incoming, UploadProblem, read_upload
from console.languages import N_
from console.web import (
    PREFIX,
    OperatorDep,
    console_of,
    language_of,
    not_found,
    redirect_with_flash,
    render,
)
from documents.filesearch import Document, KnowledgeError
from documents.sync import MIME_TYPES
from domain.businesses import Business
from ops.logs import short_hash
from storage.operators import Operator

log = logging.getLogger("console")

PAGE = f"{PREFIX}/knowledge"
STATES = {"active": N_("Ready"), "pending": N_("Processing"), "failed": N_("Failed")}
SOURCES = {"folder": N_("From the folder"), "console": N_("Uploaded here")}


# ---------------------------------------------------------------------------------------------
# Which business


def served(request: Request, operator: Operator) -> list[Business]:
    """The businesses with documents this operator may act for (the admin: all)."""
    businesses = console_of(request).settings.businesses
    return [b for b in businesses if operator.scope is None or b.name in operator.scope]


def chosen(request: Request, operator: Operator, business: str) -> Business | None:
    """The business asked for, or the first served when none is; another's answers 404."""
    businesses = served(request, operator)
    if not business:
        return businesses[0] if businesses else None
    found = next((b for b in businesses if b.name == business), None)
    if found is None:
        raise not_found()
    return found


def page_url(business: str) -> str:
    return f"{PAGE}?{urlencode({'business': business})}"


def back(request: Request, business: str, kind: str, text: str, **values: object) -> Response:
    """To the business's page, saying `text` (a msgid, with its values) in the operator's
    language."""
    said = language_of(request).gettext(text, **values)
    return redirect_with_flash(request, page_url(business), kind, said)


# ---------------------------------------------------------------------------------------------
# The page, and its table alone for live updates


async def listing(request: Request, business: Business) -> dict[str, Any]:
    """The table's context: the documents by title, or the reason Google gave none."""
    console, language = console_of(request), language_of(request)
    try:
        documents = await console.library.documents(business)
        problem = None
    except KnowledgeError as exc:
        documents = []
        problem = language.gettext(
            "Gemini File Search could not be reached: %(reason)s", reason=exc.reason
        )
    else:
        documents += not_listed_yet(documents, console.uploads.under_way(business.name))
    documents.sort(key=lambda d: (d.display_name.casefold(), d.name))
    return {
        "business": business.name,
        "documents": documents,
        "problem": problem,
        "processing": any(d.state == "pending" for d in documents),
        "from_folder": any(d.source == "folder" for d in documents),
        "states": {state: language.gettext(word) for state, word in STATES.items()},
        "sources": {source: language.gettext(word) for source, word in SOURCES.items()},
        "size": language.size,
        "live_url": f"{PREFIX}/live/knowledge?{urlencode({'business': business.name})}",
    }


def not_listed_yet(documents: list[Document], incoming: list[Incoming]) -> list[Document]:
    """Uploads under way that File Search does not list yet, as Processing rows (no name: they
    cannot be deleted yet); an upload it lists as processing under its title stands for one."""
    listed = Counter(d.display_name for d in documents if d.state == "pending")
    rows: list[Document] = []
    for upload in incoming:
        if listed[upload.filename] > 0:
            listed[upload.filename] -= 1
            continue
        started = datetime.fromtimestamp(upload.started, UTC)
        size = upload.size_bytes
        rows.append(Document("", upload.filename, "pending", size, "", None, "console", started))
    return rows


async def knowledge_page(request: Request, operator: OperatorDep, business: str = "") -> Response:
    found = chosen(request, operator, business)
    name = found.name if found else None
    limit = console_of(request).max_upload_bytes
    allowed = sorted(MIME_TYPES)
    context: dict[str, Any] = {
        "business": name,
        "businesses": [
            (b.name, page_url(b.name), b.name == name) for b in served(request, operator)
        ],
        "accept": ",".join(allowed),
        "allowed": ", ".join(allowed),
        "max_bytes": limit,
        "max_size": language_of(request).size(limit),
        "upload_url": f"{PAGE}/upload?{urlencode({'business': name or ''})}",
    }
    if found is not None:
        context.update(await listing(request, found))
    return render(request, "knowledge.html", **context)


async def knowledge_rows(request: Request, operator: OperatorDep, business: str = "") -> Response:
    """The documents' table alone, which the page's script swaps in while some are processing."""
    found = chosen(request, operator, business)
    if found is None:
        raise not_found()
    return render(request, "_knowledge_rows.html", partial=True, **await listing(request, found))


# ---------------------------------------------------------------------------------------------
# Actions


async def upload(request: Request, operator: OperatorDep, business: str = "") -> Response:
    """Check the document (size, type) before handing it on; a refusal hands on nothing.
    Google processes it in the background: the page lists it as Processing meanwhile."""
    found = chosen(request, operator, business)
    if found is None:
        raise not_found()
    console = console_of(request)
    try:
        document = await read_upload(request, console.max_upload_bytes, MIME_TYPES)
    except UploadProblem as problem:
        log.info("knowledge upload by %s refused: %s", _who(operator), problem.kind)
        if problem.too_large:
            return render(
                request,
                "knowledge_refused.html",
                413,
                message=problem.text(language_of(request)),
                back=page_url(found.name),
            )
        return redirect_with_flash(
            request, page_url(found.name), "error", problem.text(language_of(request))
        )
    console.uploads.start(console.library, found, document)
    log.info("knowledge upload by %s: %d bytes", _who(operator), len(document.data))
    text = N_("Uploaded %(name)s. The assistant uses it once it is Ready.")
    return back(request, found.name, "ok", text, name=document.filename)


async def delete(
    request: Request,
    operator: OperatorDep,
    business: Annotated[str, Form()] = "",
    document: Annotated[str, Form()] = "",
) -> Response:
    """Delete one of the business's documents: only a name its own list shows."""
    found = chosen(request, operator, business)
    if found is None or not business:
        raise not_found()
    library = console_of(request).library
    try:
        listed = next((d for d in await library.documents(found) if d.name == document), None)
        if listed is None:
            gone = N_("Not deleted: that document is not there.")
            return back(request, found.name, "error", gone)
        await library.delete(found, listed.name)
    except KnowledgeError as exc:
        refused = N_("Not deleted. Gemini File Search refused: %(reason)s")
        return back(request, found.name, "error", refused, reason=exc.reason)
    log.info("knowledge document deleted by %s", _who(operator))
    text = N_("Deleted %(name)s.")
    if listed.source == "folder":
        text = N_(
            "Deleted %(name)s. The next sync uploads it again while its file is in the folder."
        )
    return back(request, found.name, "ok", text, name=listed.display_name)


def _who(operator: Operator) -> str:
    return short_hash(operator.username)
