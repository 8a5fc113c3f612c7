"""Model-agnostic evaluation of scores out of time: gains and lift by decile, reliability of
probabilities, the usual classification metrics and a paired bootstrap of a metric's difference.

Every function takes the observed outcome ``y`` and one or two score or prediction arrays, and
returns numbers (no model code, no sentences): the report turns them into words.

Ties in a score are shared fairly: customers with the same score are one block, and each
position of a block counts the block's mean outcome, so a rule such as recency (many ties) gets
the gains it earns on average, whatever the order of the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)

from ..config import DEFAULTS
from ..errors import DataError

__all__ = [
    "METRICS",
    "classification_metrics",
    "gains_table",
    "paired_bootstrap",
    "rank_auc",
    "reliability_table",
    "step_average_precision",
    "top_decile_lift",
]


def _arrays(y: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """``y`` and ``score`` as float arrays of the same length, without missing values."""
    y_arr = np.asarray(y, dtype="float64")
    s_arr = np.asarray(score, dtype="float64")
    if y_arr.shape != s_arr.shape or y_arr.ndim != 1:
        raise ValueError(f"y and score must be 1-D and of the same length; got {y_arr.shape} and {s_arr.shape}")
    if np.isnan(y_arr).any() or np.isnan(s_arr).any():
        raise ValueError("y and score must not hold missing values; drop or fill them first")
    if y_arr.size == 0:
        raise DataError("no customers to evaluate; the test window is empty")
    return y_arr, s_arr


def _tie_shared(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The outcome at each position of the customers ranked by descending score, tied scores
    sharing their block's mean outcome."""
    order = np.argsort(-score, kind="stable")
    ranked, outcome = score[order], y[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    means = np.add.reduceat(outcome, starts) / np.diff(np.r_[starts, len(ranked)])
    return np.repeat(means, np.diff(np.r_[starts, len(ranked)]))


def gains_table(y: Any, score: Any, n_bins: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift by score decile (or ``n_bins`` quantile bins).

    Customers are ranked by descending score and cut into ``n_bins`` groups of equal size (sizes
    differ by at most one); tied scores share their outcome (see the module notes).

    Parameters
    ----------
    y : array-like of 0/1
        The observed outcome (1 = positive, e.g. lapsed).
    score : array-like
        Any score where higher means more likely positive.
    n_bins : int
        Number of groups; 10 gives deciles.

    Returns
    -------
    DataFrame
        One row per group, the highest scores first: ``decile`` (``n_bins`` = highest scores, 1 =
        lowest), ``customers``, ``positives`` (fractional only across ties), ``positive_rate``,
        ``customer_share`` (cumulative share of customers down to this group), ``gains``
        (cumulative share of all positives), ``lift`` (the group's positive rate over the base
        rate) and ``cumulative_lift`` (``gains / customer_share``).

    Raises
    ------
    DataError
        No customers, or no positive outcome (lift is then undefined).
    """
    y_arr, s_arr = _arrays(y, score)
    if y_arr.sum() <= 0:
        raise DataError("no positive outcome among the customers; gains and lift are undefined")
    if len(y_arr) < n_bins:
        raise DataError(f"{len(y_arr)} customers cannot fill {n_bins} groups; evaluate on more customers")
    shared = _tie_shared(y_arr, s_arr)
    group = np.floor(np.arange(len(shared)) * n_bins / len(shared)).astype(int)
    table = pd.DataFrame({"group": group, "outcome": shared}).groupby("group")["outcome"].agg(["size", "sum"])
    base_rate = y_arr.mean()
    out = pd.DataFrame(
        {
            "decile": n_bins - table.index.to_numpy(),
            "customers": table["size"].to_numpy(),
            "positives": table["sum"].to_numpy(),
        }
    )
    out["positive_rate"] = out["positives"] / out["customers"]
    out["customer_share"] = out["customers"].cumsum() / len(y_arr)
    out["gains"] = out["positives"].cumsum() / y_arr.sum()
    out["lift"] = out["positive_rate"] / base_rate
    out["cumulative_lift"] = out["gains"] / out["customer_share"]
    return out


def top_decile_lift(y: Any, score: Any, n_bins: int = 10) -> float:
    """The positive rate of the top ``1 / n_bins`` of scores over the base rate (:func:`gains_table`)."""
    return float(gains_table(y, score, n_bins)["lift"].iloc[0])


def _bin_edges(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Bin edges of the probabilities: equal counts (``quantile``) or equal widths on [0, 1]."""
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
        return edges if len(edges) > 1 else np.r_[edges, edges]  # one probability for all: one bin
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    raise ValueError(f"strategy {strategy!r} is not one of ['quantile', 'uniform']")


def reliability_table(y: Any, p: Any, n_bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Mean predicted probability against the observed rate, by bin of predicted probability.

    Parameters
    ----------
    y : array-like of 0/1
        The observed outcome.
    p : array-like of float in [0, 1]
        Predicted probabilities.
    n_bins : int
        Number of bins asked for.
    strategy : {"quantile", "uniform"}
        ``quantile`` (default): edges at the quantiles of ``p``, so bins hold about equal numbers
        of customers; tied probabilities stay in one bin, so fewer bins may come out.
        ``uniform``: edges at ``0, 1/n_bins, ..., 1``; empty bins are left out.

    Returns
    -------
    DataFrame
        One row per non-empty bin, lowest probabilities first: ``bin`` (1 = lowest), ``p_low``
        and ``p_high`` (the bin's edges; a bin holds ``p_low <= p < p_high``, the last one also
        ``p_high``), ``customers``, ``mean_predicted``, ``observed_rate`` and ``positives``.
    """
    y_arr, p_arr = _arrays(y, p)
    if (p_arr < 0).any() or (p_arr > 1).any():
        raise ValueError("probabilities must lie in [0, 1]; calibrate the scores first")
    edges = _bin_edges(p_arr, n_bins, strategy)
    which = np.searchsorted(edges[1:-1], p_arr, side="right")
    frame = pd.DataFrame({"bin": which, "p": p_arr, "y": y_arr})
    table = frame.groupby("bin").agg(customers=("y", "size"), mean_predicted=("p", "mean"),
                                     observed_rate=("y", "mean"), positives=("y", "sum"))  # fmt: skip
    table.insert(0, "p_low", edges[table.index.to_numpy()])
    table.insert(1, "p_high", edges[table.index.to_numpy() + 1])
    table.index = table.index + 1
    return table.rename_axis("bin").reset_index()


def _require_both_classes(y: np.ndarray) -> None:
    """A :class:`DataError` when ``y`` holds only one class (ROC and PR AUC are undefined)."""
    if len(np.unique(y)) < 2:
        raise DataError(f"only outcome {y[0]:g} among {len(y)} customers; ROC AUC and PR AUC need both outcomes")


def classification_metrics(y: Any, p: Any, probability: bool = True) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision) and Brier score of probabilities ``p``.

    Parameters
    ----------
    y : array-like of 0/1
        The observed outcome.
    p : array-like
        Probabilities, or with ``probability=False`` any score where higher means more likely.
    probability : bool
        Whether ``p`` is a probability: only then is the Brier score given.

    Returns
    -------
    dict
        ``roc_auc``, ``average_precision``, ``brier`` (for probabilities), ``base_rate`` (share
        of positives; the average precision of a random ranking) and ``customers``.

    Raises
    ------
    DataError
        When ``y`` holds a single outcome.
    """
    y_arr, p_arr = _arrays(y, p)
    _require_both_classes(y_arr)
    out = {
        "roc_auc": float(roc_auc_score(y_arr, p_arr)),
        "average_precision": float(average_precision_score(y_arr, p_arr)),
        "brier": float(brier_score_loss(y_arr, np.clip(p_arr, 0, 1))) if probability else None,
        "base_rate": float(y_arr.mean()),
        "customers": int(len(y_arr)),
    }
    return {k: v for k, v in out.items() if v is not None}


Weighted = Callable[[np.ndarray], float]


def _blocks(score: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts ``score`` and the start of each block of equal scores in it."""
    order = np.argsort(-score if descending else score, kind="stable")
    ranked = score[order]
    return order, np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])


def _weighted_auc(y: np.ndarray, score: np.ndarray) -> Weighted:
    """ROC AUC with customer weights (a bootstrap resample's counts): the weighted Mann-Whitney
    statistic, ties counting one half, from one sort of the scores."""
    order, starts = _blocks(score, descending=False)
    hits = y[order]

    def auc(w: np.ndarray) -> float:
        ww = w[order]
        pos, neg = np.add.reduceat(ww * hits, starts), np.add.reduceat(ww * (1 - hits), starts)
        below = np.cumsum(neg) - neg
        return float(np.sum(pos * (below + 0.5 * neg)) / (pos.sum() * neg.sum()))

    return auc


def _weighted_average_precision(y: np.ndarray, score: np.ndarray) -> Weighted:
    """Average precision with customer weights: over the distinct scores, highest first, the gain
    in recall times the precision, from one sort of the scores."""
    order, starts = _blocks(score, descending=True)
    hits = y[order]

    def average_precision(w: np.ndarray) -> float:
        ww = w[order]
        true_positives = np.cumsum(np.add.reduceat(ww * hits, starts))
        flagged = np.cumsum(np.add.reduceat(ww, starts))
        precision = np.divide(true_positives, flagged, out=np.zeros_like(flagged), where=flagged > 0)
        return float(np.sum(np.diff(np.r_[0.0, true_positives / true_positives[-1]]) * precision))

    return average_precision


def _weighted_mean(loss: np.ndarray) -> Weighted:
    return lambda w: float(np.sum(w * loss) / np.sum(w))


#: Metrics :func:`paired_bootstrap` knows by name: (a function of ``(y, score)`` giving the metric
#: as a function of customer weights, whether it needs both classes).
METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], Weighted], bool]] = {
    "roc_auc": (_weighted_auc, True),
    "average_precision": (_weighted_average_precision, True),
    "brier": (lambda y, p: _weighted_mean((p - y) ** 2), False),
    "mae": (lambda y, p: _weighted_mean(np.abs(y - p)), False),
    "rmse": (lambda y, p: lambda w: float(np.sqrt(_weighted_mean((y - p) ** 2)(w))), False),
    "mean": (lambda y, s: _weighted_mean(s), False),  # the mean of a per-customer score; y unused
}


def rank_auc(y: Any, score: Any) -> float:
    """ROC AUC (equal to scikit-learn's ``roc_auc_score``), as the bootstrap computes it."""
    y_arr, s_arr = _arrays(y, score)
    return _weighted_auc(y_arr, s_arr)(np.ones(len(y_arr)))


def step_average_precision(y: Any, score: Any) -> float:
    """Average precision (equal to scikit-learn's ``average_precision_score``), as the bootstrap computes it."""
    y_arr, s_arr = _arrays(y, score)
    return _weighted_average_precision(y_arr, s_arr)(np.ones(len(y_arr)))


def paired_bootstrap(
    y: Any,
    score_a: Any,
    score_b: Any,
    metric: str | Callable[[np.ndarray, np.ndarray], float],
    n: int = 1000,
    seed: int = DEFAULTS["seed"],
) -> dict[str, Any]:
    """The difference of a metric between two scorers on the same customers, with its 95 % interval.

    Customers are resampled with replacement ``n`` times; each resample scores both ``a`` and
    ``b`` on the same customers (paired), so the interval reflects only the difference. A
    resample is the count of each customer in it, and the named metrics are computed from those
    counts as weights on one sort of the scores (the same values as on the resampled rows).

    Parameters
    ----------
    y : array-like
        Observed outcome: 0/1 for classification metrics, amounts for ``mae`` and ``rmse``.
    score_a, score_b : array-like
        The two scorers' scores (or predictions, for a regression metric).
    metric : str or callable
        A name of :data:`METRICS` (``roc_auc``, ``average_precision``, ``brier``, ``mae``,
        ``rmse``, ``mean``: the mean of a per-customer score) or a function ``metric(y, score) -> float``.
    n : int
        Number of bootstrap resamples.
    seed : int
        Random state of the resampling.

    Returns
    -------
    dict
        ``metric``, ``a`` and ``b`` (the metric of each on all customers), ``difference``
        (``a - b`` on all customers), ``low`` and ``high`` (2.5 % and 97.5 % percentiles of the
        resampled differences), ``resamples`` (those used: a resample with one class only is
        left out for ``roc_auc`` and ``average_precision``) and ``seed``. Whether a larger
        difference is better depends on the metric (lower is better for ``brier``, ``mae``,
        ``rmse``).
    """
    y_arr, a_arr = _arrays(y, score_a)
    _, b_arr = _arrays(y, score_b)
    if isinstance(metric, str):
        prepare, both = METRICS[metric]
        fa, fb, name = prepare(y_arr, a_arr), prepare(y_arr, b_arr), metric
    else:  # any function of (y, score): evaluated on the resampled rows
        both, name = False, getattr(metric, "__name__", "metric")

        def fa(w: np.ndarray) -> float:
            rows = np.repeat(np.arange(len(w)), w.astype(int))
            return float(metric(y_arr[rows], a_arr[rows]))

        def fb(w: np.ndarray) -> float:
            rows = np.repeat(np.arange(len(w)), w.astype(int))
            return float(metric(y_arr[rows], b_arr[rows]))

    if both:
        _require_both_classes(y_arr)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        w = np.bincount(rng.integers(0, len(y_arr), len(y_arr)), minlength=len(y_arr)).astype(float)
        if both and (w @ y_arr == 0 or w @ (1 - y_arr) == 0):
            continue
        diffs.append(fa(w) - fb(w))
    ones = np.ones(len(y_arr))
    a, b = fa(ones), fb(ones)
    low, high = np.percentile(diffs, [2.5, 97.5]) if diffs else (np.nan, np.nan)
    return {"metric": name, "a": a, "b": b, "difference": a - b, "low": float(low), "high": float(high),
            "resamples": len(diffs), "seed": seed}  # fmt: skip
