"""The data-quality scorecard of an ingest: completeness, validity, uniqueness, consistency and
timeliness per table and column, each with the rule that produced it and a flag past its threshold."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["THRESHOLDS", "REASON_COLUMN", "scorecard"]

#: Lowest acceptable score per dimension (timeliness: most days between the last line and as_of).
THRESHOLDS = {"completeness": 0.95, "validity": 0.95, "uniqueness": 0.99, "consistency": 0.95, "timeliness": 7.0}

#: Tables with a key whose uniqueness ingest enforces.
KEYED = ("customers", "products", "campaigns")

#: The column each quarantine reason speaks about.
REASON_COLUMN = {
    "missing_order_id": "order_id",
    "invalid_timestamp": "ts",
    "invalid_amount": "amount",
    "non_positive_amount": "amount",
    "outlier_amount": "amount",
    "negative_quantity": "quantity",
}


def _row(table: str, column: str, dimension: str, rule: str, value: float, threshold: float | None = None) -> dict:
    """One scorecard line; ``flag`` is set when the value is worse than the threshold."""
    threshold = THRESHOLDS[dimension] if threshold is None else threshold
    worse = value > threshold if dimension == "timeliness" else value < threshold
    return {
        "table": table,
        "column": column,
        "dimension": dimension,
        "rule": rule,
        "value": float(value),
        "threshold": threshold,
        "flag": bool(worse),
    }


def _completeness(tables: dict[str, pd.DataFrame], accounting: dict[str, Any]) -> list[dict]:
    """Share of values present: of the rows in for columns whose blanks are set aside
    (``missing_<column>``), of the kept rows for the others."""
    rows = []
    for name, df in tables.items():
        sources = {k: v for k, v in accounting.items() if k == name or k.startswith(f"{name}:")}
        rows_in = sum(v["rows_in"] for v in sources.values())
        for col in df.columns if len(df) else []:
            missing = sum(v["quarantined_by_reason"].get(f"missing_{col}", 0) for v in sources.values())
            if missing:
                rows.append(_row(name, col, "completeness", "share of rows in with a value", 1 - missing / rows_in))
            else:
                rows.append(_row(name, col, "completeness", "share of kept rows with a value", df[col].notna().mean()))
    return rows


def _validity(accounting: dict[str, Any]) -> list[dict]:
    rows = []
    for table, acc in accounting.items():
        by_column: dict[str, int] = {}
        for reason, n in acc["quarantined_by_reason"].items():
            if reason in REASON_COLUMN:
                by_column[REASON_COLUMN[reason]] = by_column.get(REASON_COLUMN[reason], 0) + n
        for column, n in by_column.items():
            reasons = sorted(r for r in acc["quarantined_by_reason"] if REASON_COLUMN.get(r) == column)
            rows.append(
                _row(
                    table,
                    column,
                    "validity",
                    f"share of rows in not set aside as {', '.join(reasons)}",
                    1 - n / acc["rows_in"],
                )
            )
    return rows


def _uniqueness(accounting: dict[str, Any]) -> list[dict]:
    rows = []
    for table, acc in accounting.items():
        for reason in ("duplicate_row", "duplicate_key"):
            if reason in acc["quarantined_by_reason"] or (reason == "duplicate_key" and table in KEYED):
                n = acc["quarantined_by_reason"].get(reason, 0)
                rows.append(
                    _row(
                        table,
                        "*",
                        "uniqueness",
                        f"share of rows in that are not a {reason}",
                        1 - n / max(acc["rows_in"], 1),
                    )
                )
    return rows


def _consistency(tables: dict[str, pd.DataFrame]) -> list[dict]:
    tx = tables["transactions"]
    orders = (
        tx.assign(day=tx["ts"].dt.normalize())
        .groupby("order_id", observed=True)
        .agg(customers=("customer_id", "nunique"), days=("day", "nunique"))
    )
    rows = [
        _row(
            "transactions",
            "order_id",
            "consistency",
            "share of orders with one customer and one day",
            ((orders["customers"] == 1) & (orders["days"] == 1)).mean(),
            0.99,
        )
    ]
    products = tables.get("products")
    if products is not None and len(products) and "product_id" in tx.columns:
        rows.append(
            _row(
                "transactions",
                "product_id",
                "consistency",
                "share of lines whose product is in the products table",
                tx["product_id"].isin(products["product_id"]).mean(),
            )
        )
    customers = tables.get("customers")
    if customers is not None and len(customers):
        # attribute tables often cover a panel only; a very low match means mismatched ids
        rows.append(
            _row(
                "customers",
                "customer_id",
                "consistency",
                "share of the customers table's ids that have transactions",
                customers["customer_id"].isin(tx["customer_id"]).mean(),
                0.5,
            )
        )
    return rows


def _timeliness(tables: dict[str, pd.DataFrame], as_of: str) -> list[dict]:
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    lag = (end - tables["transactions"]["ts"].max()) / pd.Timedelta(days=1)
    return [_row("transactions", "ts", "timeliness", "days from the last kept line to the end of as_of", lag)]


def scorecard(tables: dict[str, pd.DataFrame], accounting: dict[str, Any], as_of: str) -> pd.DataFrame:
    """The scorecard of one ingest.

    Parameters
    ----------
    tables : dict of DataFrame
        Canonical tables after cleaning.
    accounting : dict
        Per-table row accounting (``quality.json["tables"]``).
    as_of : str
        Last day of the run.

    Returns
    -------
    DataFrame
        table, column, dimension, rule, value, threshold and flag (True = past the threshold).
    """
    rows = (
        _completeness(tables, accounting)
        + _validity(accounting)
        + _uniqueness(accounting)
        + _consistency(tables)
        + _timeliness(tables, as_of)
    )
    return pd.DataFrame(rows)
