"""Synthetic card transactions in the Kaggle ``credit_card_transactions.csv`` layout.

The generator re-implements the behaviour of the Sparkov simulation that produced the
Kaggle data (see ``docs/dataset-facts.md``), vectorised with numpy so that the default
run (1,000 customers, 2019-01-01 .. 2020-06-21, ~1.3 M rows) takes well under a minute
and a bounded amount of memory: rows are generated and written one calendar month at a
time, for all customers, and sorted within the month.

Behaviour carried over from the simulation, including its quirks:

* Twelve profiles (age band x gender x urban/rural, city population cut at 2,500) fix
  the transactions per day (a per-customer integer drawn once from a uniform range;
  0 for a few customers, whose card then shows up with its fraud only),
  category weights, per-category Gamma amounts (mean, spread; amounts under $1 are
  replaced by a uniform $1-10) and the AM share.
* One uniform draw picks both the category (inverse CDF over the categories in the
  simulator's fixed order) and AM/PM (``u < am_share``).  That is why, in the real
  data, ``gas_transport`` and ``grocery_net`` happen only before noon and ``home`` or
  ``travel`` only after it.  The hour is uniform within AM or PM.
* Day weights (day of week, 30 Nov-31 Dec x2.0, 1 Jan-28 Feb x0.75, 24 May-1 Sep x1.25)
  apply on the simulator's own calendar, which is the ``unix_time`` clock: the published
  dates are the simulated ones shifted forward by seven years.  2019-01-01 was simulated
  as Sunday 2012-01-01, so it is a busy day, as in the real file.
* ~98% of customers (99 of 101) get one fraud episode starting on a uniform day of the
  simulator's two-year run (the two Kaggle files are slices of one 731-day run), so a
  shorter window sees proportionally fewer episodes: the fraud rate (~0.5%) does not
  depend on the window length.  An episode spans its start day and the next, holds 2-16
  frauds (8-16 for customers under 25), and removes the customer's legitimate
  transactions on the days it touches.  80% of frauds are forced into 22:00-03:59.
* Merchants: a fixed pool of 50 faker company names per category (700 entries,
  ~690 distinct names; the real file has 693), picked uniformly within the category;
  the merchant location is uniform within +-1 degree of the cardholder's home.

Simplifications, by design: homes are drawn from a built-in table of the 888 distinct
home places of the real slices (which already reflects the simulator's
population-weighted draw), and ``merch_zipcode`` is derived from that table (empty
where no known place is near the merchant) rather than from a ZIP-code database.

The header is the real file's, whose index column pandas named ``Unnamed: 0`` (the
kartik2112 files leave it empty).  Numbers are written as the real file writes them:
shortest float text (``45.0``, ``-112.262``), ``cc_num`` as an integer (11-19 digits),
``merch_zipcode`` as a float (``28705.0``) or empty.

Output is deterministic: the same arguments give a byte-identical file with the same
numpy and faker versions.
"""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from schemas.source import CATEGORIES, INDEX_COLUMN_NAMES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS

__all__ = ["COLUMNS", "GenerationSummary", "describe", "generate", "unix_time"]

# The header of the real credit_card_transactions.csv: pandas named the index column.
COLUMNS: tuple[str, ...] = (INDEX_COLUMN_NAMES[1], *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)

# The simulator's category order. It matters: one uniform draw selects the category by
# inverse CDF in this order *and* AM/PM by comparison with the AM share.
_CATEGORY_ORDER = (
    "gas_transport", "grocery_net", "grocery_pos", "misc_net", "misc_pos", "shopping_net",
    "shopping_pos", "entertainment", "food_dining", "health_fitness", "home", "kids_pets",
    "personal_care", "travel",
)  # fmt: skip
assert sorted(_CATEGORY_ORDER) == sorted(CATEGORIES)
_N_CAT = len(_CATEGORY_ORDER)
_CAT = {name: i for i, name in enumerate(_CATEGORY_ORDER)}

_BANDS = ("young_adults", "adults_2550", "adults_50up")  # age < 25, 25-50, 50+
_GENDERS = ("F", "M")
_AREAS = ("rural", "urban")
_URBAN_MIN_POP = 2500

# -- legitimate behaviour, per age band (tuples follow _CATEGORY_ORDER) ------------------
_CATEGORY_WEIGHTS = {
    "young_adults": (140, 55, 65, 55, 65, 85, 105, 80, 85, 75, 70, 75, 70, 40),
    "adults_2550": (95, 45, 110, 50, 62, 78, 90, 70, 75, 68, 118, 88, 75, 28),
    "adults_50up": (120, 15, 95, 55, 55, 68, 82, 75, 70, 72, 112, 115, 98, 40),
}
_MALE_FACTORS = {"gas_transport": 1.1, "entertainment": 1.1, "travel": 1.15,
                 "personal_care": 0.8, "kids_pets": 0.9}  # fmt: skip
_RURAL_FACTORS = {"gas_transport": 1.15, "shopping_net": 1.1, "misc_net": 1.1,
                  "travel": 0.85, "food_dining": 0.9}  # fmt: skip
# (mean, standard deviation) of the Gamma amount per category.
_AMOUNTS = {
    "young_adults": ((60, 15), (35, 20), (65, 20), (60, 100), (45, 150), (50, 300), (50, 300),
                     (70, 40), (20, 50), (45, 50), (45, 50), (40, 40), (35, 50), (50, 600)),
    "adults_2550": ((70, 15), (55, 20), (105, 25), (55, 150), (70, 120), (60, 300), (60, 300),
                    (70, 60), (55, 45), (60, 45), (60, 50), (55, 45), (45, 45), (60, 600)),
    "adults_50up": ((62, 15), (90, 20), (115, 25), (55, 150), (60, 200), (80, 200), (45, 200),
                    (50, 60), (55, 40), (45, 45), (55, 50), (60, 45), (45, 50), (60, 600)),
}  # fmt: skip
# Transactions per day: each customer draws an integer rate once from this range. A rate
# of 0 is possible, as in the simulator: such a card shows up only with its fraud (the
# real train file has 983 cards for 1,000 customers, and cards with frauds only).
_TX_PER_DAY = {
    ("young_adults", "F"): (0, 5), ("young_adults", "M"): (0, 5),
    ("adults_2550", "F"): (1, 5), ("adults_2550", "M"): (1, 4),
    ("adults_50up", "F"): (0, 4), ("adults_50up", "M"): (1, 3),
}  # fmt: skip
# Share of a profile's transactions before noon, by (gender, area).
_AM_SHARE = {
    "young_adults": {("F", "rural"): 0.26, ("F", "urban"): 0.24,
                     ("M", "rural"): 0.34, ("M", "urban"): 0.28},
    "adults_2550": {("F", "rural"): 0.27, ("F", "urban"): 0.29,
                    ("M", "rural"): 0.46, ("M", "urban"): 0.40},
    "adults_50up": {("F", "rural"): 0.50, ("F", "urban"): 0.58,
                    ("M", "rural"): 0.48, ("M", "urban"): 0.60},
}  # fmt: skip
# Monday .. Sunday.
_WEEKDAY_WEIGHTS = {
    "young_adults": (70, 80, 90, 100, 130, 150, 140),
    "adults_2550": (80, 90, 100, 100, 125, 150, 150),
    "adults_50up": (80, 90, 100, 100, 130, 160, 160),
}
# (first month-day, last month-day, weight) on the simulator's calendar; 1.0 elsewhere.
_SEASONS = (((11, 30), (12, 31), 2.0), ((1, 1), (2, 28), 0.75), ((5, 24), (9, 1), 1.25))

# -- fraud behaviour ---------------------------------------------------------------------
_FRAUD_SHARE_OF_CUSTOMERS = 99 / 101  # the simulator's randint(0, 100) < 99
_SIMULATION_RUN_DAYS = 731  # 2019-01-01 .. 2020-12-31: fraudTrain + fraudTest
_FRAUD_LAST_START = 7  # an episode starts on day 1 .. run_days - 8 of the run
_FRAUD_COUNT = {"young_adults": (8, 16), "adults_2550": (2, 16), "adults_50up": (2, 16)}
_FRAUD_AM_SHARE = 0.30
_FRAUD_NIGHT_FORCED = 0.80  # else the hour is uniform within AM / PM like legit ones
_FRAUD_CATEGORY_WEIGHTS = (82, 18, 232, 122, 33, 228, 112, 31, 20, 18, 26, 32, 29, 15)
_FRAUD_AMOUNTS = {
    "young_adults": ((10, 2), (12, 3), (300, 20), (800, 80), (15, 4), (1000, 100), (800, 80),
                     (500, 50), (120, 12), (20, 3), (250, 25), (20, 3), (22, 3), (9, 2)),
    "adults_2550": ((10, 2), (12, 3), (325, 20), (800, 80), (15, 4), (1000, 100), (800, 80),
                    (550, 50), (120, 12), (20, 3), (300, 30), (20, 3), (22, 3), (9, 2)),
    "adults_50up": ((10, 2), (12, 3), (350, 20), (800, 80), (15, 4), (1000, 100), (800, 80),
                    (600, 60), (120, 12), (20, 3), (400, 40), (20, 3), (22, 3), (9, 2)),
}  # fmt: skip

# -- customers and merchants -------------------------------------------------------------
_FEMALE_SHARE = 0.508
# Cardholder ages (years at the window start) in the real slices: bin edges and counts.
_AGE_EDGES = (14, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95)
_AGE_COUNTS = (5, 22, 52, 83, 102, 73, 89, 94, 82, 76, 66, 43, 32, 28, 20, 18, 13)
_MERCHANTS_PER_CATEGORY = 50
_MERCHANT_POOL_SEED = 693  # the pool is fixed, whatever the run's seed
_MERCHANT_RADIUS_DEG = 1.0
# A merchant gets the ZIP area of the nearest known place closer than this (degrees,
# longitude scaled by cos(latitude)); farther away merch_zipcode is empty (~16% as real).
_MERCH_ZIP_MAX_DEG = 0.58
_FORMAT_ROWS = 25_000  # rows formatted and written at a time (bounds memory)
_ZIP_BLOCK_ROWS = 16_384

_SECONDS_PER_DAY = 86_400
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote."""

    rows: int
    frauds: int
    cards: int
    path: Path
    seconds: float


def unix_time(event: datetime) -> int:
    """The ``unix_time`` the data carries for an event time.

    The same wall-clock time seven calendar years earlier, as UTC epoch seconds: the
    simulator ran on 2012-2013 and the published dates were shifted by seven years.
    29 February (which has no counterpart seven years earlier) maps to 28 February.
    """
    sim = _simulation_date(event.date())
    seconds = event.hour * 3600 + event.minute * 60 + event.second
    return (sim - _EPOCH).days * _SECONDS_PER_DAY + seconds


def _simulation_date(day: date) -> date:
    year = day.year - 7
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return day.replace(year=year)


# -- profiles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Profiles:
    """Per-profile parameters as arrays; row ``p`` is legit, row ``p + n`` its fraud."""

    names: tuple[str, ...]
    band: np.ndarray  # (n,) band index
    tx_per_day: np.ndarray  # (n, 2) inclusive range
    fraud_count: np.ndarray  # (n, 2) inclusive range
    cum_weights: np.ndarray  # (2n, 14) category CDF
    am_share: np.ndarray  # (2n,)
    gamma_shape: np.ndarray  # (2n, 14)
    gamma_scale: np.ndarray  # (2n, 14)

    def index(self, band: int, gender: str, urban: bool) -> int:
        return (band * len(_GENDERS) + _GENDERS.index(gender)) * len(_AREAS) + int(urban)


def _gamma_params(amounts: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    mean = np.array([m for m, _ in amounts], dtype=float)
    sd = np.array([s for _, s in amounts], dtype=float)
    return (mean / sd) ** 2, sd**2 / mean


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights) / weights.sum()
    cdf[-1] = 1.0
    return cdf


@lru_cache(maxsize=1)
def _profiles() -> _Profiles:
    names, band_of, tx, fcount = [], [], [], []
    cdf, am, shape, scale = [], [], [], []
    fraud_cdf, fraud_shape, fraud_scale = [], [], []
    for b, band in enumerate(_BANDS):
        k, theta = _gamma_params(_AMOUNTS[band])
        fk, ftheta = _gamma_params(_FRAUD_AMOUNTS[band])
        for gender in _GENDERS:
            for area in _AREAS:
                weights = np.array(_CATEGORY_WEIGHTS[band], dtype=float)
                for factors, applies in (
                    (_MALE_FACTORS, gender == "M"),
                    (_RURAL_FACTORS, area == "rural"),
                ):
                    if applies:
                        for category, factor in factors.items():
                            weights[_CAT[category]] *= factor
                sex = "female" if gender == "F" else "male"
                names.append(f"{band}_{sex}_{area}")
                band_of.append(b)
                tx.append(_TX_PER_DAY[band, gender])
                fcount.append(_FRAUD_COUNT[band])
                cdf.append(_cdf(weights))
                am.append(_AM_SHARE[band][gender, area])
                shape.append(k)
                scale.append(theta)
                fraud_cdf.append(_cdf(np.array(_FRAUD_CATEGORY_WEIGHTS, dtype=float)))
                fraud_shape.append(fk)
                fraud_scale.append(ftheta)
    n = len(names)
    return _Profiles(
        names=tuple(names),
        band=np.array(band_of),
        tx_per_day=np.array(tx),
        fraud_count=np.array(fcount),
        cum_weights=np.vstack(cdf + fraud_cdf),
        am_share=np.array(am + [_FRAUD_AM_SHARE] * n),
        gamma_shape=np.vstack(shape + fraud_shape),
        gamma_scale=np.vstack(scale + fraud_scale),
    )


# -- calendar ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calendar:
    days: tuple[date, ...]
    day_text: tuple[str, ...]  # published date, YYYY-MM-DD
    sim_midnight: np.ndarray  # (n_days,) unix_time at 00:00:00 of each day
    weight: np.ndarray  # (n_bands, n_days) relative activity of each day
    month_bounds: tuple[tuple[int, int], ...]  # [first, last) day index per month


def _season_weight(day: date) -> float:
    md = (day.month, day.day)
    for first, last, weight in _SEASONS:
        if first <= md <= last:
            return weight
    return 1.0


def _calendar(start: date, end: date) -> _Calendar:
    days = tuple(start + timedelta(days=i) for i in range((end - start).days + 1))
    sims = [_simulation_date(d) for d in days]
    weight = np.array(
        [[_WEEKDAY_WEIGHTS[band][s.weekday()] * _season_weight(s) for s in sims] for band in _BANDS],
        dtype=float,
    )
    bounds, first = [], 0
    for i in range(1, len(days) + 1):
        if i == len(days) or days[i].month != days[first].month:
            bounds.append((first, i))
            first = i
    return _Calendar(
        days=days,
        day_text=tuple(d.isoformat() for d in days),
        sim_midnight=np.array([(s - _EPOCH).days * _SECONDS_PER_DAY for s in sims], dtype=np.int64),
        weight=weight,
        month_bounds=tuple(bounds),
    )


# -- places, merchants, customers ---------------------------------------------------------


@dataclass(frozen=True)
class _Places:
    city: tuple[str, ...]
    state: tuple[str, ...]
    zip: np.ndarray
    lat: np.ndarray
    long: np.ndarray
    pop: np.ndarray


@lru_cache(maxsize=1)
def _places() -> _Places:
    rows = [line.split("|") for line in _PLACES.strip().splitlines()]
    return _Places(
        city=tuple(r[0] for r in rows),
        state=tuple(r[1] for r in rows),
        zip=np.array([int(r[2]) for r in rows]),
        lat=np.array([float(r[3]) for r in rows]),
        long=np.array([float(r[4]) for r in rows]),
        pop=np.array([int(r[5]) for r in rows]),
    )


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


@lru_cache(maxsize=1)
def _merchant_pool() -> tuple[tuple[str, ...], np.ndarray]:
    """``merchant,category`` CSV text per merchant, and the first merchant per category."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(_MERCHANT_POOL_SEED)
    texts: list[str] = []
    for category in _CATEGORY_ORDER:
        names: list[str] = []
        while len(names) < _MERCHANTS_PER_CATEGORY:
            name = "fraud_" + fake.company()
            if name not in names:
                names.append(name)
        texts.extend(f"{_csv_field(name)},{category}" for name in names)
    first = np.arange(_N_CAT) * _MERCHANTS_PER_CATEGORY
    return tuple(texts), first


@dataclass(frozen=True)
class _Customers:
    card_text: tuple[str, ...]  # cc_num
    person_text: tuple[str, ...]  # first .. dob, CSV-joined
    profile: np.ndarray
    rate: np.ndarray  # transactions per day
    lat: np.ndarray
    long: np.ndarray
    zip_candidates: np.ndarray  # (n, k) place indices near home; padded with a far sentinel


def _customers(n: int, start: date, seed: int, rng: np.random.Generator) -> _Customers:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    places = _places()
    profiles = _profiles()

    female = rng.random(n) < _FEMALE_SHARE
    replace = n > len(places.zip)
    home = rng.choice(len(places.zip), size=n, replace=replace)
    age_bin = rng.choice(len(_AGE_COUNTS), size=n, p=np.array(_AGE_COUNTS) / sum(_AGE_COUNTS))
    edges = np.array(_AGE_EDGES, dtype=float)
    age = edges[age_bin] + rng.random(n) * (edges[age_bin + 1] - edges[age_bin])
    age_days = np.round(age * 365.25).astype(int)

    cards: list[str] = []
    seen: set[str] = set()
    persons: list[str] = []
    profile = np.empty(n, dtype=np.int64)
    for i in range(n):
        # Card numbers were stored as integers: a leading zero (Maestro 0604...) is lost.
        card = str(int(fake.credit_card_number()))
        while card in seen:
            card = str(int(fake.credit_card_number()))
        seen.add(card)
        cards.append(card)
        gender = "F" if female[i] else "M"
        first = fake.first_name_female() if female[i] else fake.first_name_male()
        p = int(home[i])
        dob = start - timedelta(days=int(age_days[i]))
        fields = (
            first,
            fake.last_name(),
            gender,
            fake.street_address(),
            places.city[p],
            places.state[p],
            str(places.zip[p]),
            repr(float(places.lat[p])),
            repr(float(places.long[p])),
            str(places.pop[p]),
            fake.job(),
            dob.isoformat(),
        )
        persons.append(",".join(_csv_field(f) for f in fields))
        band = 0 if age[i] < 25 else 1 if age[i] < 50 else 2
        profile[i] = profiles.index(band, gender, bool(places.pop[p] >= _URBAN_MIN_POP))

    lo = profiles.tx_per_day[profile, 0]
    hi = profiles.tx_per_day[profile, 1]
    rate = rng.integers(lo, hi + 1)
    lat, long = places.lat[home], places.long[home]
    return _Customers(
        card_text=tuple(cards),
        person_text=tuple(persons),
        profile=profile,
        rate=rate,
        lat=lat,
        long=long,
        zip_candidates=_zip_candidates(lat, long, places),
    )


def _zip_candidates(lat: np.ndarray, long: np.ndarray, places: _Places) -> np.ndarray:
    """Places that can be nearest to a merchant of each customer (within the radius)."""
    reach = _MERCHANT_RADIUS_DEG * np.sqrt(2.0) + _MERCH_ZIP_MAX_DEG
    cos = np.cos(np.radians(lat))[:, None]
    d2 = (places.lat[None, :] - lat[:, None]) ** 2 + ((places.long[None, :] - long[:, None]) * cos) ** 2
    near = d2 <= reach**2
    width = max(1, int(near.sum(axis=1).max()))
    sentinel = len(places.zip)  # an extra place far from everything, see _merchant_zip
    out = np.full((len(lat), width), sentinel, dtype=np.int64)
    for i, row in enumerate(near):
        idx = np.flatnonzero(row)
        out[i, : len(idx)] = idx
    return out


# -- fraud episodes ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Episodes:
    """Fraud per customer-day inside the window: sparse (customer, day, count)."""

    customer: np.ndarray
    day: np.ndarray
    count: np.ndarray


def _episodes(customers: _Customers, cal: _Calendar, rng: np.random.Generator) -> _Episodes:
    profiles = _profiles()
    n, n_days = len(customers.rate), len(cal.days)
    has = rng.random(n) < _FRAUD_SHARE_OF_CUSTOMERS
    run_days = max(n_days + _FRAUD_LAST_START + 1, _SIMULATION_RUN_DAYS)
    # The episode's first day (its last is the next), drawn as the simulator did:
    # randint(1, (run_end - run_start).days - 7).
    first = rng.integers(1, run_days - _FRAUD_LAST_START, size=n)
    lo = profiles.fraud_count[customers.profile, 0]
    hi = profiles.fraud_count[customers.profile, 1]
    count = rng.integers(lo, hi + 1)
    band = profiles.band[customers.profile]
    day0 = np.minimum(first, n_days - 1)
    day1 = np.minimum(first + 1, n_days - 1)
    w0 = cal.weight[band, day0]
    w1 = cal.weight[band, day1]
    on_first = rng.binomial(count, w0 / (w0 + w1))
    keep = has & (first < n_days)
    cust = np.concatenate([np.flatnonzero(keep), np.flatnonzero(keep & (first + 1 < n_days))])
    day = np.concatenate([first[keep], first[keep & (first + 1 < n_days)] + 1])
    cnt = np.concatenate([on_first[keep], (count - on_first)[keep & (first + 1 < n_days)]])
    nonzero = cnt > 0
    return _Episodes(customer=cust[nonzero], day=day[nonzero], count=cnt[nonzero])


# -- one month ----------------------------------------------------------------------------


def _month_rows(
    customers: _Customers,
    episodes: _Episodes,
    cal: _Calendar,
    lam_scale: np.ndarray,
    first_day: int,
    end_day: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    profiles = _profiles()
    n_profiles = len(profiles.names)
    n_cust = len(customers.rate)
    band = profiles.band[customers.profile]

    # Legit counts per customer-day (Poisson around rate x relative day weight).
    lam = lam_scale[:, None] * cal.weight[band][:, first_day:end_day]
    counts = rng.poisson(lam)
    in_month = (episodes.day >= first_day) & (episodes.day < end_day)
    f_cust, f_day, f_cnt = (
        episodes.customer[in_month],
        episodes.day[in_month],
        episodes.count[in_month],
    )
    counts[f_cust, f_day - first_day] = 0  # the customer's legit activity that day is dropped

    flat = counts.ravel()
    legit_cust = np.repeat(np.repeat(np.arange(n_cust), end_day - first_day), flat)
    legit_day = np.repeat(np.tile(np.arange(first_day, end_day), n_cust), flat)
    cust = np.concatenate([legit_cust, np.repeat(f_cust, f_cnt)])
    day = np.concatenate([legit_day, np.repeat(f_day, f_cnt)])
    fraud = np.concatenate([np.zeros(len(legit_cust), bool), np.ones(int(f_cnt.sum()), bool)])
    n = len(cust)

    kind = customers.profile[cust] + n_profiles * fraud
    u = rng.random(n)
    category = (u[:, None] > profiles.cum_weights[kind]).sum(axis=1)
    category = np.minimum(category, _N_CAT - 1)
    am = u < profiles.am_share[kind]
    hour = rng.integers(0, 12, size=n) + np.where(am, 0, 12)
    forced = fraud & (rng.random(n) < _FRAUD_NIGHT_FORCED)
    hour = np.where(forced & am, rng.integers(0, 4, size=n), hour)
    hour = np.where(forced & ~am, rng.integers(22, 24, size=n), hour)
    seconds = hour * 3600 + rng.integers(0, 3600, size=n)

    amount = rng.gamma(profiles.gamma_shape[kind, category], profiles.gamma_scale[kind, category])
    small = amount < 1.0
    amount[small] = rng.uniform(1.0, 10.0, size=int(small.sum()))
    amount = np.round(amount, 2)

    _, first_merchant = _merchant_pool()
    merchant = first_merchant[category] + rng.integers(0, _MERCHANTS_PER_CATEGORY, size=n)
    merch_lat = np.round(customers.lat[cust] + rng.uniform(-_MERCHANT_RADIUS_DEG, _MERCHANT_RADIUS_DEG, n), 6)
    merch_long = np.round(customers.long[cust] + rng.uniform(-_MERCHANT_RADIUS_DEG, _MERCHANT_RADIUS_DEG, n), 6)
    trans_num = rng.bytes(16 * n)

    order = np.lexsort((np.arange(n), cust, seconds, day))
    rows = {
        "customer": cust,
        "day": day,
        "seconds": seconds,
        "fraud": fraud,
        "merchant": merchant,
        "amount": amount,
        "merch_lat": merch_lat,
        "merch_long": merch_long,
    }
    rows = {k: v[order] for k, v in rows.items()}
    rows["trans_num"] = np.frombuffer(trans_num, dtype="S16")[order]
    rows["merch_zip"] = _merchant_zip(customers, rows["customer"], rows["merch_lat"], rows["merch_long"])
    rows["unix_time"] = cal.sim_midnight[rows["day"]] + rows["seconds"]
    return rows


def _merchant_zip(customers: _Customers, cust: np.ndarray, lat: np.ndarray, long: np.ndarray) -> np.ndarray:
    """ZIP of the merchant's area, 0 where no known place is near (written empty).

    The nearest known place gives the three-digit ZIP prefix (the area); the last two
    digits vary per 0.1-degree cell, so that merchants are not all on a home ZIP.
    """
    places = _places()
    p_lat = np.append(places.lat, 1e6)  # the sentinel: never within reach
    p_long = np.append(places.long, 1e6)
    p_zip = np.append(places.zip, 0)
    cos = np.cos(np.radians(customers.lat))
    out = np.zeros(len(cust), dtype=np.int64)
    for lo in range(0, len(cust), _ZIP_BLOCK_ROWS):
        block = slice(lo, lo + _ZIP_BLOCK_ROWS)
        c, b_lat, b_long = cust[block], lat[block], long[block]
        cand = customers.zip_candidates[c]
        d2 = (p_lat[cand] - b_lat[:, None]) ** 2 + ((p_long[cand] - b_long[:, None]) * cos[c][:, None]) ** 2
        best = d2.argmin(axis=1)
        rows = np.arange(len(c))
        near = d2[rows, best] <= _MERCH_ZIP_MAX_DEG**2
        cell = np.floor(b_lat * 10).astype(np.int64) * 7919 + np.floor(b_long * 10).astype(np.int64) * 104_729
        last_two = ((cell * 2_654_435_761) >> 7) % 100
        zip_code = (p_zip[cand[rows, best]] // 100) * 100 + last_two
        out[block] = np.where(near, zip_code, 0)
    return out


_CLOCK = tuple(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60))


def _format_rows(rows: dict[str, np.ndarray], first_index: int, customers: _Customers, cal: _Calendar) -> str:
    merchant_text, _ = _merchant_pool()
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


# -- the public entry points ---------------------------------------------------------------


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
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    start = date(start.year, start.month, start.day)
    end = date(end.year, end.month, end.day)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    began = time.perf_counter()
    root = np.random.SeedSequence(seed % 2**64)
    setup_seq, fraud_seq, months_seq = root.spawn(3)

    cal = _calendar(start, end)
    people = _customers(customers, start, seed, np.random.default_rng(setup_seq))
    episodes = _episodes(people, cal, np.random.default_rng(fraud_seq))
    band = _profiles().band[people.profile]
    # Expected transactions of a customer on a day: rate x n_days x share of that day.
    lam_scale = people.rate * len(cal.days) / cal.weight[band].sum(axis=1)

    target = Path(path)
    partial = target.with_name(target.name + ".part")
    rows_written = frauds = 0
    active = np.zeros(customers, dtype=bool)
    try:
        with open(partial, "w", encoding="utf-8", newline="") as out:
            out.write(",".join(COLUMNS) + "\n")
            for (first_day, end_day), month_seq in zip(
                cal.month_bounds, months_seq.spawn(len(cal.month_bounds)), strict=True
            ):
                rows = _month_rows(
                    people,
                    episodes,
                    cal,
                    lam_scale,
                    first_day,
                    end_day,
                    np.random.default_rng(month_seq),
                )
                n_rows = len(rows["day"])
                for lo in range(0, n_rows, _FORMAT_ROWS):
                    piece = {k: v[lo : lo + _FORMAT_ROWS] for k, v in rows.items()}
                    out.write(_format_rows(piece, rows_written + lo, people, cal))
                rows_written += n_rows
                frauds += int(rows["fraud"].sum())
                active[rows["customer"]] = True
                if progress is not None:
                    progress(rows_written)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return GenerationSummary(
        rows=rows_written,
        frauds=frauds,
        cards=int(active.sum()),
        path=target,
        seconds=time.perf_counter() - began,
    )


def describe(df: Any) -> dict[str, Any]:
    """Summary statistics to compare generated and real transaction frames.

    Parameters
    ----------
    df
        A pandas DataFrame with at least ``trans_date_trans_time``, ``cc_num``,
        ``category``, ``amt`` and ``is_fraud`` (as read from either Kaggle layout).

    Returns
    -------
    dict
        ``rows``, ``cards``, ``span_days``, ``fraud_rate``, ``fraud_night_share`` and
        ``legit_night_share`` (night: 22:00-03:59), ``median_fraud_amt_by_category``,
        ``tx_per_card_day_median`` (per card: transactions / span of the frame in days)
        and ``tx_per_active_card_day_median`` (per card and calendar day with activity).
    """
    import pandas as pd

    when = pd.to_datetime(df["trans_date_trans_time"], format="%Y-%m-%d %H:%M:%S")
    fraud = df["is_fraud"].astype(int).to_numpy() == 1
    hour = when.dt.hour.to_numpy()
    night = (hour >= 22) | (hour < 4)
    span_days = max((when.max() - when.min()).total_seconds() / _SECONDS_PER_DAY, 1.0 / 24)
    card = df["cc_num"].astype(str)
    per_card = card.value_counts()
    per_card_day = pd.Series(1, index=df.index).groupby([card, when.dt.date]).size()
    amt = pd.to_numeric(df["amt"])
    by_category = amt[fraud].groupby(df["category"][fraud]).median().round(2)

    def share(mask: np.ndarray) -> float:
        return float(night[mask].mean()) if mask.any() else float("nan")

    return {
        "rows": len(df),
        "cards": int(per_card.size),
        "span_days": round(span_days, 3),
        "fraud_rate": float(fraud.mean()) if len(df) else float("nan"),
        "fraud_night_share": share(fraud),
        "legit_night_share": share(~fraud),
        "median_fraud_amt_by_category": {str(k): float(v) for k, v in by_category.items()},
        "tx_per_card_day_median": float((per_card / span_days).median()),
        "tx_per_active_card_day_median": float(per_card_day.median()),
    }


# Distinct cardholder home places of the real slices (city|state|zip|lat|long|city_pop),
# from credit_card_transactions.csv (first 5,000 rows) and fraudTest.csv (first 2,145
# rows); lat/long rounded to 4 decimals. US towns and their populations, no persons.
_PLACES = """
Huslia|AK|99746|65.6899|-156.292|277
Wales|AK|99783|64.7556|-165.6723|145
Bay Minette|AL|36507|30.8635|-87.7644|19090
Bessemer|AL|35022|33.3224|-86.9657|71463
Birmingham|AL|35229|33.4629|-86.7904|493806
Brantley|AL|36009|31.571|-86.2743|2566
Cleveland|AL|35049|33.9778|-86.5598|3996
Dadeville|AL|36853|32.8224|-85.7704|8269
Eldridge|AL|35554|33.9315|-87.6194|1186
Fairhope|AL|36532|30.5012|-87.8835|27829
Gadsden|AL|35901|34.048|-85.9246|67082
Gadsden|AL|35903|33.9845|-85.9077|67082
Grand Bay|AL|36541|30.4983|-88.3282|15647
Grant|AL|35747|34.4959|-86.259|5901
Hartford|AL|36344|31.086|-85.7192|5732
Huntsville|AL|35803|34.6205|-86.551|190178
Huntsville|AL|35811|34.7789|-86.5438|190178
Jones|AL|36749|32.5104|-86.8138|1089
Mobile|AL|36617|30.7145|-88.0918|270712
Montgomery|AL|36111|32.3374|-86.2715|214703
Mount Hope|AL|35651|34.4793|-87.4769|1312
Paint Rock|AL|35764|34.7031|-86.3068|653
Phenix City|AL|36869|32.4204|-85.0796|59744
Phil Campbell|AL|35581|34.347|-87.7154|5778
Plantersville|AL|36758|32.6176|-86.9475|1412
Ragland|AL|35131|33.7367|-86.1619|4159
Sardis|AL|36775|32.2844|-86.992|800
Woodville|AL|35776|34.6689|-86.2296|3395
Ash Flat|AR|72513|36.2201|-91.6421|2856
Bauxite|AR|72011|34.5091|-92.4828|4074
Cherokee Village|AR|72529|36.3011|-91.5281|4726
Cord|AR|72524|35.8184|-91.3375|376
De Queen|AR|71832|34.0442|-94.3386|11253
De Witt|AR|72042|34.2853|-91.3336|5161
Enola|AR|72047|35.2087|-92.2123|969
Gregory|AR|72059|35.1791|-91.2594|37
Haynes|AR|72341|34.8838|-90.7666|222
Lepanto|AR|72354|35.6069|-90.3359|2470
Norman|AR|71960|34.4596|-93.6743|1383
Smackover|AR|71762|33.3398|-92.7442|2501
Texarkana|AR|71854|33.431|-93.8765|36438
Thida|AR|72165|35.5762|-91.4539|111
Viola|AR|72583|36.3924|-91.9932|1679
Walnut Ridge|AR|72476|36.0244|-90.9288|7155
Winslow|AR|72959|35.8312|-94.1187|2786
Humboldt|AZ|86329|34.5189|-112.2523|1179
Paradise Valley|AZ|85253|33.5494|-111.9565|17047
Parks|AZ|86018|35.2563|-111.95|759
Phoenix|AZ|85020|33.5623|-112.0559|1312922
Phoenix|AZ|85086|33.8155|-112.1202|1312922
Superior|AZ|85173|33.2887|-111.0985|2872
Azusa|CA|91702|34.1248|-117.9031|59705
Blairsden-Graeagle|CA|96103|39.8127|-120.6405|1725
Carlotta|CA|95528|40.507|-123.9743|1139
Claremont|CA|91711|34.1092|-117.7183|35705
Corona|CA|92882|33.8419|-117.6043|233717
Daly City|CA|94015|37.6787|-122.478|107941
Fiddletown|CA|95629|38.5234|-120.6763|832
Fields Landing|CA|95537|40.7268|-124.2174|276
Glendale|CA|91206|34.1556|-118.2322|172817
Greenview|CA|96037|41.5403|-122.9366|308
Grenada|CA|96038|41.6125|-122.5258|589
Hawthorne|CA|90250|33.9143|-118.3493|93193
Helm|CA|93627|36.4992|-120.0936|123
Huntington Beach|CA|92648|33.6773|-118.0051|190249
Indian Wells|CA|92210|33.7163|-116.3381|4677
June Lake|CA|93529|37.7773|-119.0825|633
Laguna Hills|CA|92637|33.615|-117.7114|45303
Lakeport|CA|95453|39.047|-122.9328|11256
Los Angeles|CA|90014|34.0443|-118.2509|2383912
Mountain Center|CA|92561|33.6401|-116.5567|1661
Napa|CA|94558|38.4549|-122.2564|94014
Newhall|CA|91321|34.3795|-118.523|34882
Norwalk|CA|90650|33.9056|-118.0818|105549
Oakland|CA|94619|37.7878|-122.1884|381459
Palmdale|CA|93552|34.5715|-118.0231|171170
Parker Dam|CA|92267|34.298|-114.156|126
Port Costa|CA|94569|38.046|-122.1866|198
Sacramento|CA|95827|38.5662|-121.3286|757530
Sacramento|CA|95842|38.6865|-121.3494|757530
San Diego|CA|92128|33.0067|-117.069|1241364
San Jose|CA|95148|37.3304|-121.7913|973849
Santa Monica|CA|90403|34.0287|-118.4924|92043
Smith River|CA|95567|41.9404|-124.1587|1930
Sun City|CA|92585|33.7467|-117.1721|54287
Tomales|CA|94971|38.2427|-122.9145|337
Vinton|CA|96135|40.0235|-120.7986|128
Wendel|CA|96136|40.3406|-120.2824|104
Arvada|CO|80005|39.8422|-105.1097|122111
Aurora|CO|80014|39.6662|-104.835|389246
Broomfield|CO|80021|39.8854|-105.1139|92337
Colorado Springs|CO|80951|38.8881|-104.6556|525713
Dumont|CO|80436|39.7532|-105.6356|565
Iliff|CO|80736|40.7692|-103.0968|648
Kirk|CO|80824|39.6171|-102.4776|207
Littleton|CO|80120|39.5994|-105.0044|320420
Meredith|CO|81642|39.3199|-106.6596|61
Parker|CO|80138|39.5102|-104.7216|84861
Pueblo|CO|81005|38.2352|-104.66|151815
Red Cliff|CO|81649|39.4584|-106.3851|277
East Canaan|CT|6024|42.0158|-73.2913|647
Higganum|CT|6441|41.4682|-72.5751|5438
Marion|CT|6444|41.7918|-72.7188|370
Plymouth|CT|6782|41.6611|-73.0449|2376
Preston|CT|6365|41.5224|-71.9934|4720
Washington|DC|20012|38.9757|-77.0282|601723
Washington|DC|20017|38.9367|-76.994|601723
Washington|DC|20036|38.9087|-77.0414|601723
Bonita Springs|FL|34135|26.3771|-81.7334|51427
Brandon|FL|33510|27.9551|-82.2966|79613
Cape Coral|FL|33909|26.6939|-81.9452|156391
Clearwater|FL|33760|27.9004|-82.7152|172247
Deltona|FL|32725|28.8989|-81.2473|88735
Fort Myers|FL|33967|26.4722|-81.8122|224256
Grand Ridge|FL|32442|30.7148|-85.021|3699
Haines City|FL|33844|28.0758|-81.5929|33804
Hampton|FL|32044|29.8575|-82.1483|2060
Jay|FL|32565|30.8985|-87.1332|5719
Key West|FL|33040|24.6557|-81.3824|32891
Lakeland|FL|33809|28.1762|-81.9591|237282
Lakeland|FL|33811|27.9865|-82.0139|237282
Lakeland|FL|33813|27.9611|-81.9398|237282
Lanark Village|FL|32323|29.8826|-84.5964|217
Loxahatchee|FL|33470|26.7383|-80.276|26551
Melbourne|FL|32935|28.1384|-80.6524|139650
Naples|FL|34112|26.1184|-81.7361|276002
Port Charlotte|FL|33981|26.9379|-82.2388|79008
Port Richey|FL|34668|28.3011|-82.6927|42619
Port Saint Lucie|FL|34953|27.2625|-80.3793|181438
Saint James City|FL|33956|26.529|-82.0916|3776
Saint Petersburg|FL|33710|27.7898|-82.7243|341043
Sebring|FL|33872|27.4703|-81.4872|50835
Tampa|FL|33620|28.06|-82.4079|717255
Titusville|FL|32780|28.5697|-80.8191|54767
Umatilla|FL|32784|28.9254|-81.6801|11432
Vero Beach|FL|32960|27.633|-80.4031|105638
Wauchula|FL|33873|27.5517|-81.8074|14742
West Palm Beach|FL|33417|26.7197|-80.1248|459921
Allentown|GA|31003|32.6064|-83.2095|112
Alpharetta|GA|30009|34.077|-84.3033|165556
Avera|GA|30803|33.141|-82.515|741
Brinson|GA|39825|30.9788|-84.7373|1461
Cuthbert|GA|39840|31.7706|-84.7936|5726
Darien|GA|31305|31.3826|-81.4312|5989
Du Pont|GA|31630|31.0|-82.8555|419
Girard|GA|30426|33.0437|-81.7106|1100
Hahira|GA|31632|30.9416|-83.3574|10295
Irwinton|GA|31042|32.8088|-83.174|1841
Juliette|GA|31046|33.1194|-83.8235|3343
Milner|GA|30257|33.141|-84.1759|4138
Norman Park|GA|31771|31.2462|-83.6549|5666
Sea Island|GA|31561|31.1989|-81.3322|298
Springfield|GA|31329|32.3697|-81.3618|9034
Surrency|GA|31563|31.6489|-82.1982|1324
Valdosta|GA|31605|30.946|-83.2474|94325
Varnell|GA|30756|34.9298|-84.9885|74
Vienna|GA|31092|32.0913|-83.7922|7420
West Green|GA|31567|31.6143|-82.7243|782
Whigham|GA|39897|30.8836|-84.3246|3430
Honokaa|HI|96727|20.0827|-155.488|4878
Paauilo|HI|96776|20.0271|-155.3697|1490
Alton|IA|51003|42.9782|-96.0173|1700
Avoca|IA|51521|41.4768|-95.3509|2036
Battle Creek|IA|51006|42.3327|-95.6045|1075
Belmond|IA|50421|42.8511|-93.62|3032
Birmingham|IA|52535|40.8626|-91.9534|888
Clarinda|IA|51632|40.7491|-95.038|7297
Clutier|IA|52217|42.0789|-92.3763|590
Curlew|IA|50527|42.9633|-94.7975|223
Des Moines|IA|50312|41.5855|-93.6719|222785
Des Moines|IA|50314|41.603|-93.633|222785
Early|IA|50535|42.4483|-95.1726|885
Elkhart|IA|50073|41.8114|-93.4855|1195
Hedrick|IA|52563|41.1826|-92.3097|1583
Lohrville|IA|51453|42.2619|-94.5566|695
Moscow|IA|52760|41.5646|-91.0859|533
Moulton|IA|52572|40.6866|-92.6833|1132
Ollie|IA|52576|41.2001|-92.1354|568
Oran|IA|50664|42.7012|-92.0762|53
Princeton|IA|52768|41.6858|-90.3706|1426
Rockwell|IA|50469|43.0032|-93.2167|1574
Webster City|IA|50595|42.4657|-93.8262|9165
Whittemore|IA|50598|43.0261|-94.4064|912
Malad City|ID|83252|42.1808|-112.262|4154
Meridian|ID|83646|43.6498|-116.4306|84106
Mesa|ID|83643|44.6255|-116.4493|129
Spirit Lake|ID|83869|47.9657|-116.868|4161
Bonfield|IL|60913|41.1573|-88.0619|1617
Cisco|IL|61830|39.9972|-88.6962|478
Dieterich|IL|62424|39.0319|-88.4074|2092
Dongola|IL|62926|37.3712|-89.1349|2263
Eagarville|IL|62023|39.1118|-89.7855|91
Eureka|IL|61530|40.7152|-89.2706|6713
Galatia|IL|62935|37.8274|-88.6235|1943
Goreville|IL|62939|37.575|-88.9655|3119
Joliet|IL|60432|41.5378|-88.0572|128354
Loami|IL|62661|39.6704|-89.8588|1213
Logan|IL|62856|37.9943|-88.9417|324
Lomax|IL|61454|40.6761|-91.0391|725
Mc Nabb|IL|61335|41.173|-89.2187|532
Moro|IL|62067|38.9318|-89.9618|2401
Mulberry Grove|IL|62262|38.9311|-89.2463|1810
Murrayville|IL|62668|39.5723|-90.2379|1512
New Boston|IL|61272|41.2153|-90.9879|1504
New Memphis|IL|62266|38.4857|-89.6816|254
Nokomis|IL|62075|39.3036|-89.2853|3458
Oakford|IL|62673|40.0994|-89.9601|530
Olmsted|IL|62970|37.1935|-89.0933|639
Payson|IL|62360|39.8153|-91.2627|1656
Pembroke Township|IL|60958|41.0646|-87.5917|2135
Putnam|IL|61560|41.1949|-89.4409|754
Ringwood|IL|60072|42.4048|-88.3054|928
Rossville|IL|60963|40.3625|-87.6692|1807
Schaumburg|IL|60193|42.0144|-88.0935|92294
Smithfield|IL|61477|40.4855|-90.2856|631
Tamaroa|IL|62888|38.138|-89.2231|2135
Tower Hill|IL|62571|39.39|-88.9597|1532
Wilmette|IL|60091|42.0765|-87.7246|27020
Andrews|IN|46702|40.8618|-85.6067|2304
Bristow|IN|47515|38.1981|-86.6821|965
Carlisle|IN|47838|38.9763|-87.3667|4081
Central|IN|47110|38.097|-86.1723|350
Churubusco|IN|46723|41.229|-85.3244|7692
Greenwood|IN|46143|39.596|-86.1309|78968
Harrodsburg|IN|47434|39.013|-86.5457|76
Highland|IN|46322|41.55|-87.4569|23727
Indianapolis|IN|46254|39.849|-86.272|910148
Indianapolis|IN|46290|39.9347|-86.1633|910148
Kingsford Heights|IN|46346|41.4802|-86.6919|1423
Leo|IN|46765|41.2249|-85.0301|5341
Liberty Mills|IN|46946|41.0356|-85.7358|136
Moores Hill|IN|47032|39.0945|-85.0638|3289
New Goshen|IN|47863|39.5803|-87.4616|205
North Judson|IN|46366|41.2244|-86.6966|5791
Oolitic|IN|47451|38.8938|-86.5246|1228
Prairie Creek|IN|47869|39.4336|-87.4101|137
Williams|IN|47470|38.7735|-86.6285|1735
Burrton|KS|67020|38.0261|-97.6666|1689
De Soto|KS|66018|38.9462|-94.9714|5760
Dexter|KS|67038|37.1641|-96.6917|602
Dresden|KS|67635|39.6094|-100.4112|169
Easton|KS|66020|39.3391|-95.0999|1442
Esbon|KS|66941|39.7562|-98.4462|242
Garfield|KS|67529|38.0649|-99.2374|365
Holcomb|KS|67851|37.9931|-100.9893|2691
Hudson|KS|67545|38.1485|-98.6408|215
Mc Cracken|KS|67556|38.5957|-99.554|320
Ozawkie|KS|66070|39.2136|-95.4404|2661
Topeka|KS|66616|39.0645|-95.6413|163415
Topeka|KS|66618|39.1329|-95.7023|163415
Utica|KS|67584|38.6411|-100.138|269
Wichita|KS|67216|37.6223|-97.3136|409656
Wichita|KS|67232|37.6395|-97.1714|409656
Big Creek|KY|40914|37.1046|-83.5706|467
Cadiz|KY|42211|36.802|-87.8286|13422
Cranks|KY|40820|36.7558|-83.1838|581
Cromona|KY|41810|37.1788|-82.695|502
Deane|KY|41812|37.2409|-82.7696|230
Dubre|KY|42731|36.8421|-85.5396|341
Elizabethtown|KY|42701|37.6848|-85.8784|48194
Hazel|KY|42049|36.5422|-88.3319|1480
Irvine|KY|40336|37.6858|-83.9862|13061
Louisville|KY|40202|38.2507|-85.7476|736284
Louisville|KY|40209|38.1901|-85.7519|736284
Mallie|KY|41836|37.2692|-82.9161|798
Maysville|KY|41056|38.6207|-83.8067|14228
Parkers Lake|KY|42634|36.8347|-84.4436|1565
Pewee Valley|KY|40056|38.3039|-85.4834|3263
River|KY|41254|37.8795|-82.7251|571
Rochester|KY|42273|37.2048|-86.8592|443
Saint Francis|KY|40062|37.6047|-85.4251|301
Smiths Grove|KY|42171|37.0581|-86.1938|6841
Stephensport|KY|40170|37.9048|-86.524|344
Westport|KY|40077|38.4921|-85.4524|564
Baton Rouge|LA|70808|30.4066|-91.1468|378909
Delhi|LA|71232|32.3929|-91.4714|6581
Denham Springs|LA|70726|30.459|-90.9027|71335
Egan|LA|70531|30.251|-92.5002|1261
Fordoche|LA|70732|30.6576|-91.6264|1178
Gretna|LA|70056|29.8872|-90.0331|55581
Kenner|LA|70062|29.9912|-90.2479|68211
Metairie|LA|70003|29.9975|-90.2146|137067
Saint Amant|LA|70774|30.2385|-90.8435|10076
Spearsville|LA|71277|32.955|-92.587|1758
Tickfaw|LA|70466|30.5668|-90.482|8512
West Monroe|LA|71291|32.5317|-92.176|54185
Ashfield|MA|1330|42.5232|-72.811|1506
Barnstable|MA|2630|41.6983|-70.3001|1850
Lawrence|MA|1843|42.6911|-71.1605|76383
Methuen|MA|1844|42.728|-71.181|47249
North Brookfield|MA|1535|42.2665|-72.0821|4680
Paxton|MA|1612|42.3066|-71.9202|4845
Sheffield|MA|1257|42.1001|-73.3611|2121
Shrewsbury|MA|1545|42.2848|-71.7205|35299
Stoneham|MA|2180|42.4828|-71.0978|21437
Annapolis|MD|21405|39.0305|-76.5515|92106
Cecilton|MD|21913|39.4015|-75.8654|663
Chester|MD|21619|38.9583|-76.2842|5848
Corriganville|MD|21524|39.6967|-78.8031|626
Gaithersburg|MD|20882|39.2335|-77.1458|135332
Great Mills|MD|20634|38.2674|-76.4954|5927
Hancock|MD|21750|39.6991|-78.1762|3766
Harwood|MD|20776|38.8582|-76.6145|3289
Kensington|MD|20895|39.0298|-77.0793|19054
Kingsville|MD|21087|39.4558|-76.4147|5451
Linthicum Heights|MD|21090|39.2092|-76.6681|9784
Manchester|MD|21102|39.6747|-76.8941|11751
Pikesville|MD|21208|39.3764|-76.729|33917
Queenstown|MD|21658|39.0026|-76.1424|3862
Scotland|MD|20687|38.0828|-76.3477|313
Tuscarora|MD|21790|39.2667|-77.5101|100
Tyaskin|MD|21865|38.2833|-75.8465|470
Whaleyville|MD|21872|38.4121|-75.2811|718
Auburn|ME|4210|44.0948|-70.239|23045
Bowdoin|ME|4287|44.0575|-69.9656|3224
Brooklin|ME|4616|44.2541|-68.5565|824
East Andover|ME|4226|44.6084|-70.6993|190
Kittery Point|ME|3905|43.0976|-70.7121|1780
Newport|ME|4953|44.8393|-69.2675|3228
Nobleboro|ME|4555|44.0943|-69.4828|1643
Parsonsfield|ME|4047|43.745|-70.9092|1892
Scarborough|ME|4074|43.5835|-70.3457|18760
Steuben|ME|4680|44.4971|-67.9503|1131
West Bethel|ME|4286|44.402|-70.8601|47
Winthrop|ME|4364|44.3229|-69.9576|6025
Afton|MI|49705|45.3637|-84.4695|937
Arcadia|MI|49613|44.5232|-86.2061|680
Baroda|MI|49101|41.9488|-86.4913|3104
Bay City|MI|48706|43.6088|-83.953|67858
Cedar|MI|49621|44.8605|-85.8138|3096
Detroit|MI|48202|42.377|-83.0796|673342
Detroit|MI|48206|42.3749|-83.1087|673342
Detroit|MI|48214|42.3669|-82.9938|673342
Detroit|MI|48221|42.426|-83.15|673342
Elberta|MI|49628|44.5995|-86.2141|372
Elk Rapids|MI|49629|44.8955|-85.4082|2223
Falmouth|MI|49632|44.2529|-85.017|1126
Goodrich|MI|48438|42.9147|-83.4845|6951
Lakeview|MI|48850|43.4269|-85.2924|4474
Livonia|MI|48154|42.3958|-83.3772|96942
Luzerne|MI|48636|44.6001|-84.2931|864
Manistique|MI|49854|46.0062|-86.2555|6469
Mount Clemens|MI|48043|42.5978|-82.8823|16305
Munith|MI|49259|42.3703|-84.2485|2523
Muskegon|MI|49440|43.2326|-86.2492|128715
Oxford|MI|48371|42.8223|-83.2829|24840
Pointe Aux Pins|MI|49775|45.7549|-84.447|95
Republic|MI|49879|46.368|-87.9938|1038
Riverview|MI|48193|42.1782|-83.2461|15623
Romulus|MI|48174|42.2203|-83.3583|31515
Rumely|MI|49826|46.3481|-87.0436|137
Southfield|MI|48034|42.4969|-83.2911|75830
Warren|MI|48088|42.5164|-82.9832|134056
Wetmore|MI|49895|46.3535|-86.6345|765
Afton|MN|55001|44.8696|-92.8234|2916
Bigelow|MN|56117|43.5336|-95.6515|399
Collegeville|MN|56321|45.5783|-94.4199|1536
Comfrey|MN|56019|44.1111|-94.9134|914
Emmons|MN|56029|43.5089|-93.4824|744
Georgetown|MN|56546|47.0999|-96.727|346
Halma|MN|56729|48.6669|-96.5969|140
Halstad|MN|56548|47.3551|-96.798|771
Hawley|MN|56549|46.9777|-96.4092|4508
Hills|MN|56138|43.5335|-96.3645|899
Hovland|MN|55606|47.8342|-90.0476|272
Lamberton|MN|56152|44.2378|-95.2739|1507
Lonsdale|MN|55046|44.4477|-93.4252|5211
Minneapolis|MN|55403|44.9673|-93.2828|1022298
Minneapolis|MN|55428|45.0632|-93.3811|1022298
Minnesota Lake|MN|56068|43.8295|-93.8282|1087
Orr|MN|55771|48.1439|-92.8561|1680
Randolph|MN|55065|44.5274|-93.0196|1201
Ranier|MN|56668|48.6031|-93.2977|136
Remer|MN|56672|47.0874|-93.9196|2097
Saint Paul|MN|55128|44.9913|-92.9487|753116
Sauk Rapids|MN|56379|45.604|-94.1591|16163
Stanchfield|MN|55080|45.6675|-93.2433|2607
Watertown|MN|55388|44.9595|-93.8482|5619
Winger|MN|56592|47.5375|-95.9941|516
Arnold|MO|63010|38.4305|-90.387|35439
Ballwin|MO|63021|38.577|-90.5255|92608
Blairstown|MO|64726|38.5319|-93.9221|467
Brashear|MO|63533|40.1959|-92.4333|805
Browning|MO|64630|40.029|-93.1607|602
Camden|MO|64017|39.2048|-94.0259|464
Cardwell|MO|63829|36.0434|-90.2907|1120
Centerview|MO|64019|38.7897|-93.8702|2368
Clarksville|MO|63336|39.3465|-90.9362|1146
Independence|MO|64058|39.1412|-94.3515|123373
Kansas City|MO|64114|38.9621|-94.5959|545147
Kissee Mills|MO|65680|36.6704|-93.0377|1201
Louisiana|MO|63353|39.4336|-91.0664|4593
Luray|MO|63453|40.4931|-91.8912|519
Matthews|MO|63867|36.7154|-89.6287|1019
Meadville|MO|64659|39.7795|-93.3014|964
Mound City|MO|64470|40.1362|-95.2138|1631
Odessa|MO|64076|38.9829|-93.9757|9512
Owensville|MO|65066|38.3511|-91.4867|6703
Redford|MO|63665|37.3272|-91.0243|241
Rocky Mount|MO|65072|38.2911|-92.7059|1847
Saint Louis|MO|63131|38.6171|-90.4504|927396
Syracuse|MO|65354|38.6547|-92.8929|628
Unionville|MO|63565|40.4815|-92.9951|3805
Utica|MO|64686|39.7417|-93.6289|271
Wheaton|MO|64874|36.7651|-94.0492|760
Williamsburg|MO|63388|38.8874|-91.7689|710
Coffeeville|MS|38922|33.9215|-89.6782|3451
Duncan|MS|38740|34.047|-90.7652|466
Florence|MS|39073|32.153|-90.1217|19685
Heidelberg|MS|39439|31.882|-88.9981|4573
Jackson|MS|39211|32.3739|-90.1293|233060
Mayersville|MS|39113|32.9013|-91.0286|595
Meadville|MS|39653|31.4285|-90.8578|2799
Moorhead|MS|38761|33.4783|-90.5142|2870
Paris|MS|38949|34.1992|-89.382|297
Pearlington|MS|39572|30.2508|-89.6011|1414
Ridgeland|MS|39157|32.4122|-90.1207|24645
Sontag|MS|39665|31.6453|-90.1801|1196
Sturgis|MS|39769|33.357|-89.0473|1923
Sunflower|MS|38778|33.5567|-90.5451|1686
University|MS|38677|34.3396|-89.5736|4198
Alder|MT|59710|45.1939|-112.0568|286
Belgrade|MT|59714|45.7801|-111.1439|18182
Boulder|MT|59632|46.2306|-112.1138|1939
Bridger|MT|59014|45.2857|-108.9082|1446
Heart Butte|MT|59448|48.2777|-112.8456|743
Sula|MT|59871|45.8433|-113.8748|218
Turner|MT|59542|48.8328|-108.3961|192
Andrews|NC|28901|35.1959|-83.8228|5354
Bailey|NC|27807|35.8072|-78.0892|6629
Bolton|NC|28423|34.3091|-78.3372|2290
Collettsville|NC|28611|35.9946|-81.7266|885
Creedmoor|NC|27522|36.1124|-78.6476|12335
Fayetteville|NC|28314|35.0583|-79.008|238602
Gibsonville|NC|27249|36.1183|-79.5685|12486
Grimesland|NC|27837|35.558|-77.2566|5903
Grover|NC|28073|35.1836|-81.4552|5621
Haw River|NC|27258|36.0424|-79.3242|6006
Mooresville|NC|28117|35.584|-80.8685|69793
Moravian Falls|NC|28654|36.0788|-81.1781|3495
North Wilkesboro|NC|28659|36.2017|-81.1286|21134
Pelham|NC|27311|36.4899|-79.4736|3402
Pembroke|NC|28372|34.6902|-79.1834|14783
Summerfield|NC|27358|36.2245|-79.8901|14075
Wilmington|NC|28405|34.2651|-77.867|186140
Christine|ND|58015|46.5522|-96.7909|291
Coleharbor|ND|58531|47.5196|-101.2332|307
Michigan|ND|58259|48.0204|-98.1186|454
Noonan|ND|58765|48.8856|-103.0098|248
Palermo|ND|58769|48.3396|-102.24|229
Reynolds|ND|58275|47.7068|-97.2092|733
Rhame|ND|58651|46.1664|-103.7079|475
Shields|ND|58569|46.1838|-101.2589|77
Wilton|ND|58579|47.1709|-100.7944|1190
Brainard|NE|68626|41.1832|-96.9882|614
Campbell|NE|68932|40.2967|-98.737|493
Carroll|NE|68723|42.277|-97.1926|566
Fullerton|NE|68638|41.366|-98.0054|1749
Holstein|NE|68950|40.4542|-98.6538|331
Hooper|NE|68031|41.6414|-96.5232|1745
Howells|NE|68641|41.6964|-96.9858|1063
Manley|NE|68403|40.9207|-96.168|206
Nelson|NE|68961|40.201|-98.0684|732
North Loup|NE|68859|41.4972|-98.7858|509
Omaha|NE|68117|41.2064|-95.9953|518429
Ravenna|NE|68869|41.0233|-98.9041|2202
Roseland|NE|68973|40.4591|-98.5551|463
Sprague|NE|68438|40.6267|-96.7456|142
Sutherland|NE|69165|41.1558|-101.136|1789
Valentine|NE|69201|42.8062|-100.6215|4005
Weeping Water|NE|68463|40.8731|-96.1528|1517
Westerville|NE|68881|41.4193|-99.3844|73
Acworth|NH|3601|43.196|-72.3001|477
Belmont|NH|3220|43.4512|-71.489|7430
Center Tuftonboro|NH|3816|43.6849|-71.2551|1368
Conway|NH|3818|43.9742|-71.1503|3807
Grantham|NH|3753|43.5103|-72.1334|2971
Jaffrey|NH|3452|42.8178|-72.0275|5457
Newton|NH|3858|42.8678|-71.042|4603
North Haverhill|NH|3774|44.0978|-72.0191|1966
Allenhurst|NJ|7711|40.2367|-74.0067|1533
Boonton|NJ|7005|40.9115|-74.414|15269
Bridgeport|NJ|8014|39.8016|-75.3478|504
Elizabeth|NJ|7208|40.6747|-74.2239|124967
Fairview|NJ|7022|40.817|-74.0|13835
Greenwich|NJ|8323|39.4055|-75.3209|804
Harrington Park|NJ|7640|40.9918|-73.98|4664
Heislerville|NJ|8324|39.224|-74.9942|526
Iselin|NJ|8830|40.5716|-74.3167|18459
Matawan|NJ|7747|40.4109|-74.238|30770
Monmouth Beach|NJ|7750|40.333|-73.9809|3279
Ogdensburg|NJ|7439|41.0767|-74.5982|2456
Plainfield|NJ|7060|40.6152|-74.415|71485
Richland|NJ|8350|39.485|-74.8776|825
Stirling|NJ|7980|40.6774|-74.4968|2307
West Long Branch|NJ|7764|40.2878|-74.0162|8097
Albuquerque|NM|87109|35.1506|-106.569|641349
Albuquerque|NM|87116|35.0561|-106.5506|641349
Crownpoint|NM|87313|35.7206|-108.0271|5662
Espanola|NM|87533|35.9866|-106.0654|18408
High Rolls Mountain Park|NM|88325|32.9396|-105.8189|899
Kirtland Afb|NM|87117|35.0203|-106.5503|310
Lamy|NM|87540|35.4311|-105.9409|923
Llano|NM|87543|36.1486|-105.6648|247
Loving|NM|88256|32.274|-104.0914|1925
Moriarty|NM|87035|34.9889|-106.0609|7268
Red River|NM|87558|36.6659|-105.4694|606
Ruidoso|NM|88355|33.3305|-105.6933|8874
Reno|NV|89512|39.5483|-119.7957|276896
Ruth|NV|89319|39.3426|-114.8859|450
Washoe Valley|NV|89704|39.2669|-119.8174|4290
Albany|NY|12222|42.6853|-73.8253|151022
Allentown|NY|14707|42.0737|-78.0594|239
Altona|NY|12910|44.8816|-73.6408|2148
Armonk|NY|10504|41.136|-73.7009|7987
Barneveld|NY|13304|43.2237|-75.1612|1684
Belfast|NY|14711|42.32|-78.0943|1766
Bellmore|NY|11710|40.6729|-73.5365|34496
Big Indian|NY|12410|42.074|-74.453|397
Breesport|NY|14816|42.1939|-76.7361|520
Bronx|NY|10463|40.8798|-73.9067|1382480
Brooklyn|NY|11217|40.6816|-73.9798|2504700
Brownville|NY|13615|44.0577|-76.0196|1271
Camden|NY|13316|43.3392|-75.7543|6460
Chatham|NY|12037|42.3496|-73.5873|4015
Cottekill|NY|12419|41.8467|-74.1038|722
Cowlesville|NY|14037|42.8112|-78.4481|1166
De Lancey|NY|13752|42.189|-74.9229|782
Downsville|NY|13755|42.0716|-75.0152|1228
East Rochester|NY|14445|43.1128|-77.4906|8019
Falconer|NY|14733|42.1239|-79.1895|3833
Farmington|NY|14425|42.958|-77.3083|10717
Garrattsville|NY|13342|42.6315|-75.1866|165
Hannawa Falls|NY|13647|44.6087|-74.9732|69
Howes Cave|NY|12092|42.7045|-74.3648|1304
Hudson|NY|12534|42.247|-73.7552|17867
Jefferson|NY|12093|42.4999|-74.6117|1666
Jordanville|NY|13361|42.8948|-74.8209|824
Knowlesville|NY|14479|43.2363|-78.3138|275
Lowville|NY|13367|43.7893|-75.4156|8830
Margaretville|NY|12455|42.1852|-74.6178|1988
Montrose|NY|10548|41.2496|-73.9446|3487
Moriches|NY|11955|40.8095|-72.8229|3285
Mount Morris|NY|14510|42.6835|-77.8664|4895
New York City|NY|10039|40.8265|-73.9383|1577385
New York City|NY|10162|40.7699|-73.9511|1577385
New York City|NY|10280|40.7105|-74.0163|1577385
Newark Valley|NY|13811|42.2281|-76.1625|4354
North Tonawanda|NY|14120|43.0498|-78.851|45100
Northport|NY|11768|40.9051|-73.3309|21902
Oak Hill|NY|12460|42.4069|-74.1528|277
Oakdale|NY|11769|40.7382|-73.1297|9506
Orangeburg|NY|10962|41.0442|-73.9609|5950
Orient|NY|11957|41.1437|-72.2879|743
Oriskany Falls|NY|13425|42.9576|-75.4838|1970
Palmyra|NY|14522|43.0622|-77.2218|9565
Pomona|NY|10970|41.1901|-74.0436|9993
Port Ewen|NY|12466|41.8948|-73.9767|2471
Port Gibson|NY|14537|43.033|-77.1575|207
Rock Tavern|NY|12575|41.4575|-74.1659|2258
Saint Bonaventure|NY|14778|42.2701|-78.6847|1453
Shelter Island|NY|11964|41.064|-72.3366|1858
South Richmond Hill|NY|11419|40.6868|-73.823|47211
Springfield Gardens|NY|11413|40.6645|-73.7559|38912
Stittville|NY|13469|43.2229|-75.2899|847
Tupper Lake|NY|12986|44.232|-74.4905|6120
West Chazy|NY|12992|44.797|-73.5112|4778
West Eaton|NY|13484|42.8546|-75.6605|176
West Harrison|NY|10604|41.0592|-73.7395|11250
West Henrietta|NY|14586|43.0397|-77.6871|10256
West Sayville|NY|11796|40.732|-73.1|4056
Westhampton Beach|NY|11978|40.8295|-72.6473|3255
Akron|OH|44307|41.0695|-81.5488|272134
Amanda|OH|43102|39.6251|-82.7552|4512
Amsterdam|OH|43903|40.4731|-80.9596|2208
Arcadia|OH|44804|41.1116|-83.502|1202
Beaverdam|OH|45808|40.8314|-83.9758|349
Bethel|OH|45106|38.9424|-84.092|12349
Bowersville|OH|45307|39.5756|-83.7153|338
Canton|OH|44702|40.8027|-81.3739|192805
Clay Center|OH|43408|41.5686|-83.3632|269
Creola|OH|45622|39.3543|-82.503|321
Cuyahoga Falls|OH|44223|41.1464|-81.5107|47772
Dayton|OH|45415|39.8355|-84.2613|479994
Diamond|OH|44412|41.0935|-81.0425|2644
Fulton|OH|43321|40.4971|-82.8342|267
Greenville|OH|45331|40.0987|-84.6342|22930
Hinckley|OH|44233|41.2419|-81.7453|7646
Holloway|OH|43985|40.0113|-80.9701|128
Ironton|OH|45638|38.5294|-82.6654|21635
Kirby|OH|43330|40.813|-83.4196|118
Lima|OH|45801|40.7641|-84.0973|86954
Lithopolis|OH|43136|39.8013|-82.8125|460
Mansfield|OH|44902|40.7559|-82.5123|92985
Maria Stein|OH|45860|40.4062|-84.5076|2274
Miamisburg|OH|45342|39.6321|-84.2675|36784
Milford|OH|45150|39.1657|-84.233|31394
Mount Perry|OH|43760|39.8788|-82.188|1831
Mount Saint Joseph|OH|45051|39.0965|-84.6431|177
Norwalk|OH|44857|41.2403|-82.6078|23805
Norwich|OH|43767|39.9934|-81.8024|1443
Paulding|OH|45879|41.141|-84.5722|6284
Randolph|OH|44265|41.0109|-81.2977|51
Rosewood|OH|43070|40.2158|-83.9579|133
Warren|OH|44483|41.2639|-80.8164|75903
Washington Court House|OH|43160|39.537|-83.455|22305
Waynesfield|OH|45896|40.6072|-83.9585|2089
Zaleski|OH|45698|39.283|-82.3977|341
Achille|OK|74720|33.8396|-96.3648|608
Amorita|OK|73719|36.9412|-98.2458|83
Burbank|OK|74633|36.6966|-96.7869|471
Burns Flat|OK|73624|35.3492|-99.188|2142
Clayton|OK|74536|34.5906|-95.38|1760
Coyle|OK|73027|35.8985|-97.2607|1493
Edmond|OK|73034|35.6665|-97.4798|116001
Lahoma|OK|73754|36.385|-98.0727|1078
Lane|OK|74555|34.2691|-95.9685|861
Mounds|OK|74047|35.8896|-96.0887|7163
Mountain Park|OK|73559|34.7032|-98.9591|540
Oklahoma City|OK|73134|35.6174|-97.5583|640470
Roosevelt|OK|73564|34.847|-98.9836|551
Stillwater|OK|74074|36.1043|-97.0609|55345
Thomas|OK|73669|35.7382|-98.7388|1675
Tryon|OK|74875|35.8759|-96.9623|1165
Tulsa|OK|74130|36.2395|-95.9596|413574
Tulsa|OK|74131|36.0557|-96.0602|413574
Athena|OR|97813|45.8289|-118.4971|1302
Bay City|OR|97107|45.5197|-123.8761|1530
Cascade Locks|OR|97014|45.671|-121.8686|1288
Eugene|OR|97403|44.0385|-123.0614|191096
Gardiner|OR|97441|43.7857|-124.1437|260
Jordan Valley|OR|97910|42.8801|-117.281|641
Kent|OR|97033|45.0838|-120.6649|60
Lake Oswego|OR|97034|45.4093|-122.6847|42817
Lowell|OR|97452|43.921|-122.7806|1420
Newberg|OR|97132|45.3099|-122.9685|28278
Portland|OR|97210|45.5303|-122.7033|841711
Powell Butte|OR|97753|44.2415|-121.0113|2016
Scotts Mills|OR|97375|44.9897|-122.6187|1252
Shedd|OR|97377|44.453|-123.1065|917
Sixes|OR|97476|42.825|-124.4409|217
Stayton|OR|97383|44.8021|-122.7624|9587
Westfir|OR|97492|43.7575|-122.481|597
Allentown|PA|18103|40.5891|-75.4645|166081
Armagh|PA|15920|40.4603|-79.0097|922
Atglen|PA|19310|39.9458|-75.9703|3066
Beaver Falls|PA|15010|40.7687|-80.3592|28425
Bolivar|PA|15923|40.3673|-79.1605|1770
Bristol|PA|19007|40.1159|-74.8536|21125
Chester Heights|PA|19017|39.8839|-75.4669|348
Clarks Mills|PA|16114|41.3851|-80.1752|606
Clune|PA|15727|40.5503|-79.3237|168
Cochranton|PA|16314|41.5205|-80.0573|5507
Cokeburg|PA|15324|40.1008|-80.0652|632
Corsica|PA|15829|41.1762|-79.1976|1274
Cressona|PA|17929|40.6284|-76.195|1606
Dublin|PA|18917|40.375|-75.2045|2158
Dunlevy|PA|15432|40.1151|-79.8627|427
Emporium|PA|15834|41.5177|-78.2536|4533
Fenelton|PA|16034|40.8555|-79.7372|2054
Glen Rock|PA|17327|39.7813|-76.7477|7565
Grassflat|PA|16839|41.0036|-78.1104|489
Harborcreek|PA|16421|42.1767|-79.9416|2518
Harmony|PA|16037|40.8496|-80.1381|4589
Irvine|PA|16329|41.8117|-79.2643|528
Jermyn|PA|18433|41.5744|-75.5881|6508
Keisterville|PA|15449|39.9636|-79.7853|184
Lawn|PA|17041|40.2236|-76.538|213
Leetsdale|PA|15056|40.5662|-80.2099|1140
Manor|PA|15665|40.3359|-79.6607|1472
Marienville|PA|16239|41.4622|-79.1306|4172
Mc Clellandtown|PA|15458|39.8882|-79.8694|2379
Mc Veytown|PA|17051|40.5046|-77.7186|4653
Mifflin|PA|17058|40.5553|-77.4001|1909
Mill Creek|PA|17060|40.4679|-77.8967|1334
Montandon|PA|17850|40.9661|-76.8575|645
Morrisdale|PA|16858|41.0001|-78.2357|3688
North Washington|PA|16048|41.0472|-79.8089|139
Oaks|PA|19456|40.1334|-75.4536|737
Philadelphia|PA|19149|40.0369|-75.0664|1526206
Philadelphia|PA|19154|40.0897|-74.9781|1526206
Pittsburgh|PA|15217|40.4308|-79.9205|687276
Rock Glen|PA|18246|40.954|-76.1747|143
Rockwood|PA|15557|39.9373|-79.1865|3684
Schaefferstown|PA|17088|40.3087|-76.2963|823
Shippingport|PA|15077|40.6025|-80.3863|198
Skytop|PA|18357|41.2336|-75.2389|104
Smock|PA|15480|39.9961|-79.7678|1946
Spring Church|PA|15686|40.6153|-79.4545|972
Uledi|PA|15484|39.8936|-79.7856|328
Utica|PA|16362|41.4798|-79.9403|1102
Vanderbilt|PA|15486|40.0246|-79.6955|2303
West Decatur|PA|16878|40.9493|-78.3129|1762
West Finley|PA|15377|39.9914|-80.4408|724
Providence|RI|2908|41.8383|-71.4377|203571
Arcadia|SC|29320|34.9572|-81.9916|530
Blackville|SC|29817|33.3645|-81.2718|4913
Bradley|SC|29819|34.0326|-82.2027|1523
Brunson|SC|29911|32.9413|-81.1807|1725
Cassatt|SC|29032|34.3424|-80.5|4424
Clifton|SC|29324|34.9906|-81.8327|167
Columbia|SC|29209|33.9659|-80.9355|333497
Cross|SC|29436|33.3364|-80.1859|4471
Edisto Island|SC|29438|32.5486|-80.307|2408
Ehrhardt|SC|29081|33.1044|-81.0221|1352
Hopkins|SC|29061|33.9349|-80.8449|13717
Johns Island|SC|29455|32.8357|-79.8217|20478
Marietta|SC|29661|35.0296|-82.5136|5648
Monetta|SC|29105|33.8084|-81.5956|1514
New Ellenton|SC|29809|33.413|-81.69|2206
North Augusta|SC|29860|33.6028|-81.9748|46944
Prosperity|SC|29127|34.1832|-81.5324|8333
Scotia|SC|29939|32.6786|-81.2455|302
West Columbia|SC|29170|33.9568|-81.1405|52126
Barnard|SD|57426|45.7205|-98.5534|63
Belle Fourche|SD|57717|44.6723|-103.8396|8007
Deadwood|SD|57732|44.3566|-103.6999|1979
Ferney|SD|57439|45.329|-98.0837|52
Fulton|SD|57340|43.7588|-97.8712|355
Hurley|SD|57036|43.2893|-97.1904|811
Manderson|SD|57756|43.3526|-102.5411|1126
Mc Intosh|SD|57641|45.7084|-101.1546|295
Spencer|SD|57374|43.7557|-97.5936|343
Apison|TN|37302|35.0149|-85.0164|3730
Bethel Springs|TN|38315|35.2289|-88.644|3876
Clarksville|TN|37040|36.522|-87.349|151785
Grand Junction|TN|38039|35.0659|-89.1534|1804
Heiskell|TN|37754|36.115|-84.0438|4729
Kingsport|TN|37663|36.4715|-82.4834|87124
Knoxville|TN|37932|35.9335|-84.1481|391389
Murfreesboro|TN|37132|35.8596|-86.421|158701
Oakland|TN|38060|35.2229|-89.5518|9496
Old Hickory|TN|37138|36.2416|-86.6117|22191
Powell|TN|37849|36.0435|-84.04|25459
Slayden|TN|37165|36.2835|-87.4581|70
Tiptonville|TN|38079|36.3846|-89.4649|5577
Aledo|TX|76008|32.7004|-97.6039|13602
Altair|TX|77412|29.6047|-96.5249|106
Beasley|TX|77417|29.479|-95.9681|2457
Blooming Grove|TX|76626|32.0758|-96.701|1563
Bynum|TX|76631|31.9907|-96.9837|522
Cleveland|TX|77327|30.33|-95.0202|34153
Coleman|TX|76834|31.8287|-99.427|5908
Cross Plains|TX|76443|32.1482|-99.1872|1897
Dallas|TX|75210|32.7699|-96.743|1263321
Dallas|TX|75218|32.8463|-96.6972|1263321
Dallas|TX|75236|32.69|-96.9177|1263321
Dallas|TX|75238|32.877|-96.708|1263321
Dell City|TX|79837|31.924|-105.2099|579
Desdemona|TX|76445|32.2819|-98.5673|407
El Paso|TX|79906|31.8092|-106.4247|749635
Falls City|TX|78113|28.9814|-98.0156|2435
Gainesville|TX|76240|33.6547|-97.1583|26120
Grandview|TX|76050|32.2779|-97.2351|5875
Harper|TX|78631|30.2816|-99.241|2395
Hedley|TX|79237|34.8698|-100.6806|513
Holliday|TX|76366|33.6751|-98.6576|2317
Houston|TX|77007|29.7736|-95.4034|2906700
Houston|TX|77026|29.7972|-95.3288|2906700
Humble|TX|77338|30.0041|-95.2825|194500
Karnack|TX|75661|32.6205|-94.2|2807
Keller|TX|76248|32.9276|-97.2489|95035
Kilgore|TX|75662|32.3836|-94.8653|24536
Lake Jackson|TX|77566|29.0393|-95.4401|28739
Laredo|TX|78040|27.5155|-99.4986|248858
Leonard|TX|75452|33.4044|-96.2238|4090
Lolita|TX|77971|28.7724|-96.4793|911
Lorenzo|TX|79343|33.6666|-101.5277|1571
Lubbock|TX|79413|33.5466|-101.8871|254282
Marathon|TX|79842|30.1886|-103.2214|498
May|TX|76857|31.9571|-98.9656|1791
Meridian|TX|76665|31.929|-97.6443|2526
Nazareth|TX|79063|34.5444|-102.1069|686
New Waverly|TX|77358|30.5354|-95.4532|4993
Notrees|TX|79759|31.8599|-102.7413|23
O Brien|TX|79539|33.3749|-99.8473|178
Pecos|TX|79772|31.4467|-103.5791|12747
Prairie Hill|TX|76678|31.6591|-96.8094|263
Purmela|TX|76566|31.4841|-97.9903|258
Quanah|TX|79252|34.2956|-99.7494|3202
Ratcliff|TX|75858|31.3833|-95.0619|43
Roma|TX|78584|26.4215|-99.0025|18128
Rule|TX|79548|33.0771|-99.959|932
Sachse|TX|75048|32.9643|-96.6012|20328
San Angelo|TX|76905|31.4647|-100.39|103927
San Antonio|TX|78208|29.44|-98.459|1595797
San Antonio|TX|78214|29.3641|-98.4924|1595797
San Antonio|TX|78248|29.5894|-98.5201|1595797
Sherman|TX|75092|33.6372|-96.6184|46563
Spring|TX|77379|30.0377|-95.5326|316665
Sterling City|TX|76951|31.8351|-101.0017|1143
Summerfield|TX|79085|34.7437|-102.5064|53
Thrall|TX|76578|30.592|-97.2893|1766
Trenton|TX|75490|33.4235|-96.3398|2211
Tyler|TX|75703|32.2768|-95.3031|144160
Zavalla|TX|75980|31.1569|-94.3871|2836
Altonah|UT|84002|40.3207|-110.436|302
American Fork|UT|84003|40.3928|-111.7941|42384
Hatch|UT|84735|37.7175|-112.4777|258
Mendon|UT|84325|41.71|-111.9817|2078
Moab|UT|84532|38.5677|-109.5271|9772
Thompson|UT|84540|38.9999|-109.615|46
Woods Cross|UT|84087|40.8874|-111.9027|13983
Alexandria|VA|22311|38.832|-77.12|321490
Arlington|VA|22213|38.8954|-77.1633|207410
Atlantic|VA|23303|37.9073|-75.5089|741
Basye|VA|22810|38.8089|-78.7776|863
Burke|VA|22015|38.7894|-77.2818|43102
Catawba|VA|24070|37.3696|-80.1284|1363
Damascus|VA|24236|36.6403|-81.7776|3085
Doe Hill|VA|24433|38.4207|-79.4629|99
Drakes Branch|VA|23937|36.9688|-78.5615|1970
Edinburg|VA|22824|38.8432|-78.6003|6018
Etlan|VA|22719|38.5095|-78.2638|395
Falls Church|VA|22046|38.8856|-77.1802|116155
Ford|VA|23850|37.1349|-77.7364|1051
Glade Spring|VA|24340|36.7779|-81.7676|5657
Greenbush|VA|23357|37.7681|-75.6664|776
Hampton|VA|23666|37.0462|-76.4096|136895
Hopewell|VA|23860|37.2876|-77.295|31970
Lebanon|VA|24266|36.8809|-82.0956|9521
Manquin|VA|23106|37.7184|-77.186|976
Ruckersville|VA|22968|38.2586|-78.4074|9815
Springfield|VA|22151|38.8029|-77.2116|104396
Timberville|VA|22853|38.6476|-78.7717|4367
Brandon|VT|5733|43.8065|-73.0882|5895
Graniteville|VT|5654|44.1554|-72.4847|970
Hinesburg|VT|5461|44.3346|-73.098|4542
South Hero|VT|5486|44.64|-73.3113|1654
South Londonderry|VT|5155|43.1699|-72.8515|828
West Hartford|VT|5084|43.7185|-72.4439|140
Ashford|WA|98304|46.7531|-121.9898|759
Burbank|WA|99323|46.1966|-118.9017|3684
Burlington|WA|98233|48.4786|-122.3345|14871
Colton|WA|99113|46.5901|-117.1692|761
Conway|WA|98238|48.34|-122.3456|85
Issaquah|WA|98027|47.4974|-122.0107|50489
Monitor|WA|98836|47.4852|-120.4158|584
Orient|WA|99160|48.8878|-118.2105|149
Tekoa|WA|99033|47.2271|-117.0819|895
Vancouver|WA|98665|45.6892|-122.6616|299480
Adams|WI|53910|43.8967|-89.8219|3508
Bagley|WI|53801|42.9207|-91.0685|878
Benton|WI|53803|42.5545|-90.3508|1306
Boyd|WI|54726|44.9437|-91.0294|1690
Bryant|WI|54418|45.203|-88.9983|1080
Cazenovia|WI|53924|43.4987|-90.2796|1360
Dalton|WI|53926|43.6718|-89.1918|1628
East Troy|WI|53120|42.8035|-88.4092|9679
Greendale|WI|53129|42.9373|-87.9943|13973
Hewitt|WI|54441|44.6437|-90.1031|828
Milwaukee|WI|53228|42.9676|-88.0434|817312
New Holstein|WI|53061|43.9446|-88.0911|5196
North Prairie|WI|53153|42.9385|-88.395|2328
Oconto Falls|WI|54154|44.8755|-88.1555|5548
Saxon|WI|54559|46.4959|-90.4383|795
Seneca|WI|54654|43.2064|-90.9405|153
Tomahawk|WI|54487|45.4963|-89.7273|9594
Waukesha|WI|53186|42.9993|-88.2196|95015
Waupaca|WI|54981|44.3481|-89.1101|15426
Winter|WI|54896|45.8327|-91.0144|1478
Wittenberg|WI|54499|44.8232|-89.1665|3223
Cass|WV|24927|38.388|-79.9906|365
Center Point|WV|26339|39.4125|-80.6352|255
Comfort|WV|25049|38.1372|-81.5962|630
Daniels|WV|25832|37.7256|-81.1087|3994
Henderson|WV|25106|38.8265|-82.1364|642
Hurricane|WV|25526|38.4257|-81.9943|21902
Moundsville|WV|26041|39.9148|-80.731|16183
Premier|WV|24878|37.3752|-81.6539|337
Ronceverte|WV|24970|37.7418|-80.4626|4575
Shenandoah Junction|WV|25442|39.3716|-77.8229|1925
Tallmansville|WV|26237|38.8564|-80.158|571
Thomas|WV|26292|39.1505|-79.503|836
Union|WV|24983|37.5802|-80.5248|2443
White Sulphur Springs|WV|24986|37.7827|-80.3129|5216
Winfield|WV|25213|38.5072|-81.89|5512
Alva|WY|82711|44.6873|-104.4414|110
Fort Washakie|WY|82514|43.0048|-108.8964|1645
Freedom|WY|83120|43.0172|-111.0292|471
Jelm|WY|82063|41.0539|-106.0763|100
Lagrange|WY|82221|41.6423|-104.1974|635
Laramie|WY|82072|41.4247|-105.4781|35371
Lonetree|WY|82936|41.0552|-110.1603|49
Manville|WY|82227|42.73|-104.7024|241
Riverton|WY|82501|43.0351|-108.2024|19408
Rock Springs|WY|82901|41.606|-109.23|27971
Yellowstone National Park|WY|82190|44.7957|-110.6137|369
"""
