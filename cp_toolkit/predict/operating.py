"""The operating point of a churn campaign: how many customers to contact, and who.

Contacting a customer costs ``contact_cost``; a contacted customer who would have lapsed is kept
with probability ``save_rate``, which saves ``margin`` of the value they would have spent. The
expected saving of contacting customer *i* is therefore ``p_churn_i * value_i * margin *
save_rate``, and its expected profit that saving minus ``contact_cost``. Contacting customers in
order of expected saving gives the expected-profit curve; the best number to contact is its
maximum within ``contact_share`` of the customers (and ``contact_budget``, if any).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..config import DEFAULTS
from ..privacy import suppress_small_groups

__all__ = [
    "RISK_BANDS",
    "RISK_EDGES",
    "assign_bands",
    "best_contact_count",
    "contact_grid",
    "contact_limit",
    "contact_list",
    "profit_curve",
]

#: Edges of the churn risk bands low / medium / high (probability of no order in the horizon).
RISK_EDGES = (0.0, 0.2, 0.5, 1.0)
RISK_BANDS = ("low", "medium", "high")


def _series(values: Any, name: str) -> pd.Series:
    """``values`` as a float Series (its index kept, else positions), without missing values."""
    series = values.astype("float64") if isinstance(values, pd.Series) else pd.Series(values, dtype="float64")
    if series.isna().any():
        raise ValueError(f"{name} holds missing values; fill or drop them first")
    return series.rename(name)


def profit_curve(p_churn: Any, value: Any, margin: float, contact_cost: float, save_rate: float) -> pd.DataFrame:
    """Cumulative expected profit of contacting the first N customers, for N = 1..n.

    Parameters
    ----------
    p_churn : array-like or Series
        Each customer's probability of lapsing in the horizon (a Series keeps its index as the
        customer's label).
    value : array-like or Series
        What each customer would spend in the horizon if kept (same order as ``p_churn``).
    margin : float
        Share of revenue that is profit.
    contact_cost : float
        Cost of one contact, in the currency of ``value``.
    save_rate : float
        Share of contacted would-be lapsers that the contact keeps.

    Returns
    -------
    DataFrame
        One row per customer in order of contact (highest expected saving first; ties keep
        their input order): ``contacted`` (N), ``customer`` (label of the N-th customer),
        ``p_churn``, ``value``, ``expected_saving`` (of this customer), ``saved_value``
        (cumulative expected saving), ``cost`` (``N * contact_cost``) and ``profit``
        (``saved_value - cost``).
    """
    p = _series(p_churn, "p_churn")
    v = _series(value, "value").set_axis(p.index)
    saving = p * v * margin * save_rate
    order = np.argsort(-saving.to_numpy(), kind="stable")
    curve = pd.DataFrame(
        {
            "contacted": np.arange(1, len(p) + 1),
            "customer": p.index.to_numpy()[order],
            "p_churn": p.to_numpy()[order],
            "value": v.to_numpy()[order],
            "expected_saving": saving.to_numpy()[order],
        }
    )
    curve["saved_value"] = curve["expected_saving"].cumsum()
    curve["cost"] = curve["contacted"] * float(contact_cost)
    curve["profit"] = curve["saved_value"] - curve["cost"]
    return curve


def contact_limit(
    customers: int,
    contact_share: float,
    contact_budget: float | None = None,
    contact_cost: float = DEFAULTS["contact_cost"],
) -> int:
    """The most customers that may be contacted: ``floor(contact_share * customers)``, and no more
    than the budget pays for at ``contact_cost`` each (when both are given and the cost is positive)."""
    limit = int(np.floor(contact_share * customers + 1e-9))
    if contact_budget is not None and contact_cost > 0:
        limit = min(limit, int(np.floor(contact_budget / contact_cost + 1e-9)))
    return limit


def best_contact_count(curve: pd.DataFrame, contact_share: float, contact_budget: float | None = None) -> int:
    """The number of customers to contact that maximizes expected profit within the limits.

    Parameters
    ----------
    curve : DataFrame
        A :func:`profit_curve`.
    contact_share : float
        Largest share of the customers that may be contacted (``floor(share * n)`` customers).
    contact_budget : float, optional
        Largest total contact cost (None: no budget).

    Returns
    -------
    int
        The smallest N (0 to the limit) with the highest expected profit; 0 when no contact is
        expected to pay (contacting nobody earns 0).
    """
    allowed = curve.iloc[: contact_limit(len(curve), contact_share)]
    if contact_budget is not None:
        allowed = allowed[allowed["cost"] <= contact_budget + 1e-9]
    if allowed.empty or allowed["profit"].max() <= 0:
        return 0
    return int(allowed.loc[allowed["profit"].idxmax(), "contacted"])


def contact_list(curve: pd.DataFrame, n: int) -> pd.Index:
    """The labels of the first ``n`` customers of a :func:`profit_curve` (those to contact)."""
    return pd.Index(curve["customer"].iloc[:n])


def assign_bands(values: Any, bands: int | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Band number (1 = lowest) of each value, and the band edges.

    Parameters
    ----------
    values : array-like
        The values to band (probabilities, or amounts).
    bands : int or sequence of float
        A number of quantile bands (edges at the inner quantiles of ``values``, tied quantiles
        merging bands; the outer edges are infinite, so that no single customer's value, the
        lowest or the highest, is given away), or the edges themselves, increasing. Band *k* holds ``edges[k-1] <= x <
        edges[k]``, the last one also its upper edge; values outside the edges go to the
        first or last band.

    Returns
    -------
    tuple of ndarray
        The band of each value (int, from 1), and the edges (one more than the bands).
    """
    x = np.asarray(values, dtype="float64")
    if isinstance(bands, (int, np.integer)):
        inner = np.unique(np.quantile(x, np.linspace(0, 1, int(bands) + 1)[1:-1])) if x.size else np.array([])
        edges = np.r_[-np.inf, inner[inner > x.min()] if x.size else inner, np.inf]
    else:
        edges = np.asarray(bands, dtype="float64")
        if len(edges) < 2 or (np.diff(edges) <= 0).any():
            raise ValueError(f"band edges must be two or more increasing numbers; got {list(bands)}")
    return np.searchsorted(edges[1:-1], x, side="right") + 1, edges


def contact_grid(
    p_churn: Any,
    value: Any,
    risk_bands: int | Sequence[float],
    value_bands: int | Sequence[float],
    min_group_size: int,
) -> pd.DataFrame:
    """Customers and revenue at stake by churn-risk band and value band, small cells suppressed.

    Parameters
    ----------
    p_churn, value : array-like
        Each customer's probability of lapsing and value in the horizon (same order).
    risk_bands, value_bands : int or sequence of float
        Bands of each (:func:`assign_bands`): a number of quantile bands, or edges, e.g.
        ``(0, 0.2, 0.5, 1)`` for risk.
    min_group_size : int
        Smallest cell shown; smaller cells (and, as elsewhere, the smallest shown cells needed so
        that the hidden ones cannot be worked out from the total) are blanked by
        :func:`cp_toolkit.privacy.suppress_small_groups`.

    Returns
    -------
    DataFrame
        One row per risk band x value band, every combination (empty cells have 0 customers):
        ``risk_band``, ``value_band`` (1 = lowest), their edges (``risk_low``, ``risk_high``,
        ``value_low``, ``value_high``), ``customers``, ``value`` (total value in the horizon),
        ``revenue_at_stake`` (sum of ``p_churn * value``: the expected revenue lost without
        action) and ``suppressed``.
    """
    p = _series(p_churn, "p_churn").to_numpy()
    v = _series(value, "value").to_numpy()
    risk, risk_edges = assign_bands(p, risk_bands)
    band, value_edges = assign_bands(v, value_bands)
    frame = pd.DataFrame({"risk_band": risk, "value_band": band, "value": v, "revenue_at_stake": p * v})
    cells = pd.MultiIndex.from_product(
        [range(1, len(risk_edges)), range(1, len(value_edges))], names=["risk_band", "value_band"]
    )
    grouped = frame.groupby(["risk_band", "value_band"])
    table = grouped.agg(
        customers=("value", "size"), value=("value", "sum"), revenue_at_stake=("revenue_at_stake", "sum")
    )
    table = table.reindex(cells, fill_value=0).reset_index()
    table.insert(2, "risk_low", risk_edges[table["risk_band"] - 1])
    table.insert(3, "risk_high", risk_edges[table["risk_band"]])
    table.insert(4, "value_low", value_edges[table["value_band"] - 1])
    table.insert(5, "value_high", value_edges[table["value_band"]])
    shown = suppress_small_groups(table, "customers", min_group_size)
    labels = ["risk_band", "value_band", "risk_low", "risk_high", "value_low", "value_high"]
    shown[labels] = table[labels]  # band ids and edges are labels, not statistics of the cell
    return shown
