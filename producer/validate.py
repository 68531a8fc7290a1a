"""Row validation against the input schema, vectorised over a block of text columns.

A row is accepted only as it stands: values a spreadsheet has damaged (a card
number in scientific notation, ``2/1/2019 1:06``, ``1.0`` for an integer) are
rejected with that reason, never repaired, because the damage lost information.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from producer.cards import has_card_number, redact
from schemas.fields import (
    BIRTH_YEARS,
    GENDER_PATTERN,
    LATITUDE,
    LONGITUDE,
    MAX_AMOUNT,
    MAX_CITY_POP,
    MAX_TEXT,
    PAN_PATTERN,
    STATE_PATTERN,
    TRANS_NUM_PATTERN,
    ZIP_PATTERN,
)
from schemas.source import CATEGORIES

# Numbers as JSON writes them (no leading zeros): accepted text is published as is.
_DIGITS = r"^(0|[1-9][0-9]*)$"
_DECIMAL = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"
_FLOAT_WRITTEN_INT = r"^[0-9]+\.0+$"
_CONTROL = r"[\x00-\x1f\x7f]"
_SCIENTIFIC = r"^-?[0-9.]+[eE][+-]?[0-9]+$"

# (column, pattern the value must match, reason when it does not)
_PATTERNS = (
    ("trans_num", TRANS_NUM_PATTERN, "trans_num is not 32 lowercase hex characters"),
    ("cc_num", PAN_PATTERN, "cc_num is not 11-19 digits"),
    ("trans_date_trans_time", r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
     "trans_date_trans_time is not YYYY-MM-DD HH:MM:SS"),
    ("dob", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "dob is not YYYY-MM-DD"),
    ("amt", r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$", "amt is not a non-negative amount with at most 2 decimals"),
    ("state", STATE_PATTERN, "state is not a 2-letter code"),
    ("is_fraud", r"^[01]$", "is_fraud is not 0 or 1"),
    ("zip", ZIP_PATTERN, "zip is not 3-5 digits"),
    ("city_pop", _DIGITS, "city_pop is not a whole number"),
    ("unix_time", _DIGITS, "unix_time is not a whole number"),
    ("lat", _DECIMAL, "lat is not a number"),
    ("long", _DECIMAL, "long is not a number"),
    ("merch_lat", _DECIMAL, "merch_lat is not a number"),
    ("merch_long", _DECIMAL, "merch_long is not a number"),
    ("merch_zipcode", r"^([0-9]{3,5}(\.0)?)?$", "merch_zipcode is not a zip code"),
    ("gender", GENDER_PATTERN, "gender is not F or M"),
)  # fmt: skip
_RANGES = (
    ("lat", *LATITUDE),
    ("long", *LONGITUDE),
    ("merch_lat", *LATITUDE),
    ("merch_long", *LONGITUDE),
    ("amt", 0.0, MAX_AMOUNT),
    ("city_pop", 0.0, MAX_CITY_POP),
)
_DATES = (
    ("trans_date_trans_time", "%Y-%m-%d %H:%M:%S", "2000-01-01 00:00:00"),
    ("dob", "%Y-%m-%d", "2000-01-01"),
)
_TEXT = ("merchant", "city", "state", "job", "first", "last", "street")
# Free text that is published: a card number in it would leave the producer. Only text
# with a digit or a non-ASCII character (NFKC makes digits of "４" and "①") can hold one.
_PUBLISHED_TEXT = ("merchant", "city")
_MAY_HOLD_DIGITS = r"[0-9]|[^\x00-\x7f]"


def mask_card_numbers(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int]:
    """``batch`` with every 11-19 digit run of its published free text masked, and how many values were.

    A card number typed into a merchant or city is published masked as the card itself is
    (:func:`producer.cards.redact`): the transaction is real, only the text is not to be seen.
    """
    masked = 0
    for column in _PUBLISHED_TEXT:
        values = batch.column(column)
        suspects = pc.indices_nonzero(pc.match_substring_regex(values, _MAY_HOLD_DIGITS)).to_pylist()
        found = {i: redact(text) for i in suspects if has_card_number(text := values[i].as_py())}
        if found:
            texts = values.to_pylist()
            for i, text in found.items():
                texts[i] = text
            batch = batch.set_column(batch.schema.get_field_index(column), column, pa.array(texts, pa.string()))
            masked += len(found)
    return batch, masked


class TransNumSet:
    """The trans_nums seen so far, 16 bytes each in sorted numpy runs (not Python objects).

    1.3M ids take ~21 MB instead of ~100 MB as a Python set. Runs merge when a newer
    one has grown as large as the one before it (size-tiered), so each id is merged
    O(log n) times and a lookup is a binary search per run (O(log n) runs).
    """

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    def add_new(self, trans_nums: list[str]) -> list[int]:
        """Add the ids; return the positions of those already seen (here or before)."""
        keys = np.frombuffer(bytes.fromhex("".join(trans_nums)), dtype="S16") if trans_nums else np.array([], "S16")
        _, first = np.unique(keys, return_index=True)
        dup = np.ones(len(keys), dtype=bool)
        dup[first] = False  # a repeat inside this block
        for run in self.runs:
            pos = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            dup |= run[pos] == keys
        fresh = np.sort(keys[~dup])
        if len(fresh):
            self.runs.append(fresh)
        while len(self.runs) > 1 and len(self.runs[-1]) >= len(self.runs[-2]):
            newer = self.runs.pop()
            self.runs[-1] = np.sort(np.concatenate([self.runs[-1], newer]), kind="stable")
        return np.flatnonzero(dup).tolist()


@dataclass
class Verdict:
    """Which rows of a block passed, and why each of the others did not."""

    accepted: pa.Array  # boolean mask
    reasons: dict[int, list[str]]


def _damage_hint(column: str, values: pa.Array, bad: list[int]) -> dict[int, str]:
    """A more precise reason for the typical spreadsheet damage."""
    hints: dict[int, str] = {}
    for i in bad:
        v = values[i].as_py()
        shown = redact(v)  # before repr: its escapes (a tab as \\t) would split a digit run in two
        if pc.match_substring_regex(v, _SCIENTIFIC).as_py():
            hints[i] = f"{column} is in scientific notation ({shown!r}): digits were lost, re-export the file"
        elif pc.match_substring_regex(v, _FLOAT_WRITTEN_INT).as_py():
            hints[i] = f"{column} is written as a decimal ({shown!r}): the file was re-saved by a spreadsheet"
        elif column in ("trans_date_trans_time", "dob") and "/" in v:
            hints[i] = f"{column} is in a spreadsheet date format ({shown!r}), expected YYYY-MM-DD"
    return hints


def validate(batch: pa.RecordBatch, seen_trans_nums: TransNumSet) -> Verdict:
    """Check every row of ``batch``; ``seen_trans_nums`` spans the file (duplicates)."""
    reasons: dict[int, list[str]] = defaultdict(list)
    cols = {name: batch.column(name) for name in batch.schema.names}

    def reject(mask: pa.Array, reason: str, column: str | None = None) -> None:
        bad = pc.indices_nonzero(mask).to_pylist()
        hints = _damage_hint(column, cols[column], bad) if column else {}
        for i in bad:
            reasons[i].append(hints.get(i, reason))

    for column, pattern, reason in _PATTERNS:
        if column in cols:
            reject(pc.invert(pc.match_substring_regex(cols[column], pattern)), reason, column)
    for column, low, high in _RANGES:
        numeric = pc.if_else(pc.match_substring_regex(cols[column], _DECIMAL), cols[column], "0")
        as_float = pc.cast(numeric, pa.float64())
        out = pc.or_(pc.less(as_float, low), pc.greater(as_float, high))
        reject(out, f"{column} is out of range [{low:g}, {high:g}]")
    for column, fmt, placeholder in _DATES:
        shaped = pc.match_substring_regex(cols[column], _PATTERNS_BY_COLUMN[column])
        text = pc.if_else(shaped, cols[column], placeholder)
        parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
        # strptime rolls 2019-02-30 over to March 2: a real date keeps its day of month.
        written_day = pc.cast(pc.utf8_slice_codeunits(text, 8, 10), pa.int64())
        real = pc.fill_null(pc.equal(pc.day(parsed), written_day), False)
        reject(pc.and_(shaped, pc.invert(real)), f"{column} is not a real date")
    known = pc.is_in(cols["category"], value_set=pa.array(CATEGORIES))
    reject(pc.invert(known), f"category is not one of the {len(CATEGORIES)} known categories")
    for column in _TEXT:
        reject(pc.greater(pc.utf8_length(cols[column]), MAX_TEXT), f"{column} is longer than {MAX_TEXT} characters")
    # One search over all text columns; name the column only when something was found.
    if pc.any(pc.match_substring_regex(pc.binary_join_element_wise(*(cols[c] for c in _TEXT), ""), _CONTROL)).as_py():
        for column in _TEXT:
            reject(pc.match_substring_regex(cols[column], _CONTROL), f"{column} contains a control character")
    year = pc.cast(pc.if_else(pc.match_substring_regex(cols["dob"], r"^[0-9]{4}"),
                              pc.utf8_slice_codeunits(cols["dob"], 0, 4), "2000"), pa.int32())  # fmt: skip
    first_year, last_year = BIRTH_YEARS
    reject(pc.or_(pc.less(year, first_year), pc.greater(year, last_year)),
           f"dob year is out of range [{first_year}, {last_year}]")  # fmt: skip

    still_good = [i for i in range(batch.num_rows) if i not in reasons]
    if still_good:
        ids = pc.take(cols["trans_num"], pa.array(still_good)).to_pylist()
        for i in seen_trans_nums.add_new(ids):
            reasons[still_good[i]].append("duplicate trans_num (already seen in this file)")

    accepted = [True] * batch.num_rows
    for i in reasons:
        accepted[i] = False
    return Verdict(pa.array(accepted, pa.bool_()), dict(reasons))


_PATTERNS_BY_COLUMN = {column: pattern for column, pattern, _ in _PATTERNS}
