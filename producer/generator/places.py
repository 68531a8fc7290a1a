"""Home places of cardholders, and the ZIP area of a merchant's location.

The table (``places.csv``) holds the distinct cardholder home places of the real
slices (city, state, zip, lat, long, city_pop), from credit_card_transactions.csv
(first 5,000 rows) and fraudTest.csv (first 2,145 rows); lat/long rounded to 4
decimals. US towns and their populations, no persons.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from producer.generator.parameters import MERCH_ZIP_MAX_DEG, MERCHANT_RADIUS_DEG

_ZIP_BLOCK_ROWS = 16_384


@dataclass(frozen=True)
class Places:
    """The place table as columns."""

    city: tuple[str, ...]
    state: tuple[str, ...]
    zip: np.ndarray
    lat: np.ndarray
    long: np.ndarray
    pop: np.ndarray


@lru_cache(maxsize=1)
def place_table() -> Places:
    text = resources.files("producer.generator").joinpath("places.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))[1:]  # after the header
    return Places(
        city=tuple(r[0] for r in rows),
        state=tuple(r[1] for r in rows),
        zip=np.array([int(r[2]) for r in rows]),
        lat=np.array([float(r[3]) for r in rows]),
        long=np.array([float(r[4]) for r in rows]),
        pop=np.array([int(r[5]) for r in rows]),
    )


def zip_candidates(lat: np.ndarray, long: np.ndarray, places: Places) -> np.ndarray:
    """Places that can be nearest to a merchant of each customer (within the radius)."""
    reach = MERCHANT_RADIUS_DEG * np.sqrt(2.0) + MERCH_ZIP_MAX_DEG
    cos = np.cos(np.radians(lat))[:, None]
    d2 = (places.lat[None, :] - lat[:, None]) ** 2 + ((places.long[None, :] - long[:, None]) * cos) ** 2
    near = d2 <= reach**2
    width = max(1, int(near.sum(axis=1).max()))
    sentinel = len(places.zip)  # an extra place far from everything, see merchant_zip
    out = np.full((len(lat), width), sentinel, dtype=np.int64)
    for i, row in enumerate(near):
        idx = np.flatnonzero(row)
        out[i, : len(idx)] = idx
    return out


def merchant_zip(
    home_lat: np.ndarray, candidates: np.ndarray, cust: np.ndarray, lat: np.ndarray, long: np.ndarray
) -> np.ndarray:
    """ZIP of the merchant's area, 0 where no known place is near (written empty).

    ``home_lat`` and ``candidates`` are per customer (see :func:`zip_candidates`), the
    other arrays per row. The nearest known place gives the three-digit ZIP prefix (the area); the last two
    digits vary per 0.1-degree cell, so that merchants are not all on a home ZIP.
    """
    places = place_table()
    p_lat = np.append(places.lat, 1e6)  # the sentinel: never within reach
    p_long = np.append(places.long, 1e6)
    p_zip = np.append(places.zip, 0)
    cos = np.cos(np.radians(home_lat))
    out = np.zeros(len(cust), dtype=np.int64)
    for lo in range(0, len(cust), _ZIP_BLOCK_ROWS):
        block = slice(lo, lo + _ZIP_BLOCK_ROWS)
        c, b_lat, b_long = cust[block], lat[block], long[block]
        cand = candidates[c]
        d2 = (p_lat[cand] - b_lat[:, None]) ** 2 + ((p_long[cand] - b_long[:, None]) * cos[c][:, None]) ** 2
        best = d2.argmin(axis=1)
        rows = np.arange(len(c))
        near = d2[rows, best] <= MERCH_ZIP_MAX_DEG**2
        cell = np.floor(b_lat * 10).astype(np.int64) * 7919 + np.floor(b_long * 10).astype(np.int64) * 104_729
        last_two = ((cell * 2_654_435_761) >> 7) % 100
        zip_code = (p_zip[cand[rows, best]] // 100) * 100 + last_two
        out[block] = np.where(near, zip_code, 0)
    return out
