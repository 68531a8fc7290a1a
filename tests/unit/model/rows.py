"""Random feature rows for the tests that hold a fast path to its library's result, bit for bit."""

import numpy as np

from model.features import FEATURE_NAMES

BATCH_SIZES = (1, 2, 17, 100, 1000, 3000)


def random_rows(n: int, seed: int, missing: bool) -> np.ndarray:
    """``n`` feature rows; with NaN and +-inf in some of their values when ``missing``."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, len(FEATURE_NAMES))) * 3
    if missing:
        rows[rng.random(rows.shape) < 0.1] = np.nan
        rows[rng.random(rows.shape) < 0.03] = np.inf
        rows[rng.random(rows.shape) < 0.03] = -np.inf
    return rows
