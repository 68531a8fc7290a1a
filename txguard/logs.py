"""Where log lines go and how they look: text for a terminal, or one JSON object per line
(``TXGUARD_LOG_FORMAT=json``) for a log shipper."""

from __future__ import annotations

import logging
import sys
from typing import Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The JSON keys: time (ISO 8601, UTC), level, logger, pid, message; exc_info with a traceback,
# and whatever a call passes in ``extra``.
JSON_FIELDS = "%(levelname)s %(name)s %(process)d %(message)s"
JSON_RENAMED = {"levelname": "level", "name": "logger", "process": "pid"}


def formatter(log_format: Literal["text", "json"] = "text") -> logging.Formatter:
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAMED, timestamp="time")
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(verbose: bool = False, log_format: Literal["text", "json"] = "text") -> None:
    """Log to stderr in ``log_format``, at DEBUG with ``verbose``, else INFO (botocore: WARNING)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("botocore").setLevel(logging.WARNING)
