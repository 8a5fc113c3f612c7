"""The data-quality scorecard of an ingest: completeness, validity, uniqueness, consistency and
timeliness per table and column, each with the rule that produced it and a flag past its threshold.

The rules are the texts ``ingest.scorecard.rule.*``, written into ``quality.json`` in English
(:data:`~cp_toolkit.text.DEFAULT_LANGUAGE`, so the artifact does not depend on the language);
:func:`cp_toolkit.ingest.tables.scorecard_table` shows them in the report's language."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ..engine import database, parquet_sql
from ..text import DEFAULT_LANGUAGE, t

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


def _frame_sql(con: duckdb.DuckDBPyConnection, name: str, table: pd.DataFrame | Path) -> None:
    """Make a table (a DataFrame, or a Parquet file that is not loaded) queryable as ``name``."""
    if isinstance(table, pd.DataFrame):
        con.register(name, table)
    else:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {parquet_sql(table)}")


def _quote(column: str) -> str:
    return '"' + str(column).replace('"', '""') + '"'


def _completeness(con: duckdb.DuckDBPyConnection, tables: Mapping[str, Any], accounting: dict[str, Any]) -> list[dict]:
    """Share of values present: of the rows in for columns whose blanks are set aside
    (``missing_<column>``), of the kept rows for the others."""
    rows = []
    for name in tables:
        sources = {k: v for k, v in accounting.items() if k == name or k.startswith(f"{name}:")}
        rows_in = sum(v["rows_in"] for v in sources.values())
        columns = [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]
        present = con.execute(f"SELECT {', '.join(f'count({_quote(c)})' for c in columns)}, count(*) FROM {name}")
        *counts, n = present.fetchone()
        for col, count in zip(columns, counts, strict=True) if n else []:
            missing = sum(v["quarantined_by_reason"].get(f"missing_{col}", 0) for v in sources.values())
            if missing:
                rule = t("ingest.scorecard.rule.rows_in_with_value", language=DEFAULT_LANGUAGE)
                rows.append(_row(name, col, "completeness", rule, 1 - missing / rows_in))
            else:
                rule = t("ingest.scorecard.rule.kept_with_value", language=DEFAULT_LANGUAGE)
                rows.append(_row(name, col, "completeness", rule, count / n))
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
                    t("ingest.scorecard.rule.not_set_aside", language=DEFAULT_LANGUAGE, reasons=", ".join(reasons)),
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
                        t("ingest.scorecard.rule.not_duplicate", language=DEFAULT_LANGUAGE, reason=reason),
                        1 - n / max(acc["rows_in"], 1),
                    )
                )
    return rows


def _share(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    """The mean of a 0/1 expression, as a float (0 for no rows)."""
    value = con.execute(sql).fetchone()[0]
    return 0.0 if value is None else float(value)


def _has_rows(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] > 0


def _consistency(con: duckdb.DuckDBPyConnection, tables: Mapping[str, Any]) -> list[dict]:
    one = _share(
        con,
        "SELECT avg(CASE WHEN customers = 1 AND days = 1 THEN 1.0 ELSE 0.0 END) FROM (SELECT order_id, "
        "count(DISTINCT customer_id) AS customers, count(DISTINCT CAST(ts AS DATE)) AS days "
        "FROM transactions GROUP BY order_id)",
    )
    rule = t("ingest.scorecard.rule.one_customer_one_day", language=DEFAULT_LANGUAGE)
    rows = [_row("transactions", "order_id", "consistency", rule, one, 0.99)]
    tx_columns = {row[0] for row in con.execute("DESCRIBE transactions").fetchall()}
    if "products" in tables and _has_rows(con, "products") and "product_id" in tx_columns:
        known = "SELECT product_id FROM products"
        rows.append(
            _row(
                "transactions",
                "product_id",
                "consistency",
                t("ingest.scorecard.rule.known_product", language=DEFAULT_LANGUAGE),
                _share(con, f"SELECT avg(CASE WHEN product_id IN ({known}) THEN 1.0 ELSE 0.0 END) FROM transactions"),
            )
        )
    if "customers" in tables and _has_rows(con, "customers"):
        # attribute tables often cover a panel only; a very low match means mismatched ids
        buyers = "SELECT customer_id FROM transactions"
        rows.append(
            _row(
                "customers",
                "customer_id",
                "consistency",
                t("ingest.scorecard.rule.customers_with_transactions", language=DEFAULT_LANGUAGE),
                _share(con, f"SELECT avg(CASE WHEN customer_id IN ({buyers}) THEN 1.0 ELSE 0.0 END) FROM customers"),
                0.5,
            )
        )
    return rows


def _timeliness(con: duckdb.DuckDBPyConnection, as_of: str) -> list[dict]:
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    lag = (end - pd.Timestamp(con.execute("SELECT max(ts) FROM transactions").fetchone()[0])) / pd.Timedelta(days=1)
    rule = t("ingest.scorecard.rule.days_since_last_line", language=DEFAULT_LANGUAGE)
    return [_row("transactions", "ts", "timeliness", rule, lag)]


def scorecard(tables: Mapping[str, pd.DataFrame | Path], accounting: dict[str, Any], as_of: str) -> pd.DataFrame:
    """The scorecard of one ingest, computed in DuckDB so that the transactions need not be in memory.

    Parameters
    ----------
    tables : mapping of DataFrame or Path
        Canonical tables after cleaning; each a DataFrame or the path of its Parquet file.
    accounting : dict
        Per-table row accounting (``quality.json["tables"]``).
    as_of : str
        Last day of the run.

    Returns
    -------
    DataFrame
        table, column, dimension, rule, value, threshold and flag (True = past the threshold).
    """
    with database() as con:
        for name, table in tables.items():
            _frame_sql(con, name, table)
        rows = (
            _completeness(con, tables, accounting)
            + _validity(accounting)
            + _uniqueness(accounting)
            + _consistency(con, tables)
            + _timeliness(con, as_of)
        )
    return pd.DataFrame(rows)
