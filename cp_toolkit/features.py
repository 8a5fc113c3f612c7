"""Customer features as of a date: orders, recency, frequency, monetary value, tenure, regularity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .artifacts import database

__all__ = ["BEHAVIOUR", "ORDERS_SQL", "ORDER_TYPES", "orders_from_lines", "customer_features"]

#: Basket-level orders from the lines in ``{lines}``: first timestamp, summed amount, line count.
ORDERS_SQL = (
    "SELECT customer_id, order_id, min(ts) AS ts, fsum(amount) AS amount, count(*) AS n_lines FROM {lines} "
    "GROUP BY customer_id, order_id ORDER BY ts, order_id, customer_id"
)
#: Column types of the orders table.
ORDER_TYPES = {
    "customer_id": "string",
    "order_id": "string",
    "ts": "datetime64[ns]",
    "amount": "float64",
    "n_lines": "int64",
}

#: Numeric behaviour columns of :func:`customer_features` (besides first and last purchase).
BEHAVIOUR = [
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "avg_lines_per_order",
    "tenure_days",
    "mean_interpurchase_days",
]


def orders_from_lines(tx: pd.DataFrame) -> pd.DataFrame:
    """Collapse transaction lines into basket-level orders (:data:`ORDERS_SQL`, run in DuckDB).

    Parameters
    ----------
    tx : DataFrame
        Canonical transactions (``customer_id``, ``order_id``, ``ts``, ``amount``, ...).

    Returns
    -------
    DataFrame
        One row per order: ``customer_id``, ``order_id``, ``ts`` (first line), ``amount``
        (sum of lines) and ``n_lines``, sorted by time.
    """
    with database() as con:
        con.register("lines", tx)
        return con.execute(ORDERS_SQL.format(lines="lines")).df().astype(ORDER_TYPES)


def customer_features(orders: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Per-customer behaviour from the orders placed up to and including ``as_of``.

    Parameters
    ----------
    orders : DataFrame
        Output of :func:`orders_from_lines`.
    as_of : str or Timestamp
        The day the features describe; orders after it are ignored.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``first_purchase``, ``last_purchase``, ``recency_days``
        (days from the last order to the end of ``as_of``), ``frequency`` (orders),
        ``monetary`` (revenue), ``avg_order_value``, ``avg_lines_per_order``, ``tenure_days``
        and ``mean_interpurchase_days`` (missing for one-order customers).
    """
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    o = orders[orders["ts"] < end]
    g = o.groupby("customer_id", observed=True)
    f = g.agg(
        first_purchase=("ts", "min"),
        last_purchase=("ts", "max"),
        frequency=("order_id", "size"),
        monetary=("amount", "sum"),
        avg_lines_per_order=("n_lines", "mean"),
    )
    f["recency_days"] = (end - f["last_purchase"]) / pd.Timedelta(days=1)
    f["tenure_days"] = (end - f["first_purchase"]) / pd.Timedelta(days=1)
    f["avg_order_value"] = f["monetary"] / f["frequency"]
    span = (f["last_purchase"] - f["first_purchase"]) / pd.Timedelta(days=1)
    f["mean_interpurchase_days"] = (span / (f["frequency"] - 1)).where(f["frequency"] > 1, np.nan)
    return f[["first_purchase", "last_purchase", *BEHAVIOUR]].sort_index()
