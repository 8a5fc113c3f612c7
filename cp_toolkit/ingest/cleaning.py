"""Cleaning rules for canonical transactions: one reason code per set-aside row.

Rules, in order (the first that applies names the row's reason):

1. ``missing_customer_id``, ``excluded_account`` (ids listed in ``exclude_customers_file``:
   internal, staff or test accounts), ``missing_order_id`` (when ``order_id`` is mapped),
   ``invalid_timestamp``, ``invalid_amount``;
2. ``after_as_of``: later than the end of ``as_of`` (kept out of this run, not an error);
3. ``duplicate_row``: an exact repeat of an earlier row (``drop_duplicates: false`` keeps them);
4. cancellations (sources with ``cancellation_prefix``, e.g. UCI invoices ``C536379``): each
   cancellation line is netted against the same customer's earlier purchase lines of the same
   product, latest first. Fully matched cancellation lines are set aside as
   ``cancellation_netted``, the others as ``cancellation_unmatched`` (what did match is still
   netted); purchase lines cancelled in full become ``cancelled``, partly cancelled lines stay
   with their quantity, amount and discounts reduced in proportion;
5. ``negative_quantity``: a quantity below zero that no cancellation explains (an unmarked
   return or an adjustment); ``non_positive_amount``: amount <= 0 (< 0 with ``allow_zero_amount: true``), which also
   catches returns in sources that do not mark them;
6. ``outlier_amount`` (only with ``outlier_iqr_k``): a line whose log amount lies more than
   ``k`` interquartile ranges above the upper quartile of the log amounts of the lines still
   kept (k = 3 flags about one line in a million of a log-normal; bulk orders of wholesalers
   are real and stay unless a rule asks otherwise).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ..errors import SourceError
from ..features import DISCOUNT_COLUMNS

__all__ = ["excluded_accounts", "net_cancellations", "row_reasons", "settle_reasons"]


def _mark(reason: pd.Series, mask: pd.Series, code: str) -> pd.Series:
    """Give ``code`` to the rows of ``mask`` that have no reason yet."""
    return reason.mask(reason.isna() & mask.fillna(False).astype(bool), code)


def row_reasons(df: pd.DataFrame, as_of: pd.Timestamp, excluded: Collection[str] = ()) -> pd.Series:
    """Rules 1 and 2, which look at one row at a time (applied chunk by chunk while reading).

    Parameters
    ----------
    df : DataFrame
        Typed canonical transactions with raw customer ids.
    as_of : Timestamp
        Last day of the run.
    excluded : collection of str
        Raw ids of accounts to set aside (:func:`excluded_accounts` of the source).

    Returns
    -------
    Series
        The reason code of each row, missing where no rule applies.
    """
    no = pd.Series(False, index=df.index)
    reason = pd.Series(pd.NA, index=df.index, dtype="string")
    reason = _mark(reason, df["customer_id"].isna(), "missing_customer_id")
    reason = _mark(reason, df["customer_id"].isin(excluded), "excluded_account")
    reason = _mark(reason, df["order_id"].isna() if "order_id" in df.columns else no, "missing_order_id")
    reason = _mark(reason, df["ts"].isna(), "invalid_timestamp")
    reason = _mark(reason, df["amount"].isna() | ~np.isfinite(df["amount"].fillna(0)), "invalid_amount")
    return _mark(reason, df["ts"] >= as_of + pd.Timedelta(days=1), "after_as_of")


def settle_reasons(con: duckdb.DuckDBPyConnection, staged: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Rules 3 to 6, which compare rows across the whole source, run in DuckDB.

    Creates the table ``settled``: the staged rows (``_seq`` = position in the source, ``_hash``
    = hash of the whole source row, ``reason`` from :func:`row_reasons`) with quantities and
    amounts reduced where cancellations were netted and every row's final ``reason``. DuckDB
    spills to disk past its memory limit, so memory does not grow with the source.

    Parameters
    ----------
    con : DuckDBPyConnection
        The ingest's database.
    staged : str
        SQL of the staged rows, e.g. ``read_parquet('staged.parquet')``.
    spec : mapping
        The source description.

    Returns
    -------
    dict
        Cancellation netting statistics (empty when the source marks no cancellations).
    """
    duplicate = (
        "row_number() OVER (PARTITION BY _hash, customer_id, ts, amount ORDER BY _seq) > 1"
        if spec.get("drop_duplicates", True)
        else "false"
    )
    con.execute(
        "CREATE OR REPLACE TABLE settled AS SELECT * EXCLUDE (reason, _hash), "
        f"coalesce(reason, CASE WHEN {duplicate} THEN 'duplicate_row' END) AS reason FROM {staged}"
    )
    columns = {row[0] for row in con.execute("DESCRIBE settled").fetchall()}
    netting: dict[str, Any] = {}
    if spec.get("cancellation_prefix"):
        netting = _net_in_database(con, str(spec["cancellation_prefix"]), columns)
    if "quantity" in columns:
        con.execute("UPDATE settled SET reason = 'negative_quantity' WHERE reason IS NULL AND quantity < 0")
    non_positive = "amount < 0" if spec.get("allow_zero_amount") else "amount <= 0"
    con.execute(f"UPDATE settled SET reason = 'non_positive_amount' WHERE reason IS NULL AND {non_positive}")
    if spec.get("outlier_iqr_k") is not None:
        limit = con.execute(
            "SELECT q[2] + $k * (q[2] - q[1]) FROM (SELECT quantile_cont(ln(amount), [0.25, 0.75]) AS q "
            "FROM settled WHERE reason IS NULL AND amount > 0)",
            {"k": float(spec["outlier_iqr_k"])},
        ).fetchone()[0]
        if limit is not None:
            con.execute(
                "UPDATE settled SET reason = 'outlier_amount' WHERE reason IS NULL AND amount > 0 AND ln(amount) > $1",
                [limit],
            )
    return netting


def _net_in_database(con: duckdb.DuckDBPyConnection, prefix: str, columns: set[str]) -> dict[str, Any]:
    """Net cancellations within ``settled``: only the open lines of the (customer, product) pairs that
    some cancellation names are loaded into memory, netted there, and written back. Customers are
    the source's own (``_net_customer`` when an identity map has replaced ``customer_id``)."""
    _require_netting_columns(columns)
    who = "_net_customer" if "_net_customer" in columns else "customer_id"  # the source's own ids
    pairs = (
        f"SELECT DISTINCT {who}, product_id FROM settled "
        "WHERE reason IS NULL AND starts_with(order_id, $prefix) AND quantity < 0"
    )
    lines = con.execute(
        f"SELECT s.* FROM settled s SEMI JOIN ({pairs}) p ON s.{who} IS NOT DISTINCT FROM p.{who} "
        "AND s.product_id IS NOT DISTINCT FROM p.product_id WHERE s.reason IS NULL ORDER BY s._seq",
        {"prefix": prefix},
    ).df()
    lines["customer_id"] = lines[who]
    for col in ("customer_id", "order_id", "product_id"):
        lines[col] = lines[col].astype("string")
    netted, reason, stats = net_cancellations(lines, pd.Series(pd.NA, index=lines.index, dtype="string"), prefix)
    changed = netted[reason.notna() | (netted["quantity"] != lines["quantity"])]
    values = ["quantity", "amount", *(c for c in DISCOUNT_COLUMNS if c in columns)]
    updates = changed[["_seq", *values]].assign(reason=reason[changed.index].astype(object))
    con.register("netting_updates", updates)
    assignments = ", ".join(f"{c} = u.{c}" for c in ["reason", *values])
    con.execute(f"UPDATE settled SET {assignments} FROM netting_updates u WHERE settled._seq = u._seq")
    con.unregister("netting_updates")
    return stats


def excluded_accounts(spec: Mapping[str, Any]) -> set[str]:
    """Raw ids of internal, staff or test accounts: one per line in the file ``exclude_customers_file``.

    The ids live in a file outside the reports so that no raw id reaches ``params.json``.
    """
    path = spec.get("exclude_customers_file")
    if not path:
        return set()
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SourceError(f"exclude_customers_file {path}: cannot be read ({err}); give a UTF-8 text file") from err
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _purchase_lines(df: pd.DataFrame, open_: pd.Series) -> dict[tuple[str, str], list[int]]:
    """Row positions of open purchase lines per (customer, product), in time order."""
    lines: dict[tuple[str, str], list[int]] = defaultdict(list)
    buys = df[open_ & (df["quantity"] > 0)].sort_values("ts", kind="stable")
    for pos, key in zip(buys.index, zip(buys["customer_id"], buys["product_id"], strict=True), strict=True):
        lines[key].append(pos)
    return lines


def _require_netting_columns(columns: Iterable[str]) -> None:
    """Refuse to net cancellations without the columns that match them to purchases."""
    missing = [c for c in ("quantity", "product_id", "order_id") if c not in set(columns)]
    if missing:
        raise SourceError(f"cancellation_prefix needs the columns {missing} mapped to net cancellations")


def net_cancellations(df: pd.DataFrame, reason: pd.Series, prefix: str) -> tuple[pd.DataFrame, pd.Series, dict]:
    """Net cancellation lines (``order_id`` starting with ``prefix``) against earlier purchases.

    Returns the transactions with reduced quantities and amounts, the updated reasons and
    counts: cancellation lines netted / unmatched, purchase lines cancelled / reduced, and the
    quantity and revenue netted.
    """
    _require_netting_columns(df.columns)
    df = df.copy()
    open_ = reason.isna()
    cancel = open_ & df["order_id"].str.startswith(prefix).fillna(False) & (df["quantity"] < 0)
    lines = _purchase_lines(df, open_ & ~cancel)
    remaining = df["quantity"].copy()
    unmatched_codes, netted_qty, unmatched_qty = {}, 0.0, 0.0
    for pos in df[cancel].sort_values("ts", kind="stable").index:
        want = -df.at[pos, "quantity"]
        for line in reversed(lines.get((df.at[pos, "customer_id"], df.at[pos, "product_id"]), [])):
            if want <= 0:
                break
            if df.at[line, "ts"] > df.at[pos, "ts"] or remaining[line] <= 0:
                continue
            take = min(remaining[line], want)
            remaining[line] -= take
            want -= take
            netted_qty += take
        unmatched_codes[pos] = "cancellation_netted" if want <= 0 else "cancellation_unmatched"
        unmatched_qty += max(want, 0)
    touched = open_ & ~cancel & (remaining < df["quantity"])
    fully, partly = touched & (remaining <= 0), touched & (remaining > 0)
    revenue_before = df.loc[touched, "amount"].sum()
    # partly cancelled lines keep the rest; fully cancelled ones keep their values for the quarantine
    kept_part = remaining[partly] / df.loc[partly, "quantity"]
    for col in ("amount", *(c for c in DISCOUNT_COLUMNS if c in df.columns)):
        df.loc[partly, col] = df.loc[partly, col] * kept_part
    df.loc[partly, "quantity"] = remaining[partly]
    codes = pd.Series(unmatched_codes, dtype="string").reindex(df.index)
    reason = _mark(reason.fillna(codes), fully, "cancelled")
    stats = {
        "cancellation_lines": int(cancel.sum()),
        "cancellation_lines_unmatched": int((codes == "cancellation_unmatched").sum()),
        "purchase_lines_cancelled": int(fully.sum()),
        "purchase_lines_reduced": int(partly.sum()),
        "quantity_netted": float(netted_qty),
        "quantity_unmatched": float(unmatched_qty),
        "revenue_netted": float(revenue_before - df.loc[partly, "amount"].sum()),
    }
    return df, reason, stats
