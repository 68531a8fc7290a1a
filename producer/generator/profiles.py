"""The twelve behaviour profiles (age band x gender x area) as parameter arrays."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from producer.generator.parameters import (
    AM_SHARE,
    AMOUNTS,
    AREAS,
    BANDS,
    CAT,
    CATEGORY_WEIGHTS,
    FRAUD_AM_SHARE,
    FRAUD_AMOUNTS,
    FRAUD_CATEGORY_WEIGHTS,
    FRAUD_COUNT,
    GENDERS,
    MALE_FACTORS,
    RURAL_FACTORS,
    TX_PER_DAY,
)


@dataclass(frozen=True)
class Profiles:
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
        return (band * len(GENDERS) + GENDERS.index(gender)) * len(AREAS) + int(urban)


def _gamma_params(amounts: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    mean = np.array([m for m, _ in amounts], dtype=float)
    sd = np.array([s for _, s in amounts], dtype=float)
    return (mean / sd) ** 2, sd**2 / mean


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights) / weights.sum()
    cdf[-1] = 1.0
    return cdf


@lru_cache(maxsize=1)
def profile_table() -> Profiles:
    names, band_of, tx, fcount = [], [], [], []
    cdf, am, shape, scale = [], [], [], []
    fraud_cdf, fraud_shape, fraud_scale = [], [], []
    for b, band in enumerate(BANDS):
        k, theta = _gamma_params(AMOUNTS[band])
        fk, ftheta = _gamma_params(FRAUD_AMOUNTS[band])
        for gender in GENDERS:
            for area in AREAS:
                weights = np.array(CATEGORY_WEIGHTS[band], dtype=float)
                for factors, applies in (
                    (MALE_FACTORS, gender == "M"),
                    (RURAL_FACTORS, area == "rural"),
                ):
                    if applies:
                        for category, factor in factors.items():
                            weights[CAT[category]] *= factor
                sex = "female" if gender == "F" else "male"
                names.append(f"{band}_{sex}_{area}")
                band_of.append(b)
                tx.append(TX_PER_DAY[band, gender])
                fcount.append(FRAUD_COUNT[band])
                cdf.append(_cdf(weights))
                am.append(AM_SHARE[band][gender, area])
                shape.append(k)
                scale.append(theta)
                fraud_cdf.append(_cdf(np.array(FRAUD_CATEGORY_WEIGHTS, dtype=float)))
                fraud_shape.append(fk)
                fraud_scale.append(ftheta)
    n = len(names)
    return Profiles(
        names=tuple(names),
        band=np.array(band_of),
        tx_per_day=np.array(tx),
        fraud_count=np.array(fcount),
        cum_weights=np.vstack(cdf + fraud_cdf),
        am_share=np.array(am + [FRAUD_AM_SHARE] * n),
        gamma_shape=np.vstack(shape + fraud_shape),
        gamma_scale=np.vstack(scale + fraud_scale),
    )
