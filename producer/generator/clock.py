"""The simulator's clock: ``unix_time``, and the calendar of the generated window.

The simulator ran on 2012-2013; the published dates are its dates shifted forward by
seven years, and day weights apply on the simulator's own calendar.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from producer.generator.parameters import BANDS, SEASONS, WEEKDAY_WEIGHTS

SECONDS_PER_DAY = 86_400
EPOCH = date(1970, 1, 1)


def unix_time(event: datetime) -> int:
    """The ``unix_time`` the data carries for an event time.

    The same wall-clock time seven calendar years earlier, as UTC epoch seconds: the
    simulator ran on 2012-2013 and the published dates were shifted by seven years.
    29 February (which has no counterpart seven years earlier) maps to 28 February.
    """
    sim = simulation_date(event.date())
    seconds = event.hour * 3600 + event.minute * 60 + event.second
    return (sim - EPOCH).days * SECONDS_PER_DAY + seconds


def simulation_date(day: date) -> date:
    year = day.year - 7
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return day.replace(year=year)


@dataclass(frozen=True)
class Calendar:
    days: tuple[date, ...]
    day_text: tuple[str, ...]  # published date, YYYY-MM-DD
    sim_midnight: np.ndarray  # (n_days,) unix_time at 00:00:00 of each day
    weight: np.ndarray  # (n_bands, n_days) relative activity of each day
    month_bounds: tuple[tuple[int, int], ...]  # [first, last) day index per month


def _season_weight(day: date) -> float:
    md = (day.month, day.day)
    for first, last, weight in SEASONS:
        if first <= md <= last:
            return weight
    return 1.0


def build_calendar(start: date, end: date) -> Calendar:
    days = tuple(start + timedelta(days=i) for i in range((end - start).days + 1))
    sims = [simulation_date(d) for d in days]
    weight = np.array(
        [[WEEKDAY_WEIGHTS[band][s.weekday()] * _season_weight(s) for s in sims] for band in BANDS],
        dtype=float,
    )
    bounds, first = [], 0
    for i in range(1, len(days) + 1):
        if i == len(days) or days[i].month != days[first].month:
            bounds.append((first, i))
            first = i
    return Calendar(
        days=days,
        day_text=tuple(d.isoformat() for d in days),
        sim_midnight=np.array([(s - EPOCH).days * SECONDS_PER_DAY for s in sims], dtype=np.int64),
        weight=weight,
        month_bounds=tuple(bounds),
    )
