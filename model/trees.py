"""Many decision trees walked together in compiled code (numba), for any batch size.

scikit-learn scores a forest one tree at a time, each call with a fixed overhead (input
checks, a Cython entry, a thread pool): with hundreds of trees that is milliseconds per
batch whatever its size. Here one compiled call walks them all: each tree takes every row
down one level per pass (a leaf is its own child, so a row that reached it stays), so the
rows' steps are independent of each other and overlap in the processor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import numba
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


# One node: what a walk reads at each step, in one record (24 bytes).
NODE = np.dtype(
    [("threshold", "f8"), ("feature", "i4"), ("left", "i4"), ("right", "i4"), ("missing_right", "i4")],
    align=True,
)


@dataclass(frozen=True, slots=True)
class StackedTrees:
    """Every tree's nodes in one array of :data:`NODE` records, child indices made global.

    A leaf is both of its own children (and splits on feature 0), so a row that reached
    its leaf stays there while the others descend: every row takes its tree's height in steps.
    """

    roots: np.ndarray  # (n_trees,) each tree's root node
    heights: np.ndarray  # (n_trees,) each tree's most splits on a root-to-leaf path
    nodes: np.ndarray  # (n_nodes,) NODE records: values <= threshold go left, NaN to missing_right

    @property
    def feature(self) -> np.ndarray:
        return self.nodes["feature"]

    @property
    def threshold(self) -> np.ndarray:
        return self.nodes["threshold"]

    @property
    def missing_right(self) -> np.ndarray:
        return self.nodes["missing_right"].astype(bool)

    @property
    def left(self) -> np.ndarray:
        return self.nodes["left"]

    @property
    def right(self) -> np.ndarray:
        return self.nodes["right"]

    @classmethod
    def stack(
        cls,
        feature: Sequence[np.ndarray],
        threshold: Sequence[np.ndarray],
        missing_left: Sequence[np.ndarray],
        left: Sequence[np.ndarray],
        right: Sequence[np.ndarray],
        is_leaf: Sequence[np.ndarray],
        heights: Sequence[int],
    ) -> StackedTrees:
        """From each tree's node arrays (child indices local to their tree)."""
        sizes = np.array([len(nodes) for nodes in feature])
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        shift = np.repeat(roots, sizes)
        leaf = np.concatenate(is_leaf).astype(bool)
        node = np.arange(len(leaf))
        nodes = np.zeros(len(leaf), dtype=NODE)
        nodes["threshold"] = np.concatenate(threshold)
        nodes["feature"] = np.where(leaf, 0, np.concatenate(feature))
        nodes["left"] = np.where(leaf, node, np.concatenate(left).astype(np.intp) + shift)
        nodes["right"] = np.where(leaf, node, np.concatenate(right).astype(np.intp) + shift)
        nodes["missing_right"] = ~np.concatenate(missing_left).astype(bool)
        return cls(roots=roots.astype(np.int32), heights=np.asarray(heights, dtype=np.int32), nodes=nodes)

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
            heights=[tree.max_depth for tree in trees],
        )

    def sum_leaf_values(self, X: np.ndarray, values: np.ndarray, start: float = 0.0) -> np.ndarray:
        """Per row of ``X``: ``start``, then ``values[leaf]`` of the leaf it reaches in each tree
        added tree after tree, in float64 (the order of scikit-learn's own sums, so the same bits).

        The comparisons of scikit-learn's predictors: ``x <= threshold`` goes left, with ``x``
        widened to float64 (exactly) when ``X`` is float32; NaN goes the node's missing-value side.
        """
        X = np.ascontiguousarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        values = np.asarray(values, dtype=np.float64)
        return _sum_leaf_values(X, self.roots, self.heights, self.nodes, values, float(start))


@numba.njit(cache=True, nogil=True)
def _sum_leaf_values(X, roots, heights, nodes, values, start):  # noqa: ANN001 - typed by numba at the call
    total = np.full(X.shape[0], start)
    at = np.empty(X.shape[0], dtype=np.int32)
    for tree in range(roots.shape[0]):
        at[:] = roots[tree]
        for _ in range(heights[tree]):  # each pass takes every row one level down
            for row in range(X.shape[0]):
                node = nodes[at[row]]
                value = X[row, node.feature]
                if (value > node.threshold) | ((value != value) & (node.missing_right != 0)):
                    at[row] = node.right
                else:
                    at[row] = node.left
        for row in range(X.shape[0]):
            total[row] += values[at[row]]
    return total
