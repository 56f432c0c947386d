# The service as a container: docker build -t whatsapp-assistant . (see docs/operations.md, "Docker").
FROM python:3.11.9-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app

# Dependencies in their own layer: rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The service's code: the top-level modules and the packages it runs on (not tools/, bench/,
# tests/). The app applies the migrations in storage/ at start-up; alembic.ini serves
# `alembic upgrade head`.
COPY *.py alembic.ini ./
COPY actions/ ./actions/
COPY answering/ ./answering/
COPY config/ ./config/
COPY console/ ./console/
COPY documents/ ./documents/
COPY domain/ ./domain/
COPY gemini/ ./gemini/
COPY hours/ ./hours/
COPY language/ ./language/
COPY markup/ ./markup/
COPY ops/ ./ops/
COPY service/ ./service/
COPY storage/ ./storage/
COPY voice/ ./voice/
COPY webhook/ ./webhook/

# The default DATABASE_URL (sqlite:///./data/assistant.db) writes here; keep it on a volume.
RUN mkdir -p /app/data && chown app:app /app/data
VOLUME ["/app/data"]

USER app

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)" || exit 1

# Shell form so $PORT expands; exec so uvicorn gets SIGTERM and shuts down gracefully.
CMD exec uvicorn main:app --host 0.0.0.0 --port ${PORT} --proxy-headers --forwarded-allow-ips='*'
