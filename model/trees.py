"""Many decision trees walked together with numpy, for small batches.

scikit-learn scores a forest one tree at a time, each call with a fixed overhead (input
checks, a Cython entry, a thread pool): with ~200 trees that is milliseconds per batch
whatever its size, the main cost of the micro-batches of a lightly loaded stream. Here
every (row, tree) pair descends one level per numpy step, so a batch costs a dozen steps
(the trees' height); the per-element work is higher than in Cython, so large batches
are still faster through scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import numpy as np

T = TypeVar("T")

# Built once per fitted model and kept beside it, not in it: a model pickled to the registry
# does not carry these copies of its trees.
_built: WeakKeyDictionary[Any, tuple[Any, Any]] = WeakKeyDictionary()


def built_once(model: Any, fitted: Any, build: Callable[[], T]) -> T:
    """``build()``, once per ``model`` as long as ``fitted`` (its fitted trees) is the same object.

    A refit replaces ``fitted``, and the next call builds again.
    """
    entry = _built.get(model)
    if entry is None or entry[0] is not fitted:
        entry = (fitted, build())
        _built[model] = entry
    return entry[1]


@dataclass(frozen=True, slots=True)
class StackedTrees:
    """Every tree's nodes in one set of flat arrays, child indices made global.

    A leaf is both of its own children, so a row that reached its leaf stays there
    while the others descend: every pair takes ``height`` steps, none is dropped.
    """

    roots: np.ndarray  # (n_trees,) each tree's root node
    feature: np.ndarray  # per node: the feature it splits on (0 at leaves)
    threshold: np.ndarray  # per node: values <= threshold go left
    missing_right: np.ndarray  # per node: a missing value (NaN) goes right
    children: np.ndarray  # node i's left child at 2i, its right at 2i + 1
    height: int  # the most splits on any root-to-leaf path

    @classmethod
    def stack(
        cls,
        feature: Sequence[np.ndarray],
        threshold: Sequence[np.ndarray],
        missing_left: Sequence[np.ndarray],
        left: Sequence[np.ndarray],
        right: Sequence[np.ndarray],
        is_leaf: Sequence[np.ndarray],
        height: int,
    ) -> StackedTrees:
        """From each tree's node arrays (child indices local to their tree)."""
        sizes = np.array([len(nodes) for nodes in feature])
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        shift = np.repeat(roots, sizes)
        leaf = np.concatenate(is_leaf).astype(bool)
        node = np.arange(len(leaf))
        children = np.empty((len(leaf), 2), dtype=np.intp)
        children[:, 0] = np.where(leaf, node, np.concatenate(left).astype(np.intp) + shift)
        children[:, 1] = np.where(leaf, node, np.concatenate(right).astype(np.intp) + shift)
        return cls(
            roots=roots.astype(np.intp),
            feature=np.where(leaf, 0, np.concatenate(feature)).astype(np.intp),
            threshold=np.concatenate(threshold).astype(np.float64),
            missing_right=~np.concatenate(missing_left).astype(bool),
            children=children.ravel(),
            height=int(height),
        )

    @classmethod
    def of_sklearn(cls, trees: Sequence[Any]) -> StackedTrees:
        """From scikit-learn decision trees (``estimator.tree_``: its ``Tree`` objects)."""
        return cls.stack(
            feature=[tree.feature for tree in trees],
            threshold=[tree.threshold for tree in trees],
            missing_left=[tree.missing_go_to_left for tree in trees],
            left=[tree.children_left for tree in trees],
            right=[tree.children_right for tree in trees],
            is_leaf=[tree.children_left < 0 for tree in trees],
            height=max(tree.max_depth for tree in trees),
        )

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf (global node index) each row of ``X`` reaches in each tree: shape (n_rows, n_trees).

        The comparisons of scikit-learn's predictors: ``x <= threshold`` goes left, with
        ``x`` widened to float64 (exactly) when ``X`` is float32; NaN goes the node's
        missing-value side.
        """
        X = np.ascontiguousarray(X)
        n_rows, n_features = X.shape
        values = X.ravel()
        row_start = np.arange(n_rows)[:, None] * n_features
        at = np.tile(self.roots, (n_rows, 1))
        has_missing = bool(np.isnan(values).any())
        for _ in range(self.height):
            value = values[row_start + self.feature[at]]
            go_right = value > self.threshold[at]
            if has_missing:
                go_right |= np.isnan(value) & self.missing_right[at]
            at = self.children[2 * at + go_right]
        return at
