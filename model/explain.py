"""Why an event scored high, from the model's own per-feature evidence, in plain words.

Each model family gives an additive split of its score over the features:

- gradient-boosted trees: Saabas path contributions, in log-odds
  (:func:`tree_contributions`, with :func:`tree_bias`);
- a linear model: weight x standardised value (:func:`linear_contributions`);
- the river z-score detector: each risk feature's share of the squared upper-tail
  z-scores behind its score (:func:`zscore_contributions`).

:func:`describe_contributions` then words the top positive contributors with the
event's own numbers. Which features are named, and in what order, comes from the
contributions; the phrase table only says how to word each feature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from model.detectors import OnlineStandardizedDetector
from model.features import FEATURE_NAMES
from model.trees import StackedTrees, built_once

MAX_EXPLANATION_CHARS = 500
TOP_CONTRIBUTORS = 3

# --------------------------------------------------------------------------- trees


@dataclass(frozen=True, slots=True)
class BoostedForest:
    """A binary classifier's trees stacked (:class:`model.trees.StackedTrees`), with node values."""

    trees: StackedTrees
    is_leaf: np.ndarray
    expected: np.ndarray  # per node: count-weighted mean of the leaf values below it (a leaf: its value)


def boosted_forest(model: HistGradientBoostingClassifier) -> BoostedForest:
    """The classifier's trees as one :class:`BoostedForest`, built once per fit.

    Raises ValueError for what it does not reproduce: an unfitted model, more than two
    classes, categorical features.
    """
    if not hasattr(model, "_predictors"):
        raise ValueError("the model is not fitted")
    if model.n_trees_per_iteration_ != 1:
        raise ValueError("only binary classifiers (one tree per iteration) are supported")
    if model.is_categorical_ is not None and np.any(model.is_categorical_):
        # Categorical splits route by bitsets of the binned categories; the fraud
        # features are all numeric, so they are not reproduced here.
        raise ValueError("models with categorical features are not supported")
    return built_once(model, model._predictors, lambda: _stack(model))


def _stack(model: HistGradientBoostingClassifier) -> BoostedForest:
    node_arrays = [trees[0].nodes for trees in model._predictors]
    trees = StackedTrees.stack(
        feature=[nodes["feature_idx"] for nodes in node_arrays],
        threshold=[nodes["num_threshold"] for nodes in node_arrays],
        missing_left=[nodes["missing_go_to_left"] for nodes in node_arrays],
        left=[nodes["left"] for nodes in node_arrays],
        right=[nodes["right"] for nodes in node_arrays],
        is_leaf=[nodes["is_leaf"] for nodes in node_arrays],
        heights=[int(nodes["depth"].max()) for nodes in node_arrays],
    )
    nodes = np.concatenate(node_arrays)
    is_leaf = nodes["is_leaf"].astype(bool)
    left, right = trees.left, trees.right

    # The stored values of inner nodes are not usable: leaves are multiplied by the
    # learning rate after growing, inner nodes are not, and the root holds 0. So an
    # inner node's expected value is recomputed bottom-up from the (shrunk) leaves,
    # weighted by training sample counts. Any inner values would keep the
    # contributions additive; these make each step's change meaningful.
    expected = np.where(is_leaf, nodes["value"], 0.0)
    count = nodes["count"].astype(np.float64)
    depth = nodes["depth"]
    for level in range(int(depth.max()) - 1, -1, -1):
        inner = np.flatnonzero((depth == level) & ~is_leaf)
        weight_left, weight_right = count[left[inner]], count[right[inner]]
        total = weight_left + weight_right
        mean = (weight_left * expected[left[inner]] + weight_right * expected[right[inner]]) / np.maximum(total, 1)
        plain_mean = (expected[left[inner]] + expected[right[inner]]) / 2
        expected[inner] = np.where(total > 0, mean, plain_mean)
    return BoostedForest(trees=trees, is_leaf=is_leaf, expected=expected)


def tree_bias(model: HistGradientBoostingClassifier) -> float:
    """The raw score (log-odds) every row starts from before its path contributions.

    The model's baseline plus each tree's expected value at its root.

    Parameters
    ----------
    model : sklearn.ensemble.HistGradientBoostingClassifier
        A fitted binary classifier on numeric features.

    Returns
    -------
    float
    """
    forest = boosted_forest(model)
    return float(np.ravel(model._baseline_prediction)[0] + forest.expected[forest.trees.roots].sum())


def tree_contributions(model: HistGradientBoostingClassifier, X: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Saabas path contributions of each feature to each row's raw score (log-odds).

    Every split a row passes moves its expected value from the node's to the
    child's; that change is credited to the split's feature. Summed over the
    path and the trees, ``tree_bias(model) + contributions.sum(axis=1)`` equals
    ``model.decision_function(X)``.

    All rows and trees descend together, one tree level per numpy step, so the
    Python work is proportional to the trees' depth, not to the rows.

    Parameters
    ----------
    model : sklearn.ensemble.HistGradientBoostingClassifier
        A fitted binary classifier. Numeric features only; missing values (NaN)
        follow each split's learned side, as in the model's own predictor.
    X : numpy.ndarray or pandas.DataFrame
        Rows to explain, shape (n_rows, n_features), columns in training order.

    Returns
    -------
    numpy.ndarray
        Shape (n_rows, n_features).
    """
    forest = boosted_forest(model)
    trees = forest.trees
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != model.n_features_in_:
        raise ValueError(f"X has shape {X.shape}; the model expects {model.n_features_in_} features")
    n_rows, n_features = X.shape
    contributions = np.zeros(n_rows * n_features)

    # One (row, node) pair per row and tree, dropped once its node is a leaf.
    rows = np.repeat(np.arange(n_rows), len(trees.roots))
    at = np.tile(trees.roots, n_rows)
    missing_right = trees.missing_right  # a copy (bool): taken once, not at every level
    while len(at):
        inner = ~forest.is_leaf[at]
        rows, at = rows[inner], at[inner]
        if not len(at):
            break
        feature = trees.feature[at]
        value = X[rows, feature]
        go_right = np.where(np.isnan(value), missing_right[at], ~(value <= trees.threshold[at]))
        child = np.where(go_right, trees.right[at], trees.left[at])
        contributions += np.bincount(
            rows * n_features + feature,
            weights=forest.expected[child] - forest.expected[at],
            minlength=n_rows * n_features,
        )
        at = child
    return contributions.reshape(n_rows, n_features)


# --------------------------------------------------------------------------- linear and z-score


def linear_contributions(weights: np.ndarray, x_standardised: np.ndarray) -> np.ndarray:
    """Each feature's term of a linear model's score: weight x standardised value.

    The score is the intercept plus the sum of these terms; on standardised
    inputs a term says how far the feature pushed the event from an average one.

    Parameters
    ----------
    weights : numpy.ndarray
        Shape (n_features,).
    x_standardised : numpy.ndarray
        One row (n_features,) or rows (n_rows, n_features), standardised as in training.

    Returns
    -------
    numpy.ndarray
        The same shape as ``x_standardised``.
    """
    weights = np.asarray(weights, dtype=np.float64).ravel()
    x = np.asarray(x_standardised, dtype=np.float64)
    if x.shape[-1] != len(weights):
        raise ValueError(f"{x.shape[-1]} feature values for {len(weights)} weights")
    return x * weights


def zscore_contributions(
    detector: OnlineStandardizedDetector,
    X: np.ndarray,
    feature_names: Sequence[str] = FEATURE_NAMES,
) -> np.ndarray:
    """Each risk feature's share of the z-score detector's evidence.

    The detector scores ``sqrt(mean(z ** 2))`` over its risk features, with z
    clipped to [0, clip] (only the upper tail is suspicious). A feature's share is
    its clipped ``z ** 2`` over their sum: the shares of a row add up to 1, or are
    all 0 for a row with nothing above average.

    Parameters
    ----------
    detector : model.detectors.OnlineStandardizedDetector
        The online detector, with its running means and variances.
    X : numpy.ndarray
        Feature rows, shape (n_rows, len(feature_names)).
    feature_names : sequence of str, default=model.features.FEATURE_NAMES
        Names of the columns of ``X``.

    Returns
    -------
    numpy.ndarray
        Shape (n_rows, len(feature_names)); 0 for features the detector does not use.
    """
    X = np.asarray(X, dtype=np.float64).reshape(-1, len(feature_names))
    shares = np.zeros_like(X)
    if not detector.scaler_.counts or not len(X):
        return shares
    column = {name: i for i, name in enumerate(feature_names)}
    used = [column[name] for name in detector.features]
    frame = pd.DataFrame(X[:, used], columns=list(detector.features))
    z = np.clip(detector.scaler_.transform_many(frame).to_numpy(dtype=np.float64), 0.0, detector.clip)
    squared = z * z
    total = squared.sum(axis=1, keepdims=True)
    shares[:, used] = np.divide(squared, total, out=np.zeros_like(squared), where=total > 0)
    return shares


# --------------------------------------------------------------------------- words


@dataclass(frozen=True, slots=True)
class EventContext:
    """What the phrases need besides the features: the event's own amount, category and time."""

    amt: float
    category: str
    event_time: datetime


Phrase = Callable[[float, Mapping[str, float], EventContext], str]


def _money(dollars: float) -> str:
    return f"${dollars:,.2f}"


def _times(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _clock(ctx: EventContext) -> str:
    return ctx.event_time.strftime("%H:%M")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86_400:.0f} days"


def _nth_transaction(window: str) -> Phrase:
    # The window counts earlier transactions; this one makes it one more.
    return lambda v, _, __: f"{_ordinal(round(v) + 1)} transaction in {window}"


def _spent_before(window: str) -> Phrase:
    # The feature is log1p of the dollars spent in the window before this transaction.
    return lambda v, _, __: f"{_money(math.expm1(v))} spent on this card in the {window} before"


def _time_of_day(v: float, values: Mapping[str, float], ctx: EventContext) -> str:
    hour = ctx.event_time.hour
    return f"{_clock(ctx)}, at night" if hour >= 22 or hour < 4 else f"at {_clock(ctx)}, an unusual hour"


def _since_last(v: float, values: Mapping[str, float], ctx: EventContext) -> str:
    seconds = math.expm1(v)
    if seconds >= 30 * 86_400 - 1:  # the features' stand-in for "no previous transaction"
        return "first transaction on this card in 30 days or more"
    return f"{_duration(seconds)} after this card's previous transaction"


def _deviations(v: float) -> str:
    # Models also flag amounts far *below* a norm (fraud tests cards with small amounts).
    return f"{abs(v):.1f} standard deviations {'above' if v >= 0 else 'below'}"


def _history(v: float, values: Mapping[str, float], ctx: EventContext) -> str:
    earlier = round(math.expm1(v))
    if earlier == 0:
        return "first transaction seen on this card"
    if earlier == 1:
        return "only 1 earlier transaction on this card"
    return f"only {earlier} earlier transactions on this card" if earlier <= 5 else f"{earlier:,} earlier transactions"


PHRASES: dict[str, Phrase] = {
    "log_amt": lambda v, _, ctx: f"amount of {_money(ctx.amt)}",
    "amt_to_card_mean": lambda v, _, ctx: f"amount {_times(v)} this card's average",
    "amt_zscore": lambda v, _, ctx: f"amount {_deviations(v)} this card's mean",
    "amt_to_card_category_mean": lambda v, _, ctx: (
        f"{_money(ctx.amt)} is {_times(v)} this card's usual {ctx.category} amount"
    ),
    "amt_to_category_median": lambda v, _, ctx: f"{_money(ctx.amt)} is {_times(v)} the typical {ctx.category} amount",
    "night": _time_of_day,
    "hour": _time_of_day,  # the same words: a night hour and the night flag say one thing
    "weekday": lambda v, _, ctx: f"on a {ctx.event_time.strftime('%A')}",
    "log_secs_since_last": _since_last,
    "count_1h": _nth_transaction("1 hour"),
    "log_sum_1h": _spent_before("hour"),
    "count_24h": _nth_transaction("24 hours"),
    "log_sum_24h": _spent_before("24 hours"),
    "count_7d": _nth_transaction("7 days"),
    "night_count_24h": lambda v, _, ctx: f"{round(v)} night-time transactions on this card in 24 hours",
    "category_share": lambda v, _, ctx: f"{ctx.category} is {v:.0%} of this card's past purchases",
    "category_new": lambda v, _, ctx: (
        f"first {ctx.category} purchase on this card" if v >= 0.5 else f"another {ctx.category} purchase"
    ),
    "log_card_history": _history,
    "age": lambda v, _, ctx: f"cardholder aged {v:.0f}",
    "log_city_pop": lambda v, _, ctx: f"home city of {round(math.expm1(v)):,} people",
    "amt_to_card_max": lambda v, _, ctx: f"{_money(ctx.amt)} is {_times(v)} the largest amount on this card before",
    "amt_card_category_zscore": lambda v, _, ctx: f"amount {_deviations(v)} this card's usual {ctx.category} amount",
    "amt_category_logz": lambda v, _, ctx: (
        f"{_money(ctx.amt)} is {_deviations(v)} typical {ctx.category} amounts (log scale)"
    ),
    "card_night_share": lambda v, _, ctx: f"{v:.0%} of this card's earlier transactions were at night",
    "log_sum_7d": _spent_before("7 days"),
    "count_24h_to_rate": lambda v, _, ctx: f"{_times(v)} this card's usual number of transactions per day",
    "sum_24h_to_daily_spend": lambda v, _, ctx: f"spending in the 24 hours before {_times(v)} this card's daily norm",
    "log_card_age_days": lambda v, _, ctx: f"card first seen {_duration(math.expm1(v) * 86_400)} before",
}
NOTHING_STANDS_OUT = "no single feature stands out: an unusual combination"


def describe_contributions(
    contributions_row: np.ndarray,
    feature_values_row: np.ndarray,
    feature_names: Sequence[str],
    context: EventContext | Mapping[str, Any],
) -> str:
    """The top positive contributors of one event, in plain words with its numbers.

    Features are taken in decreasing order of contribution; those that do not
    push the score up are never named. Two features that say the same thing in
    words (the night flag and the hour) are named once, and the next one is
    taken instead.

    Parameters
    ----------
    contributions_row : numpy.ndarray
        Per-feature contributions of the event, shape (n_features,).
    feature_values_row : numpy.ndarray
        Its feature values, same order.
    feature_names : sequence of str
        Their names; unknown names are worded "<name> unusually high".
    context : EventContext or mapping
        The event's ``amt``, ``category`` and ``event_time`` (a datetime).

    Returns
    -------
    str
        At most 500 characters, the reasons separated by "; ".
    """
    contributions = np.asarray(contributions_row, dtype=np.float64).ravel()
    values = np.asarray(feature_values_row, dtype=np.float64).ravel()
    if not len(contributions) == len(values) == len(feature_names):
        raise ValueError("contributions, values and names differ in length")
    if isinstance(context, EventContext):
        ctx = context
    else:  # a mapping may carry more of the event; the phrases need only these three
        ctx = EventContext(float(context["amt"]), str(context["category"]), context["event_time"])
    by_name = dict(zip(feature_names, values.tolist(), strict=True))

    reasons: list[str] = []
    for i in np.argsort(-contributions, kind="stable"):
        if len(reasons) == TOP_CONTRIBUTORS or not contributions[i] > 0:
            break
        name = feature_names[i]
        phrase = PHRASES.get(name)
        text = phrase(float(values[i]), by_name, ctx) if phrase else f"{name} unusually high"
        if text not in reasons:
            reasons.append(text)
    text = "; ".join(reasons) or NOTHING_STANDS_OUT
    return text if len(text) <= MAX_EXPLANATION_CHARS else text[: MAX_EXPLANATION_CHARS - 1] + "…"
