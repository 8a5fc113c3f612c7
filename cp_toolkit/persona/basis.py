"""Who belongs to which persona: shopping-behaviour features (value kept out), behavioural clusters
on them, and the other bases (R x F segments, RFM-8 classes, value tier x behaviour)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ParameterError
from ..features import category_shares
from ..privacy import values_to_pool
from ..segment.cluster import BehaviourClusters

__all__ = [
    "BASES",
    "Basis",
    "behaviour_features",
    "clustering_view",
    "department_shares",
    "merge_small_cells",
    "assign_personas",
]

#: The persona of the customers of groups too small to show on their own.
OTHER = "other"
#: Between the value tier and the behaviour cluster in a value x behaviour key (``high · P2``).
TIER_SEPARATOR = " · "
#: Why value x behaviour fell back to behaviour alone.
TIERS_MISSING = "the value_tier tags are missing (tag_definitions without value_tier)"
#: The bases personas can be built on (the parameter ``persona_basis``).
BASES = ("behaviour", "rfm", "rfm8", "value_x_behaviour")

#: Columns of the stage 03 feature table that describe how a customer shops (not how much):
#: basket breadth, regularity, store loyalty, discounts and coupons. Present ones are used.
SHOPPING_COLUMNS = (
    "avg_lines_per_order",
    "interpurchase_cv",
    "main_store_share",
    "savings_rate",
    "discount_line_share",
    "coupon_order_share",
)
#: Behaviour columns that are shares of a customer's orders (shrunk before clustering, :func:`clustering_view`).
ORDER_SHARES = ("weekend_share", "main_store_share", "coupon_order_share")
#: A department (or category) gets a mix column when it holds at least this share of product revenue.
MIX_MIN_SHARE = 0.02
#: At most this many mix columns (the largest departments), so that the mix does not drown the rest.
MIX_MAX_COLUMNS = 8


def department_shares(
    spend: pd.DataFrame, products: pd.DataFrame | None, non_product: list[str] | tuple[str, ...] = ()
) -> pd.DataFrame:
    """Each customer's share of product revenue per department (per category where the products
    have no department), the non-product categories (coupons, fuel ...) left out; rows add up to 1
    (customers who bought only non-products have no row).

    Parameters
    ----------
    spend : DataFrame
        :func:`cp_toolkit.features.category_spend` (``customer_id``, ``category``, ``revenue``).
    products : DataFrame or None
        The product table; its ``department`` of each category (the most common one) groups the
        categories.
    non_product : sequence of str
        Categories or departments that are not products.
    """
    spend = spend[~spend["category"].isin(list(non_product)) & (spend["revenue"] > 0)]
    if products is not None and {"category", "department"} <= set(products.columns) and len(products):
        known = products.dropna(subset=["category", "department"])
        department = known.groupby("category")["department"].agg(lambda d: d.mode().iloc[0])
        spend = spend.assign(category=spend["category"].map(department).fillna(spend["category"]))
        spend = spend[~spend["category"].isin(list(non_product))]
    return category_shares(spend).rename_axis(columns=None)


def _weekend_share(orders: pd.DataFrame) -> pd.Series:
    """Share of each customer's orders placed on a Saturday or Sunday."""
    return (orders["ts"].dt.day_of_week >= 5).groupby(orders["customer_id"], observed=True).mean()


def behaviour_features(table: pd.DataFrame, orders: pd.DataFrame, mix: pd.DataFrame) -> pd.DataFrame:
    """How each customer shops, with value kept out: the mix of the largest departments, the
    weekend share of orders, basket breadth, regularity, store loyalty, discount and coupon use.

    Parameters
    ----------
    table : DataFrame
        The stage 03 feature table (``features.parquet``), indexed by ``customer_id``.
    orders : DataFrame
        The customers' orders up to ``as_of``.
    mix : DataFrame
        :func:`department_shares`.

    Returns
    -------
    DataFrame
        One row per customer of ``table``, missing where a figure is unknown (the regularity of a
        customer with fewer than three orders, the mix of one without products):
        :func:`clustering_view` fills them for the clusters, the traits leave them out.
    """
    out = pd.DataFrame(index=table.index)
    if len(mix.columns):
        overall = mix.reindex(table.index).mean()
        top = overall[overall >= MIX_MIN_SHARE].nlargest(MIX_MAX_COLUMNS).index
        for department in top:
            out[f"mix:{department}"] = mix[department].reindex(table.index)
    out["weekend_share"] = _weekend_share(orders).reindex(table.index)
    for column in SHOPPING_COLUMNS:
        if column in table.columns:
            out[column] = table[column]
    out = out.join(table.filter(like="channel_share_").iloc[:, 1:])  # one channel is the rest of the others
    return out.astype(float)


#: Orders' worth of the base rate a customer's share of orders is pulled towards before clustering
#: (``(k + m p) / (n + m)``): one order says little about a habit, so a one-order customer's 0% or
#: 100% weekend share does not make a "weekend" group of its own.
PRIOR_ORDERS = 5.0
#: An order share whose spread is less than this much habit (:func:`reliability`) is not clustered:
#: most customers bought too few times for it to say how they shop (CDNOW's weekend share: 0.04;
#: Complete Journey's: 0.48).
MIN_RELIABILITY = 0.25


def clustering_view(behaviour: pd.DataFrame, orders: pd.Series) -> pd.DataFrame:
    """The behaviour features as clustered.

    Each share of orders (weekend, main store, coupon, channel) is left out when it is mostly the
    noise of customers' few orders (:func:`reliability` under :data:`MIN_RELIABILITY`), else
    shrunk towards the base's mean by :data:`PRIOR_ORDERS` orders, and the regularity towards its
    median by as many gaps between orders, so that a customer's few orders do not make an
    extreme; a feature unknown for more
    than half of the customers (regularity where most bought once or twice) or the same for all
    is left out; what remains unknown is the median.

    Parameters
    ----------
    behaviour : DataFrame
        :func:`behaviour_features`.
    orders : Series
        Each customer's number of orders (``frequency``).
    """
    out = behaviour.loc[:, behaviour.notna().mean() > 0.5].copy()
    n = orders.reindex(out.index).fillna(0).to_numpy(dtype=float)
    for column in out.columns:
        if column in ORDER_SHARES or column.startswith("channel_share_"):
            if reliability(out[column], n) < MIN_RELIABILITY:
                out = out.drop(columns=column)
                continue
            out[column] = _shrunk(out[column], out[column].mean(), n)
        elif column == "interpurchase_cv":
            out[column] = _shrunk(out[column], out[column].median(), np.maximum(n - 1, 0))
    out = out.fillna(out.median())
    return out.loc[:, out.nunique() > 1]


def reliability(shares: pd.Series, orders: np.ndarray) -> float:
    """The share of the spread of customers' order shares that is not the chance of their few
    orders: ``1 - mean(p (1 - p) / n) / var(share)``, with ``p`` the base's share and ``n`` each
    customer's orders (classical test theory's reliability; 1 = all habit, 0 = all chance)."""
    known = shares.notna().to_numpy() & (orders > 0)
    values, n = shares.to_numpy(dtype=float)[known], orders[known]
    if len(values) < 2 or values.var(ddof=1) == 0:
        return 0.0
    p = values.mean()
    return float(1 - np.mean(p * (1 - p) / n) / values.var(ddof=1))


def _shrunk(values: pd.Series, prior: float, weight: np.ndarray) -> pd.Series:
    """``(values * weight + PRIOR_ORDERS * prior) / (weight + PRIOR_ORDERS)``; the prior where unknown."""
    return (values.fillna(prior) * weight + PRIOR_ORDERS * prior) / (weight + PRIOR_ORDERS)


@dataclass
class Basis:
    """The persona of every customer and how it was found.

    Attributes
    ----------
    basis : str
        The basis used (one of :data:`BASES`).
    labels : Series
        Persona key of every customer (``P1``, ``P2`` ... or a segment name).
    features : DataFrame
        The behaviour features (empty for the R x F and RFM-8 bases).
    checks : dict
        For clusters: k, silhouette, bootstrap stability, clusters merged; else empty.
    note : str
        Why another basis than the one asked for was used ("" when none).
    merged : dict
        Persona key -> the groups merged into it because they were under ``min_group_size``.
    """

    basis: str
    labels: pd.Series
    features: pd.DataFrame
    checks: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    merged: dict[str, list[str]] = field(default_factory=dict)


def behaviour_clusters(
    features: pd.DataFrame, min_group_size: int, seed: int, k_range: tuple[int, int]
) -> tuple[pd.Series, dict[str, Any]]:
    """Behavioural clusters of the customers (:class:`~cp_toolkit.segment.cluster.BehaviourClusters`:
    k by silhouette, none under ``min_group_size``, bootstrap stability), labelled ``P1``, ``P2``
    ... largest first.

    Raises
    ------
    DataError
        When the customers are too few for two clusters of ``min_group_size``, or show too few
        distinct behaviours.
    """
    if features.shape[1] < 2:
        raise DataError(
            "the data describe fewer than two aspects of how customers shop (the others are unknown for most "
            "customers, or mostly the chance of their few orders)"
        )
    most = len(features) // max(min_group_size, 1)
    if most < 2:
        raise DataError(f"{len(features):,} customers cannot form two groups of {min_group_size}")
    low, high = min(k_range[0], most), min(k_range[1], most)
    model = BehaviourClusters(k_range=(max(low, 2), max(high, 2)), random_state=seed, min_cluster_size=min_group_size)
    model.fit(features)
    labels = pd.Series(model.labels_, index=features.index)
    order = labels.value_counts().sort_values(ascending=False, kind="stable").index
    names = {cluster: f"P{i + 1}" for i, cluster in enumerate(order)}
    return labels.map(names).rename("persona"), model.summary()


def merge_small_cells(
    cells: pd.Series, groups: pd.Series, min_group_size: int
) -> tuple[pd.Series, dict[str, list[str]]]:
    """Make every cell hold ``min_group_size`` customers without giving a small one away.

    Within each group (a value tier), a cell under ``min_group_size`` joins the largest cell of
    its group, so the group's published total still adds up from its personas. What stays small
    (a group whose cells together are too few) is pooled as :data:`OTHER` with the smallest cells
    of :func:`cp_toolkit.privacy.values_to_pool`, the rule stage 03 hides segments by, so that
    no persona total minus a published total counts a small cell.

    Parameters
    ----------
    cells : Series
        Cell of every customer (e.g. ``"high · P2"``, or an R x F segment).
    groups : Series
        The group of every customer within which small cells join a larger one first (the cells
        themselves: straight to the pool).

    Returns
    -------
    cells, merged : Series, dict
        The cells after merging, and for each cell that took others in their names.
    """
    cells = cells.astype(str).copy()
    merged: dict[str, list[str]] = {}
    for _, members in cells.groupby(groups, observed=True):
        sizes = members.value_counts()
        large = sizes[sizes >= min_group_size]
        if len(large) and len(large) < len(sizes):
            small = sizes.index[sizes < min_group_size]
            cells[members.index[members.isin(small)]] = large.index[0]
            merged.setdefault(str(large.index[0]), []).extend(map(str, small))
    pooled = values_to_pool(cells.value_counts(), min_group_size)
    if len(pooled):
        cells[cells.isin(pooled)] = OTHER
        merged[OTHER] = sorted(str(p) for p in pooled)
    return cells, merged


def assign_personas(
    basis: str,
    segments: pd.DataFrame,
    features: pd.DataFrame,
    value_tier: pd.Series,
    min_group_size: int,
    seed: int,
    k_range: tuple[int, int] = (3, 8),
) -> Basis:
    """The persona of every customer on ``basis``.

    ``behaviour`` clusters how customers shop; when the data are too thin for it (too few
    customers or aspects of behaviour), the R x F segments stand in and ``note`` says why.
    ``rfm`` and ``rfm8`` take stage 03's segments; ``value_x_behaviour`` crosses the value tier
    (stage 03's ``value_tier`` tag) with the behaviour clusters. Groups under ``min_group_size``
    are merged, so that no persona has to be suppressed.

    Raises
    ------
    ParameterError
        For an unknown basis, or ``rfm8`` when the segments have no RFM-8 class.
    """
    if basis not in BASES:
        raise ParameterError(f"persona_basis must be one of {', '.join(BASES)}, not {basis!r}")
    if basis in ("behaviour", "value_x_behaviour"):
        try:
            labels, checks = behaviour_clusters(features, min_group_size, seed, k_range)
        except DataError as err:
            fallback = assign_personas("rfm", segments, features, value_tier, min_group_size, seed, k_range)
            fallback.note = str(err)
            return fallback
        if basis == "behaviour":
            return Basis(basis, labels, features, checks)
        tier = value_tier.reindex(labels.index)
        if tier.isna().any():  # no value tier tags (a custom tag file without them)
            return Basis("behaviour", labels, features, checks, note=TIERS_MISSING)
        cells, merged = merge_small_cells(tier.astype(str) + TIER_SEPARATOR + labels, tier, min_group_size)
        return Basis(basis, cells.rename("persona"), features, checks, merged=merged)
    column = {"rfm": "rfm_segment", "rfm8": "rfm8"}[basis]
    if column not in segments.columns:
        raise ParameterError(
            f"persona_basis {basis!r} needs the column {column} in segments.parquet; rerun 03_segmentation"
        )
    groups = segments[column].astype(str)
    cells, merged = merge_small_cells(groups, groups, min_group_size)  # each segment its own group: pooled
    return Basis(basis, cells.rename("persona"), features.iloc[:, :0], merged=merged)
