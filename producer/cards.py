"""Card data protection: the card number (PAN) never leaves the producer.

Downstream sees a keyed HMAC token (stable per card, useless without the key) and
a masked form that hides at least 6 digits whatever the length: the first 6 and
last 4 digits for 16-19 digit numbers (what PCI DSS allows to display), the last 4
only for 11-15 digit ones (first 6 and last 4 of a 12-digit number would leave 2
digits, 1 in 100 guesses).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

MIN_HIDDEN = 6  # digits a mask always hides
SHOWN_FIRST, SHOWN_LAST = 6, 4  # at most; each only while MIN_HIDDEN stay hidden
PAN_DIGITS = (11, 19)  # the lengths a card number of the data can have

# A run of digits, whatever lies between them that is neither a letter nor a digit:
# spaces, tabs, newlines, dots, dashes, underscores, slashes, stars... (``[\W_]``
# and ``\d`` are disjoint, so the match is linear.) ``\d`` is any Unicode digit.
_DIGIT_RUN = re.compile(r"\d(?:[\W_]*\d)*")


def mask(pan: str) -> str:
    """``pan`` with at most its first 6 and last 4 digits shown, and never fewer than 6 hidden.

    16-19 digits: first 6 and last 4 (``411111******1111``); 10-15 digits: last 4
    only (``********1111``); shorter: nothing shown.
    """
    n = len(pan)
    last = SHOWN_LAST if n - SHOWN_LAST >= MIN_HIDDEN else 0
    first = SHOWN_FIRST if n - last - SHOWN_FIRST >= MIN_HIDDEN else 0
    return pan[:first] + "*" * (n - first - last) + pan[n - last :]


def _digits(run: str) -> str:
    return "".join(str(unicodedata.decimal(c)) for c in run if c.isdecimal())


def _mask_run(match: re.Match[str]) -> str:
    digits = _digits(match.group(0))
    if len(digits) < PAN_DIGITS[0]:
        return match.group(0)
    if len(digits) > PAN_DIGITS[1]:
        # Not one card number, but any 11-19 digits of it could be one: hide them all.
        return "*" * len(digits)
    return mask(digits)


def redact(text: str) -> str:
    """``text`` (NFKC-normalised) with every run of 11 or more digits masked.

    A run is digits with anything but letters between them, so ``4111.1111.1111.1111``,
    ``4111_1111``, tabs, double spaces, line breaks and fullwidth digits (``４１１１``,
    which NFKC turns into ``4111``) are caught; 11-19 digits become their mask, a
    longer run only stars.
    """
    return _DIGIT_RUN.sub(_mask_run, unicodedata.normalize("NFKC", text))


def has_card_number(text: str) -> bool:
    """Whether ``text`` holds a run of 11 or more digits: what :func:`redact` masks."""
    runs = _DIGIT_RUN.finditer(unicodedata.normalize("NFKC", text))
    return any(len(_digits(m.group(0))) >= PAN_DIGITS[0] for m in runs)


class CardProtector:
    """Tokenises card numbers with HMAC-SHA256 under a secret key.

    The tokens of the last ``cache_size`` cards are cached (an HMAC costs several times a
    lookup, and a card comes back every few rows), keyed by a BLAKE2b hash of the number
    under a random key of this object: the cache holds no card number, and is bounded.
    """

    def __init__(self, key: bytes, cache_size: int = 1 << 16):
        if len(key) < 16:
            raise ValueError("the card token key must be at least 16 bytes")
        self._key = key
        self._cache_key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[str, str]] = {}  # insertion order: the oldest card first
        self._cache_size = cache_size

    def protect(self, pan: str) -> tuple[str, str]:
        """(token, masked) for one card number."""
        number = pan.encode()
        slot = hashlib.blake2b(number, key=self._cache_key, digest_size=16).digest()
        hit = self._cache.get(slot)
        if hit is None:
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]
            token = hmac.new(self._key, number, hashlib.sha256).hexdigest()[:32]
            hit = self._cache[slot] = (token, mask(pan))
        return hit

    def fingerprint(self, data: bytes) -> str:
        """A keyed SHA-256 of ``data`` (an unparsable input line).

        Keyed, because a plain hash of a short line holding a card number could be
        reversed by trying every number of the card's issuer; domain-separated from
        the tokens, so a line that is only a card number does not give its token.
        """
        hasher = self.line_hasher()
        hasher.update(data)
        return hasher.hexdigest()

    def line_hasher(self) -> hmac.HMAC:
        """A fresh :meth:`fingerprint` to feed piece by piece (a line too long to hold whole)."""
        return hmac.new(self._key, b"txguard-line\x00", hashlib.sha256)

    def protect_many(self, pans: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """(tokens, masked) for a column of card numbers: each distinct one protected once."""
        encoded = pc.dictionary_encode(pans)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        protected = [self.protect(pan) for pan in encoded.dictionary.to_pylist()]
        tokens = pa.array([token for token, _ in protected], pa.string())
        masked = pa.array([m for _, m in protected], pa.string())
        return pc.take(tokens, encoded.indices), pc.take(masked, encoded.indices)
