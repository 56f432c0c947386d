"""The baseline of the acknowledgement benchmark: a bare FastAPI endpoint that reads the body.

Served by `uvicorn bench.bare:app` with the same flags as the service, so the ratio of the two
shows what the service adds (signature check, parsing, the database insert, the worker beside it).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI(docs_url=None, redoc_url=None)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/webhook")
async def webhook(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"status": "ok"})
