"""Cardholders (one card each) and the merchant pool, drawn with faker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

from producer.generator.parameters import (
    AGE_COUNTS,
    AGE_EDGES,
    CATEGORY_ORDER,
    FEMALE_SHARE,
    MERCHANT_POOL_SEED,
    MERCHANTS_PER_CATEGORY,
    N_CAT,
    URBAN_MIN_POP,
)
from producer.generator.places import place_table, zip_candidates
from producer.generator.profiles import profile_table


def csv_field(text: str) -> str:
    """``text`` as one CSV field (quoted when it holds a comma, quote or newline)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


@lru_cache(maxsize=1)
def merchant_pool() -> tuple[tuple[str, ...], np.ndarray]:
    """``merchant,category`` CSV text per merchant, and the first merchant per category."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(MERCHANT_POOL_SEED)
    texts: list[str] = []
    for category in CATEGORY_ORDER:
        names: list[str] = []
        while len(names) < MERCHANTS_PER_CATEGORY:
            name = "fraud_" + fake.company()
            if name not in names:
                names.append(name)
        texts.extend(f"{csv_field(name)},{category}" for name in names)
    first = np.arange(N_CAT) * MERCHANTS_PER_CATEGORY
    return tuple(texts), first


@dataclass(frozen=True)
class Customers:
    """The cardholders as columns (one card each)."""

    card_text: tuple[str, ...]  # cc_num
    person_text: tuple[str, ...]  # first .. dob, CSV-joined
    profile: np.ndarray
    rate: np.ndarray  # transactions per day
    lat: np.ndarray
    long: np.ndarray
    zip_candidates: np.ndarray  # (n, k) place indices near home; padded with a far sentinel


def draw_customers(n: int, start: date, seed: int, rng: np.random.Generator) -> Customers:
    """``n`` cardholders: home, age, card, identity, profile and daily rate."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    places = place_table()
    profiles = profile_table()

    female = rng.random(n) < FEMALE_SHARE
    replace = n > len(places.zip)
    home = rng.choice(len(places.zip), size=n, replace=replace)
    age_bin = rng.choice(len(AGE_COUNTS), size=n, p=np.array(AGE_COUNTS) / sum(AGE_COUNTS))
    edges = np.array(AGE_EDGES, dtype=float)
    age = edges[age_bin] + rng.random(n) * (edges[age_bin + 1] - edges[age_bin])
    age_days = np.round(age * 365.25).astype(int)
    cards, persons, profile = _identities(fake, female, home, age, age_days, start)

    lo = profiles.tx_per_day[profile, 0]
    hi = profiles.tx_per_day[profile, 1]
    rate = rng.integers(lo, hi + 1)
    lat, long = places.lat[home], places.long[home]
    return Customers(
        card_text=tuple(cards),
        person_text=tuple(persons),
        profile=profile,
        rate=rate,
        lat=lat,
        long=long,
        zip_candidates=zip_candidates(lat, long, places),
    )


def _identities(
    fake: Any, female: np.ndarray, home: np.ndarray, age: np.ndarray, age_days: np.ndarray, start: date
) -> tuple[list[str], list[str], np.ndarray]:
    """Card number, ``first .. dob`` CSV text and profile of each customer, in faker's call order."""
    places = place_table()
    profiles = profile_table()
    cards: list[str] = []
    seen: set[str] = set()
    persons: list[str] = []
    profile = np.empty(len(female), dtype=np.int64)
    for i in range(len(female)):
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
        persons.append(",".join(csv_field(f) for f in fields))
        band = 0 if age[i] < 25 else 1 if age[i] < 50 else 2
        profile[i] = profiles.index(band, gender, bool(places.pop[p] >= URBAN_MIN_POP))
    return cards, persons, profile
