# The txguard services (producer, persist, scorer, learner) for docker-compose and production.
# Checked by tests/unit/test_dockerfile.py (no Docker engine needed).

# Build stage: a wheel of the project's own files, nothing else from the context.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY model model
COPY streaming streaming
COPY producer producer
COPY consumers consumers
COPY txguard txguard
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# Runtime stage: the wheel and its dependencies, run as a user without privileges.
FROM python:3.11-slim
COPY --from=build /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist
# /state is TXGUARD_HOME (model registry, replay checkpoints): made here and owned by the
# service user, so a named volume mounted on it starts out writable by that user.
RUN useradd --create-home --uid 10001 txguard && mkdir /state && chown txguard:txguard /state
ENV TXGUARD_HOME=/state \
    TXGUARD_METRICS_PORT=9400 \
    PYTHONUNBUFFERED=1
USER txguard
WORKDIR /state
EXPOSE 9400
# Alive = the service's /healthz answers 200 (urllib raises on anything else; the image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['TXGUARD_METRICS_PORT']}/healthz\", timeout=4)"]
ENTRYPOINT ["txguard"]
