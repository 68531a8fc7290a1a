"""One scale for every detector: a raw score's *nines* among reference scores.

``-log10(1 - F(x))``, where ``F`` is the distribution of the detector's scores on
reference events: 2 nines is the top 1 %, 3 the top 0.1 %. See ``model.ensemble``.
"""

from __future__ import annotations

import numpy as np

NINES_AT_HALF_SCORE = 3.0
_LEVELS = np.unique(np.concatenate([np.linspace(0.0, 0.99, 100), 1.0 - np.logspace(-2, -6, 121)]))
_TAIL_LEVEL = 0.99  # the extrapolation above the training maximum keeps the slope from here to the top


class NinesScale:
    """A raw score's nines among reference scores: ``-log10(1 - F(x))``, >= 0.

    Parameters
    ----------
    reference : numpy.ndarray
        Scores of the reference (training) events; non-finite values are ignored.
    """

    def __init__(self, reference: np.ndarray):
        values = np.asarray(reference, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if not len(values):
            values = np.zeros(1)
        quantiles = np.quantile(values, _LEVELS)
        # A flat stretch (many equal scores) takes its lowest level: a tie is not rare.
        self.quantiles_, first = np.unique(quantiles, return_index=True)
        self.nines_ = -np.log10(1.0 - _LEVELS[first])
        tail = np.flatnonzero(_LEVELS[first] >= _TAIL_LEVEL)
        low = int(tail[0]) if len(tail) and tail[0] < len(first) - 1 else max(len(first) - 2, 0)
        rise = self.quantiles_[-1] - self.quantiles_[low]
        self.slope_ = float((self.nines_[-1] - self.nines_[low]) / rise) if rise > 0 else 1.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        nines = np.interp(x, self.quantiles_, self.nines_, left=0.0, right=self.nines_[-1])
        top = self.quantiles_[-1]
        return np.where(x > top, self.nines_[-1] + (x - top) * self.slope_, nines)


def unit_score(nines: np.ndarray) -> np.ndarray:
    """Nines onto [0, 1): ``nines / (nines + 3)``."""
    nines = np.maximum(np.asarray(nines, dtype=np.float64), 0.0)
    return nines / (nines + NINES_AT_HALF_SCORE)
