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
# /metrics, /healthz and /readyz: persist on TXGUARD_METRICS_PORT, scorer +1, learner +2, retrainer +3.
EXPOSE 9400 9401 9402 9403
# Alive = the service running here answers 200 on /healthz (`txguard health`: no curl in the image).
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 CMD ["txguard", "health"]
ENTRYPOINT ["txguard"]
