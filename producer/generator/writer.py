"""Writing the file: rows formatted as the real file writes them, month by month."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

import numpy as np

from producer.generator.clock import Calendar, build_calendar
from producer.generator.months import Episodes, draw_episodes, month_rows
from producer.generator.people import Customers, draw_customers, merchant_pool
from producer.generator.profiles import profile_table
from schemas.source import INDEX_COLUMN_NAMES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS

# The header of the real credit_card_transactions.csv: pandas named the index column.
COLUMNS: tuple[str, ...] = (INDEX_COLUMN_NAMES[1], *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
_FORMAT_ROWS = 25_000  # rows formatted and written at a time (bounds memory)


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote."""

    rows: int
    frauds: int
    cards: int
    path: Path
    seconds: float


_CLOCK = tuple(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60))


def _format_rows(rows: dict[str, np.ndarray], first_index: int, customers: Customers, cal: Calendar) -> str:
    merchant_text, _ = merchant_pool()
    card, person, day_text = customers.card_text, customers.person_text, cal.day_text
    hex_text = np.ascontiguousarray(rows["trans_num"]).tobytes().hex()
    trans_num = [hex_text[k : k + 32] for k in range(0, len(hex_text), 32)]
    zips = [f"{z}.0" if z else "" for z in rows["merch_zip"].tolist()]
    lines = [
        f"{i},{day_text[d]} {_CLOCK[s]},{card[c]},{merchant_text[m]},{a},{person[c]},{t},{u},{la},{lo},{int(f)},{z}"
        for i, d, s, c, m, a, t, u, la, lo, f, z in zip(
            range(first_index, first_index + len(zips)),
            rows["day"].tolist(),
            rows["seconds"].tolist(),
            rows["customer"].tolist(),
            rows["merchant"].tolist(),
            rows["amount"].tolist(),
            trans_num,
            rows["unix_time"].tolist(),
            rows["merch_lat"].tolist(),
            rows["merch_long"].tolist(),
            rows["fraud"].tolist(),
            zips,
            strict=True,
        )
    ]
    return "\n".join(lines) + "\n" if lines else ""


def generate(
    path: str | os.PathLike[str],
    *,
    customers: int = 1000,
    start: date = date(2019, 1, 1),
    end: date = date(2020, 6, 21),
    seed: int = 42,
    progress: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Write a synthetic ``credit_card_transactions.csv`` to ``path``.

    Parameters
    ----------
    path
        Output file; written to ``<path>.part`` first and renamed when complete.
    customers
        Number of cardholders (one card each).
    start, end
        First and last day (inclusive) of the transactions.
    seed
        Seed of every random choice; the same arguments give the same bytes.
    progress
        Called with the number of rows written so far, after each month.

    Returns
    -------
    GenerationSummary
        Rows and frauds written, cards with at least one transaction, path, seconds.
    """
    start, end = _checked_window(customers, start, end)
    began = time.perf_counter()
    root = np.random.SeedSequence(seed % 2**64)
    setup_seq, fraud_seq, months_seq = root.spawn(3)

    cal = build_calendar(start, end)
    people = draw_customers(customers, start, seed, np.random.default_rng(setup_seq))
    episodes = draw_episodes(people, cal, np.random.default_rng(fraud_seq))

    target = Path(path)
    partial = target.with_name(target.name + ".part")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as out:
            out.write(",".join(COLUMNS) + "\n")
            rows, frauds, cards = _write_months(out, people, episodes, cal, months_seq, progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return GenerationSummary(rows=rows, frauds=frauds, cards=cards, path=target, seconds=time.perf_counter() - began)


def _checked_window(customers: int, start: date, end: date) -> tuple[date, date]:
    """``start`` and ``end`` as plain dates (a datetime is cut to its day), or ValueError."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    start = date(start.year, start.month, start.day)
    end = date(end.year, end.month, end.day)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return start, end


def _write_months(
    out: TextIO,
    people: Customers,
    episodes: Episodes,
    cal: Calendar,
    months_seq: np.random.SeedSequence,
    progress: Callable[[int], None] | None,
) -> tuple[int, int, int]:
    """Generate and write month by month; return rows, frauds and cards with a transaction."""
    band = profile_table().band[people.profile]
    # Expected transactions of a customer on a day: rate x n_days x share of that day.
    lam_scale = people.rate * len(cal.days) / cal.weight[band].sum(axis=1)
    rows_written = frauds = 0
    active = np.zeros(len(people.rate), dtype=bool)
    for (first_day, end_day), month_seq in zip(cal.month_bounds, months_seq.spawn(len(cal.month_bounds)), strict=True):
        rows = month_rows(people, episodes, cal, lam_scale, first_day, end_day, np.random.default_rng(month_seq))
        n_rows = len(rows["day"])
        for lo in range(0, n_rows, _FORMAT_ROWS):
            piece = {k: v[lo : lo + _FORMAT_ROWS] for k, v in rows.items()}
            out.write(_format_rows(piece, rows_written + lo, people, cal))
        rows_written += n_rows
        frauds += int(rows["fraud"].sum())
        active[rows["customer"]] = True
        if progress is not None:
            progress(rows_written)
    return rows_written, frauds, int(active.sum())
