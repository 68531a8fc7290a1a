"""Fraud episodes, and the transactions of one calendar month for all customers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from producer.generator.clock import Calendar
from producer.generator.parameters import (
    FRAUD_LAST_START,
    FRAUD_NIGHT_FORCED,
    FRAUD_SHARE_OF_CUSTOMERS,
    MERCHANT_RADIUS_DEG,
    MERCHANTS_PER_CATEGORY,
    N_CAT,
    SIMULATION_RUN_DAYS,
)
from producer.generator.people import Customers, merchant_pool
from producer.generator.places import merchant_zip
from producer.generator.profiles import profile_table


@dataclass(frozen=True)
class Episodes:
    """Fraud per customer-day inside the window: sparse (customer, day, count)."""

    customer: np.ndarray
    day: np.ndarray
    count: np.ndarray


def draw_episodes(customers: Customers, cal: Calendar, rng: np.random.Generator) -> Episodes:
    """One fraud episode for most customers, over its start day and the next."""
    profiles = profile_table()
    n, n_days = len(customers.rate), len(cal.days)
    has = rng.random(n) < FRAUD_SHARE_OF_CUSTOMERS
    run_days = max(n_days + FRAUD_LAST_START + 1, SIMULATION_RUN_DAYS)
    # The episode's first day (its last is the next), drawn as the simulator did:
    # randint(1, (run_end - run_start).days - 7).
    first = rng.integers(1, run_days - FRAUD_LAST_START, size=n)
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
    return Episodes(customer=cust[nonzero], day=day[nonzero], count=cnt[nonzero])


def month_rows(
    customers: Customers,
    episodes: Episodes,
    cal: Calendar,
    lam_scale: np.ndarray,
    first_day: int,
    end_day: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Every transaction of days ``[first_day, end_day)``, in time order, as columns."""
    cust, day, fraud = _customer_days(customers, episodes, cal, lam_scale, first_day, end_day, rng)
    rows = _draw_transactions(customers, cust, day, fraud, rng)
    trans_num = rows.pop("trans_num")
    order = np.lexsort((np.arange(len(cust)), cust, rows["seconds"], day))
    rows = {k: v[order] for k, v in rows.items()}
    rows["trans_num"] = trans_num[order]
    rows["merch_zip"] = merchant_zip(
        customers.lat, customers.zip_candidates, rows["customer"], rows["merch_lat"], rows["merch_long"]
    )
    rows["unix_time"] = cal.sim_midnight[rows["day"]] + rows["seconds"]
    return rows


def _customer_days(
    customers: Customers,
    episodes: Episodes,
    cal: Calendar,
    lam_scale: np.ndarray,
    first_day: int,
    end_day: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customer, day and fraud flag of each transaction of the month (not yet in order)."""
    profiles = profile_table()
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
    return cust, day, fraud


def _draw_transactions(
    customers: Customers, cust: np.ndarray, day: np.ndarray, fraud: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Time of day, category, amount, merchant and id of each transaction (the draw order is the output)."""
    profiles = profile_table()
    n = len(cust)
    kind = customers.profile[cust] + len(profiles.names) * fraud
    u = rng.random(n)
    category = (u[:, None] > profiles.cum_weights[kind]).sum(axis=1)
    category = np.minimum(category, N_CAT - 1)
    am = u < profiles.am_share[kind]
    hour = rng.integers(0, 12, size=n) + np.where(am, 0, 12)
    forced = fraud & (rng.random(n) < FRAUD_NIGHT_FORCED)
    hour = np.where(forced & am, rng.integers(0, 4, size=n), hour)
    hour = np.where(forced & ~am, rng.integers(22, 24, size=n), hour)
    seconds = hour * 3600 + rng.integers(0, 3600, size=n)

    amount = rng.gamma(profiles.gamma_shape[kind, category], profiles.gamma_scale[kind, category])
    small = amount < 1.0
    amount[small] = rng.uniform(1.0, 10.0, size=int(small.sum()))
    amount = np.round(amount, 2)

    _, first_merchant = merchant_pool()
    merchant = first_merchant[category] + rng.integers(0, MERCHANTS_PER_CATEGORY, size=n)
    merch_lat = np.round(customers.lat[cust] + rng.uniform(-MERCHANT_RADIUS_DEG, MERCHANT_RADIUS_DEG, n), 6)
    merch_long = np.round(customers.long[cust] + rng.uniform(-MERCHANT_RADIUS_DEG, MERCHANT_RADIUS_DEG, n), 6)
    trans_num = rng.bytes(16 * n)
    return {
        "customer": cust,
        "day": day,
        "seconds": seconds,
        "fraud": fraud,
        "merchant": merchant,
        "amount": amount,
        "merch_lat": merch_lat,
        "merch_long": merch_long,
        "trans_num": np.frombuffer(trans_num, dtype="S16"),
    }
