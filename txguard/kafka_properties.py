"""``TXGUARD_KAFKA_CONFIG``: librdkafka properties passed through as they are (read by the settings,
to refuse a bad one at start, and by :func:`txguard.connections.kafka_config`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class KafkaConfigError(ValueError):
    """``TXGUARD_KAFKA_CONFIG`` cannot be read or is not a flat mapping of properties."""


def extra_kafka_properties(value: str) -> dict[str, Any]:
    """``TXGUARD_KAFKA_CONFIG``: a JSON object, or the path of a ``.json`` or Java ``.properties`` file."""
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return _flat(_json(text, "TXGUARD_KAFKA_CONFIG"), "TXGUARD_KAFKA_CONFIG")
    path = Path(text).expanduser()
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise KafkaConfigError(f"TXGUARD_KAFKA_CONFIG: cannot read {path} ({exc.strerror})") from None
    if path.suffix == ".json":
        return _flat(_json(content.decode(), str(path)), str(path))
    from jproperties import Properties  # Java's format, escapes and continuation lines included

    properties = Properties()
    try:
        properties.load(content, "utf-8")
    except Exception as exc:  # noqa: BLE001 - jproperties raises several kinds; the message is enough
        raise KafkaConfigError(f"{path}: not a Java properties file ({type(exc).__name__})") from None
    return {key: entry.data for key, entry in properties.items()}


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # The position, not the text: the text may hold a password.
        raise KafkaConfigError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None


def _flat(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float | bool) for v in value.values()):
        raise KafkaConfigError(f"{where}: expected one JSON object of librdkafka properties "
                               '(e.g. {"ssl.endpoint.identification.algorithm": "https"})')  # fmt: skip
    return value
