"""The console's Knowledge page: a business's documents, listed, uploaded and deleted."""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from fastapi import Form, Request, Response

from console.knowledge_data import KnowledgeData, KnowledgeRefused
from console.knowledge_upload import UploadProblem, human_size, read_upload
from console.web import PREFIX, OperatorDep, not_found, redirect_with_flash, render
from ops.logs import short_hash
from storage.operators import Operator

log = logging.getLogger("console")

PAGE = f"{PREFIX}/knowledge"
STATES = {"active": "Ready", "pending": "Processing", "failed": "Failed"}
SOURCES = {"folder": "From the folder", "console": "Uploaded here"}


def knowledge_of(request: Request) -> KnowledgeData:
    return cast(KnowledgeData, request.app.state.knowledge_data)


# ---------------------------------------------------------------------------------------------
# Which business


def served(request: Request, operator: Operator) -> list[str]:
    """The businesses with documents this operator may act for (the admin: all)."""
    names = knowledge_of(request).business_names()
    return names if operator.scope is None else [n for n in names if n in operator.scope]


def chosen(request: Request, operator: Operator, business: str) -> str | None:
    """The business asked for, or the first served when none is; another's answers 404."""
    businesses = served(request, operator)
    if not business:
        return businesses[0] if businesses else None
    if business not in businesses:
        raise not_found()
    return business


def page_url(business: str) -> str:
    return f"{PAGE}?{urlencode({'business': business})}"


def back(request: Request, business: str, kind: str, text: str) -> Response:
    return redirect_with_flash(request, page_url(business), kind, text)


# ---------------------------------------------------------------------------------------------
# The page, and its table alone for live updates


async def listing(request: Request, business: str) -> dict[str, Any]:
    """The table's context: the documents by title, or the reason Google gave none."""
    try:
        documents = await knowledge_of(request).documents(business)
        problem = None
    except KnowledgeRefused as refused:
        documents, problem = [], refused.reason
    documents.sort(key=lambda d: (d.title.casefold(), d.name))
    return {
        "business": business,
        "documents": documents,
        "problem": problem,
        "processing": any(d.state == "pending" for d in documents),
        "from_folder": any(d.source == "folder" for d in documents),
        "states": STATES,
        "sources": SOURCES,
        "size": human_size,
        "live_url": f"{PREFIX}/live/knowledge?{urlencode({'business': business})}",
    }


async def knowledge_page(request: Request, operator: OperatorDep, business: str = "") -> Response:
    name = chosen(request, operator, business)
    businesses = served(request, operator)
    knowledge = knowledge_of(request)
    allowed = sorted(knowledge.allowed_types())
    context: dict[str, Any] = {
        "business": name,
        "businesses": [(b, page_url(b), b == name) for b in businesses],
        "accept": ",".join(allowed),
        "allowed": ", ".join(allowed),
        "max_bytes": knowledge.max_upload_bytes(),
        "max_size": human_size(knowledge.max_upload_bytes()),
        "upload_url": f"{PAGE}/upload?{urlencode({'business': name or ''})}",
    }
    if name is not None:
        context.update(await listing(request, name))
    return render(request, "knowledge.html", **context)


async def knowledge_rows(request: Request, operator: OperatorDep, business: str = "") -> Response:
    """The documents' table alone, which the page's script swaps in while some are processing."""
    name = chosen(request, operator, business)
    if name is None:
        raise not_found()
    return render(request, "_knowledge_rows.html", partial=True, **await listing(request, name))


# ---------------------------------------------------------------------------------------------
# Actions


async def upload(request: Request, operator: OperatorDep, business: str = "") -> Response:
    """Check the document (size, type) before handing it on; a refusal hands on nothing."""
    name = chosen(request, operator, business)
    if name is None:
        raise not_found()
    knowledge = knowledge_of(request)
    limit = knowledge.max_upload_bytes()
    try:
        document = await read_upload(request, limit, knowledge.allowed_types())
    except UploadProblem as problem:
        log.info("knowledge upload by %s refused: %s", _who(operator), problem.kind)
        if problem.too_large:
            return render(
                request, "knowledge_refused.html", 413, message=problem.reason, back=page_url(name)
            )
        return back(request, name, "error", problem.reason)
    try:
        await knowledge.upload(name, document.filename, document.data, document.mime_type)
    except KnowledgeRefused as refused:
        return back(request, name, "error", f"Not uploaded. {refused.reason}")
    log.info("knowledge upload by %s: %d bytes", _who(operator), len(document.data))
    text = f"Uploaded {document.filename}. The assistant uses it once it is Ready."
    return back(request, name, "ok", text)


async def delete(
    request: Request,
    operator: OperatorDep,
    business: Annotated[str, Form()] = "",
    document: Annotated[str, Form()] = "",
) -> Response:
    """Delete one of the business's documents: only a name its own list shows."""
    name = chosen(request, operator, business)
    if name is None or not business:
        raise not_found()
    knowledge = knowledge_of(request)
    try:
        found = next((d for d in await knowledge.documents(name) if d.name == document), None)
        if found is None:
            return back(request, name, "error", "Not deleted: that document is not there.")
        await knowledge.delete(name, found.name)
    except KnowledgeRefused as refused:
        return back(request, name, "error", f"Not deleted. {refused.reason}")
    log.info("knowledge document deleted by %s", _who(operator))
    text = f"Deleted {found.title}."
    if found.source == "folder":
        text += " The next sync uploads it again while its file is in the folder."
    return back(request, name, "ok", text)


def _who(operator: Operator) -> str:
    return short_hash(operator.username)
