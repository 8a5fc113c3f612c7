"""Next categories: the product categories a customer buys in the ``horizon_days`` after a cutoff.

The history before the cutoff is cut into blocks of ``horizon_days`` (block 0 the last). A
customer's score of category c is a shrunken, recency-weighted buying rate::

    score_ic = (sum_b w_b 1[i bought c in block b] + m * p_c) / (sum_b w_b + m),   w_b = 0.5 ** (b / half_life)

with ``p_c`` the share of customers who bought c in the last block (popularity) and ``m`` the
prior strength: customers with little history get the popular categories. Baselines: the most
popular categories (``p_c``) and the customer's own most-bought categories by revenue up to the
cutoff (filled up with popular ones). Lines of unknown category are never targets nor recommended.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..features import category_spend
from .windows import in_window

__all__ = [
    "CategoryRecommender",
    "category_blocks",
    "customer_precision",
    "next_categories",
    "own_ranking",
    "popular_ranking",
    "popularity_ranking",
    "ranking_metrics",
    "recommendation_table",
    "select_recommender",
    "top_k",
]

UNKNOWN = "unknown"


def next_categories(tx: pd.DataFrame, products: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """The (customer_id, category) pairs bought (positive revenue) in (cutoff, cutoff + h]."""
    spend = category_spend(in_window(tx, cutoff, horizon_days), products)
    return spend.loc[(spend["revenue"] > 0) & (spend["category"] != UNKNOWN), ["customer_id", "category"]]


def category_blocks(
    tx: pd.DataFrame, products: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int, blocks: int
) -> pd.DataFrame:
    """Revenue per customer, category and block of ``horizon_days`` before ``cutoff`` (block 0 =
    (cutoff - h, cutoff], block 1 the one before, ...), known categories, positive revenue only."""
    frames = []
    for b in range(blocks):
        start = cutoff - pd.Timedelta(days=horizon_days * (b + 1))
        spend = category_spend(in_window(tx, start, horizon_days), products)
        frames.append(spend.assign(block=b))
    out = pd.concat(frames, ignore_index=True)
    return out[(out["revenue"] > 0) & (out["category"] != UNKNOWN)].reset_index(drop=True)


def popularity_ranking(history: pd.DataFrame) -> pd.Series:
    """Share of the customers of the last block (0) who bought each category, highest first (ties by name)."""
    last = history[history["block"] == 0]
    share = last.groupby("category")["customer_id"].nunique() / max(last["customer_id"].nunique(), 1)
    return share.sort_index().sort_values(ascending=False, kind="stable").rename("popularity")


def _matrix(values: pd.Series, customers: pd.Index, categories: pd.Index) -> np.ndarray:
    """A (customers, categories) array of a Series indexed by (customer_id, category), 0 where missing."""
    wide = values.unstack("category", fill_value=0.0) if len(values) else pd.DataFrame()
    return wide.reindex(index=customers, columns=categories, fill_value=0.0).to_numpy(dtype=float)


class CategoryRecommender:
    """Per-customer category scores: recency-weighted own buying rate shrunk to popularity
    (scikit-learn style; see the module docstring).

    Parameters
    ----------
    prior_strength : float
        ``m``: blocks' worth of weight given to popularity.
    half_life : float
        Blocks after which a block's weight halves (``inf``: all blocks weigh the same).
    """

    def __init__(self, prior_strength: float = 1.0, half_life: float = 2.0) -> None:
        self.prior_strength = prior_strength
        self.half_life = half_life

    def fit(self, history: pd.DataFrame, y: None = None) -> CategoryRecommender:
        """Score every customer of ``history`` (:func:`category_blocks`) on every category in it."""
        self.popularity_ = popularity_ranking(history)
        self.categories_ = pd.Index(sorted(history["category"].unique()), name="category")
        self.customers_ = pd.Index(sorted(history["customer_id"].unique()), name="customer_id")
        n_blocks = int(history["block"].max()) + 1 if len(history) else 0
        weights = 0.5 ** (np.arange(n_blocks) / self.half_life)
        bought = history.drop_duplicates(["customer_id", "category", "block"])
        weighted = bought.assign(w=weights[bought["block"].to_numpy()]).groupby(["customer_id", "category"])["w"].sum()
        rate = _matrix(weighted, self.customers_, self.categories_)
        prior = self.popularity_.reindex(self.categories_, fill_value=0.0).to_numpy()
        self.scores_ = (rate + self.prior_strength * prior) / (weights.sum() + self.prior_strength)
        return self

    def top(self, k: int = 5) -> pd.DataFrame:
        """The ``k`` highest-scoring categories per customer (:func:`top_k`)."""
        tiebreak = self.popularity_.reindex(self.categories_, fill_value=0.0).to_numpy()
        return top_k(self.scores_, self.customers_, self.categories_, k, tiebreak)


def top_k(scores: np.ndarray, customers: pd.Index, categories: pd.Index, k: int, tiebreak: np.ndarray) -> pd.DataFrame:
    """Long table of each customer's ``k`` best categories: ``customer_id``, ``rank`` (1 = best),
    ``category``, ``score``; ties by ``tiebreak`` (higher first), then category name."""
    name_order = np.argsort(np.argsort(categories.to_numpy(dtype=str)))
    keys = np.broadcast_to(-name_order, scores.shape)
    order = np.lexsort((keys, np.broadcast_to(tiebreak, scores.shape), scores), axis=1)[:, ::-1][:, :k]
    rows = np.repeat(np.arange(len(customers)), order.shape[1])
    cols = order.ravel()
    return pd.DataFrame(
        {
            "customer_id": customers.to_numpy()[rows],
            "rank": np.tile(np.arange(1, order.shape[1] + 1), len(customers)),
            "category": categories.to_numpy()[cols],
            "score": scores[rows, cols],
        }
    )


def own_ranking(history: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """Baseline: each customer's own most-bought categories by revenue over all blocks, filled up
    with the most popular ones (a fill scores 0)."""
    model = CategoryRecommender().fit(history)
    revenue = _matrix(
        history.groupby(["customer_id", "category"])["revenue"].sum(), model.customers_, model.categories_
    )
    tiebreak = model.popularity_.reindex(model.categories_, fill_value=0.0).to_numpy()
    return top_k(revenue, model.customers_, model.categories_, k, tiebreak)


def popular_ranking(history: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """Baseline: the ``k`` most popular categories (:func:`popularity_ranking`) for every customer."""
    model = CategoryRecommender().fit(history)
    popularity = model.popularity_.reindex(model.categories_, fill_value=0.0).to_numpy()
    scores = np.broadcast_to(popularity, (len(model.customers_), len(model.categories_)))
    return top_k(np.array(scores), model.customers_, model.categories_, k, popularity)


def ranking_metrics(top: pd.DataFrame, actual: pd.DataFrame, k: int = 5) -> dict[str, float]:
    """Precision@k, recall@k and hit rate (at least one of the top k bought) over the customers
    who have recommendations and bought at least one category in the window.

    Parameters
    ----------
    top : DataFrame
        ``customer_id``, ``rank``, ``category`` (ranks above ``k`` are ignored).
    actual : DataFrame
        ``customer_id``, ``category`` bought (:func:`next_categories`).
    """
    hits, sizes = _hits(top, actual, k)
    if not len(hits):
        return {"precision": float("nan"), "recall": float("nan"), "hit_rate": float("nan"), "customers": 0}
    return {
        "precision": float(np.mean(hits / k)),
        "recall": float(np.mean(hits / sizes)),
        "hit_rate": float(np.mean(hits > 0)),
        "customers": len(hits),
    }


def customer_precision(top: pd.DataFrame, actual: pd.DataFrame, k: int = 5) -> np.ndarray:
    """Each customer's precision@k, over the customers of :func:`ranking_metrics` (in their order):
    its mean is the ``precision`` there, so two rankers can be compared customer by customer."""
    return _hits(top, actual, k)[0] / k


def _hits(top: pd.DataFrame, actual: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per customer with recommendations and a purchase in the window (sorted by id): the number
    of the top ``k`` bought, and the number of categories bought."""
    top = top[top["rank"] <= k]
    bought = actual.drop_duplicates()
    customers = (
        pd.Index(top["customer_id"].unique()).intersection(pd.Index(bought["customer_id"].unique())).sort_values()
    )
    hits = top.merge(bought, on=["customer_id", "category"]).groupby("customer_id").size()
    sizes = bought.groupby("customer_id").size().reindex(customers).to_numpy(dtype=float)
    return hits.reindex(customers, fill_value=0).to_numpy(dtype=float), sizes


def recommendation_table(top: pd.DataFrame) -> pd.DataFrame:
    """The artifact ``category_recommendations.parquet`` from a ranking (:func:`top_k`): its
    columns customer_id, rank, category and score in their stored types."""
    return top.astype({"customer_id": "string", "rank": "int64", "category": "string", "score": "float64"})


#: The small grid of :func:`select_recommender`: (prior_strength, half_life in blocks).
GRID = tuple((m, h) for m in (0.25, 1.0, 4.0) for h in (0.5, 1.0, float("inf")))


def select_recommender(
    history: pd.DataFrame, actual: pd.DataFrame, k: int = 5
) -> tuple[tuple[float, float], pd.DataFrame]:
    """Choose (prior_strength, half_life) on a training cutoff: each of :data:`GRID` scores the
    history before it and is judged by precision@k on the window after it (first of equals wins).

    Returns
    -------
    settings, table
        The chosen settings and one row per grid point with its metrics.
    """
    rows = [
        {
            "prior_strength": m,
            "half_life": h,
            **ranking_metrics(CategoryRecommender(m, h).fit(history).top(k), actual, k),
        }
        for m, h in GRID
    ]
    table = pd.DataFrame(rows)
    best = int(table["precision"].to_numpy().argmax())
    return (float(table.loc[best, "prior_strength"]), float(table.loc[best, "half_life"])), table
