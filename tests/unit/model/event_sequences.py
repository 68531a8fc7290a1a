"""Random card event sequences that stress the per-card state's batch path, and its straightforward reference.

The sequences mix what the stream can bring: several cards, equal times, steps of exactly a
window (1 h, 24 h, 7 d, where ``(now - window, now]`` excludes the far end), times out of
order, night-boundary seconds, Kafka messages redelivered at or below the watermark, the same
transaction republished at a new offset, and training's events with no position or trans_num.
"""

from __future__ import annotations

import random
from collections.abc import MutableMapping

import numpy as np

from model.behavior import CardBehavior

T0 = 1_546_300_800  # 2019-01-01 00:00:00
CATEGORIES = ("grocery_pos", "travel", "misc_net")
_STEPS = (0, 1, 59, 600, 3599, 3600, 3601, 14_400, 86_399, 86_400, 86_401, 200_000, 604_799, 604_800, 604_801)

Event = tuple[str, int, float, str, tuple[int, int] | None, str | None]  # token, t, amt, category, position, trans_num


def random_events(seed: int, count: int, cards: int = 4) -> list[Event]:
    rng = random.Random(seed)
    clock = {f"card{k}": T0 + rng.randrange(86_400) for k in range(cards)}
    offsets = dict.fromkeys(range(3), 0)
    trans_nums: list[str] = []
    events: list[Event] = []
    for _ in range(count):
        token = rng.choice(list(clock))
        roll = rng.random()
        if roll < 0.08:  # out of order: before the card's latest event, possibly beyond a window
            t = clock[token] - rng.choice(_STEPS[1:])
        else:
            clock[token] += rng.choice(_STEPS)
            t = clock[token]
        partition = rng.randrange(3)
        if roll > 0.95 and offsets[partition]:  # a redelivered message: at or below what was consumed
            position: tuple[int, int] | None = (partition, rng.randrange(offsets[partition]))
        else:
            position = (partition, offsets[partition])
            offsets[partition] += 1
        if trans_nums and rng.random() < 0.05:  # the same transaction published again
            trans_num: str | None = rng.choice(trans_nums)
        else:
            trans_num = f"{rng.getrandbits(128):032x}"
            trans_nums.append(trans_num)
        if rng.random() < 0.1:  # training's events carry neither
            position, trans_num = None, None
        amt = rng.choice([round(rng.uniform(0.5, 900), 2), round(rng.uniform(1, 20), 2), 1.0, 0.01])
        events.append((token, t, amt, rng.choice(CATEGORIES), position, trans_num))
    return events


def reference_prior_states(states: MutableMapping[str, CardBehavior], events: list[Event]) -> np.ndarray:
    """``model.behavior.PRIOR_STATE_COLUMNS`` of each event the straightforward way: read the state,
    ``windows``, then ``apply`` unless already applied (``model.features.apply_txn``)."""
    rows = []
    for token, t, amt, category, position, trans_num in events:
        state = states.get(token)
        if state is None:
            state = states[token] = CardBehavior()
        n_category = state.category_counts.get(category, 0)
        rows.append((
            state.count, state.mean, state.m2, state.max_amt, state.sum_cents, state.night_count,
            t if state.first_seen is None else state.first_seen, t if state.last_seen is None else state.last_seen,
            n_category, state.category_means[category] if n_category else 0.0, state.category_m2.get(category, 0.0),
            *state.windows(t),
        ))  # fmt: skip
        if position is None or not state.already_applied(*position):
            state.apply(t, amt, category, position, trans_num)
    return np.array(rows, dtype=np.float64).reshape(-1, 18)


def random_batches(seed: int, events: list[Event]) -> list[list[Event]]:
    """``events`` cut at random points into micro-batches (some of one event)."""
    rng = random.Random(seed)
    batches, start = [], 0
    while start < len(events):
        end = start + rng.choice([1, 2, 7, 40, 150])
        batches.append(events[start:end])
        start = end
    return batches
