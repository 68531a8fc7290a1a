# The txguard services (producer, persist, scorer) for docker-compose and production.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY txguard txguard
COPY producer producer
COPY consumers consumers
COPY model model
COPY schemas schemas
RUN pip install --no-cache-dir .
RUN useradd --create-home txguard
USER txguard
ENTRYPOINT ["txguard"]
