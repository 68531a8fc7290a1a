"""Card data protection: the card number (PAN) never leaves the producer.

Downstream sees a keyed HMAC token (stable per card, useless without the key) and
a masked form keeping the first 6 and last 4 digits, as PCI DSS allows to display.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# 11-19 digits, also written in groups separated by single spaces or dashes.
_PAN_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){10,18}(?![0-9])")


def mask(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def redact(text: str) -> str:
    """Mask every 11-19 digit run in free text (rejected rows, log lines)."""
    return _PAN_RUN.sub(lambda m: mask(re.sub(r"[ -]", "", m.group(0))), text)


class CardProtector:
    """Tokenises card numbers with HMAC-SHA256 under a secret key; caches per card."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("the card token key must be at least 16 bytes")
        self._key = key
        self._cache: dict[str, tuple[str, str]] = {}

    def protect(self, pan: str) -> tuple[str, str]:
        """(token, masked) for one card number."""
        hit = self._cache.get(pan)
        if hit is None:
            token = hmac.new(self._key, pan.encode(), hashlib.sha256).hexdigest()[:32]
            hit = self._cache[pan] = (token, mask(pan))
        return hit
